//! A child receives copies of its parent's messages: those queued when it was
//! spawned, and those that arrive after. Both survive the release of the
//! segments that held the parent's beginning (its creation, or an earlier
//! snapshot), which a parent's later snapshot allows while the child lives on.

use chronoflow::journal::JournalOptions;
use chronoflow::{Child, Ctx, DurableScheduler, Pid, Step, Template, Transition};

/// Waits for a 999 (selectively: what else arrives stays in its inbox).
fn child() -> Template<u64, u64, (), u64> {
    Template::new("child", |ctx: &mut Ctx<u64>, _: ()| {
        let _ = ctx.select(|m| *m == 999);
        1
    })
}

/// Takes messages until a 999, then joins its child.
fn p2() -> Template<u64, u64, Child<u64>, u64> {
    Template::new("p2", |ctx: &mut Ctx<u64>, c: Child<u64>| {
        loop {
            if ctx.receive() == 999 {
                return ctx.join(c).unwrap();
            }
        }
    })
}

/// Takes `n` messages, spawns the child, takes one more, and moves on to p2 (a
/// snapshot: its records before it may go, the child's may not).
fn p1() -> Template<u64, u64, u64, u64> {
    Template::stepping("p1", |ctx: &mut Ctx<u64>, n: u64| {
        for _ in 0..n {
            let _ = ctx.receive();
        }
        let c = ctx.spawn(&child(), ()).unwrap();
        let _ = ctx.receive();
        Step::Transition(Transition::to(&p2(), c))
    })
}

fn open(dir: &std::path::Path, segment_size: u64) -> DurableScheduler<u64> {
    DurableScheduler::builder()
        .register(&p1())
        .register(&p2())
        .register(&child())
        .options(JournalOptions::default().segment_size(segment_size))
        .open(dir)
        .unwrap()
        .0
}

/// 60 fillers, the last with `queued` behind it (in the parent's inbox when it
/// spawns the child), then `after` one by one. Returns the child's inbox length
/// before and after a reopening, and the parent's result.
fn run(segment_size: u64, queued: &[u64], after: &[u64]) -> (Option<usize>, Option<usize>) {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let mut sched = open(dir.path(), segment_size);
        let p = sched.spawn(&p1(), 60).unwrap().pid();
        for i in 0..60 {
            sched.send(p, 1000 + i).unwrap();
            if i == 59 {
                for &m in queued {
                    sched.send(p, m).unwrap();
                }
            }
            sched.run_until_idle().unwrap();
        }
        for &m in after {
            sched.send(p, m).unwrap();
            sched.run_until_idle().unwrap();
        }
        sched.scheduler().inbox_len(Pid(1))
    };
    let mut sched = open(dir.path(), segment_size);
    let reopened = sched.scheduler().inbox_len(Pid(1));
    sched.send(Pid(0), 999).unwrap();
    sched.run_until_idle().unwrap();
    assert_eq!(sched.result_of::<u64>(Pid(0)), Some(Ok(1)));
    (before, reopened)
}

#[test]
fn messages_to_the_parent_after_the_spawn_reach_the_rebuilt_child() {
    // Before, with small segments, the 5 (taken by the parent before its
    // snapshot) was lost for the child: left 2, right 1.
    let (before, after) = run(512, &[], &[5, 6]);
    assert_eq!(before, Some(2));
    assert_eq!(after, before);
    assert_eq!(
        run(1 << 20, &[], &[5, 6]),
        (Some(2), Some(2)),
        "one segment"
    );
}

#[test]
fn messages_queued_at_the_spawn_reach_the_rebuilt_child() {
    // The child starts with copies of [7, 8], queued in the parent's inbox when
    // it spawned; the parent's records of their delivery go with its beginning.
    let (before, after) = run(512, &[7, 8], &[]);
    assert_eq!(before, Some(2));
    assert_eq!(after, before);
}

/// Moves on to c2 at once: a snapshot of the child before the parent's messages.
fn c1() -> Template<u64, u64, (), u64> {
    Template::stepping("c1", |_: &mut Ctx<u64>, _: ()| {
        Step::Transition(Transition::to(&c2(), ()))
    })
}

fn c2() -> Template<u64, u64, (), u64> {
    Template::new("c2", |ctx: &mut Ctx<u64>, _: ()| {
        let _ = ctx.select(|m| *m == 999);
        1
    })
}

/// As p1, with a child that makes a snapshot first.
fn q1() -> Template<u64, u64, u64, u64> {
    Template::stepping("q1", |ctx: &mut Ctx<u64>, n: u64| {
        for _ in 0..n {
            let _ = ctx.receive();
        }
        let c = ctx.spawn(&c1(), ()).unwrap();
        ctx.yield_now();
        let _ = ctx.receive();
        Step::Transition(Transition::to(&p2(), c))
    })
}

#[test]
fn messages_to_the_parent_after_the_childs_snapshot_reach_it() {
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        DurableScheduler::builder()
            .register(&q1())
            .register(&p2())
            .register(&c1())
            .register(&c2())
            .options(JournalOptions::default().segment_size(512))
            .open(dir.path())
            .unwrap()
            .0
    };
    let before = {
        let mut sched = open();
        let p = sched.spawn(&q1(), 60).unwrap().pid();
        for i in 0..60 {
            sched.send(p, 1000 + i).unwrap();
            sched.run_until_idle().unwrap();
        }
        sched.send(p, 5).unwrap();
        sched.run_until_idle().unwrap();
        sched.scheduler().inbox_len(Pid(1))
    };
    // Before: left 1, right 0.
    assert_eq!(before, Some(1));
    assert_eq!(open().scheduler().inbox_len(Pid(1)), before);
}
