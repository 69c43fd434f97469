//! Many cores: a [`Runtime`] runs one scheduler per core, each on a thread of
//! its own, over processes that send to each other wherever they are.
//!
//! ```
//! use chronoflow::runtime::{Placement, Runtime};
//! use chronoflow::{Ctx, Pid, Template};
//!
//! #[derive(Debug)]
//! enum Msg {
//!     Ping(Pid),
//!     Pong,
//! }
//!
//! let pong = Template::new("pong", |ctx: &mut Ctx<Msg>, rounds: u32| {
//!     for _ in 0..rounds {
//!         if let Msg::Ping(from) = ctx.receive() {
//!             ctx.send_to(from, Msg::Pong);
//!         }
//!     }
//! });
//! let ping = Template::new("ping", |ctx: &mut Ctx<Msg>, (to, rounds): (Pid, u32)| {
//!     for _ in 0..rounds {
//!         ctx.send_to(to, Msg::Ping(ctx.pid()));
//!         ctx.receive();
//!     }
//!     rounds
//! });
//! let rt = Runtime::with_cores(2).unwrap();
//! let p = rt.spawn_at(Placement::Core(0), &pong, 1000).unwrap();
//! let joiner = rt.spawn_joinable(Placement::Core(1), &ping, (p, 1000)).unwrap();
//! assert_eq!(joiner.join(), Ok(1000));
//! let report = rt.shutdown(std::time::Duration::from_secs(1));
//! assert!(report.killed().is_empty());
//! ```
//!
//! # How it works
//!
//! - **Cores.** Each core is a thread running its own kernel: its processes,
//!   their inboxes, timers and everything a `SimpleScheduler` has. A stackful
//!   process never leaves the core it was placed on ([`Placement`]); a
//!   stackless one of a migratable template may move ([Migration](#migration)).
//! - **Pids name their core** (the top bits, [`home`]), so a send finds its
//!   way without a table shared between threads. Pids are unique across the
//!   runtime and never reused.
//! - **Sends between processes of one core** take the single-core path,
//!   unchanged. **Sends to another core** join a batch for that core, sent at
//!   the end of the pass (or once 256 envelopes wait) through the core's
//!   lock-free queue (`crossbeam-queue`'s `SegQueue`, one per destination
//!   core); a core that sleeps is woken, one that runs is not disturbed.
//! - **Order.** Messages from one process to another arrive in the order
//!   sent, on one core or across two (per-sender FIFO, as Erlang promises).
//!   What a process's end, reply or result brings another (its DOWN, its
//!   EXIT, a call's reply, a joined result) comes after the messages it sent
//!   that process, as OTP orders signals: messages of it that wait for room
//!   in the inbox go in first, past its capacity (they are held in memory
//!   already, and a process waiting for the reply may read nothing until
//!   it comes). Nothing else is ordered between cores: two senders on two
//!   cores race.
//! - **Back-pressure across cores.** A message that finds its inbox full
//!   ([`Overflow::Backoff`](crate::Overflow::Backoff)) waits on its
//!   destination's core, in order, and its sender's core is told: the sender
//!   is then suspended (BACKOFF) at its next send to another core until every
//!   message it had waiting there went in. The notice goes at once, but a
//!   sender runs ahead of a full inbox by what it sends before the notice
//!   reaches it (typically the rest of its turn: at most a budget, 2,000
//!   sends); nothing is dropped or reordered. A message for a process not
//!   made yet (its spawn is on its way) waits for it, its sender told to
//!   wait as for a full inbox.
//! - **Spawning elsewhere** ([`Ctx::spawn_at`](crate::Ctx::spawn_at),
//!   [`RuntimeHandle::spawn_at`]) reserves the pid on the destination core at
//!   once; what is sent to that pid before the process is made waits for it
//!   (the toolkit's work for it too: a monitor, a link, a request).
//! - **Failures.** A panic in a process is that process's failure, as on one
//!   core; a panic of user code outside any process (a message's `Drop`) is
//!   caught by its core and reported ([`RuntimeReport::incidents`]). A core
//!   thread that dies anyway is reported, never waited on for good.
//!
//! # What works across cores
//!
//! - sends, with back-pressure, and placed spawns ([`Placement`]), linked
//!   or monitored from their start if asked
//!   ([`Ctx::spawn_link_at`](crate::Ctx::spawn_link_at),
//!   [`Ctx::spawn_monitor_at`](crate::Ctx::spawn_monitor_at));
//! - monitors, links, exit signals and trapped exits, with OTP's semantics
//!   (a DOWN or an EXIT with the reason; `noproc` for a process that had
//!   ended; `demonitor` and `unlink` cancel): each core keeps its half of a
//!   tie, and a process's end tells the cores it had ties with;
//! - timers (`send_after`) to a process of another core;
//! - joins from outside ([`Joiner`]);
//! - names: one registry for every core (`register`, `whereis`,
//!   `send_named`, [`RuntimeHandle::whereis`]); a name is freed when its
//!   process ends (a name given to a process of another core is the
//!   runtime's at once, and that core's once it takes it);
//! - process groups: one set for every core (`join_group` of a process of
//!   the joining core, `leave_group`, `members`, `send_group`,
//!   [`RuntimeHandle::members`]); a process leaves its groups when it ends;
//! - supervision: a supervisor's child placed on another core
//!   ([`ChildSpec::placed`](crate::otp::supervisor::ChildSpec::placed)) is
//!   restarted there, under its name, and stopped there.
//!
//! - calls: [`Ctx::call_across`](crate::Ctx::call_across) (and
//!   `call_across!` for a stackless process) calls a process of any core, its
//!   reply type `Send` (a plain `call` to another core's process gives
//!   [`CallError::OtherCore`](crate::CallError::OtherCore));
//! - typed requests, servers and agents, with their `_across` forms, whose
//!   requests and replies are `Send`:
//!   [`Ctx::request_across`](crate::Ctx::request_across) (and
//!   `request_across!` for a stackless process);
//!   [`ServerRef::call_across`](crate::otp::server::ServerRef::call_across),
//!   `call_across_timeout` and
//!   [`cast_across`](crate::otp::server::ServerRef::cast_across) (from a
//!   stackless process, `request_across!` of
//!   [`call_of`](crate::otp::server::ServerRef::call_of), and
//!   `cast_across_stackless`); an agent's
//!   [`get_across`](crate::otp::agent::Agent::get_across), `update_across`,
//!   `get_and_update_across` and `cast_across` (its value stays on its core;
//!   the functions and their answers travel). The request goes into the
//!   server's system queue on its core as a local one does; its reply, or
//!   its refusal, comes back; the caller monitors the server as a call does.
//!   [`ServerRef::stop`](crate::otp::server::ServerRef::stop) (and an
//!   agent's `stop`) works on any core. The plain forms give
//!   [`CallError::OtherCore`](crate::CallError::OtherCore) for a server of
//!   another core, and a plain `cast` there panics rather than lose its cast
//!   (its body is not `Send`).
//!
//! A child ([`Ctx::spawn`](crate::Ctx::spawn)) is spawned on its parent's
//! core: it gets a copy of every message its parent receives, which no other
//! core could give it cheaply. For a result from another core, a process
//! spawns with [`Ctx::spawn_joinable_at`](crate::Ctx::spawn_joinable_at) and
//! joins with [`Ctx::join_across`](crate::Ctx::join_across) (stackless:
//! `spawn_joinable_at` and `join_across!`): a top-level process whose `Send`
//! result its core gives to the joiner's core when it ends, behind what it
//! sent there.
//! The [`DurableScheduler`](crate::DurableScheduler) stays single-core.
//!
//! # Migration
//!
//! A core whose load is high moves some of its ready processes to the least
//! loaded core, now and then, as BEAM's schedulers balance their run queues
//! periodically (not by constant stealing). A core's load is the most
//! processes that wanted to run in one of its passes lately (0 once it
//! sleeps). Each core checks once per 16 passes (or 1,024 turns) that ran
//! something, at least 1 ms of its thread's busy time apart; when its
//! turns averaged 2 us or more over that time (a compute-bound load: for
//! short turns, the crossing of cores that a move adds to each message sent
//! to the process costs more than spreading gains), its load is at least 4
//! and more than the least loaded core's plus 2, it moves up to half the
//! difference (at most 16) there. On by default
//! ([`RuntimeHandle::set_migration`]); a runtime of one core never
//! migrates. [`RuntimeHandle::core_of`] tells where a process is,
//! [`RuntimeHandle::moved_in`] how many processes each core received.
//!
//! Only stackless processes of a
//! [`StacklessTemplate::migratable`](crate::StacklessTemplate::migratable)
//! template move (their coroutine is `Send`: the compiler checked it), and
//! only while nothing ties them to their core: top-level (no parent, no
//! children), ready and not running, no link, monitor, trapped exit, name or
//! group (nothing of theirs in the toolkit's tables; a call in progress
//! monitors its server), no timer armed by them (`send_after`,
//! `start_timer`, ever: their ids are their core's) nor for them (`sleep`,
//! a receive's timeout), no exit signal or system message pending, no
//! sender waiting for room in their inbox, and no message of theirs or for
//! them waiting for room across cores. Everything else stays. A process
//! never moves back to a core it has been on (its home included), so with
//! `n` cores it moves at most `n - 1` times.
//!
//! A moved process keeps its pid, inbox (in order), options and result:
//! its joiner gets it, its failure is its own. What is sent to it goes to
//! its pid's home core as before and follows it from there, through the
//! cores it left; its new core's own processes find it at once. Per-sender
//! order holds through a move: the new core inserts the process only once a
//! fence it sent down that line comes back, holding meanwhile what its own
//! processes send it. Each core remembers where the processes that left it
//! went, until a moved process ends: its core then tells the line to forget
//! it (so the entries follow the live moved processes, not every process
//! that ever moved). A process on its way when the runtime shuts down is put
//! in at once and stopped with the others.
//!
//! # Determinism
//!
//! A `SimpleScheduler` run is deterministic; a `Runtime` run is not: the
//! cores run in parallel, and what is ordered is what is said above
//! (per-sender FIFO, a tie before what follows it from the same process).

