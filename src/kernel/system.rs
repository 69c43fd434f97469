//! What the kernel offers a layer of process relations above it (links,
//! monitors, names: `crate::otp`) without knowing it:
//!
//! - **system messages**: a second queue per process of opaque notifications
//!   (DOWN, EXIT, replies), read in arrival order with its user messages by the
//!   calls that ask for them, and never seen by a plain `receive`;
//! - **exit signals**: a request to end a process for a reason, applied between
//!   turns (a process is never ended in the middle of one, nor by the turn of
//!   another, whose stack it would have to unwind from inside);
//! - **end notices**: the layer's function, called with each watched process's
//!   exit reason as it ends, while its record is still whole.

use std::ptr::NonNull;

use crate::error::ExitError;
use crate::kernel::proc::SysItem;
use crate::kernel::sysmsg::SysMsg;
use crate::kernel::{Kernel, PPtr, Status, Wait};
use crate::reason::Reason;
use crate::signal::Pid;

/// The layer's end notice: `p` (live, its record whole, its engine gone) ends
/// for `reason` (the layer's to keep: its last notice takes it without a
/// copy). It may push system messages, make processes ready and queue
/// exit signals; it must not run user code, nor end a process itself.
pub(crate) type OnEnd<I, O> = fn(&mut Kernel<I, O>, PPtr<I, O>, Reason);

impl<I: 'static, O: 'static> Kernel<I, O> {
    /// Puts a system message in `p`'s queue, due after the user messages in its
    /// inbox now, and wakes `p` if it waits for mail. `tag`: what the layer
    /// matches it by without opening it (0 for nothing). (Inlined: the
    /// message is then written where it waits with fewer copies.)
    #[inline(always)]
    pub(crate) fn push_sys(&mut self, p: PPtr<I, O>, tag: u64, msg: SysMsg) {
        // SAFETY: p is a live process of this kernel.
        let proc = unsafe { &mut *p.as_ptr() };
        let due = proc.inbox.head_removed + proc.inbox.queue.len() as u64;
        proc.extra().sys.push_back(SysItem { due, tag, msg });
        if proc.status == Status::Waiting(Wait::Mail) {
            self.make_ready(p);
        }
    }

    /// Queues an exit signal: `pid` is to end with `error` (unless it ended
    /// first), at the next point between turns.
    pub(crate) fn queue_exit(&mut self, pid: Pid, error: ExitError) {
        self.exits.push_back((pid, error));
    }

    /// The exit signals waiting to be applied, in order.
    pub(crate) fn pending_exits(&self) -> impl Iterator<Item = &(Pid, ExitError)> {
        self.exits.iter()
    }

    /// Whether exit signals wait to be applied.
    #[inline(always)]
    pub(crate) fn exits_pending(&self) -> bool {
        !self.exits.is_empty()
    }

    /// Applies the queued exit signals, in order, and those their ends queue:
    /// each target still alive is killed with its reason (its descendants with
    /// it).
    ///
    /// # Safety
    /// `k` is a live kernel (its `this`), no reference to it is held by the
    /// caller, and no coroutine is running (between turns).
    #[cold]
    #[inline(never)]
    pub(crate) unsafe fn apply_exits(k: NonNull<Self>) {
        loop {
            // SAFETY: per the contract; a fresh reference for the pop only.
            let Some((pid, error)) = (unsafe { (*k.as_ptr()).exits.pop_front() }) else {
                return;
            };
            // SAFETY: as above.
            let Some(p) = (unsafe { (*k.as_ptr()).lookup(pid) }) else {
                continue;
            };
            // SAFETY: p is live.
            if unsafe { p.as_ref().status } == Status::Stopped {
                continue;
            }
            // SAFETY: per the contract; p is live.
            unsafe { Self::kill(k, p, error) };
        }
    }

    /// Tells the layer that `p` ends for `reason`, if it watches `p`.
    #[inline]
    pub(crate) fn notify_end(&mut self, p: PPtr<I, O>, reason: impl FnOnce() -> Reason) {
        // SAFETY: p is live.
        if unsafe { p.as_ref().watched }
            && let Some(on_end) = self.on_end
        {
            on_end(self, p, reason());
        }
    }
}
