//! A server's stash (`ServerCtx::stash_call` and its kin, libeam's
//! `stash`/`unstash`/`unstashAll`/`clearStash`): mail put aside comes back in
//! the order it came, ahead of the inbox, after a continuation; a cleared
//! stash refuses its calls; a full stash gives the mail back.

use std::cell::RefCell;
use std::rc::Rc;

use chronoflow::otp::server::{self, Flow, From, Init, Reply, Server, ServerCtx, ServerRef};
use chronoflow::{CallError, Ctx, Handle, Mail, Reason, SimpleScheduler, Template};

type Log = Rc<RefCell<Vec<String>>>;

enum Cast {
    /// Handled only when open: stashed while closed.
    Note(&'static str),
    /// Opens, and unstashes everything.
    Open,
    /// Opens, and unstashes one.
    OpenOne,
    /// Unstashes everything, then continues (`handle_continue` first).
    OpenThenContinue,
    Clear,
    Stop,
}

/// A gate: closed, it stashes every call, cast and message but its own
/// commands; open, it handles them.
struct Gate {
    open: bool,
    log: Log,
}

impl Server for Gate {
    type Engine = server::Stackful;
    type Msg = u32;
    type Args = Log;
    type Call = u32;
    type Reply = u32;
    type Cast = Cast;
    type Continue = ();

    const STASH_CAPACITY: usize = 4;

    fn init(_: &mut ServerCtx<Self>, log: Log) -> Init<Self> {
        Init::Ok(Gate { open: false, log })
    }

    fn handle_call(&mut self, ctx: &mut ServerCtx<Self>, n: u32, from: From<u32>) -> Reply<Self> {
        if !self.open {
            match ctx.stash_call(n, from) {
                Ok(()) => return Reply::NoReply,
                Err(full) => {
                    self.log
                        .borrow_mut()
                        .push(format!("full: call {}", full.0.0));
                    return Reply::Refuse;
                }
            }
        }
        self.log.borrow_mut().push(format!("call {n}"));
        Reply::Reply(n * 10)
    }

    fn handle_cast(&mut self, ctx: &mut ServerCtx<Self>, cast: Cast) -> Flow<Self> {
        match cast {
            Cast::Note(note) if !self.open => {
                if let Err(full) = ctx.stash_cast(Cast::Note(note)) {
                    let Cast::Note(note) = full.0 else {
                        unreachable!()
                    };
                    self.log.borrow_mut().push(format!("full: cast {note}"));
                }
            }
            Cast::Note(note) => self.log.borrow_mut().push(format!("cast {note}")),
            Cast::Open => {
                self.open = true;
                let n = ctx.unstash_all();
                self.log.borrow_mut().push(format!("open, {n} unstashed"));
            }
            Cast::OpenOne => {
                self.open = true;
                let one = ctx.unstash();
                self.log.borrow_mut().push(format!("open one: {one}"));
                self.open = false;
            }
            Cast::OpenThenContinue => {
                self.open = true;
                ctx.unstash_all();
                return Flow::ContinueWith(());
            }
            Cast::Clear => {
                let n = ctx.clear_stash();
                self.log.borrow_mut().push(format!("cleared {n}"));
            }
            Cast::Stop => return Flow::Stop(Reason::custom("closing")),
        }
        Flow::Continue
    }

    fn handle_info(&mut self, ctx: &mut ServerCtx<Self>, mail: Mail<u32>) -> Flow<Self> {
        if !self.open {
            if let Err(full) = ctx.stash_info(mail) {
                self.log.borrow_mut().push(format!("full: {:?}", full.0));
            }
            return Flow::Continue;
        }
        match mail {
            Mail::Msg(n) => self.log.borrow_mut().push(format!("msg {n}")),
            other => self.log.borrow_mut().push(format!("{other:?}")),
        }
        Flow::Continue
    }

    fn handle_continue(&mut self, ctx: &mut ServerCtx<Self>, (): ()) -> Flow<Self> {
        let stashed = ctx.stashed();
        self.log
            .borrow_mut()
            .push(format!("continue, {stashed} stashed"));
        Flow::Continue
    }
}

struct Setup {
    sched: SimpleScheduler<u32>,
    gate: ServerRef<Gate>,
    log: Log,
}

impl Setup {
    fn new() -> Setup {
        let log = Log::default();
        let mut sched = SimpleScheduler::new();
        let pid = sched
            .spawn(&server::template::<Gate>("gate"), log.clone())
            .unwrap()
            .pid();
        Setup {
            sched,
            gate: ServerRef::new(pid),
            log,
        }
    }

