//! [`JournalReader`]: recovery as a stream. Reads the records of a journal one
//! frame at a time, checks each, and at [`finish`](JournalReader::finish)
//! repairs what a crash left and hands the journal over for appending.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::chain::Chain;
use super::file::{FileJournal, create_segment};
use super::frame::{FRAME_HEADER_LEN, find_frame, journal_tag, read_frame};
use super::head::{Head, new_journal_id};
use super::header::{FIRST_AT, HEADER_LEN, SegmentHeader};
use super::{
    JournalError, JournalOptions, Lsn, RecordPosition, SyncPolicy, TruncatedTail, corrupt, io_error,
};

/// The size of the read buffer of the segment being read.
pub const READ_BUFFER_LEN: usize = 64 << 10;

/// A record read back from the journal, with where its frame is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The record's LSN.
    pub lsn: Lsn,
    /// The segment file holding it.
    pub file: Arc<Path>,
    /// The byte offset of its frame in the file.
    pub offset: u64,
    /// The record.
    pub bytes: Vec<u8>,
}

impl Entry {
    /// Where the record is: file and byte offset of its frame.
    pub fn position(&self) -> RecordPosition {
        RecordPosition {
            file: Arc::clone(&self.file),
            offset: self.offset,
        }
    }
}

/// The segment being read.
struct Cursor {
    reader: BufReader<File>,
    /// The offset of the next frame.
    pos: u64,
    /// The records read from this segment so far.
    records: u64,
}

enum State {
    Reading,
    /// Every record is read. The last segment's intact part ends at `good_len`
    /// and holds `records` records.
    Done {
        good_len: u64,
        records: u64,
    },
    /// Reading failed with this error (a copy of the one handed out).
    Failed(JournalError),
}

/// Recovery as a stream: the records of a journal, read one frame at a time, in
/// LSN order, each checked as it is read. Made by [`FileJournal::read`]; an
/// [`Iterator`] of [`Entry`]s, then [`finish`](JournalReader::finish)ed into the
/// journal, open for appending.
///
/// Memory does not grow with the journal: the reader holds the segment list, one
/// read buffer ([`READ_BUFFER_LEN`]) and the record being read. Only when a bad
/// frame is found in the last segment does it read the rest of that segment at
/// once, to tell a torn tail from corruption. See the
/// [module docs](super#recovery).
///
/// Every entry handed out is already on disk (the last segment is synced before
/// the first one, unless the policy is [`SyncPolicy::Never`]). Reading changes
/// nothing in the directory: the repairs (deleting leftovers, cutting a torn
/// tail, completing `HEAD`) are done by `finish`. After an error the iterator
/// ends, and `finish` returns the error again.
pub struct JournalReader {
    dir: PathBuf,
    options: JournalOptions,
    lock: File,
    chain: Chain,
    /// The tag of the journal's frames.
    tag: u32,
    /// The index of the segment being read, in `chain.segments`.
    index: usize,
    cursor: Option<Cursor>,
    /// The LSN the next frame must have.
    next: Lsn,
    state: State,
}

