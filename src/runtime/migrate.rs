//! Migration: a core whose run queue is long moves some of its migratable
//! stackless processes to the core whose run queue is shortest, now and then
//! (BEAM's `check_balance`: periodic, not constant stealing).
//!
//! # Which processes move
//!
//! Only processes of a `StacklessTemplate::migratable` template (their
//! coroutine is `Send`: the compiler checked it), and only while nothing ties
//! them to their core: top-level (no parent, no children), ready (in the run
//! queue, not running), no timer armed by them or for them, no exit signal
//! or system message pending, no sender waiting for room in their inbox, no
//! link, monitor, trapped exit, name or group (nothing of theirs in the
//! toolkit's tables; a call monitors its server, so no call in progress), no
//! message of theirs waiting for room on another core, no message waiting
//! here for room in their inbox. A process never moves back to a core it
//! has been on (its home included): with `n` cores it moves at most `n - 1`
//! times.
//!
//! # How a process moves
//!
//! The old core takes the process out of its kernel (its inbox, in order,
//! its options, its engine: `Kernel::extract`), with its joiner's result sink,
//! and ships it to the new core in an envelope (`Envelope::Migrate`),
//! remembering where it went (`moved`). What reaches the old core for it
//! afterwards (messages, the toolkit's jobs) follows it, behind the
//! envelope: a process's old cores form a line from its home to where it
//! is, which everything sent to its pid follows (senders send to the pid's
//! home, as before).
//!
//! The new core does not put it in its kernel at once: what its own
//! processes sent the pid before went to the home core, and may still be on
//! its way along the line. It sends a fence down the line (from the home
//! core), holds meanwhile what its own processes send the pid, keeps what
//! the line brings, and inserts the process (same pid) when the fence comes
//! back: what the line brought first, then what it held. So messages keep
//! their per-sender order whatever the move; from then on its own processes
//! find the pid in its kernel.
//!
//! # Between two processes that both moved here
//!
//! What one sends the other goes the long way, through the receiver's home
//! and down its line back here (`Kernel::deliver`): what it sent before its
//! own move may still be on that way, and its fence came back through its
//! own old cores only. Its system messages to the other (its end's DOWN or
//! EXIT, an exit signal, a reply, a request or cast) are held on this core
//! and released by a job that takes the same way behind those messages
//! (`kernel::held`), so that none overtakes them, as OTP orders every signal
//! from one process to another. A `demonitor` (flush or not) removes a
//! DOWN held, an `unlink` the link's EXIT held (after either, none comes,
//! as across cores); a process with system messages held does not move
//! again.
//!
//! # The forwarding entries
//!
//! Pids are never reused, so an entry could stay for good; but a long run
//! that moves many short-lived processes would grow them without bound.
//! When a moved process ends, its core (which checks its moved-in processes
//! at each balance check) sends a notice down the line from the home core,
//! and each core on it forgets its entry. What is sent to the pid after that
//! is undelivered (unknown pid), as for any ended process.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use crate::engine::MIGRATABLE as KIND_MIGRATABLE;
use crate::kernel::migrate::Extracted;
use crate::kernel::remote::Job;
use crate::kernel::results::ResultSink;
use crate::kernel::{Kernel, Undelivered, UndeliveredReason};
use crate::runtime::envelope::Envelope;
use crate::runtime::local::{self, local};
use crate::runtime::pid::home;
use crate::signal::Pid;

/// A balance check runs once per this many passes that ran something...
const CHECK_EVERY: u32 = 16;
/// ...or turns, if sooner...
const CHECK_TURNS: u64 = 1024;
/// ...and once the core has been busy this long since the last one (its
/// thread's CPU time).
const INTERVAL: Duration = Duration::from_millis(1);
/// A core moves processes only when its load is at least this...
const MIN_QUEUE: usize = 4;
/// ...and more than the least loaded core's plus this.
const SLACK: usize = 2;
/// ...and only when its turns were long: on average at least this long
/// over the interval (a compute-bound load; a move costs each message sent
/// to the process a crossing of cores, which a short turn does not repay:
/// see `benches/workloads/balance.rs`).
const MIN_TURN: Duration = Duration::from_micros(2);
/// The most processes one check moves (a few at a time: the next check
/// sees their load where they went, and a process never comes back).
const MAX_MOVES: usize = 16;
/// How far from the back of the run queue a check looks for processes to
/// move.
const SCAN: usize = 1024;

