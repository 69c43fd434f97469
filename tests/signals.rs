//! Signals: opt-in recording, sinks, serde round trips, signal kinds, stopping.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::rc::Rc;

use chronoflow::{
    Ctx, DropReason, ExitError, Overflow, Pid, Signal, SignalData, SignalKind, SimpleScheduler,
    Step, Template, Transition, Value,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Msg {
    Ping(u32),
    Text(String),
}

/// Two processes: a pong that answers pings and a ping that sends `n` and counts
/// the answers.
fn ping_pong(sched: &mut SimpleScheduler<Msg>, n: u32) -> (Pid, Pid) {
    let pong = Template::new("pong", |ctx: &mut Ctx<Msg>, peer: u64| {
        loop {
            match ctx.receive() {
                Msg::Ping(k) => ctx.send_to(Pid(peer), Msg::Ping(k + 1)),
                Msg::Text(t) => return t,
            }
        }
    });
    let ping = Template::new("ping", move |ctx: &mut Ctx<Msg>, peer: u64| {
        let mut sum = 0;
        for k in 0..n {
            ctx.send_to(Pid(peer), Msg::Ping(k * 10));
            if let Msg::Ping(r) = ctx.receive() {
                sum += r;
            }
        }
        ctx.send_to(Pid(peer), Msg::Text("done".into()));
        sum
    });
    // pids 0 and 1, in this order.
    let a = sched.spawn(&pong, 1).unwrap().pid();
    let b = sched.spawn(&ping, 0).unwrap().pid();
    (a, b)
}

#[test]
fn recording_is_opt_in() {
    let mut sched = SimpleScheduler::new();
    ping_pong(&mut sched, 3);
    sched.run_until_idle();
    assert!(sched.pull().is_empty(), "nothing is recorded by default");

    let mut sched = SimpleScheduler::new();
    sched.record();
    ping_pong(&mut sched, 3);
    sched.run_until_idle();
    let signals = sched.pull();
    // Per process: START, 3 SEND (+1 Text for ping), STOP.
    assert_eq!(signals.len(), 2 * 5 + 1);
    assert!(sched.pull().is_empty(), "pull drains");
}

#[test]
fn recording_can_start_late() {
    let mut sched = SimpleScheduler::new();
    let (pong, _) = ping_pong(&mut sched, 2);
    let _ = sched.update(); // pong: START unrecorded, waits
    sched.record();
    sched.run_until_idle();
    let signals = sched.pull();
    assert!(
        !signals
            .iter()
            .any(|s| s.pid == pong && s.data == SignalData::Start)
    );
    assert!(
        signals
            .iter()
            .any(|s| s.pid == pong && matches!(s.data, SignalData::Stop { .. }))
    );
}

#[test]
fn signals_are_in_emission_order_with_per_process_sequences() {
    let mut sched = SimpleScheduler::new();
    sched.record();
    let (pong, ping) = ping_pong(&mut sched, 2);
    sched.run_until_idle();
    let signals = sched.pull();
    assert_eq!((pong, ping), (Pid(0), Pid(1)));
    let send = |to: u64, msg: Msg| SignalData::Send {
        to: Some(Pid(to)),
        msg,
    };
    let stop = |v: Value| SignalData::Stop { exit: Ok(v) };
    let expected: Vec<Signal<Msg>> = [
        (0, 0, SignalData::Start),
        (1, 0, SignalData::Start),
        (1, 1, send(0, Msg::Ping(0))),
        (0, 1, send(1, Msg::Ping(1))),
        (1, 2, send(0, Msg::Ping(10))),
        (0, 2, send(1, Msg::Ping(11))),
        (1, 3, send(0, Msg::Text("done".into()))),
        (1, 4, stop(Value::encode(&12u32))),
        (0, 3, stop(Value::encode(&"done".to_string()))),
    ]
    .into_iter()
    .map(|(pid, seq, data)| Signal {
        pid: Pid(pid),
        seq,
        replayed: false,
        data,
    })
    .collect();
    assert_eq!(signals, expected);
    // Display names pid, sequence number and kind.
    assert!(signals[2].to_string().starts_with("<1> #1 SEND"));
}

#[test]
fn a_sink_gets_every_signal_in_emission_order() {
    let mut recorded = SimpleScheduler::new();
    recorded.record();
    ping_pong(&mut recorded, 4);
    recorded.run_until_idle();
    let expected = recorded.pull();
    assert!(!expected.is_empty());

    let got: Rc<RefCell<Vec<Signal<Msg>>>> = Rc::default();
    let g = got.clone();
    let mut sunk = SimpleScheduler::new();
    sunk.set_sink(move |s: Signal<Msg>| g.borrow_mut().push(s));
    ping_pong(&mut sunk, 4);
    // The sink sees signals as they happen: the two STARTs of the spawns, then
    // more after each pass.
    assert_eq!(got.borrow().len(), 2);
    let _ = sunk.update();
    assert!(got.borrow().len() > 2);
    sunk.run_until_idle();
    assert!(sunk.pull().is_empty(), "signals went to the sink");
    assert_eq!(*got.borrow(), expected);
}

/// A scenario that emits every kind of signal.
fn everything() -> Vec<Signal<Msg>> {
    let mut sched = SimpleScheduler::new();
    sched.record();
    let child = Template::new("child", |ctx: &mut Ctx<Msg>, _: ()| -> u32 {
        match ctx.receive() {
            Msg::Ping(k) => k,
            Msg::Text(t) => panic!("child got text {t}"),
        }
    });
    let next = Template::new("next", |ctx: &mut Ctx<Msg>, label: String| {
        ctx.filter(|m| matches!(m, Msg::Ping(_)));
        label
    });
    let root = Template::stepping("root", move |ctx: &mut Ctx<Msg>, _: ()| {
        let c = ctx.spawn(&child, ()).unwrap();
        let _ = ctx.join(c);
        let x = ctx.effect(|| 5u32);
        ctx.send(Msg::Ping(x));
        Step::Transition(Transition::to(&next, "label".to_string()))
    });
    let r = sched.spawn(&root, ()).unwrap().pid();
    sched.run_until_idle();
    sched.send(r, Msg::Text("for child".into())).unwrap();
    sched.run_until_idle();
    sched.send(r, Msg::Text("filtered".into())).unwrap();
    sched.send(r, Msg::Ping(1)).unwrap();
    sched.run_until_idle();

    // Back-pressure and drop policies.
    let full = Template::new("full", |ctx: &mut Ctx<Msg>, _: ()| ctx.select(|_| false)).capacity(1);
    let f = sched.spawn(&full, ()).unwrap().pid();
    let oldest = sched
        .spawn(&full.clone().overflow(Overflow::DropOldest), ())
        .unwrap()
        .pid();
    let newest = sched
        .spawn(&full.clone().overflow(Overflow::DropNewest), ())
        .unwrap()
        .pid();
    let sender = Template::new("sender", move |ctx: &mut Ctx<Msg>, _: ()| {
        for to in [oldest, newest, oldest, newest, f, f] {
            ctx.send_to(to, Msg::Ping(to.0 as u32));
        }
    });
    sched.spawn(&sender, ()).unwrap();
    sched.run_until_idle();
    sched.pull()
}

#[test]
fn signals_round_trip_through_serde() {
    let signals = everything();
    let types: HashSet<SignalKind> = signals.iter().map(|s| s.kind()).collect();
    for t in [
        SignalKind::Start,
        SignalKind::Spawn,
        SignalKind::Join,
        SignalKind::Transition,
        SignalKind::Use,
        SignalKind::Send,
        SignalKind::Stop,
        SignalKind::Backoff,
        SignalKind::Drop,
    ] {
        assert!(types.contains(&t), "the scenario lacks {t:?}: {signals:#?}");
    }
    let reasons: HashSet<String> = signals
        .iter()
        .filter_map(|s| match &s.data {
            SignalData::Drop { reason, .. } => Some(format!("{reason:?}")),
            _ => None,
        })
        .collect();
    assert_eq!(reasons.len(), 3, "Filtered, Oldest and Newest: {reasons:?}");
    assert!(signals.iter().any(|s| matches!(
        &s.data,
        SignalData::Stop {
            exit: Err(ExitError::Failed(_))
        }
    )));

    let json = serde_json::to_string(&signals).unwrap();
    let back: Vec<Signal<Msg>> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, signals);
    // Each signal on its own too, and a signal of distinct message types.
    for s in &signals {
        let one: Signal<Msg> = serde_json::from_str(&serde_json::to_string(s).unwrap()).unwrap();
        assert_eq!(&one, s);
    }
    let mixed: Signal<String, u64> = Signal {
        pid: Pid(3),
        seq: 9,
        replayed: false,
        data: SignalData::Drop {
            msg: "in".to_string(),
            reason: DropReason::Filtered,
        },
    };
    let back: Signal<String, u64> =
        serde_json::from_str(&serde_json::to_string(&mixed).unwrap()).unwrap();
    assert_eq!(back, mixed);
}

