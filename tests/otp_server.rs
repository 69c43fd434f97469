//! Servers (`chronoflow::otp::server`), with OTP's `gen_server` semantics:
//! calls, casts and info in arrival order, deferred replies, continuations,
//! and `terminate` on the paths OTP runs it.

use std::cell::RefCell;
use std::rc::Rc;

use chronoflow::otp::server::{self, Flow, From, Init, Reply, Server, ServerCtx, ServerRef};
use chronoflow::otp::supervisor::{ChildSpec, Supervisor};
use chronoflow::{
    CallError, Ctx, ExitError, Local, Mail, Pid, Reason, RequestType, SimpleScheduler, Template,
};

type Log = Rc<RefCell<Vec<String>>>;

/// What the test server is asked.
enum Ask {
    /// The events so far.
    Events,
    /// Held: answered by the next `Release` cast.
    Hold,
    /// Answered, then `handle_continue` runs before the next mail.
    ThenContinue,
    /// Stops with this reason, answering first.
    Stop(Reason),
    /// Fails (a panic in the handler).
    Fail,
    /// Ends with `Ctx::exit` and this reason.
    Exit(Reason),
    /// Not handled: refused.
    Unknown,
}

enum Cast {
    Note(&'static str),
    Release,
}

/// Records what it handles; `terminate` writes to the log it was given.
struct Recorder {
    events: Vec<String>,
    held: Option<From<Vec<String>>>,
    log: Log,
}

impl Server for Recorder {
    type Engine = server::Stackful;
    type Msg = u32;
    type Args = (Log, bool, bool);
    type Call = Ask;
    type Reply = Vec<String>;
    type Cast = Cast;
    type Continue = &'static str;

    fn init(ctx: &mut ServerCtx<Self>, (log, continue_first, trap): Self::Args) -> Init<Self> {
        if trap {
            ctx.trap_exit(true);
        }
        let s = Recorder {
            events: vec!["init".into()],
            held: None,
            log,
        };
        if continue_first {
            Init::Continue(s, "after init")
        } else {
            Init::Ok(s)
        }
    }

    fn handle_call(
        &mut self,
        ctx: &mut ServerCtx<Self>,
        ask: Ask,
        from: From<Vec<String>>,
    ) -> Reply<Self> {
        match ask {
            Ask::Events => Reply::Reply(self.events.clone()),
            Ask::Hold => {
                self.held = Some(from);
                Reply::NoReply
            }
            Ask::ThenContinue => {
                self.events.push("call".into());
                Reply::ReplyContinue(self.events.clone(), "after call")
            }
            Ask::Stop(reason) => Reply::Stop(reason, Some(vec!["bye".into()])),
            Ask::Fail => panic!("handler failed"),
            Ask::Exit(reason) => ctx.exit(reason.into_error().unwrap()),
            Ask::Unknown => Reply::Refuse,
        }
    }

    fn handle_cast(&mut self, ctx: &mut ServerCtx<Self>, cast: Cast) -> Flow<Self> {
        match cast {
            Cast::Note(note) => self.events.push(format!("cast {note}")),
            Cast::Release => {
                let to = self.held.take().unwrap();
                ctx.reply(to, vec!["released".into()]).unwrap();
            }
        }
        Flow::Continue
    }

    fn handle_info(&mut self, _ctx: &mut ServerCtx<Self>, mail: Mail<u32>) -> Flow<Self> {
        match mail {
            Mail::Msg(0) => return Flow::Stop(Reason::custom("zero")),
            Mail::Msg(n) => self.events.push(format!("msg {n}")),
            Mail::Down { reason, .. } => self.events.push(format!("down {reason}")),
            Mail::Exit { reason, .. } => self.events.push(format!("exit {reason}")),
            other => self.events.push(format!("{other:?}")),
        }
        Flow::Continue
    }

    fn handle_continue(&mut self, _ctx: &mut ServerCtx<Self>, next: &'static str) -> Flow<Self> {
        self.events.push(next.into());
        Flow::Continue
    }

