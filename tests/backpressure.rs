//! Bounded inboxes: back-pressure on senders (the default), and the opt-in drop and
//! reject policies.

use chronoflow::{
    Ctx, DropReason, Overflow, Pid, SendError, Signal, SignalData, SimpleScheduler, Status,
    Template, UndeliveredReason, Wait,
};

/// Receives `n` messages slowly (one per turn) and returns them.
fn slow_consumer(capacity: usize) -> Template<u64, u64, usize, Vec<u64>> {
    Template::new("consumer", |ctx: &mut Ctx<u64>, n: usize| {
        let mut got = Vec::new();
        for _ in 0..n {
            got.push(ctx.receive());
            ctx.yield_now();
        }
        got
    })
    .capacity(capacity)
}

/// Sends `from..to` to `args.0`.
fn producer() -> Template<u64, u64, (Pid, u64, u64), ()> {
    Template::new(
        "producer",
        |ctx: &mut Ctx<u64>, (to, from, until): (Pid, u64, u64)| {
            for m in from..until {
                ctx.send_to(to, m);
            }
        },
    )
}

fn drops_of(signals: &[Signal<u64>], pid: Pid) -> Vec<(u64, DropReason)> {
    signals
        .iter()
        .filter(|s| s.pid == pid)
        .filter_map(|s| match &s.data {
            SignalData::Drop { msg, reason } => Some((*msg, *reason)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_sender_to_a_full_inbox_waits_for_room_and_nothing_is_lost() {
    const CAP: usize = 4;
    const N: u64 = 100;
    let mut sched = SimpleScheduler::new();
    sched.record();
    let c = sched.spawn(&slow_consumer(CAP), N as usize).unwrap();
    let p = sched.spawn(&producer(), (c.pid(), 0, N)).unwrap();

    // First pass: the consumer waits, the producer fills the inbox and is suspended.
    assert_eq!(sched.update().ran, 2);
    assert_eq!(sched.inbox_len(c.pid()), Some(CAP));
    assert_eq!(
        sched.status(p.pid()),
        Some(Status::Waiting(Wait::Room(c.pid())))
    );

    let mut signals = sched.pull();
    let mut passes = 0;
    loop {
        let pass = sched.update();
        signals.extend(sched.pull());
        if let Some(len) = sched.inbox_len(c.pid()) {
            assert!(len <= CAP, "inbox length {len} exceeds its capacity");
        }
        if pass.is_idle() {
            break;
        }
        passes += 1;
        assert!(passes < 10_000, "runaway");
    }

    assert_eq!(sched.result(&c), Some(Ok((0..N).collect::<Vec<_>>())));
    assert_eq!(sched.result(&p), Some(Ok(())));
    assert!(sched.take_undelivered().is_empty());

    let backoffs: Vec<&Signal<u64>> = signals
        .iter()
        .filter(|s| matches!(s.data, SignalData::Backoff { .. }))
        .collect();
    assert!(!backoffs.is_empty());
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
fn many_senders_to_one_small_inbox_lose_nothing_and_keep_their_order() {
    let mut sched = SimpleScheduler::new();
    let c = sched.spawn(&slow_consumer(2), 150).unwrap();
    for k in 0..3u64 {
        sched
            .spawn(&producer(), (c.pid(), k * 1000, k * 1000 + 50))
            .unwrap();
    }
    while !sched.update().is_idle() {
        assert!(sched.inbox_len(c.pid()).is_none_or(|len| len <= 2));
    }
    let got = sched.result(&c).unwrap().unwrap();
    assert_eq!(got.len(), 150);
    for k in 0..3u64 {
        let from_k: Vec<u64> = got.iter().copied().filter(|m| m / 1000 == k).collect();
        assert_eq!(from_k, (k * 1000..k * 1000 + 50).collect::<Vec<_>>());
    }
}

#[test]
fn a_send_from_outside_to_a_full_inbox_gives_the_message_back() {
    let mut sched = SimpleScheduler::new();
    let c = sched.create(&slow_consumer(2), 3).unwrap();
    sched.send(c.pid(), 1).unwrap();
    sched.send(c.pid(), 2).unwrap();
    let err = sched.send(c.pid(), 3).unwrap_err();
    assert_eq!(err, SendError::Full(3));
    assert_eq!(err.into_inner(), 3);
    assert_eq!(sched.inbox_len(c.pid()), Some(2));
    assert_eq!(sched.dropped(c.pid()), Some(0));

    // Once it has taken messages there is room again.
    sched.start(c.pid()).unwrap();
    sched.run_until_idle();
    sched.send(c.pid(), 3).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&c), Some(Ok(vec![1, 2, 3])));
}

#[test]
fn a_blocked_senders_message_is_kept_when_the_receiver_stops() {
    // The receiver takes one message and ends; the sender waiting for room must not
    // lose the messages it could not deliver.
    let mut sched = SimpleScheduler::new();
    let once = Template::new("once", |ctx: &mut Ctx<u64>, _: ()| ctx.receive()).capacity(1);
    let c = sched.spawn(&once, ()).unwrap();
    let p = sched.spawn(&producer(), (c.pid(), 0, 3)).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&c), Some(Ok(0)));
    assert_eq!(sched.result(&p), Some(Ok(())));
    let kept: Vec<_> = sched
        .take_undelivered()
        .into_iter()
        .map(|d| (d.from, d.to, d.reason, d.msg))
        .collect();
    assert_eq!(
        kept,
        [
            (
                Some(p.pid()),
                Some(c.pid()),
                UndeliveredReason::UnknownPid,
                1
            ),
            (
                Some(p.pid()),
                Some(c.pid()),
                UndeliveredReason::UnknownPid,
                2
            ),
        ]
    );
}

#[test]
fn sending_to_ones_own_full_inbox_does_not_wait_forever() {
    let t = Template::new("self", |ctx: &mut Ctx<u64>, _: ()| {
        let me = ctx.pid();
        ctx.send_to(me, 1);
        ctx.send_to(me, 2); // would wait on itself
        ctx.receive()
    })
    .capacity(1);
    let mut sched = SimpleScheduler::new();
    let h = sched.spawn(&t, ()).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&h), Some(Ok(1)));
    let kept: Vec<_> = sched
        .take_undelivered()
        .into_iter()
        .map(|d| (d.from, d.to, d.reason, d.msg))
        .collect();
    assert_eq!(
        kept,
        [(
            Some(h.pid()),
            Some(h.pid()),
            UndeliveredReason::WouldDeadlock,
            2
        )]
    );
}

