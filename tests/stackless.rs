#![feature(coroutines)]
//! Stackless processes: round trips with stackful ones, selective receive and
//! filter, back-pressure, the budget and `yield_now!`, timers, children, failures,
//! the context's turn check, durable schedulers, drops, and many idle processes.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use chronoflow::stackless::{filter, join, receive, select, send, send_to, sleep, yield_now};
use chronoflow::{
    Ctx, DropReason, DurableScheduler, Exit, ExitError, JoinError, ManualClock, Overflow, Pid,
    Signal, SignalData, SimpleScheduler, SpawnError, StacklessCtx, StacklessTemplate, Status,
    Template, Time, UndeliveredReason, Value, Wait,
};

/// Counts its drops: held across suspensions to observe that a coroutine's locals
/// are dropped.
struct Guard(Arc<AtomicUsize>);
impl Drop for Guard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// The messages of the round-trip tests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Msg {
    Ping(Pid, u64),
    Pong(u64),
}

/// A stackless template of this file's `u64` schedulers.
type Sl<A, R> = StacklessTemplate<u64, u64, A, R>;

/// Holds its guard and waits for a message it never selects (so it takes none).
fn stuck_with(name: &str) -> Sl<Guard, u64> {
    StacklessTemplate::new(name, |cx: StacklessCtx<u64>, g: Guard| {
        #[coroutine]
        move || {
            let _g = g;
            select!(cx, |_: &u64| false)
        }
    })
}

/// Receives `n` messages and returns them, in the order taken.
fn collect() -> Sl<usize, Vec<u64>> {
    StacklessTemplate::new("collect", |cx: StacklessCtx<u64>, n: usize| {
        #[coroutine]
        move || {
            let mut got = Vec::new();
            for _ in 0..n {
                let m = receive!(cx);
                got.push(m);
            }
            got
        }
    })
}

/// How `pid` ended, from its STOP signal.
fn stop_exit<M: std::fmt::Debug>(signals: &[Signal<M>], pid: Pid) -> Exit {
    signals
        .iter()
        .find_map(|s| match &s.data {
            SignalData::Stop { exit } if s.pid == pid => Some(exit.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no STOP of {pid} in {signals:#?}"))
}

/// The failure message of a process that failed.
fn failure<R: std::fmt::Debug>(result: Option<Result<R, ExitError>>) -> String {
    match result {
        Some(Err(ExitError::Failed(msg))) => msg,
        other => panic!("expected a failure, got {other:?}"),
    }
}

/// The message of a caught panic.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic>".to_string()
    }
}

// ---------------------------------------------------------------------------------
// Round trips.

/// Answers `rounds` pings with twice their number; returns the sum of the numbers.
fn stackless_doubler() -> StacklessTemplate<Msg, Msg, u32, u64> {
    StacklessTemplate::new("doubler", |cx: StacklessCtx<Msg>, rounds: u32| {
        #[coroutine]
        move || {
            let mut sum = 0;
            for _ in 0..rounds {
                match receive!(cx) {
                    Msg::Ping(from, n) => {
                        sum += n;
                        send_to!(cx, from, Msg::Pong(2 * n));
                    }
                    other => panic!("the doubler got {other:?}"),
                }
            }
            sum
        }
    })
}

#[test]
#[cfg_attr(miri, ignore = "stackful processes too: Miri cannot switch stacks")]
fn a_stackful_client_and_a_stackless_server_round_trip() {
    let client = Template::new("client", |ctx: &mut Ctx<Msg>, (server, n): (Pid, u64)| {
        let me = ctx.pid();
        let mut answers = Vec::new();
        for i in 1..=n {
            ctx.send_to(server, Msg::Ping(me, i));
            match ctx.receive() {
                Msg::Pong(v) => answers.push(v),
                other => panic!("the client got {other:?}"),
            }
        }
        answers
    });
    let mut sched = SimpleScheduler::new();
    sched.record();
    let s = sched.spawn(&stackless_doubler(), 3).unwrap();
    let c = sched.spawn(&client, (s.pid(), 3)).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&c), Some(Ok(vec![2, 4, 6])));
    assert_eq!(sched.result(&s), Some(Ok(1 + 2 + 3)));
    assert_eq!(sched.live(), 0);

    let signals = sched.pull();
    let server: Vec<&SignalData<Msg>> = signals
        .iter()
        .filter(|sig| sig.pid == s.pid())
        .map(|sig| &sig.data)
        .collect();
    let pong = |n| SignalData::Send {
        to: Some(c.pid()),
        msg: Msg::Pong(n),
    };
    assert_eq!(
        server,
        [
            &SignalData::Start,
            &pong(2),
            &pong(4),
            &pong(6),
            &SignalData::Stop {
                exit: Ok(Value::encode(&6u64))
            },
        ],
        "a stackless process's signals, with its result recorded"
    );
    let seqs: Vec<u64> = signals
        .iter()
        .filter(|sig| sig.pid == s.pid())
        .map(|sig| sig.seq)
        .collect();
    assert_eq!(seqs, [0, 1, 2, 3, 4]);
}

#[test]
#[cfg_attr(miri, ignore = "stackful processes too: Miri cannot switch stacks")]
fn a_stackless_client_and_a_stackful_server_round_trip() {
    let server = Template::new("server", |ctx: &mut Ctx<Msg>, rounds: u32| {
        let mut sum = 0;
        for _ in 0..rounds {
            if let Msg::Ping(from, n) = ctx.receive() {
                sum += n;
                ctx.send_to(from, Msg::Pong(n * 10));
            }
        }
        sum
    });
    let client = StacklessTemplate::new(
        "client",
        |cx: StacklessCtx<Msg>, (server, n): (Pid, u64)| {
            #[coroutine]
            move || {
                let mut answers = Vec::new();
                for i in 1..=n {
                    send_to!(cx, server, Msg::Ping(cx.pid(), i));
                    match receive!(cx) {
                        Msg::Pong(v) => answers.push(v),
                        other => panic!("the client got {other:?}"),
                    }
                }
                answers
            }
        },
    );
    let mut sched = SimpleScheduler::new();
    // The client first: it sends before the server has run.
    let c = sched.create(&client, (Pid(1), 4)).unwrap();
    let s = sched.spawn(&server, 4).unwrap();
    assert_eq!(s.pid(), Pid(1));
    sched.start(c.pid()).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&c), Some(Ok(vec![10, 20, 30, 40])));
    assert_eq!(sched.result(&s), Some(Ok(10)));
}

#[test]
#[cfg_attr(miri, ignore = "stackful processes too: Miri cannot switch stacks")]
fn a_stackless_server_answers_many_stackful_clients() {
    let client = Template::new("client", |ctx: &mut Ctx<Msg>, (server, n): (Pid, u64)| {
        let me = ctx.pid();
        ctx.send_to(server, Msg::Ping(me, n));
        ctx.receive()
    });
    let mut sched = SimpleScheduler::new();
    let s = sched.spawn(&stackless_doubler(), 5).unwrap();
    let clients: Vec<_> = (1..=5)
        .map(|n| sched.spawn(&client, (s.pid(), n * 100)).unwrap())
        .collect();
    sched.run_until_idle();
    for (n, c) in (1..=5).zip(clients) {
        assert_eq!(sched.result(&c), Some(Ok(Msg::Pong(n * 200))));
    }
    assert_eq!(sched.result(&s), Some(Ok(1500)));
}

