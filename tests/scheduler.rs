//! The `SimpleScheduler`: pids, create/start, sends from outside, fair passes,
//! introspection and undelivered messages.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chronoflow::{
    Ctx, ExitError, Pid, SendError, SimpleScheduler, StartError, Status, Template,
    UndeliveredReason, Wait,
};

/// Receives one message and returns it.
fn once() -> Template<u64, u64, (), u64> {
    Template::new("once", |ctx: &mut Ctx<u64>, _: ()| ctx.receive())
}

/// Receives `n` messages and returns them in order.
fn collect() -> Template<u64, u64, usize, Vec<u64>> {
    Template::new("collect", |ctx: &mut Ctx<u64>, n: usize| {
        (0..n).map(|_| ctx.receive()).collect()
    })
}

#[test]
fn pids_are_unique_increasing_and_never_reused() {
    let mut sched = SimpleScheduler::new();
    let child_pids = Arc::new(Mutex::new(Vec::new()));
    let seen = child_pids.clone();
    let child = Template::new("child", |_: &mut Ctx<u64>, _: ()| {});
    let parent = Template::new("parent", move |ctx: &mut Ctx<u64>, _: ()| {
        let c = ctx.spawn(&child, ()).unwrap();
        seen.lock().unwrap().push(c.pid());
        ctx.join(c).unwrap();
    });

    let mut pids = Vec::new();
    let first: Vec<_> = (0..5).map(|_| sched.spawn(&once(), ()).unwrap()).collect();
    pids.extend(first.iter().map(|h| h.pid()));
    assert_eq!(pids[0], Pid(0), "pids start at 0");

    // Let some of them finish, and take their results.
    for h in first.iter().step_by(2) {
        sched.send(h.pid(), h.pid().as_u64()).unwrap();
    }
    let p = sched.spawn(&parent, ()).unwrap();
    pids.push(p.pid());
    sched.run_until_idle();
    for h in first.iter().step_by(2) {
        assert_eq!(sched.result(h), Some(Ok(h.pid().as_u64())));
        assert_eq!(sched.status(h.pid()), None);
    }
    assert_eq!(sched.result(&p), Some(Ok(())));
    pids.extend(child_pids.lock().unwrap().iter().copied());

    // Spawn more: none of the finished pids comes back.
    for _ in 0..5 {
        pids.push(sched.spawn(&once(), ()).unwrap().pid());
    }
    let p2 = sched.spawn(&parent, ()).unwrap();
    pids.push(p2.pid());
    sched.run_until_idle();
    pids.push(*child_pids.lock().unwrap().last().unwrap());

    assert_eq!(pids.len(), 14);
    assert!(
        pids.windows(2).all(|w| w[0] < w[1]),
        "pids must be distinct and increasing in creation order: {pids:?}"
    );
}

#[test]
fn create_then_start() {
    let mut sched = SimpleScheduler::new();
    let h = sched.create(&collect(), 2).unwrap();
    assert_eq!(sched.status(h.pid()), Some(Status::Created));
    assert_eq!(sched.live(), 1);

    // A created process does not run, but messages queue in its inbox.
    sched.send(h.pid(), 10).unwrap();
    sched.send(h.pid(), 20).unwrap();
    assert_eq!(sched.inbox_len(h.pid()), Some(2));
    assert!(sched.update().is_idle());
    assert_eq!(sched.status(h.pid()), Some(Status::Created));

    assert_eq!(sched.start(h.pid()), Ok(()));
    assert_eq!(sched.status(h.pid()), Some(Status::Ready));
    assert_eq!(
        sched.start(h.pid()),
        Err(StartError::AlreadyStarted(h.pid()))
    );
    assert_eq!(
        sched.start(Pid(12345)),
        Err(StartError::UnknownPid(Pid(12345)))
    );

    sched.run_until_idle();
    assert_eq!(
        sched.start(h.pid()),
        Err(StartError::AlreadyStarted(h.pid())),
        "an ended process whose result is kept was started before"
    );
    assert_eq!(sched.result(&h), Some(Ok(vec![10, 20])));
    assert_eq!(
        sched.start(h.pid()),
        Err(StartError::UnknownPid(h.pid())),
        "once its result is taken, the pid names no process"
    );
}

#[test]
fn sends_from_outside_arrive_in_order() {
    let mut sched = SimpleScheduler::new();
    let h = sched.spawn(&collect(), 5).unwrap();
    sched.run_until_idle();
    for m in [5, 1, 4, 2, 3] {
        sched.send(h.pid(), m).unwrap();
    }
    sched.run_until_idle();
    assert_eq!(sched.result(&h), Some(Ok(vec![5, 1, 4, 2, 3])));
}

