//! Journal faults: torn tails are cut and reported, corruption elsewhere is refused
//! with its file and offset, a failed sync or write poisons the journal.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chronoflow::journal::{
    FRAME_HEADER_LEN, FileJournal, HEADER_LEN, IoOp, Journal, JournalError, JournalOptions, Lsn,
    Recovered, TruncatedTail, segment_file_name,
};
use tempfile::TempDir;

/// "record 0" .. "record 9": 8-byte payloads, 20-byte frames.
fn record(i: u64) -> Vec<u8> {
    format!("record {i}").into_bytes()
}

fn records(range: std::ops::Range<u64>) -> Vec<(Lsn, Vec<u8>)> {
    range.map(|i| (Lsn(i), record(i))).collect()
}

/// Where the frame of record `k` of a segment of "record N" records starts.
fn frame_start(k: u64) -> u64 {
    HEADER_LEN + k * (FRAME_HEADER_LEN + 8)
}

/// A journal of `n` committed records in one segment; returns the segment's path.
fn journal_of(dir: &Path, n: u64) -> PathBuf {
    let (mut j, _) = FileJournal::open(dir, JournalOptions::default()).unwrap();
    for i in 0..n {
        j.append(&record(i)).unwrap();
    }
    j.commit().unwrap();
    dir.join(segment_file_name(Lsn(0)))
}

fn reopen(dir: &Path) -> Result<(FileJournal, Recovered), JournalError> {
    FileJournal::open(dir, JournalOptions::default())
}

fn len(path: &Path) -> u64 {
    fs::metadata(path).unwrap().len()
}

fn append_bytes(path: &Path, bytes: &[u8]) {
    OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x10;
    fs::write(path, bytes).unwrap();
}

/// Asserts that `result` is `Corrupt` for `file` at `offset`; returns the reason.
fn assert_corrupt(
    result: Result<(FileJournal, Recovered), JournalError>,
    file: &Path,
    offset: u64,
) -> String {
    match result {
        Err(JournalError::Corrupt {
            file: f,
            offset: o,
            reason,
        }) => {
            assert_eq!((f.as_path(), o), (file, offset), "{reason}");
            let shown = JournalError::Corrupt {
                file: f,
                offset: o,
                reason: reason.clone(),
            }
            .to_string();
            assert!(shown.contains(&file.display().to_string()), "{shown}");
            assert!(shown.contains(&format!("byte {offset}")), "{shown}");
            reason
        }
        Err(other) => panic!("expected Corrupt, got {other}"),
        Ok((_, recovered)) => panic!("expected Corrupt, recovered {recovered:?}"),
    }
}

/// After a torn tail of `cut` bytes at record 4: records 0..4 survive, the tail is
/// reported and cut, appending continues at LSN 4 and survives another reopen.
fn assert_torn_at_record_4(dir: &Path, segment: &Path, cut: u64) {
    let (mut j, recovered) = reopen(dir).unwrap();
    assert_eq!(recovered.records, records(0..4));
    assert_eq!(
        recovered.truncated,
        Some(TruncatedTail {
            file: segment.to_path_buf(),
            offset: frame_start(4),
            bytes: cut,
        })
    );
    assert_eq!(len(segment), frame_start(4));
    assert_eq!(j.append(b"again 4").unwrap(), Lsn(4));
    j.commit().unwrap();
    drop(j);
    let (j, recovered) = reopen(dir).unwrap();
    assert_eq!(recovered.truncated, None);
    let mut expected = records(0..4);
    expected.push((Lsn(4), b"again 4".to_vec()));
    assert_eq!(recovered.records, expected);
    assert_eq!(j.next_lsn(), Lsn(5));
}

#[test]
fn a_record_cut_in_its_payload_is_a_torn_tail() {
    let tmp = TempDir::new().unwrap();
    let segment = journal_of(tmp.path(), 5);
    let cut_at = frame_start(4) + FRAME_HEADER_LEN + 3;
    fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap()
        .set_len(cut_at)
        .unwrap();
    assert_torn_at_record_4(tmp.path(), &segment, cut_at - frame_start(4));
}

