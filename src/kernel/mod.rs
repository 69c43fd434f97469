//! The kernel: processes, their inboxes and pids, the pass loop, delivery and
//! back-pressure, the process tree, timers and wakes, and signal recording. It is
//! shared by the scheduler and standalone processes, and knows nothing above it:
//! processes run through the engine boundary ([`engine`]), and what a layer above
//! needs to see goes through its hooks.
//!
//! Every process lives in a record of the kernel's slab (`PPtr`), reached by the
//! kernel through its pid and by its own context through a pointer. The kernel
//! itself is heap-allocated and never moves. All access goes through raw pointers
//! with short-lived references: only one coroutine runs at a time, and the kernel
//! never holds a reference across a resume or a call into user code.
//!
//! One file per concept:
//!
//! | file | concept |
//! |---|---|
//! | `proc.rs`, `slab.rs`, `pidtable.rs` | process records, where they live, pid lookup |
//! | `lifecycle.rs` | creation, start, end, reaping |
//! | `pass.rs`, `ready.rs` | the pass loop, the budget, the ready queue |
//! | `engine.rs` | the engine boundary |
//! | `deliver.rs`, `inbox.rs` | delivery, back-pressure, undelivered messages |
//! | `tree.rs` | children, join, kill |
//! | `time.rs` | timers, effect wakes |
//! | `record.rs` | signal recording |
//! | `extensions.rs` | per-kernel state of the engines and layers above |

pub(crate) mod deliver;
pub(crate) mod engine;
pub(crate) mod extensions;
pub(crate) mod inbox;
pub(crate) mod lifecycle;
pub(crate) mod options;
pub(crate) mod pass;
pub(crate) mod pidtable;
pub(crate) mod proc;
pub(crate) mod ready;
pub(crate) mod record;
pub(crate) mod slab;
pub(crate) mod time;
pub(crate) mod tree;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::clock::{Clock, SystemClock, Time};
use crate::durable::{Durable, Record};
use crate::signal::{Pid, Signal};

pub(crate) use deliver::{DeliverOut, Outbound, Sent, unrecorded};
pub use deliver::{Undelivered, UndeliveredReason};
pub(crate) use engine::{BoxedEngine, Ended, Engine, Turn};
use extensions::Extensions;
pub(crate) use lifecycle::Finished;
use pidtable::PidTable;
pub(crate) use proc::{PPtr, Proc};
pub use proc::{Status, Wait};
use ready::ReadyQueue;
pub(crate) use record::Recording;
use slab::Slab;
use time::WakeQueue;

/// Work a process may do in one turn (receives, sends, spawns) before it yields to
/// the others.
pub const DEFAULT_BUDGET: u32 = 2000;

static KERNEL_IDS: AtomicU64 = AtomicU64::new(1);

