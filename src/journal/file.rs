//! [`FileJournal`]: the embedded journal, a directory of segment files. The format
//! and the guarantees are described in the [module docs](super).

use std::collections::VecDeque;
use std::fmt;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::frame::{find_frame, length_check, read_frame};
use super::{IoHook, IoOp, Journal, JournalError, Lsn, Recovered, SyncPolicy, TruncatedTail};

/// The first 8 bytes of every segment file.
pub const MAGIC: [u8; 8] = *b"CHRFLOW\0";

/// The on-disk format version this build writes and reads.
pub const FORMAT_VERSION: u16 = 1;

/// The length of a segment header: magic, version, first LSN.
pub const HEADER_LEN: u64 = 18;

/// The length of a record frame's header: length, length check, payload CRC.
pub const FRAME_HEADER_LEN: u64 = 12;

/// The extension of segment files, without the dot.
pub const SEGMENT_EXTENSION: &str = "cfj";

/// The default segment size: 64 MiB.
pub const DEFAULT_SEGMENT_SIZE: u64 = 64 << 20;

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

/// The LSN a segment file name (without extension) stands for: exactly 20 digits.
fn parse_segment_stem(stem: &str) -> Option<Lsn> {
    if stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()) {
        stem.parse().ok().map(Lsn)
    } else {
        None
    }
}

/// How a [`FileJournal`] is set up: segment size, sync policy and, for tests, an
/// I/O hook. Built with `JournalOptions::default()` and the methods below.
#[derive(Clone)]
pub struct JournalOptions {
    segment_size: u64,
    sync: SyncPolicy,
    io_hook: Option<IoHook>,
}

impl Default for JournalOptions {
    fn default() -> Self {
        JournalOptions {
            segment_size: DEFAULT_SEGMENT_SIZE,
            sync: SyncPolicy::default(),
            io_hook: None,
        }
    }
}

impl fmt::Debug for JournalOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JournalOptions")
            .field("segment_size", &self.segment_size)
            .field("sync", &self.sync)
            .field("io_hook", &self.io_hook.as_ref().map(|_| "Fn"))
            .finish()
    }
}

impl JournalOptions {
    /// The size in bytes past which a segment is closed and a new one started
    /// (default [`DEFAULT_SEGMENT_SIZE`]). A segment never grows past it, except
    /// one holding a single record larger than it. Any value works; a value at
    /// most [`HEADER_LEN`] gives one record per segment.
    pub fn segment_size(mut self, bytes: u64) -> Self {
        self.segment_size = bytes;
        self
    }

    /// When records are forced to the disk (default [`SyncPolicy::EveryCommit`]).
    pub fn sync(mut self, policy: SyncPolicy) -> Self {
        self.sync = policy;
        self
    }

    /// For fault-injection tests: `hook` is called before each write and sync of
    /// the journal's files (at open too), with the operation and the path; if it
    /// returns an error, the operation fails with that error without being done.
    pub fn io_hook(
        mut self,
        hook: impl Fn(IoOp, &Path) -> io::Result<()> + Send + Sync + 'static,
    ) -> Self {
        self.io_hook = Some(Arc::new(hook));
        self
    }

    fn hook(&self, op: IoOp, path: &Path) -> io::Result<()> {
        match &self.io_hook {
            Some(hook) => hook(op, path),
            None => Ok(()),
        }
    }

    /// `fdatasync` of a segment file, through the hook.
    fn sync_file(&self, file: &File, path: &Path) -> Result<(), JournalError> {
        self.hook(IoOp::Sync, path)
            .and_then(|()| file.sync_data())
            .map_err(|source| JournalError::Sync {
                file: path.to_path_buf(),
                source,
            })
    }

    /// `fsync` of a directory, through the hook.
    fn sync_dir(&self, dir: &Path) -> Result<(), JournalError> {
        self.hook(IoOp::SyncDir, dir)
            .and_then(|()| File::open(dir)?.sync_all())
            .map_err(|source| JournalError::Sync {
                file: dir.to_path_buf(),
                source,
            })
    }

