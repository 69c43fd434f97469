//! Adversarial tests of servers and agents (`chronoflow::otp::server`,
//! `chronoflow::otp::agent`): each names the behaviour OTP's `gen_server`
//! (or Elixir's `Agent`) has, and attacks it from safe code.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use chronoflow::otp::agent::Agent;
use chronoflow::otp::server::{self, Flow, From, Init, Reply, Server, ServerCtx, ServerRef};
use chronoflow::{
    CallError, Ctx, ExitError, Mail, ManualClock, Pid, Reason, SimpleScheduler, Template, Time,
};

type Log = Rc<RefCell<Vec<String>>>;

fn log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

/// What `terminate` does.
#[derive(Clone, Copy, PartialEq)]
enum Term {
    /// Writes to the log.
    Log,
    /// Writes to the log, then panics.
    Panic,
    /// Writes to the log, then exits with a reason of its own.
    Exit,
    /// Sleeps a second, then writes to the log.
    Slow,
}

enum Q {
    Events,
    CallSelf,
    StopSelf,
    ReplyTwice,
    /// Suspends in a plain receive (a `u32` that never comes).
    Wait,
    /// Answers, then a chain of this many continuations.
    Chain(u32),
    /// Answers, then a continuation that stops.
    ThenStop,
    /// Casts to itself, then answers with a continuation: the continuation
    /// runs before the cast.
    CastSelfThenContinue,
    /// Calls the other server, answering with its answer.
    Forward(ServerRef<Probe>),
    Fail,
    /// Stops, answering.
    StopReply,
}

enum C {
    Note(&'static str),
}

enum K {
    Chain(u32),
    Stop,
    Note(&'static str),
}

struct Probe {
    events: Vec<String>,
    log: Log,
    term: Term,
}

impl Server for Probe {
    type Engine = server::Stackful;
    type Msg = u32;
    type Args = (Log, Term, bool);
    type Call = Q;
    type Reply = Vec<String>;
    type Cast = C;
    type Continue = K;

    fn init(ctx: &mut ServerCtx<Self>, (log, term, trap): Self::Args) -> Init<Self> {
        if trap {
            ctx.trap_exit(true);
        }
        Init::Ok(Probe {
            events: vec![],
            log,
            term,
        })
    }

    fn handle_call(
        &mut self,
        ctx: &mut ServerCtx<Self>,
        q: Q,
        from: From<Vec<String>>,
    ) -> Reply<Self> {
        let me = ServerRef::<Probe>::new(ctx.pid());
        match q {
            Q::Events => Reply::Reply(self.events.clone()),
            Q::CallSelf => {
                let r = me.call(ctx, Q::Events);
                Reply::Reply(vec![format!("{r:?}")])
            }
            Q::StopSelf => {
                let r = me.stop(ctx, Reason::custom("self"));
                Reply::Reply(vec![format!("{r:?}")])
            }
            Q::ReplyTwice => {
                let _ = ctx.reply(from, vec!["first".into()]);
                Reply::Reply(vec!["second".into()])
            }
            Q::Wait => {
                let _ = ctx.receive();
                Reply::Reply(vec!["woke".into()])
            }
            Q::Chain(n) => Reply::ReplyContinue(vec![], K::Chain(n)),
            Q::ThenStop => Reply::ReplyContinue(vec!["ok".into()], K::Stop),
            Q::CastSelfThenContinue => {
                me.cast(ctx, C::Note("self cast"));
                Reply::ReplyContinue(vec![], K::Note("continue"))
            }
            Q::Forward(other) => match other.call(ctx, Q::Events) {
                Ok(mut v) => {
                    v.push("forwarded".into());
                    Reply::Reply(v)
                }
                Err(e) => Reply::Reply(vec![format!("{e:?}")]),
            },
            Q::Fail => panic!("handler failed"),
            Q::StopReply => Reply::Stop(Reason::custom("asked"), Some(vec!["bye".into()])),
        }
    }

    fn handle_cast(&mut self, _: &mut ServerCtx<Self>, c: C) -> Flow<Self> {
        let C::Note(n) = c;
        self.events.push(n.into());
        Flow::Continue
    }

    fn handle_info(&mut self, _: &mut ServerCtx<Self>, mail: Mail<u32>) -> Flow<Self> {
        match mail {
            Mail::Msg(n) => self.events.push(format!("msg {n}")),
            Mail::Exit { reason, .. } => self.events.push(format!("exit {reason}")),
            _ => self.events.push("other".into()),
        }
        Flow::Continue
    }