/// A process on its way to another core.
pub(crate) struct Moving<M> {
    proc: Extracted<M, M>,
    /// Gives its result to its joiner, if it has one.
    sink: Option<ResultSink<M, M>>,
    /// The cores it has been on, its home first: it goes back to none.
    visited: Vec<usize>,
}

// SAFETY: what a `Moving` holds is `Send` (for `M: Send`: its inbox's
// messages, its route, its name as an `Arc<str>`, the result sink, which is
// `Send` by its type) but its engine, a `Pin<Box<dyn Engine>>` whose type is
// erased. `Moving::new` takes only an engine of kind `KIND_MIGRATABLE`,
// which only `StacklessTemplate::migratable` installs, for a coroutine type
// `G: Send` that it boxes as it is (the box's memory is the global
// allocator's, freed rightly on any thread). Such an engine holds nothing
// tied to a thread: its context is plain data (pid space and pid), and it
// reaches its kernel only through the turn that the kernel running it sets.
unsafe impl<M: Send + 'static> Send for Moving<M> {}

impl<M> Moving<M> {
    /// `None` unless its engine is of a migratable template (see the `Send`
    /// impl).
    fn new(
        proc: Extracted<M, M>,
        sink: Option<ResultSink<M, M>>,
        visited: Vec<usize>,
    ) -> Option<Self> {
        (proc.engine_kind == KIND_MIGRATABLE).then_some(Moving {
            proc,
            sink,
            visited,
        })
    }
}

/// What waits for a process on its way in.
pub(crate) enum Item<M> {
    Msg(Option<Pid>, M),
    Job(Job<M, M>),
}

/// A process shipped here, waiting for its fence.
struct Arriving<M> {
    moving: Moving<M>,
    /// What came along its line meanwhile, in order.
    before: VecDeque<Item<M>>,
    /// What this core's processes sent it meanwhile, in order.
    held: VecDeque<Item<M>>,
    /// Its fence came back, but messages it sent before it moved wait here
    /// for room in an inbox: it is inserted once they went in, so that what
    /// it sends from here (directly, on this core) comes after them.
    fenced: bool,
}

/// One core's state of migration (in its `Local`).
pub(crate) struct Migration<M> {
    /// Processes that left this core: where they went.
    moved: FxHashMap<Pid, usize>,
    /// Processes on their way in.
    arriving: FxHashMap<Pid, Arriving<M>>,
    /// Processes that came here: the cores each has been on.
    visited: FxHashMap<Pid, Vec<usize>>,
    /// Passes that ran something since the last check.
    passes: u32,
    /// Turns run since the last check.
    turns: u64,
    /// Turns run since the busy time was last read.
    since: u64,
    /// The core thread's busy time at the last check.
    last: Option<Duration>,
    /// The most processes that wanted to run in one pass since the last
    /// check, and in the period before: its load, as the other cores see it
    /// (the larger; BEAM's balance looks at each run queue's longest over
    /// the period, too).
    peak: usize,
    last_peak: usize,
}

impl<M> Default for Migration<M> {
    fn default() -> Self {
        Migration {
            moved: FxHashMap::default(),
            arriving: FxHashMap::default(),
            visited: FxHashMap::default(),
            passes: 0,
            turns: 0,
            since: 0,
            last: None,
            peak: 0,
            last_peak: 0,
        }
    }
}

/// Where something for a pid that this kernel does not hold goes, when
/// its process moved.
pub(crate) enum Whither {
    /// It is on its way here: held for it.
    Here,
    /// It went to that core.
    Core(usize),
    /// Neither: as for any pid.
    Nowhere,
}

impl<M> Migration<M> {
    /// Whether any process moved through this core or is on its way here
    /// (else no routing needs to look).
    #[inline]
    pub(crate) fn active(&self) -> bool {
        !self.moved.is_empty() || !self.arriving.is_empty()
    }

    pub(crate) fn whither(&self, pid: Pid) -> Whither {
        if self.arriving.contains_key(&pid) {
            Whither::Here
        } else if let Some(&core) = self.moved.get(&pid) {
            Whither::Core(core)
        } else {
            Whither::Nowhere
        }
    }

    /// Holds what this core sends to `pid`, on its way here.
    pub(crate) fn hold(&mut self, pid: Pid, item: Item<M>) {
        if let Some(a) = self.arriving.get_mut(&pid) {
            a.held.push_back(item);
        }
    }