    fn terminate(&mut self, _ctx: &mut ServerCtx<Self>, reason: &Reason) {
        self.log.borrow_mut().push(format!("terminate {reason}"));
    }
}

fn recorder() -> Template<u32, u32, (Log, bool, bool), (), Local> {
    server::template::<Recorder>("recorder")
}

fn log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

/// Spawns a recorder and a client running `body` with its handle.
fn with_client<R: std::fmt::Debug + 'static>(
    continue_first: bool,
    body: impl Fn(&mut Ctx<u32>, ServerRef<Recorder>) -> R + 'static,
) -> (SimpleScheduler<u32>, Pid, Option<Result<R, ExitError>>, Log) {
    let log = log();
    let mut sched = SimpleScheduler::new();
    let s = sched
        .spawn(&recorder(), (log.clone(), continue_first, false))
        .unwrap()
        .pid();
    let client = Template::local("client", move |ctx: &mut Ctx<u32>, s: Pid| {
        body(ctx, ServerRef::new(s))
    });
    let c = sched.spawn(&client, s).unwrap();
    sched.run_until_idle();
    let result = sched.result(&c);
    (sched, s, result, log)
}

#[test]
fn casts_messages_and_calls_are_handled_in_arrival_order() {
    let (_, _, result, _) = with_client(false, |ctx, s| {
        s.cast(ctx, Cast::Note("a"));
        ctx.send_to(s.pid(), 7);
        s.cast(ctx, Cast::Note("b"));
        s.call(ctx, Ask::Events)
    });
    assert_eq!(
        result,
        Some(Ok(Ok(vec![
            "init".to_string(),
            "cast a".into(),
            "msg 7".into(),
            "cast b".into()
        ])))
    );
}

#[test]
fn a_continuation_runs_before_the_next_mail() {
    let (_, _, result, _) = with_client(true, |ctx, s| {
        let first = s.call(ctx, Ask::ThenContinue).unwrap();
        let then = s.call(ctx, Ask::Events).unwrap();
        (first, then)
    });
    let (first, then) = result.unwrap().unwrap();
    assert_eq!(first, ["init", "after init", "call"]);
    assert_eq!(then, ["init", "after init", "call", "after call"]);
}

#[test]
fn a_held_call_is_answered_later_from_another_handler() {
    let (_, _, result, _) = with_client(false, |ctx, s| {
        let me = ctx.pid();
        let releaser = Template::local("releaser", move |ctx: &mut Ctx<u32>, s: Pid| {
            ServerRef::<Recorder>::new(s).cast(ctx, Cast::Release);
            let _ = me;
        });
        ctx.spawn_link(&releaser, s.pid()).unwrap();
        s.call(ctx, Ask::Hold)
    });
    assert_eq!(result, Some(Ok(Ok(vec!["released".to_string()]))));
}

#[test]
fn a_stop_answers_then_terminates_with_its_reason() {
    let (sched, s, result, log) = with_client(false, |ctx, s| {
        let m = ctx.monitor(s.pid());
        let reply = s.call(ctx, Ask::Stop(Reason::Shutdown(None)));
        let down = ctx.receive_mail();
        (
            reply,
            matches!(down, Mail::Down { monitor, .. } if monitor == m),
            down,
        )
    });
    let (reply, ours, down) = result.unwrap().unwrap();
    assert_eq!(reply, Ok(vec!["bye".to_string()]));
    assert!(ours);
    assert!(matches!(
        down,
        Mail::Down {
            reason: Reason::Shutdown(None),
            ..
        }
    ));
    assert_eq!(*log.borrow(), ["terminate shutdown"]);
    assert_eq!(sched.status(s), None);
}

#[test]
fn terminate_runs_when_a_handler_fails_or_exits() {
    for (ask, reason) in [
        (Ask::Fail, Reason::Failed("handler failed".into())),
        (Ask::Exit(Reason::custom("bye")), Reason::custom("bye")),
    ] {
        let ask = RefCell::new(Some(ask));
        let (_, _, result, log) = with_client(false, move |ctx, s| {
            s.call(ctx, ask.borrow_mut().take().unwrap())
        });
        assert_eq!(result, Some(Ok(Err(CallError::Down(reason.clone())))));
        assert_eq!(*log.borrow(), [format!("terminate {reason}")]);
    }
}

#[test]
fn info_may_stop_the_server() {
    let (_, _, result, log) = with_client(false, |ctx, s| {
        ctx.send_to(s.pid(), 0);
        s.call(ctx, Ask::Events)
    });
    assert_eq!(
        result,
        Some(Ok(Err(CallError::Down(Reason::custom("zero")))))
    );
    assert_eq!(*log.borrow(), ["terminate \"zero\""]);
}

#[test]
fn refused_and_foreign_requests_are_unhandled() {
    struct Foreign;
    impl RequestType for Foreign {
        type Reply = ();
    }
    let (_, _, result, _) = with_client(false, |ctx, s| {
        let refused = s.call(ctx, Ask::Unknown);
        let foreign = ctx.request(s.pid(), Foreign, None);
        let alive = s.call(ctx, Ask::Events).is_ok();
        (refused, foreign, alive)
    });
    assert_eq!(
        result,
        Some(Ok((
            Err(CallError::Unhandled),
            Err(CallError::Unhandled),
            true
        )))
    );
}

