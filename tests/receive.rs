//! Taking messages: `receive`, `select` (lookahead), `filter` (drops), `try_receive`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chronoflow::{Ctx, DropReason, Pid, SignalData, SimpleScheduler, Status, Template, Wait};

/// The messages dropped by `pid`, with their reasons, from the recorded signals.
fn drops(sched: &mut SimpleScheduler<u64>, pid: Pid) -> Vec<(u64, DropReason)> {
    sched
        .pull()
        .into_iter()
        .filter(|s| s.pid == pid)
        .filter_map(|s| match s.data {
            SignalData::Drop { msg, reason } => Some((msg, reason)),
            _ => None,
        })
        .collect()
}

#[test]
fn receive_takes_messages_in_arrival_order() {
    let t = Template::new("recv", |ctx: &mut Ctx<u64>, n: usize| {
        (0..n).map(|_| ctx.receive()).collect::<Vec<_>>()
    });
    let mut sched = SimpleScheduler::new();
    let h = sched.create(&t, 6).unwrap();
    // Some before start, some while it waits.
    for m in [3, 1, 2] {
        sched.send(h.pid(), m).unwrap();
    }
    sched.start(h.pid()).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.status(h.pid()), Some(Status::Waiting(Wait::Message)));
    for m in [9, 7, 8] {
        sched.send(h.pid(), m).unwrap();
    }
    sched.run_until_idle();
    assert_eq!(sched.result(&h), Some(Ok(vec![3, 1, 2, 9, 7, 8])));
}

#[test]
fn select_takes_the_first_match_and_the_others_keep_their_order() {
    let t = Template::new("select", |ctx: &mut Ctx<u64>, _: ()| {
        let even = ctx.select(|m| m % 2 == 0);
        let big = ctx.select(|m| *m > 4);
        let rest: Vec<u64> = (0..ctx.inbox_len()).map(|_| ctx.receive()).collect();
        (even, big, rest)
    });
    let mut sched = SimpleScheduler::new();
    let h = sched.create(&t, ()).unwrap();
    for m in [1, 3, 4, 6, 5, 7, 2] {
        sched.send(h.pid(), m).unwrap();
    }
    sched.start(h.pid()).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&h), Some(Ok((4, 6, vec![1, 3, 5, 7, 2]))));
}

#[test]
fn select_waits_for_a_future_match_while_non_matches_queue_up() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let t = Template::new("select", move |ctx: &mut Ctx<u64>, _: ()| {
        let hit = ctx.select(|m| {
            c.fetch_add(1, Ordering::SeqCst);
            *m >= 100
        });
        let rest: Vec<u64> = (0..ctx.inbox_len()).map(|_| ctx.receive()).collect();
        (hit, rest)
    });
    let mut sched = SimpleScheduler::new();
    let h = sched.create(&t, ()).unwrap();
    sched.send(h.pid(), 1).unwrap();
    sched.send(h.pid(), 2).unwrap();
    sched.start(h.pid()).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.status(h.pid()), Some(Status::Waiting(Wait::Message)));

    sched.send(h.pid(), 3).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.status(h.pid()), Some(Status::Waiting(Wait::Message)));
    assert_eq!(sched.inbox_len(h.pid()), Some(3), "non-matches queue up");

    sched.send(h.pid(), 100).unwrap();
    sched.send(h.pid(), 4).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&h), Some(Ok((100, vec![1, 2, 3, 4]))));
    // Each message was looked at once by the predicate: 1, 2, 3, 100 (4 never).
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}

#[test]
fn select_with_the_first_message_matching_is_receive() {
    let t = Template::new("select", |ctx: &mut Ctx<u64>, _: ()| {
        let a = ctx.select(|_| true);
        let b = ctx.select(|_| true);
        (a, b)
    });
    let mut sched = SimpleScheduler::new();
    let h = sched.spawn(&t, ()).unwrap();
    sched.send(h.pid(), 8).unwrap();
    sched.send(h.pid(), 9).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&h), Some(Ok((8, 9))));
}

#[test]
fn filter_drops_non_matching_messages_before_the_match() {
    let t = Template::new("filter", |ctx: &mut Ctx<u64>, _: ()| {
        let hit = ctx.filter(|m| *m >= 10);
        let rest: Vec<u64> = (0..ctx.inbox_len()).map(|_| ctx.receive()).collect();
        (hit, rest)
    });
    let mut sched = SimpleScheduler::new();
    sched.record();
    let h = sched.create(&t, ()).unwrap();
    for m in [1, 2, 3, 10, 5, 11] {
        sched.send(h.pid(), m).unwrap();
    }
    sched.start(h.pid()).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&h), Some(Ok((10, vec![5, 11]))));
    assert_eq!(
        drops(&mut sched, h.pid()),
        [
            (1, DropReason::Filtered),
            (2, DropReason::Filtered),
            (3, DropReason::Filtered),
        ],
        "one DROP each, messages after the match are kept"
    );
}

