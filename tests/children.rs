//! Children: spawn, shared messages, join, unique pids, unjoined children, failures,
//! grandchildren.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chronoflow::{
    Ctx, Exit, ExitError, JoinError, Pid, Signal, SignalData, SimpleScheduler, Template, Value,
};

/// Counts its drops: held across suspension points to observe unwinding.
struct Guard(Arc<AtomicUsize>);
impl Drop for Guard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Receives `n` messages and returns them.
fn collect() -> Template<u64, u64, usize, Vec<u64>> {
    Template::new("collect", |ctx: &mut Ctx<u64>, n: usize| {
        (0..n).map(|_| ctx.receive()).collect()
    })
}

/// The child that `parent` spawned (its first SPAWN).
fn spawned_by(signals: &[Signal<u64>], parent: Pid) -> Pid {
    signals
        .iter()
        .find_map(|s| match s.data {
            SignalData::Spawn { child } if s.pid == parent => Some(child),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{parent} spawned nothing"))
}

fn position(signals: &[Signal<u64>], pid: Pid, pred: impl Fn(&SignalData<u64>) -> bool) -> usize {
    signals
        .iter()
        .position(|s| s.pid == pid && pred(&s.data))
        .unwrap_or_else(|| panic!("no such signal of {pid} in {signals:#?}"))
}

#[test]
fn a_child_gets_the_unconsumed_inbox_and_every_later_message() {
    let child = collect();
    let parent = Template::new("parent", move |ctx: &mut Ctx<u64>, _: ()| {
        // 1 and 2 arrive before "0" and stay in the inbox.
        ctx.select(|m| *m == 0);
        let c = ctx.spawn(&child, 4).unwrap();
        let mine: Vec<u64> = (0..4).map(|_| ctx.receive()).collect();
        let theirs = ctx.join(c).unwrap();
        (mine, theirs)
    });
    let mut p = parent.create(Pid(0), ()).unwrap();
    p.start().unwrap();
    for m in [1, 2, 0, 3, 4] {
        p.push(m).unwrap();
    }
    assert_eq!(p.result(), Some(Ok((vec![1, 2, 3, 4], vec![1, 2, 3, 4]))));
}

#[test]
fn a_child_does_not_get_what_its_parent_consumed_before_the_spawn() {
    let child = collect();
    let parent = Template::new("parent", move |ctx: &mut Ctx<u64>, _: ()| {
        let first = ctx.receive();
        let c = ctx.spawn(&child, 1).unwrap();
        let second = ctx.receive();
        (first, second, ctx.join(c).unwrap())
    });
    let mut sched = SimpleScheduler::new();
    let h = sched.spawn(&parent, ()).unwrap();
    sched.send(h.pid(), 10).unwrap();
    sched.run_until_idle();
    sched.send(h.pid(), 20).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&h), Some(Ok((10, 20, vec![20]))));
}

#[test]
fn spawn_then_child_start_then_join_in_signal_order() {
    let child = Template::new("child", |ctx: &mut Ctx<u64>, k: u64| ctx.receive() * k);
    let parent = Template::new("parent", move |ctx: &mut Ctx<u64>, _: ()| {
        let c = ctx.spawn(&child, 3).unwrap();
        let _ = ctx.receive();
        ctx.join(c).unwrap()
    });
    let mut p = parent.create(Pid(10), ()).unwrap();
    p.start().unwrap();
    p.push(7).unwrap();
    assert_eq!(p.result(), Some(Ok(21)));

    let signals = p.pull();
    let (me, kid) = (Pid(10), Pid(11));
    let spawn = position(&signals, me, |k| *k == SignalData::Spawn { child: kid });
    let child_start = position(&signals, kid, |k| *k == SignalData::Start);
    let child_stop = position(&signals, kid, |k| matches!(k, SignalData::Stop { .. }));
    let join = position(&signals, me, |k| *k == SignalData::Join { child: kid });
    let stop = position(&signals, me, |k| matches!(k, SignalData::Stop { .. }));
    assert_eq!(position(&signals, me, |k| *k == SignalData::Start), 0);
    assert_eq!(child_start, spawn + 1, "the child's START follows SPAWN");
    assert!(child_stop < join && join < stop);
    assert_eq!(
        signals[child_stop].data,
        SignalData::Stop {
            exit: Ok(Value::encode(&21u64))
        }
    );
    assert_eq!(signals[child_start].seq, 0, "a child has its own sequence");
}

