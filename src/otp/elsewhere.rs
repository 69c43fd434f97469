//! Links and monitors between processes of different kernels (the cores of a
//! multi-core runtime), through the kernel's remote hooks: the toolkit knows
//! only that a pid is held elsewhere, and that a job can be run there.
//!
//! Each kernel keeps its half of a tie in its own table: a link between `a`
//! (here) and `b` (elsewhere) is `a`'s link to `b` here, and `b`'s link to `a`
//! there; a monitor of `b` by `a` is `a`'s monitor here (with `b`'s watcher
//! entry for it, which says who to tell here when `b` ends) and `b`'s watcher
//! there. When a process ends, its kernel tells its own processes as always,
//! and sends every kernel it has ties with the job
//! [`ended_elsewhere`]: that kernel ends its half of the ties, and tells its
//! processes just as it would of one of its own (DOWN, exit signals). A tie
//! asked of a process that is not alive any more gets the answer `noproc`
//! the same way (OTP: a monitor of a dead process gives a DOWN with
//! `noproc`; a link to one, the exit signal `noproc`).
//!
//! Between two processes the order holds: a tie made, then messages, then the
//! end, arrive in the order they were sent (the jobs travel with the
//! messages). What a DOWN or an EXIT from another core can race with is the
//! same as in distributed Erlang.

use crate::kernel::Kernel;
use crate::otp::{Shared, alive, links, monitors, table, watch};
use crate::reason::Reason;
use crate::signal::Pid;

/// `watcher` (alive here) monitors `target`, held elsewhere, with reference
/// `r`: its half here, then the target's kernel is asked for the other.
pub(crate) fn monitor<I: 'static, O: 'static>(
    k: &mut Kernel<I, O>,
    r: u64,
    watcher: Pid,
    target: Pid,
) {
    table(k).add_monitor(r, watcher, target);
    k.run_at(
        target,
        Box::new(move |k| match alive(k, target) {
            Some(t) => {
                watch(t);
                // (Run on the watcher's own kernel, for a process of it made
                // after it was asked, the table holds this half already.)
                let t = table(k);
                let here = t
                    .entries
                    .get(&watcher)
                    .is_some_and(|e| e.monitors.iter().any(|&(x, _)| x == r));
                if !here {
                    t.add_monitor(r, watcher, target);
                }
            }
            None => noproc(k, watcher, target),
        }),
    );
}

/// `a` (alive here) links to `b`, held elsewhere.
pub(crate) fn link<I: 'static, O: 'static>(k: &mut Kernel<I, O>, a: Pid, b: Pid) {
    table(k).link(a, b);
    k.run_at(
        b,
        Box::new(move |k| match alive(k, b) {
            Some(p) => {
                watch(p);
                table(k).link(a, b);
            }
            None => noproc(k, a, b),
        }),
    );
}

/// `watcher` cancelled its monitor `r` of `target`, held elsewhere: its
/// kernel forgets it too.
pub(crate) fn demonitor<I: 'static, O: 'static>(
    k: &mut Kernel<I, O>,
    r: u64,
    watcher: Pid,
    target: Pid,
) {
    table(k).forget_if_unused(target);
    k.run_at(
        target,
        Box::new(move |k| {
            let t = table(k);
            t.demonitor(watcher, r);
            t.forget_if_unused(watcher);
        }),
    );
}

/// `a` unlinked from `b`, held elsewhere: its kernel forgets the link too.
pub(crate) fn unlink<I: 'static, O: 'static>(k: &mut Kernel<I, O>, a: Pid, b: Pid) {
    table(k).forget_if_unused(b);
    k.run_at(
        b,
        Box::new(move |k| {
            let t = table(k);
            t.unlink(a, b);
            t.forget_if_unused(a);
        }),
    );
}

/// The exit signal from `from` for `to`, held elsewhere: sent there.
pub(crate) fn exit_signal<I: 'static, O: 'static>(
    k: &mut Kernel<I, O>,
    from: Pid,
    to: Pid,
    reason: Reason,
) {
    k.run_at(
        to,
        Box::new(move |k| {
            links::exit_signal(k, None, from, to, reason, None);
        }),
    );
}

/// Sent back to the kernel of `asker` (that asked for a tie to `gone`, not
/// alive): `gone` has ended, as far as that kernel is concerned. (Behind
/// what `gone` sent `asker` before it ended: its DOWN or EXIT `noproc` comes
/// after its messages, as any of its ends does; run by a job, no process
/// runs here to come behind.)
fn noproc<I: 'static, O: 'static>(k: &mut Kernel<I, O>, asker: Pid, gone: Pid) {
    if !k.elsewhere(asker) {
        // (Asked for a process of this kernel whose making failed: `asker`
        // is of this kernel too.)
        return ended_elsewhere(k, gone, Reason::NoProc);
    }
    k.run_behind(
        asker,
        Some(gone),
        Box::new(move |k| ended_elsewhere(k, gone, Reason::NoProc)),
    );
}

/// `pid`, which ended here, had ties with processes held elsewhere (in its
/// table entry's lists): each kernel of theirs ends its half.
pub(crate) fn tell<I: 'static, O: 'static>(
    k: &mut Kernel<I, O>,
    pid: Pid,
    peers: impl IntoIterator<Item = Pid>,
    reason: &Reason,
) {
    let mut told: smallvec::SmallVec<[Pid; 4]> = smallvec::SmallVec::new();
    for peer in peers {
        if told.contains(&peer) || !k.elsewhere(peer) {
            continue;
        }
        told.push(peer);
        let reason = reason.clone();
        // (Behind what `pid` sent `peer`: its DOWN or EXIT comes after its
        // messages, as OTP orders signals from one process to another.)
        k.run_behind(
            peer,
            Some(pid),
            Box::new(move |k| ended_elsewhere(k, pid, reason)),
        );
    }
}

/// `pid`, held elsewhere, ended for `reason`: this kernel's half of its ties
/// goes, and its processes are told as of one of their own (each watcher a
/// DOWN, each linked process the exit signal). Nothing, when none is left
/// (told twice, or all cancelled).
pub(crate) fn ended_elsewhere<I: 'static, O: 'static>(
    k: &mut Kernel<I, O>,
    pid: Pid,
    reason: Reason,
) {
    let Some((entry, traps)) = table(k).end_with_traps(pid) else {
        return;
    };
    let mut reason = Shared::new(reason, entry.watchers.len() + entry.links.len());
    if !entry.watchers.is_empty() {
        monitors::ended(k, pid, None, &entry, &mut reason);
    }
    links::ended(k, pid, None, &entry, traps, &mut reason);
}