#[test]
fn send_follows_the_route_and_undeliverable_messages_are_kept() {
    let mut sched = SimpleScheduler::new();
    let evens = sched.spawn(&collect(), 3).unwrap();
    let sink = evens.pid();
    let router: Sl<u64, u64> = StacklessTemplate::new("router", |cx: StacklessCtx<u64>, n: u64| {
        #[coroutine]
        move || {
            for m in 0..n {
                send!(cx, m);
            }
            // To a pid that never existed: kept, not waited on.
            send_to!(cx, Pid(999), 7);
            n
        }
    })
    .route(move |m: &u64| m.is_multiple_of(2).then_some(sink));
    let r = sched.spawn(&router, 6).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&r), Some(Ok(6)));
    assert_eq!(sched.result(&evens), Some(Ok(vec![0, 2, 4])));
    let kept: Vec<(Option<Pid>, Option<Pid>, UndeliveredReason, u64)> = sched
        .take_undelivered()
        .into_iter()
        .map(|u| (u.from, u.to, u.reason, u.msg))
        .collect();
    let from = Some(r.pid());
    assert_eq!(
        kept,
        [
            (from, None, UndeliveredReason::NoRoute, 1),
            (from, None, UndeliveredReason::NoRoute, 3),
            (from, None, UndeliveredReason::NoRoute, 5),
            (from, Some(Pid(999)), UndeliveredReason::UnknownPid, 7),
        ]
    );
}

// ---------------------------------------------------------------------------------
// Selective receive and filter.

#[test]
fn select_takes_the_first_match_and_leaves_the_others_in_order() {
    let picker: Sl<(), (u64, Vec<u64>)> =
        StacklessTemplate::new("picker", |cx: StacklessCtx<u64>, _: ()| {
            #[coroutine]
            move || {
                let big = select!(cx, |m: &u64| *m >= 100);
                let left = cx.inbox_len();
                let mut rest = Vec::new();
                for _ in 0..left {
                    let m = receive!(cx);
                    rest.push(m);
                }
                (big, rest)
            }
        });
    let mut sched = SimpleScheduler::new();
    let h = sched.spawn(&picker, ()).unwrap();
    for m in [1, 2, 100, 3, 101, 4] {
        sched.send(h.pid(), m).unwrap();
    }
    sched.run_until_idle();
    assert_eq!(sched.result(&h), Some(Ok((100, vec![1, 2, 3, 101, 4]))));
}

#[test]
fn select_checks_each_message_once_across_its_waits() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let picker: Sl<(), (u64, Vec<u64>)> =
        StacklessTemplate::new("picker", move |cx: StacklessCtx<u64>, _: ()| {
            let calls = c.clone();
            #[coroutine]
            move || {
                let zero = select!(cx, |m: &u64| {
                    calls.fetch_add(1, Ordering::SeqCst);
                    *m == 0
                });
                let mut rest = Vec::new();
                while let Some(m) = cx.try_receive() {
                    rest.push(m);
                }
                (zero, rest)
            }
        });
    let mut sched = SimpleScheduler::new();
    let h = sched.spawn(&picker, ()).unwrap();
    sched.run_until_idle();
    assert_eq!(calls.load(Ordering::SeqCst), 0, "an empty inbox: no call");
    // The messages arrive over several passes; each wakes the select.
    let batches: [&[u64]; 4] = [&[1], &[2, 3], &[4], &[5, 0, 6]];
    let mut sent = 0;
    for batch in batches {
        for &m in batch {
            sched.send(h.pid(), m).unwrap();
        }
        sent += batch.len();
        sched.run_until_idle();
        if sched.status(h.pid()) != Some(Status::Stopped) {
            assert_eq!(
                calls.load(Ordering::SeqCst),
                sent,
                "each message checked once"
            );
            assert_eq!(sched.status(h.pid()), Some(Status::Waiting(Wait::Message)));
        }
    }
    // 1, 2, 3, 4, 5 rejected once each, then 0 taken; 6 never checked.
    assert_eq!(calls.load(Ordering::SeqCst), 6);
    assert_eq!(sched.result(&h), Some(Ok((0, vec![1, 2, 3, 4, 5, 6]))));
}

#[test]
fn select_keeps_its_position_when_scanned_messages_are_evicted() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let picker: Sl<(), (u64, Vec<u64>)> =
        StacklessTemplate::new("picker", move |cx: StacklessCtx<u64>, _: ()| {
            let seen = s.clone();
            #[coroutine]
            move || {
                let zero = select!(cx, |m: &u64| {
                    seen.lock().unwrap().push(*m);
                    *m == 0
                });
                let mut rest = Vec::new();
                while let Some(m) = cx.try_receive() {
                    rest.push(m);
                }
                (zero, rest)
            }
        })
        .capacity(2)
        .overflow(Overflow::DropOldest);
    let mut sched = SimpleScheduler::new();
    let h = sched.spawn(&picker, ()).unwrap();
    sched.send(h.pid(), 1).unwrap();
    sched.send(h.pid(), 2).unwrap();
    sched.run_until_idle();
    // 3 evicts 1 (already checked), 4 evicts 2: the scan must go on at 3, then 4.
    sched.send(h.pid(), 3).unwrap();
    sched.run_until_idle();
    sched.send(h.pid(), 4).unwrap();
    sched.send(h.pid(), 0).unwrap(); // evicts 3
    sched.run_until_idle();
    assert_eq!(*seen.lock().unwrap(), [1, 2, 3, 4, 0]);
    assert_eq!(sched.result(&h), Some(Ok((0, vec![4]))));
}

fn drops_of<M: Clone>(signals: &[Signal<M>], pid: Pid) -> Vec<(M, DropReason)> {
    signals
        .iter()
        .filter(|s| s.pid == pid)
        .filter_map(|s| match &s.data {
            SignalData::Drop { msg, reason } => Some((msg.clone(), *reason)),
            _ => None,
        })
        .collect()
}

#[test]
fn filter_drops_what_does_not_match_with_a_drop_signal_each() {
    let sieve: Sl<(), (u64, u64, u64)> =
        StacklessTemplate::new("sieve", |cx: StacklessCtx<u64>, _: ()| {
            #[coroutine]
            move || {
                let first = filter!(cx, |m: &u64| m.is_multiple_of(2));
                let next = receive!(cx);
                // Then waiting: each non-matching arrival is dropped as it comes.
                let later = filter!(cx, |m: &u64| *m >= 100);
                (first, next, later)
            }
        });
    let mut sched = SimpleScheduler::new();
    sched.record();
    let h = sched.spawn(&sieve, ()).unwrap();
    for m in [1, 3, 5, 6, 7] {
        sched.send(h.pid(), m).unwrap();
    }
    sched.run_until_idle();
    assert_eq!(sched.inbox_len(h.pid()), Some(0));
    assert_eq!(
        drops_of(&sched.pull(), h.pid()),
        [
            (1, DropReason::Filtered),
            (3, DropReason::Filtered),
            (5, DropReason::Filtered)
        ]
    );
    sched.send(h.pid(), 8).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.inbox_len(h.pid()), Some(0), "dropped while waiting");
    assert_eq!(sched.status(h.pid()), Some(Status::Waiting(Wait::Message)));
    sched.send(h.pid(), 9).unwrap();
    sched.send(h.pid(), 100).unwrap();
    sched.send(h.pid(), 10).unwrap();
    sched.run_until_idle();
    let signals = sched.pull();
    assert_eq!(
        drops_of(&signals, h.pid()),
        [(8, DropReason::Filtered), (9, DropReason::Filtered)]
    );
    assert_eq!(sched.result(&h), Some(Ok((6, 7, 100))));
    assert_eq!(
        stop_exit(&signals, h.pid()),
        Ok(Value::encode(&(6u64, 7u64, 100u64)))
    );
}

