//! The journal: an append-only log of records, the storage under replay.
//!
//! A scheduler appends one record per event it must be able to replay
//! ([`Journal::append`]), calls [`Journal::commit`] once per pass (the group-commit
//! point: one `fdatasync` covers every record of the pass), and says with
//! [`Journal::release_before`] which records it no longer needs. At start-up,
//! [`FileJournal::open`] hands back every record that survived, in order, with its
//! [`Lsn`] and its position (file and byte offset); [`FileJournal::read`] does the
//! same as a stream, in bounded memory.
//!
//! Records are opaque bytes at this layer. [`JournalExt::append_value`] and
//! [`decode`] (or [`Recovered::decode`]) are the typed convenience on top: the
//! value's postcard encoding is the record.
//!
//! ```
//! use chronoflow::journal::{FileJournal, Journal, JournalExt, JournalOptions, Lsn};
//!
//! let dir = std::env::temp_dir().join(format!("chronoflow-doc-{}", std::process::id()));
//! # let _ = std::fs::remove_dir_all(&dir);
//! let (mut journal, recovered) = FileJournal::open(&dir, JournalOptions::default())?;
//! assert!(recovered.records.is_empty());
//! assert_eq!(journal.append(b"raw bytes")?, Lsn(0));
//! assert_eq!(journal.append_value(&("typed", 42u32))?, Lsn(1));
//! journal.commit()?; // one fdatasync for both records
//! drop(journal);
//!
//! // Streaming recovery: one record at a time, then the journal.
//! let mut reader = FileJournal::read(&dir, JournalOptions::default())?;
//! let first = reader.next().expect("a record")?;
//! assert_eq!((first.lsn, first.bytes.as_slice()), (Lsn(0), &b"raw bytes"[..]));
//! println!("record 0 is at {} byte {}", first.file.display(), first.offset);
//! let second = reader.next().expect("another")?;
//! let (tag, n): (String, u32) = chronoflow::journal::decode(second.lsn, &second.bytes)?;
//! assert_eq!((tag.as_str(), n), ("typed", 42));
//! let (journal, truncated) = reader.finish()?;
//! assert_eq!(truncated, None);
//! assert_eq!(journal.next_lsn(), Lsn(2)); // LSNs continue where they stopped
//! # drop(journal);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), chronoflow::journal::JournalError>(())
//! ```
//!
//! # On-disk format (version 2)
//!
//! A [`FileJournal`] owns a directory (one per scheduler). In it:
//!
//! - **Segment files**, named after the LSN of their first record as 20 decimal
//!   digits, zero-padded, plus `.cfj`: `00000000000000000000.cfj`,
//!   `00000000000000000412.cfj`, ... ([`segment_file_name`]). Segments hold
//!   consecutive LSNs: each one starts where the previous one ends, and names the
//!   previous one in its header, so that the segments form a chain.
//! - **`HEAD`** ([`HEAD_FILE`]): the journal's id and the two ends of the chain,
//!   its oldest and its newest segment.
//! - `LOCK`, an empty file, locked (`flock`) while a journal has the directory
//!   open, so that two journals never write to the same directory.
//! - Briefly, `<segment name>.tmp` (a segment being created) and `HEAD.tmp` (a
//!   `HEAD` being replaced). Any left over by a crash is deleted at open.
//!
//! Every other file is ignored. All integers are little-endian; there is no
//! padding anywhere; every CRC is a CRC-32C (Castagnoli).
//!
//! ## The journal id
//!
//! When a journal is created it gets a random 64-bit id (the time, the process id
//! and a counter hashed with a randomly keyed hasher; [`JournalOptions::new_journal_id`]
//! fixes it, for reproducible files). The id is in `HEAD` and in every segment
//! header, and its low 32 bits, the *tag*, are in every record frame, so that a
//! segment or a record of another journal (a file copied between directories, a
//! restored backup of another scheduler) is told apart from the journal's own.
//! [`FileJournal::journal_id`] returns it.
//!
//! ## Segment header
//!
//! | offset | size | field |
//! |-------:|-----:|-------|
//! | 0 | 8 | magic: `b"CHRFLOW\0"` ([`MAGIC`]) |
//! | 8 | 2 | format version, `u16` = 2 ([`FORMAT_VERSION`]) |
//! | 10 | 8 | journal id, `u64` |
//! | 18 | 8 | LSN of the segment's first record, `u64`, equal to the file name's |
//! | 26 | 8 | the predecessor's first LSN, `u64`: the first LSN of the segment before this one; `u64::MAX` ([`NO_PREDECESSOR`]) for the journal's very first segment |
//! | 34 | 4 | CRC of bytes 0..34 |
//! | 38 | | record frames ([`HEADER_LEN`] = 38) |
//!
//! ## `HEAD` file
//!
//! | offset | size | field |
//! |-------:|-----:|-------|
//! | 0 | 8 | magic: `b"CHRFHEAD"` ([`HEAD_MAGIC`]) |
//! | 8 | 2 | format version, `u16` = 2 |
//! | 10 | 8 | journal id, `u64` |
//! | 18 | 8 | first LSN of the oldest segment kept, `u64` |
//! | 26 | 8 | first LSN of the newest segment (the one appended to), `u64` |
//! | 34 | 4 | CRC of bytes 0..34 ([`HEAD_LEN`] = 38) |
//!
//! `HEAD` is never written in place: a new one is written to `HEAD.tmp`,
//! `fdatasync`ed, renamed over `HEAD`, and the directory `fsync`ed, so that after
//! a crash `HEAD` is the old one or the new one, whole.
//!
//! ## Record frame
//!
//! | offset | size | field |
//! |-------:|-----:|-------|
//! | 0 | 4 | payload length `n`, `u32` |
//! | 4 | 8 | the record's LSN, `u64` |
//! | 12 | 4 | the journal's tag: the low 32 bits of its id, `u32` |
//! | 16 | 4 | header check: CRC of bytes 0..16 (length, LSN, tag) |
//! | 20 | 4 | CRC of the `n` payload bytes |
//! | 24 | `n` | payload ([`FRAME_HEADER_LEN`] = 24) |
//!
//! A frame is *self-consistent* when its header check and its payload CRC pass;
//! it *belongs* where it is when, in addition, its LSN is the one expected there
//! (the segment's first LSN plus the number of frames before it) and its tag is
//! the journal's. The header has a check of its own so that recovery can tell a
//! record cut short by a crash (valid length, too few bytes) from a corrupted
//! length in the middle of a file, which would otherwise look like a frame
//! running past the end of the file, and so that looking for an intact frame at
//! every byte offset after a bad one is cheap (see [Recovery](#recovery)). The
//! checks do not depend on the journal id, so that a frame of another journal is
//! seen as intact, and refused as not belonging rather than taken for damage.
//! Since the CRC of 16 zero bytes is not zero, an all-zero frame is never valid.
//!
//! A segment grows until the next frame would take it past the segment size
//! ([`JournalOptions::segment_size`], default [`DEFAULT_SEGMENT_SIZE`]); that
//! frame starts a new segment. A record larger than the segment size gets a
//! segment of its own.
//!
//! ## Crash safety: the order of creation, rollover and release
//!
//! Each step below goes through the [I/O hook](#testing-faults); a crash after
//! any of them reopens without error and without losing a committed record.
//!
//! - **Creation** (an empty directory at open): the first segment (`.tmp`
//!   written, `fdatasync`, renamed, directory `fsync`), then `HEAD`. A crash
//!   before `HEAD` exists leaves the first segment alone, with no record and no
//!   predecessor: the next open adopts it and writes `HEAD`.
//! - **Rollover**: the old segment is written and `fdatasync`ed (whatever the
//!   policy); the new segment is created (`.tmp` with its header naming the old
//!   one as predecessor, `fdatasync`, rename, directory `fsync`); then `HEAD` is
//!   replaced to name it as the newest. Records go to the new segment only after
//!   that. A crash before `HEAD` is replaced leaves a segment after `HEAD`'s
//!   newest, with no record, whose predecessor is `HEAD`'s newest: the next open
//!   adopts it and fixes `HEAD`.
//! - **Release**: `HEAD` is replaced first, to name the new oldest segment; then
//!   the older segments are deleted, oldest first, and the directory `fsync`ed.
//!   A crash in between leaves segments older than `HEAD`'s oldest: the next open
//!   deletes them without reading them.
//!
//! # Durability: the sync policies
//!
//! Appended records are buffered in the process and reach the operating system
//! (one `write`) at the latest at [`Journal::commit`]; the [`SyncPolicy`] says when
//! they are forced to the disk (`fdatasync`). A crash either kills the process
//! (the operating system's page cache survives) or takes the machine down (power
//! loss, kernel panic: the page cache is lost). What each policy risks:
//!
//! | policy | process killed | machine down |
//! |--------|----------------|--------------|
//! | [`EveryRecord`](SyncPolicy::EveryRecord) | nothing returned by `append` | nothing returned by `append` |
//! | [`EveryCommit`](SyncPolicy::EveryCommit) (default) | at most the records appended since the last `commit` | at most the records appended since the last `commit` |
//! | [`Never`](SyncPolicy::Never) | at most the records appended since the last `commit` | any recent records (what the OS had not yet written back, typically the last seconds), and see [Recovery](#recovery) |
//!
//! Whatever the policy, changes to the directory's structure are always synced:
//! the old segment before a new one is created, the new segment's header, `HEAD`,
//! the directory after a file is created, renamed or deleted, and a truncation at
//! open. So even under `Never` only the last segment can lose records, and
//! earlier segments are always complete.
//!
//! At open, the last segment is synced (unless the policy is `Never`) before the
//! first record is handed out, so that a record that was replayed cannot vanish
//! in a later crash.
//!
//! A failed sync (or write, rename or deletion) is never retried: it is reported
//! once as [`JournalError::Sync`] (or [`JournalError::Io`]) and the journal is
//! *poisoned*: every later call returns [`JournalError::Poisoned`], so the run
//! stops. After a failed `fdatasync`, Linux may drop the unwritten pages while
//! still serving them from memory, so retrying the sync could report success for
//! data that never reached the disk. Reopening the journal recovers what is on
//! disk; records appended since the last successful commit may be missing.
//!
//! # Recovery
//!
//! [`FileJournal::read`] locks the directory and checks the chain before handing
//! out any record; [`JournalReader`] then reads the records one frame at a time,
//! checking each; [`JournalReader::finish`] does the repairs and returns the
//! journal. [`FileJournal::open`] is the three in one, collecting every record.
//!
//! **The chain**, from `HEAD` and the segment headers only:
//!
//! - `HEAD`: magic, version, length, CRC, oldest at most newest;
//! - each segment header: magic, version, length, CRC, first LSN equal to the
//!   file name's, predecessor below the first LSN, journal id equal to `HEAD`'s;
//! - the segments present, from `HEAD`'s oldest to `HEAD`'s newest, each naming
//!   the one before it as its predecessor.
//!
//! **Each frame**: self-consistent (header check, then payload CRC), then
//! belonging (the expected LSN, the journal's tag). And each segment must start
//! where the one before it ended (no LSN gap or overlap).
//!
//! What each kind of damage gives:
//!
//! | found at open | result |
//! |---------------|--------|
//! | no `HEAD`, no segment | a new journal, created at `finish` |
//! | `HEAD.tmp`, `<segment>.tmp` | leftovers of a crash: deleted at `finish` |
//! | segments older than `HEAD`'s oldest | leftovers of a release: deleted at `finish` |
//! | one segment after `HEAD`'s newest, header only, naming `HEAD`'s newest as predecessor | leftover of a rollover: adopted, `HEAD` fixed at `finish` |
//! | no `HEAD`, one segment `0`, header only, no predecessor | leftover of a creation: adopted, `HEAD` written at `finish` |
//! | `HEAD`'s oldest or newest segment missing, a segment named as predecessor missing, or every segment missing | [`JournalError::MissingSegment`] |
//! | no `HEAD`, other segments | [`JournalError::MissingHead`] |
//! | a segment header with another journal id | [`JournalError::ForeignSegment`] |
//! | a segment or `HEAD` of another format version (such as 1) | [`JournalError::UnsupportedVersion`] |
//! | a bad header or `HEAD` (magic, length, CRC, fields), a broken predecessor link, another segment after `HEAD`'s newest, an LSN gap between segments | [`JournalError::Corrupt`] |
//! | a self-consistent frame with an unexpected LSN (stale, duplicated, misplaced) or another journal's tag, anywhere, even last | [`JournalError::Corrupt`] |
//! | a bad frame in a segment that is not the last | [`JournalError::Corrupt`] |
//! | a bad frame in the last segment, followed by a self-consistent frame | [`JournalError::Corrupt`] |
//! | a bad frame in the last segment with no self-consistent frame after it | a torn tail: truncated at `finish`, reported |
//!
//! A bad frame is one whose header runs past the end of the file, whose header
//! check fails, whose payload runs past the end of the file, or whose payload CRC
//! does not match. The rule is: **a bad frame in the last segment with no intact
//! frame anywhere after it is a torn tail**, the unfinished write of a crash. In
//! detail, in the last segment:
//!
//! - a frame header cut short, or a payload cut short (its length passed its
//!   check, so the record really was cut), is a torn tail: nothing can follow;
//! - a header that fails its check, or a payload that fails its CRC, is a torn
//!   tail if no self-consistent frame starts at any byte offset after it (after
//!   the payload, for a CRC failure). That covers garbage or zeros left after the
//!   last record (some file systems extend a file before its data reaches the
//!   disk, and show zeros or stale blocks after a crash), and a last record whose
//!   payload is damaged. The search, on this failure path only, costs a few
//!   nanoseconds per byte: a length that does not fit, then the 4-byte header
//!   check, rule out almost every offset before a payload CRC is computed.
//!
//! A complete, self-consistent frame is never a torn tail, even as the very last
//! frame: a frame with the wrong LSN or tag is not an unfinished write.
//!
//! A torn tail is truncated at the bad frame's start, the truncation is synced and
//! reported ([`Recovered::truncated`], or `finish`'s [`TruncatedTail`]), and
//! appending continues from there. [`JournalError::Corrupt`] names the file and
//! the byte offset of the bad frame (or header, or header field). Nothing is
//! ever skipped, and nothing is repaired when the open fails.
//!
//! What recovery cannot tell apart: damage to the very last record of the last
//! segment looks exactly like a torn write, and is truncated as one (and
//! reported). Under `Never` (or for the uncommitted records of the last pass), a
//! machine crash may write the page cache back out of order, leaving damaged data
//! followed by intact data; that is refused as corruption, and the error's file
//! and offset say where to truncate by hand if the records after it are not
//! needed. A segment of another journal is told apart by its 64-bit id, a frame
//! by its 32-bit tag.
//!
//! ## Memory of recovery
//!
//! [`JournalReader`] does not grow with the journal: it holds the list of
//! segments, one read buffer ([`READ_BUFFER_LEN`]) on the segment being read, and
//! the record being read, whose payload is read only once its length is known to
//! fit in the file. Only on the failure path, a bad frame in the last segment, is
//! the rest of that segment read at once, to tell a torn tail from corruption.
//! [`FileJournal::open`] keeps every record (a `Vec`), for callers that want
//! them all; each comes with its position in [`Recovered::positions`], as each
//! [`Entry`] of the reader does, so that a record that cannot be decoded can be
//! reported as "FILE byte OFFSET" ([`RecordPosition`]).
//!
//! Reading changes nothing in the directory (besides creating it and `LOCK`): a
//! reader dropped before `finish` leaves every file as it was.
//!
//! # Deleting old records
//!
//! [`Journal::release_before`] deletes, oldest first, every segment all of whose
//! records are below the given LSN, never the segment being appended to (see
//! [the order](#crash-safety-the-order-of-creation-rollover-and-release)). It
//! keeps no other trace: [`FileJournal::open`] hands back every record of the
//! segments that remain, which may include records below the last release point;
//! the caller skips what it does not need. LSNs are never reused: the last
//! segment (whose name gives its first LSN) is never deleted, and a journal whose
//! segments were all deleted by hand is refused ([`JournalError::MissingSegment`])
//! rather than started again from 0.
//!
//! # Testing faults
//!
//! The crate's tests inject faults through a hook of [`JournalOptions`], hidden
//! from these docs (plumbing, not API): a function called before each write,
//! sync, rename and deletion of the journal's files, with the operation and the
//! path. Returning an error makes the operation fail with that error, without
//! doing it. Tests use it to make an `fdatasync` fail, to count syncs, or to stop
//! at any step of a rollover or a release as a crash would.