mod ctx;
mod envelope;
mod join;
mod join_across;
mod local;
mod migrate;
mod pid;
mod placement;
mod shared;
mod spawn;
mod supervise;
mod worker;

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::error::{SendError, SpawnError};
use crate::kernel::Undelivered;
use crate::otp::ShutdownReport;
use crate::sender::Sender;
use crate::signal::{Payload, Pid};
use crate::template::Spawnable;

pub use join::{JoinFailed, Joiner};
pub use join_across::Joinable;
pub use pid::home;
pub use placement::Placement;
pub use shared::Incident;

use envelope::Envelope;
use shared::Shared;
use worker::Worker;

/// The environment variable that sets how many cores
/// [`Runtime::new`] uses.
pub const CORES_VAR: &str = "CHRONOFLOW_CORES";

/// A multi-core runtime: one scheduler per core, each on its own thread,
/// for processes that exchange messages of type `M` (see the [module
/// docs](self)).
///
/// Dropping it shuts it down with no time given: every process is asked to
/// stop (one that does not trap exits ends at once, with `Shutdown`), and
/// what is left is killed; see [`shutdown`](Self::shutdown) to give them
/// time, and for the report.
pub struct Runtime<M: Send + 'static> {
    handle: RuntimeHandle<M>,
    /// Where each core's report comes when its loop ends.
    ends: Vec<CoreEnd>,
    /// The cores' threads, when the runtime started them.
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// A core's loop, for [`Runtime::with_cores_run_by`] to run on a thread.
pub type CoreLoop = Box<dyn FnOnce() + Send>;

