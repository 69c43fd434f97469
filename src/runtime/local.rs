//! One core's own side of the runtime, kept in its kernel (so that the
//! kernel's remote hook, called in the middle of a send, finds it): the
//! batches it is filling for the other cores, its senders that another
//! core told to wait for room, the messages from other cores that wait here
//! for room, and those that wait for a process not made yet.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use crate::kernel::pass::{forget_quietly, panic_message};
use crate::kernel::remote::Job;
use crate::kernel::{Kernel, Sent, Undelivered, UndeliveredReason, unrecorded};
use crate::runtime::envelope::{Batch, Envelope};
use crate::runtime::migrate::{self, Item, Migration, Whither};
use crate::runtime::pid::{self, home};
use crate::runtime::shared::Shared;
use crate::signal::Pid;

/// How many envelopes a batch holds before it is sent at once (the rest go
/// at the end of the pass).
const BATCH: usize = 256;

/// Gives the result of an ended process to a thread that joins it
/// ([`Joiner`](crate::runtime::Joiner)).
pub(crate) type Handing = Box<dyn FnOnce() + Send>;

/// Messages from other cores waiting for room in one process's inbox, in
/// arrival order, and the senders told to wait.
struct Parked<M> {
    queue: VecDeque<(Option<Pid>, M)>,
    senders: SmallVec<[Pid; 4]>,
}

/// Whether `sender` is among the senders told to wait (searched from the
/// last told: a sender's messages come in runs, and a fan-in parks many
/// senders).
#[inline]
fn told(senders: &[Pid], sender: Pid) -> bool {
    senders.iter().rev().any(|&s| s == sender)
}

impl<M> Parked<M> {
    /// Whether a message from `pid` waits here.
    fn has_from(&self, pid: Pid) -> bool {
        self.queue.iter().any(|(from, _)| *from == Some(pid))
    }
}

/// A job for a process not made yet, with the number of messages for it
/// that came before it.
type LimboJob<M> = (usize, Job<M, M>);

pub(crate) struct Local<M: 'static> {
    pub(crate) shared: Arc<Shared<M>>,
    /// This core's index.
    pub(crate) me: usize,
    /// The batch being filled for each core (this core's own stays empty).
    out: Vec<Batch<M>>,
    /// This core's processes that wait for room on another core: sender to
    /// the processes whose inboxes were full (each until its core says that
    /// what the sender had waiting there went in).
    blocked: FxHashMap<Pid, SmallVec<[Pid; 2]>>,
    /// Messages from other cores waiting for room here, per destination
    /// (retried in pid order at each pass).
    parked: BTreeMap<Pid, Parked<M>>,
    /// Messages for reserved pids whose process is not made yet, and their
    /// senders on other cores, told to wait as for a full inbox.
    limbo: FxHashMap<Pid, Parked<M>>,
    /// Jobs for reserved pids whose process is not made yet, each with the
    /// number of messages in `limbo` before it: run once it is made (or
    /// failed), in their places among them.
    limbo_jobs: FxHashMap<Pid, Vec<LimboJob<M>>>,
    /// Every reserved pid below this one has been made (or failed).
    made_below: u64,
    /// Reserved pids made above `made_below` (spawns arrive out of order).
    made_above: BTreeSet<u64>,
    /// Results of processes that ended in this pass, for the threads that
    /// join them: given once what the pass sent has gone.
    pub(crate) handing: Vec<Handing>,
    /// Processes that moved from here, or are on their way here.
    pub(crate) mig: Migration<M>,
}