    fn handle_continue(&mut self, _: &mut ServerCtx<Self>, k: K) -> Flow<Self> {
        match k {
            K::Chain(0) => {
                self.events.push("chain done".into());
                Flow::Continue
            }
            K::Chain(n) => Flow::ContinueWith(K::Chain(n - 1)),
            K::Stop => Flow::Stop(Reason::custom("from continue")),
            K::Note(n) => {
                self.events.push(n.into());
                Flow::Continue
            }
        }
    }

    fn terminate(&mut self, ctx: &mut ServerCtx<Self>, reason: &Reason) {
        if self.term == Term::Slow {
            ctx.sleep(Duration::from_secs(1));
        }
        self.log.borrow_mut().push(format!("terminate {reason}"));
        match self.term {
            Term::Log | Term::Slow => {}
            Term::Panic => panic!("terminate failed"),
            Term::Exit => ctx.exit(Reason::custom("from terminate").into_error().unwrap()),
        }
    }
}

/// A server of another type, on the same scheduler.
struct Other;

impl Server for Other {
    type Engine = server::Stackful;
    type Msg = u32;
    type Args = ();
    type Call = u8;
    type Reply = u8;
    type Cast = u8;
    type Continue = ();

    fn init(_: &mut ServerCtx<Self>, _: ()) -> Init<Self> {
        Init::Ok(Other)
    }
}

fn spawn_probe(sched: &mut SimpleScheduler<u32>, term: Term) -> (ServerRef<Probe>, Log) {
    let log = log();
    let pid = sched
        .spawn(
            &server::template::<Probe>("probe"),
            (log.clone(), term, false),
        )
        .unwrap()
        .pid();
    sched.run_until_idle();
    (ServerRef::new(pid), log)
}

/// Runs `body` in a client process with the server's handle; its result.
fn client<R: std::fmt::Debug + 'static>(
    sched: &mut SimpleScheduler<u32>,
    s: ServerRef<Probe>,
    body: impl Fn(&mut Ctx<u32>, ServerRef<Probe>) -> R + 'static,
) -> Option<Result<R, ExitError>> {
    let t = Template::local("client", move |ctx: &mut Ctx<u32>, pid: Pid| {
        body(ctx, ServerRef::new(pid))
    });
    let c = sched.spawn(&t, s.pid()).unwrap();
    sched.run_until_idle();
    sched.result(&c)
}

// ---------------------------------------------------------------------------
// A handle of the wrong server type.

/// OTP: a cast is never answered; one the server does not know does not
/// concern it (here: refused, its sender told nothing). A cast made from
/// outside through a `ServerRef` of another server type must leave the server
/// running and serving.
#[test]
fn a_foreign_cast_from_outside_leaves_the_server_serving() {
    let mut sched = SimpleScheduler::new();
    let (s, log) = spawn_probe(&mut sched, Term::Log);
    let wrong = ServerRef::<Other>::new(s.pid());
    sched.cast_server(&wrong, 7u8);
    sched.run_until_idle();
    assert!(
        sched.status(s.pid()).is_some(),
        "the server died of a foreign cast"
    );
    assert_eq!(sched.call_server(&s, Q::Events), Ok(vec![]));
    assert!(log.borrow().is_empty(), "{:?}", log.borrow());
}

/// The same cast from a process: the caster must not be sent anything it
/// cannot read (it reads its mail afterwards: a `stop`'s selective receive).
#[test]
fn a_foreign_cast_from_a_process_leaves_the_caster_able_to_read_its_mail() {
    let mut sched = SimpleScheduler::new();
    let (s, log) = spawn_probe(&mut sched, Term::Log);
    let result = client(&mut sched, s, |ctx, s| {
        ServerRef::<Other>::new(s.pid()).cast(ctx, 7u8);
        // The server handled (refused) it before this call.
        let events = s.call(ctx, Q::Events);
        let stopped = s.stop(ctx, Reason::Normal);
        (events, stopped)
    });
    assert_eq!(result, Some(Ok((Ok(vec![]), Reason::Normal))));
    assert_eq!(*log.borrow(), ["terminate normal"]);
}

/// The same, read with a plain `receive_mail`.
#[test]
fn a_foreign_cast_from_a_process_sends_the_caster_no_unreadable_mail() {
    let mut sched = SimpleScheduler::new();
    let (s, _log) = spawn_probe(&mut sched, Term::Log);
    let result = client(&mut sched, s, |ctx, s| {
        ServerRef::<Other>::new(s.pid()).cast(ctx, 7u8);
        let events = s.call(ctx, Q::Events);
        ctx.send_to(ctx.pid(), 5);
        let mail = match ctx.receive_mail() {
            Mail::Msg(n) => format!("msg {n}"),
            _ => "other".to_string(),
        };
        (events, mail)
    });
    assert_eq!(result, Some(Ok((Ok(vec![]), "msg 5".to_string()))));
}

/// A call through a handle of the wrong type is refused, the server unharmed.
#[test]
fn a_foreign_call_is_unhandled_and_harmless() {
    let mut sched = SimpleScheduler::new();
    let (s, _log) = spawn_probe(&mut sched, Term::Log);
    let wrong = ServerRef::<Other>::new(s.pid());
    assert_eq!(sched.call_server(&wrong, 1u8), Err(CallError::Unhandled));
    assert_eq!(sched.call_server(&s, Q::Events), Ok(vec![]));
}

// ---------------------------------------------------------------------------
// Calling self, replying twice.

#[test]
fn a_server_calling_itself_gets_calling_self() {
    let mut sched = SimpleScheduler::new();
    let (s, _log) = spawn_probe(&mut sched, Term::Log);
    assert_eq!(
        sched.call_server(&s, Q::CallSelf),
        Ok(vec![format!(
            "{:?}",
            Err::<Vec<String>, _>(CallError::CallingSelf)
        )])
    );
    assert_eq!(sched.call_server(&s, Q::Events), Ok(vec![]));
}

/// A server that stops itself through its own handle from a handler waits for
/// its own DOWN, which cannot come: it and its caller hang for ever. (OTP's
/// `gen_server:stop(self())` with an infinite timeout deadlocks too; but this
/// crate makes every other request to oneself `CallingSelf` at once, and
/// `ServerRef::stop` can tell the same.) Expected: the call completes.
#[test]
fn a_server_stopping_itself_through_its_handle_does_not_hang() {
    let mut sched = SimpleScheduler::new();
    let (s, _log) = spawn_probe(&mut sched, Term::Log);
    let r = client(&mut sched, s, |ctx, s| {
        s.call_timeout(ctx, Q::StopSelf, None)
    });
    assert!(
        r.is_some(),
        "the caller of a server that stops itself waits for ever"
    );
}

#[test]
fn a_second_reply_to_one_call_is_dropped() {
    let mut sched = SimpleScheduler::new();
    let (s, _log) = spawn_probe(&mut sched, Term::Log);
    let r = client(&mut sched, s, |ctx, s| {
        let a = s.call(ctx, Q::ReplyTwice);
        let b = s.call(ctx, Q::Events);
        ctx.send_to(ctx.pid(), 1);
        let m = matches!(ctx.receive_mail(), Mail::Msg(1));
        (a, b, m)
    });
    assert_eq!(
        r,
        Some(Ok((Ok(vec!["first".to_string()]), Ok(vec![]), true)))
    );
}

// ---------------------------------------------------------------------------
// Terminate.

#[test]
fn a_stop_from_a_continuation_runs_terminate_once_and_fails_queued_calls() {
    let mut sched = SimpleScheduler::new();
    let (s, log) = spawn_probe(&mut sched, Term::Log);
    assert_eq!(
        sched.call_server(&s, Q::ThenStop),
        Ok(vec!["ok".to_string()])
    );
    sched.run_until_idle();
    assert_eq!(sched.status(s.pid()), None);
    assert_eq!(*log.borrow(), ["terminate \"from continue\""]);
    assert_eq!(sched.call_server(&s, Q::Events), Err(CallError::NoProc));
}

#[test]
fn a_kill_while_suspended_in_a_handler_runs_no_terminate() {
    let mut sched = SimpleScheduler::new();
    let (s, log) = spawn_probe(&mut sched, Term::Log);
    let t = Template::local("client", move |ctx: &mut Ctx<u32>, pid: Pid| {
        ServerRef::<Probe>::new(pid).call_timeout(ctx, Q::Wait, None)
    });
    let c = sched.spawn(&t, s.pid()).unwrap();
    sched.run_until_idle();
    sched.exit_signal(s.pid(), Reason::Kill);
    sched.run_until_idle();
    assert!(matches!(
        sched.result(&c),
        Some(Ok(Err(CallError::Down(_))))
    ));
    assert!(log.borrow().is_empty(), "{:?}", log.borrow());
}

#[test]
fn terminate_that_exits_runs_once_and_its_reason_ends_the_server() {
    let mut sched = SimpleScheduler::new();
    let (s, log) = spawn_probe(&mut sched, Term::Exit);
    let r = client(&mut sched, s, |ctx, s| s.stop(ctx, Reason::custom("asked")));
    assert_eq!(r, Some(Ok(Reason::custom("from terminate"))));
    assert_eq!(*log.borrow(), ["terminate \"asked\""]);
}

#[test]
fn terminate_that_panics_after_a_handler_panic_runs_once() {
    let mut sched = SimpleScheduler::new();
    let (s, log) = spawn_probe(&mut sched, Term::Panic);
    let r = sched.call_server(&s, Q::Fail);
    assert!(
        matches!(r, Err(CallError::Down(Reason::Failed(_)))),
        "{r:?}"
    );
    sched.run_until_idle();
    assert_eq!(sched.status(s.pid()), None);
    assert_eq!(*log.borrow(), ["terminate failed: handler failed"]);
}

#[test]
fn terminate_that_exits_after_a_handler_panic_runs_once() {
    let mut sched = SimpleScheduler::new();
    let (s, log) = spawn_probe(&mut sched, Term::Exit);
    let r = sched.call_server(&s, Q::Fail);
    assert!(matches!(r, Err(CallError::Down(_))), "{r:?}");
    sched.run_until_idle();
    assert_eq!(*log.borrow(), ["terminate failed: handler failed"]);
}

/// A trapping server linked to a process that is not its parent: the EXIT is
/// info, not a stop.
#[test]
fn an_exit_from_a_link_that_is_not_the_parent_is_info() {
    let mut sched = SimpleScheduler::new();
    let log = log();
    let pid = sched
        .spawn(
            &server::template::<Probe>("probe"),
            (log.clone(), Term::Log, true),
        )
        .unwrap()
        .pid();
    let s = ServerRef::<Probe>::new(pid);
    let t = Template::local("linker", move |ctx: &mut Ctx<u32>, pid: Pid| {
        ctx.link(pid);
        panic!("linker fails");
    });
    let _ = sched.spawn(&t, pid).unwrap();
    sched.run_until_idle();
    let events = sched.call_server(&s, Q::Events).unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].starts_with("exit"), "{events:?}");
    assert!(log.borrow().is_empty(), "{:?}", log.borrow());
}