/// Where a core's report comes, and which core it is.
struct CoreEnd {
    report: std::sync::mpsc::Receiver<Result<ShutdownReport, String>>,
    /// The runtime's shared state, by address (to tell its core threads).
    shared: usize,
    core: usize,
}

/// A `Send + Sync + Clone` handle on a [`Runtime`], for other threads:
/// spawns and sends from outside.
pub struct RuntimeHandle<M: Send + 'static> {
    shared: Arc<Shared<M>>,
    senders: Arc<[Sender<M>]>,
}

impl<M: Send + 'static> Clone for RuntimeHandle<M> {
    fn clone(&self) -> Self {
        RuntimeHandle {
            shared: self.shared.clone(),
            senders: self.senders.clone(),
        }
    }
}

impl<M: Send + 'static> fmt::Debug for RuntimeHandle<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeHandle")
            .field("cores", &self.shared.cores.len())
            .finish()
    }
}

/// How many cores `CHRONOFLOW_CORES` asks for (a positive integer), else
/// how many the machine has.
pub fn default_cores() -> usize {
    std::env::var(CORES_VAR)
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

impl<M: Send + 'static> Runtime<M> {
    /// A runtime of [`default_cores`] cores: `CHRONOFLOW_CORES` if set, else
    /// every core of the machine.
    pub fn new() -> std::io::Result<Self> {
        Self::with_cores(default_cores())
    }

    /// A runtime of `cores` cores (at least one; at most 65,536), each a
    /// thread named `chronoflow-core-N`. Fails only if a thread cannot be
    /// started.
    pub fn with_cores(cores: usize) -> std::io::Result<Self> {
        let mut threads = Vec::with_capacity(cores);
        let mut rt = Self::with_cores_run_by(cores, |me, run| {
            let thread = std::thread::Builder::new()
                .name(format!("chronoflow-core-{me}"))
                .spawn(run)?;
            threads.push(thread);
            Ok(())
        })?;
        rt.threads = threads;
        Ok(rt)
    }

    /// A runtime of `cores` cores whose threads are the caller's: `start` is
    /// given each core's index and its loop, to run on a thread of its own
    /// (one that may block: the loop sleeps there while it has nothing to
    /// do), at once. The loop returns once the runtime is shut down. This
    /// waits until every core runs; an error of `start` stops the cores
    /// started and is returned.
    ///
    /// ```
    /// use chronoflow::runtime::Runtime;
    ///
    /// let mut threads = Vec::new();
    /// let rt = Runtime::<u64>::with_cores_run_by(2, |me, run| {
    ///     threads.push(std::thread::Builder::new().name(format!("mine-{me}")).spawn(run)?);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// assert_eq!(rt.cores(), 2);
    /// drop(rt);
    /// for t in threads {
    ///     t.join().unwrap();
    /// }
    /// ```
    pub fn with_cores_run_by(
        cores: usize,
        mut start: impl FnMut(usize, CoreLoop) -> std::io::Result<()>,
    ) -> std::io::Result<Self> {
        let cores = cores.clamp(1, pid::MAX_CORES);
        let shared = Arc::new(Shared::<M>::new(cores));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let mut ends = Vec::with_capacity(cores);
        for me in 0..cores {
            let mine = shared.clone();
            let ready = ready_tx.clone();
            let (end_tx, end_rx) = std::sync::mpsc::channel();
            let run: CoreLoop = Box::new(move || {
                let outcome = catch_unwind(AssertUnwindSafe(|| {
                    let (worker, sender) = Worker::new(mine, me);
                    let _ = ready.send((me, sender));
                    worker.run()
                }));
                let _ = end_tx.send(outcome.map_err(|payload| {
                    let what = crate::kernel::pass::panic_message(&*payload);
                    crate::kernel::pass::forget_quietly(payload);
                    what
                }));
            });
            ends.push(CoreEnd {
                report: end_rx,
                shared: Arc::as_ptr(&shared) as usize,
                core: me,
            });
            if let Err(e) = start(me, run) {
                stop_cores(&shared, ends, Duration::ZERO);
                return Err(e);
            }
        }
        drop(ready_tx);
        let mut senders: Vec<Option<Sender<M>>> = (0..cores).map(|_| None).collect();
        for (me, sender) in ready_rx.iter().take(cores) {
            senders[me] = Some(sender);
        }
        if senders.iter().any(Option::is_none) {
            stop_cores(&shared, ends, Duration::ZERO);
            return Err(std::io::Error::other("a core's thread died while starting"));
        }
        let senders: Arc<[Sender<M>]> = senders.into_iter().map(|s| s.expect("checked")).collect();
        Ok(Runtime {
            handle: RuntimeHandle { shared, senders },
            ends,
            threads: Vec::new(),
        })
    }

    /// A handle for other threads.
    pub fn handle(&self) -> RuntimeHandle<M> {
        self.handle.clone()
    }

    /// Shuts the runtime down within `timeout`: every core asks its trees to
    /// stop (as [`SimpleScheduler::shutdown`](crate::SimpleScheduler::shutdown)
    /// does, messages between cores still flowing), kills what is left at
    /// the deadline, and its thread ends. Returns what each core stopped and
    /// killed, the threads that died, what could not be delivered and the
    /// incidents.
    pub fn shutdown(mut self, timeout: Duration) -> RuntimeReport<M> {
        self.stop(timeout)
    }

    fn stop(&mut self, timeout: Duration) -> RuntimeReport<M> {
        let ends = std::mem::take(&mut self.ends);
        let shared = &self.handle.shared;
        let cores = stop_cores(shared, ends, timeout);
        // Its threads are joined (they end once their reports are sent), but
        // the caller's own, if it is one of them.
        let me = std::thread::current().id();
        for thread in std::mem::take(&mut self.threads) {
            if thread.thread().id() != me {
                let _ = thread.join();
            }
        }
        // What came for cores that had stopped: kept, never dropped unseen.
        let mut undelivered =
            std::mem::take(&mut *shared.undelivered.lock().unwrap_or_else(|e| e.into_inner()));
        for (index, core) in shared.cores.iter().enumerate() {
            while let Some(batch) = core.inbound.pop() {
                for envelope in batch {
                    if let Envelope::Msg { from, to, msg } = envelope {
                        undelivered.push(Undelivered {
                            from,
                            to: Some(to),
                            reason: crate::UndeliveredReason::Stopped,
                            msg,
                        });
                    } else if let Envelope::Migrate(moving) = envelope {
                        let (pid, msgs) = migrate::lost(*moving);
                        undelivered.extend(msgs);
                        shared.incident(
                            index,
                            format!("process {pid} was moving to a core that had stopped: dropped"),
                        );
                    } else {
                        if let Envelope::Spawn { pid, .. } = &envelope {
                            shared.incident(
                                home(*pid),
                                format!("spawn of {pid} not made: its core had stopped"),
                            );
                        }
                        crate::kernel::pass::drop_quietly(envelope);
                    }
                }
            }
        }
        let incidents =
            std::mem::take(&mut *shared.incidents.lock().unwrap_or_else(|e| e.into_inner()));
        RuntimeReport {
            cores,
            undelivered,
            incidents,
        }
    }
}