    /// Keeps what the line brings for `pid`, on its way here.
    pub(crate) fn keep(&mut self, pid: Pid, item: Item<M>) {
        if let Some(a) = self.arriving.get_mut(&pid) {
            a.before.push_back(item);
        }
    }

    /// Whether `pid` left this core or is on its way here.
    pub(crate) fn knows(&self, pid: Pid) -> bool {
        self.active() && (self.moved.contains_key(&pid) || self.arriving.contains_key(&pid))
    }
}

/// A message that came for `to` from another core, when `to` is not in this
/// kernel: `None` if migration took it (held, kept, or sent on); else given
/// back.
pub(crate) fn route_message<M: Send + 'static>(
    k: &mut Kernel<M, M>,
    from: Option<Pid>,
    to: Pid,
    msg: M,
) -> Option<M> {
    let l = local(k);
    match l.mig.whither(to) {
        Whither::Here => l.mig.keep(to, Item::Msg(from, msg)),
        Whither::Core(core) => l.push(core, Envelope::Msg { from, to, msg }),
        Whither::Nowhere => return Some(msg),
    }
    None
}

/// A job that came for `pid` from another core, when `pid` is not in this
/// kernel: `None` if migration took it; else given back (to run here).
pub(crate) fn route_job<M: Send + 'static>(
    k: &mut Kernel<M, M>,
    pid: Pid,
    from: Option<Pid>,
    job: Job<M, M>,
) -> Option<Job<M, M>> {
    let l = local(k);
    match l.mig.whither(pid) {
        Whither::Here => l.mig.keep(pid, Item::Job(job)),
        Whither::Core(core) => l.push_run(core, pid, from, job),
        Whither::Nowhere => return Some(job),
    }
    None
}

/// A process shipped here: it waits for its fence, sent down its line from
/// its home core (behind what this core sent its pid before). Once the
/// runtime stops, it is inserted at once.
pub(crate) fn arrived<M: Send + 'static>(k: &mut Kernel<M, M>, moving: Moving<M>) {
    let pid = moving.proc.pid;
    let arriving = Arriving {
        moving,
        before: VecDeque::new(),
        held: VecDeque::new(),
        fenced: false,
    };
    let l = local(k);
    if l.shared.stopping.load(Ordering::Acquire) {
        settle(k, arriving);
        return;
    }
    l.mig.arriving.insert(pid, arriving);
    l.push(home(pid), Envelope::Fence { pid });
}

/// A fence for `pid` came: back where its process waits (insert it), or on
/// down the line.
pub(crate) fn fence<M: Send + 'static>(k: &mut Kernel<M, M>, pid: Pid) {
    let l = local(k);
    if l.parks_from(pid)
        && let Some(arriving) = l.mig.arriving.get_mut(&pid)
    {
        // Its messages that wait here for room go first (`settle_fenced`).
        arriving.fenced = true;
    } else if let Some(arriving) = l.mig.arriving.remove(&pid) {
        settle(k, arriving);
    } else if let Some(&core) = l.mig.moved.get(&pid) {
        l.push(core, Envelope::Fence { pid });
    }
}

/// Inserts the arriving processes whose fence came back and whose messages
/// that waited here for room have all gone in (see `Arriving::fenced`).
pub(crate) fn settle_fenced<M: Send + 'static>(k: &mut Kernel<M, M>) {
    let l = local(k);
    if l.mig.arriving.is_empty() {
        return;
    }
    let ready: Vec<Pid> = l
        .mig
        .arriving
        .iter()
        .filter(|(pid, a)| a.fenced && !l.parks_from(**pid))
        .map(|(pid, _)| *pid)
        .collect();
    for pid in ready {
        if let Some(arriving) = local(k).mig.arriving.remove(&pid) {
            settle(k, arriving);
        }
    }
}

/// A process that moved ended where it was: each core of its line forgets
/// where it went.
pub(crate) fn forget<M: Send + 'static>(k: &mut Kernel<M, M>, pid: Pid) {
    let l = local(k);
    if let Some(core) = l.mig.moved.remove(&pid) {
        l.push(core, Envelope::Forget { pid });
    }
}