mod chain;
mod file;
mod frame;
mod head;
mod header;
mod options;
mod reader;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use file::{FileJournal, SEGMENT_EXTENSION, segment_file_name};
pub use frame::FRAME_HEADER_LEN;
pub use head::{HEAD_FILE, HEAD_LEN, HEAD_MAGIC};
pub use header::{FORMAT_VERSION, HEADER_LEN, MAGIC, NO_PREDECESSOR};
pub use options::{DEFAULT_SEGMENT_SIZE, JournalOptions};
pub use reader::{Entry, JournalReader, READ_BUFFER_LEN};

/// A log sequence number: the index of a record in its journal, from 0, one more
/// for each record appended. Never reused, across segments and restarts.
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Lsn(pub u64);

impl Lsn {
    /// The LSN's number.
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An append-only log of records, each given the next [`Lsn`].
///
/// Object-safe: a scheduler can hold a `Box<dyn Journal>`. [`JournalExt`] adds
/// typed appends to every journal.
pub trait Journal {
    /// Appends a record and returns its LSN. The record is durable once a later
    /// [`commit`](Journal::commit) returns (or when this call returns, under
    /// [`SyncPolicy::EveryRecord`]).
    fn append(&mut self, record: &[u8]) -> Result<Lsn, JournalError>;

