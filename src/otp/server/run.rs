//! A server's process: its loop (OTP's `gen_server:loop`), and how calls,
//! casts and stops reach it (typed requests of its own types).

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::engine::stackful::context::{Ctx, KillUnwind};
use crate::engine::stackful::template::{Local, Step, Template, Transition};
use crate::kernel::engine::ExitWith;
use crate::kernel::pass::panic_message;
use crate::otp::mail::Mail;
use crate::otp::request::RequestType;
use crate::otp::server::context::{EngineCtx, Own, ServerCtx};
use crate::otp::server::host::{Host, Stackful};
use crate::otp::server::stash::Stashed;
use crate::otp::server::timers::{Fired, Panic, TimerTable, keep_first};
use crate::otp::server::{Flow, From, Init, Reply, Server};
use crate::reason::Reason;

/// A call of server `S` as a typed request: what [`ServerRef::call`]
/// sends. A stackless process calls a server with it:
/// `request!(cx, s.pid(), s.call_of(call), timeout)`. A serde type if the
/// server's call is (a durable server's calls are journaled).
///
/// [`ServerRef::call`]: super::ServerRef::call
#[derive(Serialize, Deserialize)]
#[serde(
    transparent,
    bound(
        serialize = "S::Call: Serialize",
        deserialize = "S::Call: DeserializeOwned"
    )
)]
pub struct CallOf<S: Server>(pub(super) S::Call);

impl<S: Server> RequestType for CallOf<S> {
    type Reply = S::Reply;
}

/// A cast to server `S` (sent with no call's tag: nothing answers it).
#[derive(Serialize, Deserialize)]
#[serde(
    transparent,
    bound(
        serialize = "S::Cast: Serialize",
        deserialize = "S::Cast: DeserializeOwned"
    )
)]
pub(crate) struct CastOf<S: Server>(pub(super) S::Cast);

impl<S: Server> RequestType for CastOf<S> {
    type Reply = ();
}

/// A request to stop, for this reason (OTP's `gen_server:stop/3`).
#[derive(Serialize, Deserialize)]
pub(crate) struct StopWith(pub(super) Reason);

impl RequestType for StopWith {
    type Reply = ();
}

/// A durable server's snapshot: its state and its timers, the arguments of
/// the entry it moves to (see [`Server::SNAPSHOT_EVERY`]), and the name of
/// its template (the entry's is made from it).
#[derive(Serialize, Deserialize)]
#[serde(bound(
    serialize = "S: Serialize, S::Msg: Serialize",
    deserialize = "S: DeserializeOwned, S::Msg: DeserializeOwned + Clone"
))]
pub(crate) struct Snapshot<S: Server> {
    state: S,
    timers: TimerTable<S::Msg>,
    template: String,
}

impl<S: Server> fmt::Debug for Snapshot<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Snapshot({})", std::any::type_name::<S>())
    }
}

/// The body of server `S`'s process, started from template `template`.
pub(super) fn run<S: Server<Engine = Stackful>>(
    ctx: &mut Ctx<S::Msg>,
    args: S::Args,
    template: &str,
) -> Step<S::Msg, S::Msg, ()> {
    let mut own = Own::<S>::default();
    let init = catch_unwind(AssertUnwindSafe(|| {
        S::init(&mut ServerCtx::new(ctx, &mut own), args)
    }));
    let (state, next) = match init {
        Ok(Init::Ok(state)) => (state, None),
        Ok(Init::Continue(state, next)) => (state, Some(next)),
        Ok(Init::Stop(reason)) => {
            if let Some(payload) = own.timers.cancel_all::<Stackful>(ctx).1 {
                resume_unwind(payload);
            }
            // (Dropped before the result is made: see `serve`.)
            drop(own);
            return end(reason);
        }
        Err(payload) => init_failed(ctx, &mut own, payload),
    };
    serve(ctx, state, own, next, template)
}

/// The body of a durable server's process from its snapshot.
pub(super) fn resume<S: Server<Engine = Stackful>>(
    ctx: &mut Ctx<S::Msg>,
    snapshot: Snapshot<S>,
) -> Step<S::Msg, S::Msg, ()> {
    let own = Own {
        timers: snapshot.timers,
        stash: Default::default(),
    };
    serve(ctx, snapshot.state, own, None, &snapshot.template)
}

/// The template of a durable server's snapshots, for servers of template
/// `template`.
pub(crate) fn snapshot_template<S: Server<Engine = Stackful>>(
    template: &str,
) -> Template<S::Msg, S::Msg, Snapshot<S>, (), Local> {
    Template::local_stepping(&format!("{template}/snapshot"), resume::<S>)
}