#[test]
fn filter_drops_non_matching_arrivals_while_waiting() {
    let t = Template::new("filter", |ctx: &mut Ctx<u64>, _: ()| {
        let hit = ctx.filter(|m| *m == 20);
        let next = ctx.receive();
        (hit, next)
    });
    let mut sched = SimpleScheduler::new();
    sched.record();
    let h = sched.create(&t, ()).unwrap();
    sched.send(h.pid(), 5).unwrap();
    sched.start(h.pid()).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.status(h.pid()), Some(Status::Waiting(Wait::Message)));
    assert_eq!(sched.inbox_len(h.pid()), Some(0), "5 was dropped");

    sched.send(h.pid(), 6).unwrap();
    sched.run_until_idle();
    assert_eq!(
        sched.inbox_len(h.pid()),
        Some(0),
        "6 was dropped on arrival"
    );
    sched.send(h.pid(), 7).unwrap();
    sched.send(h.pid(), 20).unwrap();
    sched.send(h.pid(), 8).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&h), Some(Ok((20, 8))));
    assert_eq!(
        drops(&mut sched, h.pid()),
        [
            (5, DropReason::Filtered),
            (6, DropReason::Filtered),
            (7, DropReason::Filtered),
        ]
    );
}

#[test]
fn try_receive_never_waits() {
    let t = Template::new("try", |ctx: &mut Ctx<u64>, _: ()| {
        let first = ctx.try_receive();
        // Wait for a message without taking it, then poll the inbox dry.
        let marker = ctx.select(|m| *m == 0);
        let mut got = Vec::new();
        while let Some(m) = ctx.try_receive() {
            got.push(m);
        }
        (first, marker, got, ctx.try_receive())
    });
    let mut sched = SimpleScheduler::new();
    let h = sched.spawn(&t, ()).unwrap();
    sched.run_until_idle();
    for m in [3, 1, 2, 0] {
        sched.send(h.pid(), m).unwrap();
    }
    sched.run_until_idle();
    assert_eq!(sched.result(&h), Some(Ok((None, 0, vec![3, 1, 2], None))));
}

#[test]
fn select_and_filter_in_a_standalone_process() {
    let t = Template::new("mixed", |ctx: &mut Ctx<String>, _: ()| {
        let go = ctx.select(|m| m == "go");
        let x = ctx.filter(|m| m.starts_with('x'));
        let last = ctx.receive();
        vec![go, x, last]
    });
    let mut p = t.create(Pid(0), ()).unwrap();
    p.start().unwrap();
    for m in ["a", "b", "xa", "c", "go"] {
        p.push(m.to_string()).unwrap();
    }
    assert_eq!(
        p.result(),
        Some(Ok(vec![
            "go".to_string(),
            "xa".to_string(),
            "c".to_string()
        ]))
    );
    let dropped: Vec<(String, DropReason)> = p
        .pull()
        .into_iter()
        .filter_map(|s| match s.data {
            SignalData::Drop { msg, reason } => Some((msg, reason)),
            _ => None,
        })
        .collect();
    assert_eq!(
        dropped,
        [
            ("a".to_string(), DropReason::Filtered),
            ("b".to_string(), DropReason::Filtered)
        ]
    );
}

#[test]
fn select_keeps_its_place_when_drop_oldest_evicts_scanned_messages() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let t = Template::new("select", move |ctx: &mut Ctx<u64>, _: ()| {
        let hit = ctx.select(|m| {
            c.fetch_add(1, Ordering::SeqCst);
            *m == 100
        });
        let rest: Vec<u64> = (0..ctx.inbox_len()).map(|_| ctx.receive()).collect();
        (hit, rest)
    })
    .capacity(3)
    .overflow(chronoflow::Overflow::DropOldest);
    let mut sched = SimpleScheduler::new();
    let h = sched.spawn(&t, ()).unwrap();
    for m in [1, 2, 3] {
        sched.send(h.pid(), m).unwrap();
    }
    sched.run_until_idle();
    sched.send(h.pid(), 4).unwrap(); // evicts 1
    sched.run_until_idle();
    sched.send(h.pid(), 100).unwrap(); // evicts 2
    assert_eq!(sched.dropped(h.pid()), Some(2));
    sched.run_until_idle();
    assert_eq!(sched.result(&h), Some(Ok((100, vec![3, 4]))));
    // 1, 2, 3, 4 and 100, each once.
    assert_eq!(calls.load(Ordering::SeqCst), 5);
}
