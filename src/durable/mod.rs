//! Durable processes: a scheduler whose every input is journaled, so that after a
//! crash it rebuilds every process and carries on where it was, without repeating
//! recorded side effects.
//!
//! # What is journaled
//!
//! One record per event, postcard-encoded in a [`Journal`] (the embedded
//! [`FileJournal`] by default), committed once per scheduler pass:
//!
//! - a process created (its template's name and its arguments), and started;
//! - a message delivered into an inbox: one record that is also its sender's SEND
//!   (target and a hash of the message) and lists what the overflow policies
//!   dropped for it, so that a crash keeps all of it or none of it;
//! - what each process took from its inbox, each effect's result (and an
//!   at-most-once effect's intent), each timer's deadline, each join;
//! - each transition, with a snapshot: the new entry and its arguments, the
//!   unconsumed inbox, the children;
//! - how each process ended, and when the owner took its result; the messages
//!   kept undelivered, and when the owner took them.
//!
//! # Recovery
//!
//! [`DurableBuilder::open`] reads the journal and rebuilds every process at once,
//! parents before children: its inbox as it was at the crash, its children, and
//! its replay. A process re-runs from its start, or from its last transition: each
//! call of its body is served from its records (a receive gets the message it got
//! then, an effect returns its recorded result without running, a timer that ended
//! does not wait again, a send is checked, not delivered again), and when its
//! records run out it continues live. A process whose records end in STOP is
//! fast-forwarded: its result is restored without running it.
//!
//! A call that does not match the record (another kind, another target, another
//! payload or arguments) is a determinism violation: the process is held, never
//! run on with wrong state, and [`DurableScheduler::violations`] names the pid,
//! the step, what was recorded and what was emitted. The other processes continue.
//!
//! # Guarantees
//!
//! Effects are at least once: an effect's result is journaled after it runs, so a
//! crash between the two runs it again on recovery;
//! [`Ctx::effect_at_most_once`](crate::Ctx::effect_at_most_once) trades that for
//! an [`Interrupted`] answer. Messages are never lost nor delivered twice across a
//! crash: a delivery that is in the journal is in the rebuilt inbox, one that is
//! not never happened (its sender sends it again when it replays past that point
//! live). With [`SyncPolicy::EveryCommit`](crate::journal::SyncPolicy), a crash
//! loses at most the last pass. Segments holding only records older than every
//! process's restart point (its creation or its last transition) are deleted.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::clock::Time;
use crate::engine::stackful::template::Template;
use crate::error::{ExitError, SendError, SpawnError, StartError};
use crate::journal::{FileJournal, Journal, JournalError, JournalOptions, Lsn, TruncatedTail};
use crate::kernel::{Kernel, PPtr, Status, Undelivered};
use crate::scheduler::{Handle, Pass, SimpleScheduler};
use crate::signal::{Payload, Pid};

/// One journal record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum Record {
    /// A process was made (and, with `started`, started in the same breath: a
    /// spawn, or any child).
    Create {
        pid: Pid,
        parent: Option<Pid>,
        template: String,
        args: Vec<u8>,
        started: bool,
    },
    Start {
        pid: Pid,
    },
    /// A message entered `to`'s inbox (and its descendants'). When a process sent
    /// it, this one record is also the sender's SEND, so that a crash cannot keep
    /// one without the other. Messages the overflow policy dropped on the way are
    /// listed with it.
    Deliver {
        to: Pid,
        msg: Vec<u8>,
        from: Option<SendStep>,
        evicted: Vec<(Pid, Vec<u8>)>,
    },
    /// A message kept undelivered; also the sender's SEND.
    Undelivered {
        from: Option<SendStep>,
        to: Option<Pid>,
        reason: u8,
        msg: Vec<u8>,
    },
    /// The owner took the undelivered messages kept so far.
    UndeliveredTaken,
    /// Pids below this were handed out (kept when older records go).
    NextPid {
        next: u64,
    },
    Evict {
        pid: Pid,
        msg: Vec<u8>,
    },
    Take {
        pid: Pid,
        step: u64,
        msg: Option<Vec<u8>>,
    },
    Use {
        pid: Pid,
        step: u64,
        result: Vec<u8>,
    },
    /// A timer armed by `sleep` or `receive_timeout`, with its deadline.
    Timer {
        pid: Pid,
        step: u64,
        deadline: Time,
    },
    /// An at-most-once effect is about to run (synced before it runs).
    Intent {
        pid: Pid,
        step: u64,
    },
    /// Recovery found an intent without a result: the effect was interrupted.
    Interrupted {
        pid: Pid,
        step: u64,
    },
    Send {
        pid: Pid,
        step: u64,
        to: Option<Pid>,
        hash: u32,
        outcome: SendOutcome,
    },
    Join {
        pid: Pid,
        step: u64,
        child: Pid,
    },
    /// A snapshot point: the new entry and its arguments, the unconsumed inbox,
    /// the unjoined children, and the next pid: the process restarts from here, and
    /// its older records are not needed any more.
    Transition {
        pid: Pid,
        parent: Option<Pid>,
        step: u64,
        template: String,
        args: Vec<u8>,
        inbox: Vec<Vec<u8>>,
        children: Vec<Pid>,
        next_pid: u64,
    },
    Stop {
        pid: Pid,
        exit: StopRecord,
    },
    /// The owner took a top-level process's result: its records are not needed.
    Reaped {
        pid: Pid,
    },
}

