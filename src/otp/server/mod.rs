//! Servers, with OTP's `gen_server` semantics (`lib/stdlib/src/gen_server.erl`):
//! a process defined by its state and handlers, not by a receive loop of its
//! own.
//!
//! A [`Server`] says its types (the scheduler's message type, its start
//! arguments, its calls and their reply, its casts, its continuations) and
//! implements the handlers it needs: [`init`](Server::init), and any of
//! [`handle_call`](Server::handle_call), [`handle_cast`](Server::handle_cast),
//! [`handle_info`](Server::handle_info),
//! [`handle_continue`](Server::handle_continue) and
//! [`terminate`](Server::terminate). [`template`] makes its process's template
//! (spawn it, `spawn_link` it, or give it to a supervisor's `ChildSpec`), and
//! a [`ServerRef`] of it is a typed handle: [`call`](ServerRef::call) takes the
//! server's call type and gives its reply type, so that a wrong call does not
//! compile (libeam's `TypedActorRef`).
//!
//! Calls and casts travel as typed requests (the toolkit's system queue, see
//! [`Request`](crate::otp::Request)), beside the user's messages and in arrival
//! order with them: a server's message type `Msg` need carry nothing for them,
//! and what reaches its inbox (`Msg`s, DOWN, EXIT, timeouts) goes to
//! [`handle_info`](Server::handle_info). A request of another type is refused
//! (its caller gets [`CallError::Unhandled`](crate::CallError::Unhandled)).
//!
//! # Engines, timers, stash, durability
//!
//! A server names the engine it runs on ([`Server::Engine`]): [`Stackful`]
//! ([`template`]; its handlers may wait) or `Stackless` ([`stackless_template`],
//! feature `stackless`; its handlers never wait). Its handlers get a
//! [`ServerCtx`]: the engine's context through `Deref`, with the server's own
//! [`timers`](ServerCtx::timers) (messages it sends itself, once or at every
//! period, cancelled when it stops) and its stash
//! ([`stash_call`](ServerCtx::stash_call) and its kin: mail put aside, handled
//! later in order, ahead of the inbox). Under a durable scheduler
//! ([`DurableBuilder::server`](crate::durable::DurableBuilder::server)) its
//! calls, casts and stops are journaled, and it moves to snapshots of itself
//! ([`Server::SNAPSHOT_EVERY`]).
//!
//! # Terminate
//!
//! [`terminate`](Server::terminate) runs, with the reason, where OTP runs it:
//! when a handler returns a stop, when [`ServerRef::stop`] asks, when a handler
//! fails (a panic: `Failed`; a [`Ctx::exit`](crate::Ctx::exit): its reason),
//! and when the server traps exits and its parent (the process that started
//! it with `spawn_link`: a supervisor) sends it an exit signal. Not when it is
//! killed (`Reason::Kill`), nor when an exit signal ends a server that does not
//! trap exits: as in OTP, it is gone before it could run anything.
//!
//! # Example
//!
//! ```
//! use chronoflow::otp::server::{self, Reply, Server, ServerCtx, ServerRef};
//! use chronoflow::{Ctx, Local, SimpleScheduler, Template};
//!
//! /// A counter: `Add(n)` casts, `Get` calls.
//! struct Counter(u64);
//! enum Get { Total }
//!
//! impl Server for Counter {
//!     type Engine = server::Stackful;
//!     type Msg = ();
//!     type Args = u64;
//!     type Call = Get;
//!     type Reply = u64;
//!     type Cast = u64;
//!     type Continue = ();
//!
//!     fn init(_ctx: &mut ServerCtx<Self>, start: u64) -> server::Init<Self> {
//!         server::Init::Ok(Counter(start))
//!     }
//!     fn handle_call(&mut self, _ctx: &mut ServerCtx<Self>, Get::Total: Get, _from: server::From<u64>) -> Reply<Self> {
//!         Reply::Reply(self.0)
//!     }
//!     fn handle_cast(&mut self, _ctx: &mut ServerCtx<Self>, n: u64) -> server::Flow<Self> {
//!         self.0 += n;
//!         server::Flow::Continue
//!     }
//! }
//!
//! let counter = server::template::<Counter>("counter");
//! let client = Template::local("client", |ctx: &mut Ctx<()>, s: ServerRef<Counter>| {
//!     s.cast(ctx, 2);
//!     s.cast(ctx, 3);
//!     s.call(ctx, Get::Total)
//! });
//! let mut sched = SimpleScheduler::new();
//! let s = ServerRef::<Counter>::new(sched.spawn(&counter, 10).unwrap().pid());
//! let c = sched.spawn(&client, s).unwrap();
//! sched.run_until_idle();
//! assert_eq!(sched.result(&c), Some(Ok(Ok(15))));
//! ```

