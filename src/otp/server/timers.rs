//! A server's own timers (libeam's `sendAfter`, `sendInterval`,
//! `cancelTimer`, `cancelAllTimers`): messages of its own type that it sends
//! itself later, once or at every period, and that go when it stops.
//!
//! Each is a timer of the toolkit ([`Ctx::start_timer`](crate::Ctx::start_timer)):
//! its notice takes its place among the server's mail as it fires, and the
//! server's loop turns it into the message (a copy of it, for an interval)
//! for [`handle_info`](super::Server::handle_info). The message waits in the
//! server, not in the scheduler's timers: an interval arms one timer at a
//! time, and a timer cancelled after it fired, its notice not yet read, is
//! never seen.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::clock::Time;
use crate::kernel::idmap::IdMap;
use crate::otp::mail::TimerRef;
use crate::otp::server::host::{Host, Stackful};

/// A timer of a server's own (see [`ServerCtx::timers`](super::ServerCtx::timers)):
/// cancel it with [`Timers::cancel`]. Unique within its server.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timer(u64);

impl fmt::Debug for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timer({})", self.0)
    }
}

/// A server's timers, by the scheduler's timer each waits on. A serde type
/// (a durable server's snapshot holds it): an interval's copier is set again
/// as it is read back, for a message type that is `Clone` (a durable
/// scheduler's is).
#[derive(Serialize, Deserialize)]
#[serde(bound(
    serialize = "M: Serialize",
    deserialize = "M: DeserializeOwned + Clone"
))]
pub(crate) struct TimerTable<M> {
    /// The next timer's number.
    next: u64,
    /// Armed, by the scheduler's timer (`TimerRef`) they wait on.
    armed: IdMap<u64, Armed<M>>,
    /// The scheduler's timer of each armed one, by its number.
    by_key: IdMap<u64, u64>,
    /// Cancelled after they fired: their notices, still unread, are dropped
    /// when they come.
    stale: Vec<TimerRef>,
}

/// An armed timer: its message, and for an interval, what re-arms it.
#[derive(Serialize, Deserialize)]
#[serde(bound(
    serialize = "M: Serialize",
    deserialize = "M: DeserializeOwned + Clone"
))]
struct Armed<M> {
    key: u64,
    msg: M,
    every: Option<Every<M>>,
}

/// An interval: its period, the deadline it waits for, and how its message is
/// copied (the server's message type need not be `Clone` for one-shot
/// timers).
#[derive(Serialize, Deserialize)]
#[serde(bound(deserialize = "M: Clone"))]
struct Every<M> {
    period: Duration,
    due: Time,
    #[serde(skip, default = "copier::<M>")]
    copy: fn(&M) -> M,
}

/// How an interval's message of a `Clone` type is copied.
fn copier<M: Clone>() -> fn(&M) -> M {
    M::clone
}

/// What a timer notice is to the server.
pub(super) enum Fired<M> {
    /// One of its timers: this message.
    Msg(M),
    /// One it cancelled after it fired: nothing.
    Stale,
    /// Not one of its own (a [`Ctx::start_timer`](crate::Ctx::start_timer)
    /// of its handlers): the notice itself.
    NotOurs,
}

impl<M> Default for TimerTable<M> {
    fn default() -> Self {
        TimerTable {
            next: 0,
            armed: IdMap::default(),
            by_key: IdMap::default(),
            stale: Vec::new(),
        }
    }
}

impl<M: 'static> TimerTable<M> {
    /// What the notice of `timer` is to the server; an interval's next
    /// deadline is armed (one period after the last deadline, not after
    /// now: intervals do not drift).
    pub(super) fn fired<E: Host>(&mut self, ctx: &mut E::Ctx<M>, timer: TimerRef) -> Fired<M> {
        let Some(mut armed) = self.armed.remove(&timer.0) else {
            return match self.stale.iter().position(|&t| t == timer) {
                Some(i) => {
                    self.stale.swap_remove(i);
                    Fired::Stale
                }
                None => Fired::NotOurs,
            };
        };
        let Some(every) = &mut armed.every else {
            self.by_key.remove(&armed.key);
            return Fired::Msg(armed.msg);
        };
        every.due = every.due + every.period;
        let copy = (every.copy)(&armed.msg);
        let next = E::start_timer_at(ctx, every.due);
        self.by_key.insert(armed.key, next.0);
        self.armed.insert(next.0, armed);
        Fired::Msg(copy)
    }

    /// Cancels every timer: how many there were, and the first panic of
    /// their messages' `Drop` (user code), if one panicked: each is dropped
    /// however the others do.
    pub(super) fn cancel_all<E: Host>(&mut self, ctx: &mut E::Ctx<M>) -> (usize, Option<Panic>) {
        let keys: Vec<u64> = self.by_key.keys().copied().collect();
        let mut first = None;
        for &key in &keys {
            if let Some(Err(payload)) = self.cancel::<E>(ctx, key) {
                keep_first(&mut first, payload);
            }
        }
        (keys.len(), first)
    }

    /// Cancels timer `key`, if it is armed: how its message's drop went.
    fn cancel<E: Host>(&mut self, ctx: &mut E::Ctx<M>, key: u64) -> Option<Result<(), Panic>> {
        let timer = self.by_key.remove(&key)?;
        let armed = self.armed.remove(&timer);
        if E::cancel_timer(ctx, TimerRef(timer)).is_none() {
            // It fired: its notice waits unread.
            self.stale.push(TimerRef(timer));
        }
        Some(catch_unwind(AssertUnwindSafe(move || drop(armed))))
    }
}