/// The sending side of a delivery: which process, at which step, and the hash of
/// the message as it checks it in replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SendStep {
    pub(crate) pid: Pid,
    pub(crate) step: u64,
    pub(crate) hash: u32,
}

/// How a send went, for `try_send` to give the same answer in replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum SendOutcome {
    Delivered,
    Full,
    NoRoute,
    UnknownPid,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum StopRecord {
    Normal(Vec<u8>),
    Failed(String),
    Killed(String),
}

impl Record {
    /// What a process-side record says, for a violation report.
    pub(crate) fn describe(&self) -> String {
        match self {
            Record::Take { msg: Some(m), .. } => format!("a receive of {} bytes", m.len()),
            Record::Take { msg: None, .. } => "a try_receive that found nothing".into(),
            Record::Use { result, .. } => format!("an effect with a {}-byte result", result.len()),
            Record::Intent { .. } => "an at-most-once effect".into(),
            Record::Timer { .. } => "a timer".into(),
            Record::Interrupted { .. } => "an interrupted at-most-once effect".into(),
            Record::Send { to, hash, .. } => format!("a send to {to:?} (hash {hash:08x})"),
            Record::Join { child, .. } => format!("a join of {child}"),
            Record::Transition { template, .. } => format!("a transition to {template}"),
            Record::Create { pid, template, .. } => format!("a spawn of {pid} ({template})"),
            other => format!("{other:?}"),
        }
    }
}

/// An at-most-once effect that may or may not have happened: the program stopped
/// after journaling its intent and before journaling its result. It is not run
/// again; what to do (check, compensate, retry) is the process's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error, Serialize, Deserialize)]
#[error("the effect was interrupted by a crash: it may or may not have happened")]
pub struct Interrupted;

/// A process's call that did not match its records.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("determinism violation in {pid} at step {step}: recorded {recorded}, emitted {emitted}")]
pub struct DeterminismViolation {
    /// The process, which is held.
    pub pid: Pid,
    /// Its step: the count of its journaled calls before this one.
    pub step: u64,
    /// What the journal holds.
    pub recorded: String,
    /// What the process did instead.
    pub emitted: String,
}

/// A process being replayed: its remaining records. (Its inbox is rebuilt as the
/// journal left it at the crash, directly in its queue.)
pub(crate) struct Replay {
    pub(crate) log: VecDeque<Record>,
}

/// Encodes a process's arguments (given as `&A`).
type EncodeArgs = Box<dyn Fn(&dyn Any) -> Option<Vec<u8>>>;
/// Re-creates a process from its encoded arguments, with the given pid and parent.
pub(crate) type CreateFrom<I, O> =
    Box<dyn Fn(&mut Kernel<I, O>, Pid, Option<Pid>, &[u8]) -> Result<PPtr<I, O>, RecoveryError>>;
/// Decodes a recorded result.
type DecodeResult = Box<dyn Fn(&[u8]) -> Option<Box<dyn Any>>>;

/// What recovery needs to rebuild processes of one template.
pub(crate) struct Registration<I, O> {
    pub(crate) encode_args: EncodeArgs,
    pub(crate) create: CreateFrom<I, O>,
    pub(crate) decode_result: DecodeResult,
}

/// A process rebuilt from the journal, waiting for its parent to spawn it again.
pub(crate) struct Pending<I> {
    /// The template and arguments it (re)starts from: its own, or its last
    /// snapshot's.
    pub(crate) template: String,
    pub(crate) args: Vec<u8>,
    /// Its step count at that point.
    pub(crate) steps: u64,
    pub(crate) started: bool,
    pub(crate) log: VecDeque<Record>,
    pub(crate) inbox: VecDeque<I>,
    pub(crate) stop: Option<StopRecord>,
    /// Its children to rebuild with it: unjoined ones, and the ones its replay
    /// joins again.
    pub(crate) children: Vec<Pid>,
    /// The LSN of the record it restarts from.
    pub(crate) restart: u64,
}