mod context;
mod handle;
mod host;
mod run;
#[cfg(feature = "stackless")]
mod stackless;
mod stash;
mod timers;

use std::time::Duration;

pub use context::{EngineCtx, ServerCtx, StashedCall};
pub use handle::ServerRef;
pub(crate) use handle::stop_request;
#[cfg(feature = "stackless")]
pub use host::Stackless;
pub use host::{Host, Stackful};
pub use run::CallOf;
#[cfg(feature = "stackless")]
pub(crate) use run::server_started;
pub(crate) use run::{CastOf, StopWith, snapshot_template};
#[cfg(feature = "stackless")]
pub use stackless::stackless_template;
pub use stash::StashFull;
pub use timers::{Timer, Timers};

use crate::engine::stackful::template::{Local, Template};
use crate::otp::call::ReplyTo;
use crate::reason::Reason;

/// Where a call's reply goes (OTP's `From`): reply with
/// [`Reply::Reply`], or later with [`Ctx::reply`](crate::Ctx::reply).
pub type From<R> = ReplyTo<R>;

/// A call's default timeout: 5 s, as OTP's `gen_server:call/2`.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// A server: its state, and its handlers (see the [module](self)).
pub trait Server: Sized + 'static {
    /// The engine it runs on: [`Stackful`] (its handlers may wait: call
    /// another server, sleep) or [`Stackless`] (feature `stackless`: its
    /// handlers never wait). Its handlers' [`ServerCtx`] derefs to that
    /// engine's context.
    type Engine: Host;
    /// The scheduler's message type: what reaches its inbox comes to
    /// [`handle_info`](Server::handle_info).
    type Msg: 'static;
    /// What it starts with.
    type Args: 'static;
    /// Its calls, each answered with a [`Reply`](Server::Reply).
    type Call: 'static;
    /// What its calls answer.
    type Reply: 'static;
    /// Its casts (no answer).
    type Cast: 'static;
    /// What a handler leaves for [`handle_continue`](Server::handle_continue)
    /// (`()` if none).
    type Continue: 'static;

    /// How much mail its stash holds at most (see
    /// [`ServerCtx::stash_call`]): by default as much as an inbox
    /// ([`DEFAULT_CAPACITY`](crate::DEFAULT_CAPACITY)).
    const STASH_CAPACITY: usize = crate::DEFAULT_CAPACITY;

    /// Under a durable scheduler (registered with
    /// [`DurableBuilder::server`](crate::durable::DurableBuilder::server)),
    /// the server moves to a snapshot of itself after this many handled
    /// messages (at the first moment after, when nothing is stashed and no
    /// continuation waits): a transition to an entry whose arguments are its
    /// state and its timers, so that the journal before it can be released
    /// and a recovery replays only what came since. 0: never.
    const SNAPSHOT_EVERY: usize = 1000;

    /// Makes the state (OTP's `init/1`), before any message is handled: or a
    /// continuation to run first ([`Init::Continue`], OTP's `{continue,
    /// Continue}`: before any mail), or a stop.
    fn init(ctx: &mut ServerCtx<Self>, args: Self::Args) -> Init<Self>;

    /// A call (OTP's `handle_call/3`): its reply now, or later
    /// ([`Reply::NoReply`]: answer `from` with [`Ctx::reply`](crate::Ctx::reply)),
    /// or a stop. By default, refused ([`CallError::Unhandled`](crate::CallError::Unhandled)).
    fn handle_call(
        &mut self,
        ctx: &mut ServerCtx<Self>,
        call: Self::Call,
        from: From<Self::Reply>,
    ) -> Reply<Self> {
        let _ = (ctx, call, from);
        Reply::Refuse
    }

    /// A cast (OTP's `handle_cast/2`). By default, ignored.
    fn handle_cast(&mut self, ctx: &mut ServerCtx<Self>, cast: Self::Cast) -> Flow<Self> {
        let _ = (ctx, cast);
        Flow::Continue
    }

    /// Anything else that reaches it (OTP's `handle_info/2`): a message of
    /// the scheduler's type, a DOWN, an EXIT (if it traps exits), a timeout.
    /// By default, ignored.
    fn handle_info(
        &mut self,
        ctx: &mut ServerCtx<Self>,
        mail: crate::Mail<Self::Msg>,
    ) -> Flow<Self> {
        let _ = (ctx, mail);
        Flow::Continue
    }

    /// What a handler (or `init`) left to do before the next mail (OTP's
    /// `handle_continue/2`). By default, nothing.
    fn handle_continue(&mut self, ctx: &mut ServerCtx<Self>, next: Self::Continue) -> Flow<Self> {
        let _ = (ctx, next);
        Flow::Continue
    }

    /// How long it may wait for mail before [`handle_timeout`](Server::handle_timeout)
    /// runs (libeam's `setIdleTimeout`, OTP's `{noreply, State, Timeout}`):
    /// asked before each wait, so that any mail starts the wait again. By
    /// default, forever.
    fn idle_timeout(&self) -> Option<Duration> {
        None
    }

    /// No mail came within its [`idle_timeout`](Server::idle_timeout) (OTP's
    /// `handle_info(timeout, State)`). By default, nothing.
    fn handle_timeout(&mut self, ctx: &mut ServerCtx<Self>) -> Flow<Self> {
        let _ = ctx;
        Flow::Continue
    }

    /// The server stops for `reason` (OTP's `terminate/2`; see the
    /// [module](self) for when it runs). By default, nothing.
    fn terminate(&mut self, ctx: &mut ServerCtx<Self>, reason: &Reason) {
        let _ = (ctx, reason);
    }
}