/// Stops the cores and waits for their loops to end: each core's report, or
/// `Err` with the panic message of a loop that died. A core whose loop is the
/// caller's own thread (the runtime dropped by one of its processes) is not
/// waited for: it stops once the caller returns to it.
fn stop_cores<M>(
    shared: &Shared<M>,
    ends: Vec<CoreEnd>,
    timeout: Duration,
) -> Vec<Result<ShutdownReport, String>> {
    let nanos = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
    shared.stop_within.store(nanos, Ordering::Release);
    shared.stopping.store(true, Ordering::Release);
    for core in shared.cores.iter() {
        core.wake();
    }
    let here = worker::current_core();
    ends.into_iter()
        .map(|end| {
            if here == Some((end.shared, end.core)) {
                return Err("stopped from its own thread: not waited for".to_string());
            }
            end.report
                .recv()
                .unwrap_or_else(|_| Err("its loop ended without a report".to_string()))
        })
        .collect()
}

impl<M: Send + 'static> std::ops::Deref for Runtime<M> {
    type Target = RuntimeHandle<M>;

    fn deref(&self) -> &RuntimeHandle<M> {
        &self.handle
    }
}

impl<M: Send + 'static> Drop for Runtime<M> {
    fn drop(&mut self) {
        if !self.ends.is_empty() {
            let report = self.stop(Duration::ZERO);
            for msg in report.undelivered {
                crate::kernel::pass::drop_quietly(msg);
            }
        }
    }
}