#[test]
fn a_record_cut_in_its_frame_header_is_a_torn_tail() {
    let tmp = TempDir::new().unwrap();
    let segment = journal_of(tmp.path(), 5);
    for cut in [1, 4, 5, FRAME_HEADER_LEN - 1] {
        let cut_at = frame_start(4) + cut;
        let file = fs::OpenOptions::new().write(true).open(&segment).unwrap();
        file.set_len(cut_at).unwrap();
        let (mut j, recovered) = reopen(tmp.path()).unwrap();
        assert_eq!(recovered.records, records(0..4), "cut {cut}");
        assert_eq!(recovered.truncated.unwrap().bytes, cut);
        // Put record 4 back for the next round.
        j.append(&record(4)).unwrap();
        j.commit().unwrap();
    }
}

#[test]
fn garbage_after_the_last_record_is_a_torn_tail() {
    // A few bytes, random-looking bytes, zeros (what some file systems show after a
    // crash), and a frame whose checked length promises more than there is.
    let mut promise = Vec::new();
    promise.extend_from_slice(&100u32.to_le_bytes());
    promise.extend_from_slice(&crc32c::crc32c(&100u32.to_le_bytes()).to_le_bytes());
    promise.extend_from_slice(&[0xab; 14]);
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let noise: Vec<u8> = (0..300)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    for garbage in [vec![0xde, 0xad, 0xbe], noise, vec![0u8; 4096], promise] {
        let tmp = TempDir::new().unwrap();
        let segment = journal_of(tmp.path(), 4);
        append_bytes(&segment, &garbage);
        assert_torn_at_record_4(tmp.path(), &segment, garbage.len() as u64);
    }
}

#[test]
fn garbage_followed_by_an_intact_record_is_corruption() {
    let tmp = TempDir::new().unwrap();
    let segment = journal_of(tmp.path(), 5);
    // Overwrite record 3's frame header with garbage: record 4 stays intact after it.
    let mut bytes = fs::read(&segment).unwrap();
    let at = frame_start(3) as usize;
    bytes[at..at + 8].copy_from_slice(&[0x55; 8]);
    fs::write(&segment, &bytes).unwrap();
    let reason = assert_corrupt(reopen(tmp.path()), &segment, frame_start(3));
    assert!(
        reason.contains(&format!("byte {}", frame_start(4))),
        "{reason}"
    );
    assert_eq!(len(&segment), frame_start(5), "nothing was truncated");
}

#[test]
fn a_flipped_byte_mid_file_is_corruption_at_its_frame() {
    // In the length, the length check, the payload CRC, the payload.
    for within in [0, 2, 5, 9, FRAME_HEADER_LEN, FRAME_HEADER_LEN + 7] {
        let tmp = TempDir::new().unwrap();
        let segment = journal_of(tmp.path(), 5);
        flip_byte(&segment, frame_start(2) + within);
        let reason = assert_corrupt(reopen(tmp.path()), &segment, frame_start(2));
        assert!(!reason.is_empty());
        assert_eq!(len(&segment), frame_start(5), "nothing was truncated");
    }
}

#[test]
fn a_flipped_byte_in_the_last_payload_looks_like_a_torn_tail() {
    // Indistinguishable from a torn write: cut, and reported.
    let tmp = TempDir::new().unwrap();
    let segment = journal_of(tmp.path(), 5);
    flip_byte(&segment, frame_start(4) + FRAME_HEADER_LEN + 2);
    assert_torn_at_record_4(tmp.path(), &segment, FRAME_HEADER_LEN + 8);
}

/// Ten records in segments 0, 3, 6, 9 (three frames per segment).
fn segmented(dir: &Path) -> JournalOptions {
    let options = JournalOptions::default().segment_size(frame_start(3));
    let (mut j, _) = FileJournal::open(dir, options.clone()).unwrap();
    for i in 0..10 {
        j.append(&record(i)).unwrap();
    }
    j.commit().unwrap();
    options
}

