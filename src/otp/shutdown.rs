//! A scheduler's graceful shutdown (libeam's `system.shutdown()`, OTP's
//! `init:stop/0`): no new spawns, optionally the mail drained, every tree
//! stopped as OTP stops it, and what would not stop killed at the deadline.

use std::time::Duration;

use crate::clock::Time;
use crate::kernel::{Kernel, Spawns};
use crate::otp::outside::exit_signal;
use crate::reason::Reason;
use crate::scheduler::SimpleScheduler;
use crate::signal::Pid;

/// What [`SimpleScheduler::shutdown`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ShutdownReport {
    /// Whether the drain (if asked) ended with every process waiting: `false`
    /// if the deadline came first.
    pub drained: bool,
    /// How many of the processes alive when it began ended by themselves or
    /// as asked, before the deadline.
    pub stopped: usize,
    /// The processes still alive at the deadline, killed then: their pids and
    /// template names, oldest first.
    pub killed: Vec<(Pid, String)>,
}

impl<M: 'static> SimpleScheduler<M> {
    /// Shuts the scheduler down gracefully, within `timeout` on its clock
    /// (libeam's `system.shutdown()`, OTP's `init:stop/0`):
    ///
    /// 1. Spawns from outside are refused at once
    ///    ([`SpawnError::ShuttingDown`](crate::SpawnError::ShuttingDown)).
    /// 2. With `drain`, the processes run until every one waits: the mail
    ///    queued for them is handled (processes may still spawn meanwhile: a
    ///    supervisor restarts a child that fails).
    /// 3. Every spawn is refused from then on, and every tree is asked to
    ///    stop, the newest first, as OTP stops it: a server at the top of a
    ///    tree is stopped as [`ServerRef::stop`](crate::otp::server::ServerRef::stop)
    ///    stops it (its `terminate` runs, trapping exits or not, after the
    ///    mail ahead of the stop); any other top-level process gets the exit
    ///    signal `Shutdown`. A supervisor stops its children in reverse start
    ///    order, leaves first, as its specs say; a spawned child ends before
    ///    its parent; a server started linked by a process that ends gets
    ///    its parent's EXIT (its `terminate` runs if it traps exits, as in
    ///    OTP). Names and group memberships go as processes end.
    /// 4. What is still alive at the deadline is killed (`Reason::Kill`) and
    ///    reported.
    ///
    /// The run waits for timers between passes on a clock that passes by
    /// itself; on one that does not (a [`ManualClock`](crate::ManualClock)),
    /// nothing can come once no process can run, and what is alive then is
    /// killed at once (and processes that never all wait, passing messages
    /// back and forth, hold a drain until a deadline that such a clock never
    /// reaches: drain them on a clock that passes). The scheduler accepts no spawn afterwards; the results
    /// of ended processes can still be taken.
    pub fn shutdown(&mut self, timeout: Duration, drain: bool) -> ShutdownReport {
        let before = alive(self.kernel_mut());
        let deadline = self.kernel_mut().clock.now() + timeout;
        self.kernel_mut().close_spawns(Spawns::ProcessesOnly);
        let drained = !drain || self.run_before(deadline, |_| false);
        self.ask_to_stop();
        self.run_before(deadline, |k| alive(k).is_empty());
        self.kill_the_rest(before, drained)
    }

    /// Steps 3 of [`shutdown`](Self::shutdown): refuses every spawn, and asks
    /// every tree to stop.
    pub(crate) fn ask_to_stop(&mut self) {
        self.kernel_mut().close_spawns(Spawns::Closed);
        for top in tops(self.kernel_mut()) {
            let k = self.kernel_mut();
            if crate::otp::table(k).is_server(top) {
                crate::otp::server::stop_request(k, top, Reason::Shutdown(None));
            } else {
                exit_signal(self.kernel_ptr(), top, Reason::Shutdown(None));
            }
        }
    }

    /// Step 4 of [`shutdown`](Self::shutdown): kills what is still alive, and
    /// reports (`before`: the processes alive when the shutdown began).
    pub(crate) fn kill_the_rest(&mut self, before: Vec<Pid>, drained: bool) -> ShutdownReport {
        let remaining = alive(self.kernel_mut());
        let mut killed = Vec::with_capacity(remaining.len());
        for &pid in &remaining {
            let name = self.name(pid).unwrap_or_default().to_string();
            killed.push((pid, name));
        }
        // Newest first: a spawned child is killed with its parent.
        for &pid in remaining.iter().rev() {
            exit_signal(self.kernel_ptr(), pid, Reason::Kill);
        }
        self.run_until_idle();
        ShutdownReport {
            drained,
            // (Both by pid, in order.)
            stopped: before
                .iter()
                .filter(|p| remaining.binary_search(p).is_err())
                .count(),
            killed,
        }
    }

    /// Runs passes until `done`, or every process waits and nothing can
    /// come, or the deadline: whether it ended for `done` or because every
    /// process waits.
    fn run_before(&mut self, deadline: Time, done: impl Fn(&mut Kernel<M, M>) -> bool) -> bool {
        loop {
            if done(self.kernel_mut()) {
                return true;
            }
            if self.kernel_mut().clock.now() >= deadline {
                return false;
            }
            if self.update().is_idle() {
                if done(self.kernel_mut()) {
                    return true;
                }
                if !self.kernel_mut().wait_for_work_until(deadline) {
                    // Nothing more can come before the deadline.
                    return true;
                }
            }
        }
    }
}

/// The live processes, by pid (oldest first).
pub(crate) fn alive<I: 'static, O: 'static>(k: &mut Kernel<I, O>) -> Vec<Pid> {
    k.pids()
        .into_iter()
        .filter(|&pid| crate::otp::alive(k, pid).is_some())
        .collect()
}

/// The live processes at the top of their trees, newest first: no parent
/// that spawned them, and none alive that started them linked.
fn tops<I: 'static, O: 'static>(k: &mut Kernel<I, O>) -> Vec<Pid> {
    let mut tops: Vec<Pid> = alive(k)
        .into_iter()
        .filter(|&pid| {
            let p = k.lookup(pid).expect("alive");
            // SAFETY: p is live.
            let spawned = unsafe { p.as_ref().parent }.is_some();
            let started_by = crate::otp::table(k).parent_of(pid);
            !spawned && started_by.is_none_or(|parent| crate::otp::alive(k, parent).is_none())
        })
        .collect();
    tops.reverse();
    tops
}
