//! What the cores of a runtime share: each core's inbound queue, its
//! sleeping flag and wake-up, its pid reservations and load, and what the
//! runtime keeps for its owner.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};
use std::sync::{Arc, Mutex, OnceLock};

use crossbeam_queue::SegQueue;

use crate::kernel::Undelivered;
use crate::kernel::time::WakeQueue;
use crate::runtime::envelope::{Batch, Envelope};
use crate::runtime::pid;
use crate::signal::Pid;

/// One core, as the others see it.
pub(crate) struct Core<M> {
    /// Batches from other cores and from outside, in the order pushed
    /// (`crossbeam-queue`, lock-free; one queue per destination core).
    pub(crate) inbound: SegQueue<Batch<M>>,
    /// The core's thread is about to wait, or waits, for a wake-up: whoever
    /// pushes a batch then wakes it. While it runs, a push costs no wake-up.
    pub(crate) sleeping: AtomicBool,
    /// The wake-ups of the core's kernel (set once its thread has made it).
    pub(crate) wakes: OnceLock<Arc<WakeQueue>>,
    /// The next pid that another thread reserves here (odd: see `pid.rs`).
    pub(crate) reserved: AtomicU64,
    /// Live processes at the core's last count.
    pub(crate) live: AtomicUsize,
    /// Its load, for migration: the most processes that wanted to run in one
    /// of its passes since its last balance check (0 once it is idle).
    pub(crate) ready: AtomicUsize,
    /// Processes that moved to it so far (migration).
    pub(crate) moved_in: AtomicU64,
}

impl<M> Core<M> {
    fn new(index: usize) -> Core<M> {
        Core {
            inbound: SegQueue::new(),
            sleeping: AtomicBool::new(false),
            wakes: OnceLock::new(),
            reserved: AtomicU64::new(pid::first_reserved(index)),
            live: AtomicUsize::new(0),
            ready: AtomicUsize::new(0),
            moved_in: AtomicU64::new(0),
        }
    }

    /// Pushes `batch` and wakes the core's thread if it sleeps.
    pub(crate) fn post(&self, batch: Batch<M>) {
        self.inbound.push(batch);
        // Pairs with the fence in `Worker::sleep`: either this load sees the
        // thread going to sleep (and wakes it), or the thread's check of the
        // queue, after it said so, sees this batch.
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::Relaxed) {
            self.wake();
        }
    }

    /// Wakes the core's thread (if it waits).
    pub(crate) fn wake(&self) {
        if let Some(wakes) = self.wakes.get() {
            wakes.poke();
        }
    }

    /// A pid for a process that this core will make on another thread's
    /// behalf.
    pub(crate) fn reserve(&self) -> Pid {
        Pid(self.reserved.fetch_add(2, Ordering::Relaxed))
    }

    /// Whether `pid` (odd) was handed out by [`reserve`](Self::reserve).
    pub(crate) fn was_reserved(&self, pid: Pid) -> bool {
        pid.0 < self.reserved.load(Ordering::Acquire)
    }
}

/// A panic or failure the owner is told of at shutdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    /// The core it happened on.
    pub core: usize,
    /// What happened.
    pub what: String,
}

/// Whether a new runtime balances its cores by migration.
pub(crate) const MIGRATION_DEFAULT: bool = true;

/// Everything the cores share.
pub(crate) struct Shared<M> {
    pub(crate) cores: Box<[Core<M>]>,
    /// The pid space of the cores' kernels: a stackless process may move
    /// between them.
    pub(crate) space: crate::kernel::Space<M, M>,
    next_core: AtomicUsize,
    /// Set once the runtime shuts down.
    pub(crate) stopping: AtomicBool,
    /// How long the cores' shutdown may take, in nanoseconds (set with
    /// `stopping`).
    pub(crate) stop_within: AtomicU64,
    /// Messages that could not be delivered, from every core.
    pub(crate) undelivered: Mutex<Vec<Undelivered<M>>>,
    /// Spawns that failed on their core, and panics of user code outside any
    /// process (a message's `Drop`, say) that the cores caught.
    pub(crate) incidents: Mutex<Vec<Incident>>,
    /// The registry of names every core sees.
    pub(crate) names: crate::otp::registry::SharedNames,
    /// The process groups every core sees.
    pub(crate) groups: crate::otp::groups::SharedGroups,
    /// The cores balance their loads by moving migratable processes.
    pub(crate) migration: AtomicBool,
    /// Where each moved process (alive, or ended lately) is: set by the core
    /// it moved to, once it is there.
    pub(crate) locations: Mutex<rustc_hash::FxHashMap<Pid, usize>>,
}

impl<M> Shared<M> {
    pub(crate) fn new(cores: usize) -> Shared<M> {
        Shared {
            cores: (0..cores).map(Core::new).collect(),
            space: crate::kernel::Space::new(),
            next_core: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
            stop_within: AtomicU64::new(0),
            undelivered: Mutex::new(Vec::new()),
            incidents: Mutex::new(Vec::new()),
            names: Default::default(),
            groups: Default::default(),
            migration: AtomicBool::new(MIGRATION_DEFAULT),
            locations: Mutex::default(),
        }
    }

    /// The core that holds `pid` (or held it last): its home, unless it
    /// moved (see [`locations`](Self::locations)).
    pub(crate) fn core_of(&self, pid: Pid) -> usize {
        let locations = self.locations.lock().unwrap_or_else(|e| e.into_inner());
        locations
            .get(&pid)
            .copied()
            .unwrap_or_else(|| crate::runtime::pid::home(pid))
    }

    pub(crate) fn next_round_robin(&self) -> usize {
        self.next_core.fetch_add(1, Ordering::Relaxed) % self.cores.len()
    }

    pub(crate) fn least_loaded(&self) -> usize {
        (0..self.cores.len())
            .min_by_key(|&i| self.cores[i].live.load(Ordering::Relaxed))
            .unwrap_or(0)
    }

    /// Pushes one envelope to core `core` (from outside: no batching).
    pub(crate) fn post_one(&self, core: usize, envelope: Envelope<M>) {
        self.cores[core].post(vec![envelope]);
    }

    pub(crate) fn incident(&self, core: usize, what: String) {
        self.incidents
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Incident { core, what });
    }
}