impl<M: Send + 'static> Local<M> {
    pub(crate) fn new(shared: Arc<Shared<M>>, me: usize) -> Local<M> {
        let cores = shared.cores.len();
        Local {
            shared,
            me,
            out: (0..cores).map(|_| Vec::new()).collect(),
            blocked: FxHashMap::default(),
            parked: BTreeMap::new(),
            limbo: FxHashMap::default(),
            limbo_jobs: FxHashMap::default(),
            made_below: pid::first_reserved(me),
            made_above: BTreeSet::new(),
            handing: Vec::new(),
            mig: Migration::default(),
        }
    }

    /// Whether a process may still be made with `pid` (of this core): it was
    /// reserved and its spawn has not arrived yet.
    fn pending(&self, pid: Pid) -> bool {
        pid::is_reserved(pid)
            && pid.0 >= self.made_below
            && !self.made_above.contains(&pid.0)
            && self.shared.cores[self.me].was_reserved(pid)
    }

    /// The spawn of reserved `pid` arrived (made or failed).
    fn made(&mut self, pid: Pid) {
        if pid.0 == self.made_below {
            self.made_below += 2;
            while self.made_above.remove(&self.made_below) {
                self.made_below += 2;
            }
        } else if pid.0 > self.made_below {
            self.made_above.insert(pid.0);
        }
    }

    /// Queues `envelope` for core `core`; a full batch goes at once.
    pub(crate) fn push(&mut self, core: usize, envelope: Envelope<M>) {
        let out = &mut self.out[core];
        out.push(envelope);
        if out.len() >= BATCH {
            self.flush_to(core);
        }
    }

    /// Queues a job for `pid` on core `core`, behind the messages of `from`
    /// to `pid` if given: an `Envelope::Behind` then the `Run`, in one
    /// batch.
    pub(crate) fn push_run(&mut self, core: usize, pid: Pid, from: Option<Pid>, job: Job<M, M>) {
        if let Some(from) = from {
            if self.out[core].len() + 2 > BATCH {
                self.flush_to(core);
            }
            self.out[core].push(Envelope::Behind { from });
        }
        self.push(core, Envelope::Run { pid, job });
    }

    fn flush_to(&mut self, core: usize) {
        let batch = std::mem::replace(&mut self.out[core], Vec::with_capacity(BATCH));
        self.shared.cores[core].post(batch);
    }

    /// Sends every batch begun.
    pub(crate) fn flush(&mut self) {
        for core in 0..self.out.len() {
            if !self.out[core].is_empty() {
                self.flush_to(core);
            }
        }
    }

    /// Tells `sender`'s core that `sender` must wait for room in `by`: at
    /// once, not at the end of the pass (while this core takes a long run of
    /// its messages, the sender would go on sending).
    fn tell_blocked(&mut self, sender: Pid, by: Pid) {
        let core = home(sender);
        self.push(core, Envelope::Blocked { sender, by });
        self.flush_to(core);
    }

    /// Keeps `msg` for `to`, whose process is not made yet. A sender on
    /// another core is told to wait, as for a full inbox: what it sends
    /// meanwhile has no inbox to fill.
    fn wait_for_process(&mut self, to: Pid, from: Option<Pid>, msg: M) {
        let waiting = self.limbo.entry(to).or_insert_with(|| Parked {
            queue: VecDeque::new(),
            senders: SmallVec::new(),
        });
        waiting.queue.push_back((from, msg));
        if let Some(from) = from
            && home(from) != self.me
            && !told(&waiting.senders, from)
        {
            waiting.senders.push(from);
            self.tell_blocked(from, to);
        }
    }

    /// Keeps `job` for `pid`, whose process is not made yet: it runs once
    /// it is made (or failed), behind what was sent to it before.
    fn wait_job(&mut self, pid: Pid, job: Job<M, M>) {
        let before = self.limbo.get(&pid).map_or(0, |w| w.queue.len());
        self.limbo_jobs.entry(pid).or_default().push((before, job));
    }

    /// Whether messages from other cores wait here for room.
    pub(crate) fn has_parked(&self) -> bool {
        !self.parked.is_empty()
    }

    /// Whether messages from other cores wait here for room in `pid`'s inbox.
    /// Whether a message from `pid` waits here for room in an inbox.
    pub(crate) fn parks_from(&self, pid: Pid) -> bool {
        self.parked.values().any(|p| p.has_from(pid))
    }

    pub(crate) fn has_parked_for(&self, pid: Pid) -> bool {
        self.parked.contains_key(&pid)
    }

    /// `sender`, of this core, need not wait for room in `by`'s inbox any
    /// more: whether it waits for none now.
    fn unblock(&mut self, sender: Pid, by: Pid) -> bool {
        let Some(by_all) = self.blocked.get_mut(&sender) else {
            return true;
        };
        by_all.retain(|b| *b != by);
        if by_all.is_empty() {
            self.blocked.remove(&sender);
            return true;
        }
        false
    }

    /// Whether `pid`, of this core, was told to wait for room on another.
    pub(crate) fn is_blocked(&self, pid: Pid) -> bool {
        self.blocked.contains_key(&pid)
    }
}

/// This core's side, from its kernel.
pub(crate) fn local<M: Send + 'static>(k: &mut Kernel<M, M>) -> &mut Local<M> {
    k.extensions
        .get_mut::<Local<M>>()
        .expect("a runtime's kernel keeps its core's side")
}

