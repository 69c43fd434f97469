//! Recovery: what it can fail with and what it reports, and each process
//! rebuilt from what the journal's records, folded (`fold.rs`), say it was at
//! the crash.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use thiserror::Error;

use crate::durable::hooks::durable_mut;
use crate::durable::record::StopRecord;
use crate::durable::state::{Pending, ProcJournal, Registration};
use crate::error::{ExitError, SpawnError};
use crate::journal::{JournalError, RecordPosition, TruncatedTail};
use crate::kernel::pass::{forget_quietly, panic_message};
use crate::kernel::{Kernel, PPtr};
use crate::signal::Pid;

/// Recovery could not rebuild the scheduler.
#[derive(Debug, Error)]
pub enum RecoveryError {
    /// The journal could not be read (or is corrupt, not at its tail).
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// A record could not be decoded.
    #[error("journal record {lsn} at {at} cannot be decoded: {source}")]
    Record {
        /// The record's LSN.
        lsn: u64,
        /// Where it is: its segment file and the offset of its frame.
        at: RecordPosition,
        /// Why.
        source: postcard::Error,
    },
    /// The serde layout of a type changed since the journal recorded values of
    /// it: its bytes would decode into something else (two fields of the same
    /// type swapped, say). Refused unless declared with
    /// [`DurableBuilder::layout_changed`](crate::durable::DurableBuilder::layout_changed).
    #[error(
        "the serde layout of the {what} changed since the journal recorded it (fingerprint {recorded:08x}, now {current:08x}): declare it with DurableBuilder::layout_changed if the journal's values still decode as they meant"
    )]
    LayoutChanged {
        /// Whose layout: `"message"`, `"args of NAME"`, `"result of NAME"`.
        what: String,
        /// The fingerprint the journal holds.
        recorded: u32,
        /// The fingerprint of the type now.
        current: u32,
    },
    /// A process was made from a template that is not registered.
    #[error("process {pid} was made from template {template:?}, which is not registered")]
    Unregistered {
        /// The process.
        pid: Pid,
        /// The template's name.
        template: String,
    },
    /// Recorded arguments or messages do not decode into the registered types
    /// (or their `Deserialize` panicked).
    #[error("process {pid}: recorded {what} do not decode: {why}")]
    Decode {
        /// The process.
        pid: Pid,
        /// What did not decode.
        what: &'static str,
        /// Why.
        why: String,
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
    /// Records of a process that had not ended, without its creation or a
    /// snapshot of it: the journal lost the records it began with.
    #[error(
        "journal records of process {pid} (the first at LSN {lsn}), which had not ended, but none of its creation or of a snapshot: records are missing"
    )]
    Orphan {
        /// The process.
        pid: Pid,
        /// The first record naming it.
        lsn: u64,
    },
    /// Records that contradict each other (a process created twice, say).
    #[error("journal record {lsn} does not fit the records before it: {what}")]
    Inconsistent {
        /// The record's LSN.
        lsn: u64,
        /// What is wrong.
        what: String,
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

/// A process being rebuilt, whose children are rebuilt before it starts.
struct Frame<I, O> {
    pid: Pid,
    p: PPtr<I, O>,
    children: std::vec::IntoIter<Pid>,
    started: bool,
}

/// Rebuilds process `pid` and its tree from what the journal holds of them
/// (quietly: it is all in the journal already). Each is fast-forwarded if its
/// records end in STOP (a top-level one's result kept for the owner, a child's
/// for its parent's join), otherwise created from its template (or its last
/// snapshot) and replayed, with the children of its snapshot rebuilt with it,
/// before it starts. Children spawned after its restart point are rebuilt when
/// its replay spawns them again. Iterative: a deep chain of children costs heap,
/// not stack.
pub(crate) fn rebuild_process<I: 'static, O: 'static>(
    k: &mut Kernel<I, O>,
    pid: Pid,
    parent: Option<Pid>,
) -> Result<(), RecoveryError> {
    let d = durable_mut(k).expect("durable");
    let was_quiet = std::mem::replace(&mut d.quiet, true);
    let rebuilt = rebuild_tree(k, pid, parent);
    durable_mut(k).expect("durable").quiet = was_quiet;
    rebuilt
}

fn rebuild_tree<I: 'static, O: 'static>(
    k: &mut Kernel<I, O>,
    pid: Pid,
    parent: Option<Pid>,
) -> Result<(), RecoveryError> {
    let mut stack: Vec<Frame<I, O>> = Vec::new();
    stack.extend(rebuild_one(k, pid, parent)?);
    while let Some(top) = stack.last_mut() {
        if let Some(child) = top.children.next() {
            let (pid, p) = (top.pid, top.p);
            match rebuild_one(k, child, Some(pid))? {
                Some(frame) => stack.push(frame),
                // Fast-forwarded: it has no children to wait for.
                // SAFETY: p is live.
                None => unsafe { (*p.as_ptr()).extra().children.push(child) },
            }
            continue;
        }
        let done = stack.pop().expect("the top frame");
        if done.started {
            k.start(done.p);
        }
        if let Some(parent) = stack.last() {
            // SAFETY: the parent is live.
            unsafe { (*parent.p.as_ptr()).extra().children.push(done.pid) };
        }
    }
    Ok(())
}

/// Rebuilds `pid` alone: `None` if it was fast-forwarded, or the frame of a
/// process created, not started, whose children are to be rebuilt.
fn rebuild_one<I: 'static, O: 'static>(
    k: &mut Kernel<I, O>,
    pid: Pid,
    parent: Option<Pid>,
) -> Result<Option<Frame<I, O>>, RecoveryError> {
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
    d.set_restart(pid, pending.restart);
    let rebuilt = rebuild_with(k, pid, parent, pending, &name, &registration);
    durable_mut(k)
        .expect("durable")
        .registry
        .insert(name, registration);
    rebuilt
}

fn rebuild_with<I: 'static, O: 'static>(
    k: &mut Kernel<I, O>,
    pid: Pid,
    parent: Option<Pid>,
    pending: Pending<I>,
    name: &Arc<str>,
    registration: &Registration<I, O>,
) -> Result<Option<Frame<I, O>>, RecoveryError> {
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
            StopRecord::Other(e) => Err(e),
        };
        match parent {
            None => {
                k.finished.insert(pid, crate::kernel::Finished { result });
            }
            Some(parent) => {
                k.create_stopped(name.clone(), pid, parent, result);
            }
        }
        return Ok(None);
    }
    let codecs = if pending.sys.is_empty() {
        Default::default()
    } else {
        durable_mut(k).expect("durable").codecs.clone()
    };
    let p = (registration.create)(k, pid, parent, &pending.args)?;
    // SAFETY: p was just created.
    let proc = unsafe { &mut *p.as_ptr() };
    let journal = ProcJournal::of(proc);
    journal.steps = pending.steps;
    // The inbox as it was at the crash, in the real queue: what arrives now queues
    // behind it under the inbox's own capacity and policy.
    proc.inbox.queue = pending.inbox;
    crate::durable::otp::install_sys(proc, pending.sys, &codecs)?;
    if pending.started {
        proc.extra().replaying = !pending.log.is_empty();
        ProcJournal::of(proc).replay = Some(pending.log);
    }
    Ok(Some(Frame {
        pid,
        p,
        children: pending.children.into_iter(),
        started: pending.started,
    }))
}

/// Decodes a recorded value of the user's type. A `Deserialize` that panics is
/// that record's damage, reported as such: recovery never unwinds.
pub(crate) fn decode_caught<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    match catch_unwind(AssertUnwindSafe(|| postcard::from_bytes::<T>(bytes))) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(e.to_string()),
        Err(payload) => {
            let why = format!("its Deserialize panicked: {}", panic_message(&*payload));
            forget_quietly(payload);
            Err(why)
        }
    }
}