/// The server's loop (OTP's `gen_server:loop`).
fn serve<S: Server<Engine = Stackful>>(
    ctx: &mut Ctx<S::Msg>,
    mut state: S,
    mut own: Own<S>,
    mut next: Option<S::Continue>,
    template: &str,
) -> Step<S::Msg, S::Msg, ()> {
    let me = ctx.me;
    let parent = server_started(ctx.k(), me);
    // Under a durable scheduler that knows it as a server, it moves to a
    // snapshot of itself now and then.
    let snapshots = S::SNAPSHOT_EVERY > 0
        && ctx.hooked()
        && ctx.codec(std::any::type_name::<CallOf<S>>()).is_some();
    let mut handled = 0usize;
    // A reply that a stop sends once `terminate` has run.
    let mut last_reply = None;
    loop {
        let flow = match next.take() {
            Some(next) => guarded(ctx, &mut own, &mut state, |c, s| s.handle_continue(c, next)),
            None => match own.stash.next() {
                // Unstashed mail first, oldest first.
                Some(item) => guarded(ctx, &mut own, &mut state, |c, s| {
                    unstashed(c, s, item, &mut last_reply)
                }),
                None => {
                    let mail = match state.idle_timeout() {
                        None => Some(ctx.receive_mail()),
                        Some(idle) => ctx.receive_mail_timeout(idle),
                    };
                    match mail {
                        None => guarded(ctx, &mut own, &mut state, |c, s| s.handle_timeout(c)),
                        // OTP: an EXIT from its parent stops a server that
                        // traps exits.
                        Some(Mail::Exit { from, reason }) if Some(from) == parent => {
                            Flow::Stop(reason)
                        }
                        Some(mail) => dispatch(ctx, &mut own, &mut state, mail, &mut last_reply),
                    }
                }
            },
        };
        match flow {
            Flow::Continue => {}
            Flow::ContinueWith(c) => next = Some(c),
            Flow::Stop(reason) => {
                stop(ctx, &mut own, &mut state, &reason, last_reply);
                // What holds user values is dropped before the result is
                // made: a `Drop` that panics then fails the process with
                // nothing half-returned (a return value is leaked when a
                // local's destructor unwinds after it was made).
                drop(own);
                drop(state);
                return end(reason);
            }
        }
        if snapshots
            && {
                handled += 1;
                handled >= S::SNAPSHOT_EVERY
            }
            && next.is_none()
            && own.stash.is_empty()
        {
            let snapshot = Snapshot {
                state,
                timers: own.timers,
                template: template.to_string(),
            };
            let entry = snapshot_template::<S>(template);
            return Step::Transition(Transition::to(&entry, snapshot));
        }
    }
}

/// Process `me` runs a server's loop: a scheduler's shutdown stops it as a
/// server (the entry goes at its end). Its parent: the process that started
/// it linked (a supervisor), as OTP's `proc_lib` keeps it.
pub(crate) fn server_started<I: 'static, O: 'static>(
    k: &mut crate::kernel::Kernel<I, O>,
    me: crate::kernel::PPtr<I, O>,
) -> Option<crate::signal::Pid> {
    // SAFETY: `me` is the live process whose turn this is.
    let pid = unsafe { me.as_ref().pid };
    let table = crate::otp::table(k);
    table.set_server(pid);
    crate::otp::watch(me);
    table.parent_of(pid)
}

/// `init` failed (a panic, a `Ctx::exit`): the timers it armed are
/// cancelled, and the failure goes on.
pub(super) fn init_failed<S: Server>(
    ctx: &mut EngineCtx<S>,
    own: &mut Own<S>,
    payload: Panic,
) -> ! {
    if !payload.is::<KillUnwind>() {
        let (_, dropped) = own.timers.cancel_all::<S::Engine>(ctx);
        if let Some(payload) = dropped {
            crate::kernel::pass::forget_quietly(payload);
        }
    }
    resume_unwind(payload)
}

/// The server stops for `reason`: its timers are cancelled, `terminate` runs,
/// then a stop's reply (if any) goes. A failure of `terminate` (or of a
/// timer message's `Drop`) goes on as the process's.
pub(super) fn stop<S: Server>(
    ctx: &mut EngineCtx<S>,
    own: &mut Own<S>,
    state: &mut S,
    reason: &Reason,
    last_reply: Option<(From<S::Reply>, S::Reply)>,
) {
    // Its timers first: none fires while `terminate` waits for something.
    let (_, dropped) = own.timers.cancel_all::<S::Engine>(ctx);
    // OTP: `terminate` first, then the reply (even if `terminate` fails), so
    // that the caller hears back once the server let go of what it held. (A
    // kill that unwinds through it sends nothing: the process is gone.)
    let terminated = catch_unwind(AssertUnwindSafe(|| {
        state.terminate(&mut ServerCtx::new(ctx, own), reason)
    }));
    let killed = terminated.as_ref().is_err_and(|p| p.is::<KillUnwind>());
    // And those `terminate` armed: none outlives the server.
    let dropped = match killed {
        true => dropped,
        false => {
            let mut first = dropped;
            if let Some(payload) = own.timers.cancel_all::<S::Engine>(ctx).1 {
                keep_first(&mut first, payload);
            }
            first
        }
    };
    if let Some((from, reply)) = last_reply
        && !killed
    {
        let _ = ServerCtx::new(ctx, own).reply_to(from, reply);
    }
    // A failure of `terminate` ends the process with it; else one of a timer
    // message's `Drop`.
    if let Err(payload) = terminated {
        if let Some(payload) = dropped {
            crate::kernel::pass::forget_quietly(payload);
        }
        resume_unwind(payload);
    }
    if let Some(payload) = dropped {
        resume_unwind(payload);
    }
}