    /// The group-commit point, called once per scheduler pass: every record
    /// appended so far reaches the operating system and, under
    /// [`SyncPolicy::EveryCommit`], the disk, with one `fdatasync`. A commit with
    /// nothing new to write does nothing.
    fn commit(&mut self) -> Result<(), JournalError>;

    /// Says that the records below `lsn` are no longer needed: every segment
    /// holding only such records is deleted, except the one being appended to.
    /// An `lsn` past the end releases everything that can be released.
    fn release_before(&mut self, lsn: Lsn) -> Result<(), JournalError>;

    /// The LSN the next appended record will get.
    fn next_lsn(&self) -> Lsn;
}

/// Typed appends, for every [`Journal`] (`dyn Journal` included).
pub trait JournalExt: Journal {
    /// Appends the postcard encoding of `value`; [`decode`] reads it back.
    fn append_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<Lsn, JournalError> {
        let bytes = postcard::to_allocvec(value).map_err(JournalError::Encode)?;
        self.append(&bytes)
    }
}

impl<J: Journal + ?Sized> JournalExt for J {}

/// Decodes a record written by [`JournalExt::append_value`]; `lsn` is the
/// record's, for the error.
pub fn decode<T: DeserializeOwned>(lsn: Lsn, record: &[u8]) -> Result<T, JournalError> {
    postcard::from_bytes(record).map_err(|source| JournalError::Decode { lsn, source })
}

/// When a [`FileJournal`] forces records to the disk with `fdatasync`, and what
/// each choice risks on a crash. See the [module docs](self#durability-the-sync-policies)
/// for the table.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SyncPolicy {
    /// One `fdatasync` per record, before [`Journal::append`] returns. Nothing that
    /// `append` returned is lost, whatever the crash. The slowest: a disk flush
    /// per record.
    EveryRecord,
    /// One `fdatasync` per [`Journal::commit`] that has new records (group
    /// commit: once per scheduler pass). A crash of any kind loses at most the
    /// records appended since the last commit returned.
    #[default]
    EveryCommit,
    /// No `fdatasync` for records: the operating system writes them back when it
    /// likes. A killed process (`SIGKILL`, panic, abort) loses only the records
    /// appended since the last commit, since committed records are in the page
    /// cache, which survives it. A power loss or kernel panic may lose any recent
    /// records, and writeback out of order may leave a last segment that recovery
    /// refuses as corrupt. For tests, or for journals that can be rebuilt.
    Never,
}

