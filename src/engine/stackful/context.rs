//! `Ctx`: everything a process body can do. Every call that must wait suspends the
//! process's coroutine and returns when what it waited for has happened.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::pin;
use std::ptr::NonNull;
use std::task::{Context, Poll};

use corosensei::Yielder;
use serde::{Deserialize, Serialize};

use crate::clock::Time;
use crate::engine::stackful::template::Template;
use crate::error::{Interrupted, JoinError, SendError, SpawnError};
use crate::kernel::hooks::{Call, Expect, Outcome, Replayed};
use crate::kernel::{Hooks, Kernel, PPtr, Proc, Sent, UndeliveredReason, Wait};
use crate::signal::{DropReason, Payload, Pid, SignalKind, Value};
use crate::template::Spawnable;

/// The kernel's hooks and a process's record, borrowed for one hook call.
type HooksAndRecord<'a, I, O> = (&'a mut dyn Hooks<I, O>, &'a mut Proc<I, O>);

/// A handle on a child process, returned by [`Ctx::spawn`]; [`Ctx::join`] gives
/// back the child's result of type `R`. It is a pid with a type: copy it, keep it
/// in a transition's arguments (it is serde, as its pid), join it once.
#[derive(Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
#[must_use = "a child must be joined: a parent that returns with unjoined children fails"]
pub struct Child<R> {
    pid: Pid,
    #[serde(skip)]
    _result: PhantomData<fn() -> R>,
}

impl<R> Clone for Child<R> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<R> Copy for Child<R> {}

impl<R> Child<R> {
    pub(crate) fn new(pid: Pid) -> Self {
        Child {
            pid,
            _result: PhantomData,
        }
    }

    /// The child's pid.
    pub fn pid(&self) -> Pid {
        self.pid
    }
}

/// The context of a running process: its pid, its inbox, its children, and the
/// effects and sends it performs. `I` is the inbound message type, `O` the
/// outbound one.
///
/// A body gets `&mut Ctx` and calls it like any other object; the calls that wait
/// (`receive`, `select`, `filter`, `join`, `effect_future`, and `send` to a full
/// inbox) suspend the process until they can return.
///
/// # While the process is being stopped
///
/// A process that is killed (its parent ended with it unjoined) or dropped with its
/// scheduler is unwound: the destructors of its locals run, and may use the
/// context. It cannot wait any more, and a panic there would abort the program (a
/// panic during unwinding), so the context never suspends it:
///
/// - the budget is not counted: no call yields the turn, and `yield_now` returns
///   at once;
/// - a send to a full inbox (policy `Backoff`) keeps the message with the
///   undelivered ones, reason [`UndeliveredReason::Stopping`], instead of waiting;
/// - `sleep` returns at once; `receive_timeout` takes the head of the inbox, or
///   returns `None` at once;
/// - `join` of a child that has not stopped returns
///   `Err(JoinError::Exited(ExitError::Killed(..)))` (the child is stopped with it);
/// - `receive`, `select` and `filter` take what the inbox holds (a match, for
///   `select` and `filter`). **With nothing to take**, as `effect_future` with a
///   future still pending, or a call held by a determinism violation, the call
///   cannot return: the unwinding stops there for good. The process's stack is
///   abandoned, never reused nor unmapped (so what it holds stays valid, pinned
///   values included), and the destructors of the locals not dropped yet never
///   run: a leak, the least bad outcome (the alternative is aborting the
///   program). Destructors should not wait.
///
/// [`ExitError::Killed`]: crate::ExitError::Killed
pub struct Ctx<I, O = I> {
    kernel: NonNull<Kernel<I, O>>,
    me: PPtr<I, O>,
    yielder: NonNull<Yielder<bool, Wait>>,
    /// It is being stopped: its engine resumed it to unwind its stack (the resume
    /// said so). Kept here, not read from the record, on the hot path of every
    /// suspension.
    killing: bool,
}

impl<I: 'static, O: 'static> Ctx<I, O> {
    pub(crate) fn new(
        kernel: NonNull<Kernel<I, O>>,
        me: PPtr<I, O>,
        yielder: &Yielder<bool, Wait>,
    ) -> Self {
        Ctx {
            kernel,
            me,
            yielder: NonNull::from(yielder),
            killing: false,
        }
    }

    #[inline]
    fn k(&mut self) -> &mut Kernel<I, O> {
        // SAFETY: the kernel outlives every coroutine it runs, and only the running
        // coroutine touches it while it runs.
        unsafe { &mut *self.kernel.as_ptr() }
    }

