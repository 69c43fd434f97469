#![feature(coroutines)]
//! Servers and agents on stackless processes (`server::stackless_template`,
//! `Agent::stackless_template`): the same `Server` trait and loop as on
//! stackful ones (calls, casts and info in arrival order, continuations,
//! terminate on OTP's paths, idle timeouts, the server's own timers and its
//! stash), called from stackless processes (`request!` with
//! `ServerRef::call_of`), from stackful ones and from outside.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use chronoflow::otp::agent::Agent;
use chronoflow::otp::server::{self, Flow, From, Init, Reply, Server, ServerCtx, ServerRef};
use chronoflow::otp::supervisor::{ChildSpec, Supervisor};
use chronoflow::stackless::request;
use chronoflow::{
    CallError, Ctx, Mail, ManualClock, Reason, SimpleScheduler, StacklessCtx, StacklessTemplate,
    Template, Time,
};

type Log = Rc<RefCell<Vec<String>>>;

#[derive(Debug, Clone, PartialEq)]
enum Msg {
    N(u32),
    Tick,
}

enum Ask {
    Events,
    /// Held while closed (stashed).
    Double(u32),
    Fail,
    Stop,
}

enum Tell {
    Note(&'static str),
    Open,
    Close,
    TickEvery(u64),
    StopTicking,
}

/// Logs what it handles; holds `Double` calls while closed.
struct Recorder {
    events: Vec<String>,
    open: bool,
    log: Log,
    ticker: Option<server::Timer>,
}

impl Server for Recorder {
    type Engine = server::Stackless;
    type Msg = Msg;
    type Args = (Log, bool);
    type Call = Ask;
    type Reply = Vec<String>;
    type Cast = Tell;
    type Continue = &'static str;

    fn init(ctx: &mut ServerCtx<Self>, (log, trap): Self::Args) -> Init<Self> {
        if trap {
            ctx.trap_exit(true);
        }
        let s = Recorder {
            events: vec!["init".into()],
            open: true,
            log,
            ticker: None,
        };
        Init::Continue(s, "after init")
    }

    fn handle_call(
        &mut self,
        ctx: &mut ServerCtx<Self>,
        ask: Ask,
        from: From<Vec<String>>,
    ) -> Reply<Self> {
        match ask {
            Ask::Events => Reply::Reply(self.events.clone()),
            Ask::Double(n) if !self.open => {
                ctx.stash_call(Ask::Double(n), from)
                    .expect("room in the stash");
                Reply::NoReply
            }
            Ask::Double(n) => {
                self.events.push(format!("double {n}"));
                Reply::Reply(vec![(2 * n).to_string()])
            }
            Ask::Fail => panic!("handler failed"),
            Ask::Stop => Reply::Stop(Reason::custom("asked"), Some(vec!["bye".into()])),
        }
    }

    fn handle_cast(&mut self, ctx: &mut ServerCtx<Self>, tell: Tell) -> Flow<Self> {
        match tell {
            Tell::Note(n) => self.events.push(format!("cast {n}")),
            Tell::Open => {
                self.open = true;
                ctx.unstash_all();
            }
            Tell::Close => self.open = false,
            Tell::TickEvery(ms) => {
                self.ticker = Some(
                    ctx.timers()
                        .send_interval(Duration::from_millis(ms), Msg::Tick),
                );
            }
            Tell::StopTicking => {
                let t = self.ticker.take().unwrap();
                assert!(ctx.timers().cancel(t));
            }
        }
        Flow::Continue
    }

    fn handle_info(&mut self, ctx: &mut ServerCtx<Self>, mail: Mail<Msg>) -> Flow<Self> {
        match mail {
            Mail::Msg(Msg::N(0)) => return Flow::Stop(Reason::custom("zero")),
            Mail::Msg(Msg::N(n)) => self.events.push(format!("msg {n}")),
            Mail::Msg(Msg::Tick) => {
                let at = ctx.now().as_nanos() / 1_000_000;
                self.events.push(format!("tick at {at}"));
            }
            other => self.events.push(format!("{other:?}")),
        }
        Flow::Continue
    }

    fn handle_continue(&mut self, _: &mut ServerCtx<Self>, next: &'static str) -> Flow<Self> {
        self.events.push(next.into());
        Flow::Continue
    }

