//! [`FileJournal`]: the embedded journal, a directory of segment files chained by
//! their headers and named by a `HEAD` file. Appending, committing, rolling over
//! to a new segment and releasing old ones. The format and the guarantees are
//! described in the [module docs](super).

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use super::frame::{self, FRAME_HEADER_LEN, journal_tag};
use super::head::Head;
use super::header::{HEADER_LEN, SegmentHeader};
use super::reader::{Entry, JournalReader};
use super::{
    Journal, JournalError, JournalOptions, Lsn, RecordPosition, Recovered, SyncPolicy, io_error,
};

/// The extension of segment files, without the dot.
pub const SEGMENT_EXTENSION: &str = "cfj";

/// The name of the lock file in a journal directory.
const LOCK_FILE: &str = "LOCK";

/// Buffered record bytes are written out once they reach this size, even before a
/// commit, so that a long pass does not hold its records in memory.
const FLUSH_THRESHOLD: usize = 64 << 10;

/// The file name of the segment whose first record has LSN `first`:
/// `00000000000000000042.cfj`.
pub fn segment_file_name(first: Lsn) -> String {
    format!("{:020}.{SEGMENT_EXTENSION}", first.0)
}

/// A segment file of the journal.
#[derive(Debug)]
struct Segment {
    first: Lsn,
    path: PathBuf,
}

/// The embedded [`Journal`]: an append-only log in a directory of segment files,
/// one directory per scheduler. See the [module docs](super) for the format, the
/// sync policies and what recovery guarantees.
///
/// Dropping the journal writes its buffered records to the operating system (best
/// effort, without a sync) unless it is poisoned; only [`Journal::commit`] reports
/// errors.
#[derive(Debug)]
pub struct FileJournal {
    dir: PathBuf,
    options: JournalOptions,
    journal_id: u64,
    /// Every segment, oldest first; the last one is appended to.
    segments: VecDeque<Segment>,
    /// The last segment, open for appending.
    file: File,
    /// The last segment's length, buffered bytes included.
    len: u64,
    /// The number of records in the last segment, buffered ones included.
    records: u64,
    /// Frames appended but not yet written to the file.
    pending: Vec<u8>,
    /// Bytes were written to the last segment since its last sync.
    unsynced: bool,
    next: Lsn,
    poisoned: bool,
    /// Holds the directory's lock while open.
    _lock: File,
}

impl FileJournal {
    /// Opens the journal in `dir` (created if missing), recovers its records and
    /// positions after the last one: [`read`](FileJournal::read), every record
    /// collected, then [`JournalReader::finish`]. A torn tail of the last segment
    /// is truncated and reported in [`Recovered::truncated`]; any other damage is
    /// refused with a typed error ([`JournalError::Corrupt`],
    /// [`MissingSegment`](JournalError::MissingSegment), ...). Fails with
    /// [`JournalError::Locked`] if another journal has the directory open. See the
    /// [module docs](super#recovery).
    ///
    /// Holds every record in memory at once; [`read`](FileJournal::read) streams
    /// them.
    pub fn open(
        dir: impl AsRef<Path>,
        options: JournalOptions,
    ) -> Result<(FileJournal, Recovered), JournalError> {
        let mut reader = FileJournal::read(dir, options)?;
        let mut records = Vec::new();
        let mut positions = Vec::new();
        for entry in &mut reader {
            let Entry {
                lsn,
                file,
                offset,
                bytes,
            } = entry?;
            records.push((lsn, bytes));
            positions.push(RecordPosition { file, offset });
        }
        let (journal, truncated) = reader.finish()?;
        let recovered = Recovered {
            records,
            positions,
            truncated,
        };
        Ok((journal, recovered))
    }

