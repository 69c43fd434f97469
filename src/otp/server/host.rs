//! Which engine a server runs on ([`Server::Engine`](super::Server::Engine)):
//! a stackful process ([`Stackful`]), whose handlers may wait (a call of
//! another server, a sleep), or a stackless one ([`Stackless`], feature
//! `stackless`), whose handlers never wait (its context has no waiting call
//! outside its macros). A server's context derefs to its engine's context,
//! and its timers and stash reach the process through the calls here.

use std::time::Duration;

use crate::clock::Time;
use crate::engine::stackful::context::Ctx;
use crate::otp::call::ReplyTo;
use crate::otp::mail::TimerRef;
use crate::otp::request::Request;

mod sealed {
    pub trait Sealed {}
}

/// An engine a server runs on: [`Stackful`] or [`Stackless`]. Sealed.
pub trait Host: sealed::Sealed + Sized + 'static {
    /// The context of its processes: what a server's handlers reach through
    /// [`ServerCtx`](super::ServerCtx).
    type Ctx<M: 'static>;

    /// Arms a timer that gives the process a timeout notice after `delay`.
    #[doc(hidden)]
    fn start_timer<M: 'static>(ctx: &mut Self::Ctx<M>, delay: Duration) -> TimerRef;

    /// [`start_timer`](Self::start_timer) at `deadline`.
    #[doc(hidden)]
    fn start_timer_at<M: 'static>(ctx: &mut Self::Ctx<M>, deadline: Time) -> TimerRef;

    /// Cancels `timer`: the time it had left, if it had not fired.
    #[doc(hidden)]
    fn cancel_timer<M: 'static>(ctx: &mut Self::Ctx<M>, timer: TimerRef) -> Option<Duration>;

    /// The scheduler's clock.
    #[doc(hidden)]
    fn now<M: 'static>(ctx: &mut Self::Ctx<M>) -> Time;

    /// Answers the call `to`.
    #[doc(hidden)]
    fn reply<M: 'static, R: 'static>(
        ctx: &mut Self::Ctx<M>,
        to: ReplyTo<R>,
        value: R,
    ) -> Result<(), R>;

    /// Refuses `request`.
    #[doc(hidden)]
    fn refuse<M: 'static>(ctx: &mut Self::Ctx<M>, request: &Request);

    /// Refuses the call `to`.
    #[doc(hidden)]
    fn refuse_call<M: 'static, R>(ctx: &mut Self::Ctx<M>, to: ReplyTo<R>);
}

/// Servers on stackful processes ([`server::template`](super::template)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stackful {}

impl sealed::Sealed for Stackful {}

impl Host for Stackful {
    type Ctx<M: 'static> = Ctx<M>;

    fn start_timer<M: 'static>(ctx: &mut Ctx<M>, delay: Duration) -> TimerRef {
        ctx.start_timer(delay)
    }

    fn start_timer_at<M: 'static>(ctx: &mut Ctx<M>, deadline: Time) -> TimerRef {
        ctx.start_timer_at(deadline)
    }

    fn cancel_timer<M: 'static>(ctx: &mut Ctx<M>, timer: TimerRef) -> Option<Duration> {
        ctx.cancel_timer(timer)
    }

    fn now<M: 'static>(ctx: &mut Ctx<M>) -> Time {
        ctx.now()
    }

    fn reply<M: 'static, R: 'static>(ctx: &mut Ctx<M>, to: ReplyTo<R>, value: R) -> Result<(), R> {
        ctx.reply(to, value)
    }

    fn refuse<M: 'static>(ctx: &mut Ctx<M>, request: &Request) {
        ctx.refuse(request);
    }

    fn refuse_call<M: 'static, R>(ctx: &mut Ctx<M>, to: ReplyTo<R>) {
        ctx.refuse_reply_to(to);
    }
}

/// Servers on stackless processes
/// ([`server::stackless_template`](super::stackless_template)): their
/// handlers never wait.
#[cfg(feature = "stackless")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stackless {}

#[cfg(feature = "stackless")]
impl sealed::Sealed for Stackless {}

#[cfg(feature = "stackless")]
impl Host for Stackless {
    type Ctx<M: 'static> = crate::engine::stackless::context::StacklessCtx<M>;

    fn start_timer<M: 'static>(ctx: &mut Self::Ctx<M>, delay: Duration) -> TimerRef {
        ctx.start_timer(delay)
    }

    fn start_timer_at<M: 'static>(ctx: &mut Self::Ctx<M>, deadline: Time) -> TimerRef {
        ctx.start_timer_at(deadline)
    }

    fn cancel_timer<M: 'static>(ctx: &mut Self::Ctx<M>, timer: TimerRef) -> Option<Duration> {
        ctx.cancel_timer(timer)
    }

    fn now<M: 'static>(ctx: &mut Self::Ctx<M>) -> Time {
        ctx.now()
    }

    fn reply<M: 'static, R: 'static>(
        ctx: &mut Self::Ctx<M>,
        to: ReplyTo<R>,
        value: R,
    ) -> Result<(), R> {
        ctx.reply(to, value)
    }

    fn refuse<M: 'static>(ctx: &mut Self::Ctx<M>, request: &Request) {
        ctx.refuse(request);
    }

    fn refuse_call<M: 'static, R>(ctx: &mut Self::Ctx<M>, to: ReplyTo<R>) {
        ctx.refuse_reply_to(to);
    }
}
