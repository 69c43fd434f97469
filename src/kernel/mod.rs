//! The kernel: processes, their inboxes and pids, the pass loop, delivery and
//! back-pressure, the process tree, timers and wakes, and signal recording. It is
//! shared by the scheduler and standalone processes, and knows nothing above it:
//! processes run through the engine boundary ([`engine`]), and what a layer above
//! needs to see or answer goes through its [`hooks`].
//!
//! Every process lives in a record of the kernel's slab (`PPtr`), reached by the
//! kernel through its pid and by its own context through a pointer. The kernel
//! itself is heap-allocated and never moves. All access goes through raw pointers
//! with short-lived references: only one coroutine runs at a time, and the kernel
//! holds no reference across a resume or a stop. User code that the kernel calls
//! while it holds one (a sink, a message's `Clone` or `Drop`, a clock) cannot
//! reach the kernel: a stackful context is borrowed by its body, and a stackless
//! one refuses to be used outside its process's turn or inside one of its own
//! calls.
//!
//! One file per concept:
//!
//! | file | concept |
//! |---|---|
//! | `proc.rs`, `slab.rs`, `pidtable.rs` | process records, where they live, pid lookup |
//! | `lifecycle.rs` | creation, start, end, reaping |
//! | `pass.rs`, `ready.rs` | the pass loop, the budget, the ready queue |
//! | `engine.rs`, `blocks.rs` | the engine boundary, engine memory kept for the next engine |
//! | `hooks.rs` | what a layer above (durability) is told of, and answers |
//! | `deliver.rs`, `inbox.rs` | delivery, back-pressure, undelivered messages |
//! | `tree.rs` | children, join, kill |
//! | `time.rs` | timers, effect wakes |
//! | `system.rs` | system messages, exit signals, end notices (for the layer of links and monitors) |
//! | `mail.rs` | messages from other threads, with back-pressure |
//! | `results.rs` | results of top-level processes, freed with their handles |
//! | `record.rs` | signal recording |
//! | `extensions.rs` | per-kernel state of the engines and layers above |
//! | `idmap.rs` | hash maps keyed by pids and timer ids |
//! | `remote.rs` | pids held elsewhere: the hook of a layer with several kernels |
//! | `migrate.rs` | a process taken out of one kernel and put into another of its space |

pub(crate) mod blocks;
pub(crate) mod deliver;
pub(crate) mod engine;
pub(crate) mod extensions;
pub(crate) mod held;
pub(crate) mod hooks;
pub(crate) mod idmap;
pub(crate) mod inbox;
pub(crate) mod lifecycle;
pub(crate) mod mail;
pub(crate) mod migrate;
pub(crate) mod options;
pub(crate) mod pass;
pub(crate) mod pidtable;
pub(crate) mod proc;
pub(crate) mod ready;
pub(crate) mod record;
pub(crate) mod remote;
pub(crate) mod results;
pub(crate) mod slab;
pub(crate) mod sysmsg;
pub(crate) mod system;
pub(crate) mod time;
pub(crate) mod tree;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::clock::{Clock, SystemClock, Time};
use crate::error::ExitError;
use crate::signal::{Pid, Signal};

use blocks::Blocks;
pub(crate) use deliver::{DeliverOut, Outbound, Sent, unrecorded};
pub use deliver::{Undelivered, UndeliveredReason};
pub(crate) use engine::{BoxedEngine, Dispatch, Ended, Engine, Space, Turn};
use extensions::Extensions;
pub(crate) use hooks::Hooks;
pub(crate) use idmap::IdMap;
pub(crate) use lifecycle::Finished;
use pidtable::PidTable;
pub(crate) use proc::{PPtr, Proc};
pub use proc::{Status, Wait};
use ready::ReadyQueue;
pub(crate) use record::Recording;
use slab::Slab;
pub(crate) use sysmsg::SysMsg;
use time::WakeQueue;

/// Work a process may do in one turn (receives, sends, spawns) before it yields to
/// the others.
pub const DEFAULT_BUDGET: u32 = 2000;

static KERNEL_IDS: AtomicU64 = AtomicU64::new(1);

/// An id no kernel and no pid space had (kernels and spaces share the count).
pub(crate) fn fresh_id() -> u64 {
    KERNEL_IDS.fetch_add(1, Ordering::Relaxed)
}