/// What [`Server::init`] gives.
pub enum Init<S: Server> {
    /// The state: the server waits for mail.
    Ok(S),
    /// The state, and what to do before any mail
    /// ([`Server::handle_continue`]).
    Continue(S, S::Continue),
    /// It does not start: it ends with this reason (no `terminate`: there is
    /// no state).
    Stop(Reason),
}

/// What [`Server::handle_call`] gives.
pub enum Reply<S: Server> {
    /// The reply.
    Reply(S::Reply),
    /// The reply, then what to do before the next mail.
    ReplyContinue(S::Reply, S::Continue),
    /// No reply now: the handler keeps `from` and answers later.
    NoReply,
    /// Refused: the caller gets `CallError::Unhandled`.
    Refuse,
    /// The reply (if any), then a stop with this reason.
    Stop(Reason, Option<S::Reply>),
}

/// What the other handlers give.
pub enum Flow<S: Server> {
    /// Wait for the next mail.
    Continue,
    /// Do this first ([`Server::handle_continue`]).
    ContinueWith(S::Continue),
    /// Stop with this reason ([`Server::terminate`] runs).
    Stop(Reason),
}

/// The template of server `S`'s processes, named `name`: spawn it with its
/// [`Args`](Server::Args) (a supervisor's child spec takes it as any
/// template). The process ends with the reason it stops for (`Normal`: its
/// result is `()`).
pub fn template<S: Server<Engine = Stackful>>(
    name: &str,
) -> Template<S::Msg, S::Msg, S::Args, (), Local> {
    let template: std::sync::Arc<str> = name.into();
    Template::local_stepping(name, move |ctx, args| run::run::<S>(ctx, args, &template))
}