#[test]
fn stop_from_a_handle_runs_terminate_and_gives_the_reason() {
    let (_, _, result, log) = with_client(false, |ctx, s| {
        let reason = s.stop(ctx, Reason::Shutdown(None));
        let again = s.stop(ctx, Reason::Shutdown(None));
        let call = s.call(ctx, Ask::Events);
        (reason, again, call)
    });
    assert_eq!(
        result,
        Some(Ok((
            Reason::Shutdown(None),
            Reason::NoProc,
            Err(CallError::NoProc)
        )))
    );
    assert_eq!(*log.borrow(), ["terminate shutdown"]);
}

#[test]
fn a_kill_runs_no_terminate() {
    let log = log();
    let mut sched = SimpleScheduler::new();
    let s = sched
        .spawn(&recorder(), (log.clone(), false, true))
        .unwrap()
        .pid();
    sched.run_until_idle();
    sched.exit_signal(s, Reason::Kill);
    sched.run_until_idle();
    assert_eq!(sched.status(s), None);
    assert!(log.borrow().is_empty(), "{:?}", log.borrow());
}

/// Under a supervisor (its parent, linked), a server that traps exits runs
/// `terminate` when the supervisor stops it (OTP: the EXIT from the parent);
/// one that fails is restarted, its `terminate` run with the failure.
#[test]
fn a_supervised_server_terminates_at_shutdown_and_restarts_after_a_failure() {
    let log = log();
    let sup = Supervisor::new("sup")
        .child(ChildSpec::new("rec", &recorder(), (log.clone(), false, true)).name("rec"))
        .template()
        .unwrap();
    let mut sched = SimpleScheduler::new();
    let root = sched.spawn(&sup, ()).unwrap();
    sched.run_until_idle();
    let first = ServerRef::<Recorder>::new(sched.whereis("rec").unwrap());
    sched.cast_server(&first, Cast::Note("hi"));
    assert_eq!(
        sched.call_server(&first, Ask::Events),
        Ok(vec!["init".to_string(), "cast hi".into()])
    );
    assert!(sched.call_server(&first, Ask::Fail).is_err());
    sched.run_until_idle();
    let second = sched.whereis("rec").unwrap();
    assert_ne!(second, first.pid());
    sched.exit_signal(root.pid(), Reason::Shutdown(None));
    sched.run_until_idle();
    assert_eq!(
        *log.borrow(),
        ["terminate failed: handler failed", "terminate shutdown"]
    );
}

/// A server with an idle timeout: each message starts its wait again; a
/// quiet stretch as long as the timeout runs `handle_timeout`.
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

    fn idle_timeout(&self) -> Option<std::time::Duration> {
        Some(std::time::Duration::from_secs(10))
    }

    fn handle_info(&mut self, _: &mut ServerCtx<Self>, mail: Mail<u32>) -> Flow<Self> {
        if let Mail::Msg(n) = mail {
            self.log.borrow_mut().push(format!("msg {n}"));
        }
        Flow::Continue
    }

    fn handle_timeout(&mut self, _: &mut ServerCtx<Self>) -> Flow<Self> {
        self.log.borrow_mut().push("idle".into());
        Flow::Continue
    }
}

#[test]
fn an_idle_timeout_is_reset_by_every_message() {
    use std::time::Duration;
    let log = log();
    let clock = chronoflow::ManualClock::new(chronoflow::Time::from_nanos(0));
    let mut sched = SimpleScheduler::new();
    sched.set_clock(clock.clone());
    let s = sched
        .spawn(&server::template::<Sleepy>("sleepy"), log.clone())
        .unwrap()
        .pid();
    sched.run_until_idle();
    // A message every 6 s: never 10 s of quiet.
    for n in 0..3 {
        clock.advance(Duration::from_secs(6));
        sched.send(s, n).unwrap();
        sched.run_until_idle();
    }
    assert_eq!(*log.borrow(), ["msg 0", "msg 1", "msg 2"]);
    // Then 10 s of quiet, twice.
    clock.advance(Duration::from_secs(10));
    sched.run_until_idle();
    clock.advance(Duration::from_secs(10));
    sched.run_until_idle();
    assert_eq!(*log.borrow(), ["msg 0", "msg 1", "msg 2", "idle", "idle"]);
}
