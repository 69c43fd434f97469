#![cfg_attr(feature = "stackless", feature(coroutines))]
//! A message refused by a full `Overflow::Reject` inbox is a REJECT signal of the
//! sending process, not a SEND: from `send`, `send_to` and `try_send`, in both
//! engines. A send from outside has no process to signal.

#[cfg(feature = "stackless")]
use chronoflow::stackless::{send, send_to};
use chronoflow::{
    Ctx, Overflow, Pid, SendError, Signal, SignalData, SignalKind, SimpleScheduler, Template,
    UndeliveredReason,
};
#[cfg(feature = "stackless")]
use chronoflow::{StacklessCtx, StacklessTemplate};

/// Takes `n` messages, once started.
fn consumer(capacity: usize) -> Template<u64, u64, usize, Vec<u64>> {
    Template::new("consumer", |ctx: &mut Ctx<u64>, n: usize| {
        (0..n).map(|_| ctx.receive()).collect()
    })
    .capacity(capacity)
    .overflow(Overflow::Reject)
}

/// A scheduler that records, with a created (not started) consumer whose
/// one-message Reject inbox is full.
fn full_reject_inbox() -> (SimpleScheduler<u64>, Pid) {
    let mut sched = SimpleScheduler::new();
    sched.record();
    let c = sched.create(&consumer(1), 1).unwrap();
    sched.send(c.pid(), 0).unwrap();
    (sched, c.pid())
}

/// The signals of `pid` that are about a message (SEND or REJECT).
fn message_signals(signals: &[Signal<u64>], pid: Pid) -> Vec<SignalData<u64>> {
    signals
        .iter()
        .filter(|s| s.pid == pid)
        .filter(|s| matches!(s.kind(), SignalKind::Send | SignalKind::Reject))
        .map(|s| s.data.clone())
        .collect()
}

fn kept(
    sched: &mut SimpleScheduler<u64>,
) -> Vec<(Option<Pid>, Option<Pid>, UndeliveredReason, u64)> {
    sched
        .take_undelivered()
        .into_iter()
        .map(|d| (d.from, d.to, d.reason, d.msg))
        .collect()
}

#[test]
fn a_stackful_send_to_a_full_reject_inbox_is_a_reject_signal() {
    let (mut sched, target) = full_reject_inbox();
    let sender = Template::new("sender", move |ctx: &mut Ctx<u64>, _: ()| {
        ctx.send_to(target, 7);
        ctx.send(8); // the route says `target` too
    })
    .route(move |_| Some(target));
    let s = sched.spawn(&sender, ()).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&s), Some(Ok(())));
    let signals = sched.pull();
    assert_eq!(
        message_signals(&signals, s.pid()),
        [
            SignalData::Reject { to: target, msg: 7 },
            SignalData::Reject { to: target, msg: 8 },
        ],
        "a REJECT each, no SEND"
    );
    let reject = signals
        .iter()
        .find(|s| s.kind() == SignalKind::Reject)
        .unwrap();
    assert_eq!(
        reject.to_string(),
        format!("{} #1 REJECT by {target}: 7", s.pid())
    );
    assert_eq!(
        kept(&mut sched),
        [
            (Some(s.pid()), Some(target), UndeliveredReason::Rejected, 7),
            (Some(s.pid()), Some(target), UndeliveredReason::Rejected, 8),
        ]
    );
}

#[cfg(feature = "stackless")]
#[test]
fn a_stackless_send_to_a_full_reject_inbox_is_a_reject_signal() {
    let (mut sched, target) = full_reject_inbox();
    let sender: StacklessTemplate<u64, u64, (), ()> =
        StacklessTemplate::new("sender", move |cx: StacklessCtx<u64>, _: ()| {
            #[coroutine]
            move || {
                send_to!(cx, target, 7);
                send!(cx, 8);
            }
        })
        .route(move |_| Some(target));
    let s = sched.spawn(&sender, ()).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&s), Some(Ok(())));
    assert_eq!(
        message_signals(&sched.pull(), s.pid()),
        [
            SignalData::Reject { to: target, msg: 7 },
            SignalData::Reject { to: target, msg: 8 },
        ]
    );
    assert_eq!(
        kept(&mut sched),
        [
            (Some(s.pid()), Some(target), UndeliveredReason::Rejected, 7),
            (Some(s.pid()), Some(target), UndeliveredReason::Rejected, 8),
        ]
    );
}

#[cfg(feature = "stackless")]
#[test]
fn try_send_gets_a_rejected_message_back_and_records_a_reject() {
    let (mut sched, target) = full_reject_inbox();
    let trier = Template::new("trier", |ctx: &mut Ctx<u64>, _: ()| {
        ctx.try_send(7).map_err(SendError::into_inner)
    })
    .route(move |_| Some(target));
    let t = sched.spawn(&trier, ()).unwrap();
    type Tries = (Result<(), u64>, Result<(), u64>);
    let stackless: StacklessTemplate<u64, u64, (), Tries> =
        StacklessTemplate::new("trier", move |cx: StacklessCtx<u64>, _: ()| {
            #[coroutine]
            move || {
                let routed = cx.try_send(8).map_err(SendError::into_inner);
                let direct = cx.try_send_to(target, 9).map_err(SendError::into_inner);
                (routed, direct)
            }
        })
        .route(move |_| Some(target));
    let u = sched.spawn(&stackless, ()).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&t), Some(Ok(Err(7))));
    assert_eq!(sched.result(&u), Some(Ok((Err(8), Err(9)))));
    let signals = sched.pull();
    assert_eq!(
        message_signals(&signals, t.pid()),
        [SignalData::Reject { to: target, msg: 7 }]
    );
    assert_eq!(
        message_signals(&signals, u.pid()),
        [
            SignalData::Reject { to: target, msg: 8 },
            SignalData::Reject { to: target, msg: 9 },
        ]
    );
    assert!(kept(&mut sched).is_empty(), "handed back, not kept");
}

#[test]
fn a_delivered_send_and_an_outside_refusal_are_unchanged() {
    let (mut sched, target) = full_reject_inbox();
    // From outside: handed back, and no signal (no sending process).
    assert_eq!(sched.send(target, 1), Err(SendError::Full(1)));
    assert!(!sched.pull().iter().any(|s| s.kind() == SignalKind::Reject));
    // With room: an ordinary SEND.
    let c = sched.spawn(&consumer(4), 1).unwrap();
    let to = c.pid();
    let sender = Template::new("sender", move |ctx: &mut Ctx<u64>, _: ()| {
        ctx.send_to(to, 5)
    });
    let s = sched.spawn(&sender, ()).unwrap();
    sched.run_until_idle();
    assert_eq!(
        message_signals(&sched.pull(), s.pid()),
        [SignalData::Send {
            to: Some(to),
            msg: 5
        }]
    );
    assert_eq!(sched.result(&c), Some(Ok(vec![5])));
}

#[test]
fn reject_signals_round_trip_through_serde() {
    let signal: Signal<u64> = Signal {
        pid: Pid(3),
        seq: 2,
        replayed: false,
        data: SignalData::Reject { to: Pid(1), msg: 9 },
    };
    let json = serde_json::to_string(&signal).unwrap();
    assert_eq!(serde_json::from_str::<Signal<u64>>(&json).unwrap(), signal);
    let ty = serde_json::to_string(&SignalKind::Reject).unwrap();
    assert_eq!(
        serde_json::from_str::<SignalKind>(&ty).unwrap(),
        SignalKind::Reject
    );
}