    fn terminate(&mut self, _: &mut ServerCtx<Self>, reason: &Reason) {
        self.log.borrow_mut().push(format!("terminate {reason}"));
    }
}

fn recorder() -> StacklessTemplate<Msg, Msg, (Log, bool), ()> {
    server::stackless_template::<Recorder>("recorder")
}

fn spawn(sched: &mut SimpleScheduler<Msg>, trap: bool) -> (ServerRef<Recorder>, Log) {
    let log = Log::default();
    let pid = sched.spawn(&recorder(), (log.clone(), trap)).unwrap().pid();
    (ServerRef::new(pid), log)
}

/// A stackless client: casts, sends, then calls `Events`.
fn client() -> StacklessTemplate<Msg, Msg, ServerRef<Recorder>, Result<Vec<String>, CallError>> {
    StacklessTemplate::new("client", |cx: StacklessCtx<Msg>, s: ServerRef<Recorder>| {
        #[coroutine]
        move || {
            s.cast_stackless(&cx, Tell::Note("a"));
            cx.try_send_to(s.pid(), Msg::N(7)).unwrap();
            s.cast_stackless(&cx, Tell::Note("b"));
            request!(
                cx,
                s.pid(),
                s.call_of(Ask::Events),
                Some(Duration::from_secs(5))
            )
        }
    })
}

#[test]
fn a_stackless_server_handles_casts_messages_and_calls_in_arrival_order() {
    let mut sched = SimpleScheduler::new();
    let (s, _) = spawn(&mut sched, false);
    let c = sched.spawn(&client(), s).unwrap();
    sched.run_until_idle();
    assert_eq!(
        sched.result(&c),
        Some(Ok(Ok(vec![
            "init".to_string(),
            "after init".into(),
            "cast a".into(),
            "msg 7".into(),
            "cast b".into()
        ])))
    );
}

#[test]
#[cfg_attr(miri, ignore = "a stackful client (Miri cannot switch stacks)")]
fn a_stackless_server_answers_stackful_callers_and_the_owner() {
    let mut sched = SimpleScheduler::new();
    let (s, log) = spawn(&mut sched, false);
    let caller = Template::local("caller", move |ctx: &mut Ctx<Msg>, ()| {
        s.cast(ctx, Tell::Note("from a stackful process"));
        s.call(ctx, Ask::Double(21))
    });
    let c = sched.spawn(&caller, ()).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&c), Some(Ok(Ok(vec!["42".to_string()]))));
    assert_eq!(
        sched.call_server(&s, Ask::Events),
        Ok(vec![
            "init".to_string(),
            "after init".into(),
            "cast from a stackful process".into(),
            "double 21".into()
        ])
    );
    // A stop with a reply: `terminate`, then the reply.
    assert_eq!(
        sched.call_server(&s, Ask::Stop),
        Ok(vec!["bye".to_string()])
    );
    assert_eq!(*log.borrow(), ["terminate \"asked\""]);
}

#[test]
fn a_failing_handler_runs_terminate_and_its_callers_see_the_failure() {
    let mut sched = SimpleScheduler::new();
    let (s, log) = spawn(&mut sched, false);
    let failer = StacklessTemplate::new("failer", move |cx: StacklessCtx<Msg>, ()| {
        #[coroutine]
        move || request!(cx, s.pid(), s.call_of(Ask::Fail), None)
    });
    let f = sched.spawn(&failer, ()).unwrap();
    sched.run_until_idle();
    match sched.result(&f) {
        Some(Ok(Err(CallError::Down(Reason::Failed(why))))) => {
            assert!(why.contains("handler failed"), "{why}")
        }
        other => panic!("expected the server's failure, got {other:?}"),
    }
    assert_eq!(log.borrow().len(), 1);
    assert!(
        log.borrow()[0].starts_with("terminate failed"),
        "{:?}",
        log.borrow()
    );
}

#[test]
fn a_message_stop_ends_it_with_its_reason_after_terminate() {
    let mut sched = SimpleScheduler::new();
    let (s, log) = spawn(&mut sched, false);
    sched.run_until_idle();
    sched.send(s.pid(), Msg::N(0)).unwrap();
    sched.run_until_idle();
    assert_eq!(*log.borrow(), ["terminate \"zero\""]);
    assert!(
        sched
            .status(s.pid())
            .is_none_or(|st| st == chronoflow::Status::Stopped)
    );
}

#[test]
fn stashed_calls_come_back_in_order_and_timers_tick_without_drift() {
    let clock = ManualClock::new(Time::from_nanos(0));
    let mut sched = SimpleScheduler::new();
    sched.set_clock(clock.clone());
    let (s, _) = spawn(&mut sched, false);
    sched.cast_server(&s, Tell::Close);
    sched.run_until_idle();
    let asker = StacklessTemplate::new("asker", move |cx: StacklessCtx<Msg>, n: u32| {
        #[coroutine]
        move || request!(cx, s.pid(), s.call_of(Ask::Double(n)), None)
    });
    let a = sched.spawn(&asker, 1).unwrap();
    let b = sched.spawn(&asker, 2).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&a), None, "stashed");
    sched.cast_server(&s, Tell::Note("before opening"));
    sched.cast_server(&s, Tell::Open);
    sched.cast_server(&s, Tell::TickEvery(10));
    sched.run_until_idle();
    assert_eq!(sched.result(&a), Some(Ok(Ok(vec!["2".to_string()]))));
    assert_eq!(sched.result(&b), Some(Ok(Ok(vec!["4".to_string()]))));
    for _ in 0..3 {
        clock.advance(Duration::from_millis(15));
        sched.run_until_idle();
    }
    sched.cast_server(&s, Tell::StopTicking);
    sched.run_until_idle();
    clock.advance(Duration::from_millis(100));
    sched.run_until_idle();
    let reader = StacklessTemplate::new("reader", move |cx: StacklessCtx<Msg>, ()| {
        #[coroutine]
        move || request!(cx, s.pid(), s.call_of(Ask::Events), None)
    });
    let r = sched.spawn(&reader, ()).unwrap();
    sched.run_until_idle();
    let events = sched.result(&r).unwrap().unwrap().unwrap();
    assert_eq!(
        events[2..],
        [
            "cast before opening",
            "double 1",
            "double 2",
            "tick at 15",
            "tick at 30",
            "tick at 30",
            "tick at 45"
        ]
    );
    assert_eq!(sched.timers_dropped(), 0);
}

