//! The kernel shared by the scheduler and standalone processes: the process table,
//! the ready queue, delivery, and the engine boundary.
//!
//! Every process lives in a heap cell of its own (`NonNull<Proc>`), reached by the
//! kernel through its pid and by its own context through a pointer. The kernel
//! itself is heap-allocated and never moves. All access goes through raw pointers
//! with short-lived references: only one coroutine runs at a time, and the kernel
//! never holds a reference across a resume.

use std::any::{Any, TypeId};
use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::Wake;

use corosensei::{Coroutine, CoroutineResult, Yielder};
use smallvec::SmallVec;

use crate::clock::{Clock, SystemClock, Time};
use crate::context::Ctx;
use crate::durable::{Durable, Record, Replay, SendStep, StopRecord};
use crate::error::{ExitError, JoinError, SpawnError};
use crate::inbox::{Inbox, Overflow};
use crate::overflow;
use crate::pidtable::PidTable;
use crate::signal::{DropReason, Exit, Payload, Pid, Signal, SignalKind, SignalSink, Value};
use crate::slab::Slab;
use crate::stack::{ProcStack, StackPool};
use crate::stackless::{StacklessCtx, StacklessTemplate};
use crate::template::{Route, Step, Template};

/// Work a process may do in one turn (receives, sends, spawns) before it yields to
/// the others.
pub const DEFAULT_BUDGET: u32 = 2000;

/// What a process waits for: the value its coroutine suspends with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// A message in its inbox.
    Message,
    /// A child to stop.
    Join(Pid),
    /// An effect's future to wake it.
    Effect,
    /// Room in the inbox of the given process.
    Room(Pid),
    /// A timer (`sleep`).
    Timer,
    /// Nothing: it used up its turn's budget and is runnable again.
    Yield,
    /// Nothing ever: its calls did not match its journal in replay (a
    /// determinism violation), so it is held.
    Held,
}

/// Where a process stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Created, not started.
    Created,
    /// Runnable, waiting for its turn.
    Ready,
    /// Running now (seen only from inside a process).
    Running,
    /// Suspended until what it waits for happens.
    Waiting(Wait),
    /// Ended; its result has not been taken yet (by a join, or by the owner).
    Stopped,
}

/// A message that could not be delivered, kept for the owner to read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Undelivered<M> {
    /// The sending process (`None`: sent from outside).
    pub from: Option<Pid>,
    /// Where it was going (`None`: the route gave no destination).
    pub to: Option<Pid>,
    /// Why it was not delivered.
    pub reason: UndeliveredReason,
    /// The message itself.
    pub msg: M,
}

/// Why a message was kept instead of delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum UndeliveredReason {
    /// The sender's route gave no destination (or it has no route).
    NoRoute,
    /// No live process has the destination pid.
    UnknownPid,
    /// The destination's inbox is full and its policy is [`Overflow::Reject`].
    Rejected,
    /// The full inbox is the sender's own (it sent to itself, or to an ancestor
    /// whose messages it also receives): waiting for room would wait on itself.
    WouldDeadlock,
}

impl UndeliveredReason {
    pub(crate) fn code(self) -> u8 {
        self as u8
    }

    pub(crate) fn from_code(code: u8) -> Self {
        match code {
            0 => UndeliveredReason::NoRoute,
            1 => UndeliveredReason::UnknownPid,
            2 => UndeliveredReason::Rejected,
            _ => UndeliveredReason::WouldDeadlock,
        }
    }
}

/// How the coroutine ended: the typed result (boxed), and its recorded value when
/// signals are recorded.
pub(crate) struct Ended {
    pub(crate) result: Result<Box<dyn Any>, ExitError>,
    pub(crate) value: Option<Value>,
}

/// How a process runs: a coroutine on a stack of its own, or a stackless
/// coroutine (a state machine on the heap, see [`crate::stackless`]).
pub(crate) enum Engine {
    Stackful(Box<Stackful>),
    Stackless(Pin<Box<dyn Resume>>),
}

/// A stackful process's engine: its coroutine and what its stack's overflow
/// report needs. (Boxed: a stackless process's record has no room for it.)
pub(crate) struct Stackful {
    coroutine: Coroutine<(), Wait, Ended, ProcStack>,
    /// Its stack's guard page, pid and name, for the stack overflow report.
    running: overflow::Running,
    stack_size: usize,
}

/// The engine boundary of a stackless process: resume it; get back what it waits
/// for next, or `None` when it ended, with how in `ended` (its result encoded
/// when `encode`). (The end goes through `ended` so that a suspension, the hot
/// path, returns in registers.)
pub(crate) trait Resume {
    fn resume(self: Pin<&mut Self>, encode: bool, ended: &mut Option<Ended>) -> Option<Wait>;
}

static KERNEL_IDS: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The stackless process this thread is resuming, as (kernel id, pid): a
    /// [`StacklessCtx`](crate::StacklessCtx) works only while it is its own.
    pub(crate) static RESUMING: Cell<(u64, Pid)> = const { Cell::new((0, Pid(0))) };
}
pub(crate) type PPtr<I, O> = NonNull<Proc<I, O>>;

pub(crate) struct Proc<I, O> {
    pub(crate) pid: Pid,
    /// Its template's name (of the entry it started with).
    pub(crate) name: Arc<str>,
    pub(crate) parent: Option<Pid>,
    pub(crate) inbox: Inbox<I>,
    pub(crate) status: Status,
    pub(crate) engine: Option<Engine>,
    pub(crate) route: Option<Route<O>>,
    pub(crate) seq: u64,
    pub(crate) budget: u32,
    /// In the ready queue.
    pub(crate) queued: bool,
    /// The next process in the ready queue, while queued.
    next_ready: Option<PPtr<I, O>>,
    /// Released while queued: free it when it leaves the queue.
    pub(crate) released: bool,
    /// Being killed: a panic unwinding its coroutine is the forced unwind, not a
    /// failure of the process, and must be re-thrown.
    pub(crate) killing: bool,
    /// What few processes need, allocated by the first that does.
    extra: Option<Box<Extra>>,
}

/// The part of a process record that most processes never use: kept out of the
/// record (which a million idle processes pay for) until needed.
#[derive(Default)]
pub(crate) struct Extra {
    /// Processes waiting for room in this inbox, in arrival order.
    pub(crate) waiting_senders: VecDeque<Pid>,
    /// Woken because this process's inbox had room, and not yet retried: if it dies
    /// first, the room passes to the next waiting sender.
    pub(crate) room_grant: Option<Pid>,
    /// Messages dropped by the overflow policy.
    pub(crate) dropped: u64,
    /// When stopped: its result, until joined or taken.
    pub(crate) result: Option<Result<Box<dyn Any>, ExitError>>,
    /// Its armed timer (a `sleep` or `receive_timeout`), 0 for none.
    pub(crate) timer: u64,
    /// Its armed timer fired.
    pub(crate) timed_out: bool,
    /// Children not yet joined, in spawn order (live ones and stopped ones).
    pub(crate) children: SmallVec<[Pid; 2]>,
    /// Being rebuilt from the journal: its remaining records.
    pub(crate) replay: Option<Box<Replay>>,
    /// Its journaled calls so far (durable schedulers).
    pub(crate) steps: u64,
}

