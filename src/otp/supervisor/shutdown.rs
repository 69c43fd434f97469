//! Stopping children (OTP's `shutdown/1` and `terminate_dynamic_children/1`):
//! monitor and unlink (taking an EXIT that came already out of the mailbox),
//! signal, wait for the DOWN (a child that unlinked its supervisor cannot
//! hang it), escalate to a kill after the timeout.

use std::collections::HashMap;

use crate::engine::stackful::context::Ctx;
use crate::otp::mail::{Mail, MailRef, MonitorRef};
use crate::otp::supervisor::spec::Shutdown;
use crate::reason::Reason;
use crate::signal::Pid;

/// Stops `pids` at once as `how` says and waits until they have all ended:
/// their exit reasons, in their order. A process that has ended already gives
/// the reason of its EXIT (or `NoProc`).
pub(crate) fn stop_all<I: 'static, O: 'static>(
    ctx: &mut Ctx<I, O>,
    pids: &[Pid],
    how: Shutdown,
) -> Vec<Reason> {
    let mut waiting: HashMap<MonitorRef, usize> = HashMap::with_capacity(pids.len());
    // OTP's `monitor_child`: monitored, then unlinked, so that its end
    // reaches the caller as the DOWN alone (a caller that does not trap exits
    // survives it); an EXIT that came before gives the reason it ended with.
    let mut exited: Vec<Option<Reason>> = vec![None; pids.len()];
    for (i, &pid) in pids.iter().enumerate() {
        waiting.insert(ctx.monitor(pid), i);
        ctx.unlink(pid);
        if let Some(Mail::Exit { reason, .. }) =
            ctx.find_mail(&mut |m| matches!(m, MailRef::Exit { from, .. } if from == pid))
        {
            exited[i] = Some(reason);
        }
    }
    let signal = match how {
        Shutdown::BrutalKill => Reason::Kill,
        Shutdown::Timeout(_) | Shutdown::Infinity => Reason::Shutdown(None),
    };
    for &pid in pids {
        ctx.exit_signal(pid, signal.clone());
    }
    let mut timer = match how {
        Shutdown::Timeout(d) => Some(ctx.start_timer(d)),
        _ => None,
    };
    let mut reasons: Vec<Option<Reason>> = vec![None; pids.len()];
    while !waiting.is_empty() {
        let mail = ctx.select_mail(|m| match m {
            MailRef::Down { monitor, .. } => waiting.contains_key(&monitor),
            MailRef::Timeout(t) => timer == Some(t),
            _ => false,
        });
        match mail {
            Mail::Down {
                monitor, reason, ..
            } => {
                let i = waiting.remove(&monitor).expect("a monitor of ours");
                reasons[i] = Some(reason);
            }
            Mail::Timeout(_) => {
                // OTP: "if no exit signal is received within the specified
                // number of milliseconds, the child process is
                // unconditionally terminated using exit(Child, kill)".
                timer = None;
                for (i, r) in reasons.iter().enumerate() {
                    if r.is_none() {
                        ctx.exit_signal(pids[i], Reason::Kill);
                    }
                }
            }
            _ => unreachable!("selected a DOWN or the timeout"),
        }
    }
    if let Some(t) = timer
        && ctx.cancel_timer(t).is_none()
    {
        // It fired: its notice is queued.
        ctx.find_mail(&mut |m| matches!(m, MailRef::Timeout(x) if x == t));
    }
    exited
        .into_iter()
        .zip(reasons)
        .map(|(exit, down)| exit.or(down).expect("every DOWN came"))
        .collect()
}

/// Whether `reason` is what stopping a child as `how` should give (else OTP
/// reports a `shutdown_error`).
pub(crate) fn expected(reason: &Reason, how: Shutdown, permanent: bool) -> bool {
    match reason {
        Reason::Killed(_) => how == Shutdown::BrutalKill,
        Reason::Shutdown(None) => true,
        Reason::Shutdown(Some(_)) | Reason::Normal => !permanent,
        _ => false,
    }
}