/// Hands `mail` to the handler it is for, guarded (see [`guarded`]). A
/// call's stop leaves its reply in `last_reply`, to send once `terminate` has
/// run. (The request is opened before the guard, which then holds the body
/// alone: the library's part runs no user code.)
pub(super) fn dispatch<S: Server>(
    ctx: &mut EngineCtx<S>,
    own: &mut Own<S>,
    state: &mut S,
    mail: Mail<S::Msg>,
    last_reply: &mut Option<(From<S::Reply>, S::Reply)>,
) -> Flow<S> {
    let request = match mail {
        Mail::Request(request) => request,
        Mail::Timeout(timer) => {
            // (An interval's copy of its message is user code: guarded.)
            return guarded(ctx, own, state, |c, s| match c.fired(timer) {
                Fired::Msg(msg) => s.handle_info(c, Mail::Msg(msg)),
                Fired::Stale => Flow::Continue,
                Fired::NotOurs => s.handle_info(c, Mail::Timeout(timer)),
            });
        }
        mail => return guarded(ctx, own, state, |c, s| s.handle_info(c, mail)),
    };
    if let Some((CallOf(call), from)) = request.take::<CallOf<S>>() {
        return guarded(ctx, own, state, |c, s| {
            handle_call(c, s, call, from, last_reply)
        });
    }
    if let Some((CastOf(cast), _)) = request.take::<CastOf<S>>() {
        return guarded(ctx, own, state, |c, s| s.handle_cast(c, cast));
    }
    if let Some((StopWith(reason), _)) = request.take::<StopWith>() {
        return Flow::Stop(reason);
    }
    // Not one of its own: its caller is told at once.
    S::Engine::refuse(ctx, &request);
    Flow::Continue
}

/// Hands unstashed mail to the handler it is for.
pub(super) fn unstashed<S: Server>(
    ctx: &mut ServerCtx<S>,
    state: &mut S,
    item: Stashed<S>,
    last_reply: &mut Option<(From<S::Reply>, S::Reply)>,
) -> Flow<S> {
    match item {
        Stashed::Call(call, from) => handle_call(ctx, state, call, from, last_reply),
        Stashed::Cast(cast) => state.handle_cast(ctx, cast),
        Stashed::Info(mail) => state.handle_info(ctx, mail),
    }
}

/// Runs `handle_call`, and answers as it says.
fn handle_call<S: Server>(
    ctx: &mut ServerCtx<S>,
    state: &mut S,
    call: S::Call,
    from: From<S::Reply>,
    last_reply: &mut Option<(From<S::Reply>, S::Reply)>,
) -> Flow<S> {
    match state.handle_call(ctx, call, from) {
        Reply::Reply(reply) => {
            let _ = ctx.reply_to(from, reply);
            Flow::Continue
        }
        Reply::ReplyContinue(reply, next) => {
            let _ = ctx.reply_to(from, reply);
            Flow::ContinueWith(next)
        }
        Reply::NoReply => Flow::Continue,
        Reply::Refuse => {
            ctx.refuse_call(from);
            Flow::Continue
        }
        Reply::Stop(reason, reply) => {
            *last_reply = reply.map(|reply| (from, reply));
            Flow::Stop(reason)
        }
    }
}

/// Runs `f` (a handler, and what the loop does around it with user values:
/// a reply given back and dropped, a timer's message copied) on the state.
/// If it fails (a panic, or a `Ctx::exit`), the server's timers are
/// cancelled and `terminate` runs with that reason (OTP: a callback's
/// exception stops the server through `terminate/2`), and the process ends
/// with it; a kill (the stack unwinding for the process's end) runs nothing.
pub(super) fn guarded<S: Server, T>(
    ctx: &mut EngineCtx<S>,
    own: &mut Own<S>,
    state: &mut S,
    f: impl FnOnce(&mut ServerCtx<S>, &mut S) -> T,
) -> T {
    match catch_unwind(AssertUnwindSafe(|| f(&mut ServerCtx::new(ctx, own), state))) {
        Ok(t) => t,
        Err(payload) => {
            if !payload.is::<KillUnwind>() {
                let reason = match payload.downcast_ref::<ExitWith>() {
                    Some(ExitWith(error)) => Reason::from(error.clone()),
                    None => Reason::Failed(panic_message(&*payload)),
                };
                let (_, dropped) = own.timers.cancel_all::<S::Engine>(ctx);
                if let Some(payload) = dropped {
                    crate::kernel::pass::forget_quietly(payload);
                }
                state.terminate(&mut ServerCtx::new(ctx, own), &reason);
                // And those `terminate` armed: none outlives the server.
                let (_, dropped) = own.timers.cancel_all::<S::Engine>(ctx);
                if let Some(payload) = dropped {
                    crate::kernel::pass::forget_quietly(payload);
                }
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
