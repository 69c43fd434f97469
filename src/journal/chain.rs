//! The chain of segments at open: listing the directory, reading `HEAD` and every
//! segment header, and checking that they make one unbroken chain from `HEAD`'s
//! oldest segment to its newest. Tells the leftovers of interrupted operations
//! (to be deleted or adopted) from damage (refused with a typed error). Reads
//! headers only, and changes nothing.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::head::{HEAD_TMP, Head};
use super::header::{HEADER_LEN, PREDECESSOR_AT, SegmentHeader};
use super::{JournalError, Lsn, SEGMENT_EXTENSION, corrupt, io_error, segment_file_name};

/// A segment of the chain, its header checked.
#[derive(Debug, Clone)]
pub(super) struct SegmentInfo {
    pub(super) first: Lsn,
    pub(super) path: Arc<Path>,
    /// The file's length when the chain was read.
    pub(super) len: u64,
}

/// What the directory holds, checked.
#[derive(Debug)]
pub(super) struct Chain {
    /// The journal's id; `None` for an empty directory (a journal to create).
    pub(super) journal_id: Option<u64>,
    /// The segments from `HEAD`'s oldest to its newest (or the adopted one after
    /// it), oldest first.
    pub(super) segments: Vec<SegmentInfo>,
    /// Files to delete: temporary files of interrupted writes, and segments
    /// older than `HEAD`'s oldest (an interrupted release).
    pub(super) leftovers: Vec<PathBuf>,
    /// The `HEAD` to write, when it is missing or behind (an interrupted creation
    /// or rollover).
    pub(super) head_to_write: Option<Head>,
}

/// The LSN a segment file name (without extension) stands for: exactly 20 digits.
fn parse_segment_stem(stem: &str) -> Option<Lsn> {
    if stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()) {
        stem.parse().ok().map(Lsn)
    } else {
        None
    }
}

fn missing(dir: &Path, first: Lsn, reason: String) -> JournalError {
    JournalError::MissingSegment {
        dir: dir.to_path_buf(),
        first,
        reason,
    }
}

impl Chain {
    /// Reads and checks the chain of the journal in `dir`.
    pub(super) fn read(dir: &Path) -> Result<Chain, JournalError> {
        let mut firsts = Vec::new();
        let mut leftovers = Vec::new();
        for entry in fs::read_dir(dir).map_err(|e| io_error(dir, e))? {
            let entry = entry.map_err(|e| io_error(dir, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name == HEAD_TMP {
                leftovers.push(entry.path());
                continue;
            }
            let Some((stem, ext)) = name.split_once('.') else {
                continue;
            };
            if parse_segment_stem(stem).is_none() {
                continue;
            }
            if ext == SEGMENT_EXTENSION {
                firsts.extend(parse_segment_stem(stem));
            } else if ext.strip_suffix(".tmp") == Some(SEGMENT_EXTENSION) {
                leftovers.push(entry.path());
            }
        }
        firsts.sort_unstable();
        leftovers.sort_unstable();

        let head = Head::read(dir)?;
        // Segments older than HEAD's oldest are what an interrupted release had
        // still to delete.
        if let Some(head) = head {
            let released = firsts.partition_point(|&f| f < head.oldest);
            leftovers.extend(
                firsts
                    .drain(..released)
                    .map(|f| dir.join(segment_file_name(f))),
            );
        }

        let mut headers = Vec::with_capacity(firsts.len());
        let mut segments = Vec::with_capacity(firsts.len());
        for &first in &firsts {
            let path = dir.join(segment_file_name(first));
            let header = SegmentHeader::read(&path, first)?;
            let len = fs::metadata(&path).map_err(|e| io_error(&path, e))?.len();
            headers.push(header);
            segments.push(SegmentInfo {
                first,
                path: Arc::from(path.as_path()),
                len,
            });
        }

        let Some(head) = head else {
            return match (headers.as_slice(), segments.as_slice()) {
                ([], _) => Ok(Chain {
                    journal_id: None,
                    segments,
                    leftovers,
                    head_to_write: None,
                }),
                // A first segment without records and without HEAD: the creation
                // of the journal was interrupted before HEAD was written.
                ([h], [s])
                    if h.first == Lsn(0) && h.predecessor.is_none() && s.len == HEADER_LEN =>
                {
                    let head = Head {
                        journal_id: h.journal_id,
                        oldest: Lsn(0),
                        newest: Lsn(0),
                    };
                    Ok(Chain {
                        journal_id: Some(h.journal_id),
                        segments,
                        leftovers,
                        head_to_write: Some(head),
                    })
                }
                _ => Err(JournalError::MissingHead {
                    dir: dir.to_path_buf(),
                }),
            };
        };

        if segments.is_empty() {
            return Err(missing(
                dir,
                head.oldest,
                format!(
                    "HEAD names the segments from {} to {}, but no segment file is left",
                    segment_file_name(head.oldest),
                    segment_file_name(head.newest)
                ),
            ));
        }
        for (h, s) in headers.iter().zip(&segments) {
            if h.journal_id != head.journal_id {
                return Err(JournalError::ForeignSegment {
                    file: s.path.to_path_buf(),
                    found: h.journal_id,
                    expected: head.journal_id,
                });
            }
        }
        if segments[0].first != head.oldest {
            return Err(missing(
                dir,
                head.oldest,
                format!(
                    "it is HEAD's oldest segment; the oldest one left is {}",
                    segment_file_name(segments[0].first)
                ),
            ));
        }
        // Every segment after the oldest names the one before it.
        for (i, (h, s)) in headers.iter().zip(&segments).enumerate().skip(1) {
            let before = segments[i - 1].first;
            match h.predecessor {
                Some(p) if p == before => {}
                Some(p) if p > before => {
                    return Err(missing(
                        dir,
                        p,
                        format!("{} names it as its predecessor", segment_file_name(s.first)),
                    ));
                }
                p => {
                    let p = p.map_or("none".to_string(), |p| p.to_string());
                    return Err(corrupt(
                        &s.path,
                        PREDECESSOR_AT,
                        format!(
                            "the segment's predecessor is {p}, but the segment before it is {before}"
                        ),
                    ));
                }
            }
        }
        let Some(newest) = segments.iter().position(|s| s.first == head.newest) else {
            return Err(missing(
                dir,
                head.newest,
                "it is HEAD's newest segment".to_string(),
            ));
        };
        let head_to_write = match &segments[newest + 1..] {
            [] => None,
            // Created by a rollover that was interrupted before HEAD named it:
            // it has no records (nothing is appended to a segment before HEAD
            // names it), and the chain checks above made HEAD's newest its
            // predecessor.
            [s] if s.len == HEADER_LEN => Some(Head {
                newest: s.first,
                ..head
            }),
            [s, ..] => {
                return Err(corrupt(
                    &s.path,
                    0,
                    format!(
                        "the segment is after HEAD's newest ({}) and is not the empty leftover of an interrupted rollover",
                        head.newest
                    ),
                ));
            }
        };
        Ok(Chain {
            journal_id: Some(head.journal_id),
            segments,
            leftovers,
            head_to_write,
        })
    }
}