/// An operation about to be done on a journal file, as seen by an
/// [`io_hook`](JournalOptions::io_hook).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IoOp {
    /// A write to a segment file (records, or a new segment's header, to
    /// `<name>.tmp`) or to `HEAD.tmp`.
    Write,
    /// An `fdatasync` of a segment file or of `HEAD.tmp`.
    Sync,
    /// An `fsync` of the journal's directory (after creating, renaming or
    /// deleting a file in it).
    SyncDir,
    /// A rename of `<name>.tmp` to a segment file, or of `HEAD.tmp` to `HEAD`;
    /// the hook is given the new name.
    Rename,
    /// The deletion of a segment file (released, or left over by an interrupted
    /// release) or of a temporary file left over by a crash.
    Remove,
}

/// A fault-injection hook: called before each [`IoOp`] with the path it concerns;
/// an error makes the operation fail with it, without doing it.
#[doc(hidden)]
pub type IoHook = Arc<dyn Fn(IoOp, &Path) -> io::Result<()> + Send + Sync>;

/// What [`FileJournal::open`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// Every record of every remaining segment, in LSN order (consecutive LSNs).
    pub records: Vec<(Lsn, Vec<u8>)>,
    /// Where each record is: `positions[i]` is the frame of `records[i]`.
    pub positions: Vec<RecordPosition>,
    /// The torn tail that was cut off the last segment, if there was one.
    pub truncated: Option<TruncatedTail>,
}