// ---------------------------------------------------------------------------
// Ordering.

/// OTP: a continuation runs before any mail, even mail that arrived while its
/// handler ran (here a cast to itself).
#[test]
fn a_continuation_runs_before_mail_that_came_during_its_handler() {
    let mut sched = SimpleScheduler::new();
    let (s, _log) = spawn_probe(&mut sched, Term::Log);
    assert_eq!(sched.call_server(&s, Q::CastSelfThenContinue), Ok(vec![]));
    assert_eq!(
        sched.call_server(&s, Q::Events),
        Ok(vec!["continue".to_string(), "self cast".into()])
    );
}

#[test]
fn a_very_deep_continuation_chain_runs_in_constant_stack() {
    let mut sched = SimpleScheduler::new();
    let (s, _log) = spawn_probe(&mut sched, Term::Log);
    assert_eq!(sched.call_server(&s, Q::Chain(200_000)), Ok(vec![]));
    assert_eq!(
        sched.call_server(&s, Q::Events),
        Ok(vec!["chain done".to_string()])
    );
}

/// Mail from outside: messages, casts, in arrival order.
#[test]
fn messages_and_casts_from_outside_are_handled_in_arrival_order() {
    let mut sched = SimpleScheduler::new();
    let (s, _log) = spawn_probe(&mut sched, Term::Log);
    sched.send(s.pid(), 1).unwrap();
    sched.cast_server(&s, C::Note("a"));
    sched.send(s.pid(), 2).unwrap();
    sched.cast_server(&s, C::Note("b"));
    assert_eq!(
        sched.call_server(&s, Q::Events),
        Ok(vec![
            "msg 1".to_string(),
            "a".into(),
            "msg 2".into(),
            "b".into()
        ])
    );
}

