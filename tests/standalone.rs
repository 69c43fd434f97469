//! A standalone process: `create(pid, args)`, `start`, `push`, `pull`, `result`,
//! without a scheduler.

use chronoflow::{
    Ctx, Pid, Process, PushError, Signal, SignalData, StartError, Status, Template, Value, Wait,
};

/// Receives `count` strings and sends each back in upper case; returns `count`.
fn upper() -> Template<String, String, u32, u32> {
    Template::new("upper", |ctx: &mut Ctx<String>, count: u32| {
        for _ in 0..count {
            let m = ctx.receive();
            ctx.send(m.to_uppercase());
        }
        count
    })
}

fn sent<I, O: Clone>(signals: &[Signal<I, O>]) -> Vec<O> {
    signals
        .iter()
        .filter_map(|s| match &s.data {
            SignalData::Send { msg, .. } => Some(msg.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn pull_gives_start_sends_stop_in_emission_order_with_sequence_numbers() {
    let mut p = upper().create(Pid(7), 2).unwrap();
    assert_eq!(p.pid(), Pid(7));
    assert_eq!(p.status(), Status::Created);
    assert!(p.pull().is_empty(), "nothing happens before start");

    p.start().unwrap();
    assert_eq!(p.status(), Status::Waiting(Wait::Message));
    p.push("a".to_string()).unwrap();
    p.push("b".to_string()).unwrap();
    assert_eq!(p.status(), Status::Stopped);

    let signals = p.pull();
    assert_eq!(
        signals,
        vec![
            Signal {
                pid: Pid(7),
                seq: 0,
                replayed: false,
                data: SignalData::Start,
            },
            Signal {
                pid: Pid(7),
                seq: 1,
                replayed: false,
                data: SignalData::Send {
                    to: None,
                    msg: "A".to_string(),
                },
            },
            Signal {
                pid: Pid(7),
                seq: 2,
                replayed: false,
                data: SignalData::Send {
                    to: None,
                    msg: "B".to_string(),
                },
            },
            Signal {
                pid: Pid(7),
                seq: 3,
                replayed: false,
                data: SignalData::Stop {
                    exit: Ok(Value::encode(&2u32)),
                },
            },
        ]
    );
    assert!(p.pull().is_empty(), "pull drains the outbox");
}

#[test]
fn pull_drains_incrementally_and_sequence_numbers_continue() {
    let mut p = upper().create(Pid(0), 3).unwrap();
    p.start().unwrap();
    let first = p.pull();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].data, SignalData::Start);
    assert_eq!(first[0].seq, 0);

    p.push("x".to_string()).unwrap();
    let second = p.pull();
    assert_eq!(sent(&second), ["X"]);
    assert_eq!(second[0].seq, 1);

    p.push("y".to_string()).unwrap();
    p.push("z".to_string()).unwrap();
    let third = p.pull();
    let seqs: Vec<u64> = third.iter().map(|s| s.seq).collect();
    assert_eq!(seqs, [2, 3, 4]);
    assert_eq!(sent(&third), ["Y", "Z"]);
    assert!(matches!(third[2].data, SignalData::Stop { .. }));
}

#[test]
fn starting_twice_is_an_error() {
    let mut p = upper().create(Pid(0), 1).unwrap();
    assert_eq!(p.start(), Ok(()));
    assert_eq!(p.start(), Err(StartError::AlreadyStarted(Pid(0))));
    // The second start did not emit a second START.
    let starts = p
        .pull()
        .iter()
        .filter(|s| s.data == SignalData::Start)
        .count();
    assert_eq!(starts, 1);
}

#[test]
fn push_before_start_gives_the_message_back() {
    let mut p = upper().create(Pid(0), 1).unwrap();
    assert_eq!(
        p.push("early".to_string()),
        Err(PushError::NotStarted("early".to_string()))
    );
    // The refused message was not queued: the first message handled is the next one.
    p.start().unwrap();
    p.push("late".to_string()).unwrap();
    assert_eq!(sent(&p.pull()), ["LATE"]);
}

#[test]
fn push_after_stop_gives_the_message_back() {
    let mut p = upper().create(Pid(0), 1).unwrap();
    p.start().unwrap();
    p.push("one".to_string()).unwrap();
    assert_eq!(p.status(), Status::Stopped);
    assert_eq!(
        p.push("two".to_string()),
        Err(PushError::Stopped("two".to_string()))
    );
    assert_eq!(sent(&p.pull()), ["ONE"]);
}

#[test]
fn push_to_a_full_inbox_gives_the_message_back() {
    // Waits for "go" with select, so everything else queues up in a 2-slot inbox.
    let t = Template::new("waiter", |ctx: &mut Ctx<String>, _: ()| {
        ctx.select(|m| m == "go");
        ctx.inbox_len()
    })
    .capacity(2);
    let mut p = t.create(Pid(0), ()).unwrap();
    p.start().unwrap();
    p.push("a".to_string()).unwrap();
    p.push("b".to_string()).unwrap();
    assert_eq!(
        p.push("c".to_string()),
        Err(PushError::Full("c".to_string()))
    );
    assert_eq!(
        p.push("go".to_string()),
        Err(PushError::Full("go".to_string()))
    );
    assert_eq!(p.status(), Status::Waiting(Wait::Message));
    assert_eq!(p.result(), None);
}

#[test]
fn push_is_refused_when_a_childs_inbox_is_full() {
    // The child never takes a message; the parent keeps receiving. The child's
    // one-slot inbox refuses what the parent would accept.
    let child = Template::new("stubborn", |ctx: &mut Ctx<u32>, _: ()| {
        ctx.select(|m| *m == u32::MAX);
    })
    .capacity(1);
    let parent = Template::new("parent", move |ctx: &mut Ctx<u32>, _: ()| {
        let c = ctx.spawn(&child, ()).unwrap();
        let mut got = Vec::new();
        loop {
            let m = ctx.receive();
            if m == u32::MAX {
                break;
            }
            got.push(m);
        }
        ctx.join(c).unwrap();
        got
    });
    let mut p = parent.create(Pid(0), ()).unwrap();
    p.start().unwrap();
    p.push(1).unwrap();
    assert_eq!(p.push(2), Err(PushError::Full(2)));
    assert_eq!(p.push(u32::MAX), Err(PushError::Full(u32::MAX)));
}

#[test]
fn inbound_and_outbound_types_can_differ() {
    // Receives strings, sends their lengths, returns the total.
    let t = Template::new("lengths", |ctx: &mut Ctx<String, usize>, n: usize| {
        let mut total = 0;
        for _ in 0..n {
            let s = ctx.receive();
            total += s.len();
            ctx.send(s.len());
        }
        total
    });
    let mut p: Process<String, usize, usize> = t.create(Pid(1), 3).unwrap();
    p.start().unwrap();
    for s in ["a", "bcd", "efghij"] {
        p.push(s.to_string()).unwrap();
    }
    let signals: Vec<Signal<String, usize>> = p.pull();
    assert_eq!(sent(&signals), [1usize, 3, 6]);
    assert_eq!(p.result(), Some(Ok(10)));
}

#[test]
fn send_uses_the_route_and_send_to_names_the_destination() {
    let t = Template::new("router", |ctx: &mut Ctx<u64>, _: ()| {
        let m = ctx.receive();
        ctx.send(m);
        ctx.send_to(Pid(99), m + 1);
    })
    .route(|m: &u64| Some(Pid(m * 10)));
    let mut p = t.create(Pid(0), ()).unwrap();
    p.start().unwrap();
    p.push(4).unwrap();
    let sends: Vec<(Option<Pid>, u64)> = p
        .pull()
        .into_iter()
        .filter_map(|s| match s.data {
            SignalData::Send { to, msg } => Some((to, msg)),
            _ => None,
        })
        .collect();
    assert_eq!(sends, [(Some(Pid(40)), 4), (Some(Pid(99)), 5)]);
}

#[test]
fn result_is_none_until_the_process_ends_then_taken_once() {
    let mut p = upper().create(Pid(0), 1).unwrap();
    assert_eq!(p.result(), None);
    p.start().unwrap();
    assert_eq!(p.result(), None);
    p.push("go".to_string()).unwrap();
    assert_eq!(p.result(), Some(Ok(1)));
    assert_eq!(p.result(), None, "the result is taken once");
}

#[test]
fn a_process_that_returns_at_once_stops_during_start() {
    let t = Template::new("quick", |_: &mut Ctx<u8>, x: u8| x * 2);
    let mut p = t.create(Pid(3), 21).unwrap();
    p.start().unwrap();
    assert_eq!(p.status(), Status::Stopped);
    let signals = p.pull();
    assert_eq!(
        signals.iter().map(|s| (s.pid, s.seq)).collect::<Vec<_>>(),
        [(Pid(3), 0), (Pid(3), 1)]
    );
    assert_eq!(
        signals[1].data,
        SignalData::Stop {
            exit: Ok(Value::encode(&42u8))
        }
    );
    assert_eq!(p.result(), Some(Ok(42)));
    assert_eq!(p.push(1), Err(PushError::Stopped(1)));
}