#[test]
fn drop_oldest_evicts_the_head_counts_and_signals_it() {
    let mut sched = SimpleScheduler::new();
    sched.record();
    let c = sched
        .create(&slow_consumer(3).overflow(Overflow::DropOldest), 3)
        .unwrap();
    for m in 0..5 {
        assert_eq!(sched.send(c.pid(), m), Ok(()), "the policy accepts");
    }
    assert_eq!(sched.inbox_len(c.pid()), Some(3));
    assert_eq!(sched.dropped(c.pid()), Some(2));
    let signals = sched.pull();
    assert_eq!(
        drops_of(&signals, c.pid()),
        [(0, DropReason::Oldest), (1, DropReason::Oldest)]
    );
    sched.start(c.pid()).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&c), Some(Ok(vec![2, 3, 4])));
}

#[test]
fn drop_newest_discards_the_arrival_counts_and_signals_it() {
    let mut sched = SimpleScheduler::new();
    sched.record();
    let c = sched
        .create(&slow_consumer(3).overflow(Overflow::DropNewest), 3)
        .unwrap();
    for m in 0..5 {
        assert_eq!(sched.send(c.pid(), m), Ok(()));
    }
    assert_eq!(sched.inbox_len(c.pid()), Some(3));
    assert_eq!(sched.dropped(c.pid()), Some(2));
    let signals = sched.pull();
    assert_eq!(
        drops_of(&signals, c.pid()),
        [(3, DropReason::Newest), (4, DropReason::Newest)]
    );
    sched.start(c.pid()).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&c), Some(Ok(vec![0, 1, 2])));
}

