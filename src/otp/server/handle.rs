//! A server's typed handle: calls take its call type and give its reply
//! type, casts take its cast type (libeam's `TypedActorRef`).

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::engine::stackful::context::Ctx;
use crate::kernel::Kernel;
use crate::otp::call::CallError;
use crate::otp::mail::{Mail, MailRef};
use crate::otp::request::{post, post_across};
use crate::otp::server::run::{CallOf, CastOf, StopWith};
use crate::otp::server::{DEFAULT_CALL_TIMEOUT, Server};
use crate::reason::Reason;
use crate::scheduler::SimpleScheduler;
use crate::signal::{DurablePayload, Pid};

/// The handle of a process of server `S` (made by
/// [`server::template::<S>`](super::template)).
///
/// It is a serde type (its pid): it travels in messages and arguments, a
/// durable process's too.
#[derive(Serialize, Deserialize)]
#[serde(transparent, bound = "")]
pub struct ServerRef<S> {
    pid: Pid,
    #[serde(skip)]
    _server: PhantomData<fn() -> S>,
}

impl<S: Server> ServerRef<S> {
    /// The handle of server `S`'s process `pid` (a process of another
    /// template refuses its calls: `CallError::Unhandled`).
    pub fn new(pid: Pid) -> Self {
        ServerRef {
            pid,
            _server: PhantomData,
        }
    }

    /// Its pid.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Calls it, waiting at most [`DEFAULT_CALL_TIMEOUT`] (5 s, OTP's
    /// `gen_server:call/2`) for its reply; typed errors as
    /// [`Ctx::call`](crate::Ctx::call)'s. A server of another core of a
    /// [`Runtime`](crate::runtime::Runtime) gives
    /// [`CallError::OtherCore`] at once: call it with
    /// [`call_across`](Self::call_across).
    pub fn call(&self, ctx: &mut Ctx<S::Msg>, call: S::Call) -> Result<S::Reply, CallError> {
        self.call_timeout(ctx, call, Some(DEFAULT_CALL_TIMEOUT))
    }

    /// Calls it, waiting at most `timeout` (`None`: forever).
    pub fn call_timeout(
        &self,
        ctx: &mut Ctx<S::Msg>,
        call: S::Call,
        timeout: Option<Duration>,
    ) -> Result<S::Reply, CallError> {
        ctx.request(self.pid, CallOf::<S>(call), timeout)
    }

    /// Casts to it (OTP's `gen_server:cast/2`): no answer, no wait; to a
    /// server that is not alive, nothing happens. A durable process casts
    /// with [`durable_cast`](Self::durable_cast).
    ///
    /// A server of another core of a [`Runtime`](crate::runtime::Runtime)
    /// takes casts sent with [`cast_across`](Self::cast_across) (the cast
    /// `Send`): this one cannot send it there, and panics rather than lose
    /// it.
    pub fn cast(&self, ctx: &mut Ctx<S::Msg>, cast: S::Cast) {
        ctx.otp_call("cast");
        let me = ctx.pid();
        post(ctx.k(), me, self.pid, CastOf::<S>(cast));
    }

    /// [`call`](Self::call) to a server of any core of a
    /// [`Runtime`](crate::runtime::Runtime) (OTP's `gen_server:call/2` to a
    /// server on another node): its call and reply types cross cores, so
    /// they are `Send`. Waits at most [`DEFAULT_CALL_TIMEOUT`]; typed errors
    /// as [`Ctx::request_across`](crate::Ctx::request_across)'s. On one core
    /// it is `call`. (A plain `call` to a server of another core gives
    /// [`CallError::OtherCore`] at once.)
    pub fn call_across(&self, ctx: &mut Ctx<S::Msg>, call: S::Call) -> Result<S::Reply, CallError>
    where
        S::Call: Send,
        S::Reply: Send,
    {
        self.call_across_timeout(ctx, call, Some(DEFAULT_CALL_TIMEOUT))
    }

    /// [`call_across`](Self::call_across), waiting at most `timeout` (`None`:
    /// forever): OTP's `gen_server:call/3` to a server on another node.
    pub fn call_across_timeout(
        &self,
        ctx: &mut Ctx<S::Msg>,
        call: S::Call,
        timeout: Option<Duration>,
    ) -> Result<S::Reply, CallError>
    where
        S::Call: Send,
        S::Reply: Send,
    {
        ctx.request_across(self.pid, CallOf::<S>(call), timeout)
    }

    /// [`cast`](Self::cast) to a server of any core of a
    /// [`Runtime`](crate::runtime::Runtime) (OTP's `gen_server:cast/2` to a
    /// server on another node): the cast crosses cores, so it is `Send`. It
    /// reaches the server in order with this process's messages to it; to a
    /// server that is not alive, nothing happens. On one core it is `cast`.
    pub fn cast_across(&self, ctx: &mut Ctx<S::Msg>, cast: S::Cast)
    where
        S::Cast: Send,
    {
        self.cast_made_across(ctx, move || cast);
    }

    /// [`cast_across`](Self::cast_across) of the cast that `make` makes on
    /// the server's core (a cast that is not `Send` itself: an agent's).
    pub(crate) fn cast_made_across(
        &self,
        ctx: &mut Ctx<S::Msg>,
        make: impl FnOnce() -> S::Cast + Send + 'static,
    ) {
        ctx.otp_call("cast_across");
        let me = ctx.pid();
        post_across(ctx.k(), me, self.pid, move || CastOf::<S>(make()));
    }