/// The durability state of a kernel.
pub(crate) struct Durable<I, O> {
    pub(crate) journal: Box<dyn Journal>,
    pub(crate) encode: fn(&I) -> Vec<u8>,
    pub(crate) decode: fn(&[u8]) -> Option<I>,
    pub(crate) hash_out: fn(&O) -> u32,
    pub(crate) encode_out: fn(&O) -> Vec<u8>,
    pub(crate) registry: BTreeMap<Arc<str>, Registration<I, O>>,
    /// The first journal error, until reported: the run stops there.
    pub(crate) error: Option<JournalError>,
    /// An error was reported: nothing runs or is journaled any more.
    pub(crate) stopped: bool,
    /// Children rebuilt from the journal, until their parents spawn them again.
    pub(crate) pending: BTreeMap<Pid, Pending<I>>,
    pub(crate) violations: Vec<DeterminismViolation>,
    /// Rebuilding: what happens now is in the journal already.
    pub(crate) quiet: bool,
    /// A spawn is under way: its CREATE record says it started, and no START
    /// record follows (a crash cannot keep one without the other).
    pub(crate) spawning: bool,
    /// Each process's restart point (the LSN of its CREATE or its last
    /// TRANSITION), for as long as it exists or its result is kept: records
    /// before the oldest one are not needed.
    pub(crate) restarts: BTreeSet<(u64, Pid)>,
    pub(crate) restart_of: BTreeMap<Pid, u64>,
    /// The LSN of the last NEXT_PID record: renewed whenever older records may go,
    /// so that pids are never handed out twice.
    pub(crate) pid_mark: Option<u64>,
}

impl<I, O> Durable<I, O> {
    /// Appends a record (unless rebuilding, or stopped by an error).
    pub(crate) fn append(&mut self, record: Record) -> Option<u64> {
        if self.quiet || self.error.is_some() || self.stopped {
            return None;
        }
        let bytes = match postcard::to_allocvec(&record) {
            Ok(bytes) => bytes,
            Err(e) => {
                self.error = Some(JournalError::Encode(e));
                return None;
            }
        };
        match self.journal.append(&bytes) {
            Ok(lsn) => Some(lsn.0),
            Err(e) => {
                self.error = Some(e);
                None
            }
        }
    }

    /// Sets `pid`'s restart point.
    pub(crate) fn set_restart(&mut self, pid: Pid, lsn: u64) {
        if let Some(old) = self.restart_of.insert(pid, lsn) {
            self.restarts.remove(&(old, pid));
        }
        self.restarts.insert((lsn, pid));
    }

    /// `pid` is gone for good (joined, killed, or its result taken).
    pub(crate) fn clear_restart(&mut self, pid: Pid) {
        if let Some(old) = self.restart_of.remove(&pid) {
            self.restarts.remove(&(old, pid));
        }
    }

    /// Records below this LSN are needed by no process.
    pub(crate) fn needed_from(&self) -> u64 {
        self.restarts
            .first()
            .map_or(self.journal.next_lsn().0, |&(lsn, _)| lsn)
    }
}

/// What a durable kernel refuses to spawn (an unregistered template, or arguments
/// of another type than it was registered with), it refuses with nothing
/// journaled; what it takes, it journals after the process is made
/// ([`journal_create`]) with the arguments' encoding returned here.
pub(crate) fn check_spawn<I, O, A: 'static>(
    k: &Kernel<I, O>,
    name: &Arc<str>,
    args: &A,
) -> Result<Option<Vec<u8>>, SpawnError> {
    match &k.durable {
        Some(d) if !d.quiet => {
            let encode = d
                .registry
                .get(name)
                .map(|r| &r.encode_args)
                .ok_or_else(|| SpawnError::Unregistered(name.to_string()))?;
            Ok(Some(encode(args).ok_or_else(|| {
                SpawnError::Unregistered(name.to_string())
            })?))
        }
        _ => Ok(None),
    }
}

/// Journals a process made from a registered template: its restart point.
pub(crate) fn journal_create<I, O>(
    k: &mut Kernel<I, O>,
    pid: Pid,
    parent: Option<Pid>,
    name: &str,
    args: Vec<u8>,
) {
    if let Some(d) = &mut k.durable
        && let Some(lsn) = d.append(Record::Create {
            pid,
            parent,
            template: name.to_string(),
            args,
            started: d.spawning,
        })
    {
        d.set_restart(pid, lsn);
    }
}

