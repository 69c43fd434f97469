//! The `HEAD` file: which journal a directory holds (its id) and where its chain
//! of segments starts and ends. Reading and checking it, replacing it atomically,
//! and choosing a new journal's id.

use std::collections::hash_map::RandomState;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::header::FORMAT_VERSION;
use super::{JournalError, JournalOptions, Lsn, corrupt, io_error};

/// The name of the `HEAD` file in a journal directory.
pub const HEAD_FILE: &str = "HEAD";

/// The first 8 bytes of a `HEAD` file.
pub const HEAD_MAGIC: [u8; 8] = *b"CHRFHEAD";

/// The length of a `HEAD` file: magic, version, journal id, oldest segment's
/// first LSN, newest segment's first LSN, CRC.
pub const HEAD_LEN: u64 = 38;

/// The name of the file a new `HEAD` is written to before it replaces the old
/// (`HEAD_FILE` + `.tmp`, as `JournalOptions::write_atomically` names it).
pub(super) const HEAD_TMP: &str = "HEAD.tmp";

const LEN: usize = HEAD_LEN as usize;

/// What a `HEAD` file says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Head {
    pub(super) journal_id: u64,
    /// The first LSN of the oldest segment kept.
    pub(super) oldest: Lsn,
    /// The first LSN of the newest segment (the one appended to).
    pub(super) newest: Lsn,
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

impl Head {
    fn encode(&self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        b[..8].copy_from_slice(&HEAD_MAGIC);
        b[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[10..18].copy_from_slice(&self.journal_id.to_le_bytes());
        b[18..26].copy_from_slice(&self.oldest.0.to_le_bytes());
        b[26..34].copy_from_slice(&self.newest.0.to_le_bytes());
        let crc = crc32c::crc32c(&b[..34]);
        b[34..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Reads and checks `dir/HEAD`; `None` if there is none.
    pub(super) fn read(dir: &Path) -> Result<Option<Head>, JournalError> {
        let path = dir.join(HEAD_FILE);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(&path, e)),
        };
        if bytes.len() >= 8 && bytes[..8] != HEAD_MAGIC {
            return Err(corrupt(&path, 0, "bad magic (not a chronoflow HEAD file)"));
        }
        if bytes.len() >= 10 {
            let version = u16::from_le_bytes([bytes[8], bytes[9]]);
            if version != FORMAT_VERSION {
                return Err(JournalError::UnsupportedVersion {
                    file: path,
                    version,
                });
            }
        }
        if bytes.len() != LEN {
            return Err(corrupt(
                &path,
                0,
                format!(
                    "the HEAD file is {} bytes long, not {HEAD_LEN}",
                    bytes.len()
                ),
            ));
        }
        let crc = u32::from_le_bytes(bytes[34..38].try_into().expect("4 bytes"));
        if crc != crc32c::crc32c(&bytes[..34]) {
            return Err(corrupt(&path, 0, "the HEAD file's CRC does not match"));
        }
        let head = Head {
            journal_id: u64_at(&bytes, 10),
            oldest: Lsn(u64_at(&bytes, 18)),
            newest: Lsn(u64_at(&bytes, 26)),
        };
        if head.oldest > head.newest {
            return Err(corrupt(
                &path,
                18,
                format!(
                    "the oldest segment ({}) is after the newest ({})",
                    head.oldest, head.newest
                ),
            ));
        }
        Ok(Some(head))
    }

    /// Replaces `dir/HEAD` with `self`, atomically: written to `HEAD.tmp`,
    /// `fdatasync`ed, renamed over `HEAD`, directory `fsync`ed; each step through
    /// the I/O hook.
    pub(super) fn write(&self, dir: &Path, options: &JournalOptions) -> Result<(), JournalError> {
        options.write_atomically(dir, HEAD_FILE, &self.encode())?;
        Ok(())
    }
}

/// A fresh journal id: the time, the process id and a counter, hashed with a
/// randomly keyed hasher.
pub(super) fn new_journal_id() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.write_u128(now);
    h.write_u32(std::process::id());
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish()
}