/// Who may spawn processes: a scheduler shutting down refuses its owner's
/// spawns first, then every spawn.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Spawns {
    Open,
    /// Processes only (from their turns).
    ProcessesOnly,
    Closed,
}

pub(crate) struct Kernel<I, O> {
    /// Its pid space: an id of its own (unique in the program), or a space it joined with kernels of the
    /// same types (a runtime's cores: `join_space`). Tells a stackless context
    /// whether a turn is its process's.
    pub(crate) space: u64,
    /// This kernel's own address: the root pointer made when it was boxed, that
    /// its owner keeps. Pointers kept across calls (a stackless context's) are
    /// copies of it, never derived from a `&mut Kernel`, so that the owner's
    /// later references (re-derived from the same root) leave them valid.
    pub(crate) this: NonNull<Self>,
    procs: PidTable<PPtr<I, O>>,
    /// Where the process records live.
    records: Slab<Proc<I, O>>,
    ready: ReadyQueue<I, O>,
    next_pid: u64,
    /// How far apart the pids handed out are (1, but in a runtime of several
    /// kernels, which share the pid space).
    pid_step: u64,
    /// The pid the next spawn gets, chosen by a layer above (`with_pid`).
    pid_override: Option<Pid>,
    /// Takes messages for pids this kernel does not hold (`remote.rs`).
    remote: Option<remote::Remote<I, O>>,
    /// `u64::MAX` was handed out: there is no next pid.
    pids_exhausted: bool,
    /// A spawn must ask first: the pids are exhausted, or spawns are closed
    /// (one test per spawn for both).
    spawn_gate: bool,
    /// Per-kernel state of the engines and layers above (a stack pool).
    pub(crate) extensions: Extensions,
    /// The memory of engines that ended, for the next engines.
    pub(crate) blocks: Blocks,
    /// Template names as records hold them.
    names: proc::Names,
    pub(crate) recording: Recording<I, O>,
    /// Record the signals of processes being replayed (marked so) too.
    pub(crate) replay_signals: bool,
    /// Signals recorded in `Recording::Buffer` mode, until pulled.
    buffer: Vec<Signal<I, O>>,
    /// Clones inbound messages for children; set by the first spawn (which needs
    /// `I: Clone`).
    pub(crate) clone_in: Option<fn(&I) -> I>,
    /// Clones outbound messages for SEND signals while delivering them; set when a
    /// sink is attached to a routing kernel (which needs `O: Clone`).
    pub(crate) clone_out: Option<fn(&O) -> O>,
    outbound: Outbound<I, O>,
    pub(crate) undelivered: Vec<Undelivered<O>>,
    pub(crate) finished: BTreeMap<Pid, Finished>,
    /// Where the results of some top-level processes go when they end,
    /// instead of `finished` (see [`results::ResultSink`]).
    sinks: IdMap<Pid, results::ResultSink<I, O>>,
    pub(crate) wakes: Arc<WakeQueue>,
    woken: Vec<Pid>,
    /// Mail from other threads (made by the first `Sender`).
    pub(crate) postbox: Option<mail::Postbox<I>>,
    /// Delivers it (set with it: only a routing kernel has mail).
    deliver_mail_fn: Option<fn(&mut Kernel<I, O>)>,
    /// Mail waits for room in an inbox: try again at each pass.
    pub(crate) mail_parked: bool,
    pub(crate) effects_pending: usize,
    pub(crate) budget: u32,
    /// What a layer above (durability) is told of and answers: none for a plain
    /// scheduler.
    pub(crate) hooks: Option<Box<dyn Hooks<I, O>>>,
    pub(crate) clock: Box<dyn Clock>,
    /// Armed timers: deadline, timer id, process. An entry whose process no
    /// longer waits on it (its `Extra::timer` is another id) is stale: the top is
    /// never stale, and stale entries are at most about as many as live ones.
    timers: BinaryHeap<Reverse<(Time, u64, Pid)>>,
    /// Live (armed, not fired, not cancelled) timers, in `timers` and `fresh`.
    armed: usize,
    /// Timers armed during the current pass's turns, not yet in `timers`, in
    /// the order armed (their ids increase), with a timed send's message.
    /// Their deadlines are set from a clock read
    /// taken after their turns (at the next pass's start, or when the run
    /// ends), so that none fires early though their turns read no clock (see
    /// `Kernel::arm_send_after`). Stale entries as in `timers`.
    fresh: Vec<time::Fresh<I>>,
    /// Messages that timers deliver (`send_after`), by timer id, with their
    /// deadlines (those armed in the current pass wait in `fresh`, with their
    /// timers).
    pub(crate) timed: IdMap<u64, (time::Due, time::Timed<I>)>,
    /// Timed messages whose process had ended when they fired.
    pub(crate) timed_dropped: u64,
    /// Who may still spawn (a scheduler shutting down closes spawns).
    spawns: Spawns,
    /// Exit signals to apply between turns: a process to end, and why.
    exits: VecDeque<(Pid, ExitError)>,
    /// The end notice of the layer of links and monitors, once it is in use.
    pub(crate) on_end: Option<system::OnEnd<I, O>>,
    /// The next timed send's id.
    next_timer: u64,
    /// The next wait timer's number (its id has `WAIT_TIMER` set).
    next_wait: u64,
    /// The pass's timers fire after its turns, not before, once: the first
    /// pass after a durable recovery finishes the turns a crash cut short
    /// before the timers of the next pass fire (`Kernel::release_timers`).
    pub(crate) hold_timers: bool,
    /// The process being resumed: a panic that unwinds out of its resume is its
    /// failure.
    resuming: Option<PPtr<I, O>>,
    /// System messages between two processes that moved here, held until
    /// their releases come the long way (see [`held`]).
    held: held::HeldMap,
    /// The last release number handed out for a held message.
    held_releases: u64,
    /// The thread was already unwinding when this run (or teardown) began: its
    /// owner runs the kernel from a destructor. A process's engine cannot then
    /// tell its own unwinding from the owner's.
    pub(crate) outside_unwinding: bool,
    /// The first panic of user code that the kernel ran outside any process's
    /// turn (a signal sink, a message's or result's destructor): caught where it
    /// happened so that the kernel stays consistent, re-raised to the caller at
    /// the end of the current (or next) run of passes.
    pub(crate) reported: Option<Box<dyn std::any::Any + Send>>,
}