// ---------------------------------------------------------------------------------
// Back-pressure.

/// Receives `n` messages, one per turn, and returns them.
fn slow_stackless_consumer(capacity: usize) -> Sl<usize, Vec<u64>> {
    StacklessTemplate::new("consumer", |cx: StacklessCtx<u64>, n: usize| {
        #[coroutine]
        move || {
            let mut got = Vec::new();
            for _ in 0..n {
                let m = receive!(cx);
                got.push(m);
                yield_now!();
            }
            got
        }
    })
    .capacity(capacity)
}

/// Sends `from..until` to `to`.
fn stackless_producer() -> Sl<(Pid, u64, u64), u64> {
    StacklessTemplate::new(
        "producer",
        |cx: StacklessCtx<u64>, (to, from, until): (Pid, u64, u64)| {
            #[coroutine]
            move || {
                for m in from..until {
                    send_to!(cx, to, m);
                }
                until - from
            }
        },
    )
}

/// Runs passes until idle, checking that `pid`'s inbox never exceeds `cap`;
/// returns the signals recorded.
fn run_bounded(sched: &mut SimpleScheduler<u64>, pid: Pid, cap: usize) -> Vec<Signal<u64>> {
    let mut signals = sched.pull();
    let mut passes = 0;
    loop {
        let pass = sched.update();
        signals.extend(sched.pull());
        if let Some(len) = sched.inbox_len(pid) {
            assert!(len <= cap, "inbox length {len} exceeds its capacity {cap}");
        }
        if pass.is_idle() {
            return signals;
        }
        passes += 1;
        assert!(passes < 10_000, "runaway");
    }
}

#[test]
#[cfg_attr(miri, ignore = "stackful processes too: Miri cannot switch stacks")]
fn a_stackless_sender_to_a_full_inbox_backs_off_and_nothing_is_lost() {
    const CAP: usize = 3;
    const N: u64 = 50;
    let consumer = Template::new("consumer", |ctx: &mut Ctx<u64>, n: usize| {
        let mut got = Vec::new();
        for _ in 0..n {
            got.push(ctx.receive());
            ctx.yield_now();
        }
        got
    })
    .capacity(CAP);
    let mut sched = SimpleScheduler::new();
    sched.record();
    let c = sched.spawn(&consumer, N as usize).unwrap();
    let p = sched.spawn(&stackless_producer(), (c.pid(), 0, N)).unwrap();
    assert_eq!(sched.update().ran, 2);
    assert_eq!(sched.inbox_len(c.pid()), Some(CAP));
    assert_eq!(
        sched.status(p.pid()),
        Some(Status::Waiting(Wait::Room(c.pid())))
    );
    let signals = run_bounded(&mut sched, c.pid(), CAP);

    assert_eq!(sched.result(&c), Some(Ok((0..N).collect::<Vec<_>>())));
    assert_eq!(sched.result(&p), Some(Ok(N)));
    assert!(sched.take_undelivered().is_empty());
    let backoffs: Vec<&Signal<u64>> = signals
        .iter()
        .filter(|s| matches!(s.data, SignalData::Backoff { .. }))
        .collect();
    assert!(!backoffs.is_empty(), "the producer had to wait");
    for b in &backoffs {
        assert_eq!(b.pid, p.pid());
        assert_eq!(b.data, SignalData::Backoff { to: c.pid() });
    }
    let sends: Vec<u64> = signals
        .iter()
        .filter_map(|s| match &s.data {
            SignalData::Send { to, msg } if s.pid == p.pid() => {
                assert_eq!(*to, Some(c.pid()));
                Some(*msg)
            }
            _ => None,
        })
        .collect();
    assert_eq!(sends, (0..N).collect::<Vec<_>>(), "one SEND per delivery");
}

#[test]
#[cfg_attr(miri, ignore = "stackful processes too: Miri cannot switch stacks")]
fn stackless_and_stackful_senders_to_a_small_stackless_inbox_lose_nothing() {
    const CAP: usize = 2;
    let stackful_producer = Template::new(
        "stackful-producer",
        |ctx: &mut Ctx<u64>, (to, from, until): (Pid, u64, u64)| {
            for m in from..until {
                ctx.send_to(to, m);
            }
        },
    );
    let mut sched = SimpleScheduler::new();
    sched.record();
    let c = sched.spawn(&slow_stackless_consumer(CAP), 120).unwrap();
    let a = sched
        .spawn(&stackless_producer(), (c.pid(), 0, 40))
        .unwrap();
    let b = sched
        .spawn(&stackful_producer, (c.pid(), 1000, 1040))
        .unwrap();
    let d = sched
        .spawn(&stackless_producer(), (c.pid(), 2000, 2040))
        .unwrap();
    let signals = run_bounded(&mut sched, c.pid(), CAP);
    let got = sched.result(&c).unwrap().unwrap();
    assert_eq!(got.len(), 120);
    for k in 0..3u64 {
        let from_k: Vec<u64> = got.iter().copied().filter(|m| m / 1000 == k).collect();
        assert_eq!(from_k, (k * 1000..k * 1000 + 40).collect::<Vec<_>>());
    }
    assert_eq!(sched.result(&a), Some(Ok(40)));
    assert_eq!(sched.result(&b), Some(Ok(())));
    assert_eq!(sched.result(&d), Some(Ok(40)));
    for sender in [a.pid(), b.pid(), d.pid()] {
        assert!(
            signals
                .iter()
                .any(|s| s.pid == sender && s.data == SignalData::Backoff { to: c.pid() }),
            "{sender} backed off"
        );
    }
}

#[test]
fn a_stackless_send_to_its_own_full_inbox_is_kept_not_waited_on() {
    let selfish: Sl<(), Vec<u64>> =
        StacklessTemplate::new("selfish", |cx: StacklessCtx<u64>, _: ()| {
            #[coroutine]
            move || {
                for m in 0..3 {
                    send_to!(cx, cx.pid(), m);
                }
                let mut got = Vec::new();
                while let Some(m) = cx.try_receive() {
                    got.push(m);
                }
                got
            }
        })
        .capacity(2);
    let mut sched = SimpleScheduler::new();
    let h = sched.spawn(&selfish, ()).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&h), Some(Ok(vec![0, 1])));
    let kept = sched.take_undelivered();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].reason, UndeliveredReason::WouldDeadlock);
    assert_eq!(kept[0].msg, 2);
}

// ---------------------------------------------------------------------------------
// The budget and yield_now!.

#[test]
fn a_stackless_receiver_is_cut_at_its_budget() {
    const BUDGET: u32 = 3;
    let mut sched = SimpleScheduler::new();
    sched.set_budget(BUDGET);
    let h = sched.spawn(&collect(), 10).unwrap();
    for m in 0..10 {
        sched.send(h.pid(), m).unwrap();
    }
    let mut left = Vec::new();
    while sched.status(h.pid()) != Some(Status::Stopped) {
        let _ = sched.update();
        left.push(sched.inbox_len(h.pid()));
        assert!(left.len() < 20, "runaway");
    }
    // Three receives a turn; the tenth ends it (and frees it).
    assert_eq!(left, [Some(7), Some(4), Some(1), None]);
    assert_eq!(sched.result(&h), Some(Ok((0..10).collect::<Vec<_>>())));
}