    /// A write to a segment file, through the hook.
    fn write(&self, mut file: &File, path: &Path, bytes: &[u8]) -> Result<(), JournalError> {
        self.hook(IoOp::Write, path)
            .and_then(|()| file.write_all(bytes))
            .map_err(|source| io_error(path, source))
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

/// What reading a segment found.
struct Scan {
    records: u64,
    /// The length of the segment's good part.
    good_len: u64,
    /// The file's length.
    file_len: u64,
}

impl FileJournal {
    /// Opens the journal in `dir` (created if missing), recovers its records and
    /// positions after the last one. A torn tail of the last segment is truncated
    /// and reported in [`Recovered::truncated`]; any other damage is refused with
    /// [`JournalError::Corrupt`]. Fails with [`JournalError::Locked`] if another
    /// journal has the directory open. See the [module docs](super#recovery).
    pub fn open(
        dir: impl AsRef<Path>,
        options: JournalOptions,
    ) -> Result<(FileJournal, Recovered), JournalError> {
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

        // List the segments; delete the leftovers of interrupted creations.
        let mut firsts = Vec::new();
        let mut removed_tmp = false;
        for entry in fs::read_dir(&dir).map_err(|e| io_error(&dir, e))? {
            let entry = entry.map_err(|e| io_error(&dir, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some((stem, ext)) = name.split_once('.') else {
                continue;
            };
            let Some(first) = parse_segment_stem(stem) else {
                continue;
            };
            if ext == SEGMENT_EXTENSION {
                firsts.push(first);
            } else if ext.strip_suffix(".tmp") == Some(SEGMENT_EXTENSION) {
                let path = entry.path();
                fs::remove_file(&path).map_err(|e| io_error(&path, e))?;
                removed_tmp = true;
            }
        }
        if removed_tmp {
            options.sync_dir(&dir)?;
        }
        firsts.sort_unstable();

        let mut recovered = Recovered {
            records: Vec::new(),
            truncated: None,
        };
        let mut segments = VecDeque::with_capacity(firsts.len());
        let mut last_scan = None;
        // Where the previous segment ended: the next one must start there.
        let mut expected = None;
        for (i, &first) in firsts.iter().enumerate() {
            let path = dir.join(segment_file_name(first));
            let is_last = i + 1 == firsts.len();
            let scan = read_segment(&path, first, expected, is_last, &mut recovered)?;
            expected = Some(
                first
                    .0
                    .checked_add(scan.records)
                    .map(Lsn)
                    .ok_or_else(|| corrupt(&path, 10, "the segment's LSNs overflow"))?,
            );
            segments.push_back(Segment { first, path });
            last_scan = Some(scan);
        }

        let journal = match (segments.back(), last_scan, expected) {
            (Some(last), Some(scan), Some(next)) => {
                let path = last.path.clone();
                let file = OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .map_err(|e| io_error(&path, e))?;
                let torn = scan.good_len < scan.file_len;
                if torn {
                    file.set_len(scan.good_len)
                        .map_err(|e| io_error(&path, e))?;
                    recovered.truncated = Some(TruncatedTail {
                        file: path.clone(),
                        offset: scan.good_len,
                        bytes: scan.file_len - scan.good_len,
                    });
                }
                // A truncation is always synced; otherwise, what we hand back must
                // be on disk before it is replayed (unless the policy says never).
                let synced = torn || options.sync != SyncPolicy::Never;
                if synced {
                    options.sync_file(&file, &path)?;
                }
                FileJournal {
                    dir,
                    unsynced: !synced,
                    options,
                    segments,
                    file,
                    len: scan.good_len,
                    records: scan.records,
                    pending: Vec::new(),
                    next,
                    poisoned: false,
                    _lock: lock,
                }
            }
            _ => {
                let (file, path) = create_segment(&dir, Lsn(0), &options)?;
                FileJournal {
                    dir,
                    options,
                    segments: VecDeque::from([Segment {
                        first: Lsn(0),
                        path,
                    }]),
                    file,
                    len: HEADER_LEN,
                    records: 0,
                    pending: Vec::new(),
                    unsynced: false,
                    next: Lsn(0),
                    poisoned: false,
                    _lock: lock,
                }
            }
        };
        Ok((journal, recovered))
    }

    /// The journal's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
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

    /// Closes the last segment (written and synced, whatever the policy) and
    /// starts a new one at the next LSN.
    fn roll_over(&mut self) -> Result<(), JournalError> {
        self.flush()?;
        self.sync()?;
        let (file, path) = create_segment(&self.dir, self.next, &self.options)?;
        self.file = file;
        self.segments.push_back(Segment {
            first: self.next,
            path,
        });
        self.len = HEADER_LEN;
        self.records = 0;
        Ok(())
    }

    fn append_inner(&mut self, record: &[u8]) -> Result<Lsn, JournalError> {
        let too_large = || JournalError::RecordTooLarge {
            len: record.len(),
            max: u32::MAX as usize,
        };
        let len = u32::try_from(record.len()).map_err(|_| too_large())?;
        let lsn = self.next;
        let next = lsn.0.checked_add(1).ok_or(JournalError::LsnExhausted)?;
        let frame_len = FRAME_HEADER_LEN + u64::from(len);
        if self.records > 0 && self.len.saturating_add(frame_len) > self.options.segment_size {
            self.roll_over()?;
        }
        self.pending
            .reserve(record.len().saturating_add(FRAME_HEADER_LEN as usize));
        self.pending.extend_from_slice(&len.to_le_bytes());
        self.pending
            .extend_from_slice(&length_check(len).to_le_bytes());
        self.pending
            .extend_from_slice(&crc32c::crc32c(record).to_le_bytes());
        self.pending.extend_from_slice(record);
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

    fn release_inner(&mut self, lsn: Lsn) -> Result<(), JournalError> {
        // Oldest first, syncing the directory after each deletion, so that a crash
        // never leaves a gap between segments.
        while self.segments.len() > 1 && self.segments[1].first <= lsn {
            if let Some(old) = self.segments.pop_front() {
                fs::remove_file(&old.path).map_err(|e| io_error(&old.path, e))?;
                self.options.sync_dir(&self.dir)?;
            }
        }
        Ok(())
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

/// Creates the segment starting at `first`: header written to `<name>.tmp`,
/// synced, renamed, directory synced. Returns it open for appending.
fn create_segment(
    dir: &Path,
    first: Lsn,
    options: &JournalOptions,
) -> Result<(File, PathBuf), JournalError> {
    let name = segment_file_name(first);
    let path = dir.join(&name);
    let tmp = dir.join(format!("{name}.tmp"));
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(|e| io_error(&tmp, e))?;
    let mut header = [0u8; HEADER_LEN as usize];
    header[..8].copy_from_slice(&MAGIC);
    header[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header[10..].copy_from_slice(&first.0.to_le_bytes());
    options.write(&file, &tmp, &header)?;
    options.sync_file(&file, &tmp)?;
    fs::rename(&tmp, &path).map_err(|e| io_error(&path, e))?;
    options.sync_dir(dir)?;
    Ok((file, path))
}

/// Reads the segment at `path`, named for LSN `first`, pushing its good records to
/// `recovered`. `expected` is where the previous segment ended, if there is one.
/// Decides what a bad frame is (torn tail or corruption); a torn tail is left for
/// the caller to truncate at `good_len`.
fn read_segment(
    path: &Path,
    first: Lsn,
    expected: Option<Lsn>,
    is_last: bool,
    recovered: &mut Recovered,
) -> Result<Scan, JournalError> {
    let bytes = fs::read(path).map_err(|e| io_error(path, e))?;
    let file_len = bytes.len() as u64;
    let header_len = HEADER_LEN as usize;
    if bytes.len() < header_len {
        return Err(corrupt(
            path,
            0,
            format!(
                "the segment header is cut short ({} of {HEADER_LEN} bytes)",
                bytes.len()
            ),
        ));
    }
    if bytes[..8] != MAGIC {
        return Err(corrupt(
            path,
            0,
            format!(
                "bad magic {:02x?} (a chronoflow journal segment starts with {:02x?})",
                &bytes[..8],
                MAGIC
            ),
        ));
    }
    let version = u16::from_le_bytes([bytes[8], bytes[9]]);
    if version != FORMAT_VERSION {
        return Err(corrupt(
            path,
            8,
            format!(
                "unsupported format version {version} (this build reads version {FORMAT_VERSION})"
            ),
        ));
    }
    let mut lsn_bytes = [0u8; 8];
    lsn_bytes.copy_from_slice(&bytes[10..18]);
    let header_first = Lsn(u64::from_le_bytes(lsn_bytes));
    if header_first != first {
        return Err(corrupt(
            path,
            10,
            format!("the header's first LSN is {header_first}, the file name's is {first}"),
        ));
    }
    if let Some(expected) = expected
        && expected != first
    {
        return Err(corrupt(
            path,
            10,
            format!(
                "the segment starts at LSN {first} but the previous segment ends before LSN {expected} (a gap or an overlap)"
            ),
        ));
    }

    let mut pos = header_len;
    let mut count = 0u64;
    while pos < bytes.len() {
        let offset = pos as u64;
        let frame = match read_frame(&bytes, pos) {
            Ok(frame) => frame,
            Err(bad) => {
                // A bad frame in the last segment with nothing intact after it is
                // the unfinished write of a crash; anything else is corruption.
                let reason = bad.reason();
                if !is_last {
                    let reason = format!("{reason}, in a segment that is not the last");
                    return Err(corrupt(path, offset, reason));
                }
                if let Some(at) = bad.resume(pos).and_then(|from| find_frame(&bytes, from)) {
                    let reason = format!("{reason}, and an intact record follows at byte {at}");
                    return Err(corrupt(path, offset, reason));
                }
                break;
            }
        };
        let lsn = first
            .0
            .checked_add(count)
            .ok_or_else(|| corrupt(path, offset, "the record's LSN overflows"))?;
        recovered
            .records
            .push((Lsn(lsn), bytes[frame.payload.clone()].to_vec()));
        count += 1;
        pos = frame.payload.end;
    }
    Ok(Scan {
        records: count,
        good_len: pos as u64,
        file_len,
    })
}
