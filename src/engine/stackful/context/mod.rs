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

use crate::error::ExitError;
use crate::kernel::engine::ExitWith;
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
/// # Stack
///
/// The body runs on the process's own stack ([`Template::stack_size`]). Deep
/// recursion or large locals there can overflow it: the program then aborts with
/// a message naming the process (the guard page below the stack is hit; an
/// overflow cannot be a failure of the process alone). A panic is safe at any
/// size: its panic hook runs on the scheduler's stack (see
/// [`Template::stack_size`] for a hook set later).
///
/// [`Template::stack_size`]: crate::Template::stack_size
///
/// # While the process unwinds
///
/// A process that is killed (its parent ended with it unjoined) or dropped with its
/// scheduler is unwound: the destructors of its locals run, and may use the
/// context. So do the destructors run by a panic of its body. While its stack
/// unwinds, the process cannot wait: a panic there would abort the program (a
/// panic during unwinding), and a suspension would leave the thread unwinding
/// while other processes run on it (`std::thread::panicking` would say so to
/// all of them). So the context never suspends it:
///
/// - the budget is not counted: no call yields the turn, and `yield_now` returns
///   at once;
/// - a send to a full inbox (policy `Backoff`) keeps the message with the
///   undelivered ones, reason [`UndeliveredReason::Stopping`](crate::UndeliveredReason::Stopping), instead of waiting;
/// - `sleep` returns at once; `receive_timeout` takes the head of the inbox, or
///   returns `None` at once;
/// - `join` of a child that has not stopped returns
///   `Err(JoinError::Exited(ExitError::Killed(..)))` (a killed process's children
///   are stopped with it);
/// - `receive`, `select` and `filter` take what the inbox holds (a match, for
///   `select` and `filter`). **With nothing to take**, as `effect_future` with a
///   future still pending, or a call held by a determinism violation, the call
///   can neither return nor wait: the program aborts, with a message naming the
///   process. Destructors must not wait for what may not come.
///
/// A body that catches the unwinding of its kill (a `catch_unwind` around its
/// work) and waits again is not resumed: its stack is abandoned, never reused
/// nor unmapped (what it holds stays valid, pinned values included), and the
/// destructors of its locals never run.
///
/// A scheduler driven while its owner's thread unwinds (from a destructor) runs
/// its processes as ever: the thread's unwinding is not theirs. (A process then
/// cannot tell its own unwinding from its owner's, and is taken to wait as usual.)
///
/// [`ExitError::Killed`]: crate::ExitError::Killed
pub struct Ctx<I, O = I> {
    pub(crate) kernel: NonNull<Kernel<I, O>>,
    pub(crate) me: PPtr<I, O>,
    yielder: NonNull<Yielder<bool, Wait>>,
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
        }
    }

    #[inline]
    pub(crate) fn k(&mut self) -> &mut Kernel<I, O> {
        // SAFETY: the kernel outlives every coroutine it runs, and only the running
        // coroutine touches it while it runs.
        unsafe { &mut *self.kernel.as_ptr() }
    }

    #[inline]
    pub(crate) fn p(&mut self) -> &mut Proc<I, O> {
        // SAFETY: a process outlives its coroutine.
        unsafe { &mut *self.me.as_ptr() }
    }

    /// Suspends until the scheduler resumes this process (which then sets its
    /// status from `wait`).
    ///
    /// A process being stopped is resumed one last time by its engine: this call
    /// then unwinds its stack ([`KillUnwind`]). Called while the process cannot
    /// wait (see the type's docs), it does not return. (Inlined: the stack
    /// switch is part of each receive's hot path.)
    #[inline]
    pub(crate) fn suspend(&mut self, wait: Wait) {
        // (A process being killed that suspends again, its body having caught the
        // unwinding, suspends to its engine's stop, which abandons it.)
        if std::thread::panicking() && self.own_unwinding() {
            self.cannot_suspend(wait);
        }
        // SAFETY: the yielder lives on this coroutine's stack for its whole life.
        let stopping = unsafe { self.yielder.as_ref().suspend(wait) };
        if stopping {
            // Resumed by the engine's `stop`: unwind, dropping the locals.
            std::panic::resume_unwind(Box::new(KillUnwind));
        }
    }

    /// A destructor waits while the stack unwinds: it can neither wait (the thread
    /// would stay unwinding under the other processes) nor panic (a panic during
    /// unwinding aborts anyway).
    #[cold]
    #[inline(never)]
    fn cannot_suspend(&mut self, wait: Wait) -> ! {
        let pid = self.pid();
        eprintln!(
            "chronoflow: process {pid} waits ({wait:?}) in a destructor while its stack \
             unwinds: it can neither wait nor panic there; aborting"
        );
        std::process::abort();
    }

    /// Whether this process cannot wait: its stack unwinds (a destructor runs
    /// during a panic of its body, or during its kill).
    #[inline(always)]
    pub(crate) fn cannot_wait(&self) -> bool {
        std::thread::panicking() && self.own_unwinding()
    }

    /// The thread unwinds: whether for this process (and not for the owner that
    /// runs the scheduler from a destructor). When the owner was unwinding
    /// already, the process cannot tell, and is taken not to be: its waits are
    /// then made (a killed one's suspends to its stop, which abandons it).
    #[cold]
    #[inline(never)]
    fn own_unwinding(&self) -> bool {
        // SAFETY: the kernel outlives its coroutines; a read of one field.
        !unsafe { (*self.kernel.as_ptr()).outside_unwinding }
    }

    /// Spends one unit of the turn's budget; yields the turn when it is spent
    /// (never while the process is being stopped: it cannot wait).
    #[inline]
    pub(crate) fn tick(&mut self) {
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
        if !self.cannot_wait() {
            self.suspend(Wait::Yield);
        }
        let p = self.p();
        p.budget = p.budget.saturating_sub(1);
    }

    /// After taking a message: a freed slot lets one waiting sender retry.
    #[inline]
    pub(crate) fn took(&mut self) {
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

    /// Ends this process at once with `error` (OTP's `exit(Reason)`): its
    /// stack unwinds (its locals' destructors run), and it ends as if it had
    /// been ended from outside for that reason: its result is `Err(error)`,
    /// its STOP says so, and its links and monitors get the
    /// [`Reason`](crate::Reason). Not a failure: no panic message is printed.
    /// (A process that ends normally returns.)
    ///
    /// Called while its stack unwinds already (in a destructor), it cannot
    /// unwind again: the program aborts, as for any panic there.
    ///
    /// An unwinding costs some tens of thousands of instructions: a body that
    /// ends with a reason as its last word can return
    /// [`Step::Exit`](crate::Step::Exit) instead (a
    /// [`Template::stepping`](crate::Template::stepping) body), for nothing.
    pub fn exit(&mut self, error: ExitError) -> ! {
        std::panic::resume_unwind(Box::new(ExitWith(error)))
    }

    /// Gives the rest of this turn to the other runnable processes. A process
    /// that a durable scheduler replays goes on instead: what it waited for
    /// then is in its records.
    pub fn yield_now(&mut self) {
        if self.cannot_wait() || self.replaying() {
            return;
        }
        self.suspend(Wait::Yield);
    }

    /// Whether a durable scheduler replays this process now.
    #[inline]
    fn replaying(&mut self) -> bool {
        self.hooked() && self.p().extra_ref().is_some_and(|e| e.replaying)
    }
}

/// The payload that unwinds a stackful process's stack when it is stopped (killed,
/// or dropped with its scheduler): thrown by [`Ctx`] where the process was
/// suspended, caught at the root of its coroutine.
pub(crate) struct KillUnwind;