#[test]
#[cfg_attr(miri, ignore = "stackful processes too: Miri cannot switch stacks")]
fn a_stackless_process_receiving_a_flood_forever_does_not_starve_others() {
    const BUDGET: u32 = 5;
    let taken = Arc::new(AtomicU64::new(0));
    let t = taken.clone();
    let glutton: Sl<(), ()> = StacklessTemplate::new("glutton", move |cx: StacklessCtx<u64>, _| {
        let taken = t.clone();
        #[coroutine]
        move || {
            loop {
                let m = receive!(cx);
                // In order, none lost.
                assert_eq!(m, taken.fetch_add(1, Ordering::SeqCst));
            }
        }
    });
    let flooder: Sl<Pid, ()> = StacklessTemplate::new("flooder", |cx: StacklessCtx<u64>, to| {
        #[coroutine]
        move || {
            let mut m = 0;
            loop {
                send_to!(cx, to, m);
                m += 1;
            }
        }
    });
    let bystander = Template::new("bystander", |ctx: &mut Ctx<u64>, _: ()| ctx.receive());

    let mut sched = SimpleScheduler::new();
    sched.set_budget(BUDGET);
    let g = sched.spawn(&glutton, ()).unwrap();
    let f = sched.spawn(&flooder, g.pid()).unwrap();
    // Let the flood get going: from now on both are always runnable.
    for _ in 0..10 {
        let before = taken.load(Ordering::SeqCst);
        let pass = sched.update();
        let after = taken.load(Ordering::SeqCst);
        assert!(after - before <= u64::from(BUDGET), "more than a budget");
        assert!(pass.ran >= 1);
    }
    assert_eq!(sched.status(g.pid()), Some(Status::Ready));
    assert_eq!(sched.status(f.pid()), Some(Status::Ready));

    for round in 0..3 {
        let b = sched.spawn(&bystander, ()).unwrap();
        sched.send(b.pid(), round).unwrap();
        let before = taken.load(Ordering::SeqCst);
        let pass = sched.update();
        assert_eq!(pass.ran, 3, "the glutton, the flooder and the bystander");
        assert_eq!(sched.result(&b), Some(Ok(round)), "ran within the pass");
        assert!(taken.load(Ordering::SeqCst) > before, "the glutton goes on");
    }
    assert_eq!(sched.status(g.pid()), Some(Status::Ready));
}

#[test]
fn a_stackless_process_feeding_itself_forever_is_paused_by_the_budget() {
    let spins = Arc::new(AtomicU64::new(0));
    let s = spins.clone();
    let spinner: Sl<(), ()> = StacklessTemplate::new("spinner", move |cx: StacklessCtx<u64>, _| {
        let spins = s.clone();
        #[coroutine]
        move || {
            loop {
                send_to!(cx, cx.pid(), 1);
                let _ = receive!(cx);
                spins.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    let mut sched = SimpleScheduler::new();
    let sp = sched.spawn(&spinner, ()).unwrap();
    let w = sched.spawn(&collect(), 2).unwrap();
    sched.send(w.pid(), 1).unwrap();
    sched.send(w.pid(), 2).unwrap();
    let pass = sched.update();
    assert_eq!(pass.ran, 2);
    assert_eq!(sched.result(&w), Some(Ok(vec![1, 2])));
    let first = spins.load(Ordering::SeqCst);
    assert!(first > 0 && first <= u64::from(chronoflow::DEFAULT_BUDGET));
    assert_eq!(sched.status(sp.pid()), Some(Status::Ready));
    let _ = sched.update();
    assert!(spins.load(Ordering::SeqCst) > first);
}

#[test]
fn yield_now_gives_the_turn_to_the_others() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    let taker: Sl<&'static str, u32> =
        StacklessTemplate::new("taker", move |_cx: StacklessCtx<u64>, name| {
            let log = l.clone();
            #[coroutine]
            move || {
                for i in 0..3 {
                    log.lock().unwrap().push(format!("{name}{i}"));
                    yield_now!();
                }
                3
            }
        });
    let mut sched = SimpleScheduler::new();
    let a = sched.spawn(&taker, "a").unwrap();
    let b = sched.spawn(&taker, "b").unwrap();
    // One step each per pass.
    assert_eq!(sched.update().ran, 2);
    assert_eq!(*log.lock().unwrap(), ["a0", "b0"]);
    assert_eq!(sched.status(a.pid()), Some(Status::Ready));
    sched.run_until_idle();
    assert_eq!(*log.lock().unwrap(), ["a0", "b0", "a1", "b1", "a2", "b2"]);
    assert_eq!(sched.result(&a), Some(Ok(3)));
    assert_eq!(sched.result(&b), Some(Ok(3)));
}

// ---------------------------------------------------------------------------------
// Timers.

const START: Time = Time(1_000_000_000_000);

#[test]
fn sleep_follows_the_manual_clock() {
    let clock = ManualClock::new(START);
    let sleeper: Sl<(), (Duration, Option<u64>)> =
        StacklessTemplate::new("sleeper", |cx: StacklessCtx<u64>, _: ()| {
            #[coroutine]
            move || {
                let before = cx.now();
                sleep!(cx, Duration::from_secs(60));
                let slept = cx.now().since(before);
                (slept, cx.try_receive())
            }
        });
    let mut sched = SimpleScheduler::new();
    sched.set_clock(clock.clone());
    let h = sched.spawn(&sleeper, ()).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.status(h.pid()), Some(Status::Waiting(Wait::Timer)));
    assert_eq!(sched.next_deadline(), Some(START + Duration::from_secs(60)));

    // A message does not cut the sleep short.
    sched.send(h.pid(), 5).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.status(h.pid()), Some(Status::Waiting(Wait::Timer)));
    clock.advance(Duration::from_secs(59));
    sched.run_until_idle();
    assert_eq!(
        sched.status(h.pid()),
        Some(Status::Waiting(Wait::Timer)),
        "not before the deadline"
    );
    clock.advance(Duration::from_secs(1));
    sched.run_until_idle();
    assert_eq!(
        sched.result(&h),
        Some(Ok((Duration::from_secs(60), Some(5))))
    );
    assert_eq!(sched.next_deadline(), None);
}

#[test]
fn sleeps_in_a_row_each_wait_their_own_duration() {
    let clock = ManualClock::new(START);
    let sleeper: Sl<(), Vec<Time>> =
        StacklessTemplate::new("sleeper", |cx: StacklessCtx<u64>, _: ()| {
            #[coroutine]
            move || {
                let mut woke = Vec::new();
                for secs in [10, 0, 5] {
                    sleep!(cx, Duration::from_secs(secs));
                    woke.push(cx.now());
                }
                woke
            }
        });
    let mut sched = SimpleScheduler::new();
    sched.set_clock(clock.clone());
    let h = sched.spawn(&sleeper, ()).unwrap();
    sched.run_until_idle();
    clock.advance(Duration::from_secs(10));
    // The 10 s sleep ends and the 0 s one with it (due at once), then the 5 s one
    // waits.
    sched.run_until_idle();
    assert_eq!(sched.status(h.pid()), Some(Status::Waiting(Wait::Timer)));
    assert_eq!(sched.next_deadline(), Some(START + Duration::from_secs(15)));
    clock.advance(Duration::from_secs(4));
    sched.run_until_idle();
    assert_eq!(sched.status(h.pid()), Some(Status::Waiting(Wait::Timer)));
    clock.advance(Duration::from_secs(1));
    sched.run_until_idle();
    let s = |n| START + Duration::from_secs(n);
    assert_eq!(sched.result(&h), Some(Ok(vec![s(10), s(10), s(15)])));
}

// ---------------------------------------------------------------------------------
// Children.

#[test]
#[cfg_attr(miri, ignore = "stackful processes too: Miri cannot switch stacks")]
fn a_stackless_parent_spawns_and_joins_stackful_and_stackless_children() {
    let stackful_child = Template::new("stackful-child", |ctx: &mut Ctx<u64>, k: u64| {
        (ctx.parent(), ctx.receive() * k)
    });
    let stackless_child: Sl<u64, (Option<Pid>, u64)> =
        StacklessTemplate::new("stackless-child", |cx: StacklessCtx<u64>, k: u64| {
            #[coroutine]
            move || {
                let m = receive!(cx);
                (cx.parent(), m + k)
            }
        });
    let parent = StacklessTemplate::new("parent", move |cx: StacklessCtx<u64>, _: ()| {
        let (stackful_child, stackless_child) = (stackful_child.clone(), stackless_child.clone());
        #[coroutine]
        move || {
            let a = cx.spawn(&stackful_child, 3).unwrap();
            let b = cx.spawn(&stackless_child, 100).unwrap();
            assert_ne!(a.pid(), b.pid());
            let mine = receive!(cx);
            let ra = join!(cx, a);
            let rb = join!(cx, b);
            (cx.parent(), mine, ra.unwrap(), rb.unwrap())
        }
    });
    let mut sched = SimpleScheduler::new();
    sched.record();
    let h = sched.spawn(&parent, ()).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.live(), 3);
    // The children receive copies of what their parent receives.
    sched.send(h.pid(), 5).unwrap();
    sched.run_until_idle();
    let me = Some(h.pid());
    assert_eq!(
        sched.result(&h),
        Some(Ok((None, 5, (me, 15), (me, 105)))),
        "each child got a copy of 5"
    );
    assert_eq!(sched.live(), 0, "joined children are reaped");

    let signals = sched.pull();
    let (kid_a, kid_b) = (Pid(1), Pid(2));
    let of_parent: Vec<&SignalData<u64>> = signals
        .iter()
        .filter(|s| s.pid == h.pid())
        .map(|s| &s.data)
        .collect();
    assert_eq!(
        of_parent[..5],
        [
            &SignalData::Start,
            &SignalData::Spawn { child: kid_a },
            &SignalData::Spawn { child: kid_b },
            &SignalData::Join { child: kid_a },
            &SignalData::Join { child: kid_b },
        ]
    );
    for kid in [kid_a, kid_b] {
        let spawn = signals
            .iter()
            .position(|s| s.pid == h.pid() && s.data == SignalData::Spawn { child: kid })
            .unwrap();
        assert_eq!(signals[spawn + 1].pid, kid);
        assert_eq!(signals[spawn + 1].data, SignalData::Start);
    }
}