    fn cast(&mut self, cast: Cast) {
        self.sched.cast_server(&self.gate, cast);
    }

    /// A process that calls the gate with `n`.
    fn caller(&mut self, n: u32) -> Handle<Result<u32, CallError>> {
        let t = Template::local(
            "caller",
            |ctx: &mut Ctx<u32>, (gate, n): (ServerRef<Gate>, u32)| gate.call_timeout(ctx, n, None),
        );
        let h = self.sched.spawn(&t, (self.gate, n)).unwrap();
        self.sched.run_until_idle();
        h
    }

    fn log(&self) -> Vec<String> {
        self.log.borrow().clone()
    }
}

#[test]
fn stashed_mail_of_every_kind_comes_back_in_order_ahead_of_the_inbox() {
    let mut s = Setup::new();
    let a = s.caller(1);
    s.cast(Cast::Note("b"));
    s.sched.send(s.gate.pid(), 3).unwrap();
    let d = s.caller(4);
    s.sched.run_until_idle();
    assert!(s.log().is_empty(), "all stashed: {:?}", s.log());
    // Mail that is in the inbox when the gate opens comes after the stash.
    s.cast(Cast::Open);
    s.cast(Cast::Note("after"));
    s.sched.run_until_idle();
    assert_eq!(
        s.log(),
        [
            "open, 4 unstashed",
            "call 1",
            "cast b",
            "msg 3",
            "call 4",
            "cast after"
        ]
    );
    assert_eq!(s.sched.result(&a), Some(Ok(Ok(10))));
    assert_eq!(s.sched.result(&d), Some(Ok(Ok(40))));
}

#[test]
fn unstash_brings_back_the_oldest_one_at_a_time() {
    let mut s = Setup::new();
    s.cast(Cast::Note("a"));
    s.cast(Cast::Note("b"));
    s.cast(Cast::Note("c"));
    s.sched.run_until_idle();
    // Each `OpenOne` unstashes one, then closes: the one unstashed is
    // stashed again at the back (handled while closed).
    s.cast(Cast::OpenOne);
    s.sched.run_until_idle();
    s.cast(Cast::Open);
    s.sched.run_until_idle();
    assert_eq!(
        s.log(),
        [
            "open one: true",
            "open, 3 unstashed",
            "cast b",
            "cast c",
            "cast a"
        ]
    );
    s.cast(Cast::OpenOne);
    s.sched.run_until_idle();
    assert_eq!(s.log().last().unwrap(), "open one: false");
}

#[test]
fn a_continuation_runs_before_the_unstashed_mail() {
    let mut s = Setup::new();
    s.cast(Cast::Note("a"));
    s.cast(Cast::OpenThenContinue);
    s.sched.run_until_idle();
    assert_eq!(s.log(), ["continue, 0 stashed", "cast a"]);
}

#[test]
fn a_cleared_stash_refuses_its_calls_at_once() {
    let mut s = Setup::new();
    let a = s.caller(1);
    s.cast(Cast::Note("b"));
    s.cast(Cast::Clear);
    s.sched.run_until_idle();
    assert_eq!(s.log(), ["cleared 2"]);
    // The caller waited with no timeout: it was told.
    assert_eq!(s.sched.result(&a), Some(Ok(Err(CallError::Unhandled))));
    s.cast(Cast::Open);
    s.sched.run_until_idle();
    assert_eq!(s.log(), ["cleared 2", "open, 0 unstashed"]);
}

#[test]
fn a_full_stash_gives_the_mail_back() {
    let mut s = Setup::new();
    for note in ["a", "b", "c", "d", "e"] {
        s.cast(Cast::Note(note));
    }
    s.sched.send(s.gate.pid(), 6).unwrap();
    let g = s.caller(7);
    s.sched.run_until_idle();
    assert_eq!(s.log(), ["full: cast e", "full: Msg(6)", "full: call 7"]);
    // The refused call's caller is told.
    assert_eq!(s.sched.result(&g), Some(Ok(Err(CallError::Unhandled))));
    s.cast(Cast::Open);
    s.sched.run_until_idle();
    assert_eq!(
        s.log()[3..],
        ["open, 4 unstashed", "cast a", "cast b", "cast c", "cast d"]
    );
}

#[test]
fn a_server_that_stops_with_stashed_calls_ends_them_with_its_reason() {
    let mut s = Setup::new();
    let a = s.caller(1);
    s.cast(Cast::Stop);
    s.sched.run_until_idle();
    assert_eq!(
        s.sched.result(&a),
        Some(Ok(Err(CallError::Down(Reason::custom("closing")))))
    );
}