/// A durable kernel cannot journal a stackless process.
pub(crate) fn check_stackless<I, O>(k: &Kernel<I, O>, name: &str) -> Result<(), SpawnError> {
    if k.durable.as_ref().is_some_and(|d| !d.quiet) {
        return Err(SpawnError::NotDurable(name.to_string()));
    }
    Ok(())
}

/// The hash of a message's encoding that SEND records keep.
pub(crate) fn hash_of<T: Serialize>(value: &T) -> u32 {
    crc32c::crc32c(&postcard::to_allocvec(value).unwrap_or_default())
}

/// Recovery could not rebuild the scheduler.
#[derive(Debug, Error)]
pub enum RecoveryError {
    /// The journal could not be read (or is corrupt, not at its tail).
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// A record could not be decoded.
    #[error("journal record {lsn} cannot be decoded: {source}")]
    Record {
        /// The record's LSN.
        lsn: u64,
        /// Why.
        source: postcard::Error,
    },
    /// A process was made from a template that is not registered.
    #[error("process {pid} was made from template {template:?}, which is not registered")]
    Unregistered {
        /// The process.
        pid: Pid,
        /// The template's name.
        template: String,
    },
    /// Recorded arguments or messages do not decode into the registered types.
    #[error("process {pid}: recorded {what} do not decode: {source}")]
    Decode {
        /// The process.
        pid: Pid,
        /// What did not decode.
        what: &'static str,
        /// Why.
        source: postcard::Error,
    },
    /// A process's stack could not be allocated.
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    /// A process the journal refers to has no records of its own (the journal
    /// lost records it needed).
    #[error("process {pid} is referred to, but the journal has no records of it")]
    Missing {
        /// The process.
        pid: Pid,
    },
}

/// What recovery found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Records read from the journal.
    pub records: u64,
    /// Processes re-run from their records (top-level ones; their children are
    /// re-run when they are spawned again).
    pub replayed: Vec<Pid>,
    /// Top-level processes whose records end in STOP: restored without running.
    pub fast_forwarded: Vec<Pid>,
    /// A torn tail that was cut off, if there was one.
    pub truncated: Option<TruncatedTail>,
}

/// Registers templates for a [`DurableScheduler`] and opens it.
pub struct DurableBuilder<M: 'static> {
    registry: BTreeMap<Arc<str>, Registration<M, M>>,
    options: JournalOptions,
    clock: Option<Box<dyn crate::Clock>>,
}

impl<M> DurableBuilder<M>
where
    M: Serialize + DeserializeOwned + Clone + 'static,
{
    /// Registers `template`: processes made from it can be journaled and rebuilt.
    /// Every template a durable scheduler runs must be registered, under a name of
    /// its own.
    pub fn register<A: Payload, R: Payload>(mut self, template: &Template<M, M, A, R>) -> Self {
        let t = template.clone();
        let name = template.opts.name.clone();
        let registration = Registration {
            encode_args: Box::new(|args: &dyn Any| {
                args.downcast_ref::<A>()
                    .and_then(|a| postcard::to_allocvec(a).ok())
            }),
            create: Box::new(
                move |k: &mut Kernel<M, M>, pid: Pid, parent: Option<Pid>, args: &[u8]| {
                    let args: A =
                        postcard::from_bytes(args).map_err(|source| RecoveryError::Decode {
                            pid,
                            what: "arguments",
                            source,
                        })?;
                    Ok(crate::engine::stackful::create(
                        k,
                        &t,
                        args,
                        parent,
                        Some(pid),
                    )?)
                },
            ),
            decode_result: Box::new(|bytes: &[u8]| {
                postcard::from_bytes::<R>(bytes)
                    .ok()
                    .map(|r| Box::new(r) as Box<dyn Any>)
            }),
        };
        self.registry.insert(name, registration);
        self
    }

    /// Sets the clock the scheduler reads (the system clock by default); see
    /// [`SimpleScheduler::set_clock`].
    pub fn clock(mut self, clock: impl crate::Clock + 'static) -> Self {
        self.clock = Some(Box::new(clock));
        self
    }

    /// Sets the journal's options (sync policy, segment size).
    pub fn options(mut self, options: JournalOptions) -> Self {
        self.options = options;
        self
    }

    /// Opens the journal in `dir` (created if missing) and rebuilds every process
    /// it holds.
    pub fn open(
        self,
        dir: impl AsRef<Path>,
    ) -> Result<(DurableScheduler<M>, Recovery), RecoveryError> {
        let (journal, recovered) = FileJournal::open(dir, self.options)?;
        let mut records = Vec::with_capacity(recovered.records.len());
        for (lsn, bytes) in &recovered.records {
            let record: Record = postcard::from_bytes(bytes)
                .map_err(|source| RecoveryError::Record { lsn: lsn.0, source })?;
            records.push((lsn.0, record));
        }
        let mut sched = SimpleScheduler::new();
        let durable = Durable {
            journal: Box::new(journal),
            encode: |m: &M| postcard::to_allocvec(m).unwrap_or_default(),
            decode: |bytes: &[u8]| postcard::from_bytes(bytes).ok(),
            hash_out: hash_of::<M>,
            encode_out: |m: &M| postcard::to_allocvec(m).unwrap_or_default(),
            registry: self.registry,
            error: None,
            stopped: false,
            pending: BTreeMap::new(),
            violations: Vec::new(),
            quiet: true,
            spawning: false,
            restarts: BTreeSet::new(),
            restart_of: BTreeMap::new(),
            pid_mark: None,
        };
        let mut recovery = Recovery {
            records: records.len() as u64,
            truncated: recovered.truncated.clone(),
            ..Recovery::default()
        };
        {
            let k = sched.kernel_mut();
            if let Some(clock) = self.clock {
                k.clock = clock;
            }
            k.durable = Some(Box::new(durable));
            // Children rebuilt from the journal receive copies of their parents'
            // messages before any spawn of this run.
            k.clone_in = Some(M::clone);
            rebuild(k, records, &mut recovery)?;
            k.durable.as_mut().expect("just set").quiet = false;
        }
        Ok((DurableScheduler { inner: sched }, recovery))
    }
}