#[test]
fn every_child_gets_a_unique_pid() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let leaf = Template::new("leaf", move |ctx: &mut Ctx<u64>, _: ()| {
        s.lock().unwrap().push(ctx.pid());
    });
    let s = seen.clone();
    let mid = Template::new("mid", move |ctx: &mut Ctx<u64>, _: ()| {
        s.lock().unwrap().push(ctx.pid());
        let a = ctx.spawn(&leaf, ()).unwrap();
        let b = ctx.spawn(&leaf, ()).unwrap();
        assert_ne!(a.pid(), b.pid());
        ctx.join(a).unwrap();
        ctx.join(b).unwrap();
    });
    let s = seen.clone();
    let top = Template::new("top", move |ctx: &mut Ctx<u64>, _: ()| {
        s.lock().unwrap().push(ctx.pid());
        let children: Vec<_> = (0..3).map(|_| ctx.spawn(&mid, ()).unwrap()).collect();
        for c in children {
            ctx.join(c).unwrap();
        }
    });
    let mut sched = SimpleScheduler::new();
    let a = sched.spawn(&top, ()).unwrap();
    let b = sched.spawn(&top, ()).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&a), Some(Ok(())));
    assert_eq!(sched.result(&b), Some(Ok(())));
    let c = sched.spawn(&top, ()).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&c), Some(Ok(())));

    let pids = seen.lock().unwrap().clone();
    // 3 tops, each with 3 mids, each with 2 leaves.
    assert_eq!(pids.len(), 3 * (1 + 3 * (1 + 2)));
    let distinct: HashSet<Pid> = pids.iter().copied().collect();
    assert_eq!(distinct.len(), pids.len(), "duplicate pids: {pids:?}");
}

#[test]
fn the_parent_of_a_child_is_known() {
    let child = Template::new("child", |ctx: &mut Ctx<u64>, _: ()| ctx.parent());
    let parent = Template::new("parent", move |ctx: &mut Ctx<u64>, _: ()| {
        let c = ctx.spawn(&child, ()).unwrap();
        (ctx.parent(), ctx.pid(), ctx.join(c).unwrap())
    });
    let mut p = parent.create(Pid(5), ()).unwrap();
    p.start().unwrap();
    assert_eq!(p.result(), Some(Ok((None, Pid(5), Some(Pid(5))))));
}

#[test]
fn returning_with_unjoined_children_fails_and_kills_them() {
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    let grandchild = Template::new("grandchild", move |ctx: &mut Ctx<u64>, _: ()| {
        let _g = Guard(d.clone());
        ctx.select(|_| false)
    });
    let d = drops.clone();
    let child = Template::new("child", move |ctx: &mut Ctx<u64>, _: ()| {
        let _g = Guard(d.clone());
        let gc = ctx.spawn(&grandchild, ()).unwrap();
        ctx.join(gc).unwrap()
    });
    let parent = Template::new("parent", move |ctx: &mut Ctx<u64>, _: ()| {
        let _c = ctx.spawn(&child, ()).unwrap();
        ctx.receive()
    });
    let mut sched = SimpleScheduler::new();
    sched.record();
    let h = sched.spawn(&parent, ()).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.live(), 3);
    assert_eq!(drops.load(Ordering::SeqCst), 0);

    sched.send(h.pid(), 1).unwrap();
    sched.run_until_idle();
    match sched.result(&h) {
        Some(Err(ExitError::Failed(msg))) => {
            assert!(msg.contains("unjoined"), "reason: {msg}")
        }
        other => panic!("expected a failure for unjoined children, got {other:?}"),
    }
    assert_eq!(sched.live(), 0, "the children were stopped and freed");
    assert_eq!(drops.load(Ordering::SeqCst), 2, "both stacks were unwound");

    let signals = sched.pull();
    let p = h.pid();
    let c = spawned_by(&signals, p);
    let gc = spawned_by(&signals, c);
    let stop_of = |pid: Pid| {
        let i = position(&signals, pid, |k| matches!(k, SignalData::Stop { .. }));
        match &signals[i].data {
            SignalData::Stop { exit } => (i, exit.clone()),
            _ => unreachable!(),
        }
    };
    let (pi, pexit) = stop_of(p);
    let (ci, cexit) = stop_of(c);
    let (gi, gexit) = stop_of(gc);
    assert!(matches!(pexit, Err(ExitError::Failed(ref m)) if m.contains("unjoined")));
    assert!(matches!(cexit, Err(ExitError::Killed(_))), "{cexit:?}");
    assert!(matches!(gexit, Err(ExitError::Killed(_))), "{gexit:?}");
    assert!(
        gi < ci && ci < pi,
        "the deepest stops first, the parent last"
    );
}