#[test]
fn a_bad_record_in_an_earlier_segment_is_corruption_even_at_its_end() {
    let tmp = TempDir::new().unwrap();
    segmented(tmp.path());
    let segment = tmp.path().join(segment_file_name(Lsn(3)));
    flip_byte(&segment, frame_start(2) + FRAME_HEADER_LEN + 1);
    let reason = assert_corrupt(reopen(tmp.path()), &segment, frame_start(2));
    assert!(reason.contains("not the last"), "{reason}");

    let tmp = TempDir::new().unwrap();
    segmented(tmp.path());
    let segment = tmp.path().join(segment_file_name(Lsn(0)));
    let file = fs::OpenOptions::new().write(true).open(&segment).unwrap();
    file.set_len(frame_start(3) - 3).unwrap();
    assert_corrupt(reopen(tmp.path()), &segment, frame_start(2));
}

#[test]
fn records_lost_at_the_end_of_a_middle_segment_are_an_lsn_gap() {
    let tmp = TempDir::new().unwrap();
    segmented(tmp.path());
    // Segment 3 loses record 5, cut at a frame boundary: its frames are intact,
    // but segment 6 does not start where it ends.
    let segment = tmp.path().join(segment_file_name(Lsn(3)));
    let file = fs::OpenOptions::new().write(true).open(&segment).unwrap();
    file.set_len(frame_start(2)).unwrap();
    let reason = assert_corrupt(
        reopen(tmp.path()),
        &tmp.path().join(segment_file_name(Lsn(6))),
        18,
    );
    assert!(reason.contains("gap"), "{reason}");
}