impl<I: 'static, O: 'static> Kernel<I, O> {
    /// A new kernel, boxed at a stable address.
    ///
    /// A routing kernel is made by [`Kernel::boxed_router`].
    pub(crate) fn boxed(collect: DeliverOut<I, O>, recording: Recording<I, O>) -> NonNull<Self> {
        Self::boxed_with(Outbound::Collect(collect), recording)
    }

    fn boxed_with(outbound: Outbound<I, O>, recording: Recording<I, O>) -> NonNull<Self> {
        let kernel = Box::new(Kernel {
            space: fresh_id(),
            this: NonNull::dangling(),
            procs: PidTable::default(),
            records: Slab::default(),
            ready: ReadyQueue::default(),
            next_pid: 0,
            pid_step: 1,
            pid_override: None,
            remote: None,
            pids_exhausted: false,
            spawn_gate: false,
            extensions: Extensions::default(),
            blocks: Blocks::default(),
            names: proc::Names::default(),
            recording,
            replay_signals: false,
            buffer: Vec::new(),
            clone_in: None,
            clone_out: None,
            outbound,
            undelivered: Vec::new(),
            finished: BTreeMap::new(),
            sinks: IdMap::default(),
            wakes: Arc::default(),
            postbox: None,
            deliver_mail_fn: None,
            mail_parked: false,
            woken: Vec::new(),
            effects_pending: 0,
            budget: DEFAULT_BUDGET,
            hooks: None,
            clock: Box::new(SystemClock),
            timers: BinaryHeap::new(),
            armed: 0,
            fresh: Vec::new(),
            timed: IdMap::default(),
            timed_dropped: 0,
            spawns: Spawns::Open,
            exits: VecDeque::new(),
            on_end: None,
            next_timer: 1,
            next_wait: 1,
            hold_timers: false,
            resuming: None,
            held: held::HeldMap::default(),
            held_releases: 0,
            outside_unwinding: false,
            reported: None,
        });
        let this = NonNull::from(Box::leak(kernel));
        // SAFETY: just leaked: valid, and referenced nowhere else.
        unsafe { (*this.as_ptr()).this = this };
        this
    }