#[test]
fn nested_calls_between_two_servers_are_answered() {
    let mut sched = SimpleScheduler::new();
    let (a, _) = spawn_probe(&mut sched, Term::Log);
    let (b, _) = spawn_probe(&mut sched, Term::Log);
    sched.cast_server(&b, C::Note("in b"));
    assert_eq!(
        sched.call_server(&a, Q::Forward(b)),
        Ok(vec!["in b".to_string(), "forwarded".into()])
    );
}

// ---------------------------------------------------------------------------
// Dead servers.

#[test]
fn a_call_to_a_dead_server_gives_noproc_and_a_cast_is_ignored() {
    let mut sched = SimpleScheduler::new();
    let (s, _log) = spawn_probe(&mut sched, Term::Log);
    sched.exit_signal(s.pid(), Reason::Kill);
    sched.run_until_idle();
    sched.cast_server(&s, C::Note("late"));
    assert_eq!(sched.call_server(&s, Q::Events), Err(CallError::NoProc));
    let r = client(&mut sched, s, |ctx, s| {
        s.cast(ctx, C::Note("late"));
        (s.call(ctx, Q::Events), s.stop(ctx, Reason::Normal))
    });
    assert_eq!(r, Some(Ok((Err(CallError::NoProc), Reason::NoProc))));
}