    #[inline]
    fn p(&mut self) -> &mut Proc<I, O> {
        // SAFETY: a process outlives its coroutine.
        unsafe { &mut *self.me.as_ptr() }
    }

    /// Suspends until the scheduler resumes this process (which then sets its
    /// status from `wait`).
    ///
    /// A process being stopped is resumed one last time by its engine: this call
    /// then unwinds its stack ([`KillUnwind`]). Called while it is stopped (by a
    /// destructor that runs during that unwinding and waits for what cannot come),
    /// it never returns: the engine abandons the stack (see the type's docs).
    fn suspend(&mut self, wait: Wait) {
        if self.killing {
            self.suspend_killed(wait);
        }
        // SAFETY: the yielder lives on this coroutine's stack for its whole life.
        let stopping = unsafe { self.yielder.as_ref().suspend(wait) };
        if stopping {
            // Resumed by the engine's `stop`: unwind, dropping the locals.
            self.killing = true;
            std::panic::resume_unwind(Box::new(KillUnwind));
        }
    }

    #[cold]
    fn suspend_killed(&mut self, wait: Wait) -> ! {
        if !std::thread::panicking() {
            // The body caught the unwinding and went on to wait: unwind again.
            std::panic::resume_unwind(Box::new(KillUnwind));
        }
        // A destructor waits during the unwinding: it can neither wait nor panic
        // (that aborts). The engine sees this suspension and abandons the stack;
        // this coroutine is never resumed.
        loop {
            // SAFETY: as in `suspend`.
            unsafe { self.yielder.as_ref().suspend(wait) };
        }
    }

    /// Whether this process is being stopped (its stack unwound).
    #[inline(always)]
    pub(crate) fn killing(&self) -> bool {
        self.killing
    }

    /// Spends one unit of the turn's budget; yields the turn when it is spent
    /// (never while the process is being stopped: it cannot wait).
    #[inline]
    fn tick(&mut self) {
        let p = self.p();
        if p.budget == 0 {
            self.spent();
            return;
        }
        p.budget -= 1;
    }

    /// The turn's budget is spent: yield the turn (unless the process is being
    /// stopped), and spend one unit of the next.
    #[cold]
    #[inline(never)]
    fn spent(&mut self) {
        if !self.killing() {
            self.suspend(Wait::Yield);
        }
        let p = self.p();
        p.budget = p.budget.saturating_sub(1);
    }

    /// After taking a message: a freed slot lets one waiting sender retry.
    #[inline]
    fn took(&mut self) {
        let p = self.p();
        if p.has_waiting_senders() && !p.inbox.is_full() {
            let me = self.me;
            self.k().wake_one_sender(me);
        }
    }

    /// This process's pid.
    pub fn pid(&self) -> Pid {
        // SAFETY: a process outlives its coroutine.
        unsafe { self.me.as_ref().pid }
    }

    /// The pid of this process's parent, if it was spawned by a process.
    pub fn parent(&self) -> Option<Pid> {
        // SAFETY: as above.
        unsafe { self.me.as_ref().parent }
    }

    /// How many messages wait in this process's inbox. A durable scheduler
    /// journals the answer, which depends on when messages arrived: a replay gets
    /// the same.
    pub fn inbox_len(&mut self) -> usize {
        if let Some(len) = self.replay_effect::<u64>() {
            return len as usize;
        }
        let len = self.p().inbox.queue.len();
        self.journal_effect(&(len as u64));
        len
    }

    /// Whether signals are being recorded (a sink is attached).
    pub fn is_recording(&self) -> bool {
        // SAFETY: the kernel outlives its coroutines.
        unsafe { self.kernel.as_ref().is_recording() }
    }

