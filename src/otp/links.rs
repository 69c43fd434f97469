//! Links and exit signals, with OTP's semantics (`erlang:link/1`,
//! `erlang:exit/2`, `process_flag(trap_exit, true)`):
//!
//! - a link is two-way; when one end ends, the other gets an exit signal with
//!   the reason;
//! - an exit signal with reason [`Reason::Kill`] ends its target, trapping or
//!   not, with reason `Killed("killed")`;
//! - any other signal to a process that traps exits becomes [`Mail::Exit`];
//! - to one that does not: `Normal` is ignored, any other reason ends it with
//!   that same reason (so a failure spreads along links unchanged).
//!
//! [`Mail::Exit`]: crate::Mail::Exit

use crate::error::{ExitError, SpawnError};
use crate::kernel::{Kernel, PPtr};
use crate::otp::mail::Notice;
use crate::otp::{Entry, Shared, alive, spawn_unparented, table, watch};
use crate::reason::Reason;
use crate::signal::{Payload, Pid, SignalData};
use crate::template::Spawnable;

/// What an exit signal did to its target.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Signalled {
    /// Nothing (the target had ended, or ignored a `Normal`), or it was
    /// delivered as mail.
    Done,
    /// The target is to end with this error (queued, for another process; the
    /// caller ends itself when it is the target).
    Ends(ExitError),
}

/// What an exit signal for `reason` does to a target that traps exits or
/// not (OTP's rules; see the module's doc).
pub(crate) enum Verdict {
    /// It comes as mail.
    Mail(Reason),
    /// Nothing (`Normal` to a process that does not trap).
    Ignored,
    /// The target ends with this.
    Ends(ExitError),
}

/// What an exit signal for `reason` does to a target that `traps` or not.
#[inline]
pub(crate) fn verdict(reason: Reason, traps: bool) -> Verdict {
    match reason {
        Reason::Kill => Verdict::Ends(ExitError::Killed("killed".into())),
        reason if traps => Verdict::Mail(reason),
        reason => match reason.into_error() {
            Some(error) => Verdict::Ends(error),
            None => Verdict::Ignored,
        },
    }
}

/// Sends an exit signal from `from` to `to` for `reason`; queues the target's
/// end unless `to` is `me` (the caller, running: it ends itself). `sender`:
/// the sending process's record, which records the EXIT signal (none from
/// outside, or for a signal about a process that is gone).
pub(crate) fn exit_signal<I: 'static, O: 'static>(
    k: &mut Kernel<I, O>,
    sender: Option<PPtr<I, O>>,
    from: Pid,
    to: Pid,
    reason: Reason,
    me: Option<Pid>,
) -> Signalled {
    if k.elsewhere(to) {
        // (A process of another kernel, never alive in this one: the signal
        // goes there.)
        crate::otp::elsewhere::exit_signal(k, from, to, reason);
        return Signalled::Done;
    }
    exit_signal_traps(k, sender, from, to, reason, me, None, false)
}

/// [`exit_signal`], `traps` telling whether `to` traps exits when the caller
/// knows it (`None`: looked up); `link`: the signal is a link's, at the end
/// of `from`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn exit_signal_traps<I: 'static, O: 'static>(
    k: &mut Kernel<I, O>,
    sender: Option<PPtr<I, O>>,
    from: Pid,
    to: Pid,
    reason: Reason,
    me: Option<Pid>,
    traps: Option<bool>,
    link: bool,
) -> Signalled {
    let Some(t) = alive(k, to) else {
        return Signalled::Done;
    };
    if let Some(s) = sender {
        k.emit(s, || SignalData::Exit {
            to,
            reason: reason.clone(),
        });
    }
    crate::trace::trace_event!(
        tracing::Level::DEBUG,
        pid = from.0,
        to = to.0,
        reason = %reason,
        "exit signal"
    );
    let traps = traps.unwrap_or_else(|| table(k).traps(to));
    if traps && !matches!(reason, Reason::Kill) {
        // (`verdict`'s mail, the reason moved once, into the notice.)
        push_exit(k, sender, t, from, reason, link);
        return Signalled::Done;
    }
    let error = match verdict(reason, traps) {
        Verdict::Mail(reason) => {
            push_exit(k, sender, t, from, reason, link);
            return Signalled::Done;
        }
        Verdict::Ignored => return Signalled::Done,
        Verdict::Ends(error) => error,
    };
    if me == Some(to) {
        return Signalled::Ends(error);
    }
    k.queue_exit(to, error);
    Signalled::Done
}