// ---------------------------------------------------------------------------
// Idle timeout.

struct Sleepy {
    log: Log,
}

impl Server for Sleepy {
    type Engine = server::Stackful;
    type Msg = u32;
    type Args = Log;
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Continue = ();

    fn init(_: &mut ServerCtx<Self>, log: Log) -> Init<Self> {
        Init::Ok(Sleepy { log })
    }

    fn idle_timeout(&self) -> Option<Duration> {
        Some(Duration::from_secs(10))
    }

    fn handle_info(&mut self, _: &mut ServerCtx<Self>, mail: Mail<u32>) -> Flow<Self> {
        if let Mail::Msg(n) = mail {
            self.log.borrow_mut().push(format!("msg {n}"));
        }
        Flow::Continue
    }

    fn handle_cast(&mut self, _: &mut ServerCtx<Self>, _: ()) -> Flow<Self> {
        self.log.borrow_mut().push("cast".into());
        Flow::Continue
    }

    fn handle_timeout(&mut self, _: &mut ServerCtx<Self>) -> Flow<Self> {
        self.log.borrow_mut().push("idle".into());
        Flow::Continue
    }
}

/// The wait passed its timeout, but mail came before the server ran: OTP's
/// `receive ... after T` takes the mail.
#[test]
fn an_idle_timeout_does_not_fire_while_mail_waits() {
    let log = log();
    let clock = ManualClock::new(Time::from_nanos(0));
    let mut sched = SimpleScheduler::new();
    sched.set_clock(clock.clone());
    let s = sched
        .spawn(&server::template::<Sleepy>("sleepy"), log.clone())
        .unwrap()
        .pid();
    sched.run_until_idle();
    clock.advance(Duration::from_secs(20));
    sched.send(s, 1).unwrap();
    sched.run_until_idle();
    clock.advance(Duration::from_secs(20));
    sched.cast_server(&ServerRef::<Sleepy>::new(s), ());
    sched.run_until_idle();
    assert_eq!(*log.borrow(), ["msg 1", "cast"]);
}

// ---------------------------------------------------------------------------
// Agents.

struct Bomb(bool);

impl Drop for Bomb {
    fn drop(&mut self) {
        if self.0 && !std::thread::panicking() {
            panic!("bomb");
        }
    }
}

/// An agent's function whose captured value panics as it is dropped (inside
/// the agent, as the function is consumed): the agent fails, its caller sees
/// the agent's end, the scheduler goes on.
#[test]
fn an_agent_function_with_a_panicking_capture_fails_the_agent_only() {
    let mut sched = SimpleScheduler::<u32>::new();
    let a = Agent::<u32, u32>::new(
        sched
            .spawn(&Agent::<u32, u32>::template("agent"), 1)
            .unwrap()
            .pid(),
    );
    let t = Template::local("client", move |ctx: &mut Ctx<u32>, ()| {
        let bomb = Bomb(true);
        let r = a.get(ctx, move |v| {
            let _keep = &bomb;
            *v
        });
        let after = a.get(ctx, |v| *v);
        (format!("{r:?}"), after)
    });
    let c = sched.spawn(&t, ()).unwrap();
    sched.run_until_idle();
    let r = sched.result(&c).unwrap().unwrap();
    assert!(r.0.starts_with("Err(Down"), "{r:?}");
    assert!(r.1.is_err(), "{r:?}");
}