impl Recovered {
    /// Decodes every record as a `T` (see [`JournalExt::append_value`]).
    pub fn decode<T: DeserializeOwned>(&self) -> Result<Vec<(Lsn, T)>, JournalError> {
        self.records
            .iter()
            .map(|(lsn, bytes)| Ok((*lsn, decode(*lsn, bytes)?)))
            .collect()
    }
}

/// Where a record is: its segment file and the byte offset of its frame in it.
/// Displayed as `FILE byte OFFSET`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordPosition {
    /// The segment file.
    pub file: Arc<Path>,
    /// The byte offset of the record's frame in the file.
    pub offset: u64,
}

impl fmt::Display for RecordPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} byte {}", self.file.display(), self.offset)
    }
}

/// A torn tail cut off the last segment at open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TruncatedTail {
    /// The segment file.
    pub file: PathBuf,
    /// Where the file was cut: the start of the first bad frame, now the file's
    /// length.
    pub offset: u64,
    /// How many bytes were cut off.
    pub bytes: u64,
}

/// A journal operation that failed.
#[derive(Debug, Error)]
pub enum JournalError {
    /// Reading, writing, creating or deleting a journal file failed. Poisons the
    /// journal.
    #[error("journal I/O error on {}: {source}", file.display())]
    Io {
        /// The file (or directory) concerned.
        file: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// An `fdatasync` (or a directory `fsync`) failed. Poisons the journal: the
    /// sync is never retried, since a retry may succeed without the data being on
    /// disk.
    #[error("journal sync failed on {}: {source}", file.display())]
    Sync {
        /// The file (or directory) concerned.
        file: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The journal holds something that is not a torn tail: refused, nothing is
    /// skipped.
    #[error("journal corrupt: {} at byte {offset}: {reason}", file.display())]
    Corrupt {
        /// The segment file.
        file: PathBuf,
        /// The byte offset of the bad frame's start, or of the bad header field.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A segment that must exist is missing: `HEAD`'s oldest or newest, one named
    /// as predecessor by the segment after it, or every segment. Nothing is
    /// recovered: records would be lost silently.
    #[error("journal {}: segment {} is missing: {reason}", dir.display(), segment_file_name(*first))]
    MissingSegment {
        /// The journal's directory.
        dir: PathBuf,
        /// The missing segment's first LSN (its file name is
        /// [`segment_file_name`]`(first)`).
        first: Lsn,
        /// How it is known to be missing.
        reason: String,
    },
    /// The directory has segment files but no `HEAD` file (and they are not the
    /// empty first segment of an interrupted creation).
    #[error("journal {}: the HEAD file is missing, but segment files are there", dir.display())]
    MissingHead {
        /// The journal's directory.
        dir: PathBuf,
    },
    /// A segment's header names another journal than `HEAD` does.
    #[error("journal segment {} belongs to another journal (id {found:016x}, this journal's is {expected:016x})", file.display())]
    ForeignSegment {
        /// The segment file.
        file: PathBuf,
        /// The journal id in its header.
        found: u64,
        /// The journal id in `HEAD`.
        expected: u64,
    },
    /// A segment (or `HEAD`) of a format version this build does not read, such as
    /// a version 1 segment.
    #[error("journal file {} has format version {version}; this build reads version {FORMAT_VERSION} only", file.display())]
    UnsupportedVersion {
        /// The file.
        file: PathBuf,
        /// The version found in it.
        version: u16,
    },
    /// An earlier write or sync failed; the journal refuses everything since.
    /// Reopen it to recover what reached the disk.
    #[error("the journal is poisoned by an earlier I/O error")]
    Poisoned,
    /// Another journal has the directory open.
    #[error("journal directory {} is in use by another journal", dir.display())]
    Locked {
        /// The directory.
        dir: PathBuf,
    },
    /// A record longer than a frame can hold (`u32::MAX` bytes).
    #[error("a record of {len} bytes is too large for the journal (at most {max})")]
    RecordTooLarge {
        /// The record's length.
        len: usize,
        /// The largest length allowed.
        max: usize,
    },
    /// Every LSN has been used.
    #[error("the journal has used every LSN")]
    LsnExhausted,
    /// A value could not be encoded with postcard.
    #[error("cannot encode a journal record: {0}")]
    Encode(#[source] postcard::Error),
    /// A record could not be decoded as the type asked for.
    #[error("cannot decode journal record {lsn}: {source}")]
    Decode {
        /// The record's LSN.
        lsn: Lsn,
        /// postcard's error.
        source: postcard::Error,
    },
}

impl JournalError {
    /// Whether the error leaves the journal poisoned.
    fn poisons(&self) -> bool {
        matches!(self, JournalError::Io { .. } | JournalError::Sync { .. })
    }

    /// A copy, for a [`JournalReader`] that reports its error twice (`io::Error`
    /// is not `Clone`: its kind and message are kept).
    fn duplicate(&self) -> JournalError {
        let copy = |e: &io::Error| io::Error::new(e.kind(), e.to_string());
        match self {
            JournalError::Io { file, source } => JournalError::Io {
                file: file.clone(),
                source: copy(source),
            },
            JournalError::Sync { file, source } => JournalError::Sync {
                file: file.clone(),
                source: copy(source),
            },
            JournalError::Corrupt {
                file,
                offset,
                reason,
            } => JournalError::Corrupt {
                file: file.clone(),
                offset: *offset,
                reason: reason.clone(),
            },
            JournalError::MissingSegment { dir, first, reason } => JournalError::MissingSegment {
                dir: dir.clone(),
                first: *first,
                reason: reason.clone(),
            },
            JournalError::MissingHead { dir } => JournalError::MissingHead { dir: dir.clone() },
            JournalError::ForeignSegment {
                file,
                found,
                expected,
            } => JournalError::ForeignSegment {
                file: file.clone(),
                found: *found,
                expected: *expected,
            },
            JournalError::UnsupportedVersion { file, version } => {
                JournalError::UnsupportedVersion {
                    file: file.clone(),
                    version: *version,
                }
            }
            JournalError::Poisoned => JournalError::Poisoned,
            JournalError::Locked { dir } => JournalError::Locked { dir: dir.clone() },
            JournalError::RecordTooLarge { len, max } => JournalError::RecordTooLarge {
                len: *len,
                max: *max,
            },
            JournalError::LsnExhausted => JournalError::LsnExhausted,
            JournalError::Encode(e) => JournalError::Encode(e.clone()),
            JournalError::Decode { lsn, source } => JournalError::Decode {
                lsn: *lsn,
                source: source.clone(),
            },
        }
    }
}

fn io_error(path: &Path, source: io::Error) -> JournalError {
    JournalError::Io {
        file: path.to_path_buf(),
        source,
    }
}

fn corrupt(path: &Path, offset: u64, reason: impl Into<String>) -> JournalError {
    JournalError::Corrupt {
        file: path.to_path_buf(),
        offset,
        reason: reason.into(),
    }
}
