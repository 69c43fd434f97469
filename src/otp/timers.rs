//! Timers that send (OTP's `erlang:send_after/3`, `erlang:start_timer/3` and
//! `erlang:cancel_timer/1`), on the scheduler's [`Clock`](crate::Clock): a
//! [`ManualClock`](crate::ManualClock) drives them in tests. A timer's message
//! to a process that has ended is dropped and counted
//! ([`SimpleScheduler::timers_dropped`](crate::SimpleScheduler::timers_dropped)),
//! as BEAM drops a message to a dead pid.

use std::time::Duration;

use crate::kernel::Kernel;
use crate::kernel::time::Timed;
use crate::otp::mail::{Notice, TimerRef};
use crate::signal::Pid;

/// Arms a timer that delivers `msg` to `to` after `delay` (from a turn, it
/// reads no clock: see `Kernel::arm_send_after`).
pub(crate) fn send_after<I: 'static, O: 'static>(
    k: &mut Kernel<I, O>,
    delay: Duration,
    to: Pid,
    msg: I,
) -> TimerRef {
    if unborn(k, to) {
        // No process has had this pid yet: the one that gets it later must not
        // receive what was sent before it existed.
        return dropped_now(k, to, msg);
    }
    TimerRef(k.arm_send_after(to, delay, Timed::Msg(msg)))
}

/// [`send_after`] at `deadline`, known as it is armed (a durable scheduler
/// journals it).
pub(crate) fn send_at<I: 'static, O: 'static>(
    k: &mut Kernel<I, O>,
    deadline: crate::clock::Time,
    to: Pid,
    msg: I,
) -> TimerRef {
    if unborn(k, to) {
        return dropped_now(k, to, msg);
    }
    TimerRef(k.arm_send_at(to, deadline, Timed::Msg(msg)))
}

/// Whether no process has had `to` yet, as far as this kernel can tell. In a
/// runtime of several kernels pids are handed out by each, and reserved by
/// others: a pid is then taken for what it is (and a timer to a pid nobody
/// has when it fires is dropped and counted then).
#[inline(always)]
fn unborn<I: 'static, O: 'static>(k: &Kernel<I, O>, to: Pid) -> bool {
    to.0 >= k.next_pid() && !k.has_remote()
}

/// A timed message to a pid no process has had: dropped and counted at once,
/// as it would be when it fired; its reference cancels nothing.
#[cold]
fn dropped_now<I: 'static, O: 'static>(k: &mut Kernel<I, O>, to: Pid, msg: I) -> TimerRef {
    k.timed_dropped += 1;
    crate::trace::trace_event!(
        tracing::Level::DEBUG,
        to = to.0,
        reason = "no such process",
        "timer dropped"
    );
    let _ = to;
    drop(msg);
    TimerRef(k.unused_timer_id())
}

/// Arms a timer that gives `to` the notice [`Mail::Timeout`](crate::Mail::Timeout)
/// after `delay`.
pub(crate) fn start_timer<I: 'static, O: 'static>(
    k: &mut Kernel<I, O>,
    delay: Duration,
    to: Pid,
) -> TimerRef {
    TimerRef(k.arm_send_after(to, delay, Timed::Sys(timeout)))
}

/// [`start_timer`] at `deadline`, known as it is armed (a durable scheduler
/// journals it).
pub(crate) fn start_timer_at<I: 'static, O: 'static>(
    k: &mut Kernel<I, O>,
    deadline: crate::clock::Time,
    to: Pid,
) -> TimerRef {
    TimerRef(k.arm_send_at(to, deadline, Timed::Sys(timeout)))
}

/// The notice of timer `id`, made when it fires.
pub(crate) fn timeout(id: u64) -> crate::kernel::SysMsg {
    Notice::Timeout(TimerRef(id)).boxed()
}

/// Cancels `timer`: the time it had left and its message (for the caller to
/// drop: its `Drop` is user code), or `None` if it had fired or was
/// cancelled.
pub(crate) fn cancel<I: 'static, O: 'static>(
    k: &mut Kernel<I, O>,
    timer: TimerRef,
) -> Option<(Duration, Timed<I>)> {
    let (due, msg) = k.cancel_send(timer.0)?;
    Some((k.time_left(due), msg))
}
