//! The streaming reader: records come with their file and frame offset, the same
//! as `FileJournal::open` hands back; reading changes nothing until `finish`,
//! which does the repairs; an error ends the stream and is returned by `finish`.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chronoflow::journal::{
    Entry, FRAME_HEADER_LEN, FileJournal, HEAD_FILE, HEADER_LEN, IoOp, Journal, JournalError,
    JournalOptions, Lsn, RecordPosition, TruncatedTail, segment_file_name,
};
use tempfile::TempDir;

fn record(i: u64) -> Vec<u8> {
    format!("record {i}").into_bytes()
}

const FRAME: u64 = FRAME_HEADER_LEN + 8;

fn options() -> JournalOptions {
    JournalOptions::default().segment_size(HEADER_LEN + 3 * FRAME)
}

/// Ten committed records in segments 0, 3, 6, 9.
fn segmented(dir: &Path) {
    let (mut j, _) = FileJournal::open(dir, options()).unwrap();
    for i in 0..10 {
        j.append(&record(i)).unwrap();
    }
    j.commit().unwrap();
}

/// Every file of `dir` but LOCK, with its bytes.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name() != "LOCK")
        .map(|e| {
            (
                e.file_name().into_string().unwrap(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn each_record_comes_with_its_file_and_frame_offset() {
    let tmp = TempDir::new().unwrap();
    segmented(tmp.path());
    let reader = FileJournal::read(tmp.path(), options()).unwrap();
    let entries: Vec<Entry> = reader.map(Result::unwrap).collect();
    assert_eq!(entries.len(), 10);
    for (i, e) in entries.iter().enumerate() {
        let i = i as u64;
        let first = i / 3 * 3;
        assert_eq!(e.lsn, Lsn(i));
        assert_eq!(e.bytes, record(i));
        assert_eq!(&*e.file, tmp.path().join(segment_file_name(Lsn(first))));
        assert_eq!(e.offset, HEADER_LEN + (i - first) * FRAME);
        // The frame really is there: its length, then its LSN.
        let bytes = fs::read(&e.file).unwrap();
        let at = e.offset as usize;
        assert_eq!(bytes[at..at + 4], 8u32.to_le_bytes());
        assert_eq!(bytes[at + 4..at + 12], i.to_le_bytes());
    }
    let position = entries[4].position();
    assert_eq!(
        position.to_string(),
        format!(
            "{} byte {}",
            tmp.path().join(segment_file_name(Lsn(3))).display(),
            HEADER_LEN + FRAME
        )
    );

    // `open` hands back the same records and positions.
    let (_, recovered) = FileJournal::open(tmp.path(), options()).unwrap();
    let records: Vec<(Lsn, Vec<u8>)> = entries.iter().map(|e| (e.lsn, e.bytes.clone())).collect();
    let positions: Vec<RecordPosition> = entries.iter().map(Entry::position).collect();
    assert_eq!(recovered.records, records);
    assert_eq!(recovered.positions, positions);
}

#[test]
fn reading_changes_nothing_until_finish_repairs() {
    let tmp = TempDir::new().unwrap();
    segmented(tmp.path());
    // What a crash can leave: a torn tail, a HEAD.tmp, a segment being created.
    let last = tmp.path().join(segment_file_name(Lsn(9)));
    OpenOptions::new()
        .append(true)
        .open(&last)
        .unwrap()
        .write_all(&[0xab; 7])
        .unwrap();
    fs::write(tmp.path().join("HEAD.tmp"), b"half").unwrap();
    let creating = tmp
        .path()
        .join(format!("{}.tmp", segment_file_name(Lsn(10))));
    fs::write(&creating, b"CHRF").unwrap();
    let before = snapshot(tmp.path());

    let mut reader = FileJournal::read(tmp.path(), options()).unwrap();
    let mut n = 0;
    for entry in &mut reader {
        assert_eq!(entry.unwrap().lsn, Lsn(n));
        n += 1;
    }
    assert_eq!(n, 10);
    assert_eq!(reader.next_lsn(), Lsn(10));
    assert_eq!(snapshot(tmp.path()), before, "reading changed nothing");
    drop(reader);
    assert_eq!(snapshot(tmp.path()), before, "dropping changed nothing");

    let reader = FileJournal::read(tmp.path(), options()).unwrap();
    let (mut j, truncated) = reader.finish().unwrap();
    assert_eq!(
        truncated,
        Some(TruncatedTail {
            file: last.clone(),
            offset: HEADER_LEN + FRAME,
            bytes: 7,
        })
    );
    assert!(!tmp.path().join("HEAD.tmp").exists());
    assert!(!creating.exists());
    assert!(tmp.path().join(HEAD_FILE).exists());
    assert_eq!(j.next_lsn(), Lsn(10));
    assert_eq!(j.append(&record(10)).unwrap(), Lsn(10));
    j.commit().unwrap();
}

#[test]
fn finish_reads_what_is_left() {
    let tmp = TempDir::new().unwrap();
    segmented(tmp.path());
    let mut reader = FileJournal::read(tmp.path(), options()).unwrap();
    assert_eq!(reader.next().unwrap().unwrap().lsn, Lsn(0));
    let (mut j, truncated) = reader.finish().unwrap();
    assert_eq!(truncated, None);
    assert_eq!(j.next_lsn(), Lsn(10));
    assert_eq!(j.append(&record(10)).unwrap(), Lsn(10));
}

#[test]
fn an_error_ends_the_stream_and_finish_returns_it() {
    let tmp = TempDir::new().unwrap();
    segmented(tmp.path());
    // A flipped payload byte of record 4, in segment 3 (not the last).
    let segment = tmp.path().join(segment_file_name(Lsn(3)));
    let mut bytes = fs::read(&segment).unwrap();
    let at = HEADER_LEN + FRAME + FRAME_HEADER_LEN + 1;
    bytes[at as usize] ^= 1;
    fs::write(&segment, bytes).unwrap();

    let mut reader = FileJournal::read(tmp.path(), options()).unwrap();
    let lsns: Vec<u64> = reader
        .by_ref()
        .map_while(Result::ok)
        .map(|e| e.lsn.0)
        .collect();
    assert_eq!(lsns, [0, 1, 2, 3]);
    assert!(reader.next().is_none(), "the stream ended at the error");
    let err = reader.finish().unwrap_err();
    assert!(
        matches!(&err, JournalError::Corrupt { file, offset, .. } if *file == segment && *offset == HEADER_LEN + FRAME),
        "{err}"
    );
}

#[test]
fn what_is_handed_out_is_already_on_disk() {
    // The last segment is synced before the first record is handed out.
    let tmp = TempDir::new().unwrap();
    segmented(tmp.path());
    let syncs = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&syncs);
    let options = options().io_hook(move |op, _| {
        if op == IoOp::Sync {
            counter.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    });
    let mut reader = FileJournal::read(tmp.path(), options).unwrap();
    assert_eq!(syncs.load(Ordering::SeqCst), 1);
    reader.next().unwrap().unwrap();
    drop(reader);
}

#[test]
fn a_new_journal_is_created_at_finish() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("journal");
    let mut reader = FileJournal::read(&dir, JournalOptions::default()).unwrap();
    assert!(reader.next().is_none());
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "only LOCK so far");
    let (j, truncated) = reader.finish().unwrap();
    assert_eq!(truncated, None);
    assert_eq!(j.next_lsn(), Lsn(0));
    assert!(dir.join(HEAD_FILE).exists());
    assert!(dir.join(segment_file_name(Lsn(0))).exists());
}