/// The kernel's remote hook: a message for a pid this kernel does not hold.
/// For another core's pid it joins the batch for that core (unless its
/// sender must wait for room first: `Full`); for a pid of this core that a
/// spawn on its way will make, it waits for that process; otherwise nobody
/// has the pid.
pub(crate) fn remote<M: Send + 'static>(
    k: &mut Kernel<M, M>,
    from: Option<Pid>,
    to: Pid,
    msg: M,
) -> Sent<M> {
    if local(k).mig.active() {
        // A sender that moved here itself: what it sent `to` before its move
        // may still be on its way through `to`'s home, behind `to`'s fence,
        // so this goes that way too (as to a moved-in process: see
        // `Kernel::deliver`), not into what is held for `to`.
        let moved_in = from
            .and_then(|f| k.lookup(f))
            // SAFETY: a live record of this kernel; a read.
            .is_some_and(|f| unsafe { f.as_ref().moved_in });
        let l = local(k);
        match l.mig.whither(to) {
            Whither::Here if !moved_in => {
                l.mig.hold(to, Item::Msg(from, msg));
                return Sent::Delivered;
            }
            Whither::Here => {}
            Whither::Core(core) => return send_to_core(l, core, from, to, msg),
            Whither::Nowhere => {}
        }
    }
    let l = local(k);
    let core = home(to);
    if core == l.me {
        if l.pending(to) {
            // (A sender of this core: it goes on; the process comes soon.)
            l.wait_for_process(to, from, msg);
            return Sent::Delivered;
        }
        return Sent::Unknown(to, msg);
    }
    if core >= l.out.len() {
        return Sent::Unknown(to, msg);
    }
    send_to_core(l, core, from, to, msg)
}

/// Joins the batch for `core` (unless `from` must wait for room first).
#[inline]
fn send_to_core<M: Send + 'static>(
    l: &mut Local<M>,
    core: usize,
    from: Option<Pid>,
    to: Pid,
    msg: M,
) -> Sent<M> {
    if let Some(from) = from
        && let Some(&blocker) = l.blocked.get(&from).and_then(|by| by.first())
    {
        return Sent::Full { msg, blocker };
    }
    l.push(core, Envelope::Msg { from, to, msg });
    Sent::Delivered
}

/// The kernel's hook: whether `pid` is held by another core (of another
/// home and not moved here, or moved from here, or on its way here).
pub(crate) fn elsewhere<M: Send + 'static>(k: &Kernel<M, M>, pid: Pid) -> bool {
    k.extensions.get::<Local<M>>().is_some_and(|l| {
        let core = home(pid);
        if core != l.me {
            core < l.out.len() && k.lookup(pid).is_none()
        } else {
            // (A process of this core whose spawn is on its way is held
            // elsewhere until it comes: the toolkit's work for it waits for
            // it, as from another core, rather than find no process.)
            l.mig.knows(pid) || (k.lookup(pid).is_none() && l.pending(pid))
        }
    })
}

/// The kernel's hook: `job` goes to the core of `pid` (another core's), in
/// order with this core's messages to it.
pub(crate) fn run_at<M: Send + 'static>(
    k: &mut Kernel<M, M>,
    pid: Pid,
    from: Option<Pid>,
    job: Job<M, M>,
) {
    let l = local(k);
    if l.mig.active() {
        match l.mig.whither(pid) {
            // (Held for a process on its way here: run once it is in, with
            // whatever else was held for it, in order.)
            Whither::Here => return l.mig.hold(pid, Item::Job(job)),
            Whither::Core(core) => return l.push_run(core, pid, from, job),
            Whither::Nowhere => {}
        }
    }
    let core = home(pid);
    if core != l.me && core < l.out.len() {
        l.push_run(core, pid, from, job);
    } else if core == l.me && k.lookup(pid).is_none() && local(k).pending(pid) {
        local(k).wait_job(pid, job);
    }
}

/// A job for `pid` that comes behind the messages of `from`: those that
/// wait here for room in `pid`'s inbox go in first, past its capacity (see
/// [`unpark`]): it may not overtake them, nor wait for room (a process
/// that waits for it, its reply say, may read nothing until it comes).
/// (No-op outside a runtime.)
pub(crate) fn before_job<M: Send + 'static>(k: &mut Kernel<M, M>, pid: Pid, from: Option<Pid>) {
    if let Some(from) = from
        && k.extensions
            .get::<Local<M>>()
            .and_then(|l| l.parked.get(&pid))
            .is_some_and(|p| p.has_from(from))
    {
        unpark(k, pid);
    }
}