#[test]
fn drop_policies_never_suspend_a_sending_process() {
    for (overflow, kept, reason) in [
        (Overflow::DropOldest, vec![7, 8, 9], DropReason::Oldest),
        (Overflow::DropNewest, vec![0, 1, 2], DropReason::Newest),
    ] {
        let mut sched = SimpleScheduler::new();
        sched.record();
        let c = sched
            .create(&slow_consumer(3).overflow(overflow), 3)
            .unwrap();
        let p = sched.spawn(&producer(), (c.pid(), 0, 10)).unwrap();
        assert_eq!(sched.update().ran, 1);
        assert_eq!(sched.result(&p), Some(Ok(())), "{overflow:?}");
        assert_eq!(sched.dropped(c.pid()), Some(7));
        let signals = sched.pull();
        assert!(
            !signals
                .iter()
                .any(|s| matches!(s.data, SignalData::Backoff { .. }))
        );
        let dropped = drops_of(&signals, c.pid());
        assert_eq!(dropped.len(), 7);
        assert!(dropped.iter().all(|d| d.1 == reason));
        sched.start(c.pid()).unwrap();
        sched.run_until_idle();
        assert_eq!(sched.result(&c), Some(Ok(kept)));
    }
}

#[test]
fn reject_gives_the_message_back_to_try_send_and_to_outside_senders() {
    let mut sched = SimpleScheduler::new();
    let c = sched
        .create(&slow_consumer(2).overflow(Overflow::Reject), 2)
        .unwrap();
    let target = c.pid();
    assert_eq!(sched.send(target, 0), Ok(()));
    assert_eq!(sched.send(target, 1), Ok(()));
    assert_eq!(sched.send(target, 2), Err(SendError::Full(2)));

    // try_send inside a process: the refused message comes back to the process.
    let trier = Template::new("trier", |ctx: &mut Ctx<u64>, _: ()| {
        let mut refused = Vec::new();
        for m in 10..13 {
            if let Err(e) = ctx.try_send(m) {
                assert_eq!(e, SendError::Full(m));
                refused.push(e.into_inner());
            }
        }
        refused
    })
    .route(move |_| Some(target));
    let t = sched.spawn(&trier, ()).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&t), Some(Ok(vec![10, 11, 12])));
    assert_eq!(
        sched.dropped(target),
        Some(0),
        "a rejected message is no drop"
    );
    assert!(sched.take_undelivered().is_empty());

    sched.start(target).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&c), Some(Ok(vec![0, 1])));
}

#[test]
fn reject_keeps_a_sent_message_undelivered() {
    let mut sched = SimpleScheduler::new();
    let c = sched
        .create(&slow_consumer(1).overflow(Overflow::Reject), 1)
        .unwrap();
    let p = sched.spawn(&producer(), (c.pid(), 0, 3)).unwrap();
    sched.run_until_idle();
    // The sender was not suspended: it went on and finished.
    assert_eq!(sched.result(&p), Some(Ok(())));
    let kept: Vec<_> = sched
        .take_undelivered()
        .into_iter()
        .map(|d| (d.from, d.to, d.reason, d.msg))
        .collect();
    assert_eq!(
        kept,
        [
            (Some(p.pid()), Some(c.pid()), UndeliveredReason::Rejected, 1),
            (Some(p.pid()), Some(c.pid()), UndeliveredReason::Rejected, 2),
        ]
    );
    assert_eq!(sched.dropped(c.pid()), Some(0));
    sched.start(c.pid()).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&c), Some(Ok(vec![0])));
}

