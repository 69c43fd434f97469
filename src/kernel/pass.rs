//! The pass loop: fair passes over the ready queue, one turn per runnable process
//! per pass, each turn bounded by the budget; a process's panic is its failure.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::ptr::NonNull;

use crate::kernel::{Dispatch, Ended, Kernel, Status, Turn, Wait};

/// Where a run of passes stands (kept across a process's panic).
struct Passes {
    /// Turns left in the current pass.
    left: usize,
    /// Turns run so far, in all passes.
    ran: usize,
    /// Turns run in the current pass.
    pass_ran: usize,
    /// A pass has begun.
    begun: bool,
    /// Where an engine says how its process ended: one slot for the whole run,
    /// empty between turns (not made and dropped in every turn).
    ended: Option<Ended>,
}

impl<I: 'static, O: 'static> Kernel<I, O> {
    /// One fair pass: runs each process that was runnable when the pass began, for
    /// one turn each, in order. Returns how many turns ran.
    ///
    /// # Safety
    /// `k` is a live kernel and no reference to it is held by the caller.
    pub(crate) unsafe fn update<D: Dispatch>(k: NonNull<Self>) -> usize {
        // SAFETY: per the contract.
        unsafe { Self::passes::<D>(k, false) }
    }

    /// Runs passes until none runs anything. Returns the number of turns.
    ///
    /// # Safety
    /// As [`Kernel::update`].
    pub(crate) unsafe fn run_until_idle<D: Dispatch>(k: NonNull<Self>) -> usize {
        // SAFETY: per the contract.
        unsafe { Self::passes::<D>(k, true) }
    }

    /// One pass, or passes until one runs nothing (`until_idle`). Returns the
    /// number of turns.
    ///
    /// # Safety
    /// As [`Kernel::update`].
    unsafe fn passes<D: Dispatch>(k: NonNull<Self>, until_idle: bool) -> usize {
        // SAFETY: per the contract; one field written.
        unsafe { (*k.as_ptr()).outside_unwinding = std::thread::panicking() };
        let mut state = Passes {
            left: 0,
            ran: 0,
            pass_ran: 0,
            begun: false,
            ended: None,
        };
        // A body's panic that unwinds out of its resume (a stackless one's) lands
        // here: it is that process's failure, and the pass goes on. (One catch
        // for all the passes, not one per resume; a stackful body's panic is
        // caught on its own stack.)
        loop {
            // SAFETY: per the contract.
            let outcome = catch_unwind(AssertUnwindSafe(|| unsafe {
                Self::turns::<D>(k, &mut state, until_idle)
            }));
            let Err(payload) = outcome else {
                // SAFETY: no coroutine runs now.
                let kernel = unsafe { &mut *k.as_ptr() };
                // The timers that the last pass armed get their deadlines.
                kernel.settle_at_end();
                if let Some(payload) = kernel.reported.take() {
                    // User code that the kernel ran for its owner panicked (a sink,
                    // a message's destructor): the scheduler is consistent; the
                    // panic is the caller's. (Not while the caller unwinds already:
                    // a second panic there would abort.)
                    if kernel.outside_unwinding {
                        forget_quietly(payload);
                    } else {
                        resume_unwind(payload);
                    }
                }
                return state.ran;
            };
            // SAFETY: the panicking coroutine is gone; nothing else holds the kernel.
            let kernel = unsafe { &mut *k.as_ptr() };
            let Some(p) = kernel.resuming.take() else {
                // Not a process's panic: the kernel's own, which is not ours to hide.
                resume_unwind(payload);
            };
            // (Its turn is counted already; its engine is dropped by `finish`.)
            // (The payload's own `Drop` may panic: that is not the caller's either.)
            let ended = Ended::from_panic(payload);
            // SAFETY: `k` is the live kernel, and `kernel` is not used again.
            unsafe {
                Self::finish(k, p, ended);
                Self::exits_now(k);
            };
        }
    }