#[test]
#[cfg_attr(miri, ignore = "stackful processes too: Miri cannot switch stacks")]
fn a_stackless_child_gets_the_unconsumed_inbox_of_a_stackful_parent() {
    let parent = Template::new("parent", |ctx: &mut Ctx<u64>, _: ()| {
        // 1 and 2 arrive before 0, and stay in the inbox.
        ctx.select(|m| *m == 0);
        let c = ctx.spawn(&collect(), 3).unwrap();
        let mine: Vec<u64> = (0..3).map(|_| ctx.receive()).collect();
        (mine, ctx.join(c).unwrap())
    });
    let mut sched = SimpleScheduler::new();
    let h = sched.spawn(&parent, ()).unwrap();
    for m in [1, 2, 0] {
        sched.send(h.pid(), m).unwrap();
    }
    sched.run_until_idle();
    sched.send(h.pid(), 3).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&h), Some(Ok((vec![1, 2, 3], vec![1, 2, 3]))));
}

#[test]
fn a_stackless_parent_joining_a_failed_child_gets_its_failure() {
    let fragile: Sl<(), u64> = StacklessTemplate::new("fragile", |cx: StacklessCtx<u64>, _: ()| {
        #[coroutine]
        move || {
            let m = receive!(cx);
            assert!(m < 10, "too big: {m}");
            m
        }
    });
    let parent = StacklessTemplate::new("parent", move |cx: StacklessCtx<u64>, _: ()| {
        let fragile = fragile.clone();
        #[coroutine]
        move || {
            let c = cx.spawn(&fragile, ()).unwrap();
            let joined = join!(cx, c);
            // A second join of the same child: not a child any more.
            let again = join!(cx, c);
            (joined, again)
        }
    });
    let mut sched = SimpleScheduler::new();
    let h = sched.spawn(&parent, ()).unwrap();
    sched.run_until_idle();
    sched.send(h.pid(), 11).unwrap();
    sched.run_until_idle();
    match sched.result(&h) {
        Some(Ok((Err(JoinError::Exited(ExitError::Failed(msg))), again))) => {
            assert!(msg.contains("too big: 11"), "{msg}");
            assert_eq!(again, Err(JoinError::NotAChild(Pid(1))));
        }
        other => panic!("expected the child's failure, got {other:?}"),
    }
}

#[test]
#[cfg_attr(miri, ignore = "stackful processes too: Miri cannot switch stacks")]
fn a_stackless_parent_returning_with_unjoined_children_fails_and_kills_them() {
    let drops = Arc::new(AtomicUsize::new(0));
    let stuck_stackless = stuck_with("stuck-stackless");
    let stuck_stackful = Template::new("stuck-stackful", |ctx: &mut Ctx<u64>, g: Guard| {
        let _g = g;
        ctx.select(|_| false)
    });
    let d = drops.clone();
    let parent = StacklessTemplate::new("parent", move |cx: StacklessCtx<u64>, _: ()| {
        let (a, b, d) = (stuck_stackless.clone(), stuck_stackful.clone(), d.clone());
        #[coroutine]
        move || {
            let _a = cx.spawn(&a, Guard(d.clone())).unwrap();
            let _b = cx.spawn(&b, Guard(d.clone())).unwrap();
            receive!(cx)
        }
    });
    let mut sched = SimpleScheduler::new();
    sched.record();
    let h = sched.spawn(&parent, ()).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.live(), 3);
    assert_eq!(drops.load(Ordering::SeqCst), 0);

    sched.send(h.pid(), 1).unwrap();
    sched.run_until_idle();
    let msg = failure(sched.result(&h));
    assert!(msg.contains("unjoined"), "{msg}");
    assert!(msg.contains("<1>") && msg.contains("<2>"), "{msg}");
    assert_eq!(sched.live(), 0, "the children were stopped and freed");
    assert_eq!(
        drops.load(Ordering::SeqCst),
        2,
        "both children were unwound"
    );
    let signals = sched.pull();
    for kid in [Pid(1), Pid(2)] {
        assert_eq!(
            stop_exit(&signals, kid),
            Err(ExitError::Killed(format!("parent {} ended", h.pid())))
        );
    }
    assert!(
        matches!(stop_exit(&signals, h.pid()), Err(ExitError::Failed(m)) if m.contains("unjoined"))
    );
}

// ---------------------------------------------------------------------------------
// Failures.

