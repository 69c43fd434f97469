//! Recovery: the journal's records replayed into what each process was at the
//! crash, then every process rebuilt, parents before children.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;

use crate::durable::hooks::{durable, durable_mut};
use crate::durable::record::{Record, SendOutcome, SendStep, StopRecord};
use crate::durable::state::{Pending, ProcJournal, Registration};
use crate::error::{ExitError, SpawnError};
use crate::journal::{JournalError, TruncatedTail};
use crate::kernel::Kernel;
use crate::signal::Pid;

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
    // Iterative (a deep chain of children costs heap, not stack), parents before
    // children, siblings in spawn order.
    let mut todo = vec![pid];
    while let Some(pid) = todo.pop() {
        out.push(pid);
        for child in sims[&pid].children.iter().rev() {
            if let Some(c) = sims.get(child)
                && c.stop.is_none()
            {
                todo.push(*child);
            }
        }
    }
}

/// Replays the journal's records into process states, then rebuilds the processes.
pub(crate) fn rebuild<M>(
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
    // The LSN of the first of them: the journal keeps it until they are taken.
    let mut kept_from = None;
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
                kept_from.get_or_insert(lsn);
            }
            Record::UndeliveredTaken => {
                undelivered.clear();
                kept_from = None;
            }
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
    durable_mut(k).expect("durable").kept_from = kept_from;
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
        durable_mut(k).expect("durable").pending.insert(
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
        let pending = &durable(k).expect("durable").pending[&pid];
        let (ended, started) = (pending.stop.is_some(), pending.started);
        rebuild_process(k, pid, None)?;
        if ended {
            recovery.fast_forwarded.push(pid);
        } else if started {
            recovery.replayed.push(pid);
        }
    }
    // Left over: children of processes that ended (killed with them).
    durable_mut(k).expect("durable").pending.clear();
    Ok(())
}

/// Rebuilds process `pid` from what the journal holds of it (quietly: it is all in
/// the journal already): fast-forwarded if its records end in STOP (a top-level
/// one's result kept for the owner, a child's for its parent's join), otherwise
/// created from its template (or its last snapshot) and replayed, with the
/// children of its snapshot rebuilt with it. Its children spawned after its
/// restart point are rebuilt when its replay spawns them again.
fn rebuild_process<I: 'static, O: 'static>(
    k: &mut Kernel<I, O>,
    pid: Pid,
    parent: Option<Pid>,
) -> Result<(), RecoveryError> {
    let d = durable_mut(k).expect("durable");
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
    let d = durable_mut(k).expect("durable");
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
    let journal = ProcJournal::of(proc);
    journal.steps = pending.steps;
    // The inbox as it was at the crash, in the real queue: what arrives now queues
    // behind it under the inbox's own capacity and policy.
    proc.inbox.queue = pending.inbox;
    if pending.started {
        proc.extra().replaying = !pending.log.is_empty();
        ProcJournal::of(proc).replay = Some(pending.log);
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