pub(crate) struct Kernel<I, O> {
    /// Unique in the program: tells a stackless context whose kernel runs it.
    pub(crate) id: u64,
    procs: PidTable<PPtr<I, O>>,
    /// Where the process records live.
    records: Slab<Proc<I, O>>,
    ready: ReadyQueue<I, O>,
    next_pid: u64,
    /// Per-kernel state of the engines and layers above (a stack pool).
    pub(crate) extensions: Extensions,
    pub(crate) recording: Recording<I, O>,
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
    pub(crate) wakes: Arc<WakeQueue>,
    woken: Vec<Pid>,
    pub(crate) effects_pending: usize,
    pub(crate) budget: u32,
    /// Journaling and replay, for a durable scheduler.
    pub(crate) durable: Option<Box<Durable<I, O>>>,
    pub(crate) clock: Box<dyn Clock>,
    /// Armed timers: deadline, timer id, process. An entry whose process no
    /// longer waits on it (its `Extra::timer` is another id) is stale: the top is
    /// never stale, and stale entries are at most about as many as live ones.
    timers: BinaryHeap<Reverse<(Time, u64, Pid)>>,
    /// Live (armed, not fired, not cancelled) timers.
    armed: usize,
    next_timer: u64,
    /// The process being resumed: a panic that unwinds out of its resume is its
    /// failure.
    resuming: Option<PPtr<I, O>>,
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
            id: KERNEL_IDS.fetch_add(1, Ordering::Relaxed),
            procs: PidTable::default(),
            records: Slab::default(),
            ready: ReadyQueue::default(),
            next_pid: 0,
            extensions: Extensions::default(),
            recording,
            buffer: Vec::new(),
            clone_in: None,
            clone_out: None,
            outbound,
            undelivered: Vec::new(),
            finished: BTreeMap::new(),
            wakes: Arc::default(),
            woken: Vec::new(),
            effects_pending: 0,
            budget: DEFAULT_BUDGET,
            durable: None,
            clock: Box::new(SystemClock),
            timers: BinaryHeap::new(),
            armed: 0,
            next_timer: 1,
            resuming: None,
        });
        NonNull::from(Box::leak(kernel))
    }

    /// Frees a kernel made by [`Kernel::boxed`], unwinding every suspended process.
    ///
    /// # Safety
    /// `k` came from `boxed`, is not used afterwards, and no coroutine is running.
    pub(crate) unsafe fn destroy(k: NonNull<Self>) {
        // SAFETY: per the contract, this is the only reference to the kernel. The
        // processes unwound below run user code (destructors) that may use their
        // contexts: no reference into the kernel is held across `stop`.
        let kernel = unsafe { &mut *k.as_ptr() };
        // First every engine is stopped, children (larger pids) before their
        // parents, while every record is still alive. A destructor may reap a
        // child, wake a process or even spawn one: go round until no engine is left.
        loop {
            let mut stopped_any = false;
            for pid in kernel.procs.pids().into_iter().rev() {
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
                    engine.stop(turn);
                }
            }
            if !stopped_any {
                break;
            }
        }
        // Then the ready queue, before any record is freed (it is linked through
        // them): released records are freed, the others leave it.
        while let Some(p) = kernel.ready.pop_front() {
            // SAFETY: queued records are live or released, never freed while queued.
            let proc = unsafe { &mut *p.as_ptr() };
            proc.queued = false;
            if proc.released {
                // SAFETY: released records are out of the table; only the queue
                // held them.
                unsafe { kernel.records.free(p) };
            }
        }
        // Then the records still in the table.
        for pid in kernel.procs.pids() {
            if let Some(p) = kernel.procs.remove(pid) {
                // SAFETY: a record of this kernel's, out of the table and the
                // queue: referenced nowhere else now.
                unsafe { kernel.records.free(p) };
            }
        }
        // SAFETY: allocated by Box in `boxed`.
        drop(unsafe { Box::from_raw(k.as_ptr()) });
    }

    /// The turn in which `p`'s engine runs.
    #[inline(always)]
    pub(crate) fn turn_of(&self, p: PPtr<I, O>) -> Turn {
        Turn {
            kernel: self.id,
            // SAFETY: p is a live process of this kernel.
            pid: unsafe { p.as_ref().pid },
            encode: self.is_recording() || self.durable.is_some(),
        }
    }

    #[inline]
    pub(crate) fn lookup(&self, pid: Pid) -> Option<PPtr<I, O>> {
        self.procs.get(pid)
    }

    pub(crate) fn live(&self) -> usize {
        self.procs.len()
    }

    pub(crate) fn alloc_pid(&mut self) -> Pid {
        let pid = Pid(self.next_pid);
        self.next_pid += 1;
        self.procs.set_next(self.next_pid);
        pid
    }

    /// Appends a journal record, when durable.
    #[inline]
    pub(crate) fn journal(&mut self, record: impl FnOnce() -> Record) {
        if let Some(d) = &mut self.durable {
            d.append(record());
        }
    }

    /// The pid the next process will get.
    pub(crate) fn next_pid(&self) -> u64 {
        self.next_pid
    }

    /// Makes pid numbering start at `next` (used by standalone processes, whose root
    /// pid is chosen by the caller).
    pub(crate) fn set_next_pid(&mut self, next: u64) {
        self.next_pid = next;
        self.procs.set_next(next);
    }
}