#[test]
fn try_send_to_a_full_backoff_inbox_does_not_wait() {
    let mut sched = SimpleScheduler::new();
    let c = sched.create(&slow_consumer(1), 1).unwrap();
    let target = c.pid();
    let trier = Template::new("trier", move |ctx: &mut Ctx<u64>, _: ()| {
        let first = ctx.try_send(1);
        let second = ctx.try_send(2);
        (first.is_ok(), second.map_err(|e| e.into_inner()))
    })
    .route(move |_| Some(target));
    let t = sched.spawn(&trier, ()).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&t), Some(Ok((true, Err(2)))));
}

#[test]
fn a_full_childs_inbox_holds_back_sends_to_its_parent_until_it_has_room() {
    // Messages to the parent go to its child too; the child's one-slot inbox is the
    // bottleneck, and nothing is lost for either.
    let child = slow_consumer(1);
    let parent = Template::new("parent", move |ctx: &mut Ctx<u64>, n: usize| {
        let c = ctx.spawn(&child, n).unwrap();
        let mine: Vec<u64> = (0..n).map(|_| ctx.receive()).collect();
        (mine, ctx.join(c).unwrap())
    });
    let mut sched = SimpleScheduler::new();
    sched.record();
    let par = sched.spawn(&parent, 5).unwrap();
    let _ = sched.update(); // the parent spawns its child
    let kid = sched
        .pull()
        .into_iter()
        .find_map(|s| match s.data {
            SignalData::Spawn { child } => Some(child),
            _ => None,
        })
        .expect("the parent spawned its child");
    let p = sched.spawn(&producer(), (par.pid(), 0, 5)).unwrap();
    let mut signals = Vec::new();
    while !sched.update().is_idle() {
        assert!(sched.inbox_len(kid).is_none_or(|len| len <= 1));
        signals.extend(sched.pull());
    }
    let all: Vec<u64> = (0..5).collect();
    assert_eq!(sched.result(&par), Some(Ok((all.clone(), all))));
    assert_eq!(sched.result(&p), Some(Ok(())));
    assert!(
        signals
            .iter()
            .any(|s| s.pid == p.pid() && s.data == SignalData::Backoff { to: kid }),
        "the sender waited for the child's inbox"
    );
    assert!(sched.take_undelivered().is_empty());
}

#[test]
fn room_is_not_lost_when_the_woken_sender_is_killed_before_it_runs() {
    // Two senders wait for room in `b`. `b` takes a message, which wakes the first
    // sender; before that sender runs, its parent ends and it is killed. The room
    // it was woken for must go to the second sender, which must not wait forever.
    let mut sched = SimpleScheduler::new();
    let b = sched.create(&slow_consumer(1), 2).unwrap();
    let to = b.pid();
    sched.send(to, 100).unwrap(); // b is full
    let sender = Template::new("sender", move |ctx: &mut Ctx<u64>, m: u64| {
        ctx.send_to(to, m);
    });
    let s1 = sender.clone();
    let parent = Template::new("parent", move |ctx: &mut Ctx<u64>, _: ()| {
        let _child = ctx.spawn(&s1, 1).unwrap();
        ctx.receive() // then returns with its child unjoined: the child is killed
    });
    let a = sched.spawn(&parent, ()).unwrap();
    sched.run_until_idle(); // the child sender waits for room first
    let s2 = sched.spawn(&sender, 2).unwrap();
    sched.run_until_idle(); // then the second sender
    assert_eq!(
        sched.status(s2.pid()),
        Some(Status::Waiting(Wait::Room(to)))
    );

    sched.start(to).unwrap();
    sched.send(a.pid(), 0).unwrap();
    sched.run_until_idle();
    assert!(matches!(sched.result(&a), Some(Err(_))), "unjoined child");
    assert_eq!(
        sched.status(s2.pid()),
        Some(Status::Stopped),
        "the second sender must get the room (b's inbox holds {:?})",
        sched.inbox_len(to)
    );
    assert_eq!(sched.result(&b), Some(Ok(vec![100, 2])));
}