#[test]
fn a_standalone_parent_with_an_unjoined_child_fails() {
    let child = collect();
    let parent = Template::new("parent", move |ctx: &mut Ctx<u64>, _: ()| {
        let _c = ctx.spawn(&child, 10).unwrap();
        ctx.receive()
    });
    let mut p = parent.create(Pid(0), ()).unwrap();
    p.start().unwrap();
    p.push(1).unwrap();
    assert!(matches!(p.result(), Some(Err(ExitError::Failed(ref m))) if m.contains("unjoined")),);
    let stops: Vec<(Pid, Exit)> = p
        .pull()
        .into_iter()
        .filter_map(|s| match s.data {
            SignalData::Stop { exit } => Some((s.pid, exit)),
            _ => None,
        })
        .collect();
    assert_eq!(stops.len(), 2);
    assert_eq!(stops[0].0, Pid(1));
    assert!(matches!(stops[0].1, Err(ExitError::Killed(_))));
    assert_eq!(stops[1].0, Pid(0));
    assert!(matches!(stops[1].1, Err(ExitError::Failed(_))));
}

#[test]
fn joining_a_child_that_panicked_gives_its_failure() {
    let child = Template::new("child", |ctx: &mut Ctx<u64>, _: ()| -> u64 {
        let m = ctx.receive();
        panic!("child exploded on {m}")
    });
    // JoinError is no Payload: hand it out through shared state.
    let out = Arc::new(Mutex::new(None));
    let o = out.clone();
    let parent = Template::new("parent", move |ctx: &mut Ctx<u64>, _: ()| {
        let c = ctx.spawn(&child, ()).unwrap();
        let joined = ctx.join(c);
        *o.lock().unwrap() = Some(joined);
        // The parent carries on after its child's failure.
        ctx.receive()
    });
    let mut sched = SimpleScheduler::new();
    sched.record();
    let h = sched.spawn(&parent, ()).unwrap();
    sched.run_until_idle();
    sched.send(h.pid(), 5).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&h), Some(Ok(5)));
    match out.lock().unwrap().take().expect("joined") {
        Err(JoinError::Exited(ExitError::Failed(msg))) => {
            assert!(msg.contains("child exploded on 5"), "{msg}")
        }
        other => panic!("expected the child's failure, got {other:?}"),
    }
    let signals = sched.pull();
    let child_pid = spawned_by(&signals, h.pid());
    let i = position(&signals, child_pid, |k| {
        matches!(k, SignalData::Stop { .. })
    });
    assert!(
        matches!(&signals[i].data, SignalData::Stop { exit: Err(ExitError::Failed(m)) } if m.contains("child exploded"))
    );
    position(&signals, h.pid(), |k| {
        *k == SignalData::Join { child: child_pid }
    });
}

#[test]
fn grandchildren_get_their_ancestors_messages_and_are_joined() {
    let grandchild = collect();
    let child = Template::new("child", move |ctx: &mut Ctx<u64>, n: usize| {
        let gc = ctx.spawn(&grandchild, n).unwrap();
        let mine: Vec<u64> = (0..n).map(|_| ctx.receive()).collect();
        (gc.pid(), mine, ctx.join(gc).unwrap())
    });
    let parent = Template::new("parent", move |ctx: &mut Ctx<u64>, n: usize| {
        let c = ctx.spawn(&child, n).unwrap();
        let mine: Vec<u64> = (0..n).map(|_| ctx.receive()).collect();
        (c.pid(), mine, ctx.join(c).unwrap())
    });
    let mut p = parent.create(Pid(20), 3).unwrap();
    p.start().unwrap();
    for m in [4, 5, 6] {
        p.push(m).unwrap();
    }
    let (c, mine, (gc, child_got, grandchild_got)) = p.result().unwrap().unwrap();
    assert_eq!((c, gc), (Pid(21), Pid(22)));
    assert_eq!(mine, [4, 5, 6]);
    assert_eq!(child_got, [4, 5, 6]);
    assert_eq!(grandchild_got, [4, 5, 6]);

    let signals = p.pull();
    let spawn = position(&signals, Pid(21), |k| {
        *k == SignalData::Spawn { child: Pid(22) }
    });
    assert_eq!(
        position(&signals, Pid(22), |k| *k == SignalData::Start),
        spawn + 1
    );
}