#[test]
fn update_is_one_fair_pass() {
    let mut sched = SimpleScheduler::new();
    let counters: Arc<Vec<AtomicUsize>> = Arc::new((0..3).map(|_| AtomicUsize::new(0)).collect());
    let c = counters.clone();
    // Each turn: count one, then give up the turn.
    let yielder = Template::new("yielder", move |ctx: &mut Ctx<u64>, i: usize| {
        for _ in 0..4 {
            c[i].fetch_add(1, Ordering::SeqCst);
            ctx.yield_now();
        }
    });
    let hs: Vec<_> = (0..3).map(|i| sched.spawn(&yielder, i).unwrap()).collect();
    let counts = || -> Vec<usize> { counters.iter().map(|c| c.load(Ordering::SeqCst)).collect() };

    let pass = sched.update();
    assert_eq!(pass.ran, 3);
    assert!(!pass.is_idle());
    assert_eq!(counts(), [1, 1, 1], "each runnable process ran one turn");
    let pass = sched.update();
    assert_eq!(pass.ran, 3);
    assert_eq!(counts(), [2, 2, 2]);

    assert_eq!(sched.update().ran, 3);
    assert_eq!(sched.update().ran, 3);
    assert_eq!(counts(), [4, 4, 4]);
    // The last resumption returns from each body.
    assert_eq!(sched.update().ran, 3);
    for h in hs {
        assert_eq!(sched.result(&h), Some(Ok(())));
    }
    assert!(sched.update().is_idle());
}

#[test]
fn a_process_made_runnable_during_a_pass_runs_in_the_next_one() {
    let mut sched = SimpleScheduler::new();
    let sink = sched.spawn(&once(), ()).unwrap();
    let sink_pid = sink.pid();
    let forward = Template::new("forward", move |ctx: &mut Ctx<u64>, _: ()| {
        let m = ctx.receive();
        ctx.send_to(sink_pid, m + 1);
    });
    let f = sched.spawn(&forward, ()).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.status(sink_pid), Some(Status::Waiting(Wait::Message)));

    sched.send(f.pid(), 1).unwrap();
    // The forwarder runs and sends; the sink (woken during the pass) waits its turn.
    assert_eq!(sched.update().ran, 1);
    assert_eq!(sched.inbox_len(sink_pid), Some(1));
    assert_eq!(sched.status(sink_pid), Some(Status::Ready));
    assert_eq!(sched.update().ran, 1);
    assert_eq!(sched.result(&sink), Some(Ok(2)));
    assert!(sched.update().is_idle());
}

#[test]
fn run_until_idle_runs_everything_that_can_run() {
    let mut sched = SimpleScheduler::new();
    // A ring of relays passes a counter around until it reaches 30.
    let relay = Template::new("relay", |ctx: &mut Ctx<u64>, next: u64| {
        loop {
            let n = ctx.receive();
            if n >= 30 {
                return n;
            }
            ctx.send_to(Pid(next), n + 1);
        }
    });
    let hs: Vec<_> = (0..3)
        .map(|i| sched.spawn(&relay, (i + 1) % 3).unwrap())
        .collect();
    assert!(sched.run_until_idle() > 0);
    assert!(sched.update().is_idle());
    sched.send(hs[0].pid(), 0).unwrap();
    let turns = sched.run_until_idle();
    assert!(turns >= 31, "one turn per hop at least, ran {turns}");
    assert!(sched.update().is_idle());
    assert_eq!(sched.run_until_idle(), 0);
    // The message that reached 30 stopped the relay that got it (30 % 3 == 0).
    assert_eq!(sched.result(&hs[0]), Some(Ok(30)));
    assert_eq!(sched.result(&hs[1]), None);
    assert_eq!(
        sched.status(hs[1].pid()),
        Some(Status::Waiting(Wait::Message))
    );
}

#[test]
fn introspection() {
    let mut sched = SimpleScheduler::new();
    assert_eq!(sched.live(), 0);
    assert_eq!(sched.status(Pid(0)), None);
    assert_eq!(sched.inbox_len(Pid(0)), None);

    let a = sched.spawn(&collect(), 3).unwrap();
    let b = sched.create(&once(), ()).unwrap();
    assert_eq!(sched.live(), 2);
    assert_eq!(sched.status(a.pid()), Some(Status::Ready));
    assert_eq!(sched.status(b.pid()), Some(Status::Created));
    assert_eq!(sched.inbox_len(a.pid()), Some(0));

    sched.run_until_idle();
    assert_eq!(sched.status(a.pid()), Some(Status::Waiting(Wait::Message)));
    sched.send(a.pid(), 1).unwrap();
    sched.send(a.pid(), 2).unwrap();
    assert_eq!(sched.inbox_len(a.pid()), Some(2));
    assert_eq!(sched.status(a.pid()), Some(Status::Ready));
    sched.run_until_idle();
    assert_eq!(sched.inbox_len(a.pid()), Some(0));
    assert_eq!(sched.status(a.pid()), Some(Status::Waiting(Wait::Message)));

    sched.send(a.pid(), 3).unwrap();
    sched.run_until_idle();
    // Ended: stopped until its result is taken, then gone.
    assert_eq!(sched.status(a.pid()), Some(Status::Stopped));
    assert_eq!(sched.live(), 1);
    assert_eq!(sched.result(&a), Some(Ok(vec![1, 2, 3])));
    assert_eq!(sched.status(a.pid()), None);
    assert_eq!(sched.inbox_len(a.pid()), None);
    assert_eq!(sched.result(&a), None);
    assert_eq!(sched.live(), 1);
}

