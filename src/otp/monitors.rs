//! Monitors, with OTP's semantics (`erlang:monitor/2`, `erlang:demonitor/2`):
//! one-way, one DOWN per monitor with the watched process's exit reason; two
//! monitors give two DOWNs; a monitor of a process that is not alive gives an
//! immediate DOWN with [`Reason::NoProc`]; `demonitor` cancels, and with
//! `flush` also removes a DOWN already delivered.

use crate::error::SpawnError;
use crate::kernel::{Kernel, PPtr};
use crate::otp::mail::{MonitorRef, Notice};
use crate::otp::{Entry, Shared, alive, spawn_unparented, table, watch};
use crate::reason::Reason;
use crate::signal::{Payload, Pid, SignalData};
use crate::template::Spawnable;

/// `me` (live) monitors `target`: the monitor's reference.
pub(crate) fn monitor<I: 'static, O: 'static>(
    k: &mut Kernel<I, O>,
    me: PPtr<I, O>,
    target: Pid,
) -> MonitorRef {
    let r = table(k).new_ref();
    monitor_as(k, me, target, r)
}

/// [`monitor`] with reference `r`, taken from the table's `new_ref` before.
pub(crate) fn monitor_as<I: 'static, O: 'static>(
    k: &mut Kernel<I, O>,
    me: PPtr<I, O>,
    target: Pid,
    r: u64,
) -> MonitorRef {
    // SAFETY: me is live.
    let my_pid = unsafe { me.as_ref().pid };
    match alive(k, target) {
        Some(t) => {
            watch(me);
            watch(t);
            table(k).add_monitor(r, my_pid, target);
        }
        None if k.elsewhere(target) => {
            watch(me);
            crate::otp::elsewhere::monitor(k, r, my_pid, target);
        }
        None => {
            let down = Notice::Down {
                monitor: MonitorRef(r),
                pid: target,
                reason: Reason::NoProc,
            };
            k.push_sys(me, 0, down.boxed());
        }
    }
    MonitorRef(r)
}

/// Spawns a top-level process from `template` with `args`, monitored by `me`
/// before it is started (see [`spawn_unparented`]): its pid and the monitor.
pub(crate) fn spawn_monitor<I: 'static, O: 'static, A: 'static, R: Payload>(
    k: &mut Kernel<I, O>,
    me: PPtr<I, O>,
    template: &impl Spawnable<I, O, A, R>,
    args: A,
) -> Result<(Pid, MonitorRef), SpawnError> {
    // (The reference is taken where the tie is made: one look for the
    // tables, not two.)
    let mut r = 0;
    let pid = spawn_unparented(k, me, template, args, |k, me, p, my_pid, new| {
        watch(me);
        watch(p);
        let t = table(k);
        r = t.new_ref();
        t.add_monitor(r, my_pid, new);
    })?;
    Ok((pid, MonitorRef(r)))
}

/// [`spawn_monitor`] with the monitor's reference `r`, taken from the
/// table's `new_ref` before.
pub(crate) fn spawn_monitor_as<I: 'static, O: 'static, A: 'static, R: Payload>(
    k: &mut Kernel<I, O>,
    me: PPtr<I, O>,
    template: &impl Spawnable<I, O, A, R>,
    args: A,
    r: u64,
) -> Result<(Pid, MonitorRef), SpawnError> {
    let pid = spawn_unparented(k, me, template, args, |k, me, p, my_pid, new| {
        // (As `monitor_as`, of a process known alive.)
        watch(me);
        watch(p);
        table(k).add_monitor(r, my_pid, new);
    })?;
    Ok((pid, MonitorRef(r)))
}

/// `me` cancels `monitor`: whether it was active. With `flush`, a DOWN of it
/// already delivered (not yet read) is removed too (OTP's `[flush]`).
pub(crate) fn demonitor<I: 'static, O: 'static>(
    k: &mut Kernel<I, O>,
    me: PPtr<I, O>,
    monitor: MonitorRef,
    flush: bool,
) -> bool {
    // SAFETY: me is live.
    let my_pid = unsafe { me.as_ref().pid };
    let target = table(k).demonitor_target(my_pid, monitor.0);
    let mut active = target.is_some();
    if let Some(target) = target
        && k.elsewhere(target)
    {
        crate::otp::elsewhere::demonitor(k, monitor.0, my_pid, target);
    }
    if flush {
        // SAFETY: me is live; no other reference to its record is held.
        let proc = unsafe { &mut *me.as_ptr() };
        if let Some(e) = proc.extra_mut() {
            e.sys.retain(|item| {
                !matches!(
                    item.msg.downcast_ref::<Notice>(),
                    Some(Notice::Down { monitor: m, .. }) if *m == monitor
                )
            });
        }
    }
    if !active && k.moved_here(me) {
        // A DOWN held, on its way behind the watched process's messages,
        // both having moved to this core (see `kernel::held`): not in the
        // queue yet, it goes with its monitor, flush or no flush (no DOWN
        // comes after a `demonitor`, as across cores, where it finds no
        // monitor); the monitor was active.
        active = unhold_down(k, my_pid, monitor);
    }
    active
}

/// Removes the DOWN of `monitor` held for `me` (see `kernel::held`):
/// whether there was one.
#[cold]
#[inline(never)]
fn unhold_down<I: 'static, O: 'static>(k: &mut Kernel<I, O>, me: Pid, monitor: MonitorRef) -> bool {
    k.retain_held(me, |(_, msg), _| {
        !matches!(
            msg.downcast_ref::<Notice>(),
            Some(Notice::Down { monitor: m, .. }) if *m == monitor
        )
    })
}

/// `pid` ended for `reason` (`p`: its record, if it was a process of this
/// kernel): its watchers here get their DOWNs (in the order the monitors were
/// set), and the monitors it held go.
#[inline(always)]
pub(crate) fn ended<I: 'static, O: 'static>(
    k: &mut Kernel<I, O>,
    pid: Pid,
    p: Option<PPtr<I, O>>,
    entry: &Entry,
    reason: &mut Shared,
) {
    for &(r, watcher) in &entry.watchers {
        if watcher == pid {
            // Its own monitor of itself: nobody is left to tell.
            continue;
        }
        if let Some(w) = alive(k, watcher) {
            crate::trace::trace_event!(
                tracing::Level::DEBUG,
                pid = pid.0,
                to = watcher.0,
                reason = %reason.get(),
                "down"
            );
            if let Some(p) = p {
                k.emit(p, || SignalData::Down {
                    to: watcher,
                    monitor: MonitorRef(r),
                    reason: reason.get().clone(),
                });
            }
            let down = |reason: &mut Shared| Notice::Down {
                monitor: MonitorRef(r),
                pid,
                reason: reason.take(),
            };
            if k.moved_here(w) {
                // (Held if both moved to this core: see `kernel::held`.)
                k.push_sys_moved(p, w, 0, down(reason).boxed());
                continue;
            }
            k.push_sys(w, 0, down(reason).boxed());
        }
    }
}
