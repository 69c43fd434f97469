//! [`JournalOptions`]: how a [`FileJournal`](super::FileJournal) is set up, and
//! every operation on the journal's files that goes through the
//! [`io_hook`](JournalOptions::io_hook).

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{IoHook, IoOp, JournalError, SyncPolicy, io_error};

/// The default segment size: 64 MiB.
pub const DEFAULT_SEGMENT_SIZE: u64 = 64 << 20;

/// How a [`FileJournal`](super::FileJournal) is set up: segment size, sync
/// policy and, for tests, a fixed id for new journals. Built with
/// `JournalOptions::default()` and the methods below.
#[derive(Clone)]
pub struct JournalOptions {
    pub(super) segment_size: u64,
    pub(super) sync: SyncPolicy,
    pub(super) io_hook: Option<IoHook>,
    pub(super) new_journal_id: Option<u64>,
}

impl Default for JournalOptions {
    fn default() -> Self {
        JournalOptions {
            segment_size: DEFAULT_SEGMENT_SIZE,
            sync: SyncPolicy::default(),
            io_hook: None,
            new_journal_id: None,
        }
    }
}

impl fmt::Debug for JournalOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JournalOptions")
            .field("segment_size", &self.segment_size)
            .field("sync", &self.sync)
            .field("io_hook", &self.io_hook.as_ref().map(|_| "Fn"))
            .field("new_journal_id", &self.new_journal_id)
            .finish()
    }
}

impl JournalOptions {
    /// The size in bytes past which a segment is closed and a new one started
    /// (default [`DEFAULT_SEGMENT_SIZE`]). A segment never grows past it, except
    /// one holding a single record larger than it. Any value works; a value at
    /// most [`HEADER_LEN`](super::HEADER_LEN) gives one record per segment.
    pub fn segment_size(mut self, bytes: u64) -> Self {
        self.segment_size = bytes;
        self
    }

    /// When records are forced to the disk (default [`SyncPolicy::EveryCommit`]).
    pub fn sync(mut self, policy: SyncPolicy) -> Self {
        self.sync = policy;
        self
    }

    /// For fault-injection tests: `hook` is called before each write, sync,
    /// rename and deletion of the journal's files (at open too), with the
    /// operation and the path; if it returns an error, the operation fails with
    /// that error without being done.
    #[doc(hidden)]
    pub fn io_hook(
        mut self,
        hook: impl Fn(IoOp, &Path) -> io::Result<()> + Send + Sync + 'static,
    ) -> Self {
        self.io_hook = Some(Arc::new(hook));
        self
    }

    /// The journal id a journal *created* by this open gets, instead of a random
    /// one; opening an existing journal ignores it (its id is in its `HEAD` file).
    /// For reproducible files only, such as format fixtures: two journals must
    /// never share an id, or a segment of one could be taken for a segment of the
    /// other. See the [module docs](super#the-journal-id).
    pub fn new_journal_id(mut self, id: u64) -> Self {
        self.new_journal_id = Some(id);
        self
    }

    fn hook(&self, op: IoOp, path: &Path) -> io::Result<()> {
        match &self.io_hook {
            Some(hook) => hook(op, path),
            None => Ok(()),
        }
    }

    /// `fdatasync` of a journal file, through the hook.
    pub(super) fn sync_file(&self, file: &File, path: &Path) -> Result<(), JournalError> {
        self.hook(IoOp::Sync, path)
            .and_then(|()| file.sync_data())
            .map_err(|source| JournalError::Sync {
                file: path.to_path_buf(),
                source,
            })
    }

    /// `fsync` of a directory, through the hook.
    pub(super) fn sync_dir(&self, dir: &Path) -> Result<(), JournalError> {
        self.hook(IoOp::SyncDir, dir)
            .and_then(|()| File::open(dir)?.sync_all())
            .map_err(|source| JournalError::Sync {
                file: dir.to_path_buf(),
                source,
            })
    }

    /// A write to a journal file, through the hook.
    pub(super) fn write(
        &self,
        mut file: &File,
        path: &Path,
        bytes: &[u8],
    ) -> Result<(), JournalError> {
        self.hook(IoOp::Write, path)
            .and_then(|()| file.write_all(bytes))
            .map_err(|source| io_error(path, source))
    }

    /// Renames `from` to `to` (replacing it), through the hook (with `to`).
    pub(super) fn rename(&self, from: &Path, to: &Path) -> Result<(), JournalError> {
        self.hook(IoOp::Rename, to)
            .and_then(|()| fs::rename(from, to))
            .map_err(|source| io_error(to, source))
    }

    /// Makes `dir/name` hold `bytes`, atomically: written to `dir/name.tmp`,
    /// `fdatasync`ed, renamed over `dir/name`, and the directory `fsync`ed, each
    /// step through the hook. A crash leaves the old file (or none) and perhaps
    /// the `.tmp` one, never a part of the new. Returns the new file, open for
    /// writing at its end, and its path.
    pub(super) fn write_atomically(
        &self,
        dir: &Path,
        name: &str,
        bytes: &[u8],
    ) -> Result<(File, PathBuf), JournalError> {
        let path = dir.join(name);
        let tmp = dir.join(format!("{name}.tmp"));
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| io_error(&tmp, e))?;
        self.write(&file, &tmp, bytes)?;
        self.sync_file(&file, &tmp)?;
        self.rename(&tmp, &path)?;
        self.sync_dir(dir)?;
        Ok((file, path))
    }

    /// Deletes a journal file, through the hook.
    pub(super) fn remove(&self, path: &Path) -> Result<(), JournalError> {
        self.hook(IoOp::Remove, path)
            .and_then(|()| fs::remove_file(path))
            .map_err(|source| io_error(path, source))
    }
}