/// An undelivered message as the journal tells it: sender, destination, reason
/// code, encoding.
type KeptMessage = (Option<Pid>, Option<Pid>, u8, Vec<u8>);

/// The state of one process as the journal tells it.
struct Sim {
    parent: Option<Pid>,
    /// The template and arguments it restarts from (its last snapshot's, if any).
    template: String,
    args: Vec<u8>,
    steps: u64,
    restart: u64,
    started: bool,
    stop: Option<StopRecord>,
    /// Its records after its restart point.
    log: VecDeque<Record>,
    inbox: VecDeque<Vec<u8>>,
    children: Vec<Pid>,
}

/// A delivery (or a kept message) is also its sender's SEND: put that in the
/// sender's records.
fn note_send(sims: &mut BTreeMap<Pid, Sim>, from: Option<SendStep>, to: Option<Pid>) {
    if let Some(from) = from
        && let Some(sender) = sims.get_mut(&from.pid)
    {
        sender.log.push_back(Record::Send {
            pid: from.pid,
            step: from.step,
            to,
            hash: from.hash,
            outcome: SendOutcome::Delivered,
        });
    }
}

fn remove_first(inbox: &mut VecDeque<Vec<u8>>, msg: &[u8]) {
    if let Some(i) = inbox.iter().position(|m| m == msg) {
        inbox.remove(i);
    }
}

fn live_tree(sims: &BTreeMap<Pid, Sim>, pid: Pid, out: &mut Vec<Pid>) {
    out.push(pid);
    for child in &sims[&pid].children {
        if let Some(c) = sims.get(child)
            && c.stop.is_none()
        {
            live_tree(sims, *child, out);
        }
    }
}