impl<I, O> Proc<I, O> {
    /// A process record in its first state: created, nothing queued or run.
    fn new(
        pid: Pid,
        name: Arc<str>,
        parent: Option<Pid>,
        inbox: Inbox<I>,
        route: Option<Route<O>>,
    ) -> Self {
        Proc {
            pid,
            name,
            parent,
            inbox,
            status: Status::Created,
            engine: None,
            route,
            seq: 0,
            budget: 0,
            queued: false,
            next_ready: None,
            released: false,
            killing: false,
            extra: None,
        }
    }

    /// The rarely used part of the record, if it was made.
    #[inline]
    pub(crate) fn extra_mut(&mut self) -> Option<&mut Extra> {
        self.extra.as_deref_mut()
    }

    /// The rarely used part of the record, made on first use.
    #[inline]
    pub(crate) fn extra(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Box::default)
    }

    /// Whether senders wait for room in this inbox.
    #[inline(always)]
    pub(crate) fn has_waiting_senders(&self) -> bool {
        self.extra
            .as_ref()
            .is_some_and(|e| !e.waiting_senders.is_empty())
    }

    /// Whether its armed timer fired (and it has not been told yet).
    #[inline]
    pub(crate) fn timed_out(&self) -> bool {
        self.extra.as_ref().is_some_and(|e| e.timed_out)
    }

    /// Forgets that its timer fired.
    #[inline]
    pub(crate) fn clear_timed_out(&mut self) {
        if let Some(e) = &mut self.extra {
            e.timed_out = false;
        }
    }

    /// Messages dropped by the overflow policy.
    pub(crate) fn dropped(&self) -> u64 {
        self.extra.as_ref().map_or(0, |e| e.dropped)
    }

    /// Its children not yet joined, in spawn order.
    #[inline(always)]
    pub(crate) fn children(&self) -> &[Pid] {
        self.extra.as_ref().map_or(&[], |e| &e.children)
    }

    /// Takes the list of its children, leaving it empty.
    pub(crate) fn take_children(&mut self) -> SmallVec<[Pid; 2]> {
        self.extra_mut()
            .map(|e| std::mem::take(&mut e.children))
            .unwrap_or_default()
    }

    /// Its remaining records, while it is rebuilt from the journal.
    #[inline(always)]
    pub(crate) fn replay(&self) -> Option<&Replay> {
        self.extra.as_ref()?.replay.as_deref()
    }

    /// Its journaled calls so far.
    pub(crate) fn steps(&self) -> u64 {
        self.extra.as_ref().map_or(0, |e| e.steps)
    }

    /// Counts one more journaled call; returns its step number.
    pub(crate) fn next_step(&mut self) -> u64 {
        let e = self.extra();
        e.steps += 1;
        e.steps - 1
    }

    /// Forgets the room it was granted (it has retried its send).
    #[inline]
    pub(crate) fn clear_room_grant(&mut self) {
        if let Some(e) = &mut self.extra {
            e.room_grant = None;
        }
    }
}

/// Where signals go. Buffered signals stay in `Kernel::buffer` until pulled,
/// whatever the mode becomes.
pub(crate) enum Recording<I, O> {
    Off,
    Buffer,
    Sink(Box<dyn SignalSink<I, O>>),
}

/// How a standalone process's outgoing messages are collected (as SEND signals).
pub(crate) type DeliverOut<I, O> = fn(&mut Kernel<I, O>, PPtr<I, O>, Option<Pid>, O) -> Sent<O>;

/// Where outgoing messages go.
#[derive(Clone, Copy)]
pub(crate) enum Outbound<I, O> {
    /// To other processes of this kernel, by pid (a scheduler: `I` and `O` are one
    /// type). Called directly, so that a send inlines its delivery.
    Route,
    /// Elsewhere, through this function (a standalone process's SEND signals).
    Collect(DeliverOut<I, O>),
}

/// The outcome of one delivery attempt.
pub(crate) enum Sent<M> {
    Delivered,
    /// A recipient with the Backoff policy is full.
    Full {
        msg: M,
        blocker: Pid,
    },
    Rejected(M),
    NoRoute(M),
    Unknown(Pid, M),
}

/// Pids whose effect futures woke, from any thread.
#[derive(Default)]
pub(crate) struct WakeQueue {
    pids: Mutex<Vec<Pid>>,
    cond: Condvar,
    /// Set with the first pid pushed, so that a pass with nothing woken takes no lock.
    any: AtomicBool,
}

impl WakeQueue {
    fn push(&self, pid: Pid) {
        let mut pids = self.pids.lock().unwrap_or_else(|e| e.into_inner());
        pids.push(pid);
        self.any.store(true, Ordering::Release);
        self.cond.notify_all();
    }

    #[inline]
    fn drain_into(&self, out: &mut Vec<Pid>) {
        if self.any.load(Ordering::Acquire) {
            let mut pids = self.pids.lock().unwrap_or_else(|e| e.into_inner());
            self.any.store(false, Ordering::Relaxed);
            out.append(&mut pids);
        }
    }

    /// Waits until a pid is pushed, or `timeout` (if any) passes.
    fn wait_nonempty(&self, timeout: Option<std::time::Duration>) {
        let mut pids = self.pids.lock().unwrap_or_else(|e| e.into_inner());
        match timeout {
            None => {
                while pids.is_empty() {
                    pids = self.cond.wait(pids).unwrap_or_else(|e| e.into_inner());
                }
            }
            Some(timeout) => {
                if pids.is_empty() {
                    drop(
                        self.cond
                            .wait_timeout(pids, timeout)
                            .unwrap_or_else(|e| e.into_inner()),
                    );
                }
            }
        }
    }
}

pub(crate) struct PidWaker {
    pid: Pid,
    queue: Arc<WakeQueue>,
}

impl Wake for PidWaker {
    fn wake(self: Arc<Self>) {
        self.queue.push(self.pid);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.queue.push(self.pid);
    }
}

/// The runnable processes, in order: a queue linked through the processes
/// themselves (`Proc::next_ready`), so that queueing touches only the process and
/// the queue's ends.
pub(crate) struct ReadyQueue<I, O> {
    head: Option<PPtr<I, O>>,
    tail: Option<PPtr<I, O>>,
    len: usize,
}

impl<I, O> Default for ReadyQueue<I, O> {
    fn default() -> Self {
        ReadyQueue {
            head: None,
            tail: None,
            len: 0,
        }
    }
}

impl<I, O> ReadyQueue<I, O> {
    /// Queues `p`, which is not queued.
    #[inline(always)]
    fn push_back(&mut self, p: PPtr<I, O>) {
        // SAFETY: queued processes are live or released, never freed while queued.
        unsafe { (*p.as_ptr()).next_ready = None };
        match self.tail {
            // SAFETY: as above.
            Some(t) => unsafe { (*t.as_ptr()).next_ready = Some(p) },
            None => self.head = Some(p),
        }
        self.tail = Some(p);
        self.len += 1;
    }