    /// Frees a kernel made by [`Kernel::boxed`], unwinding every suspended process.
    ///
    /// # Safety
    /// `k` came from `boxed`, is not used afterwards, and no coroutine is running.
    pub(crate) unsafe fn destroy(k: NonNull<Self>) {
        // SAFETY: per the contract; one field written.
        unsafe { (*k.as_ptr()).outside_unwinding = std::thread::panicking() };
        // First every engine is stopped, children (larger pids) before their
        // parents, while every record is still alive. A destructor may reap a
        // child, wake a process or even spawn one: go round until no engine is left.
        // The processes unwound run user code (destructors) that may use their
        // contexts, which make their own `&mut Kernel` from the root pointer (`k`,
        // which is `this`): no reference to the kernel is held across `stop`, each
        // step below makes a fresh one.
        loop {
            let mut stopped_any = false;
            // SAFETY: per the contract, nothing else uses the kernel now.
            let pids = unsafe { (*k.as_ptr()).procs.pids() };
            for pid in pids.into_iter().rev() {
                // SAFETY: as above; `kernel` is not used after the `stop` below.
                let kernel = unsafe { &mut *k.as_ptr() };
                let Some(p) = kernel.lookup(pid) else {
                    continue; // reaped by a destructor that ran before
                };
                // SAFETY: p is live; its engine is taken out before it stops.
                let engine = unsafe {
                    (*p.as_ptr()).killing = true;
                    (*p.as_ptr()).engine.take()
                };
                if let Some(engine) = engine {
                    stopped_any = true;
                    let turn = kernel.turn_of(p);
                    engine.stop(&turn);
                }
            }
            if !stopped_any {
                break;
            }
        }
        // Then the ready queue, before any record is freed (it is linked through
        // them): released records are freed, the others leave it.
        // SAFETY: per the contract; every engine is stopped, no user code that
        // could use a context runs from here on.
        let kernel = unsafe { &mut *k.as_ptr() };
        while let Some(p) = kernel.ready.pop_front() {
            // SAFETY: queued records are live or released, never freed while queued.
            let proc = unsafe { &mut *p.as_ptr() };
            proc.queued = false;
            if proc.released {
                // SAFETY: released records are out of the table; only the queue
                // held them.
                if let Some(payload) = unsafe { kernel.free_record(p) } {
                    pass::forget_quietly(payload);
                }
            }
        }
        // Then the records still in the table.
        for pid in kernel.procs.pids() {
            if let Some(p) = kernel.procs.remove(pid) {
                // SAFETY: a record of this kernel's, out of the table and the
                // queue: referenced nowhere else now.
                if let Some(payload) = unsafe { kernel.free_record(p) } {
                    pass::forget_quietly(payload);
                }
            }
        }
        // Timed messages not yet delivered, and undelivered ones nobody took:
        // their `Drop` is user code, whose panic may not escape a teardown.
        // One at a time: a hash map whose drop is cut short by a panic leaks
        // its table (and the messages after the one that panicked).
        let mut timed = std::mem::take(&mut kernel.timed);
        let undelivered = std::mem::take(&mut kernel.undelivered);
        for (_, msg) in timed.drain() {
            pass::drop_quietly(msg);
        }
        for mut fresh in std::mem::take(&mut kernel.fresh) {
            if let Some(msg) = fresh.take_msg() {
                pass::drop_quietly(msg);
            }
        }
        for msg in undelivered {
            pass::drop_quietly(msg);
        }
        for held in kernel.take_held() {
            pass::drop_quietly(held);
        }
        // A panic kept for a caller that will not run the kernel again.
        if let Some(payload) = kernel.reported.take() {
            pass::forget_quietly(payload);
        }
        // SAFETY: allocated by Box in `boxed`.
        drop(unsafe { Box::from_raw(k.as_ptr()) });
    }

    /// Keeps a caught panic of user code for the caller (the first one; later
    /// ones are dropped).
    pub(crate) fn report(&mut self, panicked: Option<Box<dyn std::any::Any + Send>>) {
        if let Some(payload) = panicked {
            if self.reported.is_none() {
                self.reported = Some(payload);
            } else {
                pass::forget_quietly(payload);
            }
        }
    }