/// An idle stackless server times out after its idle time; any mail starts
/// the wait again.
struct Sleepy(Log);

impl Server for Sleepy {
    type Engine = server::Stackless;
    type Msg = Msg;
    type Args = Log;
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Continue = ();

    fn init(_: &mut ServerCtx<Self>, log: Log) -> Init<Self> {
        Init::Ok(Sleepy(log))
    }

    fn handle_info(&mut self, _: &mut ServerCtx<Self>, mail: Mail<Msg>) -> Flow<Self> {
        self.0.borrow_mut().push(format!("{mail:?}"));
        Flow::Continue
    }

    fn idle_timeout(&self) -> Option<Duration> {
        Some(Duration::from_secs(10))
    }

    fn handle_timeout(&mut self, _: &mut ServerCtx<Self>) -> Flow<Self> {
        self.0.borrow_mut().push("idle".into());
        Flow::Continue
    }
}

#[test]
fn an_idle_timeout_is_reset_by_every_message() {
    let clock = ManualClock::new(Time::from_nanos(0));
    let mut sched = SimpleScheduler::new();
    sched.set_clock(clock.clone());
    let log = Log::default();
    let s = sched
        .spawn(&server::stackless_template::<Sleepy>("sleepy"), log.clone())
        .unwrap()
        .pid();
    sched.run_until_idle();
    for n in 1..=2 {
        clock.advance(Duration::from_secs(6));
        sched.send(s, Msg::N(n)).unwrap();
        sched.run_until_idle();
    }
    clock.advance(Duration::from_secs(10));
    sched.run_until_idle();
    assert_eq!(*log.borrow(), ["Msg(N(1))", "Msg(N(2))", "idle"]);
}

#[test]
#[cfg_attr(miri, ignore = "a stackful supervisor (Miri cannot switch stacks)")]
fn a_supervised_stackless_server_terminates_when_its_supervisor_stops_it() {
    let log = Log::default();
    let sup = Supervisor::new("sup")
        .child(ChildSpec::new("rec", &recorder(), (log.clone(), true)).name("rec"))
        .template()
        .unwrap();
    let mut sched = SimpleScheduler::new();
    let root = sched.spawn(&sup, ()).unwrap();
    sched.run_until_idle();
    let first = ServerRef::<Recorder>::new(sched.whereis("rec").unwrap());
    assert!(sched.call_server(&first, Ask::Fail).is_err());
    sched.run_until_idle();
    let second = sched.whereis("rec").unwrap();
    assert_ne!(second, first.pid(), "restarted");
    sched.exit_signal(root.pid(), Reason::Shutdown(None));
    sched.run_until_idle();
    assert_eq!(log.borrow().len(), 2);
    assert_eq!(log.borrow()[1], "terminate shutdown");
}

#[test]
#[cfg_attr(miri, ignore = "a stackful client (Miri cannot switch stacks)")]
fn a_stackless_agent_holds_its_value() {
    let mut sched = SimpleScheduler::<()>::new();
    let pid = sched
        .spawn(
            &Agent::<u64, (), server::Stackless>::stackless_template("counter"),
            1,
        )
        .unwrap()
        .pid();
    let counter = Agent::<u64, (), server::Stackless>::new(pid);
    let client = Template::local("client", move |ctx: &mut Ctx<()>, ()| {
        counter.cast(ctx, |n| *n += 1);
        let doubled = counter.update(ctx, |n| *n *= 2).unwrap();
        let old = counter
            .get_and_update(ctx, |n| std::mem::replace(n, 0))
            .unwrap();
        (doubled, old, counter.get(ctx, |n| *n).unwrap())
    });
    let c = sched.spawn(&client, ()).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&c), Some(Ok((4, 4, 0))));
}

#[test]
fn a_graceful_shutdown_runs_a_stackless_servers_terminate() {
    let mut sched = SimpleScheduler::new();
    let (_, log) = spawn(&mut sched, false);
    sched.run_until_idle();
    let report = sched.shutdown(Duration::from_secs(1), true);
    assert!(report.killed.is_empty(), "{report:?}");
    assert_eq!(*log.borrow(), ["terminate shutdown"]);
}
