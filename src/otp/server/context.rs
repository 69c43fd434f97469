//! What a server's handlers are given: the process's context (every call of
//! it, through `Deref`), and the server's own timers and stash.

use std::ops::{Deref, DerefMut};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use crate::otp::mail::{Mail, TimerRef};
use crate::otp::server::host::Host;
use crate::otp::server::stash::{Stash, StashFull, Stashed};
use crate::otp::server::timers::{Fired, TimerTable, Timers, keep_first};
use crate::otp::server::{From, Server};

/// A stashed call: the call, and where its reply goes.
pub type StashedCall<S> = (<S as Server>::Call, From<<S as Server>::Reply>);

/// What a server's process keeps beside its state: its timers and its stash.
pub(super) struct Own<S: Server> {
    pub(super) timers: TimerTable<S::Msg>,
    pub(super) stash: Stash<S>,
}

impl<S: Server> Default for Own<S> {
    fn default() -> Self {
        Own {
            timers: TimerTable::default(),
            stash: Stash::default(),
        }
    }
}

/// The context of a server's handlers: the process's context (it derefs to
/// it: `ctx.reply(..)`, `ctx.monitor(..)`, `ctx.send_to(..)`), a
/// [`Ctx`](crate::Ctx) or a [`StacklessCtx`](crate::StacklessCtx) as its
/// [`Engine`](Server::Engine) says, with the server's own
/// [`timers`](Self::timers) and its stash ([`stash_call`](Self::stash_call)
/// and its kin).
pub struct ServerCtx<'a, S: Server> {
    ctx: &'a mut EngineCtx<S>,
    own: &'a mut Own<S>,
}

/// The context of server `S`'s process: a [`Ctx`](crate::Ctx), or a
/// [`StacklessCtx`](crate::StacklessCtx).
pub type EngineCtx<S> = <<S as Server>::Engine as Host>::Ctx<<S as Server>::Msg>;

impl<'a, S: Server> ServerCtx<'a, S> {
    pub(super) fn new(ctx: &'a mut EngineCtx<S>, own: &'a mut Own<S>) -> Self {
        ServerCtx { ctx, own }
    }

    /// The process's context (as `Deref` gives it).
    pub fn ctx(&mut self) -> &mut EngineCtx<S> {
        self.ctx
    }

    /// The server's own timers: messages it sends itself later, once or at
    /// every period, cancelled when it stops (see [`Timers`]).
    pub fn timers(&mut self) -> Timers<'_, S::Msg, S::Engine> {
        Timers {
            ctx: self.ctx,
            table: &mut self.own.timers,
        }
    }

    /// Stashes a call (libeam's `stash` in a call handler): it is handled
    /// again, with the same `from`, once unstashed. A full stash gives both
    /// back.
    pub fn stash_call(
        &mut self,
        call: S::Call,
        from: From<S::Reply>,
    ) -> Result<(), StashFull<StashedCall<S>>> {
        self.own
            .stash
            .push(Stashed::Call(call, from))
            .map_err(|item| match item {
                Stashed::Call(call, from) => StashFull((call, from)),
                _ => unreachable!("gave back what was pushed"),
            })
    }

    /// Stashes a cast: handled again once unstashed.
    pub fn stash_cast(&mut self, cast: S::Cast) -> Result<(), StashFull<S::Cast>> {
        self.own
            .stash
            .push(Stashed::Cast(cast))
            .map_err(|item| match item {
                Stashed::Cast(cast) => StashFull(cast),
                _ => unreachable!("gave back what was pushed"),
            })
    }

    /// Stashes mail of [`handle_info`](Server::handle_info) (a message, a
    /// DOWN, an EXIT, a timeout): handled again once unstashed.
    pub fn stash_info(&mut self, mail: Mail<S::Msg>) -> Result<(), StashFull<Mail<S::Msg>>> {
        self.own
            .stash
            .push(Stashed::Info(mail))
            .map_err(|item| match item {
                Stashed::Info(mail) => StashFull(mail),
                _ => unreachable!("gave back what was pushed"),
            })
    }

    /// Unstashes the oldest stashed mail (libeam's `unstash`): it is handled
    /// next, once this handler returns (after a continuation it asks for, and
    /// after mail unstashed before it), ahead of the inbox. Whether there was
    /// one.
    pub fn unstash(&mut self) -> bool {
        self.own.stash.unstash()
    }

    /// Unstashes all stashed mail (libeam's `unstashAll`, Akka's
    /// `unstashAll`): handled next, in the order it was stashed, ahead of the
    /// inbox. How much there was.
    pub fn unstash_all(&mut self) -> usize {
        self.own.stash.unstash_all()
    }

    /// Drops all stashed mail (libeam's `clearStash`): how much there was.
    /// Its calls are refused: their callers get
    /// [`CallError::Unhandled`](crate::CallError::Unhandled) rather than
    /// waiting for their timeout.
    pub fn clear_stash(&mut self) -> usize {
        let cleared = self.own.stash.clear();
        let n = cleared.len();
        // (Each is dropped however the others' `Drop` goes: two panics in one
        // drop of the queue would abort.)
        let mut first = None;
        for item in cleared {
            if let Stashed::Call(_, from) = &item {
                S::Engine::refuse_call(self.ctx, *from);
            }
            if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(item))) {
                keep_first(&mut first, payload);
            }
        }
        if let Some(payload) = first {
            resume_unwind(payload);
        }
        n
    }

    /// What the notice of `timer` is to the server (one of its own timers'
    /// messages, or not).
    pub(super) fn fired(&mut self, timer: TimerRef) -> Fired<S::Msg> {
        self.own.timers.fired::<S::Engine>(self.ctx, timer)
    }

    /// How much mail is stashed (not counting mail unstashed, waiting to be
    /// handled).
    pub fn stashed(&self) -> usize {
        self.own.stash.len()
    }
}

impl<S: Server> Deref for ServerCtx<'_, S> {
    type Target = EngineCtx<S>;

    fn deref(&self) -> &EngineCtx<S> {
        self.ctx
    }
}

impl<S: Server> DerefMut for ServerCtx<'_, S> {
    fn deref_mut(&mut self) -> &mut EngineCtx<S> {
        self.ctx
    }
}

impl<S: Server> ServerCtx<'_, S> {
    /// Answers the call `to` (the loop's replies).
    pub(super) fn reply_to(&mut self, to: From<S::Reply>, value: S::Reply) -> Result<(), S::Reply> {
        S::Engine::reply(self.ctx, to, value)
    }

    /// Refuses the call `to` (`Reply::Refuse`).
    pub(super) fn refuse_call(&mut self, to: From<S::Reply>) {
        S::Engine::refuse_call(self.ctx, to);
    }
}