    /// Runs turns, pass after pass: a pass first moves woken and timed-out
    /// processes to the ready queue, then runs each process that is ready then,
    /// once, in order (those made ready meanwhile run in the next pass). Stops
    /// after one pass, or (`until_idle`) after a pass that ran nothing.
    ///
    /// # Safety
    /// As [`Kernel::update`].
    unsafe fn turns<D: Dispatch>(k: NonNull<Self>, state: &mut Passes, until_idle: bool) {
        loop {
            if state.left == 0 {
                if state.begun && (!until_idle || state.pass_ran == 0) {
                    return;
                }
                state.begun = true;
                state.pass_ran = 0;
                // SAFETY: as in `update`.
                let kernel = unsafe { &mut *k.as_ptr() };
                kernel.take_outside();
                kernel.fire_timers();
                if kernel.exits_pending() {
                    // Queued where no yield or end followed (a destructor's
                    // signal while its stack unwound): applied now.
                    // SAFETY: as above; `kernel` is not used again.
                    unsafe { Self::apply_exits(k) };
                }
                // SAFETY: as above.
                let kernel = unsafe { &mut *k.as_ptr() };
                state.left = kernel.ready.len();
                if state.left == 0 {
                    return;
                }
            }
            state.left -= 1;
            // SAFETY: as in `update`.
            let kernel = unsafe { &mut *k.as_ptr() };
            let Some(p) = kernel.ready.pop_front() else {
                state.left = 0;
                continue;
            };
            // SAFETY: queued processes are live or released (freed here).
            let proc = unsafe { &mut *p.as_ptr() };
            proc.queued = false;
            if proc.released {
                // SAFETY: released processes are referenced only by the queue.
                let panicked = unsafe { kernel.free_record(p) };
                kernel.report(panicked);
                continue;
            }
            if proc.status != Status::Ready {
                continue;
            }
            proc.status = Status::Running;
            proc.budget = kernel.budget;
            state.ran += 1;
            state.pass_ran += 1;
            let Some(engine) = &mut proc.engine else {
                continue;
            };
            // Resumed in place: the engine lives in its box, apart from the
            // process record that its context uses, until the process ends, which
            // it cannot do while it runs.
            // SAFETY: the pin is kept: the engine is only resumed through this.
            let engine: *mut dyn crate::kernel::Engine =
                unsafe { engine.as_mut().get_unchecked_mut() };
            let (space, pid, kind, this) = (kernel.space, proc.pid, proc.engine_kind, kernel.this);
            let turn = || Turn {
                space,
                pid,
                kernel: this.cast(),
                me: p.cast(),
            };
            kernel.resuming = Some(p);
            // SAFETY: as above; no reference into the kernel or the record is
            // held across the resume (`kernel` and `proc` are not used after it).
            let engine = unsafe { Pin::new_unchecked(&mut *engine) };
            let wait = D::resume(engine, kind, turn, &mut state.ended);
            // SAFETY: the coroutine is suspended or done.
            let kernel = unsafe { &mut *k.as_ptr() };
            kernel.resuming = None;
            match wait {
                Some(Wait::Yield) => {
                    kernel.make_ready(p);
                    // A process that sent an exit signal yields, so that it is
                    // applied before anything else runs.
                    // SAFETY: `k` is the live kernel; no coroutine runs now,
                    // and `kernel` is not used again.
                    unsafe { Self::exits_now(k) };
                }
                Some(wait) => {
                    if wait == Wait::Effect {
                        kernel.effects_pending += 1;
                    }
                    // SAFETY: p is live (a suspended process is never freed).
                    unsafe { (*p.as_ptr()).status = Status::Waiting(wait) };
                }
                None => {
                    let ended = state.ended.take().expect("an ended coroutine says how");
                    // SAFETY: `k` is the live kernel, and `kernel` is not used
                    // again (the loop makes a fresh one).
                    unsafe {
                        Self::finish(k, p, ended);
                        // Its end's exit signals (to its links) are applied
                        // before anything else runs.
                        Self::exits_now(k);
                    };
                }
            }
        }
    }