    /// The turn in which `p`'s engine runs.
    #[inline(always)]
    pub(crate) fn turn_of(&self, p: PPtr<I, O>) -> Turn {
        Turn {
            space: self.space,
            // SAFETY: p is a live process of this kernel.
            pid: unsafe { p.as_ref().pid },
            kernel: self.this.cast(),
            me: p.cast(),
        }
    }

    /// Joins pid space `space`: its processes may move to the other kernels of
    /// the space, and theirs here (each kernel's pids must then be unique in
    /// the space, which the layer that makes the space sees to). Before any
    /// process is made.
    pub(crate) fn join_space(&mut self, space: Space<I, O>) {
        debug_assert_eq!(
            self.live(),
            0,
            "a kernel joins a space before it has processes"
        );
        self.space = space.id;
    }

    #[inline]
    pub(crate) fn lookup(&self, pid: Pid) -> Option<PPtr<I, O>> {
        self.procs.get(pid)
    }

    pub(crate) fn live(&self) -> usize {
        self.procs.len()
    }

    /// How many processes wait in the ready queue (its run queue's length).
    #[inline]
    pub(crate) fn ready_len(&self) -> usize {
        self.ready.len()
    }

    /// The pids of the processes it holds, in order.
    pub(crate) fn pids(&self) -> Vec<Pid> {
        self.procs.pids()
    }

    /// The next pid; `None` once `u64::MAX` was handed out.
    pub(crate) fn alloc_pid(&mut self) -> Result<Pid, crate::error::SpawnError> {
        if self.spawn_gate
            && let Some(pid) = self.gated()?
        {
            return Ok(pid);
        }
        let pid = Pid(self.next_pid);
        match self.next_pid.checked_add(self.pid_step) {
            Some(next) => {
                self.next_pid = next;
                self.procs.set_next(next);
            }
            None => {
                self.pids_exhausted = true;
                self.regate();
            }
        }
        Ok(pid)
    }

    /// A spawn at a closed gate: refused if spawns are closed (but from a
    /// process's turn while only the owner's are); given the pid a layer
    /// above chose (`with_pid`), if any; else refused if the pids are
    /// exhausted.
    #[cold]
    fn gated(&mut self) -> Result<Option<Pid>, crate::error::SpawnError> {
        match self.spawns {
            Spawns::Open => {}
            Spawns::ProcessesOnly if self.resuming.is_some() => {}
            _ => return Err(crate::error::SpawnError::ShuttingDown),
        }
        if let Some(pid) = self.pid_override.take() {
            self.regate();
            return Ok(Some(pid));
        }
        if self.pids_exhausted {
            return Err(crate::error::SpawnError::PidsExhausted);
        }
        Ok(None)
    }

    /// Closes spawns as `spawns` says (a scheduler shutting down).
    pub(crate) fn close_spawns(&mut self, spawns: Spawns) {
        self.spawns = spawns;
        self.regate();
    }

    /// Sets the gate from what it guards.
    fn regate(&mut self) {
        self.spawn_gate =
            self.pids_exhausted || self.spawns != Spawns::Open || self.pid_override.is_some();
    }

    /// Whether process results are encoded: signals or a layer record them.
    #[inline]
    pub(crate) fn wants_values(&self) -> bool {
        self.is_recording() || self.hooks.is_some()
    }

    /// The pid the next process will get.
    pub(crate) fn next_pid(&self) -> u64 {
        self.next_pid
    }

    /// Makes pid numbering start at `next` (used by standalone processes, whose root
    /// pid is chosen by the caller).
    pub(crate) fn set_next_pid(&mut self, next: u64) {
        self.pids_exhausted = false;
        self.regate();
        self.next_pid = next;
        self.procs.set_next(next);
    }

    /// Makes pid numbering go on after `pid` (a standalone process's root): none
    /// is left after `u64::MAX`.
    pub(crate) fn set_pids_after(&mut self, pid: u64) {
        match pid.checked_add(1) {
            Some(next) => self.set_next_pid(next),
            None => {
                self.set_next_pid(pid);
                self.pids_exhausted = true;
                self.regate();
            }
        }
    }
}