#[test]
fn a_message_sent_to_a_child_does_not_reach_its_parent() {
    let child = Template::new("child", |ctx: &mut Ctx<u64>, _: ()| ctx.receive());
    let parent = Template::new("parent", move |ctx: &mut Ctx<u64>, _: ()| {
        let c = ctx.spawn(&child, ()).unwrap();
        let me = ctx.pid();
        ctx.send_to(c.pid(), 1);
        let from_child = ctx.join(c).unwrap();
        (from_child, ctx.inbox_len(), me)
    });
    let mut sched = SimpleScheduler::new();
    let h = sched.spawn(&parent, ()).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&h), Some(Ok((1, 0, h.pid()))));
}

#[test]
fn joining_another_processs_child_is_refused() {
    let stash: Arc<Mutex<Option<chronoflow::Child<u64>>>> = Arc::new(Mutex::new(None));
    let child = Template::new("child", |ctx: &mut Ctx<u64>, _: ()| ctx.receive());
    let s = stash.clone();
    let owner = Template::new("owner", move |ctx: &mut Ctx<u64>, _: ()| {
        *s.lock().unwrap() = Some(ctx.spawn(&child, ()).unwrap());
        ctx.select(|_| false)
    });
    let s = stash.clone();
    let thief = Template::new("thief", move |ctx: &mut Ctx<u64>, _: ()| {
        let c = s.lock().unwrap().take().expect("stashed");
        let pid = c.pid();
        (pid, ctx.join(c) == Err(JoinError::NotAChild(pid)))
    });
    let mut sched = SimpleScheduler::new();
    sched.spawn(&owner, ()).unwrap();
    sched.run_until_idle();
    let t = sched.spawn(&thief, ()).unwrap();
    sched.run_until_idle();
    let (pid, refused) = sched.result(&t).unwrap().unwrap();
    assert!(refused, "join of {pid} by a stranger must be NotAChild");
    // The child is untouched: still waiting for a message.
    assert_eq!(
        sched.status(pid),
        Some(chronoflow::Status::Waiting(chronoflow::Wait::Message))
    );
}

#[test]
fn a_message_to_a_parent_wakes_the_parent_before_its_children() {
    // Each process records, as an effect, the moment it got the message.
    let child = Template::new("child", |ctx: &mut Ctx<u32>, _: ()| {
        let m = ctx.receive();
        ctx.effect(|| ("child".to_string(), m))
    });
    let parent = Template::new("parent", move |ctx: &mut Ctx<u32>, _: ()| {
        let a = ctx.spawn(&child, ()).unwrap();
        let b = ctx.spawn(&child, ()).unwrap();
        let m = ctx.receive();
        ctx.effect(|| ("parent".to_string(), m));
        (ctx.join(a).unwrap(), ctx.join(b).unwrap())
    });
    let mut sched = SimpleScheduler::new();
    sched.record();
    let h = sched.spawn(&parent, ()).unwrap();
    sched.run_until_idle();
    sched.send(h.pid(), 9).unwrap();
    sched.run_until_idle();
    let uses: Vec<Pid> = sched
        .pull()
        .into_iter()
        .filter(|s| s.kind() == chronoflow::SignalKind::Use)
        .map(|s| s.pid)
        .collect();
    assert_eq!(uses.len(), 3);
    assert_eq!(uses[0], h.pid(), "the parent runs first: {uses:?}");
    assert_eq!(
        sched.result(&h),
        Some(Ok((("child".to_string(), 9), ("child".to_string(), 9))))
    );
}