#[test]
#[cfg_attr(miri, ignore = "stackful processes too: Miri cannot switch stacks")]
fn a_stackless_panic_fails_that_process_alone() {
    let drops = Arc::new(AtomicUsize::new(0));
    let bomb: Sl<Guard, u64> = StacklessTemplate::new("bomb", |cx: StacklessCtx<u64>, g: Guard| {
        #[coroutine]
        move || {
            let _g = g;
            loop {
                let m = receive!(cx);
                if m == 13 {
                    panic!("boom on {m}");
                }
            }
        }
    });
    let stackless_sum: Sl<usize, u64> =
        StacklessTemplate::new("stackless-sum", |cx: StacklessCtx<u64>, n: usize| {
            #[coroutine]
            move || {
                let mut sum = 0;
                for _ in 0..n {
                    sum += receive!(cx);
                }
                sum
            }
        });
    let stackful_sum = Template::new("stackful-sum", |ctx: &mut Ctx<u64>, n: usize| {
        (0..n).map(|_| ctx.receive()).sum::<u64>()
    });
    let mut sched = SimpleScheduler::new();
    sched.record();
    let a = sched.spawn(&stackless_sum, 2).unwrap();
    let b1 = sched.spawn(&bomb, Guard(drops.clone())).unwrap();
    let c = sched.spawn(&stackless_sum, 2).unwrap();
    let b2 = sched.spawn(&bomb, Guard(drops.clone())).unwrap();
    let d = sched.spawn(&stackful_sum, 2).unwrap();
    for (to, msgs) in [
        (a.pid(), [1, 2]),
        (b1.pid(), [1, 13]),
        (c.pid(), [3, 4]),
        (b2.pid(), [13, 1]),
        (d.pid(), [5, 6]),
    ] {
        for m in msgs {
            sched.send(to, m).unwrap();
        }
    }
    // One pass: both bombs fail, and every process after them still runs in it.
    let pass = sched.update();
    assert!(!pass.is_idle());
    let msg = failure(sched.result(&b1));
    assert_eq!(msg, "boom on 13");
    assert_eq!(failure(sched.result(&b2)), "boom on 13");
    assert_eq!(sched.result(&a), Some(Ok(3)));
    assert_eq!(sched.result(&c), Some(Ok(7)));
    assert_eq!(sched.result(&d), Some(Ok(11)));
    assert_eq!(drops.load(Ordering::SeqCst), 2, "the bombs' locals dropped");
    let signals = sched.pull();
    assert_eq!(
        stop_exit(&signals, b1.pid()),
        Err(ExitError::Failed("boom on 13".into()))
    );
    assert_eq!(sched.live(), 0);
    assert_eq!(
        sched.send(b1.pid(), 1),
        Err(chronoflow::SendError::UnknownPid(b1.pid(), 1))
    );

    // Later passes and new processes go on, with run_until_idle too.
    let e = sched.spawn(&stackless_sum, 1).unwrap();
    let b3 = sched.spawn(&bomb, Guard(drops.clone())).unwrap();
    let f = sched.spawn(&stackless_sum, 1).unwrap();
    sched.send(b3.pid(), 13).unwrap();
    sched.run_until_idle();
    sched.send(e.pid(), 8).unwrap();
    sched.send(f.pid(), 9).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&e), Some(Ok(8)));
    assert_eq!(sched.result(&f), Some(Ok(9)));
    assert_eq!(failure(sched.result(&b3)), "boom on 13");
}

#[test]
fn a_stackless_turn_that_panics_counts_once() {
    let bomb: Sl<(), u64> = StacklessTemplate::new("bomb", |cx: StacklessCtx<u64>, _: ()| {
        #[coroutine]
        move || -> u64 {
            let m = receive!(cx);
            panic!("boom on {m}")
        }
    });
    let mut sched = SimpleScheduler::new();
    let b = sched.spawn(&bomb, ()).unwrap();
    let c = sched.spawn(&collect(), 1).unwrap();
    assert_eq!(sched.update().ran, 2, "two turns: both wait");
    sched.send(b.pid(), 1).unwrap();
    sched.send(c.pid(), 2).unwrap();
    assert_eq!(sched.update().ran, 2, "two turns: one panics, one returns");
    assert_eq!(failure(sched.result(&b)), "boom on 1");
    assert_eq!(sched.result(&c), Some(Ok(vec![2])));

    let b = sched.spawn(&bomb, ()).unwrap();
    sched.send(b.pid(), 3).unwrap();
    assert_eq!(sched.run_until_idle(), 1, "one turn, which panics");
    assert_eq!(failure(sched.result(&b)), "boom on 3");
}

#[test]
fn a_stackless_panic_before_its_first_wait_keeps_its_message() {
    let static_msg: Sl<(), u64> = StacklessTemplate::new("static", |_cx: StacklessCtx<u64>, _| {
        #[coroutine]
        move || -> u64 {
            if true {
                panic!("a static message");
            }
            yield_now!();
            0
        }
    });
    let odd: Sl<(), u64> = StacklessTemplate::new("odd", |_cx: StacklessCtx<u64>, _| {
        #[coroutine]
        move || -> u64 {
            if true {
                std::panic::panic_any(42u32);
            }
            yield_now!();
            0
        }
    });
    let mut sched = SimpleScheduler::new();
    let s = sched.spawn(&static_msg, ()).unwrap();
    let o = sched.spawn(&odd, ()).unwrap();
    let ok = sched.spawn(&collect(), 0).unwrap();
    sched.run_until_idle();
    assert_eq!(
        sched.result(&s),
        Some(Err(ExitError::Failed("a static message".to_string())))
    );
    assert!(matches!(sched.result(&o), Some(Err(ExitError::Failed(_)))));
    assert_eq!(sched.result(&ok), Some(Ok(vec![])));
}

#[test]
fn a_panicking_stackless_parent_takes_its_children_down() {
    let drops = Arc::new(AtomicUsize::new(0));
    let stuck = stuck_with("stuck");
    let d = drops.clone();
    let parent: Sl<(), u64> = StacklessTemplate::new("parent", move |cx: StacklessCtx<u64>, _| {
        let (stuck, d) = (stuck.clone(), d.clone());
        #[coroutine]
        move || -> u64 {
            let c = cx.spawn(&stuck, Guard(d)).unwrap();
            let m = receive!(cx);
            if m > 0 {
                panic!("parent down on {m}");
            }
            join!(cx, c).unwrap()
        }
    });
    let mut sched = SimpleScheduler::new();
    sched.record();
    let h = sched.spawn(&parent, ()).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.live(), 2);
    sched.send(h.pid(), 7).unwrap();
    sched.run_until_idle();
    assert_eq!(
        failure(sched.result(&h)),
        "parent down on 7",
        "the panic, not 'unjoined'"
    );
    assert_eq!(sched.live(), 0);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    assert_eq!(
        stop_exit(&sched.pull(), Pid(1)),
        Err(ExitError::Killed(format!("parent {} ended", h.pid())))
    );
}

#[test]
fn a_scheduler_run_inside_a_stackless_turn_leaves_the_outer_context_working() {
    let inner_bomb: Sl<(), u64> =
        StacklessTemplate::new("inner-bomb", |cx: StacklessCtx<u64>, _| {
            #[coroutine]
            move || -> u64 {
                let m = receive!(cx);
                panic!("inner boom on {m}")
            }
        });
    let outer: Sl<(), (String, Vec<u64>, u64)> =
        StacklessTemplate::new("outer", move |cx: StacklessCtx<u64>, _| {
            let inner_bomb = inner_bomb.clone();
            #[coroutine]
            move || {
                let first = receive!(cx);
                // A whole scheduler runs inside this turn; its process panics.
                let mut inner = SimpleScheduler::new();
                let b = inner.spawn(&inner_bomb, ()).unwrap();
                let c = inner.spawn(&collect(), 1).unwrap();
                inner.send(b.pid(), 1).unwrap();
                inner.send(c.pid(), 2).unwrap();
                inner.run_until_idle();
                let failed = failure(inner.result(&b));
                let collected = inner.result(&c).unwrap().unwrap();
                // This process's context still works in its own turn.
                let _ = cx.inbox_len();
                let second = receive!(cx);
                (failed, collected, first + second)
            }
        });
    let mut sched = SimpleScheduler::new();
    let h = sched.spawn(&outer, ()).unwrap();
    sched.send(h.pid(), 10).unwrap();
    sched.run_until_idle();
    sched.send(h.pid(), 20).unwrap();
    sched.run_until_idle();
    assert_eq!(
        sched.result(&h),
        Some(Ok(("inner boom on 1".to_string(), vec![2], 30)))
    );
}

