//! A scheduler's graceful shutdown (`SimpleScheduler::shutdown`, libeam's
//! `system.shutdown()`): spawns refused, mail drained if asked, trees stopped
//! as OTP stops them (leaves first under a supervisor, every server's
//! `terminate`), names freed, and stubborn processes killed at the deadline
//! and reported.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use chronoflow::otp::server::{self, Flow, Init, Server, ServerCtx, ServerRef};
use chronoflow::otp::supervisor::{ChildSpec, Supervisor};
use chronoflow::{
    Ctx, Local, Mail, ManualClock, Reason, SimpleScheduler, SpawnError, Template, Time,
};

type Log = Rc<RefCell<Vec<String>>>;

/// A server that logs the casts it handles and its `terminate`.
struct Named {
    name: &'static str,
    log: Log,
}

impl Server for Named {
    type Engine = server::Stackful;
    type Msg = u32;
    type Args = (&'static str, Log, bool);
    type Call = ();
    type Reply = ();
    type Cast = u32;
    type Continue = ();

    fn init(ctx: &mut ServerCtx<Self>, (name, log, trap): Self::Args) -> Init<Self> {
        if trap {
            ctx.trap_exit(true);
        }
        Init::Ok(Named { name, log })
    }

    fn handle_cast(&mut self, _: &mut ServerCtx<Self>, n: u32) -> Flow<Self> {
        self.log
            .borrow_mut()
            .push(format!("{} cast {n}", self.name));
        Flow::Continue
    }

    fn terminate(&mut self, _: &mut ServerCtx<Self>, reason: &Reason) {
        self.log
            .borrow_mut()
            .push(format!("{} terminate {reason}", self.name));
    }
}

fn named() -> Template<u32, u32, (&'static str, Log, bool), (), Local> {
    server::template::<Named>("named")
}

/// Logs each message it receives.
fn counter(log: Log) -> Template<u32, u32, (), (), Local> {
    Template::local("counter", move |ctx: &mut Ctx<u32>, ()| {
        loop {
            let n = ctx.receive();
            log.borrow_mut().push(format!("counter {n}"));
        }
    })
}

/// Traps exits and ignores them.
fn stubborn() -> Template<u32, u32, (), (), Local> {
    Template::local("stubborn", |ctx: &mut Ctx<u32>, ()| {
        ctx.trap_exit(true);
        loop {
            let _ = ctx.receive_mail();
        }
    })
}

fn manual() -> (SimpleScheduler<u32>, ManualClock) {
    let clock = ManualClock::new(Time::from_nanos(0));
    let mut sched = SimpleScheduler::new();
    sched.set_clock(clock.clone());
    (sched, clock)
}

#[test]
fn every_tree_stops_leaves_first_and_every_server_terminates() {
    let log = Log::default();
    let sup = Supervisor::new("sup")
        .child(ChildSpec::new("a", &named(), ("a", log.clone(), true)).name("a"))
        .child(ChildSpec::new("b", &named(), ("b", log.clone(), true)).name("b"))
        .template()
        .unwrap();
    let (mut sched, _) = manual();
    sched.spawn(&sup, ()).unwrap();
    // A server at the top that does not trap exits: stopped as
    // `ServerRef::stop` stops it, its `terminate` runs.
    let top = sched.spawn(&named(), ("top", log.clone(), false)).unwrap();
    sched.run_until_idle();
    sched.register("top", top.pid()).unwrap();
    assert_eq!(sched.registered().len(), 3);
    let report = sched.shutdown(Duration::from_secs(5), true);
    assert_eq!(
        *log.borrow(),
        // The newest tree first; children in reverse start order.
        [
            "top terminate shutdown",
            "b terminate shutdown",
            "a terminate shutdown"
        ]
    );
    assert!(report.drained);
    assert!(report.killed.is_empty(), "{report:?}");
    assert_eq!(report.stopped, 4);
    assert!(sched.registered().is_empty(), "names are freed");
    assert_eq!(
        sched.result(&top),
        Some(Err(chronoflow::ExitError::Shutdown(None)))
    );
}

#[test]
fn a_drain_lets_processes_handle_their_mail_first() {
    for drain in [true, false] {
        let log = Log::default();
        let (mut sched, _) = manual();
        let c = sched.spawn(&counter(log.clone()), ()).unwrap();
        let s = sched.spawn(&named(), ("s", log.clone(), false)).unwrap();
        sched.run_until_idle();
        for n in 1..=2 {
            sched.send(c.pid(), n).unwrap();
            sched.cast_server(&ServerRef::<Named>::new(s.pid()), n);
        }
        let report = sched.shutdown(Duration::from_secs(5), drain);
        assert!(report.killed.is_empty());
        if drain {
            let log = log.borrow();
            let counted: Vec<&String> = log.iter().filter(|l| l.starts_with("counter")).collect();
            assert_eq!(counted, ["counter 1", "counter 2"]);
            let served: Vec<&String> = log.iter().filter(|l| l.starts_with("s ")).collect();
            assert_eq!(served, ["s cast 1", "s cast 2", "s terminate shutdown"]);
        } else {
            // The counter ends at once; the server's stop comes after the
            // mail ahead of it (as OTP's exit signals, in order).
            assert_eq!(
                *log.borrow(),
                ["s cast 1", "s cast 2", "s terminate shutdown"]
            );
        }
    }
}

#[test]
fn spawns_are_refused_from_outside_at_once_and_from_processes_once_trees_stop() {
    let (mut sched, _) = manual();
    let log = Log::default();
    // A server whose `terminate` tries to spawn.
    struct Spawner(Log);
    impl Server for Spawner {
        type Engine = server::Stackful;
        type Msg = u32;
        type Args = Log;
        type Call = ();
        type Reply = ();
        type Cast = ();
        type Continue = ();
        fn init(_: &mut ServerCtx<Self>, log: Log) -> Init<Self> {
            Init::Ok(Spawner(log))
        }
        fn terminate(&mut self, ctx: &mut ServerCtx<Self>, _: &Reason) {
            let spawned = ctx.spawn_link(&stubborn(), ()).map(|_| ());
            self.0.borrow_mut().push(format!("{spawned:?}"));
        }
    }
    sched
        .spawn(&server::template::<Spawner>("spawner"), log.clone())
        .unwrap();
    sched.run_until_idle();
    let report = sched.shutdown(Duration::from_secs(1), true);
    assert!(report.killed.is_empty());
    assert_eq!(*log.borrow(), ["Err(ShuttingDown)"]);
    assert!(matches!(
        sched.spawn(&counter(log.clone()), ()),
        Err(SpawnError::ShuttingDown)
    ));
}

#[test]
fn a_stubborn_process_is_killed_and_reported() {
    let (mut sched, _) = manual();
    let log = Log::default();
    let s = sched.spawn(&stubborn(), ()).unwrap();
    sched.spawn(&named(), ("fine", log.clone(), false)).unwrap();
    sched.run_until_idle();
    let report = sched.shutdown(Duration::from_secs(5), false);
    assert_eq!(report.killed, [(s.pid(), "stubborn".to_string())]);
    assert_eq!(report.stopped, 1);
    assert_eq!(*log.borrow(), ["fine terminate shutdown"]);
    assert!(matches!(
        sched.result(&s),
        Some(Err(chronoflow::ExitError::Killed(_)))
    ));
    assert_eq!(sched.live(), 0);
}

#[test]
fn on_the_system_clock_the_shutdown_waits_for_timers_until_the_deadline() {
    // A supervisor whose child ignores the shutdown: the supervisor waits
    // for its child's shutdown timeout (1 s), past the scheduler's deadline
    // (100 ms): both are killed then.
    let mut sched = SimpleScheduler::<u32>::new();
    let sup = Supervisor::new("sup")
        .child(ChildSpec::new("stubborn", &stubborn(), ()).shutdown(
            chronoflow::otp::supervisor::Shutdown::Timeout(Duration::from_secs(1)),
        ))
        .template()
        .unwrap();
    let root = sched.spawn(&sup, ()).unwrap();
    sched.run_until_idle();
    let started = std::time::Instant::now();
    let report = sched.shutdown(Duration::from_millis(100), true);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(100), "{waited:?}");
    let killed: Vec<&str> = report.killed.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(killed, ["sup", "stubborn"]);
    assert!(sched.result(&root).is_some());
    assert_eq!(sched.live(), 0);

