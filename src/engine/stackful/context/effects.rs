//! Effects: side effects run through the context, so that they are recorded and,
//! in a replay, not run again.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll};

use crate::clock::Time;
use crate::engine::stackful::context::Ctx;
use crate::error::Interrupted;
use crate::kernel::Wait;
use crate::kernel::hooks::{Call, Expect, Replayed};
use crate::signal::{DurablePayload, Payload, SignalData, Value};

impl<I: 'static, O: 'static> Ctx<I, O> {
    /// In replay, the recorded result of this effect (which does not run again);
    /// `None` when live.
    pub(super) fn replay_effect<T: DurablePayload>(&mut self) -> Option<T> {
        match self.replayed(|| Expect::Effect) {
            Replayed::Effect(result) => Some(self.decode_effect(&result)),
            _ => None,
        }
    }

    /// A replayed effect's result; one that does not decode holds the process.
    pub(super) fn decode_effect<T: DurablePayload>(&mut self, result: &[u8]) -> T {
        match postcard::from_bytes(result) {
            Ok(value) => value,
            Err(e) => self.violation(
                format!("an effect result that does not decode ({e})"),
                "an effect".into(),
            ),
        }
    }

    /// Before an effect runs: in a durable scheduler, waits (COMMIT) until what
    /// was journaled of this process is durable, as its
    /// [`CommitPolicy`](crate::durable::CommitPolicy) asks (`at_most_once`: an
    /// at-most-once effect's intent, which must be durable under every policy).
    /// Once a journal error stops the run, this process waits for good.
    fn await_commit(&mut self, at_most_once: bool) {
        while let Some((hooks, p)) = self.hooks()
            && hooks.must_commit(p, at_most_once)
        {
            self.suspend(Wait::Commit);
        }
    }

    /// The USE signal of a journaled effect that returned `value` (performed,
    /// or replayed).
    fn emit_use<T: DurablePayload>(&mut self, value: &T) {
        let me = self.me;
        self.k().emit(me, || SignalData::Use {
            result: Value::encode(value),
        });
    }

    /// The USE signal of a plain effect, by its result's `Debug` text.
    fn emit_plain_use<T: Payload>(&mut self, value: &T) {
        let me = self.me;
        self.k().emit(me, || SignalData::Use {
            result: Value::text_of(value),
        });
    }

    /// A plain effect in a durable scheduler, which cannot journal its result:
    /// the process is held (a violation naming the call), before `f` runs.
    fn refuse_unjournaled<T>(&mut self, call: &str) {
        if self.hooks().is_some() {
            self.violation(
                format!(
                    "`Ctx::{call}` cannot journal its result (`{}` need not be a serde type): \
                     a durable process uses `Ctx::durable_{call}`",
                    std::any::type_name::<T>()
                ),
                format!("`Ctx::{call}`"),
            )
        }
    }

    /// Journals an effect's result. One that cannot be encoded stops the run
    /// (this process is held at its next call, as every other).
    pub(super) fn journal_effect<T: DurablePayload>(&mut self, value: &T) {
        if let Some((hooks, p)) = self.hooks() {
            match postcard::to_allocvec(value) {
                Ok(result) => hooks.record(p, Call::Effect(&result)),
                Err(e) => hooks.unencodable(e),
            }
            if hooks.halted() {
                self.hold();
            }
        }
    }

    /// Performs a synchronous side effect (chronoflow's `use`): runs `f`, records
    /// its result in a USE signal (by its `Debug` text), and returns it. `T` is
    /// any `Debug` type: `io::Result<usize>`, say.
    ///
    /// Not for a [`DurableScheduler`](crate::DurableScheduler), which must
    /// journal the result: there use [`Ctx::durable_effect`]. A durable process
    /// that calls this is held before `f` runs, and the scheduler reports it
    /// with its [`violations`](crate::DurableScheduler::violations).
    pub fn effect<T: Payload>(&mut self, f: impl FnOnce() -> T) -> T {
        self.plain_effect("effect", |_| f())
    }

    /// A plain effect (`call` names it): refused in a durable scheduler, run
    /// with `run`, and shown in a USE signal.
    fn plain_effect<T: Payload>(&mut self, call: &str, run: impl FnOnce(&mut Self) -> T) -> T {
        self.tick();
        self.refuse_unjournaled::<T>(call);
        let value = run(self);
        self.emit_plain_use(&value);
        value
    }