// ---------------------------------------------------------------------------------
// The context works only in its own process's turn.

thread_local! {
    /// A context smuggled out of its process (tests run on threads of their own).
    static SMUGGLED: Cell<Option<StacklessCtx<u64>>> = const { Cell::new(None) };
}

fn smuggled() -> StacklessCtx<u64> {
    SMUGGLED.get().expect("a context was smuggled out")
}

/// Hides its context in `SMUGGLED`, then returns the first message it receives.
fn hider() -> Sl<(), u64> {
    StacklessTemplate::new("hider", |cx: StacklessCtx<u64>, _: ()| {
        #[coroutine]
        move || {
            SMUGGLED.set(Some(cx));
            receive!(cx)
        }
    })
}

#[test]
fn using_the_context_in_the_template_function_panics_the_spawn() {
    let early: Sl<(), Option<Pid>> = StacklessTemplate::new("early", |cx: StacklessCtx<u64>, _| {
        // Too early: the process is being created, not running.
        let parent = cx.parent();
        #[coroutine]
        move || {
            yield_now!();
            parent
        }
    });
    let mut sched = SimpleScheduler::new();
    let spawned = catch_unwind(AssertUnwindSafe(|| sched.spawn(&early, ())));
    let payload = spawned.expect_err("the spawn panics");
    let text = panic_text(&*payload);
    assert!(text.contains("outside that process's turn"), "{text}");
    assert_eq!(sched.live(), 0, "no half-made process is left");

    // The scheduler goes on.
    let h = sched.spawn(&collect(), 1).unwrap();
    sched.send(h.pid(), 4).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&h), Some(Ok(vec![4])));

    // The same mistake in a child's template fails the parent that spawns it.
    let parent = StacklessTemplate::new("parent", move |cx: StacklessCtx<u64>, _: ()| {
        let early = early.clone();
        #[coroutine]
        move || {
            let c = cx.spawn(&early, ()).unwrap();
            join!(cx, c).unwrap()
        }
    });
    let p = sched.spawn(&parent, ()).unwrap();
    sched.run_until_idle();
    let msg = failure(sched.result(&p));
    assert!(msg.contains("outside that process's turn"), "{msg}");
    assert_eq!(sched.live(), 0);
}

#[test]
#[cfg_attr(miri, ignore = "stackful processes too: Miri cannot switch stacks")]
fn a_context_smuggled_into_another_process_fails_that_process() {
    let hider = hider();
    let thief: Sl<(), usize> = StacklessTemplate::new("thief", |_cx: StacklessCtx<u64>, _: ()| {
        #[coroutine]
        move || {
            let stolen = smuggled();
            yield_now!();
            stolen.inbox_len()
        }
    });
    let stackful_thief = Template::new("stackful-thief", |_: &mut Ctx<u64>, _: ()| {
        let stolen = smuggled();
        let _ = stolen.try_send_to(stolen.pid(), 1);
    });
    let mut sched = SimpleScheduler::new();
    let h = sched.spawn(&hider, ()).unwrap();
    sched.run_until_idle();
    assert_eq!(smuggled().pid(), h.pid(), "pid works anywhere");

    let t = sched.spawn(&thief, ()).unwrap();
    let st = sched.spawn(&stackful_thief, ()).unwrap();
    sched.run_until_idle();
    for msg in [failure(sched.result(&t)), failure(sched.result(&st))] {
        assert!(msg.contains("outside that process's turn"), "{msg}");
        assert!(msg.contains(&h.pid().to_string()), "{msg}");
    }
    assert_eq!(
        sched.inbox_len(h.pid()),
        Some(0),
        "the stackful thief sent nothing"
    );

    // From the scheduler's owner, between passes.
    let outside = catch_unwind(AssertUnwindSafe(|| smuggled().inbox_len()));
    assert!(outside.is_err());

    // The owner of the context is unharmed.
    assert_eq!(sched.status(h.pid()), Some(Status::Waiting(Wait::Message)));
    sched.send(h.pid(), 42).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&h), Some(Ok(42)));
    // And its context, now that it ended, still refuses to work.
    assert!(catch_unwind(AssertUnwindSafe(|| smuggled().inbox_len())).is_err());
}

#[test]
fn a_context_used_in_another_scheduler_panics() {
    let hider = hider();
    let thief: Sl<(), usize> = StacklessTemplate::new("thief", |_cx: StacklessCtx<u64>, _: ()| {
        #[coroutine]
        move || smuggled().inbox_len()
    });
    let mut one = SimpleScheduler::new();
    let mut two = SimpleScheduler::new();
    let h = one.spawn(&hider, ()).unwrap();
    one.run_until_idle();
    let t = two.spawn(&thief, ()).unwrap();
    two.run_until_idle();
    assert!(failure(two.result(&t)).contains("outside"));
    one.send(h.pid(), 1).unwrap();
    one.run_until_idle();
    assert_eq!(one.result(&h), Some(Ok(1)));
}

/// Sends 99 to `.1` when dropped, through the context it holds.
struct Farewell(StacklessCtx<u64>, Pid);
impl Drop for Farewell {
    fn drop(&mut self) {
        let _ = self.0.try_send_to(self.1, 99);
    }
}

#[test]
#[cfg_attr(miri, ignore = "stackful processes too: Miri cannot switch stacks")]
fn a_killed_stackless_child_whose_drop_uses_its_context_does_not_break_the_scheduler() {
    let watcher = Template::new("watcher", |ctx: &mut Ctx<u64>, _: ()| ctx.receive());
    let child: Sl<Pid, u64> = StacklessTemplate::new("child", |cx: StacklessCtx<u64>, w: Pid| {
        #[coroutine]
        move || {
            let _farewell = Farewell(cx, w);
            select!(cx, |_: &u64| false)
        }
    });
    let parent: Sl<Pid, u64> =
        StacklessTemplate::new("parent", move |cx: StacklessCtx<u64>, w: Pid| {
            let child = child.clone();
            #[coroutine]
            move || {
                let _unjoined = cx.spawn(&child, w).unwrap();
                receive!(cx)
            }
        });
    let mut sched = SimpleScheduler::new();
    let w = sched.spawn(&watcher, ()).unwrap();
    let p = sched.spawn(&parent, w.pid()).unwrap();
    sched.run_until_idle();
    sched.send(p.pid(), 1).unwrap();
    // The parent returns with its child unjoined: the child is killed, and its
    // coroutine (with its locals) dropped.
    let run = catch_unwind(AssertUnwindSafe(|| sched.run_until_idle()));
    assert!(
        run.is_ok(),
        "run_until_idle panicked: {}",
        panic_text(&*run.unwrap_err())
    );
    assert!(failure(sched.result(&p)).contains("unjoined"));
    assert_eq!(sched.status(Pid(2)), None, "the child was killed and freed");
}

// ---------------------------------------------------------------------------------
// Durable schedulers.

fn lightweight() -> Sl<(), u64> {
    StacklessTemplate::new("lightweight", |cx: StacklessCtx<u64>, _: ()| {
        #[coroutine]
        move || receive!(cx)
    })
}

