//! A segment's header (format version 2): magic, version, journal id, first LSN,
//! the predecessor's first LSN, and a CRC-32C of all that. Writing one, and
//! reading and checking one.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use super::{JournalError, Lsn, corrupt, io_error};

/// The first 8 bytes of every segment file.
pub const MAGIC: [u8; 8] = *b"CHRFLOW\0";

/// The on-disk format version this build writes and reads (segment headers and
/// the `HEAD` file).
pub const FORMAT_VERSION: u16 = 2;

/// The length of a segment header: magic, version, journal id, first LSN,
/// predecessor's first LSN, header CRC.
pub const HEADER_LEN: u64 = 38;

/// The predecessor field of the very first segment of a journal.
pub const NO_PREDECESSOR: u64 = u64::MAX;

const LEN: usize = HEADER_LEN as usize;

/// Offsets of the header's fields.
pub(super) const JOURNAL_ID_AT: u64 = 10;
pub(super) const FIRST_AT: u64 = 18;
pub(super) const PREDECESSOR_AT: u64 = 26;

/// A segment header, as written or as read (and checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SegmentHeader {
    pub(super) journal_id: u64,
    pub(super) first: Lsn,
    /// The first LSN of the segment before this one; `None` for the journal's
    /// first segment.
    pub(super) predecessor: Option<Lsn>,
}

fn u64_at(bytes: &[u8], at: u64) -> u64 {
    let at = at as usize;
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

impl SegmentHeader {
    pub(super) fn encode(&self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        b[..8].copy_from_slice(&MAGIC);
        b[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[10..18].copy_from_slice(&self.journal_id.to_le_bytes());
        b[18..26].copy_from_slice(&self.first.0.to_le_bytes());
        let pred = self.predecessor.map_or(NO_PREDECESSOR, |p| p.0);
        b[26..34].copy_from_slice(&pred.to_le_bytes());
        let crc = crc32c::crc32c(&b[..34]);
        b[34..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Reads and checks the header of the segment at `path`, named for LSN
    /// `named`. Checks, in this order: magic, version, length, CRC, first LSN
    /// equal to the name's, predecessor below the first LSN. Does not check the
    /// journal id (the caller compares it with `HEAD`'s).
    pub(super) fn read(path: &Path, named: Lsn) -> Result<SegmentHeader, JournalError> {
        let mut bytes = Vec::with_capacity(LEN);
        File::open(path)
            .and_then(|f| f.take(HEADER_LEN).read_to_end(&mut bytes))
            .map_err(|e| io_error(path, e))?;
        let cut = |n: usize| {
            corrupt(
                path,
                0,
                format!("the segment header is cut short ({n} of {HEADER_LEN} bytes)"),
            )
        };
        if bytes.len() < 8 {
            return Err(cut(bytes.len()));
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
        if bytes.len() < 10 {
            return Err(cut(bytes.len()));
        }
        let version = u16::from_le_bytes([bytes[8], bytes[9]]);
        if version != FORMAT_VERSION {
            return Err(JournalError::UnsupportedVersion {
                file: path.to_path_buf(),
                version,
            });
        }
        if bytes.len() < LEN {
            return Err(cut(bytes.len()));
        }
        let crc = u32::from_le_bytes(bytes[34..38].try_into().expect("4 bytes"));
        if crc != crc32c::crc32c(&bytes[..34]) {
            // The damage is somewhere in the header: report its start.
            return Err(corrupt(path, 0, "the segment header's CRC does not match"));
        }
        let first = Lsn(u64_at(&bytes, FIRST_AT));
        if first != named {
            return Err(corrupt(
                path,
                FIRST_AT,
                format!("the header's first LSN is {first}, the file name's is {named}"),
            ));
        }
        let predecessor = match u64_at(&bytes, PREDECESSOR_AT) {
            NO_PREDECESSOR => None,
            p if p < first.0 => Some(Lsn(p)),
            p => {
                return Err(corrupt(
                    path,
                    PREDECESSOR_AT,
                    format!("the predecessor's first LSN {p} is not below the segment's {first}"),
                ));
            }
        };
        Ok(SegmentHeader {
            journal_id: u64_at(&bytes, JOURNAL_ID_AT),
            first,
            predecessor,
        })
    }
}
