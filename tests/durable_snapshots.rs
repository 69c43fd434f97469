//! Transitions are snapshot points of a durable scheduler: a process restarts from
//! its last one, and segments that hold only records older than every process's
//! restart point are deleted.

use chronoflow::journal::JournalOptions;
use chronoflow::{Child, Ctx, DurableScheduler, Pid, Step, Template, Transition};

#[path = "support/segments.rs"]
mod segments;
use segments::segments;

/// Sums `n` messages, one transition per message: its state is only its arguments.
fn summer() -> Template<u64, u64, (u64, u64), u64> {
    Template::stepping("summer", |ctx: &mut Ctx<u64>, (left, sum): (u64, u64)| {
        if left == 0 {
            return Step::Done(sum);
        }
        let x = ctx.receive();
        Step::Transition(Transition::to(&summer(), (left - 1, sum + x)))
    })
}

#[test]
fn a_process_restarts_from_its_last_transition_and_old_segments_go() {
    let dir = tempfile::tempdir().unwrap();
    let options = || JournalOptions::default().segment_size(4096);
    let t = summer();
    {
        let (mut sched, _) = DurableScheduler::builder()
            .register(&t)
            .options(options())
            .open(dir.path())
            .unwrap();
        let h = sched.spawn(&t, (5_000, 0)).unwrap();
        for i in 1..=3_000 {
            sched.send(h.pid(), i).unwrap();
            sched.run_until_idle().unwrap();
        }
        // Two more wait in the inbox, unconsumed, at the crash.
        sched.send(h.pid(), 1_000_000).unwrap();
        sched.send(h.pid(), 2_000_000).unwrap();
    }
    // 3,000 transitions made well over a hundred segments' worth of records; only
    // the ones after the last snapshot are kept.
    assert!(
        segments(dir.path()).len() <= 3,
        "{} segments left",
        segments(dir.path()).len()
    );

    let (mut sched, recovery) = DurableScheduler::builder()
        .register(&t)
        .options(options())
        .open(dir.path())
        .unwrap();
    assert_eq!(recovery.replayed, [Pid(0)]);
    // Without compaction there would be about 9,000 (three per step): what is left
    // is bounded by a few segments, not by the history.
    assert!(
        recovery.records < 500,
        "{} records replayed",
        recovery.records
    );
    for i in 3_001..=4_998 {
        sched.send(Pid(0), i).unwrap();
        sched.run_until_idle().unwrap();
    }
    sched.run_until_idle().unwrap();
    // 1..=3,000 before the crash, the two left in the inbox, then 3,001..=4,998.
    let expected: u64 = (1..=4_998).sum::<u64>() + 1_000_000 + 2_000_000;
    assert_eq!(sched.result_of::<u64>(Pid(0)), Some(Ok(expected)));
}

#[test]
fn children_spawned_before_a_snapshot_are_rebuilt_with_their_parent() {
    let dir = tempfile::tempdir().unwrap();
    let child = Template::new("child", |ctx: &mut Ctx<u64>, factor: u64| {
        ctx.receive() * factor
    });
    let waiting = Template::stepping("waiting", |ctx: &mut Ctx<u64>, kid: Child<u64>| {
        // The child's handle came through the snapshot; the join is after it.
        let own = ctx.receive();
        Step::Done(own + ctx.join(kid).unwrap())
    });
    let spawner = {
        let (child, waiting) = (child.clone(), waiting.clone());
        Template::stepping("spawner", move |ctx: &mut Ctx<u64>, _: ()| {
            let kid = ctx.spawn(&child, 10).unwrap();
            Step::Transition(Transition::to(&waiting, kid))
        })
    };
    let open = || {
        DurableScheduler::builder()
            .register(&child)
            .register(&waiting)
            .register(&spawner)
            .open(dir.path())
            .unwrap()
    };
    {
        let (mut sched, _) = open();
        sched.spawn(&spawner, ()).unwrap();
        sched.run_until_idle().unwrap();
    }
    let (mut sched, recovery) = open();
    assert_eq!(recovery.replayed, [Pid(0)]);
    sched.run_until_idle().unwrap();
    assert_eq!(
        sched.live(),
        2,
        "the parent and the child it spawned before its snapshot"
    );
    sched.send(Pid(0), 4).unwrap(); // the child receives it too
    sched.run_until_idle().unwrap();
    assert_eq!(sched.result_of::<u64>(Pid(0)), Some(Ok(4 + 40)));
    assert!(sched.violations().is_empty(), "{:?}", sched.violations());
}