/// Puts an arriving process into this kernel, then what the line brought
/// for it, then what this core held for it.
fn settle<M: Send + 'static>(k: &mut Kernel<M, M>, arriving: Arriving<M>) {
    let Arriving {
        moving,
        before,
        held,
        fenced: _,
    } = arriving;
    let Moving {
        proc,
        sink,
        visited,
    } = moving;
    let pid = proc.pid;
    k.insert(proc);
    if let Some(sink) = sink {
        k.sink_result(pid, sink);
    }
    let l = local(k);
    l.mig.visited.insert(pid, visited);
    l.mig.moved.remove(&pid);
    let me = l.me;
    l.shared.cores[me].moved_in.fetch_add(1, Ordering::Relaxed);
    l.shared
        .locations
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(pid, me);
    for item in before.into_iter().chain(held) {
        match item {
            // Past a full `Backoff` inbox's capacity if need be, as for a
            // process's first messages (see `local::spawn`).
            Item::Msg(from, msg) => local::deliver_past(k, from, pid, msg),
            Item::Job(job) => {
                if let Err(payload) = catch_unwind(AssertUnwindSafe(|| job(k))) {
                    k.report(Some(payload));
                }
            }
        }
    }
}

/// Inserts every process on its way here (the runtime stops: its fence may
/// never come back).
pub(crate) fn settle_all<M: Send + 'static>(k: &mut Kernel<M, M>) {
    let arriving: Vec<Arriving<M>> = local(k).mig.arriving.drain().map(|(_, a)| a).collect();
    for a in arriving {
        settle(k, a);
    }
}

/// A pass ran `turns` turns: publishes this core's load; now and then, a
/// balance check.
pub(crate) fn tick<M: Send + 'static>(k: &mut Kernel<M, M>, turns: usize) {
    if turns == 0 {
        return;
    }
    // Its load: the processes that wanted to run in a pass (those it ran, or
    // those still queued if more), the most over this period and the last
    // (a core whose processes wait for messages between passes idles now
    // and then: its load is what it runs when they come), and the
    // processes on their way here (its load soon).
    let queued = k.ready_len();
    let l = local(k);
    l.mig.peak = l.mig.peak.max(turns.max(queued));
    let load = l.mig.peak.max(l.mig.last_peak) + l.mig.arriving.len();
    l.shared.cores[l.me].ready.store(load, Ordering::Relaxed);
    l.mig.passes += 1;
    l.mig.turns += turns as u64;
    l.mig.since += turns as u64;
    // (The busy time is read once per 16 passes, or per 1,024 turns if
    // sooner, so that long passes are not left unchecked for long.)
    if l.mig.passes < CHECK_EVERY && l.mig.since < CHECK_TURNS {
        return;
    }
    l.mig.passes = 0;
    l.mig.since = 0;
    let now = busy_time();
    let Some(last) = l.mig.last else {
        l.mig.last = Some(now);
        l.mig.turns = 0;
        return;
    };
    let busy = now.saturating_sub(last);
    if busy < INTERVAL {
        return;
    }
    // (The interval's busy time per turn: the passes' own work counted too,
    // and a short spin before the thread sleeps, but little beside.)
    let per_turn = busy / u32::try_from(l.mig.turns.max(1)).unwrap_or(u32::MAX);
    l.mig.last = Some(now);
    l.mig.turns = 0;
    forget_ended(k);
    if per_turn >= MIN_TURN {
        balance(k);
    }
    let l = local(k);
    l.mig.last_peak = std::mem::take(&mut l.mig.peak);
}

/// The time the calling thread has run (its CPU time): a core's busy time,
/// which other threads of a loaded machine do not inflate as they would the
/// wall clock's.
#[cfg(unix)]
fn busy_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a live `timespec` for the call to write; the clock id is
    // the platform's own constant.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if r != 0 {
        return wall_time();
    }
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// Where a thread's CPU time cannot be read: the wall clock's time since
/// the first call.
#[cfg(not(unix))]
fn busy_time() -> Duration {
    wall_time()
}

fn wall_time() -> Duration {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

/// The core goes to sleep: it has no load.
pub(crate) fn idle<M: Send + 'static>(k: &mut Kernel<M, M>) {
    let l = local(k);
    l.mig.peak = 0;
    l.mig.last_peak = 0;
    l.shared.cores[l.me].ready.store(0, Ordering::Relaxed);
}