/// An agent stopped with casts queued behind the stop: they are dropped
/// unrun, and a later call gives `NoProc`.
#[test]
fn an_agent_stopped_with_queued_functions_drops_them_without_harm() {
    let mut sched = SimpleScheduler::<u32>::new();
    let a = Agent::<u32, u32>::new(
        sched
            .spawn(&Agent::<u32, u32>::template("agent"), 1)
            .unwrap()
            .pid(),
    );
    let t = Template::local("client", move |ctx: &mut Ctx<u32>, ()| {
        for _ in 0..3 {
            a.cast(ctx, |v| *v += 1);
        }
        let r = a.stop(ctx, Reason::Normal);
        (r, a.get(ctx, |v| *v))
    });
    let c = sched.spawn(&t, ()).unwrap();
    sched.run_until_idle();
    assert_eq!(
        sched.result(&c),
        Some(Ok((Reason::Normal, Err(CallError::NoProc))))
    );
}

/// An idle timeout of zero with no mail: OTP's `{noreply, State, 0}` gives
/// `timeout` at once, without the clock moving.
struct Eager {
    log: Log,
    fired: bool,
}

impl Server for Eager {
    type Engine = server::Stackful;
    type Msg = u32;
    type Args = Log;
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Continue = ();

    fn init(_: &mut ServerCtx<Self>, log: Log) -> Init<Self> {
        Init::Ok(Eager { log, fired: false })
    }

    fn idle_timeout(&self) -> Option<Duration> {
        (!self.fired).then_some(Duration::ZERO)
    }

    fn handle_info(&mut self, _: &mut ServerCtx<Self>, mail: Mail<u32>) -> Flow<Self> {
        if let Mail::Msg(n) = mail {
            self.log.borrow_mut().push(format!("msg {n}"));
        }
        Flow::Continue
    }

    fn handle_timeout(&mut self, _: &mut ServerCtx<Self>) -> Flow<Self> {
        self.fired = true;
        self.log.borrow_mut().push("idle".into());
        Flow::Continue
    }
}

#[test]
fn a_zero_idle_timeout_fires_at_once_without_the_clock_moving() {
    let log = log();
    let clock = ManualClock::new(Time::from_nanos(0));
    let mut sched = SimpleScheduler::new();
    sched.set_clock(clock.clone());
    let _s = sched
        .spawn(&server::template::<Eager>("eager"), log.clone())
        .unwrap()
        .pid();
    sched.run_until_idle();
    assert_eq!(*log.borrow(), ["idle"]);
}

/// With mail already there, a zero idle timeout takes the mail.
#[test]
fn a_zero_idle_timeout_takes_mail_that_waits() {
    let log = log();
    let clock = ManualClock::new(Time::from_nanos(0));
    let mut sched = SimpleScheduler::new();
    sched.set_clock(clock.clone());
    let s = sched
        .spawn(&server::template::<Eager>("eager"), log.clone())
        .unwrap()
        .pid();
    sched.send(s, 3).unwrap();
    sched.run_until_idle();
    assert_eq!(*log.borrow(), ["msg 3", "idle"]);
}

/// The parent is the process that started the server with `spawn_link` (the
/// module's doc; OTP: `gen_server:start/3`, unlinked, has no parent but
/// itself). A process that starts it unlinked (`spawn_monitor`) and links to
/// it before its first turn is a link like any other: its EXIT is info for a
/// trapping server, which runs no `terminate` and goes on.
#[test]
fn a_link_made_before_the_first_turn_is_not_taken_for_the_parent() {
    let mut sched = SimpleScheduler::new();
    let log = log();
    let server_log = log.clone();
    let spawned: Rc<RefCell<Option<Pid>>> = Rc::new(RefCell::new(None));
    let out = spawned.clone();
    let t = Template::local("starter", move |ctx: &mut Ctx<u32>, ()| {
        let (pid, _) = ctx
            .spawn_monitor(
                &server::template::<Probe>("probe"),
                (server_log.clone(), Term::Log, true),
            )
            .unwrap();
        ctx.link(pid);
        *out.borrow_mut() = Some(pid);
        ctx.yield_now();
        panic!("starter fails");
    });
    let _ = sched.spawn(&t, ()).unwrap();
    sched.run_until_idle();
    let pid = spawned.borrow().unwrap();
    assert!(
        sched.status(pid).is_some(),
        "the server stopped: {:?}",
        log.borrow()
    );
    let events = sched
        .call_server(&ServerRef::<Probe>::new(pid), Q::Events)
        .unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].starts_with("exit"), "{events:?}");
    assert!(log.borrow().is_empty(), "{:?}", log.borrow());
}