/// Runs a job of the toolkit's (a panic of it is the core's to report, not
/// to die of).
fn run_job<M: Send + 'static>(k: &mut Kernel<M, M>, job: Job<M, M>) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| job(k))) {
        k.report(Some(payload));
    }
}

/// Takes what other cores (and outside threads) sent this core, in order.
pub(crate) fn take_inbound<M: Send + 'static>(k: &mut Kernel<M, M>) -> bool {
    let l = local(k);
    let me = l.me;
    if l.shared.cores[me].inbound.is_empty() {
        // (The common case of a busy core: no count of the shared state's
        // references taken and given back, a write every core would share.)
        return false;
    }
    let shared = l.shared.clone();
    let mut any = false;
    while let Some(batch) = shared.cores[me].inbound.pop() {
        any = true;
        // (Set by a `Behind`, for the `Run` that follows it in its batch.)
        let mut behind = None;
        for envelope in batch {
            match envelope {
                Envelope::Msg { from, to, msg } => arrive(k, from, to, msg),
                Envelope::Spawn { pid, make } => spawn(k, pid, make),
                Envelope::Blocked { sender, by } => {
                    if let Some(job) = follow(k, sender, move |k| {
                        let by_all = local(k).blocked.entry(sender).or_default();
                        if !by_all.contains(&by) {
                            by_all.push(by);
                        }
                    }) {
                        job(k);
                    }
                }
                Envelope::Room { sender, by } => {
                    if let Some(job) = follow(k, sender, move |k| {
                        if local(k).unblock(sender, by) {
                            k.room_came(sender);
                        }
                    }) {
                        job(k);
                    }
                }
                Envelope::Behind { from } => behind = Some(from),
                Envelope::Run { pid, job } => {
                    let from = behind.take();
                    let job = if local(k).mig.active() && k.lookup(pid).is_none() {
                        match migrate::route_job(k, pid, from, job) {
                            Some(job) => job,
                            None => continue,
                        }
                    } else {
                        job
                    };
                    if k.lookup(pid).is_none() && local(k).pending(pid) {
                        local(k).wait_job(pid, job);
                        continue;
                    }
                    before_job(k, pid, from);
                    run_job(k, job);
                }
                Envelope::Migrate(moving) => migrate::arrived(k, *moving),
                Envelope::Fence { pid } => migrate::fence(k, pid),
                Envelope::Forget { pid } => migrate::forget(k, pid),
            }
        }
    }
    any
}

/// What this core must do for `sender` (told to wait for room, or that
/// room came: sent to its home), as a job: `None` when the sender moved
/// away and the job follows it (to run where it is, in order with what else
/// follows it); else the job, to run here.
fn follow<M: Send + 'static>(
    k: &mut Kernel<M, M>,
    sender: Pid,
    job: impl FnOnce(&mut Kernel<M, M>) + Send + 'static,
) -> Option<Job<M, M>> {
    let job: Job<M, M> = Box::new(job);
    if local(k).mig.active() && k.lookup(sender).is_none() {
        migrate::route_job(k, sender, None, job)
    } else {
        Some(job)
    }
}

/// Makes the process of reserved `pid`, then gives it what waited for it.
fn spawn<M: Send + 'static>(
    k: &mut Kernel<M, M>,
    pid: Pid,
    make: crate::runtime::envelope::Make<M>,
) {
    // (Its template's code, and the `Drop` of its arguments if it fails:
    // user code, whose panic fails this spawn and nothing else.)
    let made = match catch_unwind(AssertUnwindSafe(|| make(k))) {
        Ok(made) => made.map_err(|e| e.to_string()),
        Err(payload) => {
            let what = panic_message(&*payload);
            forget_quietly(payload);
            Err(format!("panicked: {what}"))
        }
    };
    let l = local(k);
    l.made(pid);
    if let Err(why) = made {
        l.shared
            .incident(l.me, format!("spawn of {pid} failed: {why}"));
    }
    let jobs = local(k).limbo_jobs.remove(&pid).unwrap_or_default();
    let mut jobs = jobs.into_iter().peekable();
    if let Some(waiting) = local(k).limbo.remove(&pid) {
        // Into the new inbox in order, past a full `Backoff` inbox's
        // capacity if need be: never held back, to be overtaken by what their
        // senders send it next (straight into the inbox, from this core).
        // The jobs that waited for it run in their places among them.
        for (i, (from, msg)) in waiting.queue.into_iter().enumerate() {
            while let Some((_, job)) = jobs.next_if(|(before, _)| *before <= i) {
                run_job(k, job);
            }
            deliver_past(k, from, pid, msg);
        }
        // Its senders, told to wait, go on.
        let l = local(k);
        for sender in waiting.senders {
            l.push(home(sender), Envelope::Room { sender, by: pid });
        }
    }
    for (_, job) in jobs {
        run_job(k, job);
    }
}