/// Recomputes a segment header's CRC after its fields were changed.
fn fix_header_crc(header: &mut [u8]) {
    let crc = crc32c::crc32c(&header[..34]);
    header[34..38].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn bad_headers_are_corruption() {
    /// Damages a segment's bytes.
    type Damage = fn(&mut Vec<u8>);
    // (the damage, the offset reported, a word of the reason)
    let damages: [(Damage, u64, &str); 5] = [
        (|c| c[..8].copy_from_slice(b"CHRFLOX\0"), 0, "magic"),
        // The journal id, the first LSN or the predecessor changed: the CRC.
        (|c| c[12] ^= 1, 0, "CRC"),
        (|c| c[20] ^= 1, 0, "CRC"),
        (
            |c| {
                c[18..26].copy_from_slice(&7u64.to_le_bytes());
                fix_header_crc(c);
            },
            18,
            "file name",
        ),
        (|c| c.truncate(3), 0, "cut short"),
    ];
    for (damage, offset, word) in damages {
        // In the last segment as in any other: a header is never a torn tail.
        for first in [3, 9] {
            let tmp = TempDir::new().unwrap();
            segmented(tmp.path());
            let segment = tmp.path().join(segment_file_name(Lsn(first)));
            let mut content = fs::read(&segment).unwrap();
            damage(&mut content);
            fs::write(&segment, content).unwrap();
            let reason = assert_corrupt(reopen(tmp.path()), &segment, offset);
            assert!(reason.contains(word), "{reason}");
        }
    }
}

/// Options whose segment syncs fail once `armed` is set.
fn failing(op: IoOp) -> (JournalOptions, Arc<AtomicBool>) {
    let armed = Arc::new(AtomicBool::new(false));
    let trigger = Arc::clone(&armed);
    let options = JournalOptions::default().io_hook(move |o, _path| {
        if o == op && trigger.load(Ordering::SeqCst) {
            Err(io::Error::other("injected fault"))
        } else {
            Ok(())
        }
    });
    (options, armed)
}

fn assert_poisoned(j: &mut FileJournal) {
    assert!(j.is_poisoned());
    assert!(matches!(j.append(b"more"), Err(JournalError::Poisoned)));
    assert!(matches!(j.commit(), Err(JournalError::Poisoned)));
    assert!(matches!(
        j.release_before(Lsn(0)),
        Err(JournalError::Poisoned)
    ));
}

#[test]
fn a_failed_fsync_is_reported_then_poisons() {
    let tmp = TempDir::new().unwrap();
    let (options, armed) = failing(IoOp::Sync);
    let (mut j, _) = FileJournal::open(tmp.path(), options).unwrap();
    j.append(b"committed").unwrap();
    j.commit().unwrap();
    armed.store(true, Ordering::SeqCst);
    j.append(b"not committed").unwrap();
    let err = j.commit().unwrap_err();
    let segment = tmp.path().join(segment_file_name(Lsn(0)));
    assert!(
        matches!(&err, JournalError::Sync { file, .. } if *file == segment),
        "{err}"
    );
    assert!(err.to_string().contains("injected fault"), "{err}");
    // Never retried, even once the disk would accept it.
    armed.store(false, Ordering::SeqCst);
    assert_poisoned(&mut j);
    drop(j);

    // Reopening recovers what is there; the committed record is.
    let (j, recovered) = reopen(tmp.path()).unwrap();
    assert_eq!(recovered.records[0], (Lsn(0), b"committed".to_vec()));
    assert_eq!(j.next_lsn(), Lsn(recovered.records.len() as u64));
}

#[test]
fn a_failed_fsync_under_every_record_fails_the_append() {
    let tmp = TempDir::new().unwrap();
    let (options, armed) = failing(IoOp::Sync);
    let options = options.sync(chronoflow::journal::SyncPolicy::EveryRecord);
    let (mut j, _) = FileJournal::open(tmp.path(), options).unwrap();
    j.append(b"durable").unwrap();
    armed.store(true, Ordering::SeqCst);
    assert!(matches!(j.append(b"x"), Err(JournalError::Sync { .. })));
    assert_poisoned(&mut j);
}

#[test]
fn a_failed_fsync_at_rollover_poisons() {
    let tmp = TempDir::new().unwrap();
    let (options, armed) = failing(IoOp::Sync);
    let options = options
        .segment_size(frame_start(3))
        .sync(chronoflow::journal::SyncPolicy::Never);
    let (mut j, _) = FileJournal::open(tmp.path(), options).unwrap();
    for i in 0..3 {
        j.append(&record(i)).unwrap();
    }
    armed.store(true, Ordering::SeqCst);
    // The fourth record needs a new segment, which needs the old one synced.
    assert!(matches!(
        j.append(&record(3)),
        Err(JournalError::Sync { .. })
    ));
    assert_poisoned(&mut j);
    drop(j);
    assert!(!tmp.path().join(segment_file_name(Lsn(3))).exists());
    let (_, recovered) = reopen(tmp.path()).unwrap();
    assert_eq!(recovered.records, records(0..3));
}

#[test]
fn a_failed_directory_sync_after_a_release_poisons() {
    let tmp = TempDir::new().unwrap();
    let (options, armed) = failing(IoOp::SyncDir);
    let options = options.segment_size(frame_start(3));
    let (mut j, _) = FileJournal::open(tmp.path(), options).unwrap();
    for i in 0..4 {
        j.append(&record(i)).unwrap();
    }
    j.commit().unwrap();
    armed.store(true, Ordering::SeqCst);
    let err = j.release_before(Lsn(3)).unwrap_err();
    assert!(
        matches!(&err, JournalError::Sync { file, .. } if file == tmp.path()),
        "{err}"
    );
    assert_poisoned(&mut j);
}

#[test]
fn a_failed_write_poisons() {
    let tmp = TempDir::new().unwrap();
    let (options, armed) = failing(IoOp::Write);
    let (mut j, _) = FileJournal::open(tmp.path(), options).unwrap();
    j.append(b"buffered").unwrap();
    armed.store(true, Ordering::SeqCst);
    assert!(matches!(j.commit(), Err(JournalError::Io { .. })));
    assert_poisoned(&mut j);
}

#[test]
fn a_failed_fsync_at_open_fails_the_open() {
    let tmp = TempDir::new().unwrap();
    journal_of(tmp.path(), 2);
    let (options, armed) = failing(IoOp::Sync);
    armed.store(true, Ordering::SeqCst);
    let err = FileJournal::open(tmp.path(), options).unwrap_err();
    assert!(matches!(err, JournalError::Sync { .. }), "{err}");
    // The lock went with the failed open.
    let (_, recovered) = reopen(tmp.path()).unwrap();
    assert_eq!(recovered.records, records(0..2));
}

// ---------------------------------------------------------------------------------
// Intact frames that do not belong: each frame carries its LSN and its journal's
// tag, so a complete, self-consistent frame in the wrong place is corruption, even
// at the very end of the last segment (it is not an unfinished write).

/// The bytes of the frame of record `k` of a segment of "record N" records.
fn frame_bytes(path: &Path, k: u64) -> Vec<u8> {
    let bytes = fs::read(path).unwrap();
    bytes[frame_start(k) as usize..frame_start(k + 1) as usize].to_vec()
}

/// Asserts Corrupt at `offset` of `file`, for a record in the wrong place, and
/// that nothing was truncated.
fn assert_misplaced(dir: &Path, file: &Path, offset: u64, word: &str) {
    let len_before = len(file);
    let reason = assert_corrupt(reopen(dir), file, offset);
    assert!(reason.contains(word), "{reason}");
    assert_eq!(len(file), len_before, "nothing was truncated");
}

#[test]
fn a_stale_record_from_an_older_segment_is_corruption() {
    let tmp = TempDir::new().unwrap();
    segmented(tmp.path());
    // Record 1 (from segment 0), intact, copied after the last record (9).
    let stale = frame_bytes(&tmp.path().join(segment_file_name(Lsn(0))), 1);
    let last = tmp.path().join(segment_file_name(Lsn(9)));
    append_bytes(&last, &stale);
    assert_misplaced(tmp.path(), &last, frame_start(1), "LSN is 1, expected 10");
}

#[test]
fn a_duplicated_last_record_is_corruption_not_a_torn_tail() {
    let tmp = TempDir::new().unwrap();
    let segment = journal_of(tmp.path(), 5);
    let last = frame_bytes(&segment, 4);
    append_bytes(&segment, &last);
    assert_misplaced(tmp.path(), &segment, frame_start(5), "LSN is 4, expected 5");
}

#[test]
fn a_duplicated_record_in_the_middle_is_corruption() {
    // In the last segment and in an earlier one.
    let tmp = TempDir::new().unwrap();
    let segment = journal_of(tmp.path(), 5);
    let mut bytes = fs::read(&segment).unwrap();
    let dup = frame_bytes(&segment, 2);
    let at = frame_start(3) as usize;
    bytes.splice(at..at, dup);
    fs::write(&segment, &bytes).unwrap();
    assert_misplaced(tmp.path(), &segment, frame_start(3), "LSN is 2, expected 3");

    let tmp = TempDir::new().unwrap();
    segmented(tmp.path());
    let segment = tmp.path().join(segment_file_name(Lsn(3)));
    let mut bytes = fs::read(&segment).unwrap();
    let dup = frame_bytes(&segment, 0);
    let at = frame_start(1) as usize;
    bytes.splice(at..at, dup);
    fs::write(&segment, &bytes).unwrap();
    assert_misplaced(tmp.path(), &segment, frame_start(1), "LSN is 3, expected 4");
}

#[test]
fn a_record_of_another_journal_is_corruption() {
    // Their record 5 has the LSN ours would have: only the tag tells.
    let ours = TempDir::new().unwrap();
    let segment = journal_of(ours.path(), 5);
    let theirs = TempDir::new().unwrap();
    let their_segment = journal_of(theirs.path(), 6);
    append_bytes(&segment, &frame_bytes(&their_segment, 5));
    assert_misplaced(ours.path(), &segment, frame_start(5), "another journal");
}
