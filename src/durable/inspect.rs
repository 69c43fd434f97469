//! Reading a durable scheduler's journal without opening a scheduler on it: its
//! records, each described and placed, and a check that it would open, with a
//! summary of its processes. For tools (see the `journal` example); changes
//! nothing on disk.

use std::path::{Path, PathBuf};

use crate::durable::fold::Fold;
use crate::durable::record::Record;
use crate::durable::recover::RecoveryError;
use crate::journal::{
    FileJournal, HEAD_FILE, JournalError, JournalOptions, JournalReader, Lsn, RecordPosition,
    SyncPolicy,
};
use crate::signal::Pid;

/// One record of a durable scheduler's journal, described.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordInfo {
    /// Its LSN.
    pub lsn: Lsn,
    /// Where it is: its segment file and the offset of its frame.
    pub at: RecordPosition,
    /// The process it is about (the receiver, for a delivery), if any.
    pub pid: Option<Pid>,
    /// The sender, for a delivery or an undelivered message sent by a process.
    pub from: Option<Pid>,
    /// What it says, in a line.
    pub text: String,
}

/// What a journal holds of one process, as of its last record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    /// Its pid.
    pub pid: Pid,
    /// Its parent, if it is a child.
    pub parent: Option<Pid>,
    /// The template it restarts from (its last snapshot's, if it made one).
    pub template: String,
    /// The LSN of its restart point: its creation or its last snapshot.
    pub restart: u64,
    /// Whether it was started.
    pub started: bool,
    /// Whether it ended (its result not yet taken).
    pub ended: bool,
    /// Its records since its restart point, which a replay goes through.
    pub records: usize,
    /// The messages in its inbox.
    pub inbox: usize,
}

/// What [`check`] found: the journal would open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalSummary {
    /// Its segment files, oldest first.
    pub segments: Vec<PathBuf>,
    /// The records read.
    pub records: u64,
    /// Its processes, by pid.
    pub processes: Vec<ProcessInfo>,
    /// The messages kept undelivered, not yet taken.
    pub undelivered: usize,
}

/// Reads the journal in `dir` record by record, without changing it (not even a
/// torn tail is cut; a directory without a journal is refused with
/// [`JournalError::MissingHead`], not made one). Fails with the reason the journal does not open, as
/// [`DurableBuilder::open`](crate::durable::DurableBuilder::open) would, at the
/// first record that shows it. The journal must not be open elsewhere.
pub fn records(dir: impl AsRef<Path>) -> Result<Records, RecoveryError> {
    Ok(Records {
        reader: reader(dir.as_ref())?,
    })
}

/// The records of a journal, described: see [`records`].
#[derive(Debug)]
pub struct Records {
    reader: JournalReader,
}

impl Iterator for Records {
    type Item = Result<RecordInfo, RecoveryError>;

    fn next(&mut self) -> Option<Self::Item> {
        let entry = match self.reader.next()? {
            Ok(entry) => entry,
            Err(e) => return Some(Err(e.into())),
        };
        Some(decode(&entry).map(|record| RecordInfo {
            lsn: entry.lsn,
            at: entry.position(),
            pid: record.subject(),
            from: record.sender(),
            text: record.describe(),
        }))
    }
}

/// Checks that the journal in `dir` would open, as far as can be known without
/// its templates and types (their registration, and the layouts of the types,
/// are checked by [`DurableBuilder::open`](crate::durable::DurableBuilder::open)):
/// its segments and every record, and that no process lost its beginning. Gives
/// the reason it does not open, or a summary. Changes nothing on disk.
pub fn check(dir: impl AsRef<Path>) -> Result<JournalSummary, RecoveryError> {
    let mut reader = reader(dir.as_ref())?;
    let mut fold = Fold::default();
    let mut segments: Vec<PathBuf> = Vec::new();
    for entry in reader.by_ref() {
        let entry = entry?;
        if segments.last().is_none_or(|s| **s != *entry.file) {
            segments.push(entry.file.to_path_buf());
        }
        fold.apply(entry.lsn.0, decode(&entry)?)?;
    }
    fold.check()?;
    Ok(JournalSummary {
        segments,
        records: fold.records,
        processes: fold.processes(),
        undelivered: fold.undelivered(),
    })
}

fn reader(dir: &Path) -> Result<JournalReader, RecoveryError> {
    // Not a journal (no directory, or no HEAD in it): refused before the reader,
    // which would make one.
    if !dir.join(HEAD_FILE).is_file() {
        return Err(JournalError::MissingHead {
            dir: dir.to_path_buf(),
        }
        .into());
    }
    // `Never`: reading syncs nothing either.
    let options = JournalOptions::default().sync(SyncPolicy::Never);
    Ok(FileJournal::read(dir, options)?)
}

fn decode(entry: &crate::journal::Entry) -> Result<Record, RecoveryError> {
    postcard::from_bytes(&entry.bytes).map_err(|source| RecoveryError::Record {
        lsn: entry.lsn.0,
        at: entry.position(),
        source,
    })
}