#[test]
fn kind_names_the_data_without_its_payload() {
    let signals = everything();
    // The root's life, by type.
    let root: Vec<SignalKind> = signals
        .iter()
        .filter(|s| s.pid == Pid(0))
        .map(|s| s.kind())
        .collect();
    assert_eq!(
        root,
        [
            SignalKind::Start,
            SignalKind::Spawn,
            SignalKind::Join,
            SignalKind::Use,
            SignalKind::Send,
            SignalKind::Transition,
            SignalKind::Drop,
            SignalKind::Drop,
            SignalKind::Stop,
        ]
    );
}

#[test]
fn sequence_numbers_count_each_process_from_zero() {
    let signals = everything();
    let mut per_pid: BTreeMap<Pid, Vec<u64>> = BTreeMap::new();
    for s in &signals {
        per_pid.entry(s.pid).or_default().push(s.seq);
    }
    for (pid, seqs) in per_pid {
        assert_eq!(
            seqs,
            (0..seqs.len() as u64).collect::<Vec<_>>(),
            "sequence of {pid}"
        );
    }
}

#[test]
fn stop_recording_stops_the_signals() {
    let mut sched = SimpleScheduler::new();
    sched.record();
    let echo: Template<Msg, Msg, (), ()> = Template::new("echo", |ctx: &mut Ctx<Msg>, _: ()| {
        loop {
            let m = ctx.receive();
            ctx.send(m);
        }
    });
    let e = sched.spawn(&echo, ()).unwrap().pid();
    sched.run_until_idle();
    assert_eq!(sched.pull().len(), 1);

    sched.stop_recording();
    sched.send(e, Msg::Ping(1)).unwrap();
    sched.run_until_idle();
    assert!(sched.pull().is_empty());
    // The message itself was still handled (kept as undelivered: no route).
    assert_eq!(sched.take_undelivered().len(), 1);

    // Recording again starts again.
    sched.record();
    sched.send(e, Msg::Ping(2)).unwrap();
    sched.run_until_idle();
    let signals = sched.pull();
    assert_eq!(signals.len(), 1);
    assert_eq!(
        signals[0].data,
        SignalData::Send {
            to: None,
            msg: Msg::Ping(2)
        }
    );
}

#[test]
fn stop_recording_stops_a_sink() {
    let got: Rc<RefCell<Vec<Signal<Msg>>>> = Rc::default();
    let g = got.clone();
    let mut sched = SimpleScheduler::new();
    sched.set_sink(move |s: Signal<Msg>| g.borrow_mut().push(s));
    ping_pong(&mut sched, 1);
    let _ = sched.update();
    let before = got.borrow().len();
    assert!(before > 0);
    sched.stop_recording();
    sched.run_until_idle();
    assert_eq!(got.borrow().len(), before);
}

#[test]
fn stop_recording_keeps_the_signals_recorded_before() {
    // `pull` drains "the signals recorded since the last pull": stopping the
    // recording must not throw away those not pulled yet.
    let mut sched = SimpleScheduler::new();
    sched.record();
    ping_pong(&mut sched, 1);
    sched.run_until_idle();
    sched.stop_recording();
    assert_eq!(sched.pull().len(), 3 + 4);
}
