//! `Ctx`: everything a process body can do. Every call that must wait suspends the
//! process's coroutine and returns when what it waited for has happened.

//!
//! One file per kind of call: [`receive`] (receive, select, filter), [`send`],
//! [`effects`], [`time`] (sleep, receive with a timeout), [`children`] (spawn,
//! join, transitions), and [`journal`] (how calls reach the kernel's hooks).

mod children;
mod effects;
mod journal;
mod receive;
mod send;
mod time;

use std::ptr::NonNull;

use corosensei::Yielder;

use crate::kernel::{Kernel, PPtr, Proc, Wait};
use crate::signal::Pid;

pub use children::Child;

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
///   undelivered ones, reason [`UndeliveredReason::Stopping`](crate::UndeliveredReason::Stopping), instead of waiting;
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

    /// Gives the rest of this turn to the other runnable processes.
    pub fn yield_now(&mut self) {
        if self.killing() {
            return;
        }
        self.suspend(Wait::Yield);
    }
}

/// The payload that unwinds a stackful process's stack when it is stopped (killed,
/// or dropped with its scheduler): thrown by [`Ctx`] where the process was
/// suspended, caught at the root of its coroutine.
pub(crate) struct KillUnwind;