    /// The kernel's hooks (a durable scheduler's journal) and this process's
    /// record; `None` on a plain scheduler, the one test the hot path pays.
    #[inline(always)]
    fn hooks(&mut self) -> Option<HooksAndRecord<'_, I, O>> {
        // SAFETY: the kernel outlives its coroutines and only the running one
        // touches it; the hooks live in a box of their own, apart from the
        // process's record. Both references end with the hook call they serve.
        let hooks = unsafe { (*self.kernel.as_ptr()).hooks.as_deref_mut() }?;
        // SAFETY: a process outlives its coroutine.
        Some((hooks, unsafe { &mut *self.me.as_ptr() }))
    }

    /// Whether the kernel has hooks (a durable scheduler's journal).
    #[inline(always)]
    fn hooked(&self) -> bool {
        // SAFETY: the kernel outlives its coroutines; a read of one field.
        unsafe { (*self.kernel.as_ptr()).hooks.is_some() }
    }

    /// Records a call of this process with the kernel's hooks, if any (the call
    /// is described only then).
    #[inline(always)]
    fn record<'a>(&mut self, call: impl FnOnce() -> Call<'a, I, O>) {
        if let Some((hooks, p)) = self.hooks() {
            hooks.record(p, call());
        }
    }

    /// In replay, the recorded answer to the call `expect` describes: `Live` on a
    /// plain scheduler or once the records are exhausted. A call that does not
    /// match its record holds the process for good.
    #[inline(always)]
    fn replayed<'a>(&mut self, expect: impl FnOnce() -> Expect<'a, O>) -> Replayed<I> {
        let Some((hooks, p)) = self.hooks() else {
            return Replayed::Live;
        };
        match hooks.replay(p, expect()) {
            Replayed::Held => self.hold(),
            replayed => replayed,
        }
    }

    /// Holds this process for good: its calls did not match its records.
    #[cold]
    fn hold(&mut self) -> ! {
        loop {
            self.suspend(Wait::Held);
        }
    }

    /// Reports a call that its records cannot match, and holds this process.
    #[cold]
    fn violation(&mut self, recorded: String, emitted: String) -> ! {
        if let Some((hooks, p)) = self.hooks() {
            hooks.violation(p, recorded, emitted);
        }
        self.hold()
    }

    /// In replay, the message this process took then (`Some(None)`: it found
    /// none); `None` when live.
    #[inline]
    fn replay_take(&mut self, what: &'static str, may_be_none: bool) -> Option<Option<I>> {
        match self.replayed(|| Expect::Take { what, may_be_none }) {
            Replayed::Took(m) => Some(m),
            _ => None,
        }
    }

    #[inline]
    fn journal_take(&mut self, msg: Option<&I>) {
        self.record(|| Call::Take(msg));
    }

    /// Takes the message at the head of the inbox, waiting for one if it is empty.
    pub fn receive(&mut self) -> I {
        self.tick();
        if self.hooked() {
            return self.receive_hooked();
        }
        loop {
            if let Some(m) = self.p().inbox.pop_front() {
                self.took();
                return m;
            }
            self.suspend(Wait::Message);
        }
    }

    /// [`receive`](Self::receive) with hooks: replayed, or journaled.
    #[cold]
    #[inline(never)]
    fn receive_hooked(&mut self) -> I {
        if let Some(Some(m)) = self.replay_take("a receive", false) {
            return m;
        }
        loop {
            if let Some(m) = self.p().inbox.pop_front() {
                self.took();
                self.journal_take(Some(&m));
                return m;
            }
            self.suspend(Wait::Message);
        }
    }

    /// Takes the head of the inbox if there is one, without waiting.
    pub fn try_receive(&mut self) -> Option<I> {
        self.tick();
        if let Some(m) = self.replay_take("a try_receive", true) {
            return m;
        }
        let m = self.p().inbox.pop_front();
        if m.is_some() {
            self.took();
        }
        self.journal_take(m.as_ref());
        m
    }

    /// Selective receive: takes the first message, in arrival order, that matches
    /// `pred`; the others stay in the inbox in their order. With no match it waits,
    /// and checks only the messages that arrive (the scan position is kept, as
    /// BEAM's receive markers do), so `pred` sees each message at most once per
    /// call.
    pub fn select(&mut self, mut pred: impl FnMut(&I) -> bool) -> I {
        self.tick();
        if let Some(Some(m)) = self.replay_take("a select", false) {
            if !pred(&m) {
                self.violation(
                    "a message the select does not match".into(),
                    "a select".into(),
                );
            }
            return m;
        }
        let mut i = 0usize;
        let mut evicted = self.p().inbox.evicted;
        loop {
            let inbox = &mut self.p().inbox;
            // Messages evicted from the head shift the ones we already scanned.
            i = i.saturating_sub((inbox.evicted - evicted) as usize);
            evicted = inbox.evicted;
            if let Some(found) = inbox.find_from(i, &mut pred) {
                let m = inbox.remove(found).expect("index within the inbox");
                self.took();
                self.journal_take(Some(&m));
                return m;
            }
            i = inbox.queue.len();
            self.suspend(Wait::Message);
        }
    }

    /// Takes the first message that matches `pred`, dropping every message before
    /// it (a DROP signal each); with none it waits, dropping each non-matching
    /// arrival.
    pub fn filter(&mut self, mut pred: impl FnMut(&I) -> bool) -> I {
        self.tick();
        if let Some(Some(m)) = self.replay_take("a filter", false) {
            if !pred(&m) {
                self.violation(
                    "a message the filter does not match".into(),
                    "a filter".into(),
                );
            }
            return m;
        }
        loop {
            while let Some(m) = self.p().inbox.pop_front() {
                self.took();
                if pred(&m) {
                    self.journal_take(Some(&m));
                    return m;
                }
                let me = self.me;
                let pid = self.pid();
                let k = self.k();
                k.journal_eviction(pid, &m);
                k.emit(me, || SignalKind::Drop {
                    msg: m,
                    reason: DropReason::Filtered,
                });
            }
            self.suspend(Wait::Message);
        }
    }

    /// Sends `msg` where the template's route says. With no route (or a route that
    /// gives none), or to a pid that no longer exists, the message is kept with the
    /// undelivered messages for the owner to read back. When the destination's
    /// inbox is full (policy `Backoff`), this process is suspended (BACKOFF) until
    /// there is room, then delivers. A full inbox with the policy `Reject` refuses
    /// the message: a REJECT signal instead of SEND, and the message is kept with
    /// the undelivered ones (reason `Rejected`).
    pub fn send(&mut self, msg: O) {
        let to = self.p().route.as_ref().and_then(|route| route(&msg));
        self.send_inner(to, msg);
    }

    /// Sends `msg` to `to`, ignoring the route; otherwise as [`Ctx::send`].
    pub fn send_to(&mut self, to: Pid, msg: O) {
        self.send_inner(Some(to), msg);
    }

    /// In replay, the recorded outcome of this send (which is not done again);
    /// `None` when live.
    #[inline]
    fn replay_send(&mut self, to: Option<Pid>, msg: &O) -> Option<Outcome> {
        match self.replayed(|| Expect::Send { to, msg }) {
            Replayed::Sent(outcome) => Some(outcome),
            _ => None,
        }
    }

    fn send_inner(&mut self, to: Option<Pid>, mut msg: O) {
        self.tick();
        if self.replay_send(to, &msg).is_some() {
            return;
        }
        let me = self.me;
        loop {
            // A delivery is journaled by the kernel, as this process's SEND too.
            let reason = match self.k().send_out(me, to, msg) {
                Sent::Delivered => return,
                Sent::Full { msg: m, blocker } if self.killing() && blocker != self.pid() => {
                    (UndeliveredReason::Stopping, m)
                }
                Sent::Full { msg: m, blocker } if blocker != self.pid() => {
                    let k = self.k();
                    k.emit(me, || SignalKind::Backoff { to: blocker });
                    if let Some(b) = k.lookup(blocker) {
                        // SAFETY: b is live.
                        unsafe { (*b.as_ptr()).extra().waiting_senders.push_back(self.pid()) };
                    }
                    msg = m;
                    self.suspend(Wait::Room(blocker));
                    self.p().clear_room_grant();
                    continue;
                }
                Sent::Full { msg: m, .. } => (UndeliveredReason::WouldDeadlock, m),
                Sent::Rejected(m) => (UndeliveredReason::Rejected, m),
                Sent::NoRoute(m) => (UndeliveredReason::NoRoute, m),
                Sent::Unknown(_, m) => (UndeliveredReason::UnknownPid, m),
            };
            // Kept: one record is both the kept message and this process's SEND.
            let (why, msg) = reason;
            self.record(|| Call::Kept {
                to,
                reason: why,
                msg: &msg,
            });
            self.keep_undelivered(to, why, msg);
            return;
        }
    }

    fn keep_undelivered(&mut self, to: Option<Pid>, reason: UndeliveredReason, msg: O) {
        let me = self.me;
        self.k().keep_undelivered(me, to, reason, msg);
    }

    /// Sends `msg` where the route says without waiting: a full inbox, a missing
    /// route or an unknown pid gives the message back in the error. A refusal by
    /// an [`Overflow::Reject`](crate::Overflow::Reject) inbox is recorded as a
    /// REJECT signal, as for [`Ctx::send`].
    pub fn try_send(&mut self, msg: O) -> Result<(), SendError<O>> {
        let to = self.p().route.as_ref().and_then(|route| route(&msg));
        self.tick();
        if let Some(outcome) = self.replay_send(to, &msg) {
            return match outcome {
                Outcome::Delivered => Ok(()),
                Outcome::Full => Err(SendError::Full(msg)),
                Outcome::NoRoute => Err(SendError::NoRoute(msg)),
                Outcome::UnknownPid => Err(SendError::UnknownPid(to.unwrap_or(Pid(u64::MAX)), msg)),
            };
        }
        let me = self.me;
        let (outcome, result) = match self.k().send_out(me, to, msg) {
            Sent::Delivered => (Outcome::Delivered, Ok(())),
            Sent::Full { msg, .. } => (Outcome::Full, Err(SendError::Full(msg))),
            Sent::Rejected(msg) => {
                // Refused (REJECT), handed back; a route gave `to`.
                if let Some(to) = to {
                    self.k().emit_reject(me, to, &msg);
                }
                (Outcome::Full, Err(SendError::Full(msg)))
            }
            Sent::NoRoute(msg) => (Outcome::NoRoute, Err(SendError::NoRoute(msg))),
            Sent::Unknown(pid, msg) => (Outcome::UnknownPid, Err(SendError::UnknownPid(pid, msg))),
        };
        // A delivery is journaled by the kernel, as this process's SEND too.
        if let Err(SendError::Full(msg) | SendError::NoRoute(msg) | SendError::UnknownPid(_, msg)) =
            &result
        {
            self.record(|| Call::TrySend { to, msg, outcome });
        }
        result
    }

    /// In replay, the recorded result of this effect (which does not run again);
    /// `None` when live.
    fn replay_effect<T: Payload>(&mut self) -> Option<T> {
        match self.replayed(|| Expect::Effect) {
            Replayed::Effect(result) => Some(self.decode_effect(&result)),
            _ => None,
        }
    }

    /// A replayed effect's result; one that does not decode holds the process.
    fn decode_effect<T: Payload>(&mut self, result: &[u8]) -> T {
        match postcard::from_bytes(result) {
            Ok(value) => value,
            Err(e) => self.violation(
                format!("an effect result that does not decode ({e})"),
                "an effect".into(),
            ),
        }
    }

    fn journal_effect<T: Payload>(&mut self, value: &T) {
        if let Some((hooks, p)) = self.hooks() {
            let result = postcard::to_allocvec(value).unwrap_or_default();
            hooks.record(p, Call::Effect(&result));
        }
    }

    /// Performs a synchronous side effect (chronoflow's `use`): runs `f`, records
    /// its result in a USE signal, and returns it. In a durable scheduler the
    /// result is journaled after `f` runs, and a replay returns it without running
    /// `f` again (at least once: a crash between the two runs it again).
    pub fn effect<T: Payload>(&mut self, f: impl FnOnce() -> T) -> T {
        self.tick();
        if let Some(value) = self.replay_effect::<T>() {
            return value;
        }
        let value = f();
        self.journal_effect(&value);
        let me = self.me;
        self.k().emit(me, || SignalKind::Use {
            result: Value::encode(&value),
        });
        value
    }

    /// Performs a side effect at most once. In a durable scheduler its intent is
    /// journaled, and synced to disk, before `f` runs, and its result after. If the
    /// program stops between the two, recovery does not run `f` again: this call
    /// returns [`Interrupted`] instead, since the effect may or may not have
    /// happened. Without a journal it is [`Ctx::effect`] returning `Ok`.
    pub fn effect_at_most_once<T: Payload>(
        &mut self,
        f: impl FnOnce() -> T,
    ) -> Result<T, Interrupted> {
        self.tick();
        if let Replayed::Done = self.replayed(|| Expect::Intent) {
            return match self.replayed(|| Expect::IntentEnd) {
                Replayed::Effect(result) => Ok(self.decode_effect(&result)),
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
        if let Some((hooks, _)) = self.hooks()
            && !hooks.sync()
        {
            // The intent is not on disk: running the effect could run it twice.
            // The run stops at the end of this pass.
            self.hold();
        }
        let value = f();
        self.journal_effect(&value);
        let me = self.me;
        self.k().emit(me, || SignalKind::Use {
            result: Value::encode(&value),
        });
        Ok(value)
    }

    /// Performs an asynchronous side effect: polls `future` with a real waker,
    /// suspending this process while it is pending (the scheduler makes the process
    /// runnable again when the waker fires, from any thread), then records its
    /// output in a USE signal and returns it. An effect that can fail returns its
    /// error as a value: make `T` a `Result`. Journaled and replayed as
    /// [`Ctx::effect`].
    pub fn effect_future<T: Payload>(&mut self, future: impl Future<Output = T>) -> T {
        self.tick();
        if let Some(value) = self.replay_effect::<T>() {
            return value;
        }
        let mut future = pin!(future);
        let pid = self.pid();
        let waker = self.k().waker(pid);
        let mut cx = Context::from_waker(&waker);
        loop {
            if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
                self.journal_effect(&value);
                let me = self.me;
                self.k().emit(me, || SignalKind::Use {
                    result: Value::encode(&value),
                });
                return value;
            }
            self.suspend(Wait::Effect);
        }
    }

    /// The current time, from the scheduler's [`Clock`](crate::Clock). Recorded
    /// like an effect: a replay gets the same answer.
    pub fn now(&mut self) -> Time {
        // SAFETY: the kernel outlives its coroutines.
        let clock = unsafe { &*self.kernel.as_ptr() }.clock.as_ref() as *const dyn crate::Clock;
        // SAFETY: the clock lives as long as the kernel, and is not replaced while a
        // process runs.
        self.effect(|| unsafe { (*clock).now() })
    }

    /// In replay, the deadline of the timer this call armed then, and whether the
    /// process's records go on past it (the timer fired, or a message came first:
    /// no waiting again). `None` when live.
    fn replay_timer(&mut self, what: &'static str) -> Option<(Time, bool)> {
        match self.replayed(|| Expect::Timer { what }) {
            Replayed::Timer { deadline, more } => Some((deadline, more)),
            _ => None,
        }
    }

    /// Arms a timer at `deadline`, journaled (when live).
    fn arm(&mut self, deadline: Time, journal: bool) {
        if journal {
            self.record(|| Call::Timer(deadline));
        }
        let me = self.me;
        self.k().arm_timer(me, deadline);
    }

    /// Suspends this process for `duration` of the scheduler's clock. A durable
    /// scheduler journals the deadline: a replay does not wait again for a sleep
    /// that ended, and one that a crash interrupted ends at its original deadline.
    pub fn sleep(&mut self, duration: std::time::Duration) {
        self.tick();
        match self.replay_timer("a sleep") {
            Some((_, true)) => return,
            // Its records end here: it waits live for the rest.
            Some((deadline, false)) => self.arm(deadline, false),
            None => {
                // SAFETY: the kernel outlives its coroutines.
                let deadline = unsafe { self.kernel.as_ref() }.clock.now() + duration;
                self.arm(deadline, true);
            }
        }
        while !self.p().timed_out() {
            if self.killing() {
                // Cut short: it cannot wait (its timer goes with it).
                return;
            }
            self.suspend(Wait::Timer);
        }
        self.p().clear_timed_out();
    }

    /// Takes the head of the inbox, waiting at most `timeout` for one: `None` if
    /// none came in time. Journaled like [`Ctx::sleep`] and [`Ctx::receive`].
    pub fn receive_timeout(&mut self, timeout: std::time::Duration) -> Option<I> {
        self.tick();
        match self.replay_timer("a receive with a timeout") {
            Some((_, true)) => return self.replay_take("a receive with a timeout", true).flatten(),
            Some((deadline, false)) => self.arm(deadline, false),
            None => {
                // SAFETY: the kernel outlives its coroutines.
                let deadline = unsafe { self.kernel.as_ref() }.clock.now() + timeout;
                self.arm(deadline, true);
            }
        }
        loop {
            if let Some(m) = self.p().inbox.pop_front() {
                // Answered: nobody waits on the timer any more.
                let me = self.me;
                self.k().cancel_timer(me);
                self.p().clear_timed_out();
                self.took();
                self.journal_take(Some(&m));
                return Some(m);
            }
            if self.p().timed_out() || self.killing() {
                self.p().clear_timed_out();
                self.journal_take(None);
                return None;
            }
            self.suspend(Wait::Message);
        }
    }

    /// Gives the rest of this turn to the other runnable processes.
    pub fn yield_now(&mut self) {
        if self.killing() {
            return;
        }
        self.suspend(Wait::Yield);
    }

    /// Spawns a child from `template` with `args`: a SPAWN signal, then the child's
    /// START. The child gets its own pid, starts with a copy of this process's
    /// unconsumed inbox, and from now on receives every message this process
    /// receives. It must be joined before this process returns.
    pub fn spawn<A: 'static, R: Payload>(
        &mut self,
        template: &impl Spawnable<I, O, A, R>,
        args: A,
    ) -> Result<Child<R>, SpawnError>
    where
        I: Clone,
    {
        self.tick();
        let me = self.me;
        let my_pid = self.pid();
        self.k().clone_in = Some(I::clone);
        let name = template.template_name().clone();
        // What a durable scheduler refuses, it refuses live and in replay alike,
        // with nothing journaled. What it takes, a replay checks against the
        // journal, arguments included (as their encoding).
        let encoded = self.k().spawning(&name, &args, template.stackless())?;
        if let Replayed::Spawned(child) = self.replayed(|| Expect::Spawn {
            template: &name,
            args: encoded.as_deref(),
        }) {
            drop(args);
            return self.respawn(child);
        }
        let child = template.create_in(self.k(), args, Some(my_pid))?;
        // The child's CREATE record is this process's step.
        self.record(|| Call::Spawn);
        Ok(Child::new(self.k().adopt(me, child)))
    }

    /// A spawn in replay: the child was rebuilt from the journal when the
    /// scheduler opened (fast-forwarded, or replaying); only the handle is new.
    #[cold]
    fn respawn<R>(&mut self, child: Pid) -> Result<Child<R>, SpawnError> {
        let me = self.me;
        if !self.p().children().contains(&child) {
            self.violation(
                format!("a spawn of {child}"),
                format!(
                    "a spawn that the journal does not hold as a child of {}",
                    self.pid()
                ),
            );
        }
        self.k().emit(me, || SignalKind::Spawn { child });
        Ok(Child {
            pid: child,
            _result: PhantomData,
        })
    }

    /// Waits for `child` to stop and returns its result (a JOIN signal). A child
    /// that failed or was killed gives the reason as an error.
    pub fn join<R: Payload>(&mut self, child: Child<R>) -> Result<R, JoinError> {
        self.tick();
        let pid = child.pid;
        if !self.p().children().contains(&pid) {
            return Err(JoinError::NotAChild(pid));
        }
        let replayed = matches!(self.replayed(|| Expect::Join(pid)), Replayed::Done);
        loop {
            let me = self.me;
            if let Some(result) = self.k().take_child::<R>(me, pid) {
                if !replayed
                    && !matches!(
                        result,
                        Err(JoinError::ResultType(_) | JoinError::NotAChild(_))
                    )
                {
                    self.record(|| Call::Join(pid));
                }
                return result;
            }
            if self.killing() {
                // It cannot wait: the child is stopped with it.
                return Err(JoinError::Exited(crate::error::ExitError::Killed(format!(
                    "joined while its parent {} was being stopped",
                    self.pid()
                ))));
            }
            self.suspend(Wait::Join(pid));
        }
    }

    /// Called by a transition before the new entry runs: TRANSITION, and the new
    /// template's options.
    pub(crate) fn begin_transition<A: Payload, R>(
        &mut self,
        template: &Template<I, O, A, R>,
        args: &A,
    ) {
        self.tick();
        let name = template.opts.name.clone();
        let encoded = postcard::to_allocvec(args).unwrap_or_default();
        let replayed = matches!(
            self.replayed(|| Expect::Transition {
                template: &name,
                args: &encoded,
            }),
            Replayed::Done
        );
        if !replayed {
            let next_pid = self.k().next_pid();
            // A snapshot of this process: its inbox and children with it.
            self.record(|| Call::Transition {
                template: &name,
                args: &encoded,
                next_pid,
            });
        }
        let p = self.p();
        p.route = template.opts.route.clone();
        p.inbox.set_capacity(template.opts.capacity);
        p.inbox.overflow = template.opts.overflow;
        let me = self.me;
        let entry = template.opts.name.clone();
        self.k().emit(me, || SignalKind::Transition {
            entry,
            args: Value::encode(args),
        });
    }
}

/// The payload that unwinds a stackful process's stack when it is stopped (killed,
/// or dropped with its scheduler): thrown by [`Ctx`] where the process was
/// suspended, caught at the root of its coroutine.
pub(crate) struct KillUnwind;