    /// Applies the exit signals queued, if any. They are queued by a process's
    /// end (its links) and by a process's `exit_signal`, which then yields:
    /// checked where a turn ends with a yield or an end, and at the start of
    /// each pass (for one queued where neither followed), not where a turn
    /// waits (the hot path of a receive).
    ///
    /// # Safety
    /// As [`Kernel::apply_exits`].
    #[inline(always)]
    unsafe fn exits_now(k: NonNull<Self>) {
        // SAFETY: per the contract.
        if unsafe { k.as_ref() }.exits_pending() {
            // SAFETY: per the contract.
            unsafe { Self::apply_exits(k) };
        }
    }

    /// Runs until nothing can run and no process waits on an effect's future,
    /// blocking the thread between idle passes until a waker fires.
    ///
    /// # Safety
    /// As [`Kernel::update`].
    pub(crate) unsafe fn run_blocking<D: Dispatch>(k: NonNull<Self>) -> usize {
        let mut total = 0;
        loop {
            // SAFETY: per the contract.
            total += unsafe { Self::run_until_idle::<D>(k) };
            // SAFETY: no coroutine runs now.
            if !unsafe { k.as_ref() }.wait_for_work() {
                return total;
            }
        }
    }

    /// Between idle passes: blocks the thread until an effect's waker fires,
    /// mail comes or the next timer is due. `false`, without blocking, when
    /// nothing can come (see [`Kernel::idle`]).
    pub(crate) fn wait_for_work(&self) -> bool {
        match self.idle() {
            Idle::Done => false,
            Idle::Wait(until) => {
                self.wakes.wait_nonempty(until);
                true
            }
        }
    }

    /// [`wait_for_work`](Self::wait_for_work), until `deadline` at the
    /// latest: `false`, without blocking, when nothing can come before it (on
    /// a clock that does not pass by itself, nothing that waiting brings).
    pub(crate) fn wait_for_work_until(&self, deadline: crate::clock::Time) -> bool {
        if !self.clock.passes_by_itself() {
            return false;
        }
        let now = self.clock.now();
        if now >= deadline {
            return false;
        }
        let left = deadline.since(now);
        match self.idle() {
            Idle::Done => false,
            Idle::Wait(until) => {
                self.wakes
                    .wait_nonempty(Some(until.map_or(left, |u| u.min(left))));
                true
            }
        }
    }

    /// What an idle kernel waits for: `Done` when nothing can come (no process
    /// waits on an effect's future, no timer is armed, no mail is queued and no
    /// sender can send any); else how long until the next timer, if one is
    /// armed. The timers of a clock that does not pass by itself (a manual
    /// one) are not waited for: waiting cannot bring them.
    pub(crate) fn idle(&self) -> Idle {
        let until = match self.next_deadline() {
            Some(t) if self.clock.passes_by_itself() => Some(t.since(self.clock.now())),
            _ => None,
        };
        let mail = self.postbox.as_ref().is_some_and(|p| p.may_come());
        if self.effects_pending == 0 && until.is_none() && !mail {
            Idle::Done
        } else {
            Idle::Wait(until)
        }
    }
}

pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_string()
    }
}

/// Drops `value` (whose `Drop` is user code), catching a panic of it, whose
/// own payload is forgotten quietly: for a teardown, which nothing may cut
/// short.
pub(crate) fn drop_quietly<T>(value: T) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(value))) {
        forget_quietly(payload);
    }
}

/// Drops a caught panic's payload, whose own destructor may panic: that panic's
/// payload is dropped in turn, and so on a few times; one still panicking then is
/// leaked rather than dropped forever.
pub(crate) fn forget_quietly(payload: Box<dyn std::any::Any + Send>) {
    let mut payload = payload;
    for _ in 0..4 {
        match catch_unwind(AssertUnwindSafe(move || drop(payload))) {
            Ok(()) => return,
            Err(again) => payload = again,
        }
    }
    std::mem::forget(payload);
}

/// What an idle kernel waits for (see [`Kernel::idle`]).
pub(crate) enum Idle {
    /// Nothing can come.
    Done,
    /// A wake-up, or the next timer this long from now.
    Wait(Option<std::time::Duration>),
}