#[test]
fn messages_without_route_or_destination_are_kept_undelivered() {
    let mut sched = SimpleScheduler::new();
    let gone = sched.spawn(&once(), ()).unwrap();
    sched.send(gone.pid(), 0).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&gone), Some(Ok(0)));

    let gone_pid = gone.pid();
    // No route at all.
    let unrouted = Template::new("unrouted", |ctx: &mut Ctx<u64>, _: ()| ctx.send(1));
    // A route that gives no destination for odd messages, an unknown pid for even ones.
    let routed = Template::new("routed", move |ctx: &mut Ctx<u64>, _: ()| {
        ctx.send(3);
        ctx.send(4);
        ctx.send_to(Pid(777), 5);
        ctx.send_to(gone_pid, 6);
    })
    .route(|m: &u64| m.is_multiple_of(2).then_some(Pid(999)));

    let u = sched.spawn(&unrouted, ()).unwrap();
    let r = sched.spawn(&routed, ()).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&u), Some(Ok(())));
    assert_eq!(sched.result(&r), Some(Ok(())));

    let kept: Vec<_> = sched
        .take_undelivered()
        .into_iter()
        .map(|d| (d.from, d.to, d.reason, d.msg))
        .collect();
    assert_eq!(
        kept,
        [
            (Some(u.pid()), None, UndeliveredReason::NoRoute, 1),
            (Some(r.pid()), None, UndeliveredReason::NoRoute, 3),
            (
                Some(r.pid()),
                Some(Pid(999)),
                UndeliveredReason::UnknownPid,
                4
            ),
            (
                Some(r.pid()),
                Some(Pid(777)),
                UndeliveredReason::UnknownPid,
                5
            ),
            (
                Some(r.pid()),
                Some(gone_pid),
                UndeliveredReason::UnknownPid,
                6
            ),
        ]
    );
    assert!(sched.take_undelivered().is_empty(), "taken once");
}

#[test]
fn send_from_outside_to_an_unknown_pid_gives_the_message_back() {
    let mut sched: SimpleScheduler<String> = SimpleScheduler::new();
    assert_eq!(
        sched.send(Pid(42), "hello".to_string()),
        Err(SendError::UnknownPid(Pid(42), "hello".to_string()))
    );

    let t = Template::new("one", |ctx: &mut Ctx<String>, _: ()| ctx.receive());
    let h = sched.spawn(&t, ()).unwrap();
    sched.send(h.pid(), "first".to_string()).unwrap();
    sched.run_until_idle();
    let err = sched.send(h.pid(), "second".to_string()).unwrap_err();
    assert_eq!(
        err,
        SendError::UnknownPid(h.pid(), "second".to_string()),
        "a stopped process takes no more messages"
    );
    assert_eq!(err.into_inner(), "second");
    assert_eq!(sched.result(&h), Some(Ok("first".to_string())));
    // Sends from outside that fail are returned, not kept.
    assert!(sched.take_undelivered().is_empty());
}

#[test]
fn results_of_failed_processes_are_errors() {
    let mut sched = SimpleScheduler::new();
    let t = Template::new("fails", |ctx: &mut Ctx<u64>, _: ()| -> u64 {
        let m = ctx.receive();
        panic!("bad message {m}")
    });
    let h = sched.spawn(&t, ()).unwrap();
    sched.send(h.pid(), 9).unwrap();
    sched.run_until_idle();
    match sched.result(&h) {
        Some(Err(ExitError::Failed(msg))) => assert!(msg.contains("bad message 9"), "{msg}"),
        other => panic!("expected a failure, got {other:?}"),
    }
}

/// Templates made by `Template::new` cross threads; local ones, whose bodies
/// need not, serve the processes of their own thread (their `!Send` is checked
/// by a `compile_fail` doctest of `Template::local`).
#[test]
fn shared_templates_are_send_and_local_ones_capture_what_is_not() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    let shared = Template::new("shared", |ctx: &mut Ctx<u64>, _: ()| ctx.receive());
    send_sync(&shared);
    let shared = std::thread::spawn(move || shared).join().unwrap();

    let log = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let l = log.clone();
    let local = Template::local("local", move |ctx: &mut Ctx<u64>, _: ()| {
        let n = ctx.receive();
        l.borrow_mut().push(n);
        n
    });
    let mut sched = SimpleScheduler::new();
    let a = sched.spawn(&local, ()).unwrap();
    let b = sched.spawn(&shared, ()).unwrap();
    let c = sched.spawn(&local.clone(), ()).unwrap();
    for (h, n) in [(&a, 1), (&b, 2), (&c, 3)] {
        sched.send(h.pid(), n).unwrap();
    }
    sched.run_until_idle();
    assert_eq!(*log.borrow(), [1, 3]);
    assert_eq!(
        [sched.result(&a), sched.result(&b), sched.result(&c)],
        [Some(Ok(1)), Some(Ok(2)), Some(Ok(3))]
    );
}