impl fmt::Debug for JournalReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JournalReader")
            .field("dir", &self.dir)
            .field("segments", &self.chain.segments.len())
            .field("index", &self.index)
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl JournalReader {
    /// Checks the chain of the locked directory `dir` and syncs the last segment.
    pub(super) fn new(
        dir: PathBuf,
        options: JournalOptions,
        lock: File,
    ) -> Result<JournalReader, JournalError> {
        let chain = Chain::read(&dir)?;
        // What is handed out must be on disk before it is replayed.
        if options.sync != SyncPolicy::Never
            && let Some(last) = chain.segments.last()
        {
            let file = File::open(&last.path).map_err(|e| io_error(&last.path, e))?;
            options.sync_file(&file, &last.path)?;
        }
        let next = chain.segments.first().map_or(Lsn(0), |s| s.first);
        let state = if chain.segments.is_empty() {
            State::Done {
                good_len: 0,
                records: 0,
            }
        } else {
            State::Reading
        };
        Ok(JournalReader {
            tag: journal_tag(chain.journal_id.unwrap_or(0)),
            dir,
            options,
            lock,
            chain,
            index: 0,
            cursor: None,
            next,
            state,
        })
    }

    /// The journal's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The LSN the next record read will have (after the last, once every
    /// record is read).
    pub fn next_lsn(&self) -> Lsn {
        self.next
    }

    /// Reads the next record; `Ok(None)` at the end.
    fn step(&mut self) -> Result<Option<Entry>, JournalError> {
        loop {
            let segments = &self.chain.segments;
            let seg = &segments[self.index];
            let is_last = self.index + 1 == segments.len();
            let cursor = match &mut self.cursor {
                Some(cursor) => cursor,
                None => {
                    if seg.first != self.next {
                        return Err(corrupt(
                            &seg.path,
                            FIRST_AT,
                            format!(
                                "the segment starts at LSN {} but the previous segment ends before LSN {} (a gap or an overlap)",
                                seg.first, self.next
                            ),
                        ));
                    }
                    let mut file = File::open(&seg.path).map_err(|e| io_error(&seg.path, e))?;
                    file.seek(SeekFrom::Start(HEADER_LEN))
                        .map_err(|e| io_error(&seg.path, e))?;
                    self.cursor.insert(Cursor {
                        reader: BufReader::with_capacity(READ_BUFFER_LEN, file),
                        pos: HEADER_LEN,
                        records: 0,
                    })
                }
            };
            let offset = cursor.pos;
            if offset >= seg.len {
                if is_last {
                    self.state = State::Done {
                        good_len: offset,
                        records: cursor.records,
                    };
                    return Ok(None);
                }
                self.cursor = None;
                self.index += 1;
                continue;
            }
            let read = read_frame(&mut cursor.reader, seg.len - offset)
                .map_err(|e| io_error(&seg.path, e))?;
            let bad = match read {
                Ok(frame) => {
                    if frame.tag != self.tag {
                        return Err(corrupt(
                            &seg.path,
                            offset,
                            format!(
                                "the record belongs to another journal (tag {:08x}, this journal's is {:08x})",
                                frame.tag, self.tag
                            ),
                        ));
                    }
                    if frame.lsn != self.next {
                        return Err(corrupt(
                            &seg.path,
                            offset,
                            format!(
                                "the record's LSN is {}, expected {} (a stale, duplicated or misplaced record)",
                                frame.lsn, self.next
                            ),
                        ));
                    }
                    self.next = self.next.0.checked_add(1).map(Lsn).ok_or_else(|| {
                        corrupt(
                            &seg.path,
                            offset,
                            "the record's LSN is the last one possible",
                        )
                    })?;
                    cursor.pos += FRAME_HEADER_LEN + frame.payload.len() as u64;
                    cursor.records += 1;
                    return Ok(Some(Entry {
                        lsn: frame.lsn,
                        file: Arc::clone(&seg.path),
                        offset,
                        bytes: frame.payload,
                    }));
                }
                Err(bad) => bad,
            };
            // A bad frame in the last segment with nothing intact after it is the
            // unfinished write of a crash; anything else is corruption.
            let reason = bad.reason();
            if !is_last {
                let reason = format!("{reason}, in a segment that is not the last");
                return Err(corrupt(&seg.path, offset, reason));
            }
            if let Some(from) = bad.resume() {
                // The failure path only: the rest of the segment, at once.
                let mut rest = Vec::new();
                File::open(&seg.path)
                    .and_then(|mut f| {
                        f.seek(SeekFrom::Start(offset))?;
                        f.read_to_end(&mut rest)
                    })
                    .map_err(|e| io_error(&seg.path, e))?;
                if let Some(at) = find_frame(&rest, from) {
                    let at = offset + at as u64;
                    let reason = format!("{reason}, and an intact record follows at byte {at}");
                    return Err(corrupt(&seg.path, offset, reason));
                }
            }
            self.state = State::Done {
                good_len: offset,
                records: cursor.records,
            };
            return Ok(None);
        }
    }

    /// Reads what is left, then repairs what a crash left and returns the
    /// journal, open for appending after the last record, with the torn tail
    /// cut off the last segment, if there was one. The repairs, each synced:
    /// leftover temporary files and segments older than `HEAD`'s oldest (an
    /// interrupted release) are deleted; a torn tail is truncated; a journal is
    /// created in an empty directory; `HEAD` is written if an interrupted creation
    /// or rollover left it missing or behind.
    ///
    /// Returns the error that stopped the reading, if one did.
    pub fn finish(mut self) -> Result<(FileJournal, Option<TruncatedTail>), JournalError> {
        for entry in self.by_ref() {
            entry?;
        }
        let (good_len, records) = match std::mem::replace(&mut self.state, State::Reading) {
            State::Done { good_len, records } => (good_len, records),
            State::Failed(e) => return Err(e),
            State::Reading => unreachable!("the iterator ended"),
        };
        let JournalReader {
            dir,
            options,
            lock,
            chain,
            next,
            ..
        } = self;
        for path in &chain.leftovers {
            options.remove(path)?;
        }
        if !chain.leftovers.is_empty() {
            options.sync_dir(&dir)?;
        }

        let (Some(journal_id), Some(last)) = (chain.journal_id, chain.segments.last()) else {
            // An empty directory: a new journal, its first segment, then HEAD.
            let journal_id = options.new_journal_id.unwrap_or_else(new_journal_id);
            let header = SegmentHeader {
                journal_id,
                first: Lsn(0),
                predecessor: None,
            };
            let (file, path) = create_segment(&dir, &header, &options)?;
            let head = Head {
                journal_id,
                oldest: Lsn(0),
                newest: Lsn(0),
            };
            head.write(&dir, &options)?;
            let segments = vec![(Lsn(0), path)];
            let journal = FileJournal::resume(
                dir,
                options,
                lock,
                journal_id,
                segments,
                file,
                HEADER_LEN,
                0,
                Lsn(0),
                false,
            );
            return Ok((journal, None));
        };

        let path = last.path.to_path_buf();
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| io_error(&path, e))?;
        let mut truncated = None;
        if good_len < last.len {
            file.set_len(good_len).map_err(|e| io_error(&path, e))?;
            options.sync_file(&file, &path)?;
            truncated = Some(TruncatedTail {
                file: path.clone(),
                offset: good_len,
                bytes: last.len - good_len,
            });
        }
        if let Some(head) = chain.head_to_write {
            head.write(&dir, &options)?;
        }
        // Synced at open, or truncated and synced, unless the policy is Never.
        let unsynced = truncated.is_none() && options.sync == SyncPolicy::Never;
        let segments = chain
            .segments
            .iter()
            .map(|s| (s.first, s.path.to_path_buf()))
            .collect();
        let journal = FileJournal::resume(
            dir, options, lock, journal_id, segments, file, good_len, records, next, unsynced,
        );
        Ok((journal, truncated))
    }
}

impl Iterator for JournalReader {
    type Item = Result<Entry, JournalError>;

    fn next(&mut self) -> Option<Self::Item> {
        if !matches!(self.state, State::Reading) {
            return None;
        }
        match self.step() {
            Ok(Some(entry)) => Some(Ok(entry)),
            Ok(None) => None,
            Err(e) => {
                self.state = State::Failed(e.duplicate());
                Some(Err(e))
            }
        }
    }
}
