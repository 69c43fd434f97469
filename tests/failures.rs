//! Failures: a panic fails one process only; dropping a scheduler or a standalone
//! process unwinds every suspended coroutine.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chronoflow::{
    Ctx, Exit, ExitError, Pid, PushError, SendError, SignalData, SimpleScheduler, Status, Template,
    Wait,
};

/// Counts its drops: held across suspension points to observe unwinding.
struct Guard(Arc<AtomicUsize>);
impl Drop for Guard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn stop_exit(signals: &[chronoflow::Signal<u64>], pid: Pid) -> Exit {
    signals
        .iter()
        .find_map(|s| match &s.data {
            SignalData::Stop { exit } if s.pid == pid => Some(exit.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no STOP of {pid}"))
}

#[test]
fn a_panic_fails_that_process_alone() {
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    let bomb = Template::new("bomb", move |ctx: &mut Ctx<u64>, _: ()| -> u64 {
        let _g = Guard(d.clone());
        loop {
            let m = ctx.receive();
            if m == 13 {
                panic!("boom on {m}");
            }
        }
    });
    let counter = Template::new("counter", |ctx: &mut Ctx<u64>, n: usize| {
        (0..n).map(|_| ctx.receive()).sum::<u64>()
    });
    let mut sched = SimpleScheduler::new();
    sched.record();
    let b = sched.spawn(&bomb, ()).unwrap();
    let c = sched.spawn(&counter, 4).unwrap();
    for m in [1, 13] {
        sched.send(b.pid(), m).unwrap();
    }
    sched.send(c.pid(), 1).unwrap();
    sched.send(c.pid(), 2).unwrap();
    sched.run_until_idle();

    match sched.result(&b) {
        Some(Err(ExitError::Failed(msg))) => assert!(msg.contains("boom on 13"), "{msg}"),
        other => panic!("expected a failure, got {other:?}"),
    }
    assert_eq!(
        drops.load(Ordering::SeqCst),
        1,
        "the panic unwound its stack"
    );
    let signals = sched.pull();
    assert!(
        matches!(stop_exit(&signals, b.pid()), Err(ExitError::Failed(m)) if m.contains("boom on 13"))
    );

    // The scheduler and the other process go on.
    assert_eq!(sched.status(c.pid()), Some(Status::Waiting(Wait::Message)));
    assert_eq!(
        sched.send(b.pid(), 2),
        Err(SendError::UnknownPid(b.pid(), 2))
    );
    sched.send(c.pid(), 3).unwrap();
    sched.send(c.pid(), 4).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&c), Some(Ok(10)));

    // And new processes still run.
    let c2 = sched.spawn(&counter, 1).unwrap();
    sched.send(c2.pid(), 7).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&c2), Some(Ok(7)));
}

#[test]
fn a_panic_with_a_str_payload_keeps_its_message() {
    let t = Template::new("static", |_: &mut Ctx<u64>, _: ()| -> u64 {
        panic!("a static message")
    });
    let mut sched = SimpleScheduler::new();
    let h = sched.spawn(&t, ()).unwrap();
    sched.run_until_idle();
    assert_eq!(
        sched.result(&h),
        Some(Err(ExitError::Failed("a static message".to_string())))
    );
}

#[test]
fn a_panic_with_a_non_string_payload_is_a_failure_not_a_crash() {
    let t = Template::new("odd", |ctx: &mut Ctx<u64>, _: ()| -> u64 {
        let _ = ctx.receive();
        std::panic::panic_any(42u32)
    });
    let other = Template::new("other", |ctx: &mut Ctx<u64>, _: ()| ctx.receive());
    let mut sched = SimpleScheduler::new();
    sched.record();
    let h = sched.spawn(&t, ()).unwrap();
    let o = sched.spawn(&other, ()).unwrap();
    sched.send(h.pid(), 0).unwrap();
    sched.run_until_idle();
    assert!(matches!(sched.result(&h), Some(Err(ExitError::Failed(_)))));
    assert!(matches!(
        stop_exit(&sched.pull(), h.pid()),
        Err(ExitError::Failed(_))
    ));
    sched.send(o.pid(), 5).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&o), Some(Ok(5)));
}

#[test]
fn a_panic_in_a_standalone_process_is_a_failure() {
    let t = Template::new("fragile", |ctx: &mut Ctx<u64>, _: ()| -> u64 {
        let m = ctx.receive();
        assert!(m < 10, "too big: {m}");
        m
    });
    let mut p = t.create(Pid(0), ()).unwrap();
    p.start().unwrap();
    p.push(11).unwrap();
    assert_eq!(p.status(), Status::Stopped);
    assert!(
        matches!(stop_exit(&p.pull(), Pid(0)), Err(ExitError::Failed(m)) if m.contains("too big: 11"))
    );
    assert_eq!(p.push(1), Err(PushError::Stopped(1)));
    assert!(matches!(p.result(), Some(Err(ExitError::Failed(m))) if m.contains("too big: 11")));
}