/// A message from another core (or from outside) for `to`, of this core: into
/// its inbox, or behind what waits for room there, or to wait for its
/// process; kept with the undelivered messages when nobody has the pid.
fn arrive<M: Send + 'static>(k: &mut Kernel<M, M>, from: Option<Pid>, to: Pid, msg: M) {
    let l = local(k);
    if let Some(parked) = l.parked.get_mut(&to) {
        parked.queue.push_back((from, msg));
        let tell = from.filter(|&from| !told(&parked.senders, from));
        if let Some(from) = tell {
            parked.senders.push(from);
            l.tell_blocked(from, to);
        }
        return;
    }
    if k.lookup(to).is_none() {
        let l = local(k);
        let msg = if l.mig.active() {
            match migrate::route_message(k, from, to, msg) {
                Some(msg) => msg,
                None => return,
            }
        } else {
            msg
        };
        let l = local(k);
        if l.pending(to) {
            l.wait_for_process(to, from, msg);
            return;
        }
        if home(to) != l.me {
            // (Sent on by a core its process left, after it ended here: not
            // back to its home, which would send it here again.)
            k.undelivered.push(Undelivered {
                from,
                to: Some(to),
                reason: UndeliveredReason::UnknownPid,
                msg,
            });
            return;
        }
        return drop_or_deliver(k, from, to, msg);
    }
    drop_or_deliver(k, from, to, msg)
}

/// [`arrive`]'s delivery: into the inbox, or to wait for room there.
fn drop_or_deliver<M: Send + 'static>(k: &mut Kernel<M, M>, from: Option<Pid>, to: Pid, msg: M) {
    match deliver(k, from, to, msg) {
        None => {}
        Some(msg) => {
            let l = local(k);
            let mut parked = Parked {
                queue: VecDeque::from([(from, msg)]),
                senders: SmallVec::new(),
            };
            if let Some(from) = from {
                parked.senders.push(from);
                l.tell_blocked(from, to);
            }
            l.parked.insert(to, parked);
        }
    }
}

/// Delivers into live `to`'s inbox, past a full `Backoff` inbox's capacity
/// if need be (what waited for it, never held back to be overtaken).
pub(crate) fn deliver_past<M: Send + 'static>(
    k: &mut Kernel<M, M>,
    from: Option<Pid>,
    to: Pid,
    msg: M,
) {
    if let Some(msg) = deliver(k, from, to, msg) {
        let p = k.lookup(to).expect("a full inbox is a live process's");
        // (To its children too, as any message to it; a panic of a copy's
        // `Clone`, user code, loses the message and is the core's to
        // report, as in `deliver`.)
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| k.deliver_past_capacity(p, msg))) {
            k.report(Some(payload));
        }
    }
}

/// Delivers into `to`'s inbox: `Some(msg)` back when it is full (to wait for
/// room). What cannot be delivered at all is kept with the undelivered
/// messages, with its sender `from`. A panic of user code on the way (a
/// message's `Clone`, for the children of `to`) loses the message and is
/// reported by the pass.
fn deliver<M: Send + 'static>(
    k: &mut Kernel<M, M>,
    from: Option<Pid>,
    to: Pid,
    msg: M,
) -> Option<M> {
    let sent = match catch_unwind(AssertUnwindSafe(|| {
        k.deliver(None, to, msg, unrecorded::<M>)
    })) {
        Ok(sent) => sent,
        Err(payload) => {
            k.report(Some(payload));
            return None;
        }
    };
    let (reason, msg) = match sent {
        Sent::Delivered => return None,
        Sent::Full { msg, .. } => return Some(msg),
        Sent::Rejected(msg) => (UndeliveredReason::Rejected, msg),
        Sent::NoRoute(msg) => (UndeliveredReason::NoRoute, msg),
        Sent::Unknown(_, msg) => (UndeliveredReason::UnknownPid, msg),
    };
    k.undelivered.push(Undelivered {
        from,
        to: Some(to),
        reason,
        msg,
    });
    None
}