    /// Opens the journal in `dir` (created if missing) for streaming recovery:
    /// locks the directory, checks `HEAD` and the chain of segment headers, syncs
    /// the last segment (unless the policy is [`SyncPolicy::Never`]), and returns
    /// a reader of the records, which [`JournalReader::finish`] turns into the
    /// journal. Fails with [`JournalError::Locked`] if another journal has the
    /// directory open, and with a typed error if the chain is broken (see the
    /// [module docs](super#recovery)).
    pub fn read(
        dir: impl AsRef<Path>,
        options: JournalOptions,
    ) -> Result<JournalReader, JournalError> {
        let dir = dir.as_ref().to_path_buf();
        if !dir.is_dir() {
            fs::create_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                options.sync_dir(parent)?;
            }
        }
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io_error(&lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(JournalError::Locked { dir }),
            Err(TryLockError::Error(e)) => return Err(io_error(&lock_path, e)),
        }
        JournalReader::new(dir, options, lock)
    }

    /// The journal, positioned after its last record (`next`) in the last of
    /// `segments`, open as `file`, `len` bytes long with `records` records.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn resume(
        dir: PathBuf,
        options: JournalOptions,
        lock: File,
        journal_id: u64,
        segments: Vec<(Lsn, PathBuf)>,
        file: File,
        len: u64,
        records: u64,
        next: Lsn,
        unsynced: bool,
    ) -> FileJournal {
        FileJournal {
            dir,
            options,
            journal_id,
            segments: segments
                .into_iter()
                .map(|(first, path)| Segment { first, path })
                .collect(),
            file,
            len,
            records,
            pending: Vec::new(),
            unsynced,
            next,
            poisoned: false,
            _lock: lock,
        }
    }

    /// The journal's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The journal's id, chosen at random when it was created (see
    /// [`JournalOptions::new_journal_id`]), written in `HEAD`, in every segment
    /// header and, as a tag, in every frame.
    pub fn journal_id(&self) -> u64 {
        self.journal_id
    }

    /// The LSN of the first record still on disk (the first record of the oldest
    /// segment); equal to [`Journal::next_lsn`] when no record remains.
    pub fn first_lsn(&self) -> Lsn {
        self.segments.front().map_or(self.next, |s| s.first)
    }

    /// The paths of the segment files, oldest first; the last one is appended to.
    pub fn segment_paths(&self) -> Vec<PathBuf> {
        self.segments.iter().map(|s| s.path.clone()).collect()
    }

    /// Whether an earlier write or sync failed, so that every call now returns
    /// [`JournalError::Poisoned`].
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// Runs `op` unless poisoned; poisons on an I/O or sync error.
    fn guard<T>(
        &mut self,
        op: impl FnOnce(&mut Self) -> Result<T, JournalError>,
    ) -> Result<T, JournalError> {
        if self.poisoned {
            return Err(JournalError::Poisoned);
        }
        let result = op(self);
        if let Err(e) = &result
            && e.poisons()
        {
            self.poisoned = true;
        }
        result
    }

    fn active_path(&self) -> &Path {
        // `segments` is never empty: open creates one, release keeps the last.
        self.segments.back().map_or(&self.dir, |s| &s.path)
    }

    fn head(&self, oldest: Lsn, newest: Lsn) -> Head {
        Head {
            journal_id: self.journal_id,
            oldest,
            newest,
        }
    }

    /// Writes the buffered frames to the file.
    fn flush(&mut self) -> Result<(), JournalError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.options
            .write(&self.file, self.active_path(), &self.pending)?;
        self.pending.clear();
        self.unsynced = true;
        Ok(())
    }

    /// `fdatasync` of the last segment, if it has unsynced writes.
    fn sync(&mut self) -> Result<(), JournalError> {
        if self.unsynced {
            self.options.sync_file(&self.file, self.active_path())?;
            self.unsynced = false;
        }
        Ok(())
    }

    /// Closes the last segment (written and synced, whatever the policy), creates
    /// a new one at the next LSN naming it as predecessor, then names the new one
    /// in `HEAD`. A crash before `HEAD` is replaced leaves an empty segment after
    /// `HEAD`'s newest, which the next open adopts.
    fn roll_over(&mut self) -> Result<(), JournalError> {
        self.flush()?;
        self.sync()?;
        let first = self.next;
        let header = SegmentHeader {
            journal_id: self.journal_id,
            first,
            predecessor: self.segments.back().map(|s| s.first),
        };
        let (file, path) = create_segment(&self.dir, &header, &self.options)?;
        self.head(self.first_lsn(), first)
            .write(&self.dir, &self.options)?;
        self.file = file;
        self.segments.push_back(Segment { first, path });
        self.len = HEADER_LEN;
        self.records = 0;
        Ok(())
    }

    fn append_inner(&mut self, record: &[u8]) -> Result<Lsn, JournalError> {
        if u32::try_from(record.len()).is_err() {
            return Err(JournalError::RecordTooLarge {
                len: record.len(),
                max: u32::MAX as usize,
            });
        }
        let lsn = self.next;
        let next = lsn.0.checked_add(1).ok_or(JournalError::LsnExhausted)?;
        let frame_len = FRAME_HEADER_LEN + record.len() as u64;
        if self.records > 0 && self.len.saturating_add(frame_len) > self.options.segment_size {
            self.roll_over()?;
        }
        frame::encode(&mut self.pending, lsn, journal_tag(self.journal_id), record);
        self.len += frame_len;
        self.records += 1;
        self.next = Lsn(next);
        if self.options.sync == SyncPolicy::EveryRecord {
            self.flush()?;
            self.sync()?;
        } else if self.pending.len() >= FLUSH_THRESHOLD {
            self.flush()?;
        }
        Ok(lsn)
    }

    fn commit_inner(&mut self) -> Result<(), JournalError> {
        self.flush()?;
        if self.options.sync == SyncPolicy::EveryCommit {
            self.sync()?;
        }
        Ok(())
    }

    /// `HEAD` first names the new oldest segment, then the older ones are deleted
    /// and the directory synced: a crash in between leaves segments older than
    /// `HEAD`'s oldest, which the next open deletes.
    fn release_inner(&mut self, lsn: Lsn) -> Result<(), JournalError> {
        let mut n = 0;
        while self.segments.len() - n > 1 && self.segments[n + 1].first <= lsn {
            n += 1;
        }
        if n == 0 {
            return Ok(());
        }
        let newest = self.segments.back().map_or(self.next, |s| s.first);
        self.head(self.segments[n].first, newest)
            .write(&self.dir, &self.options)?;
        for _ in 0..n {
            if let Some(old) = self.segments.front() {
                self.options.remove(&old.path)?;
                self.segments.pop_front();
            }
        }
        self.options.sync_dir(&self.dir)
    }
}

impl Journal for FileJournal {
    fn append(&mut self, record: &[u8]) -> Result<Lsn, JournalError> {
        self.guard(|j| j.append_inner(record))
    }

    fn commit(&mut self) -> Result<(), JournalError> {
        self.guard(Self::commit_inner)
    }

    fn release_before(&mut self, lsn: Lsn) -> Result<(), JournalError> {
        self.guard(|j| j.release_inner(lsn))
    }

    fn next_lsn(&self) -> Lsn {
        self.next
    }
}

impl Drop for FileJournal {
    fn drop(&mut self) {
        if !self.poisoned {
            // Best effort: errors are reported by `commit` only.
            let _ = self.flush();
        }
    }
}

/// Creates the segment with `header`: written to `<name>.tmp`, synced, renamed,
/// directory synced (each step through the I/O hook). Returns it open for
/// appending.
pub(super) fn create_segment(
    dir: &Path,
    header: &SegmentHeader,
    options: &JournalOptions,
) -> Result<(File, PathBuf), JournalError> {
    options.write_atomically(dir, &segment_file_name(header.first), &header.encode())
}