    #[inline(always)]
    fn pop_front(&mut self) -> Option<PPtr<I, O>> {
        let p = self.head?;
        // SAFETY: as in `push_back`.
        self.head = unsafe { (*p.as_ptr()).next_ready.take() };
        if self.head.is_none() {
            self.tail = None;
        }
        self.len -= 1;
        Some(p)
    }

    #[inline(always)]
    fn len(&self) -> usize {
        self.len
    }
}

/// Where a run of passes stands (kept across a process's panic).
struct Passes {
    /// Turns left in the current pass.
    left: usize,
    /// Turns run so far, in all passes.
    ran: usize,
    /// Turns run in the current pass.
    pass_ran: usize,
    /// A pass has begun.
    begun: bool,
    /// Stackless results are encoded (for signals or the journal).
    encode: bool,
    /// What `RESUMING` held before the stackless process being resumed.
    outer: (u64, Pid),
}

/// A top-level process that ended, with its result kept for the owner.
pub(crate) struct Finished {
    pub(crate) result: Result<Box<dyn Any>, ExitError>,
}

pub(crate) struct Kernel<I, O> {
    /// Unique in the program: tells a stackless context whose kernel runs it.
    pub(crate) id: u64,
    procs: PidTable<PPtr<I, O>>,
    /// Where the process records live.
    records: Slab<Proc<I, O>>,
    ready: ReadyQueue<I, O>,
    next_pid: u64,
    pub(crate) pool: StackPool,
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
    /// Armed timers: deadline, timer id, process.
    timers: BinaryHeap<Reverse<(Time, u64, Pid)>>,
    next_timer: u64,
    /// The stackless process being resumed (`Passes::outer` has what `RESUMING`
    /// held before).
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
        overflow::install();
        let kernel = Box::new(Kernel {
            id: KERNEL_IDS.fetch_add(1, Ordering::Relaxed),
            procs: PidTable::default(),
            records: Slab::default(),
            ready: ReadyQueue::default(),
            next_pid: 0,
            pool: StackPool::default(),
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
        // SAFETY: per the contract, this is the only reference to the kernel; the
        // coroutines unwound below read only their own process's `killing` flag.
        let kernel = unsafe { &mut *k.as_ptr() };
        let pids = kernel.procs.pids();
        // Children have larger pids than their parents: unwind them first.
        for &pid in pids.iter().rev() {
            let p = kernel.procs.get(pid).expect("listed live");
            // SAFETY: p is live; its engine is taken out before it is dropped.
            let engine = unsafe {
                (*p.as_ptr()).killing = true;
                (*p.as_ptr()).engine.take()
            };
            match engine {
                Some(Engine::Stackless(coroutine)) => kernel.drop_stackless(p, coroutine),
                engine => drop(engine), // the forced unwind of a suspended coroutine
            }
        }
        for pid in pids {
            let p = kernel.procs.remove(pid).expect("listed live");
            // SAFETY: a record of this kernel's, referenced nowhere else now.
            unsafe { kernel.records.free(p) };
        }
        while let Some(p) = kernel.ready.pop_front() {
            // SAFETY: released processes are out of the table; only the queue held them.
            if unsafe { p.as_ref().released } {
                // SAFETY: as above.
                unsafe { kernel.records.free(p) };
            }
        }
        // SAFETY: allocated by Box in `boxed`.
        drop(unsafe { Box::from_raw(k.as_ptr()) });
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

    /// Makes pid numbering start at `next` (used by standalone processes, whose root
    /// pid is chosen by the caller).
    /// The pid the next process will get.
    pub(crate) fn next_pid(&self) -> u64 {
        self.next_pid
    }

    pub(crate) fn set_next_pid(&mut self, next: u64) {
        self.next_pid = next;
        self.procs.set_next(next);
    }

    pub(crate) fn is_recording(&self) -> bool {
        !matches!(self.recording, Recording::Off)
    }

    /// Emits a signal for `p`; `kind` is built only when signals are recorded.
    #[inline]
    pub(crate) fn emit(&mut self, p: PPtr<I, O>, kind: impl FnOnce() -> SignalKind<I, O>) {
        if let Recording::Off = self.recording {
            return;
        }
        self.emit_slow(p, kind());
    }

    #[cold]
    fn emit_slow(&mut self, p: PPtr<I, O>, kind: SignalKind<I, O>) {
        // SAFETY: p is a live process of this kernel.
        let proc = unsafe { &mut *p.as_ptr() };
        let signal = Signal {
            pid: proc.pid,
            seq: proc.seq,
            kind,
        };
        proc.seq += 1;
        match &mut self.recording {
            Recording::Off => {}
            Recording::Buffer => self.buffer.push(signal),
            Recording::Sink(sink) => sink.signal(signal),
        }
    }

    pub(crate) fn take_signals(&mut self) -> Vec<Signal<I, O>> {
        std::mem::take(&mut self.buffer)
    }

    /// Appends a journal record, when durable.
    #[inline]
    pub(crate) fn journal(&mut self, record: impl FnOnce() -> Record) {
        if let Some(d) = &mut self.durable {
            d.append(record());
        }
    }

    /// Creates a process (status `Created`) with a coroutine running `template`'s
    /// body on `args`.
    pub(crate) fn create<A: 'static, R: Payload>(
        &mut self,
        template: &Template<I, O, A, R>,
        args: A,
        parent: Option<Pid>,
        pid: Option<Pid>,
    ) -> Result<PPtr<I, O>, SpawnError> {
        let journaled = match &self.durable {
            Some(d) if !d.quiet => {
                let encode = d
                    .registry
                    .get(&template.opts.name)
                    .map(|r| &r.encode_args)
                    .ok_or_else(|| SpawnError::Unregistered(template.opts.name.to_string()))?;
                Some(
                    encode(&args)
                        .ok_or_else(|| SpawnError::Unregistered(template.opts.name.to_string()))?,
                )
            }
            _ => None,
        };
        let (stack, stack_size) = self
            .pool
            .get(template.stack_size)
            .map_err(SpawnError::Stack)?;
        let pid = pid.unwrap_or_else(|| self.alloc_pid());
        let name = template.opts.name.clone();
        let (guard_start, guard_end) = stack.guard();
        let running = overflow::Running {
            guard_start,
            guard_end,
            stack_size,
            pid,
            name: name.as_ptr(),
            name_len: name.len(),
        };
        let p = self.records.alloc(Proc::new(
            pid,
            name,
            parent,
            Inbox::new(template.opts.capacity, template.opts.overflow),
            template.opts.route.clone(),
        ));
        let kernel = NonNull::from(&mut *self);
        let body = template.body.clone();
        let coroutine = Coroutine::with_stack(stack, move |yielder: &Yielder<(), Wait>, ()| {
            let mut ctx = Ctx::new(kernel, p, yielder);
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                let mut step = body(&mut ctx, args);
                loop {
                    match step {
                        Step::Done(r) => return r,
                        Step::Transition(t) => step = (t.run)(&mut ctx),
                    }
                }
            }));
            match outcome {
                Ok(r) => {
                    // SAFETY: the kernel outlives its coroutines.
                    let recording = unsafe {
                        kernel.as_ref().is_recording() || kernel.as_ref().durable.is_some()
                    };
                    let value = recording.then(|| Value::encode(&r));
                    Ended {
                        result: Ok(Box::new(r)),
                        value,
                    }
                }
                Err(payload) => {
                    // SAFETY: the process outlives its coroutine.
                    if unsafe { p.as_ref().killing } {
                        resume_unwind(payload);
                    }
                    Ended {
                        result: Err(ExitError::Failed(panic_message(&*payload))),
                        value: None,
                    }
                }
            }
        });
        // SAFETY: p was just allocated and is not shared yet.
        let engine = Engine::Stackful(Box::new(Stackful {
            coroutine,
            running,
            stack_size,
        }));
        unsafe { (*p.as_ptr()).engine = Some(engine) };
        self.procs.insert(pid, p);
        if let Some(args) = journaled
            && let Some(d) = &mut self.durable
        {
            let template = template.opts.name.to_string();
            if let Some(lsn) = d.append(Record::Create {
                pid,
                parent,
                template,
                args,
                started: d.spawning,
            }) {
                d.set_restart(pid, lsn);
            }
        }
        Ok(p)
    }

    /// Creates a stackless process (status `Created`) running `template`'s body on
    /// `args`. A durable scheduler refuses it: it cannot be journaled.
    pub(crate) fn create_stackless<A: 'static, R: Payload>(
        &mut self,
        template: &StacklessTemplate<I, O, A, R>,
        args: A,
        parent: Option<Pid>,
    ) -> Result<PPtr<I, O>, SpawnError> {
        if self.durable.as_ref().is_some_and(|d| !d.quiet) {
            return Err(SpawnError::NotDurable(template.opts.name.to_string()));
        }
        let pid = self.alloc_pid();
        let name = template.opts.name.clone();
        let p = self.records.alloc(Proc::new(
            pid,
            name,
            parent,
            Inbox::new(template.opts.capacity, template.opts.overflow),
            template.opts.route.clone(),
        ));
        let ctx = StacklessCtx::new(NonNull::from(&mut *self), p, self.id, pid);
        let engine = match catch_unwind(AssertUnwindSafe(|| (template.body)(ctx, args))) {
            Ok(engine) => engine,
            Err(payload) => {
                // SAFETY: p was allocated above and is referenced nowhere.
                unsafe { self.records.free(p) };
                resume_unwind(payload);
            }
        };
        // SAFETY: p was just allocated and is not shared yet.
        unsafe { (*p.as_ptr()).engine = Some(Engine::Stackless(engine)) };
        self.procs.insert(pid, p);
        Ok(p)
    }

    /// Makes a child that already ended (rebuilt from the journal): no stack, no
    /// coroutine, its result kept for its parent's join.
    pub(crate) fn create_stopped(
        &mut self,
        name: Arc<str>,
        pid: Pid,
        parent: Pid,
        result: Result<Box<dyn Any>, ExitError>,
    ) -> PPtr<I, O> {
        let mut proc = Proc::new(
            pid,
            name,
            Some(parent),
            Inbox::new(1, Overflow::Backoff),
            None,
        );
        proc.status = Status::Stopped;
        proc.extra().result = Some(result);
        let p = self.records.alloc(proc);
        self.procs.insert(pid, p);
        p
    }

    /// Starts a created process: START, then it is runnable.
    pub(crate) fn start(&mut self, p: PPtr<I, O>) {
        // SAFETY: p is live.
        let (pid, parent) = unsafe { (p.as_ref().pid, p.as_ref().parent) };
        let spawning = self.durable.as_ref().is_some_and(|d| d.spawning);
        if parent.is_none() && !spawning {
            // (A spawn starts what it creates, and a child starts with its spawn:
            // their CREATE says so.)
            self.journal(|| Record::Start { pid });
        }
        self.emit(p, || SignalKind::Start);
        self.make_ready(p);
    }

    #[inline]
    pub(crate) fn make_ready(&mut self, p: PPtr<I, O>) {
        // SAFETY: p is a live process of this kernel.
        let proc = unsafe { &mut *p.as_ptr() };
        if let Status::Waiting(Wait::Effect) = proc.status {
            self.effects_pending -= 1;
        }
        proc.status = Status::Ready;
        if !proc.queued {
            proc.queued = true;
            self.ready.push_back(p);
        }
    }

    /// Wakes `p` if it waits for a message.
    #[inline]
    fn notify_message(&mut self, p: PPtr<I, O>) {
        // SAFETY: p is a live process of this kernel.
        if unsafe { p.as_ref().status } == Status::Waiting(Wait::Message) {
            self.make_ready(p);
        }
    }

    /// Wakes the first live process waiting for room in `p`'s inbox.
    pub(crate) fn wake_one_sender(&mut self, p: PPtr<I, O>) {
        // SAFETY: p is a live process of this kernel.
        let pid = unsafe { p.as_ref().pid };
        loop {
            // SAFETY: as above.
            let Some(sender) = (unsafe { (*p.as_ptr()).extra().waiting_senders.pop_front() })
            else {
                return;
            };
            if let Some(s) = self.lookup(sender) {
                // SAFETY: s is live.
                if let Status::Waiting(Wait::Room(_)) = unsafe { s.as_ref().status } {
                    // SAFETY: s is live.
                    unsafe { (*s.as_ptr()).extra().room_grant = Some(pid) };
                    self.make_ready(s);
                    return;
                }
            }
        }
    }

    fn wake_all_senders(&mut self, p: PPtr<I, O>) {
        // SAFETY: p is a live process of this kernel.
        // SAFETY: p is a live process of this kernel.
        let Some(extra) = (unsafe { &mut (*p.as_ptr()).extra }) else {
            return;
        };
        let senders = std::mem::take(&mut extra.waiting_senders);
        for sender in senders {
            if let Some(s) = self.lookup(sender) {
                // SAFETY: s is live.
                if let Status::Waiting(Wait::Room(_)) = unsafe { s.as_ref().status } {
                    self.make_ready(s);
                }
            }
        }
    }

    /// Sends `msg` out of process `from`: delivered to `to` in a scheduler,
    /// collected as a SEND signal by a standalone process.
    #[inline(always)]
    pub(crate) fn send_out(&mut self, from: PPtr<I, O>, to: Option<Pid>, msg: O) -> Sent<O> {
        match self.outbound {
            Outbound::Collect(collect) => collect(self, from, to, msg),
            Outbound::Route => {
                // Only `boxed_router` makes a `Route` kernel, whose `I` is its `O`.
                assert!(TypeId::of::<I>() == TypeId::of::<O>());
                // SAFETY: `I` and `O` are one type (checked above; the check is
                // folded at compile time), so this kernel and its records are
                // `Kernel<O, O>` and `Proc<O, O>`.
                let k = unsafe { &mut *(self as *mut Self).cast::<Kernel<O, O>>() };
                k.route(from.cast(), to, msg)
            }
        }
    }

    /// Delivers `msg` to `to` and every live descendant of `to` (children receive
    /// what their parent receives). All-or-nothing: a full Backoff inbox among them
    /// refuses the whole delivery. `from`, when given, gets the SEND signal.
    #[inline(always)]
    pub(crate) fn deliver(
        &mut self,
        from: Option<PPtr<I, O>>,
        to: Pid,
        msg: I,
        clone_for_send: fn(&I) -> O,
    ) -> Sent<I> {
        let Some(target) = self.lookup(to) else {
            return Sent::Unknown(to, msg);
        };
        // SAFETY: target is a live process of this kernel.
        let t = unsafe { &mut *target.as_ptr() };
        if t.status == Status::Stopped {
            return Sent::Unknown(to, msg);
        }
        if t.children().is_empty() {
            if t.inbox.is_full() {
                match t.inbox.overflow {
                    Overflow::Backoff => return Sent::Full { msg, blocker: to },
                    Overflow::Reject => return Sent::Rejected(msg),
                    Overflow::DropNewest | Overflow::DropOldest => {}
                }
            }
            if let Some(from) = from {
                self.emit(from, || SignalKind::Send {
                    to: Some(to),
                    msg: clone_for_send(&msg),
                });
            }
            self.journal_delivery(to, &msg, from, &[target]);
            self.push_into(target, msg);
            return Sent::Delivered;
        }
        self.deliver_tree(from, target, msg, clone_for_send)
    }

    #[cold]
    fn deliver_tree(
        &mut self,
        from: Option<PPtr<I, O>>,
        target: PPtr<I, O>,
        msg: I,
        clone_for_send: fn(&I) -> O,
    ) -> Sent<I> {
        let mut recipients: SmallVec<[PPtr<I, O>; 8]> = SmallVec::new();
        self.collect_tree(target, &mut recipients);
        for &r in &recipients {
            // SAFETY: recipients are live processes.
            let r = unsafe { r.as_ref() };
            if r.inbox.is_full() {
                match r.inbox.overflow {
                    Overflow::Backoff => {
                        return Sent::Full {
                            msg,
                            blocker: r.pid,
                        };
                    }
                    Overflow::Reject => return Sent::Rejected(msg),
                    Overflow::DropNewest | Overflow::DropOldest => {}
                }
            }
        }
        if let Some(from) = from {
            // SAFETY: target is live.
            let to = unsafe { target.as_ref().pid };
            self.emit(from, || SignalKind::Send {
                to: Some(to),
                msg: clone_for_send(&msg),
            });
        }
        // SAFETY: target is live.
        self.journal_delivery(unsafe { target.as_ref().pid }, &msg, from, &recipients);
        let clone = self
            .clone_in
            .expect("a process with children was spawned with I: Clone");
        // In tree order, parent first, so that a parent wakes before its children.
        let (&last, rest) = recipients.split_last().expect("the target itself");
        for &r in rest {
            self.push_into(r, clone(&msg));
        }
        self.push_into(last, msg);
        Sent::Delivered
    }

    /// Journals a message entering `to`'s inbox (and those of `recipients`, its
    /// descendants), in one record that is also the sender's SEND and lists what
    /// the overflow policies are about to drop.
    #[inline(always)]
    fn journal_delivery(
        &mut self,
        to: Pid,
        msg: &I,
        from: Option<PPtr<I, O>>,
        recipients: &[PPtr<I, O>],
    ) {
        if self.durable.is_some() {
            self.journal_delivery_slow(to, msg, from, recipients);
        }
    }

    #[cold]
    #[inline(never)]
    fn journal_delivery_slow(
        &mut self,
        to: Pid,
        msg: &I,
        from: Option<PPtr<I, O>>,
        recipients: &[PPtr<I, O>],
    ) {
        let Some(d) = &mut self.durable else { return };
        let bytes = (d.encode)(msg);
        let mut evicted = Vec::new();
        for &r in recipients {
            // SAFETY: recipients are live.
            let r = unsafe { r.as_ref() };
            if r.inbox.is_full() {
                match r.inbox.overflow {
                    Overflow::DropOldest => {
                        if let Some(old) = r.inbox.queue.front() {
                            evicted.push((r.pid, (d.encode)(old)));
                        }
                    }
                    Overflow::DropNewest => evicted.push((r.pid, bytes.clone())),
                    Overflow::Backoff | Overflow::Reject => {}
                }
            }
        }
        let from = from.map(|f| {
            // SAFETY: the sender is live.
            let f = unsafe { &mut *f.as_ptr() };
            let step = f.next_step();
            SendStep {
                pid: f.pid,
                step,
                hash: crc32c::crc32c(&bytes),
            }
        });
        d.append(Record::Deliver {
            to,
            msg: bytes,
            from,
            evicted,
        });
    }

    /// Journals a message leaving `pid`'s inbox without being taken.
    pub(crate) fn journal_eviction(&mut self, pid: Pid, msg: &I) {
        if let Some(d) = &mut self.durable {
            let msg = (d.encode)(msg);
            d.append(Record::Evict { pid, msg });
        }
    }

    /// `p` and its live descendants, parents before children.
    fn collect_tree(&self, p: PPtr<I, O>, out: &mut SmallVec<[PPtr<I, O>; 8]>) {
        out.push(p);
        // SAFETY: p is live; children are looked up by pid.
        for &child in unsafe { p.as_ref().children() } {
            if let Some(c) = self.lookup(child) {
                // SAFETY: c is live.
                if unsafe { c.as_ref().status } != Status::Stopped {
                    self.collect_tree(c, out);
                }
            }
        }
    }

    /// Pushes into `p`'s inbox, applying a drop policy if it is full, and wakes it.
    #[inline]
    fn push_into(&mut self, p: PPtr<I, O>, msg: I) {
        // SAFETY: p is a live process of this kernel.
        let proc = unsafe { &mut *p.as_ptr() };
        if proc.inbox.is_full() {
            return self.push_into_full(p, msg);
        }
        proc.inbox.queue.push_back(msg);
        self.notify_message(p);
    }

    /// `push_into` when the inbox is full: the drop policies, or over capacity on
    /// purpose (a child's copy of its parent's inbox).
    #[cold]
    #[inline(never)]
    fn push_into_full(&mut self, p: PPtr<I, O>, msg: I) {
        // SAFETY: p is a live process of this kernel.
        let proc = unsafe { &mut *p.as_ptr() };
        {
            match proc.inbox.overflow {
                Overflow::DropNewest => {
                    proc.extra().dropped += 1;
                    self.emit(p, || SignalKind::Drop {
                        msg,
                        reason: DropReason::Newest,
                    });
                    return;
                }
                Overflow::DropOldest => {
                    proc.extra().dropped += 1;
                    proc.inbox.evicted += 1;
                    if let Some(old) = proc.inbox.queue.pop_front() {
                        self.emit(p, || SignalKind::Drop {
                            msg: old,
                            reason: DropReason::Oldest,
                        });
                    }
                }
                // Over capacity on purpose: a child's copy of its parent's inbox.
                Overflow::Backoff | Overflow::Reject => {}
            }
        }
        // SAFETY: as above; the emit calls above ended their borrows.
        unsafe { (*p.as_ptr()).inbox.queue.push_back(msg) };
        self.notify_message(p);
    }

    /// Keeps a message that could not be delivered, with its SEND signal.
    pub(crate) fn keep_undelivered(
        &mut self,
        from: PPtr<I, O>,
        to: Option<Pid>,
        reason: UndeliveredReason,
        msg: O,
    ) {
        if let Some(clone) = self.clone_out {
            self.emit(from, || SignalKind::Send {
                to,
                msg: clone(&msg),
            });
        }
        self.undelivered.push(Undelivered {
            // SAFETY: from is live.
            from: Some(unsafe { from.as_ref().pid }),
            to,
            reason,
            msg,
        });
    }

    /// Makes a just-created `child` a child of `parent`: it gets a copy of the
    /// parent's unconsumed inbox, SPAWN, then the child's START. Returns its pid.
    pub(crate) fn adopt(&mut self, parent: PPtr<I, O>, child: PPtr<I, O>) -> Pid
    where
        I: Clone,
    {
        // SAFETY: child and parent are distinct live processes.
        let (c, p) = unsafe { (&mut *child.as_ptr(), &mut *parent.as_ptr()) };
        c.inbox.queue.extend(p.inbox.queue.iter().cloned());
        p.extra().children.push(c.pid);
        let pid = c.pid;
        self.emit(parent, || SignalKind::Spawn { child: pid });
        self.start(child);
        pid
    }

    /// The result of `parent`'s child `pid` if it stopped: JOIN, and the child is
    /// reaped. `None` while it runs. A result of another type than `R` leaves the
    /// child for a join with the right type.
    pub(crate) fn take_child<R: 'static>(
        &mut self,
        parent: PPtr<I, O>,
        pid: Pid,
    ) -> Option<Result<R, JoinError>> {
        let Some(c) = self.lookup(pid) else {
            return Some(Err(JoinError::NotAChild(pid)));
        };
        // SAFETY: c is live.
        let cp = unsafe { &mut *c.as_ptr() };
        if cp.status != Status::Stopped {
            return None;
        }
        let result = cp
            .extra()
            .result
            .take()
            .expect("a stopped child keeps its result until joined");
        let result = match result {
            Ok(r) => match r.downcast::<R>() {
                Ok(r) => Ok(*r),
                Err(r) => {
                    // A handle of another type (made by deserializing): keep the
                    // child for a join with the right one.
                    cp.extra().result = Some(Ok(r));
                    return Some(Err(JoinError::ResultType(pid)));
                }
            },
            Err(e) => Err(JoinError::Exited(e)),
        };
        // SAFETY: parent is live.
        if let Some(e) = unsafe { (*parent.as_ptr()).extra_mut() } {
            e.children.retain(|x| *x != pid);
        }
        self.reap(c);
        self.emit(parent, || SignalKind::Join { child: pid });
        Some(result)
    }

    /// Arms a timer for `p` at `deadline`; it wakes `p` if `p` still waits on it
    /// then.
    pub(crate) fn arm_timer(&mut self, p: PPtr<I, O>, deadline: Time) {
        let id = self.next_timer;
        self.next_timer += 1;
        // SAFETY: p is live.
        let proc = unsafe { &mut *p.as_ptr() };
        let extra = proc.extra();
        extra.timer = id;
        extra.timed_out = false;
        self.timers.push(Reverse((deadline, id, proc.pid)));
    }

    /// The earliest armed timer's deadline.
    pub(crate) fn next_deadline(&self) -> Option<Time> {
        self.timers.peek().map(|Reverse((t, _, _))| *t)
    }

    /// Fires the timers that are due: each wakes its process, if it still waits on
    /// that timer. Reads the clock only when a timer is armed.
    #[inline]
    fn fire_timers(&mut self) {
        if self.timers.is_empty() {
            return;
        }
        let now = self.clock.now();
        while let Some(&Reverse((deadline, id, pid))) = self.timers.peek() {
            if deadline > now {
                break;
            }
            self.timers.pop();
            if let Some(p) = self.lookup(pid) {
                // SAFETY: p is live.
                let proc = unsafe { &mut *p.as_ptr() };
                if let Some(extra) = &mut proc.extra
                    && extra.timer == id
                {
                    extra.timer = 0;
                    extra.timed_out = true;
                    if matches!(proc.status, Status::Waiting(Wait::Timer | Wait::Message)) {
                        self.make_ready(p);
                    }
                }
            }
        }
    }

    /// Moves woken effect futures' processes to the ready queue.
    #[inline]
    fn drain_wakes(&mut self) {
        if !self.wakes.any.load(Ordering::Acquire) {
            return;
        }
        let mut woken = std::mem::take(&mut self.woken);
        self.wakes.drain_into(&mut woken);
        for pid in woken.drain(..) {
            if let Some(p) = self.lookup(pid) {
                // SAFETY: p is live.
                if unsafe { p.as_ref().status } == Status::Waiting(Wait::Effect) {
                    self.make_ready(p);
                }
            }
        }
        self.woken = woken;
    }

    pub(crate) fn waker(&self, pid: Pid) -> std::task::Waker {
        std::task::Waker::from(Arc::new(PidWaker {
            pid,
            queue: self.wakes.clone(),
        }))
    }

    /// Frees a process that is out of the table and has no engine.
    fn free(&mut self, p: PPtr<I, O>) {
        // SAFETY: p is live and no longer referenced by the table.
        let proc = unsafe { &mut *p.as_ptr() };
        if proc.queued {
            proc.released = true;
        } else {
            // SAFETY: p is a record of this kernel's, referenced nowhere.
            unsafe { self.records.free(p) };
        }
    }

    /// Removes a stopped child from the table after its parent took its result.
    pub(crate) fn reap(&mut self, p: PPtr<I, O>) {
        // SAFETY: p is live.
        let pid = unsafe { p.as_ref().pid };
        if let Some(d) = &mut self.durable {
            d.clear_restart(pid);
        }
        self.procs.remove(pid);
        self.free(p);
    }

    /// One fair pass: runs each process that was runnable when the pass began, for
    /// one turn each, in order. Returns how many turns ran.
    ///
    /// # Safety
    /// `k` is a live kernel and no reference to it is held by the caller.
    pub(crate) unsafe fn update(k: NonNull<Self>) -> usize {
        // SAFETY: per the contract.
        unsafe { Self::passes(k, false) }
    }

    /// Runs passes until none runs anything. Returns the number of turns.
    ///
    /// # Safety
    /// As [`Kernel::update`].
    pub(crate) unsafe fn run_until_idle(k: NonNull<Self>) -> usize {
        // SAFETY: per the contract.
        unsafe { Self::passes(k, true) }
    }

    /// One pass, or passes until one runs nothing (`until_idle`). Returns the
    /// number of turns.
    ///
    /// # Safety
    /// As [`Kernel::update`].
    unsafe fn passes(k: NonNull<Self>, until_idle: bool) -> usize {
        // SAFETY: per the contract.
        let kernel = unsafe { k.as_ref() };
        let mut state = Passes {
            left: 0,
            ran: 0,
            pass_ran: 0,
            begun: false,
            encode: kernel.is_recording() || kernel.durable.is_some(),
            outer: (0, Pid(0)),
        };
        // A stackless body's panic unwinds out of its resume to here: it is that
        // process's failure, and the pass goes on. (One catch for all the passes,
        // not one per resume; a stackful body's panic is caught on its own stack.)
        loop {
            // SAFETY: per the contract.
            let outcome = catch_unwind(AssertUnwindSafe(|| unsafe {
                Self::turns(k, &mut state, until_idle)
            }));
            let Err(payload) = outcome else {
                return state.ran;
            };
            // SAFETY: the panicking coroutine is gone; nothing else holds the kernel.
            let kernel = unsafe { &mut *k.as_ptr() };
            let Some(p) = kernel.resuming.take() else {
                // Not a process's panic: the kernel's own, which is not ours to hide.
                resume_unwind(payload);
            };
            RESUMING.set(state.outer);
            // (Its turn is counted already.)
            // SAFETY: p is live (it was running); its coroutine panicked and is
            // dropped with its engine.
            let engine = unsafe { (*p.as_ptr()).engine.take() };
            let ended = Ended {
                result: Err(ExitError::Failed(panic_message(&*payload))),
                value: None,
            };
            kernel.finish(p, engine, ended);
        }
    }

    /// Runs turns, pass after pass: a pass first moves woken and timed-out
    /// processes to the ready queue, then runs each process that is ready then,
    /// once, in order (those made ready meanwhile run in the next pass). Stops
    /// after one pass, or (`until_idle`) after a pass that ran nothing.
    ///
    /// # Safety
    /// As [`Kernel::update`].
    unsafe fn turns(k: NonNull<Self>, state: &mut Passes, until_idle: bool) {
        loop {
            if state.left == 0 {
                if state.begun && (!until_idle || state.pass_ran == 0) {
                    return;
                }
                state.begun = true;
                state.pass_ran = 0;
                // SAFETY: as in `update`.
                let kernel = unsafe { &mut *k.as_ptr() };
                kernel.drain_wakes();
                kernel.fire_timers();
                state.left = kernel.ready.len();
                if state.left == 0 {
                    return;
                }
            }
            state.left -= 1;
            // SAFETY: as in `update`.
            let kernel = unsafe { &mut *k.as_ptr() };
            let Some(p) = kernel.ready.pop_front() else {
                state.left = 0;
                continue;
            };
            // SAFETY: queued processes are live or released (freed here).
            let proc = unsafe { &mut *p.as_ptr() };
            proc.queued = false;
            if proc.released {
                // SAFETY: released processes are referenced only by the queue.
                unsafe { kernel.records.free(p) };
                continue;
            }
            if proc.status != Status::Ready {
                continue;
            }
            proc.status = Status::Running;
            proc.budget = kernel.budget;
            state.ran += 1;
            state.pass_ran += 1;
            match &mut proc.engine {
                Some(Engine::Stackless(coroutine)) => {
                    // Resumed in place: its state is on the heap, apart from the
                    // process record that its context uses.
                    // SAFETY: the pin is kept: the pointer is only resumed through.
                    let coroutine: *mut dyn Resume =
                        unsafe { coroutine.as_mut().get_unchecked_mut() };
                    state.outer = RESUMING.replace((kernel.id, proc.pid));
                    kernel.resuming = Some(p);
                    // SAFETY: the coroutine lives in its box until the process ends,
                    // which it cannot do while it runs.
                    let mut ended = None;
                    let wait = unsafe { Pin::new_unchecked(&mut *coroutine) }
                        .resume(state.encode, &mut ended);
                    // SAFETY: the coroutine is suspended or done.
                    let kernel = unsafe { &mut *k.as_ptr() };
                    kernel.resuming = None;
                    RESUMING.set(state.outer);
                    match wait {
                        Some(Wait::Yield) => kernel.make_ready(p),
                        // SAFETY: p is live (a suspended process is never freed).
                        Some(wait) => unsafe { (*p.as_ptr()).status = Status::Waiting(wait) },
                        None => {
                            let ended = ended.expect("an ended coroutine says how");
                            // SAFETY: as above.
                            let engine = unsafe { (*p.as_ptr()).engine.take() };
                            kernel.finish(p, engine, ended);
                        }
                    }
                }
                Some(Engine::Stackful(stackful)) => {
                    // Resumed in place, as a stackless one.
                    let stackful: *mut Stackful = &mut **stackful;
                    // SAFETY: the engine lives in its box until the process ends,
                    // which it cannot do while it runs; its context uses only the
                    // process record.
                    let result = unsafe {
                        let outer = overflow::enter(&(*stackful).running);
                        let result = (*stackful).coroutine.resume(());
                        overflow::leave(outer);
                        result
                    };
                    // SAFETY: the coroutine is suspended or done.
                    let kernel = unsafe { &mut *k.as_ptr() };
                    match result {
                        CoroutineResult::Yield(Wait::Yield) => kernel.make_ready(p),
                        // (Its context set its status.)
                        CoroutineResult::Yield(_) => {}
                        CoroutineResult::Return(ended) => {
                            // SAFETY: p is live.
                            let engine = unsafe { (*p.as_ptr()).engine.take() };
                            kernel.finish(p, engine, ended);
                        }
                    }
                }
                None => {}
            }
        }
    }

    /// Runs until nothing can run and no process waits on an effect's future,
    /// blocking the thread between idle passes until a waker fires.
    ///
    /// # Safety
    /// As [`Kernel::update`].
    pub(crate) unsafe fn run_blocking(k: NonNull<Self>) -> usize {
        let mut total = 0;
        loop {
            // SAFETY: per the contract.
            total += unsafe { Self::run_until_idle(k) };
            // SAFETY: no coroutine runs now.
            let kernel = unsafe { k.as_ref() };
            let until = kernel.next_deadline().map(|t| t.since(kernel.clock.now()));
            if kernel.effects_pending == 0 && until.is_none() {
                return total;
            }
            kernel.wakes.wait_nonempty(until);
        }
    }

    /// Takes the result of an ended top-level process, typed.
    /// `None` when there is none, or it is not an `R` (then it stays).
    pub(crate) fn take_result<R: 'static>(&mut self, pid: Pid) -> Option<Result<R, ExitError>> {
        if let Ok(r) = &self.finished.get(&pid)?.result
            && !r.is::<R>()
        {
            return None;
        }
        let finished = self.finished.remove(&pid)?;
        Some(finished.result.map(|r| {
            *r.downcast::<R>()
                .expect("a handle has its template's result type")
        }))
    }

    /// A process's coroutine returned: settle its children, emit STOP, hand its
    /// result to its parent (or keep it for the owner), free what it held.
    fn finish(&mut self, p: PPtr<I, O>, engine: Option<Engine>, ended: Ended) {
        // SAFETY: p is live; engine is done.
        let proc = unsafe { &mut *p.as_ptr() };
        if let Some(Engine::Stackful(stackful)) = engine {
            self.pool
                .put(stackful.stack_size, stackful.coroutine.into_stack());
        }
        if let Some(replay) = proc.replay()
            && let Some(recorded) = replay.log.front()
        {
            // It ended before its records did: held, neither ended nor journaled.
            let violation = crate::durable::DeterminismViolation {
                pid: proc.pid,
                step: proc.steps(),
                recorded: recorded.describe(),
                emitted: "the process's end".into(),
            };
            proc.status = Status::Waiting(Wait::Held);
            if let Some(d) = &mut self.durable {
                d.violations.push(violation);
            }
            return;
        }
        let mut result = ended.result;
        let mut value = ended.value;
        if !proc.children().is_empty() {
            let children = proc.take_children();
            if result.is_ok() {
                let list: Vec<String> = children.iter().map(|c| c.to_string()).collect();
                result = Err(ExitError::Failed(format!(
                    "returned with unjoined children: {}",
                    list.join(", ")
                )));
                value = None;
            }
            let reason = format!("parent {} ended", proc.pid);
            for child in children {
                if let Some(c) = self.lookup(child) {
                    self.kill(c, &reason);
                }
            }
        }
        // SAFETY: p is live.
        let pid = unsafe { p.as_ref().pid };
        self.journal(|| Record::Stop {
            pid,
            exit: match (&result, &value) {
                (Ok(_), Some(v)) => StopRecord::Normal(v.as_bytes().to_vec()),
                (Ok(_), None) => StopRecord::Normal(Vec::new()),
                (Err(ExitError::Failed(m)), _) => StopRecord::Failed(m.clone()),
                (Err(ExitError::Killed(m)), _) => StopRecord::Killed(m.clone()),
            },
        });
        self.emit(p, || {
            let exit = match (&result, value) {
                (Ok(_), Some(v)) => Exit::Normal(v),
                // Recording began after the body returned: the result was not encoded.
                (Ok(_), None) => {
                    Exit::Normal(Value::encode(&String::from("<result not recorded>")))
                }
                (Err(ExitError::Failed(m)), _) => Exit::Failed(m.clone()),
                (Err(ExitError::Killed(m)), _) => Exit::Killed(m.clone()),
            };
            SignalKind::Stop { exit }
        });
        self.stopped(p, result);
    }

    /// Common end of a process, after its STOP.
    fn stopped(&mut self, p: PPtr<I, O>, result: Result<Box<dyn Any>, ExitError>) {
        self.wake_all_senders(p);
        // SAFETY: p is live.
        let proc = unsafe { &mut *p.as_ptr() };
        if let Status::Waiting(Wait::Effect) = proc.status {
            self.effects_pending -= 1;
        }
        proc.status = Status::Stopped;
        let pid = proc.pid;
        let parent = proc.parent.and_then(|pp| self.lookup(pp));
        match parent {
            Some(parent) => {
                // Kept until the parent joins it.
                proc.extra().result = Some(result);
                // SAFETY: parent is live.
                if unsafe { parent.as_ref().status } == Status::Waiting(Wait::Join(pid)) {
                    self.make_ready(parent);
                }
            }
            None => {
                self.finished.insert(pid, Finished { result });
                self.procs.remove(pid);
                self.free(p);
            }
        }
    }

    /// Drops the coroutine of stackless process `p` (its suspended locals) as if
    /// in its turn, so that their destructors may use its context, as a stackful
    /// process's may while its stack unwinds. The process is being stopped
    /// already: a panic in those destructors ends them, and goes no further.
    fn drop_stackless(&mut self, p: PPtr<I, O>, coroutine: Pin<Box<dyn Resume>>) {
        // SAFETY: p is live (its record is freed after this).
        let outer = RESUMING.replace((self.id, unsafe { p.as_ref().pid }));
        let dropped = catch_unwind(AssertUnwindSafe(move || drop(coroutine)));
        RESUMING.set(outer);
        drop(dropped);
    }

    /// Stops `p` and its descendants (deepest first): each coroutine is unwound and
    /// each process ends with STOP `Killed(reason)`.
    pub(crate) fn kill(&mut self, p: PPtr<I, O>, reason: &str) {
        // SAFETY: p is live.
        let proc = unsafe { &mut *p.as_ptr() };
        let children = proc.take_children();
        let own = format!("parent {} ended", proc.pid);
        for child in children {
            if let Some(c) = self.lookup(child) {
                self.kill(c, &own);
            }
        }
        // SAFETY: p is live.
        let proc = unsafe { &mut *p.as_ptr() };
        let pid = proc.pid;
        if proc.status == Status::Stopped {
            // Already ended, never joined: just free it.
            self.procs.remove(pid);
            self.free(p);
            return;
        }
        proc.killing = true;
        // Woken for room it will never use: pass the room on.
        let grant = proc.extra.as_mut().and_then(|e| e.room_grant.take());
        if let Some(blocker) = grant.and_then(|b| self.lookup(b)) {
            self.wake_one_sender(blocker);
        }
        // SAFETY: p is live.
        let proc = unsafe { &mut *p.as_ptr() };
        match proc.engine.take() {
            Some(Engine::Stackful(mut stackful)) => {
                stackful.coroutine.force_unwind();
                self.pool
                    .put(stackful.stack_size, stackful.coroutine.into_stack());
            }
            Some(Engine::Stackless(coroutine)) => self.drop_stackless(p, coroutine),
            None => {}
        }
        let pid = proc.pid;
        self.journal(|| Record::Stop {
            pid,
            exit: StopRecord::Killed(reason.to_string()),
        });
        if let Some(d) = &mut self.durable {
            d.clear_restart(pid);
        }
        self.emit(p, || SignalKind::Stop {
            exit: Exit::Killed(reason.to_string()),
        });
        // A killed child is not kept for a join: its parent is ending too.
        self.wake_all_senders(p);
        // SAFETY: p is live.
        let proc = unsafe { &mut *p.as_ptr() };
        if let Status::Waiting(Wait::Effect) = proc.status {
            self.effects_pending -= 1;
        }
        proc.status = Status::Stopped;
        self.procs.remove(pid);
        self.free(p);
    }
}

impl<M: 'static> Kernel<M, M> {
    /// A new kernel that routes outgoing messages to its processes by pid (a
    /// scheduler's), boxed at a stable address.
    pub(crate) fn boxed_router(recording: Recording<M, M>) -> NonNull<Self> {
        Self::boxed_with(Outbound::Route, recording)
    }

    /// Delivers a message sent by `from` to `to` (`None`: its route found no
    /// recipient).
    #[inline(always)]
    fn route(&mut self, from: PPtr<M, M>, to: Option<Pid>, msg: M) -> Sent<M> {
        let Some(to) = to else {
            return Sent::NoRoute(msg);
        };
        let clone = self.clone_out.unwrap_or(unrecorded::<M>);
        self.deliver(Some(from), to, msg, clone)
    }
}

pub(crate) fn unrecorded<M>(_: &M) -> M {
    unreachable!("SEND signals are built only while recording, which sets the message clone")
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_string()
    }
}