impl<M: Send + 'static> fmt::Debug for Runtime<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("cores", &self.handle.shared.cores.len())
            .finish()
    }
}

impl<M: Send + 'static> RuntimeHandle<M> {
    /// How many cores the runtime has.
    pub fn cores(&self) -> usize {
        self.shared.cores.len()
    }

    /// Spawns a process from `template` with `args` on the core `at` picks
    /// ([`Placement::Local`] means round-robin from outside). Its result is
    /// not kept. The pid is good at once: what is sent to it waits for the
    /// process. A spawn that then fails on its core (no stack could be
    /// mapped) is reported in the incidents.
    pub fn spawn_at<A, R, T>(&self, at: Placement, template: &T, args: A) -> Result<Pid, SpawnError>
    where
        A: Send + 'static,
        R: Payload,
        T: Spawnable<M, M, A, R> + Clone + Send + 'static,
    {
        let core = self.place(at)?;
        let pid = self.shared.cores[core].reserve();
        let make = spawn::detached(pid, template, args);
        self.shared.post_one(core, Envelope::Spawn { pid, make });
        Ok(pid)
    }

    /// [`spawn_at`](Self::spawn_at) round-robin.
    pub fn spawn<A, R, T>(&self, template: &T, args: A) -> Result<Pid, SpawnError>
    where
        A: Send + 'static,
        R: Payload,
        T: Spawnable<M, M, A, R> + Clone + Send + 'static,
    {
        self.spawn_at(Placement::RoundRobin, template, args)
    }

    /// [`spawn_at`](Self::spawn_at), keeping the result for a [`Joiner`].
    pub fn spawn_joinable<A, R, T>(
        &self,
        at: Placement,
        template: &T,
        args: A,
    ) -> Result<Joiner<R>, SpawnError>
    where
        A: Send + 'static,
        R: Payload + Send,
        T: Spawnable<M, M, A, R> + Clone + Send + 'static,
    {
        let core = self.place(at)?;
        let pid = self.shared.cores[core].reserve();
        let (joiner, fill) = join::pair(pid);
        let make = spawn::joinable(pid, template, args, fill);
        self.shared.post_one(core, Envelope::Spawn { pid, make });
        Ok(joiner)
    }

    fn place(&self, at: Placement) -> Result<usize, SpawnError> {
        if self.shared.stopping.load(Ordering::Acquire) {
            return Err(SpawnError::ShuttingDown);
        }
        at.pick(&self.shared, None)
    }

    /// Sends `msg` to `pid` from outside, without waiting: as
    /// [`Sender::try_send`] to the pid's core (at most a capacity of
    /// messages in flight per core; [`SendError::Full`] gives the message
    /// back beyond it). A pid of no core gives [`SendError::UnknownPid`].
    pub fn try_send(&self, pid: Pid, msg: M) -> Result<(), SendError<M>> {
        match self.senders.get(home(pid)) {
            Some(sender) => sender.try_send(pid, msg),
            None => Err(SendError::UnknownPid(pid, msg)),
        }
    }

    /// [`try_send`](Self::try_send), blocking the thread while the pid's
    /// core has a capacity of messages in flight.
    ///
    /// # Panics
    /// On a core's own thread (from a process), which would wait for itself:
    /// there use the process's own sends.
    pub fn send_blocking(&self, pid: Pid, msg: M) -> Result<(), SendError<M>> {
        let Some(sender) = self.senders.get(home(pid)) else {
            return Err(SendError::UnknownPid(pid, msg));
        };
        let msg = match sender.try_send(pid, msg) {
            Err(SendError::Full(msg)) => msg,
            sent => return sent,
        };
        // It must wait: never on any core's thread, whose core would stop
        // meanwhile (two cores that wait for room in each other's mail would
        // wait for good).
        assert!(
            !self.senders.iter().any(Sender::on_kernel_thread),
            "RuntimeHandle::send_blocking would wait for room on a core's own thread, \
             which may make the room: it could wait for good (use the process's own sends)"
        );
        sender.send_blocking(pid, msg)
    }

    /// Takes the messages that could not be delivered so far, from every
    /// core (each core hands them over after its passes).
    pub fn take_undelivered(&self) -> Vec<Undelivered<M>> {
        std::mem::take(
            &mut *self
                .shared
                .undelivered
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        )
    }

    /// The process registered as `name` (from any core: names are the
    /// runtime's, OTP's `whereis/1`).
    pub fn whereis(&self, name: &str) -> Option<Pid> {
        self.shared.names.get(name)
    }

    /// The members of process group `group`, from every core, in the order
    /// they joined (OTP's `pg:get_members/1`).
    pub fn members(&self, group: &str) -> Vec<Pid> {
        let groups = self
            .shared
            .groups
            .0
            .read()
            .unwrap_or_else(|e| e.into_inner());
        groups.get(group).cloned().unwrap_or_default()
    }

    /// Turns migration on or off (on by default): whether the cores
    /// balance their run queues by moving processes of
    /// [`StacklessTemplate::migratable`](crate::StacklessTemplate::migratable)
    /// templates (see [the module docs](self#migration)). Off, a process
    /// moves no more (those that moved stay where they are). A runtime of
    /// one core never migrates.
    pub fn set_migration(&self, on: bool) {
        self.shared.migration.store(on, Ordering::Relaxed);
    }

    /// Whether migration is on ([`set_migration`](Self::set_migration)).
    pub fn migration(&self) -> bool {
        self.shared.migration.load(Ordering::Relaxed)
    }

    /// The core that holds the process `pid` (or held it last, if it
    /// ended): its [`home`], unless it moved (migration). A moving process
    /// is where it was until it is in its new core.
    pub fn core_of(&self, pid: Pid) -> usize {
        self.shared.core_of(pid)
    }

    /// How many processes moved to each core so far (migration).
    pub fn moved_in(&self) -> Vec<u64> {
        self.shared
            .cores
            .iter()
            .map(|c| c.moved_in.load(Ordering::Relaxed))
            .collect()
    }

    /// How many live processes each core had at its last count.
    pub fn loads(&self) -> Vec<usize> {
        self.shared
            .cores
            .iter()
            .map(|c| c.live.load(Ordering::Relaxed))
            .collect()
    }
}