    // A child that stops within its timeout: nothing is killed, and the
    // shutdown returns without waiting for the deadline.
    let mut sched = SimpleScheduler::<u32>::new();
    let log = Log::default();
    let sup = Supervisor::new("sup")
        .child(ChildSpec::new("a", &named(), ("a", log.clone(), true)))
        .template()
        .unwrap();
    sched.spawn(&sup, ()).unwrap();
    sched.run_until_idle();
    let started = std::time::Instant::now();
    let report = sched.shutdown(Duration::from_secs(60), true);
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(report.killed.is_empty());
    assert_eq!(*log.borrow(), ["a terminate shutdown"]);
}

#[test]
fn a_process_with_mail_it_never_reads_does_not_hold_the_drain() {
    // It waits for a message of another kind (selective receive): its mail
    // waits unread, and the drain ends when every process waits.
    let (mut sched, _) = manual();
    let picky = Template::local("picky", |ctx: &mut Ctx<u32>, ()| {
        let _ = ctx.select_mail(|m| matches!(m, chronoflow::MailRef::Msg(&0)));
    });
    let p = sched.spawn(&picky, ()).unwrap();
    sched.run_until_idle();
    sched.send(p.pid(), 1).unwrap();
    let report = sched.shutdown(Duration::from_secs(1), true);
    assert!(report.drained);
    assert!(report.killed.is_empty());
    let _ = Mail::<u32>::Msg(0);
}
