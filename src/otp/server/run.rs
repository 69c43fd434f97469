//! A server's process: its loop (OTP's `gen_server:loop`), and how calls,
//! casts and stops reach it (typed requests of its own types).

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use crate::engine::stackful::context::{Ctx, KillUnwind};
use crate::engine::stackful::template::Step;
use crate::kernel::engine::ExitWith;
use crate::kernel::pass::panic_message;
use crate::otp::mail::Mail;
use crate::otp::request::RequestType;
use crate::otp::server::{Flow, From, Init, Reply, Server};
use crate::reason::Reason;
use crate::signal::Pid;

/// A call of server `S`.
pub(super) struct CallOf<S: Server>(pub(super) S::Call);

impl<S: Server> RequestType for CallOf<S> {
    type Reply = S::Reply;
}

/// A cast to server `S` (sent with no call's tag: nothing answers it).
pub(super) struct CastOf<S: Server>(pub(super) S::Cast);

impl<S: Server> RequestType for CastOf<S> {
    type Reply = ();
}

/// A request to stop, for this reason (OTP's `gen_server:stop/3`).
pub(super) struct StopWith(pub(super) Reason);

impl RequestType for StopWith {
    type Reply = ();
}

/// The body of server `S`'s process.
pub(super) fn run<S: Server>(ctx: &mut Ctx<S::Msg>, args: S::Args) -> Step<S::Msg, S::Msg, ()> {
    // Its parent: the process that started it linked (a supervisor), as
    // OTP's `proc_lib` keeps it.
    let me = ctx.pid();
    let parent = crate::otp::table(ctx.k()).parent_of(me);
    let (mut state, mut next) = match S::init(ctx, args) {
        Init::Ok(state) => (state, None),
        Init::Continue(state, next) => (state, Some(next)),
        Init::Stop(reason) => return end(reason),
    };
    // A reply that a stop sends once `terminate` has run.
    let mut last_reply = None;
    loop {
        let flow = match next.take() {
            Some(next) => guarded(ctx, &mut state, |ctx, s| s.handle_continue(ctx, next)),
            None => match state.idle_timeout() {
                None => {
                    let mail = ctx.receive_mail();
                    dispatch(ctx, &mut state, mail, parent, &mut last_reply)
                }
                Some(idle) => match ctx.receive_mail_timeout(idle) {
                    Some(mail) => dispatch(ctx, &mut state, mail, parent, &mut last_reply),
                    None => guarded(ctx, &mut state, |ctx, s| s.handle_timeout(ctx)),
                },
            },
        };
        match flow {
            Flow::Continue => {}
            Flow::ContinueWith(c) => next = Some(c),
            Flow::Stop(reason) => {
                // OTP: `terminate` first, then the reply (even if `terminate`
                // fails), so that the caller hears back once the server let
                // go of what it held. (A kill that unwinds through it sends
                // nothing: the process is gone.)
                let terminated = catch_unwind(AssertUnwindSafe(|| state.terminate(ctx, &reason)));
                let killed = terminated.as_ref().is_err_and(|p| p.is::<KillUnwind>());
                if let Some((from, reply)) = last_reply.take()
                    && !killed
                {
                    let _ = ctx.reply(from, reply);
                }
                if let Err(payload) = terminated {
                    resume_unwind(payload);
                }
                return end(reason);
            }
        }
    }
}

/// Hands `mail` to the handler it is for. A call's stop leaves its reply in
/// `last_reply`, to send once `terminate` has run.
fn dispatch<S: Server>(
    ctx: &mut Ctx<S::Msg>,
    state: &mut S,
    mail: Mail<S::Msg>,
    parent: Option<Pid>,
    last_reply: &mut Option<(From<S::Reply>, S::Reply)>,
) -> Flow<S> {
    let request = match mail {
        Mail::Request(request) => request,
        // OTP: an EXIT from its parent stops a server that traps exits.
        Mail::Exit { from, reason } if Some(from) == parent => return Flow::Stop(reason),
        mail => return guarded(ctx, state, |ctx, s| s.handle_info(ctx, mail)),
    };
    if let Some((CallOf(call), from)) = request.take::<CallOf<S>>() {
        return match guarded(ctx, state, |ctx, s| s.handle_call(ctx, call, from)) {
            Reply::Reply(reply) => {
                let _ = ctx.reply(from, reply);
                Flow::Continue
            }
            Reply::ReplyContinue(reply, next) => {
                let _ = ctx.reply(from, reply);
                Flow::ContinueWith(next)
            }
            Reply::NoReply => Flow::Continue,
            Reply::Refuse => {
                ctx.refuse(&request);
                Flow::Continue
            }
            Reply::Stop(reason, reply) => {
                *last_reply = reply.map(|reply| (from, reply));
                Flow::Stop(reason)
            }
        };
    }
    if let Some((CastOf(cast), _)) = request.take::<CastOf<S>>() {
        return guarded(ctx, state, |ctx, s| s.handle_cast(ctx, cast));
    }
    if let Some((StopWith(reason), _)) = request.take::<StopWith>() {
        return Flow::Stop(reason);
    }
    // Not one of its own: its caller is told at once.
    ctx.refuse(&request);
    Flow::Continue
}

/// Runs handler `f` on the state. If it fails (a panic, or a `Ctx::exit`),
/// `terminate` runs with that reason (OTP: a callback's exception stops the
/// server through `terminate/2`), and the process ends with it; a kill (the
/// stack unwinding for the process's end) runs nothing.
fn guarded<S: Server, T>(
    ctx: &mut Ctx<S::Msg>,
    state: &mut S,
    f: impl FnOnce(&mut Ctx<S::Msg>, &mut S) -> T,
) -> T {
    match catch_unwind(AssertUnwindSafe(|| f(ctx, state))) {
        Ok(t) => t,
        Err(payload) => {
            if !payload.is::<KillUnwind>() {
                let reason = match payload.downcast_ref::<ExitWith>() {
                    Some(ExitWith(error)) => Reason::from(error.clone()),
                    None => Reason::Failed(panic_message(&*payload)),
                };
                state.terminate(ctx, &reason);
            }
            resume_unwind(payload)
        }
    }
}

/// How the process ends for `reason`.
fn end<M>(reason: Reason) -> Step<M, M, ()> {
    match reason.into_error() {
        None => Step::Done(()),
        Some(error) => Step::Exit(error),
    }
}