#[test]
fn dropping_a_scheduler_unwinds_every_suspended_process() {
    let drops = Arc::new(AtomicUsize::new(0));
    let mut sched = SimpleScheduler::new();
    let mut guards = 0;

    // Waiting for a message.
    let receiver = Template::new("receiver", |ctx: &mut Ctx<u64>, g: Guard| {
        let _g = g;
        ctx.receive()
    });
    let r = sched.spawn(&receiver, Guard(drops.clone())).unwrap();
    guards += 1;

    // Waiting to join a child that waits for a message.
    let child = receiver.clone();
    let d = drops.clone();
    let parent = Template::new("parent", move |ctx: &mut Ctx<u64>, g: Guard| {
        let _g = g;
        let c = ctx.spawn(&child, Guard(d.clone())).unwrap();
        ctx.join(c).unwrap()
    });
    let p = sched.spawn(&parent, Guard(drops.clone())).unwrap();
    guards += 2;

    // Waiting for room in a full inbox whose owner never takes a message.
    let hoarder = Template::new("hoarder", |ctx: &mut Ctx<u64>, g: Guard| {
        let _g = g;
        ctx.select(|_| false)
    })
    .capacity(1);
    let h = sched.spawn(&hoarder, Guard(drops.clone())).unwrap();
    let target = h.pid();
    let sender = Template::new("sender", move |ctx: &mut Ctx<u64>, g: Guard| {
        let _g = g;
        ctx.send_to(target, 1);
        ctx.send_to(target, 2);
    });
    let s = sched.spawn(&sender, Guard(drops.clone())).unwrap();
    guards += 2;

    // Waiting on an effect's future that never completes.
    let waiter = Template::new("waiter", |ctx: &mut Ctx<u64>, g: Guard| {
        let _g = g;
        ctx.effect_future(std::future::pending::<u64>())
    });
    let w = sched.spawn(&waiter, Guard(drops.clone())).unwrap();
    guards += 1;

    // Runnable, paused by the budget.
    let spinner: Template<u64, u64, Guard, ()> =
        Template::new("spinner", |ctx: &mut Ctx<u64>, g: Guard| {
            let _g = g;
            loop {
                ctx.yield_now();
            }
        });
    let sp = sched.spawn(&spinner, Guard(drops.clone())).unwrap();
    guards += 1;

    // Created, never started: its arguments hold the guard.
    sched.create(&receiver, Guard(drops.clone())).unwrap();
    guards += 1;

    let _ = sched.update();
    let _ = sched.update();
    assert_eq!(sched.status(r.pid()), Some(Status::Waiting(Wait::Message)));
    assert!(matches!(
        sched.status(p.pid()),
        Some(Status::Waiting(Wait::Join(_)))
    ));
    assert_eq!(
        sched.status(s.pid()),
        Some(Status::Waiting(Wait::Room(h.pid())))
    );
    assert_eq!(sched.status(w.pid()), Some(Status::Waiting(Wait::Effect)));
    assert_eq!(sched.status(sp.pid()), Some(Status::Ready));
    assert_eq!(sched.live(), 8);
    assert_eq!(drops.load(Ordering::SeqCst), 0);

    drop(sched);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        guards,
        "every suspended stack (and unstarted body's arguments) was unwound"
    );
}

#[test]
fn dropping_a_scheduler_with_stopped_unjoined_children_frees_them() {
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    let child_pid = Arc::new(std::sync::Mutex::new(None));
    let cp = child_pid.clone();
    let quick = Template::new("quick", move |ctx: &mut Ctx<u64>, _: ()| {
        *cp.lock().unwrap() = Some(ctx.pid());
        1u64
    });
    let parent = Template::new("parent", move |ctx: &mut Ctx<u64>, _: ()| {
        let _g = Guard(d.clone());
        let c = ctx.spawn(&quick, ()).unwrap();
        let _ = ctx.receive();
        ctx.join(c).unwrap()
    });
    let mut sched = SimpleScheduler::new();
    let p = sched.spawn(&parent, ()).unwrap();
    sched.run_until_idle();
    // The child ended; it is kept (stopped) until its parent joins it.
    let kid = child_pid.lock().unwrap().expect("the child ran");
    assert_ne!(kid, p.pid());
    assert_eq!(sched.status(kid), Some(Status::Stopped));
    assert_eq!(sched.live(), 2);
    drop(sched);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn dropping_a_standalone_process_unwinds_it_and_its_children() {
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    let child = Template::new("child", move |ctx: &mut Ctx<u64>, _: ()| {
        let _g = Guard(d.clone());
        ctx.select(|m| *m == 1000)
    });
    let d = drops.clone();
    let parent = Template::new("parent", move |ctx: &mut Ctx<u64>, _: ()| {
        let _g = Guard(d.clone());
        let c = ctx.spawn(&child, ()).unwrap();
        ctx.join(c).unwrap()
    });
    let mut p = parent.create(Pid(0), ()).unwrap();
    p.start().unwrap();
    p.push(1).unwrap();
    assert_eq!(p.status(), Status::Waiting(Wait::Join(Pid(1))));
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    drop(p);
    assert_eq!(drops.load(Ordering::SeqCst), 2);

    // Never started: the arguments are dropped with it.
    let holder = Template::new("holder", |_: &mut Ctx<u64>, g: Guard| drop(g));
    let p = holder.create(Pid(0), Guard(drops.clone())).unwrap();
    drop(p);
    assert_eq!(drops.load(Ordering::SeqCst), 3);
}

#[test]
fn a_panic_inside_a_child_while_the_parent_waits_does_not_fail_the_parent() {
    let child = Template::new("child", |ctx: &mut Ctx<u64>, _: ()| -> u64 {
        let _ = ctx.receive();
        panic!("child down")
    });
    let parent = Template::new("parent", move |ctx: &mut Ctx<u64>, _: ()| {
        let c = ctx.spawn(&child, ()).unwrap();
        ctx.join(c).is_err()
    });
    let mut p = parent.create(Pid(0), ()).unwrap();
    p.start().unwrap();
    p.push(0).unwrap();
    assert_eq!(p.result(), Some(Ok(true)));
    let signals = p.pull();
    assert!(
        matches!(stop_exit(&signals, Pid(1)), Err(ExitError::Failed(m)) if m.contains("child down"))
    );
    assert!(stop_exit(&signals, Pid(0)).is_ok());
}