/// Moved-in processes that ended: their lines forget them.
fn forget_ended<M: Send + 'static>(k: &mut Kernel<M, M>) {
    let l = local(k);
    if l.mig.visited.is_empty() {
        return;
    }
    let visited = std::mem::take(&mut l.mig.visited);
    let (alive, ended): (FxHashMap<_, _>, FxHashMap<_, _>) = visited
        .into_iter()
        .partition(|(pid, _)| k.lookup(*pid).is_some());
    let l = local(k);
    l.mig.visited = alive;
    if ended.is_empty() {
        return;
    }
    let mut locations = l.shared.locations.lock().unwrap_or_else(|e| e.into_inner());
    for pid in ended.keys() {
        locations.remove(pid);
    }
    drop(locations);
    for pid in ended.into_keys() {
        // (Down the line from its home, which is never this core.)
        l.push(home(pid), Envelope::Forget { pid });
    }
}

/// Compares this core's load (see `tick`) with the others': when it is
/// larger than the least loaded's by more than `SLACK`, moves up to half the
/// difference (at most `MAX_MOVES`) of its movable ready processes there.
fn balance<M: Send + 'static>(k: &mut Kernel<M, M>) {
    let l = local(k);
    let mine = l.shared.cores[l.me].ready.load(Ordering::Relaxed);
    if mine < MIN_QUEUE {
        return;
    }
    let l = local(k);
    let shared = l.shared.clone();
    if !shared.migration.load(Ordering::Relaxed) || shared.stopping.load(Ordering::Relaxed) {
        return;
    }
    let me = l.me;
    let Some((target, theirs)) = (0..shared.cores.len())
        .filter(|&c| c != me)
        .map(|c| (c, shared.cores[c].ready.load(Ordering::Relaxed)))
        .min_by_key(|&(_, n)| n)
    else {
        return;
    };
    if mine <= theirs + SLACK {
        return;
    }
    let want = ((mine - theirs) / 2).min(MAX_MOVES);
    let candidates = k.movable_ready(KIND_MIGRATABLE, SCAN, usize::MAX, |_| true);
    let table = k.extensions.get::<crate::otp::Table>();
    let untied: Vec<Pid> = candidates
        .into_iter()
        .filter(|pid| table.is_none_or(|t| !t.entries.contains_key(pid)))
        .collect();
    let l = local(k);
    let chosen: Vec<Pid> = untied
        .into_iter()
        .rev()
        .filter(|&pid| l.may_leave(pid, target))
        .take(want)
        .collect();
    let mut moved = 0;
    for pid in chosen {
        if move_out(k, pid, target) {
            moved += 1;
        }
    }
    if moved > 0 {
        // (Until the target counts again, other cores see its new load.)
        shared.cores[target]
            .ready
            .fetch_add(moved, Ordering::Relaxed);
    }
}

/// Takes `pid` out of this kernel and ships it to core `to`.
fn move_out<M: Send + 'static>(k: &mut Kernel<M, M>, pid: Pid, to: usize) -> bool {
    let Some(proc) = k.extract(pid, KIND_MIGRATABLE) else {
        return false;
    };
    let sink = k.take_sink(pid);
    let l = local(k);
    let mut visited = l.mig.visited.remove(&pid).unwrap_or_default();
    if visited.is_empty() {
        visited.push(home(pid));
    }
    if !visited.contains(&l.me) {
        visited.push(l.me);
    }
    let moving = Moving::new(proc, sink, visited).expect("extracted with the migratable kind");
    l.mig.moved.insert(pid, to);
    l.push(to, Envelope::Migrate(Box::new(moving)));
    true
}

impl<M: Send + 'static> local::Local<M> {
    /// Whether `pid` (movable as far as its kernel and the toolkit know)
    /// may leave for core `to`: nothing of it waits on this core's side of
    /// the runtime, and it has not been on `to`.
    fn may_leave(&self, pid: Pid, to: usize) -> bool {
        home(pid) != to
            && !self.mig.visited.get(&pid).is_some_and(|v| v.contains(&to))
            && !self.is_blocked(pid)
            && !self.has_parked_for(pid)
    }
}

/// What a stopped core leaves of the processes in transit to it: dropped
/// (their engines unwound where they are, their messages undelivered).
pub(crate) fn lost<M: Send + 'static>(moving: Moving<M>) -> (Pid, Vec<Undelivered<M>>) {
    let Moving { proc, sink, .. } = moving;
    let pid = proc.pid;
    let msgs = proc.into_messages();
    crate::kernel::pass::drop_quietly(sink);
    let undelivered = msgs
        .into_iter()
        .map(|msg| Undelivered {
            from: None,
            to: Some(pid),
            reason: UndeliveredReason::Stopped,
            msg,
        })
        .collect();
    (pid, undelivered)
}
