//! Time: sleeping, and receiving with a timeout, on the scheduler's clock.

use crate::clock::Time;
use crate::engine::stackful::context::Ctx;
use crate::kernel::Wait;
use crate::kernel::hooks::{Call, Expect, Replayed};

impl<I: 'static, O: 'static> Ctx<I, O> {
    /// In replay, the deadline of the timer this call armed then, and whether the
    /// process's records go on past it (the timer fired, or a message came first:
    /// no waiting again). `None` when live.
    fn replay_timer(&mut self, what: &'static str) -> Option<(Time, bool)> {
        match self.replayed(|| Expect::Timer { what }) {
            Replayed::Timer { deadline, more } => Some((deadline, more)),
            _ => None,
        }
    }

    /// Arms a timer at `deadline`, journaled (when live).
    fn arm(&mut self, deadline: Time, journal: bool) {
        if journal {
            self.record(|| Call::Timer(deadline));
        }
        let me = self.me;
        self.k().arm_timer(me, deadline);
    }

    /// Suspends this process for `duration` of the scheduler's clock. A durable
    /// scheduler journals the deadline: a replay does not wait again for a sleep
    /// that ended, and one that a crash interrupted ends at its original deadline.
    pub fn sleep(&mut self, duration: std::time::Duration) {
        self.tick();
        match self.replay_timer("a sleep") {
            Some((_, true)) => return,
            // Its records end here: it waits live for the rest.
            Some((deadline, false)) => self.arm(deadline, false),
            None => {
                // SAFETY: the kernel outlives its coroutines.
                let deadline = unsafe { self.kernel.as_ref() }.clock.now() + duration;
                self.arm(deadline, true);
            }
        }
        while !self.p().timed_out() {
            if self.cannot_wait() {
                // Cut short: it cannot wait; nobody waits on its timer now.
                let me = self.me;
                self.k().cancel_timer(me);
                return;
            }
            self.suspend(Wait::Timer);
        }
        self.p().clear_timed_out();
    }

    /// Takes the head of the inbox, waiting at most `timeout` for one: `None` if
    /// none came in time. Journaled like [`Ctx::sleep`] and [`Ctx::receive`].
    pub fn receive_timeout(&mut self, timeout: std::time::Duration) -> Option<I> {
        self.tick();
        match self.replay_timer("a receive with a timeout") {
            Some((_, true)) => return self.replay_take("a receive with a timeout", true).flatten(),
            Some((deadline, false)) => self.arm(deadline, false),
            None => {
                // SAFETY: the kernel outlives its coroutines.
                let deadline = unsafe { self.kernel.as_ref() }.clock.now() + timeout;
                self.arm(deadline, true);
            }
        }
        loop {
            if let Some(m) = self.p().inbox.pop_front() {
                // Answered: nobody waits on the timer any more.
                let me = self.me;
                self.k().cancel_timer(me);
                self.p().clear_timed_out();
                self.took();
                self.journal_take(Some(&m));
                return Some(m);
            }
            if self.p().timed_out() || self.cannot_wait() {
                // (Cut short, nobody waits on its timer now.)
                let me = self.me;
                self.k().cancel_timer(me);
                self.p().clear_timed_out();
                self.journal_take(None);
                return None;
            }
            self.suspend(Wait::Message);
        }
    }
}
