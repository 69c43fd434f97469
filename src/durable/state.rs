//! The durability state of a kernel: the journal, the registry of templates, the
//! restart points that decide which segments may go, and what a process being
//! replayed has left of its records.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use thiserror::Error;

use crate::durable::layout::Layouts;
use crate::durable::policy::CommitPolicy;
use crate::durable::record::{Record, StopRecord};
use crate::durable::recover::RecoveryError;
use crate::journal::{Journal, JournalError};
use crate::kernel::{Kernel, PPtr, Proc};
use crate::signal::{Pid, Value};

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

/// What the durable layer keeps of each process, in its record (`Extra::layer`):
/// its journaled calls so far, and while it is replayed, its remaining records.
/// (Its inbox is rebuilt as the journal left it at the crash, directly in its
/// queue.)
#[derive(Default)]
pub(crate) struct ProcJournal {
    pub(crate) steps: u64,
    /// The LSN of the last record that is an input of this process (its
    /// creation, start, takes, effects' results, timers, sends): it may perform
    /// an effect once that record is committed.
    pub(crate) last: Option<u64>,
    pub(crate) replay: Option<VecDeque<Record>>,
}

impl ProcJournal {
    /// `p`'s, made on first use.
    pub(crate) fn of<I, O>(p: &mut Proc<I, O>) -> &mut ProcJournal {
        p.extra()
            .layer
            .get_or_insert_with(|| Box::new(ProcJournal::default()))
            .downcast_mut()
            .expect("the durable layer's own state")
    }
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
    /// The layouts of its arguments and result (those that can be traced).
    pub(crate) layouts: Vec<(String, u32)>,
    pub(crate) encode_args: EncodeArgs,
    pub(crate) create: CreateFrom<I, O>,
    pub(crate) decode_result: DecodeResult,
    /// Encodes a result of the template's type (given as `&dyn Any`).
    pub(crate) encode_result: fn(&dyn Any) -> Value,
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
    /// Its system messages (the toolkit's notices).
    pub(crate) sys: crate::durable::otp::SysMirror,
}

/// The durability state of a kernel.
pub(crate) struct Durable<I, O> {
    pub(crate) journal: Box<dyn Journal>,
    pub(crate) encode: fn(&I) -> Result<Vec<u8>, postcard::Error>,
    pub(crate) decode: fn(&[u8]) -> Option<I>,
    pub(crate) encode_out: fn(&O) -> Result<Vec<u8>, postcard::Error>,
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
    /// The LSN of the first UNDELIVERED record not yet taken by the owner: it and
    /// the records after it are needed until `take_undelivered`.
    pub(crate) kept_from: Option<u64>,
    /// When processes wait for their records to be durable.
    pub(crate) policy: CommitPolicy,
    /// Records below this LSN are committed.
    pub(crate) committed: u64,
    /// Processes waiting for the next commit before they perform an effect.
    pub(crate) committing: Vec<Pid>,
    /// The layouts of the types whose values the journal holds.
    pub(crate) layouts: Layouts,
    /// The LSN of the first of the last LAYOUT records: renewed whenever older
    /// records may go, so that the journal always says what its bytes mean.
    pub(crate) layout_mark: Option<u64>,
    /// The LSN of the last NEXT_PID record: renewed whenever older records may go,
    /// so that pids are never handed out twice.
    pub(crate) pid_mark: Option<u64>,
    /// The LSN of the last OTP_STATE record: renewed whenever older records may
    /// go, so that the toolkit's state outlives the records that made it.
    pub(crate) otp_mark: Option<u64>,
    /// A spawn tied to its spawner is under way (`Hooks::tie`): the spawner,
    /// its step, and its call, which the new process's creation records.
    pub(crate) tie: Option<(Pid, u64, crate::otp::record::OtpCall)>,
    /// The process whose creation was a tied spawn's record: its start is in
    /// that record too.
    pub(crate) tied: Option<Pid>,
    /// The typed requests it journals, by their type's name.
    pub(crate) codecs: BTreeMap<&'static str, crate::kernel::hooks::Codec>,
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

    /// The encoding of an inbound message. One that cannot be encoded (its
    /// `Serialize` fails or panics) stops the run with [`JournalError::Encode`]:
    /// nothing is journaled from here, so the empty bytes returned then are
    /// never written.
    pub(crate) fn enc(&mut self, m: &I) -> Vec<u8> {
        let encoded = (self.encode)(m);
        self.encoded(encoded)
    }

    /// As [`enc`](Self::enc), for an outbound message.
    pub(crate) fn enc_out(&mut self, m: &O) -> Vec<u8> {
        let encoded = (self.encode_out)(m);
        self.encoded(encoded)
    }

    /// The hash of an outbound message's encoding, as SEND records keep it.
    pub(crate) fn hash_out(&mut self, m: &O) -> u32 {
        crc32c::crc32c(&self.enc_out(m))
    }

    fn encoded(&mut self, encoded: Result<Vec<u8>, postcard::Error>) -> Vec<u8> {
        encoded.unwrap_or_else(|e| {
            self.error.get_or_insert(JournalError::Encode(e));
            Vec::new()
        })
    }

    /// Appends a record that is an input of `p` (see [`ProcJournal::last`]).
    pub(crate) fn append_for(&mut self, p: &mut Proc<I, O>, record: Record) -> Option<u64> {
        let lsn = self.append(record);
        if lsn.is_some() {
            ProcJournal::of(p).last = lsn;
        }
        lsn
    }

    /// A journal error stopped the run: nothing more may run or be journaled.
    pub(crate) fn halted(&self) -> bool {
        self.error.is_some() || self.stopped
    }

    /// Journals the layout of each type (see `layout.rs`).
    pub(crate) fn journal_layouts(&mut self) {
        let layouts: Vec<Record> = self
            .layouts
            .iter()
            .map(|(what, &fingerprint)| Record::Layout {
                what: what.clone(),
                fingerprint,
            })
            .collect();
        self.layout_mark = None;
        for record in layouts {
            let lsn = self.append(record);
            self.layout_mark = self.layout_mark.or(lsn);
        }
        if self.layouts.is_empty() {
            // Nothing to say: never again.
            self.layout_mark = Some(u64::MAX);
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

    /// Records below this LSN are needed by no process, nor by the owner: no
    /// process's restart point, no undelivered message not yet taken, is below
    /// it. (Results not yet read are kept by their processes' restart points,
    /// which go only when the result is taken.)
    pub(crate) fn needed_by_processes(&self) -> u64 {
        let restart = self
            .restarts
            .first()
            .map_or(self.journal.next_lsn().0, |&(lsn, _)| lsn);
        self.kept_from.map_or(restart, |kept| kept.min(restart))
    }
}