    /// Performs a synchronous side effect whose result can be journaled (a
    /// serde type): as [`Ctx::effect`] on a [`SimpleScheduler`](crate::SimpleScheduler)
    /// (the USE signal also carries the result's encoding). In a durable
    /// scheduler the result is journaled after `f` runs, and a replay returns it
    /// without running `f` again (at least once: a crash between the two runs it
    /// again). Under the default [`CommitPolicy`](crate::durable::CommitPolicy),
    /// `f` runs only once everything journaled of this process before it is
    /// durable: this call may first wait for the pass's group commit
    /// ([`Wait::Commit`](crate::Wait::Commit)).
    pub fn durable_effect<T: DurablePayload>(&mut self, f: impl FnOnce() -> T) -> T {
        self.effect_inner(true, |_| f())
    }

    /// A journaled effect, performed by `run` unless replayed; `commit`: wait
    /// for this process's records to be durable first, as the policy asks (not
    /// for effects that act on nothing outside).
    fn effect_inner<T: DurablePayload>(
        &mut self,
        commit: bool,
        run: impl FnOnce(&mut Self) -> T,
    ) -> T {
        self.tick();
        if let Some(value) = self.replay_effect::<T>() {
            self.emit_use(&value);
            return value;
        }
        if commit {
            self.await_commit(false);
        }
        let value = run(self);
        self.journal_effect(&value);
        self.emit_use(&value);
        value
    }

    /// Performs a side effect at most once. In a durable scheduler its intent is
    /// journaled, and synced to disk, before `f` runs, and its result after. If the
    /// program stops between the two, recovery does not run `f` again: this call
    /// returns [`Interrupted`] instead, since the effect may or may not have
    /// happened. Without a journal it is [`Ctx::durable_effect`] returning `Ok`.
    pub fn effect_at_most_once<T: DurablePayload>(
        &mut self,
        f: impl FnOnce() -> T,
    ) -> Result<T, Interrupted> {
        self.tick();
        if let Replayed::Done = self.replayed(|| Expect::Intent) {
            return match self.replayed(|| Expect::IntentEnd) {
                Replayed::Effect(result) => {
                    let value = self.decode_effect(&result);
                    self.emit_use(&value);
                    Ok(value)
                }
                Replayed::Interrupted => Err(Interrupted),
                // The records end between intent and result: interrupted, and
                // journaled as such so that later replays agree.
                _ => {
                    self.record(|| Call::Interrupted);
                    Err(Interrupted)
                }
            };
        }
        self.record(|| Call::Intent);
        // The intent must be on disk before the effect runs, or a crash could
        // run it twice (one group commit for every process waiting).
        self.await_commit(true);
        let value = f();
        self.journal_effect(&value);
        self.emit_use(&value);
        Ok(value)
    }

    /// Polls `future` with a real waker until it is ready, suspending this
    /// process while it is pending.
    fn poll_effect<T>(&mut self, future: impl Future<Output = T>) -> T {
        let mut future = pin!(future);
        let pid = self.pid();
        let waker = self.k().waker(pid);
        let mut cx = Context::from_waker(&waker);
        loop {
            if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
                return value;
            }
            self.suspend(Wait::Effect);
        }
    }

    /// Performs an asynchronous side effect: polls `future` with a real waker,
    /// suspending this process while it is pending (the scheduler makes the process
    /// runnable again when the waker fires, from any thread), then records its
    /// output in a USE signal (by its `Debug` text) and returns it. An effect
    /// that can fail returns its error as a value: `T` is any `Debug` type,
    /// `io::Result<usize>` for a socket's read, say.
    ///
    /// Not for a [`DurableScheduler`](crate::DurableScheduler): there use
    /// [`Ctx::durable_effect_future`] (a durable process that calls this is held,
    /// as for [`Ctx::effect`]).
    pub fn effect_future<T: Payload>(&mut self, future: impl Future<Output = T>) -> T {
        self.plain_effect("effect_future", |ctx| ctx.poll_effect(future))
    }

    /// An asynchronous side effect whose output can be journaled (a serde
    /// type): as [`Ctx::effect_future`], and journaled and replayed as
    /// [`Ctx::durable_effect`] (polled first only once this process's records
    /// are durable, as the policy asks).
    pub fn durable_effect_future<T: DurablePayload>(
        &mut self,
        future: impl Future<Output = T>,
    ) -> T {
        self.effect_inner(true, |ctx| ctx.poll_effect(future))
    }

    /// The current time, from the scheduler's [`Clock`](crate::Clock). Recorded
    /// like an effect: a replay gets the same answer. It never waits for a
    /// commit: reading the clock acts on nothing outside.
    pub fn now(&mut self) -> Time {
        // SAFETY: the kernel outlives its coroutines.
        let clock = unsafe { &*self.kernel.as_ptr() }.clock.as_ref() as *const dyn crate::Clock;
        // SAFETY: the clock lives as long as the kernel, and is not replaced while a
        // process runs.
        self.effect_inner(false, |_| unsafe { (*clock).now() })
    }
}