/// Tries again the messages waiting for room, each destination's in order;
/// a destination whose waiting messages all went in tells their senders.
pub(crate) fn retry_parked<M: Send + 'static>(k: &mut Kernel<M, M>) {
    let mut parked = std::mem::take(&mut local(k).parked);
    let mut done = Vec::new();
    for (&to, waiting) in parked.iter_mut() {
        while let Some((from, msg)) = waiting.queue.pop_front() {
            if let Some(msg) = deliver(k, from, to, msg) {
                waiting.queue.push_front((from, msg));
                break;
            }
        }
        if waiting.queue.is_empty() {
            done.push(to);
        }
    }
    for to in done {
        let waiting = parked.remove(&to).expect("listed above");
        room_came(k, to, waiting.senders);
    }
    // (Nothing parks while this runs: only arrivals park.)
    local(k).parked = parked;
}

/// The senders told to wait for room here in `by`'s inbox go on (unless
/// they wait for room in another too).
fn room_came<M: Send + 'static>(k: &mut Kernel<M, M>, by: Pid, senders: SmallVec<[Pid; 4]>) {
    for sender in senders {
        let l = local(k);
        let core = home(sender);
        if core == l.me && !l.mig.knows(sender) {
            if l.unblock(sender, by) {
                k.room_came(sender);
            }
        } else {
            // (A sender of this core that moved away: through this
            // core's inbound queue, which sends it on.)
            l.push(core, Envelope::Room { sender, by });
        }
    }
}

/// Delivers what waits here for room in `pid`'s inbox, past its capacity
/// if need be, and its senders go on: what must come after it (a job of one
/// of its senders: its DOWN, its EXIT, its reply, its result) is about to
/// run, and may not overtake it. The messages are held in memory here
/// already; in the inbox they are at least readable. (No-op outside a
/// runtime.)
pub(crate) fn unpark<M: Send + 'static>(k: &mut Kernel<M, M>, pid: Pid) {
    let Some(waiting) = k
        .extensions
        .get_mut::<Local<M>>()
        .and_then(|l| l.parked.remove(&pid))
    else {
        return;
    };
    for (from, msg) in waiting.queue {
        deliver_past(k, from, pid, msg);
    }
    room_came(k, pid, waiting.senders);
}

/// What waits on this core at its very end (messages for a process whose
/// spawn never came, and for room that will not come): kept, reason
/// [`Stopped`](UndeliveredReason::Stopped).
pub(crate) fn leftovers<M: Send + 'static>(k: &mut Kernel<M, M>) -> Vec<Undelivered<M>> {
    let l = local(k);
    /// Each message waiting, with its destination.
    fn each<M>(
        waiting: impl IntoIterator<Item = (Pid, Parked<M>)>,
    ) -> impl Iterator<Item = (Option<Pid>, Pid, M)> {
        waiting.into_iter().flat_map(|(to, waiting)| {
            waiting
                .queue
                .into_iter()
                .map(move |(from, msg)| (from, to, msg))
        })
    }
    // (Jobs for processes never made: dropped, their values' `Drop`
    // quietly.)
    for (_, jobs) in std::mem::take(&mut l.limbo_jobs) {
        crate::kernel::pass::drop_quietly(jobs);
    }
    let limbo = each(std::mem::take(&mut l.limbo));
    let parked = each(std::mem::take(&mut l.parked));
    limbo
        .chain(parked)
        .map(|(from, to, msg)| Undelivered {
            from,
            to: Some(to),
            reason: UndeliveredReason::Stopped,
            msg,
        })
        .collect()
}

/// Gives the results of processes that ended in the pass to the threads
/// that join them.
pub(crate) fn hand_results<M: Send + 'static>(k: &mut Kernel<M, M>) {
    let handing = std::mem::take(&mut local(k).handing);
    for hand in handing {
        // (The result's `Drop` is user code, run here when its joiner is
        // gone: its panic is an incident, not the core's end.)
        if let Err(payload) = catch_unwind(AssertUnwindSafe(hand)) {
            let what = panic_message(&*payload);
            forget_quietly(payload);
            let l = local(k);
            l.shared
                .incident(l.me, format!("panic outside a process: {what}"));
        }
    }
}
