//! A parent's view of its children (`Ctx::children`, `Ctx::stop_child`,
//! libeam's `getChildren`/`stopChild`): spawned children not yet joined and
//! processes started with `spawn_link`, listed in order; one stopped as a
//! supervisor stops a child (Shutdown, then Kill after the timeout).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use chronoflow::otp::server::{self, Flow, Init, Server, ServerCtx};
use chronoflow::otp::supervisor::Shutdown;
use chronoflow::{Ctx, JoinError, Mail, ManualClock, Pid, Reason, SimpleScheduler, Template, Time};

type Log = Rc<RefCell<Vec<String>>>;

/// Waits for messages until told 0.
fn waiter() -> Template<u32, u32, (), u32, chronoflow::Local> {
    Template::local("waiter", |ctx: &mut Ctx<u32>, ()| {
        let mut n = 0;
        while ctx.receive() != 0 {
            n += 1;
        }
        n
    })
}

/// Traps exits, and ignores every exit signal (as a stubborn child does).
fn stubborn() -> Template<u32, u32, (), (), chronoflow::Local> {
    Template::local("stubborn", |ctx: &mut Ctx<u32>, ()| {
        ctx.trap_exit(true);
        loop {
            let _ = ctx.receive_mail();
        }
    })
}

/// A server that logs its `terminate`.
struct Logged(Log);

impl Server for Logged {
    type Engine = server::Stackful;
    type Msg = u32;
    type Args = Log;
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Continue = ();

    fn init(ctx: &mut ServerCtx<Self>, log: Log) -> Init<Self> {
        ctx.trap_exit(true);
        Init::Ok(Logged(log))
    }

    fn handle_info(&mut self, _: &mut ServerCtx<Self>, _: Mail<u32>) -> Flow<Self> {
        Flow::Continue
    }

    fn terminate(&mut self, _: &mut ServerCtx<Self>, reason: &Reason) {
        self.0.borrow_mut().push(format!("terminate {reason}"));
    }
}

fn run<R: chronoflow::Payload + std::fmt::Debug>(
    body: impl Fn(&mut Ctx<u32>, ()) -> R + 'static,
) -> (
    SimpleScheduler<u32>,
    Option<Result<R, chronoflow::ExitError>>,
) {
    let mut sched = SimpleScheduler::new();
    let parent = Template::local("parent", body);
    let h = sched.spawn(&parent, ()).unwrap();
    sched.run_until_idle();
    let result = sched.result(&h);
    (sched, result)
}

#[test]
fn children_are_the_spawned_not_joined_and_the_linked_it_started() {
    let (_, result) = run(|ctx, ()| {
        let a = ctx.spawn(&waiter(), ()).unwrap();
        let b = ctx.spawn_link(&waiter(), ()).unwrap();
        // Linked to, monitored, but not started by it: not children.
        let stranger = ctx.spawn_link(&waiter(), ()).unwrap();
        let c = ctx.spawn(&waiter(), ()).unwrap();
        let all = ctx.children();
        // A joined child leaves the list; one that ended unjoined stays.
        ctx.send_to(a.pid(), 0);
        ctx.yield_now();
        let ended_unjoined = ctx.children();
        let joined = ctx.join(a).unwrap();
        let after_join = ctx.children();
        ctx.send_to(c.pid(), 0);
        let _ = ctx.join(c);
        ctx.unlink(stranger);
        let after_unlink = ctx.children();
        let _ = ctx.stop_child(b, Shutdown::BrutalKill);
        ctx.exit_signal(stranger, Reason::Kill);
        (
            all == [a.pid(), c.pid(), b, stranger],
            ended_unjoined.contains(&a.pid()),
            joined,
            after_join == [c.pid(), b, stranger],
            after_unlink == [b],
        )
    });
    // (`stranger` was started linked by it too: it is a child until unlinked.)
    assert_eq!(result, Some(Ok((true, true, 0, true, true))));
}