/// Replays the journal's records into process states, then rebuilds the processes.
fn rebuild<M>(
    k: &mut Kernel<M, M>,
    records: Vec<(u64, Record)>,
    recovery: &mut Recovery,
) -> Result<(), RecoveryError>
where
    M: Serialize + DeserializeOwned + Clone + 'static,
{
    let mut sims: BTreeMap<Pid, Sim> = BTreeMap::new();
    let mut next_pid = 0u64;
    let mut undelivered: Vec<KeptMessage> = Vec::new();
    for (lsn, record) in records {
        match &record {
            Record::Create {
                pid,
                parent,
                template,
                args,
                started,
            } => {
                next_pid = next_pid.max(pid.0 + 1);
                let inbox = parent
                    .and_then(|p| sims.get(&p))
                    .map(|p| p.inbox.clone())
                    .unwrap_or_default();
                sims.insert(
                    *pid,
                    Sim {
                        parent: *parent,
                        template: template.clone(),
                        args: args.clone(),
                        steps: 0,
                        restart: lsn,
                        started: *started || parent.is_some(),
                        stop: None,
                        log: VecDeque::new(),
                        inbox,
                        children: Vec::new(),
                    },
                );
                if let Some(parent) = parent.and_then(|p| sims.get_mut(&p)) {
                    parent.children.push(*pid);
                    parent.log.push_back(record.clone());
                }
            }
            Record::Start { pid } => {
                if let Some(s) = sims.get_mut(pid) {
                    s.started = true;
                }
            }
            Record::Deliver {
                to,
                msg,
                from,
                evicted,
            } => {
                note_send(&mut sims, *from, Some(*to));
                if sims.contains_key(to) {
                    let mut tree = Vec::new();
                    live_tree(&sims, *to, &mut tree);
                    for pid in tree {
                        sims.get_mut(&pid)
                            .expect("in the tree")
                            .inbox
                            .push_back(msg.clone());
                    }
                }
                for (pid, gone) in evicted {
                    if let Some(s) = sims.get_mut(pid) {
                        remove_first(&mut s.inbox, gone);
                    }
                }
            }
            Record::Undelivered {
                from,
                to,
                reason,
                msg,
            } => {
                note_send(&mut sims, *from, *to);
                undelivered.push((from.map(|f| f.pid), *to, *reason, msg.clone()));
            }
            Record::UndeliveredTaken => undelivered.clear(),
            Record::NextPid { next } => next_pid = next_pid.max(*next),
            Record::Evict { pid, msg } => {
                if let Some(s) = sims.get_mut(pid) {
                    remove_first(&mut s.inbox, msg);
                }
            }
            Record::Take { pid, msg, .. } => {
                if let Some(s) = sims.get_mut(pid) {
                    if let Some(msg) = msg {
                        remove_first(&mut s.inbox, msg);
                    }
                    s.log.push_back(record.clone());
                }
            }
            Record::Transition {
                pid,
                parent,
                step,
                template,
                args,
                inbox,
                children,
                next_pid: next,
            } => {
                next_pid = next_pid.max(*next).max(pid.0 + 1);
                // A snapshot: the process restarts here, whatever came before (its
                // older records may have been deleted).
                sims.insert(
                    *pid,
                    Sim {
                        parent: *parent,
                        template: template.clone(),
                        args: args.clone(),
                        steps: step + 1,
                        restart: lsn,
                        started: true,
                        stop: None,
                        log: VecDeque::new(),
                        inbox: inbox.iter().cloned().collect(),
                        children: children.clone(),
                    },
                );
            }
            Record::Use { pid, .. }
            | Record::Intent { pid, .. }
            | Record::Timer { pid, .. }
            | Record::Interrupted { pid, .. }
            | Record::Send { pid, .. }
            | Record::Join { pid, .. } => {
                if let Some(s) = sims.get_mut(pid) {
                    s.log.push_back(record.clone());
                }
            }
            Record::Stop { pid, exit } => {
                if let Some(s) = sims.get_mut(pid) {
                    s.stop = Some(exit.clone());
                }
            }
            Record::Reaped { pid } => {
                sims.remove(pid);
            }
        }
    }
    k.set_next_pid(next_pid);
    for (from, to, reason, msg) in undelivered {
        let msg: M = postcard::from_bytes(&msg).map_err(|source| RecoveryError::Decode {
            pid: from.unwrap_or(Pid(u64::MAX)),
            what: "undelivered messages",
            source,
        })?;
        k.undelivered.push(crate::kernel::Undelivered {
            from,
            to,
            reason: crate::kernel::UndeliveredReason::from_code(reason),
            msg,
        });
    }
    let mut tops = Vec::new();
    for (pid, sim) in sims {
        if sim.parent.is_none() {
            tops.push(pid);
        }
        let inbox = decode_inbox::<M>(pid, sim.inbox)?;
        k.durable.as_mut().expect("durable").pending.insert(
            pid,
            Pending {
                template: sim.template,
                args: sim.args,
                steps: sim.steps,
                started: sim.started,
                log: sim.log,
                inbox,
                stop: sim.stop,
                children: sim.children,
                restart: sim.restart,
            },
        );
    }
    // Every process is rebuilt now, parents before their children, so that
    // messages sent right after opening reach them all.
    for pid in tops {
        let pending = &k.durable.as_ref().expect("durable").pending[&pid];
        let (ended, started) = (pending.stop.is_some(), pending.started);
        rebuild_process(k, pid, None)?;
        if ended {
            recovery.fast_forwarded.push(pid);
        } else if started {
            recovery.replayed.push(pid);
        }
    }
    // Left over: children of processes that ended (killed with them).
    k.durable.as_mut().expect("durable").pending.clear();
    Ok(())
}