#[test]
#[cfg_attr(miri, ignore = "stackful processes too: Miri cannot switch stacks")]
fn a_durable_scheduler_refuses_stackless_processes() {
    let dir = tempfile::tempdir().unwrap();
    let light = lightweight();
    let spawner = Template::new("spawner", move |ctx: &mut Ctx<u64>, _: ()| {
        match ctx.spawn(&light, ()) {
            Err(SpawnError::NotDurable(name)) => name,
            other => format!("unexpected: {other:?}"),
        }
    });
    let (mut sched, _) = DurableScheduler::<u64>::builder()
        .register(&spawner)
        .open(dir.path())
        .unwrap();
    let h = sched.spawn(&spawner, ()).unwrap();
    sched.run_until_idle().unwrap();
    assert_eq!(sched.result(&h), Some(Ok("lightweight".to_string())));
    assert_eq!(sched.live(), 0);
    assert_eq!(
        sched.spawn(&spawner, ()).unwrap().pid(),
        Pid(1),
        "the refused spawn took no pid"
    );
}

#[test]
#[cfg_attr(miri, ignore = "stackful processes too: Miri cannot switch stacks")]
fn a_durable_process_that_was_refused_a_stackless_spawn_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let light = lightweight();
    let spawner = Template::new("spawner", move |ctx: &mut Ctx<u64>, _: ()| {
        let refused = matches!(ctx.spawn(&light, ()), Err(SpawnError::NotDurable(_)));
        let first = ctx.receive();
        let second = ctx.receive();
        (refused, first, second)
    });
    let open = || {
        DurableScheduler::<u64>::builder()
            .register(&spawner)
            .open(dir.path())
            .unwrap()
            .0
    };
    {
        let mut sched = open();
        let h = sched.spawn(&spawner, ()).unwrap();
        sched.run_until_idle().unwrap();
        sched.send(h.pid(), 1).unwrap();
        sched.run_until_idle().unwrap();
        assert_eq!(sched.status(h.pid()), Some(Status::Waiting(Wait::Message)));
    } // the crash
    let mut sched = open();
    sched.run_until_idle().unwrap();
    assert!(sched.violations().is_empty(), "{:?}", sched.violations());
    assert_eq!(sched.status(Pid(0)), Some(Status::Waiting(Wait::Message)));
    sched.send(Pid(0), 2).unwrap();
    sched.run_until_idle().unwrap();
    assert_eq!(
        sched.result_of::<(bool, u64, u64)>(Pid(0)),
        Some(Ok((true, 1, 2)))
    );
}

// ---------------------------------------------------------------------------------
// Dropping a scheduler.

#[test]
fn dropping_a_scheduler_drops_every_suspended_stackless_process() {
    let drops = Arc::new(AtomicUsize::new(0));
    let guard = || Guard(drops.clone());
    let mut sched = SimpleScheduler::new();
    let mut guards = 0;

    // Waiting for a message.
    let receiver: Sl<Guard, u64> =
        StacklessTemplate::new("receiver", |cx: StacklessCtx<u64>, g: Guard| {
            #[coroutine]
            move || {
                let _g = g;
                receive!(cx)
            }
        });
    let r = sched.spawn(&receiver, guard()).unwrap();
    guards += 1;

    // Sleeping (on the system clock, for an hour).
    let sleeper: Sl<Guard, ()> =
        StacklessTemplate::new("sleeper", |cx: StacklessCtx<u64>, g: Guard| {
            #[coroutine]
            move || {
                let _g = g;
                sleep!(cx, Duration::from_secs(3600));
            }
        });
    let sl = sched.spawn(&sleeper, guard()).unwrap();
    guards += 1;

    // Waiting to join a child that waits for a message.
    let child = receiver.clone();
    let d = drops.clone();
    let parent: Sl<Guard, u64> =
        StacklessTemplate::new("parent", move |cx: StacklessCtx<u64>, g: Guard| {
            let (child, d) = (child.clone(), d.clone());
            #[coroutine]
            move || {
                let _g = g;
                let c = cx.spawn(&child, Guard(d)).unwrap();
                join!(cx, c).unwrap()
            }
        });
    let p = sched.spawn(&parent, guard()).unwrap();
    guards += 2;

    // Waiting for room in a full inbox whose owner never takes a message.
    let hoarder = stuck_with("hoarder").capacity(1);
    let h = sched.spawn(&hoarder, guard()).unwrap();
    let target = h.pid();
    let sender: Sl<Guard, ()> =
        StacklessTemplate::new("sender", move |cx: StacklessCtx<u64>, g: Guard| {
            #[coroutine]
            move || {
                let _g = g;
                send_to!(cx, target, 1);
                send_to!(cx, target, 2);
            }
        });
    let s = sched.spawn(&sender, guard()).unwrap();
    guards += 2;

    // Runnable: it gave up its turn.
    let spinner: Sl<Guard, ()> =
        StacklessTemplate::new("spinner", |_cx: StacklessCtx<u64>, g: Guard| {
            #[coroutine]
            move || {
                let _g = g;
                loop {
                    yield_now!();
                }
            }
        });
    let sp = sched.spawn(&spinner, guard()).unwrap();
    guards += 1;

    // Created, never started: the coroutine holds its arguments.
    let created = sched.create(&receiver, guard()).unwrap();
    guards += 1;

    let _ = sched.update();
    let _ = sched.update();

    // Started after the last pass: never resumed.
    let fresh = sched.spawn(&receiver, guard()).unwrap();
    guards += 1;

    assert_eq!(sched.status(r.pid()), Some(Status::Waiting(Wait::Message)));
    assert_eq!(sched.status(sl.pid()), Some(Status::Waiting(Wait::Timer)));
    assert!(matches!(
        sched.status(p.pid()),
        Some(Status::Waiting(Wait::Join(_)))
    ));
    assert_eq!(
        sched.status(s.pid()),
        Some(Status::Waiting(Wait::Room(h.pid())))
    );
    assert_eq!(sched.status(sp.pid()), Some(Status::Ready));
    assert_eq!(sched.status(created.pid()), Some(Status::Created));
    assert_eq!(sched.status(fresh.pid()), Some(Status::Ready));
    assert_eq!(sched.live(), 9);
    assert_eq!(drops.load(Ordering::SeqCst), 0);

    drop(sched);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        guards,
        "every stackless coroutine's locals (and an unstarted one's captures) dropped"
    );
}

// ---------------------------------------------------------------------------------
// Many processes.

#[test]
fn a_hundred_thousand_idle_stackless_processes() {
    // (Under Miri, which runs some thousand times slower, a hundred.)
    const N: u64 = if cfg!(miri) { 100 } else { 100_000 };
    let idle: Sl<u64, u64> = StacklessTemplate::new("idle", |cx: StacklessCtx<u64>, k: u64| {
        #[coroutine]
        move || receive!(cx) + k
    });
    let mut sched = SimpleScheduler::new();
    let handles: Vec<_> = (0..N).map(|k| sched.spawn(&idle, k).unwrap()).collect();
    assert_eq!(sched.live(), N as usize);
    assert_eq!(sched.run_until_idle(), N as usize, "one turn each");
    assert_eq!(sched.live(), N as usize, "all alive and waiting");
    let last = handles[handles.len() - 1].pid();
    assert_eq!(sched.status(last), Some(Status::Waiting(Wait::Message)));

    for h in &handles {
        sched.send(h.pid(), 1).unwrap();
    }
    assert_eq!(sched.run_until_idle(), N as usize);
    assert_eq!(sched.live(), 0, "all ended");
    for (k, h) in (0..N).zip(handles) {
        assert_eq!(sched.result(&h), Some(Ok(k + 1)));
    }
}
