//! The toolkit from a [`SimpleScheduler`]'s owner: exit signals, timed sends,
//! replies.

use std::ptr::NonNull;
use std::time::Duration;

use crate::kernel::Kernel;
use crate::otp::call::{self, ReplyTo};
use crate::otp::links;
use crate::otp::mail::TimerRef;
use crate::otp::timers;
use crate::reason::Reason;
use crate::scheduler::SimpleScheduler;
use crate::signal::Pid;

/// Sends an exit signal from outside (no process: `from` is given as the
/// target itself, as a signal from nowhere) and applies it at once.
pub(crate) fn exit_signal<I: 'static, O: 'static>(
    k: NonNull<Kernel<I, O>>,
    to: Pid,
    reason: Reason,
) {
    // SAFETY: the owner calls with no coroutine running and no reference held.
    let kernel = unsafe { &mut *k.as_ptr() };
    links::exit_signal(kernel, None, to, to, reason, None);
    if kernel.exits_pending() {
        // SAFETY: as above; `kernel` is not used again.
        unsafe { Kernel::apply_exits(k) };
    }
}

impl<M: 'static> SimpleScheduler<M> {
    /// Sends the exit signal `reason` to `pid` from outside (OTP's `exit/2`
    /// from a shell): see [`Reason`] for what it does. A process it ends is
    /// ended now, before this returns, and so are those its end takes with it
    /// along links. Its [`Mail::Exit`](crate::Mail::Exit) (if it traps exits)
    /// names `pid` itself as the sender.
    pub fn exit_signal(&mut self, pid: Pid, reason: Reason) {
        exit_signal(self.kernel_ptr(), pid, reason);
    }

    /// Arms a timer that delivers `msg` to `to` after `delay` on the
    /// scheduler's clock (see [`Ctx::send_after`](crate::Ctx::send_after)).
    pub fn send_after(&mut self, delay: Duration, to: Pid, msg: M) -> TimerRef {
        timers::send_after(self.kernel_mut(), delay, to, msg)
    }

    /// Cancels `timer`: the time it had left, or `None` if it fired or was
    /// cancelled before. Its message is dropped.
    pub fn cancel_timer(&mut self, timer: TimerRef) -> Option<Duration> {
        let (left, msg) = timers::cancel(self.kernel_mut(), timer)?;
        drop(msg);
        Some(left)
    }

    /// How many timers' messages were dropped because their process had
    /// ended when they fired.
    pub fn timers_dropped(&self) -> u64 {
        self.kernel().timed_dropped
    }

    /// Answers a call from outside (see [`Ctx::reply`](crate::Ctx::reply)):
    /// the value back if the caller has ended.
    pub fn reply<R: 'static>(&mut self, to: ReplyTo<R>, value: R) -> Result<(), R> {
        call::reply(self.kernel_mut(), to, value)
    }

    /// The processes linked to `pid`, in the order the links were made.
    pub fn links(&mut self, pid: Pid) -> Vec<Pid> {
        links::links_of(self.kernel_mut(), pid)
    }
}
