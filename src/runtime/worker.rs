//! One core's thread: its own `SimpleScheduler`, driven in a loop that takes
//! what other cores sent, runs a pass, and sends what the pass sent them;
//! asleep when there is nothing to do, until a batch, a waker or a timer
//! comes.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{Ordering, fence};
use std::time::Duration;

use crate::kernel::pass::{Idle, forget_quietly, panic_message};
use crate::otp::ShutdownReport;
use crate::runtime::local::{self, Local, local};
use crate::runtime::pid;
use crate::runtime::shared::Shared;
use crate::scheduler::SimpleScheduler;
use crate::sender::Sender;
use crate::signal::Pid;

thread_local! {
    /// The core this thread runs, if any: its runtime's shared state (by
    /// address) and its index.
    static CORE: std::cell::Cell<Option<(usize, usize)>> = const { std::cell::Cell::new(None) };
}

/// The core the current thread runs (see [`CORE`]).
pub(crate) fn current_core() -> Option<(usize, usize)> {
    CORE.with(|c| c.get())
}

/// How long an idle core polls for work before it sleeps.
const SPIN: Duration = Duration::from_micros(20);

/// One core: its thread's scheduler, and what it shares.
pub(crate) struct Worker<M: Send + 'static> {
    sched: SimpleScheduler<M>,
    shared: Arc<Shared<M>>,
    me: usize,
}