/// Puts the EXIT from `from` (its record: `sender`) in `t`'s system queue
/// (held if both moved to this core: see `kernel::held`; `link`: held as
/// the link's, which an `unlink` removes).
#[inline(always)]
fn push_exit<I: 'static, O: 'static>(
    k: &mut Kernel<I, O>,
    sender: Option<PPtr<I, O>>,
    t: PPtr<I, O>,
    from: Pid,
    reason: Reason,
    link: bool,
) {
    if k.moved_here(t) {
        let exit = Notice::Exit { from, reason }.boxed();
        if link {
            return k.push_link_exit_moved(sender, t, exit);
        }
        return k.push_sys_moved(sender, t, 0, exit);
    }
    k.push_sys(t, 0, Notice::Exit { from, reason }.boxed());
}

/// Links `me` (live, running) and `other`. A link to oneself does nothing; a
/// link to a process that is not alive sends `me` the exit signal `NoProc`
/// (OTP: "if the link cannot be made because Pid does not exist, an exit
/// signal with reason noproc is sent to the calling process").
pub(crate) fn link<I: 'static, O: 'static>(
    k: &mut Kernel<I, O>,
    me: PPtr<I, O>,
    other: Pid,
) -> Signalled {
    // SAFETY: me is live.
    let my_pid = unsafe { me.as_ref().pid };
    if other == my_pid {
        return Signalled::Done;
    }
    let Some(o) = alive(k, other) else {
        if k.elsewhere(other) {
            watch(me);
            crate::otp::elsewhere::link(k, my_pid, other);
            return Signalled::Done;
        }
        return exit_signal(k, None, other, my_pid, Reason::NoProc, Some(my_pid));
    };
    watch(me);
    watch(o);
    table(k).link(my_pid, other);
    Signalled::Done
}

/// Spawns a top-level process from `template` with `args`, linked to `me`
/// before it is started (see [`spawn_unparented`]).
pub(crate) fn spawn_link<I: 'static, O: 'static, A: 'static, R: Payload>(
    k: &mut Kernel<I, O>,
    me: PPtr<I, O>,
    template: &impl Spawnable<I, O, A, R>,
    args: A,
) -> Result<Pid, SpawnError> {
    spawn_unparented(k, me, template, args, |k, me, p, parent, new| {
        // (As `link`, to a process known alive and not `me`, then its
        // parent set.)
        watch(me);
        watch(p);
        table(k).link_child(parent, new);
    })
}

/// Removes the link between `me` and `other`, if any, and the EXIT of it
/// held for `me`, if any.
pub(crate) fn unlink<I: 'static, O: 'static>(k: &mut Kernel<I, O>, me: Pid, other: Pid) {
    table(k).unlink(me, other);
    if k.holds_for(me) {
        // An EXIT of the link held, on its way behind `other`'s messages,
        // both having moved to this core (see `kernel::held`): not in the
        // queue yet, it goes with the link (no EXIT of it comes after an
        // `unlink`, as across cores, where it finds no link). An exit
        // signal that `other` sent with `exit_signal` stays.
        unhold_exit(k, me, other);
    }
    if k.elsewhere(other) {
        crate::otp::elsewhere::unlink(k, me, other);
    }
}

/// Sets whether `me` traps exits; the previous setting.
pub(crate) fn trap_exit<I: 'static, O: 'static>(
    k: &mut Kernel<I, O>,
    me: PPtr<I, O>,
    on: bool,
) -> bool {
    watch(me);
    // SAFETY: me is live.
    let pid = unsafe { me.as_ref().pid };
    table(k).set_trap(pid, on)
}

/// The pids linked to `pid`, in the order the links were made.
pub(crate) fn links_of<I: 'static, O: 'static>(k: &mut Kernel<I, O>, pid: Pid) -> Vec<Pid> {
    table(k)
        .entries
        .get(&pid)
        .map(|e| e.links.to_vec())
        .unwrap_or_default()
}

/// `pid` ended for `reason` (`p`: its record, if it was a process of this
/// kernel): each linked peer here loses the link and gets the exit signal, in
/// the order the links were made. `traps`: whether each peer traps exits, as
/// [`Table::end_with_traps`](crate::otp::table::Table::end_with_traps) gave it
/// (no signal sent here changes a trap flag).
#[inline(always)]
pub(crate) fn ended<I: 'static, O: 'static>(
    k: &mut Kernel<I, O>,
    pid: Pid,
    p: Option<PPtr<I, O>>,
    entry: &Entry,
    traps: u64,
    reason: &mut Shared,
) {
    for (i, &peer) in entry.links.iter().enumerate() {
        let traps = (i < 64).then(|| traps & (1 << i) != 0);
        exit_signal_traps(k, p, pid, peer, reason.take(), None, traps, true);
    }
}

/// Removes the EXIT of the link with `other` held for `me` (see
/// `kernel::held`).
#[cold]
#[inline(never)]
fn unhold_exit<I: 'static, O: 'static>(k: &mut Kernel<I, O>, me: Pid, other: Pid) {
    k.retain_held(me, |(_, msg), link| {
        !(link
            && matches!(
                msg.downcast_ref::<Notice>(),
                Some(Notice::Exit { from, .. }) if *from == other
            ))
    });
}