/// Rebuilds process `pid` from what the journal holds of it (quietly: it is all in
/// the journal already): fast-forwarded if its records end in STOP (a top-level
/// one's result kept for the owner, a child's for its parent's join), otherwise
/// created from its template (or its last snapshot) and replayed, with the
/// children of its snapshot rebuilt with it. Its children spawned after its
/// restart point are rebuilt when its replay spawns them again.
pub(crate) fn rebuild_process<I: 'static, O: 'static>(
    k: &mut Kernel<I, O>,
    pid: Pid,
    parent: Option<Pid>,
) -> Result<(), RecoveryError> {
    let d = k.durable.as_mut().expect("durable");
    let Some(pending) = d.pending.remove(&pid) else {
        return Err(RecoveryError::Missing { pid });
    };
    // Out of the registry while it creates (it needs the kernel), back after.
    let Some((name, registration)) = d.registry.remove_entry(pending.template.as_str()) else {
        return Err(RecoveryError::Unregistered {
            pid,
            template: pending.template,
        });
    };
    let was_quiet = std::mem::replace(&mut d.quiet, true);
    d.set_restart(pid, pending.restart);
    let rebuilt = rebuild_with(k, pid, parent, pending, &name, &registration);
    let d = k.durable.as_mut().expect("durable");
    d.quiet = was_quiet;
    d.registry.insert(name, registration);
    rebuilt
}

fn rebuild_with<I: 'static, O: 'static>(
    k: &mut Kernel<I, O>,
    pid: Pid,
    parent: Option<Pid>,
    pending: Pending<I>,
    name: &Arc<str>,
    registration: &Registration<I, O>,
) -> Result<(), RecoveryError> {
    if let Some(stop) = pending.stop {
        let result = match stop {
            StopRecord::Normal(bytes) => match (registration.decode_result)(&bytes) {
                Some(r) => Ok(r),
                None => Err(ExitError::Failed(
                    "the recorded result does not decode".into(),
                )),
            },
            StopRecord::Failed(m) => Err(ExitError::Failed(m)),
            StopRecord::Killed(m) => Err(ExitError::Killed(m)),
        };
        match parent {
            None => {
                k.finished.insert(pid, crate::kernel::Finished { result });
            }
            Some(parent) => {
                k.create_stopped(name.clone(), pid, parent, result);
            }
        }
        return Ok(());
    }
    let p = (registration.create)(k, pid, parent, &pending.args)?;
    // SAFETY: p was just created.
    let proc = unsafe { &mut *p.as_ptr() };
    proc.extra().steps = pending.steps;
    // The inbox as it was at the crash, in the real queue: what arrives now queues
    // behind it under the inbox's own capacity and policy.
    proc.inbox.queue = pending.inbox;
    if pending.started {
        proc.extra().replay = Some(Box::new(Replay { log: pending.log }));
    }
    for child in pending.children {
        rebuild_process(k, child, Some(pid))?;
        // SAFETY: p is live.
        unsafe { (*p.as_ptr()).extra().children.push(child) };
    }
    if pending.started {
        k.start(p);
    }
    Ok(())
}

fn decode_inbox<M: DeserializeOwned>(
    pid: Pid,
    inbox: VecDeque<Vec<u8>>,
) -> Result<VecDeque<M>, RecoveryError> {
    inbox
        .into_iter()
        .map(|m| {
            postcard::from_bytes(&m).map_err(|source| RecoveryError::Decode {
                pid,
                what: "messages",
                source,
            })
        })
        .collect()
}

/// A [`SimpleScheduler`] whose processes survive a crash of the program: every
/// input is journaled, and [`open`](DurableBuilder::open) rebuilds every process
/// from the journal. See the [module docs](self) for what is journaled and what is
/// guaranteed.
///
/// Its message type, and the arguments and results of its templates, must be
/// serde types; every template must be [registered](DurableBuilder::register).
pub struct DurableScheduler<M: 'static> {
    inner: SimpleScheduler<M>,
}

impl<M> fmt::Debug for DurableScheduler<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DurableScheduler")
            .field("live", &self.inner.live())
            .finish()
    }
}