impl<M: Send + 'static> Worker<M> {
    /// Core `me`'s scheduler, set up on its own thread: its part of the pid
    /// space, its remote hook, its side of the runtime; and the sender through
    /// which outside threads send to it.
    pub(crate) fn new(shared: Arc<Shared<M>>, me: usize) -> (Worker<M>, Sender<M>) {
        let mut sched = SimpleScheduler::new();
        let k = sched.kernel_mut();
        k.join_space(shared.space);
        k.set_pid_space(pid::first_made(me), 2);
        k.set_remote(crate::kernel::remote::Remote {
            route: local::remote::<M>,
            elsewhere: local::elsewhere::<M>,
            run_at: local::run_at::<M>,
        });
        k.extensions
            .get_or_insert_with(|| Local::new(shared.clone(), me));
        // (One registry, and one set of groups, for every core.)
        k.extensions.get_or_insert_with(|| shared.names.clone());
        k.extensions.get_or_insert_with(|| shared.groups.clone());
        let _ = shared.cores[me].wakes.set(k.wakes.clone());
        let sender = sched.sender();
        (Worker { sched, shared, me }, sender)
    }

    /// Runs until the runtime stops, then shuts the core down.
    pub(crate) fn run(mut self) -> ShutdownReport {
        CORE.with(|c| c.set(Some((Arc::as_ptr(&self.shared) as usize, self.me))));
        while !self.shared.stopping.load(Ordering::Acquire) {
            if !self.step() {
                self.sleep(None);
            }
        }
        let report = self.shut_down();
        // (The thread may be the caller's, and run other work after.)
        CORE.with(|c| c.set(None));
        report
    }

    /// Takes what came, runs one pass, sends what it sent: whether anything
    /// happened.
    fn step(&mut self) -> bool {
        let k = self.sched.kernel_mut();
        let took = local::take_inbound(k);
        if local(k).has_parked() {
            local::retry_parked(k);
        }
        crate::runtime::migrate::settle_fenced(k);
        let ran = match catch_unwind(AssertUnwindSafe(|| self.sched.update())) {
            Ok(pass) => pass.ran,
            Err(payload) => {
                // User code that the scheduler ran outside any process (a
                // message's `Drop`): caught and resumed by the pass, once
                // the scheduler is consistent. The core goes on.
                self.caught(payload);
                1
            }
        };
        let k = self.sched.kernel_mut();
        // What the pass sent goes before the results it gave: whoever
        // learns that a process ended can count on what it sent being on
        // its way.
        local(k).flush();
        local::hand_results(k);
        local(k).flush();
        if !k.undelivered.is_empty() {
            let kept = std::mem::take(&mut k.undelivered);
            self.shared
                .undelivered
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(kept);
        }
        let core = &self.shared.cores[self.me];
        core.live.store(k.live(), Ordering::Relaxed);
        if ran > 0 && self.shared.cores.len() > 1 {
            // Its load for the others to see; now and then, a balance check
            // (it may ship processes: sent at once, not at the end of the
            // next pass).
            crate::runtime::migrate::tick(k, ran);
            local(k).flush();
        }
        took || ran > 0
    }

    /// Waits until a batch, a waker, mail from outside or the next timer
    /// comes (or `limit` passes).
    fn sleep(&mut self, limit: Option<Duration>) {
        let core = &self.shared.cores[self.me];
        // A short spin first: a core that talks with another gets its answer
        // within microseconds, sooner than a sleep and a wake-up (some
        // microseconds each) would bring it. (BEAM's schedulers spin too.)
        let spin_until = std::time::Instant::now() + SPIN;
        let wakes = &self.sched.kernel().wakes;
        while core.inbound.is_empty() && !wakes.is_woken() {
            if std::time::Instant::now() >= spin_until {
                break;
            }
            // (Yielding, not spinning: on a machine with more threads than
            // cores, the thread that would answer may need this one's.)
            std::thread::yield_now();
        }
        if !core.inbound.is_empty() || wakes.is_woken() {
            return;
        }
        core.sleeping.store(true, Ordering::Relaxed);
        // Pairs with the fence in `Core::post`.
        fence(Ordering::SeqCst);
        if core.inbound.is_empty() && !self.shared.stopping.load(Ordering::Acquire) {
            let k = self.sched.kernel_mut();
            crate::runtime::migrate::idle(k);
            let until = match k.idle() {
                Idle::Wait(until) => until,
                Idle::Done => None,
            };
            let until = match (until, limit) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            k.wakes.wait_nonempty(until);
        }
        core.sleeping.store(false, Ordering::Relaxed);
    }

    /// Stops every process of the core, within the runtime's shutdown time:
    /// asked first (trees stopped as a `SimpleScheduler` shutdown stops them),
    /// killed at the deadline. The other cores are shutting down meanwhile:
    /// messages between them still flow.
    fn shut_down(mut self) -> ShutdownReport {
        let within = Duration::from_nanos(self.shared.stop_within.load(Ordering::Acquire));
        let started = std::time::Instant::now();
        // What was sent before the shutdown began is taken first: the spawns
        // accepted then are made (and stopped with the rest), and processes
        // on their way here are put in at once (their fences may not come
        // back: the core they would come back from may be done).
        self.step();
        crate::runtime::migrate::settle_all(self.sched.kernel_mut());
        let before = crate::otp::shutdown::alive(self.sched.kernel_mut());
        // (Processes ended here and below run user code: the `Drop` of their
        // inboxes' messages, whose panics the scheduler resumes. Each is an
        // incident; the shutdown goes on.)
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| self.sched.ask_to_stop())) {
            self.caught(payload);
        }
        loop {
            if crate::otp::shutdown::alive(self.sched.kernel_mut()).is_empty() {
                break;
            }
            let left = within.saturating_sub(started.elapsed());
            if left.is_zero() {
                break;
            }
            if !self.step() {
                self.sleep(Some(left));
            }
        }
        let report = self.kill_the_rest(before);
        self.step();
        // Outside senders are refused from now on; what they sent since the
        // last pass is kept.
        self.sched.kernel_mut().close_mail(false);
        self.step();
        // What still waits here can no longer be delivered: messages for a
        // process whose spawn never came (its core stopped first), and for
        // room that will not come. Kept, never dropped unseen.
        let k = self.sched.kernel_mut();
        let left = local::leftovers(k);
        if !left.is_empty() {
            self.shared
                .undelivered
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(left);
        }
        report
    }

    /// Kills what is still alive and reports, catching the panics of user
    /// code on the way (each an incident): the kill goes on after one.
    fn kill_the_rest(&mut self, before: Vec<Pid>) -> ShutdownReport {
        let remaining = crate::otp::shutdown::alive(self.sched.kernel_mut());
        let killed: Vec<(Pid, String)> = remaining
            .iter()
            .map(|&pid| (pid, self.sched.name(pid).unwrap_or_default().to_string()))
            .collect();
        // Each try that panics has ended a process, or run the last pass.
        for _ in 0..remaining.len() + 2 {
            let pids = before.clone();
            match catch_unwind(AssertUnwindSafe(|| self.sched.kill_the_rest(pids, true))) {
                Ok(_) => break,
                Err(payload) => self.caught(payload),
            }
        }
        ShutdownReport {
            drained: true,
            stopped: before
                .iter()
                .filter(|p| remaining.binary_search(p).is_err())
                .count(),
            killed,
        }
    }

    /// A panic of user code that the scheduler resumed outside any process:
    /// an incident.
    fn caught(&self, payload: Box<dyn std::any::Any + Send>) {
        let what = panic_message(&*payload);
        forget_quietly(payload);
        self.shared
            .incident(self.me, format!("panic outside a process: {what}"));
    }
}