/// OTP (`gen_server:handle_msg`): on `{stop, Reason, Reply, State}`,
/// `terminate` runs first and the reply is sent after it (`try terminate(..)
/// after reply(From, Reply) end`): a caller that has its reply knows the
/// server's `terminate` is over (its resources released).
#[test]
fn a_stop_with_a_reply_answers_after_terminate() {
    let clock = ManualClock::new(Time::from_nanos(0));
    let mut sched = SimpleScheduler::new();
    sched.set_clock(clock.clone());
    let (s, log) = spawn_probe(&mut sched, Term::Slow);
    let seen = log.clone();
    let t = Template::local("client", move |ctx: &mut Ctx<u32>, pid: Pid| {
        let r = ServerRef::<Probe>::new(pid).call_timeout(ctx, Q::StopReply, None);
        (r, seen.borrow().clone())
    });
    let c = sched.spawn(&t, s.pid()).unwrap();
    sched.run_until_idle();
    clock.advance(Duration::from_secs(1));
    sched.run_until_idle();
    assert_eq!(
        sched.result(&c),
        Some(Ok((
            Ok(vec!["bye".to_string()]),
            vec!["terminate \"asked\"".to_string()]
        )))
    );
}

/// Functions queued to an agent that stops: each captures a value whose
/// `Drop` panics. They are dropped with the agent's record; the panic is
/// resumed by the run (the scheduler's documented contract for a message's
/// drop), once, and the scheduler stays whole and usable.
#[test]
fn functions_left_in_a_stopped_agent_are_dropped_and_the_scheduler_goes_on() {
    let mut sched = SimpleScheduler::<u32>::new();
    let a = Agent::<u32, u32>::new(
        sched
            .spawn(&Agent::<u32, u32>::template("agent"), 1)
            .unwrap()
            .pid(),
    );
    let t = Template::local("client", move |ctx: &mut Ctx<u32>, ()| {
        // The stop is queued first: the casts stay behind it, unread.
        let stopper = Template::local("stopper", move |ctx: &mut Ctx<u32>, ()| {
            a.stop(ctx, Reason::Normal)
        });
        let _ = ctx.spawn_link(&stopper, ());
        ctx.yield_now();
        for _ in 0..2 {
            let bomb = Bomb(true);
            a.cast(ctx, move |v| {
                let _keep = &bomb;
                *v += 1
            });
        }
    });
    let _ = sched.spawn(&t, ()).unwrap();
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sched.run_until_idle()));
    let _ = run;
    sched.run_until_idle();
    assert_eq!(sched.status(a.pid()), None);
    let b = Agent::<u32, u32>::new(
        sched
            .spawn(&Agent::<u32, u32>::template("agent2"), 5)
            .unwrap()
            .pid(),
    );
    let t = Template::local("client2", move |ctx: &mut Ctx<u32>, ()| b.get(ctx, |v| *v));
    let c = sched.spawn(&t, ()).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&c), Some(Ok(Ok(5))));
}

/// Calls queued behind a stop get the server's end as their error.
#[test]
fn calls_queued_behind_a_stop_get_its_reason() {
    let mut sched = SimpleScheduler::new();
    let (s, log) = spawn_probe(&mut sched, Term::Log);
    let first = Template::local("first", move |ctx: &mut Ctx<u32>, pid: Pid| {
        ServerRef::<Probe>::new(pid).call(ctx, Q::ThenStop)
    });
    let second = Template::local("second", move |ctx: &mut Ctx<u32>, pid: Pid| {
        ServerRef::<Probe>::new(pid).call(ctx, Q::Events)
    });
    let c1 = sched.spawn(&first, s.pid()).unwrap();
    let c2 = sched.spawn(&second, s.pid()).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&c1), Some(Ok(Ok(vec!["ok".to_string()]))));
    assert_eq!(
        sched.result(&c2),
        Some(Ok(Err(CallError::Down(Reason::custom("from continue")))))
    );
    assert_eq!(log.borrow().len(), 1);
}