/// A caught panic's payload.
pub(super) type Panic = Box<dyn std::any::Any + Send>;

/// Keeps `payload` in `first` if it holds none yet; else drops it quietly
/// (of several panics, the first is the one that goes on).
pub(super) fn keep_first(first: &mut Option<Panic>, payload: Panic) {
    match first {
        None => *first = Some(payload),
        Some(_) => crate::kernel::pass::forget_quietly(payload),
    }
}

/// A server's own timers, from a handler (see
/// [`ServerCtx::timers`](super::ServerCtx::timers)).
///
/// Their messages come to [`handle_info`](super::Server::handle_info) as
/// [`Mail::Msg`](crate::Mail::Msg), in their place among the server's mail;
/// a timer that fires while the server is busy waits, as any mail. They are
/// all cancelled when the server stops through its loop (a stop, a
/// handler's failure): a server that is killed runs nothing, and its timers,
/// firing later, are dropped and counted as any timed send to an ended
/// process.
pub struct Timers<'a, M: 'static, E: Host = Stackful> {
    pub(super) ctx: &'a mut E::Ctx<M>,
    pub(super) table: &'a mut TimerTable<M>,
}

impl<M: 'static, E: Host> Timers<'_, M, E> {
    /// Sends the server `msg` after `delay` (libeam's `sendAfter`, OTP's
    /// `erlang:send_after(Delay, self(), Msg)`).
    pub fn send_after(&mut self, delay: Duration, msg: M) -> Timer {
        let timer = E::start_timer(self.ctx, delay);
        self.arm(timer, msg, None)
    }

    /// Sends the server a copy of `msg` at every `period` (libeam's
    /// `sendInterval`, OTP's `timer:send_interval/2`), until cancelled.
    ///
    /// The deadlines are one period apart from the first (now plus
    /// `period`): a server late to read one does not push the next ones back
    /// (no drift). A server late by several periods gets the ticks it
    /// missed, one at each pass, until it is back on time (Akka's fixed
    /// rate). A period of zero is taken as one nanosecond.
    pub fn send_interval(&mut self, period: Duration, msg: M) -> Timer
    where
        M: Clone,
    {
        let period = period.max(Duration::from_nanos(1));
        let due = E::now(self.ctx) + period;
        let timer = E::start_timer_at(self.ctx, due);
        let every = Every {
            period,
            due,
            copy: M::clone,
        };
        self.arm(timer, msg, Some(every))
    }

    /// Cancels `timer` (libeam's `cancelTimer`): whether it was armed. A
    /// one-shot timer that fired is no longer armed; if its message has not
    /// reached the handlers yet, it never will.
    pub fn cancel(&mut self, timer: Timer) -> bool {
        match self.table.cancel::<E>(self.ctx, timer.0) {
            None => false,
            Some(Ok(())) => true,
            Some(Err(payload)) => resume_unwind(payload),
        }
    }

    /// Cancels every timer of the server (libeam's `cancelAllTimers`): how
    /// many were armed.
    pub fn cancel_all(&mut self) -> usize {
        match self.table.cancel_all::<E>(self.ctx) {
            (n, None) => n,
            (_, Some(payload)) => resume_unwind(payload),
        }
    }

    /// How many are armed.
    pub fn len(&self) -> usize {
        self.table.by_key.len()
    }

    /// Whether none is armed.
    pub fn is_empty(&self) -> bool {
        self.table.by_key.is_empty()
    }

    /// Whether `timer` is armed.
    pub fn is_armed(&self, timer: Timer) -> bool {
        self.table.by_key.contains_key(&timer.0)
    }

    fn arm(&mut self, timer: TimerRef, msg: M, every: Option<Every<M>>) -> Timer {
        let key = self.table.next;
        self.table.next += 1;
        self.table.by_key.insert(key, timer.0);
        self.table.armed.insert(timer.0, Armed { key, msg, every });
        Timer(key)
    }
}
