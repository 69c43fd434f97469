//! Old segments go once no process needs their records, but nothing the user has
//! not taken goes with them: messages kept undelivered until
//! `take_undelivered`, and results of ended top-level processes until read.

use std::path::Path;

use chronoflow::journal::JournalOptions;
use chronoflow::{Ctx, DurableScheduler, ManualClock, Pid, Step, Template, Time, Transition};

#[path = "support/segments.rs"]
mod segments;
use segments::segments;

/// Sums `n` messages, one transition per message: its restart point moves on
/// with every message, so the segments behind it may go.
fn summer() -> Template<u64, u64, (u64, u64), u64> {
    Template::stepping("summer", |ctx: &mut Ctx<u64>, (left, sum): (u64, u64)| {
        if left == 0 {
            return Step::Done(sum);
        }
        let x = ctx.receive();
        Step::Transition(Transition::to(&summer(), (left - 1, sum + x)))
    })
}

/// Sends one message to a pid that does not exist (kept undelivered), then ends.
fn stray() -> Template<u64, u64, (), u64> {
    Template::new("stray", |ctx: &mut Ctx<u64>, _: ()| {
        ctx.send_to(Pid(999_999), 42);
        7
    })
}

fn open(dir: &Path) -> DurableScheduler<u64> {
    DurableScheduler::builder()
        .register(&summer())
        .register(&stray())
        .options(JournalOptions::default().segment_size(4096))
        .open(dir)
        .unwrap()
        .0
}

/// The stray runs first (its message kept; its result read if `read`); then a
/// summer takes `n` messages, a transition each, over many small segments.
fn run(dir: &Path, n: u64, read: bool) -> Pid {
    let mut sched = open(dir);
    let stray = sched.spawn(&stray(), ()).unwrap().pid();
    sched.run_until_idle().unwrap();
    if read {
        assert_eq!(sched.result_of::<u64>(stray), Some(Ok(7)));
    }
    let summer = sched.spawn(&summer(), (u64::MAX, 0)).unwrap().pid();
    for i in 0..n {
        sched.send(summer, i).unwrap();
        sched.run_until_idle().unwrap();
    }
    stray
}

#[test]
fn undelivered_messages_survive_the_release_of_old_segments() {
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), 2_000, true);
    let mut sched = open(dir.path());
    let kept = sched.take_undelivered();
    assert_eq!(
        kept.len(),
        1,
        "the kept message was released with its segment"
    );
    assert_eq!((kept[0].to, kept[0].msg), (Some(Pid(999_999)), 42));

    // Taken now: from here on, they no longer hold the segments back.
    for i in 0..2_000 {
        sched.send(Pid(1), i).unwrap();
        sched.run_until_idle().unwrap();
    }
    drop(sched);
    assert!(
        segments(dir.path()).len() <= 3,
        "{} segments kept",
        segments(dir.path()).len()
    );
    assert!(open(dir.path()).take_undelivered().is_empty());
}

#[test]
fn unread_results_survive_the_release_of_old_segments() {
    let dir = tempfile::tempdir().unwrap();
    let stray = run(dir.path(), 2_000, false);
    let mut sched = open(dir.path());
    assert_eq!(sched.result_of::<u64>(stray), Some(Ok(7)));
}

/// Spawns a child of itself `depth` times down, then waits for a message.
fn chain() -> Template<u64, u64, u64, u64> {
    Template::new("chain", |ctx: &mut Ctx<u64>, depth: u64| {
        if depth > 0 {
            let _child = ctx.spawn(&chain(), depth - 1).unwrap();
        }
        ctx.receive()
    })
}

#[test]
fn a_deep_chain_of_children_is_rebuilt_without_deep_recursion() {
    const DEPTH: u64 = 20_000;
    let dir = tempfile::tempdir().unwrap();
    let open = |dir: &Path| {
        DurableScheduler::<u64>::builder()
            .register(&chain())
            .open(dir)
            .unwrap()
    };
    {
        let (mut sched, _) = open(dir.path());
        sched.spawn(&chain(), DEPTH).unwrap();
        sched.run_until_idle().unwrap();
        assert_eq!(sched.live() as u64, DEPTH + 1);
    }
    // Rebuilt on this test's thread (a 2 MiB stack): one frame per level of a
    // recursive rebuild would not fit. (Before, the rebuild failed sooner: with
    // `Unregistered` for the first child, since the parent's template was out of
    // the registry while its children were rebuilt.)
    let (sched, recovery) = open(dir.path());
    assert_eq!(recovery.replayed, [Pid(0)]);
    assert_eq!(sched.live() as u64, DEPTH + 1);
}

/// Sleeps a second, then returns what its inbox held, in order.
fn sieve() -> Template<u64, u64, (), Vec<u64>> {
    Template::new("sieve", |ctx: &mut Ctx<u64>, _: ()| {
        ctx.sleep(std::time::Duration::from_secs(1));
        let mut held = Vec::new();
        while let Some(m) = ctx.try_receive() {
            held.push(m);
        }
        held
    })
    .capacity(2)
    .overflow(chronoflow::Overflow::DropNewest)
}

#[test]
fn an_inbox_that_drops_the_newest_is_rebuilt_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let open = |dir: &Path, clock: &ManualClock| {
        DurableScheduler::<u64>::builder()
            .register(&sieve())
            .clock(clock.clone())
            .open(dir)
            .unwrap()
            .0
    };
    {
        let clock = ManualClock::new(Time::from_nanos(0));
        let mut sched = open(dir.path(), &clock);
        let pid = sched.spawn(&sieve(), ()).unwrap().pid();
        sched.run_until_idle().unwrap();
        // Full with [5, 6]: the second 5 is dropped, the first stays in front.
        for m in [5, 6, 5] {
            sched.send(pid, m).unwrap();
        }
        sched.run_until_idle().unwrap();
    }
    let clock = ManualClock::new(Time::from_nanos(0));
    let mut sched = open(dir.path(), &clock);
    clock.advance(std::time::Duration::from_secs(2));
    sched.run_until_idle().unwrap();
    assert_eq!(sched.result_of::<Vec<u64>>(Pid(0)), Some(Ok(vec![5, 6])));
}

/// Ends at once.
fn quick() -> Template<u64, u64, (), u64> {
    Template::new("quick", |_: &mut Ctx<u64>, _: ()| 1)
}

/// Spawns a quick child, lets it end, and joins it or not.
fn parent(join: bool) -> Template<u64, u64, (), u64> {
    Template::new("parent", move |ctx: &mut Ctx<u64>, _: ()| {
        let child = ctx.spawn(&quick(), ()).unwrap();
        ctx.yield_now();
        ctx.yield_now();
        if join { ctx.join(child).unwrap() } else { 0 }
    })
}

/// 300 parents, each result read: the segments left.
fn parents(join: bool) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let (mut sched, _) = DurableScheduler::builder()
        .register(&parent(join))
        .register(&quick())
        .options(JournalOptions::default().segment_size(512))
        .open(dir.path())
        .unwrap();
    for _ in 0..300 {
        let h = sched.spawn(&parent(join), ()).unwrap();
        sched.run_until_idle().unwrap();
        assert_eq!(sched.result(&h).unwrap().is_ok(), join);
    }
    segments(dir.path()).len()
}

#[test]
fn an_ended_child_that_is_never_joined_does_not_hold_the_journal() {
    let (joined, unjoined) = (parents(true), parents(false));
    // Before, each unjoined child kept its restart point for good (130 segments).
    assert!(
        unjoined <= joined + 2,
        "joined {joined}, unjoined {unjoined} segments"
    );
}