#[test]
fn a_spawned_child_is_stopped_and_joined() {
    let (sched, result) = run(|ctx, ()| {
        let a = ctx.spawn(&waiter(), ()).unwrap();
        let reason = ctx.stop_child(a.pid(), Shutdown::Timeout(Duration::from_secs(1)));
        let left = ctx.children();
        // Stopped and joined: the parent may return (an unjoined child would
        // fail it).
        (reason, left.is_empty())
    });
    let (reason, empty) = result.unwrap().unwrap();
    assert_eq!(reason, Ok(Reason::Shutdown(None)));
    assert!(empty);
    assert_eq!(sched.live(), 0);
}

#[test]
fn a_spawned_child_that_had_returned_is_joined_its_result_dropped() {
    let (_, result) = run(|ctx, ()| {
        let a = ctx.spawn(&waiter(), ()).unwrap();
        ctx.send_to(a.pid(), 0);
        ctx.yield_now();
        ctx.stop_child(a.pid(), Shutdown::BrutalKill)
    });
    assert_eq!(result, Some(Ok(Ok(Reason::Normal))));
}

#[test]
fn a_linked_server_child_runs_terminate_and_its_end_does_not_reach_the_parent() {
    let log = Log::default();
    let log2 = log.clone();
    let (_, result) = run(move |ctx, ()| {
        let s = ctx
            .spawn_link(&server::template::<Logged>("logged"), log2.clone())
            .unwrap();
        // (Its `init` runs: it traps exits.)
        ctx.yield_now();
        let reason = ctx.stop_child(s, Shutdown::Infinity);
        (reason, ctx.children().is_empty(), ctx.is_alive(s))
    });
    // The parent does not trap exits: had the link stayed, the child's
    // `shutdown` would have ended it.
    assert_eq!(result, Some(Ok((Ok(Reason::Shutdown(None)), true, false))));
    assert_eq!(*log.borrow(), ["terminate shutdown"]);
}

#[test]
fn a_stubborn_child_is_killed_after_the_timeout() {
    let clock = ManualClock::new(Time::from_nanos(0));
    let mut sched = SimpleScheduler::new();
    sched.set_clock(clock.clone());
    let parent = Template::local("parent", |ctx: &mut Ctx<u32>, ()| {
        let s = ctx.spawn_link(&stubborn(), ()).unwrap();
        ctx.yield_now();
        ctx.stop_child(s, Shutdown::Timeout(Duration::from_secs(5)))
    });
    let h = sched.spawn(&parent, ()).unwrap();
    sched.run_until_idle();
    clock.advance(Duration::from_secs(4));
    sched.run_until_idle();
    assert_eq!(
        sched.result(&h),
        None,
        "still waiting for the stubborn child"
    );
    clock.advance(Duration::from_secs(1));
    sched.run_until_idle();
    match sched.result(&h) {
        Some(Ok(Ok(Reason::Killed(_)))) => {}
        other => panic!("expected a kill, got {other:?}"),
    }
}

#[test]
fn a_process_that_is_not_a_child_is_not_stopped() {
    let (_, result) = run(|ctx, ()| {
        let me = ctx.pid();
        let other = Template::local("other", move |ctx: &mut Ctx<u32>, ()| {
            ctx.link(me);
            ctx.receive()
        });
        let (o, _) = ctx.spawn_monitor(&other, ()).unwrap();
        ctx.yield_now();
        let not_child = ctx.stop_child(o, Shutdown::BrutalKill);
        let unknown = ctx.stop_child(Pid(999), Shutdown::BrutalKill);
        let alive = ctx.is_alive(o);
        ctx.unlink(o);
        ctx.exit_signal(o, Reason::Kill);
        (
            not_child == Err(JoinError::NotAChild(o)),
            unknown.is_err(),
            alive,
        )
    });
    assert_eq!(result, Some(Ok((true, true, true))));
}