impl<M> DurableScheduler<M>
where
    M: Serialize + DeserializeOwned + Clone + 'static,
{
    /// Starts registering templates; then [`open`](DurableBuilder::open) a journal.
    pub fn builder() -> DurableBuilder<M> {
        DurableBuilder {
            registry: BTreeMap::new(),
            options: JournalOptions::default(),
            clock: None,
        }
    }

    /// The journal error that stopped the run: the error itself the first time,
    /// [`JournalError::Poisoned`] after.
    fn check(&mut self) -> Result<(), JournalError> {
        let d = self.durable_mut();
        if let Some(e) = d.error.take() {
            d.stopped = true;
            return Err(e);
        }
        if d.stopped {
            return Err(JournalError::Poisoned);
        }
        Ok(())
    }

    /// Creates and starts a process (journaled).
    pub fn spawn<A: 'static, R: Payload>(
        &mut self,
        template: &Template<M, M, A, R>,
        args: A,
    ) -> Result<Handle<R>, SpawnError> {
        if self.is_stopped() {
            return Err(SpawnError::Stopped);
        }
        self.durable_mut().spawning = true;
        let spawned = self.inner.spawn(template, args);
        self.durable_mut().spawning = false;
        spawned
    }

    /// Whether a journal error stopped the run.
    pub fn is_stopped(&self) -> bool {
        self.inner
            .kernel()
            .durable
            .as_ref()
            .is_some_and(|d| d.error.is_some() || d.stopped)
    }

    fn durable_mut(&mut self) -> &mut Durable<M, M> {
        self.inner.kernel_mut().durable.as_mut().expect("durable")
    }

    /// Creates a process, not started (journaled).
    pub fn create<A: 'static, R: Payload>(
        &mut self,
        template: &Template<M, M, A, R>,
        args: A,
    ) -> Result<Handle<R>, SpawnError> {
        if self.is_stopped() {
            return Err(SpawnError::Stopped);
        }
        self.inner.create(template, args)
    }

    /// Starts a created process (journaled).
    pub fn start(&mut self, pid: Pid) -> Result<(), StartError> {
        if self.is_stopped() {
            return Err(StartError::Stopped(pid));
        }
        self.inner.start(pid)
    }

    /// Sends from outside (journaled when delivered).
    pub fn send(&mut self, to: Pid, msg: M) -> Result<(), SendError<M>> {
        if self.is_stopped() {
            return Err(SendError::Stopped(msg));
        }
        self.inner.send(to, msg)
    }

    /// One pass, then one group commit of everything the pass journaled. A journal
    /// error stops the run: this and every later call return it.
    pub fn update(&mut self) -> Result<Pass, JournalError> {
        self.check()?;
        let pass = self.inner.update();
        self.commit()?;
        Ok(pass)
    }

    fn commit(&mut self) -> Result<(), JournalError> {
        let k = self.inner.kernel_mut();
        let next_pid = k.next_pid();
        let d = k.durable.as_mut().expect("durable");
        let needed = d.needed_from();
        if d.pid_mark.is_none_or(|mark| mark < needed) {
            // The records that go may be the last to name the highest pids.
            d.pid_mark = d.append(Record::NextPid { next: next_pid });
        }
        if d.error.is_none() && !d.stopped {
            // Then segments that hold only records no process needs go.
            let needed = Lsn(needed);
            if let Err(e) = d
                .journal
                .commit()
                .and_then(|()| d.journal.release_before(needed))
            {
                d.error = Some(e);
            }
        }
        self.check()
    }

    /// Runs passes (each committed) until one runs nothing.
    pub fn run_until_idle(&mut self) -> Result<usize, JournalError> {
        let mut total = 0;
        loop {
            let pass = self.update()?;
            if pass.is_idle() {
                return Ok(total);
            }
            total += pass.ran;
        }
    }

    /// Takes the result of an ended top-level process (journaled: its records are
    /// not needed any more).
    pub fn result<R: Payload>(&mut self, handle: Handle<R>) -> Option<Result<R, ExitError>> {
        self.result_of(handle.pid())
    }

    /// Takes the result of an ended top-level process, by pid (for processes
    /// rebuilt from the journal, which have no handle yet). `None` while it runs,
    /// once taken, or if its result is not an `R` (it then stays for the right
    /// type).
    pub fn result_of<R: Payload>(&mut self, pid: Pid) -> Option<Result<R, ExitError>> {
        let result = self.inner.kernel_mut().take_result(pid)?;
        let d = self.durable_mut();
        d.append(Record::Reaped { pid });
        d.clear_restart(pid);
        Some(result)
    }

    /// Where a process stands.
    pub fn status(&self, pid: Pid) -> Option<Status> {
        self.inner.status(pid)
    }

    /// How many processes exist.
    pub fn live(&self) -> usize {
        self.inner.live()
    }

    /// Takes the messages kept because they could not be delivered (journaled:
    /// they are kept across a crash until taken).
    pub fn take_undelivered(&mut self) -> Vec<Undelivered<M>> {
        let taken = self.inner.take_undelivered();
        if !taken.is_empty() {
            self.durable_mut().append(Record::UndeliveredTaken);
        }
        taken
    }

    /// Processes held because their calls did not match their records.
    pub fn violations(&self) -> &[DeterminismViolation] {
        self.inner
            .kernel()
            .durable
            .as_ref()
            .map(|d| d.violations.as_slice())
            .unwrap_or(&[])
    }

    /// The earliest deadline of an armed timer.
    pub fn next_deadline(&self) -> Option<crate::Time> {
        self.inner.next_deadline()
    }

    /// The scheduler underneath, for introspection.
    pub fn scheduler(&self) -> &SimpleScheduler<M> {
        &self.inner
    }
}
