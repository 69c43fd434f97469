//! A server's loop on a stackless process: the loop of `run.rs` written by
//! hand as a coroutine that polls for its mail, its handlers run between
//! polls (they never wait: a stackless context has no waiting call outside
//! its macros). Its process is a [`StacklessTemplate`]'s.

use std::ops::{Coroutine, CoroutineState};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;

use crate::engine::stackless::Pending;
use crate::engine::stackless::StacklessTemplate;
use crate::engine::stackless::context::StacklessCtx;
use crate::error::ExitError;
use crate::otp::mail::Mail;
use crate::otp::server::context::{Own, ServerCtx};
use crate::otp::server::host::Stackless;
use crate::otp::server::run::{dispatch, guarded, init_failed, stop, unstashed};
use crate::otp::server::{Flow, From, Init, Server};
use crate::otp::stackless::TimedMail;
use crate::reason::Reason;
use crate::signal::Pid;

/// The template of server `S`'s stackless processes, named `name` (see
/// [`template`](super::template) for its stackful ones): spawn it with its
/// [`Args`](Server::Args). Its handlers are given a [`ServerCtx`] that
/// derefs to a [`StacklessCtx`]; they never wait.
pub fn stackless_template<S: Server<Engine = Stackless>>(
    name: &str,
) -> StacklessTemplate<S::Msg, S::Msg, S::Args, ()> {
    StacklessTemplate::exiting(
        name,
        |cx: StacklessCtx<S::Msg>, args: S::Args| Serving::<S> {
            cx,
            phase: Phase::Start(Some(args)),
        },
    )
}

/// A stackless server's coroutine.
struct Serving<S: Server> {
    cx: StacklessCtx<S::Msg>,
    phase: Phase<S>,
}

/// Where it is: about to run `init`, or serving. (One per process, and the
/// first variant lasts one resume: boxing the second would cost an
/// allocation per server for nothing.)
#[allow(clippy::large_enum_variant)]
enum Phase<S: Server> {
    Start(Option<S::Args>),
    Serving(Serve<S>),
}

/// A server's loop state (the locals of `run.rs`'s `serve`).
struct Serve<S: Server> {
    state: S,
    own: Own<S>,
    /// What a handler left for `handle_continue`.
    next: Option<S::Continue>,
    /// A reply that a stop sends once `terminate` has run.
    last_reply: Option<(From<S::Reply>, S::Reply)>,
    parent: Option<Pid>,
    /// The wait for mail with an idle timeout, once it began.
    idle: Option<TimedMail>,
}

/// What a step of the loop came to.
enum Next {
    /// Go on.
    Go,
    /// Wait for this.
    Wait(Pending),
    /// The server ended: the process's result.
    End(Result<(), ExitError>),
}

// It holds no pinned data (no field is ever pinned: the loop moves its state
// as it likes), so that it is `Unpin` whatever the server's types.
impl<S: Server> Unpin for Serving<S> {}

impl<S: Server<Engine = Stackless>> Coroutine for Serving<S> {
    type Yield = Pending;
    type Return = Result<(), ExitError>;

    fn resume(self: Pin<&mut Self>, (): ()) -> CoroutineState<Pending, Result<(), ExitError>> {
        let this = self.get_mut();
        loop {
            let serve = match &mut this.phase {
                Phase::Start(args) => {
                    let args = args.take().expect("a server starts once");
                    match start::<S>(&mut this.cx, args) {
                        Ok(serve) => {
                            this.phase = Phase::Serving(serve);
                            continue;
                        }
                        Err(end) => return CoroutineState::Complete(end),
                    }
                }
                Phase::Serving(serve) => serve,
            };
            match step(&mut this.cx, serve) {
                Next::Go => {}
                Next::Wait(pending) => return CoroutineState::Yielded(pending),
                Next::End(end) => return CoroutineState::Complete(end),
            }
        }
    }
}

/// Runs `init`: the loop's state, or how the process ends.
fn start<S: Server<Engine = Stackless>>(
    cx: &mut StacklessCtx<S::Msg>,
    args: S::Args,
) -> Result<Serve<S>, Result<(), ExitError>> {
    let mut own = Own::<S>::default();
    let init = catch_unwind(AssertUnwindSafe(|| {
        S::init(&mut ServerCtx::new(cx, &mut own), args)
    }));
    let (state, next) = match init {
        Ok(Init::Ok(state)) => (state, None),
        Ok(Init::Continue(state, next)) => (state, Some(next)),
        Ok(Init::Stop(reason)) => {
            if let Some(payload) = own.timers.cancel_all::<Stackless>(cx).1 {
                resume_unwind(payload);
            }
            // (Dropped before the result is made: a return value is leaked
            // when a local's destructor unwinds after it was made.)
            drop(own);
            return Err(end(reason));
        }
        Err(payload) => init_failed(cx, &mut own, payload),
    };
    let parent = cx.server_started();
    Ok(Serve {
        state,
        own,
        next,
        last_reply: None,
        parent,
        idle: None,
    })
}

/// One turn of the loop: a continuation, unstashed mail, or the next mail
/// (or what to wait for).
fn step<S: Server<Engine = Stackless>>(cx: &mut StacklessCtx<S::Msg>, s: &mut Serve<S>) -> Next {
    let last_reply = &mut s.last_reply;
    let flow = if let Some(next) = s.next.take() {
        guarded(cx, &mut s.own, &mut s.state, |c, st| {
            st.handle_continue(c, next)
        })
    } else if let Some(item) = s.own.stash.next() {
        guarded(cx, &mut s.own, &mut s.state, |c, st| {
            unstashed(c, st, item, last_reply)
        })
    } else {
        let mail = match s.state.idle_timeout() {
            None => match cx.poll_receive_mail() {
                Ok(mail) => Some(mail),
                Err(pending) => return Next::Wait(pending),
            },
            Some(idle) => {
                // (Asked when the wait begins: a wait that goes on keeps its
                // deadline.)
                let wait = s.idle.get_or_insert_with(|| TimedMail::new(idle));
                match cx.poll_receive_mail_timeout(wait) {
                    Ok(mail) => {
                        s.idle = None;
                        mail
                    }
                    Err(pending) => return Next::Wait(pending),
                }
            }
        };
        match mail {
            None => guarded(cx, &mut s.own, &mut s.state, |c, st| st.handle_timeout(c)),
            // OTP: an EXIT from its parent stops a server that traps exits.
            Some(Mail::Exit { from, reason }) if Some(from) == s.parent => Flow::Stop(reason),
            Some(mail) => dispatch(cx, &mut s.own, &mut s.state, mail, last_reply),
        }
    };
    match flow {
        Flow::Continue => Next::Go,
        Flow::ContinueWith(next) => {
            s.next = Some(next);
            Next::Go
        }
        Flow::Stop(reason) => {
            let reply = s.last_reply.take();
            stop(cx, &mut s.own, &mut s.state, &reason, reply);
            Next::End(end(reason))
        }
    }
}

/// How the process ends for `reason`.
fn end(reason: Reason) -> Result<(), ExitError> {
    match reason.into_error() {
        None => Ok(()),
        Some(error) => Err(error),
    }
}