/// What a [`Runtime::shutdown`] did.
pub struct RuntimeReport<M> {
    /// Per core: what its shutdown stopped and killed, or the panic message of
    /// its thread if it died.
    pub cores: Vec<Result<ShutdownReport, String>>,
    /// Messages not delivered: kept by the cores, and those still on their way
    /// between cores when they stopped (reason
    /// [`Stopped`](crate::UndeliveredReason::Stopped)).
    pub undelivered: Vec<Undelivered<M>>,
    /// Failed spawns and panics of user code outside processes.
    pub incidents: Vec<Incident>,
}

impl<M> RuntimeReport<M> {
    /// Every process killed at the deadline, on every core.
    pub fn killed(&self) -> Vec<(Pid, String)> {
        self.cores
            .iter()
            .flatten()
            .flat_map(|r| r.killed.iter().cloned())
            .collect()
    }

    /// The cores whose threads died, with their panic messages.
    pub fn dead_cores(&self) -> Vec<(usize, String)> {
        self.cores
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.as_ref().err().map(|e| (i, e.clone())))
            .collect()
    }
}

impl<M> fmt::Debug for RuntimeReport<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeReport")
            .field("cores", &self.cores)
            .field("undelivered", &self.undelivered.len())
            .field("incidents", &self.incidents)
            .finish()
    }
}