    /// [`cast_across`](Self::cast_across) from a stackless process.
    #[cfg(feature = "stackless")]
    pub fn cast_across_stackless(&self, cx: &crate::StacklessCtx<S::Msg>, cast: S::Cast)
    where
        S::Cast: Send,
    {
        cx.post_across(self.pid, move || CastOf::<S>(cast));
    }

    /// The request that [`call`](Self::call) sends: a stackless process
    /// calls the server with `request!(cx, s.pid(), s.call_of(call),
    /// timeout)`, and a server of any core (as
    /// [`call_across`](Self::call_across) does, the call and reply `Send`)
    /// with `request_across!(cx, s.pid(), s.call_of(call), timeout)`.
    pub fn call_of(&self, call: S::Call) -> CallOf<S> {
        CallOf(call)
    }

    /// [`cast`](Self::cast) from a stackless process.
    #[cfg(feature = "stackless")]
    pub fn cast_stackless(&self, cx: &crate::StacklessCtx<S::Msg>, cast: S::Cast) {
        cx.post(self.pid, CastOf::<S>(cast));
    }

    /// [`call`](Self::call), journaled by a durable scheduler (see
    /// [`Ctx::durable_request`](crate::Ctx::durable_request)): the server's
    /// call and reply are serde types, and it is registered with
    /// [`DurableBuilder::server`](crate::durable::DurableBuilder::server).
    /// On a plain scheduler it is `call`.
    pub fn durable_call(&self, ctx: &mut Ctx<S::Msg>, call: S::Call) -> Result<S::Reply, CallError>
    where
        S::Call: Serialize + DeserializeOwned,
        S::Reply: DurablePayload,
    {
        self.durable_call_timeout(ctx, call, Some(DEFAULT_CALL_TIMEOUT))
    }

    /// [`call_timeout`](Self::call_timeout), journaled as
    /// [`durable_call`](Self::durable_call) is.
    pub fn durable_call_timeout(
        &self,
        ctx: &mut Ctx<S::Msg>,
        call: S::Call,
        timeout: Option<Duration>,
    ) -> Result<S::Reply, CallError>
    where
        S::Call: Serialize + DeserializeOwned,
        S::Reply: DurablePayload,
    {
        ctx.durable_request(self.pid, CallOf::<S>(call), timeout)
    }

    /// [`cast`](Self::cast), journaled by a durable scheduler (the server's
    /// cast is a serde type, and it is registered with
    /// [`DurableBuilder::server`](crate::durable::DurableBuilder::server)).
    /// On a plain scheduler it is `cast`.
    pub fn durable_cast(&self, ctx: &mut Ctx<S::Msg>, cast: S::Cast)
    where
        S::Cast: Serialize + DeserializeOwned,
    {
        ctx.durable_post(self.pid, CastOf::<S>(cast));
    }

    /// Stops it with `reason` and waits for its end (OTP's
    /// `gen_server:stop/3` with an infinite timeout): its
    /// [`terminate`](Server::terminate) runs. The reason it ended with
    /// ([`Reason::NoProc`] if it was not alive).
    ///
    /// Under a durable scheduler the stop is journaled (the server must be
    /// registered with
    /// [`DurableBuilder::server`](crate::durable::DurableBuilder::server)).
    ///
    /// A server of another core of a [`Runtime`](crate::runtime::Runtime) is
    /// stopped the same way (OTP's `gen_server:stop/3` of a server on
    /// another node): the stop travels there, its DOWN comes back.
    ///
    /// From the server itself (a handler), the stop is queued and `reason`
    /// given back at once: it stops once its handler returns (where OTP's
    /// would wait for ever).
    pub fn stop(&self, ctx: &mut Ctx<S::Msg>, reason: Reason) -> Reason {
        let me = ctx.pid();
        if self.pid == me {
            ctx.durable_post(me, StopWith(reason.clone()));
            return reason;
        }
        let monitor = ctx.monitor(self.pid);
        if ctx.k().elsewhere(self.pid) {
            // (A server of another core: the stop travels there.)
            post_across(ctx.k(), me, self.pid, move || StopWith(reason));
        } else {
            ctx.durable_post(self.pid, StopWith(reason));
        }
        match ctx.select_mail(|m| matches!(m, MailRef::Down { monitor: r, .. } if r == monitor)) {
            Mail::Down { reason, .. } => reason,
            _ => unreachable!("selected a DOWN"),
        }
    }
}

impl<M: 'static> SimpleScheduler<M> {
    /// Calls server `server` from outside, driving the scheduler until the
    /// reply comes (as [`request`](Self::request) does).
    pub fn call_server<S: Server<Msg = M>>(
        &mut self,
        server: &ServerRef<S>,
        call: S::Call,
    ) -> Result<S::Reply, CallError> {
        self.request(server.pid, CallOf::<S>(call))
    }

    /// Casts to server `server` from outside (no answer, no wait).
    pub fn cast_server<S: Server<Msg = M>>(&mut self, server: &ServerRef<S>, cast: S::Cast) {
        post(self.kernel_mut(), server.pid, server.pid, CastOf::<S>(cast));
    }
}

/// Asks server `pid` to stop with `reason` (from outside: a scheduler's
/// shutdown), as [`ServerRef::stop`] does.
pub(crate) fn stop_request<I: 'static, O: 'static>(k: &mut Kernel<I, O>, pid: Pid, reason: Reason) {
    post(k, pid, pid, StopWith(reason));
}

impl<S> Clone for ServerRef<S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S> Copy for ServerRef<S> {}

impl<S> PartialEq for ServerRef<S> {
    fn eq(&self, other: &Self) -> bool {
        self.pid == other.pid
    }
}

impl<S> Eq for ServerRef<S> {}

impl<S> fmt::Debug for ServerRef<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServerRef({})", self.pid)
    }
}
