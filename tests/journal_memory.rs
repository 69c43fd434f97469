//! Recovery's memory does not grow with the journal: the streaming reader holds one
//! record and its read buffer, never a whole segment. Measured with a counting
//! global allocator; this binary has one test, so that nothing else allocates
//! meanwhile.

use chronoflow::journal::{FileJournal, Journal, JournalOptions, Lsn, READ_BUFFER_LEN, SyncPolicy};
use tempfile::TempDir;

#[path = "support/counting.rs"]
mod counting;
use counting::peak_during;

const RECORDS: u64 = 200_000;

fn record(i: u64) -> Vec<u8> {
    format!("record number {i:>10}").into_bytes()
}

#[test]
fn streaming_recovery_holds_one_record_not_the_journal() {
    let tmp = TempDir::new().unwrap();
    {
        let options = JournalOptions::default().sync(SyncPolicy::Never);
        let (mut j, _) = FileJournal::open(tmp.path(), options).unwrap();
        for i in 0..RECORDS {
            j.append(&record(i)).unwrap();
        }
        j.commit().unwrap();
    }
    let journal_bytes: u64 = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(journal_bytes > 8 << 20, "{journal_bytes}");

    // Streaming: every record read and checked, one at a time.
    let ((count, next), streaming) = peak_during(|| {
        let mut reader = FileJournal::read(tmp.path(), JournalOptions::default()).unwrap();
        let mut count = 0u64;
        for entry in &mut reader {
            let entry = entry.unwrap();
            assert_eq!(entry.lsn, Lsn(count));
            assert_eq!(entry.bytes, record(count));
            count += 1;
        }
        let (j, truncated) = reader.finish().unwrap();
        assert_eq!(truncated, None);
        (count, j.next_lsn())
    });
    assert_eq!((count, next), (RECORDS, Lsn(RECORDS)));
    // The read buffer, one record (and the checks' copy of it), paths, and the
    // journal's own state at finish: a few read buffers' worth at most.
    let bound = 4 * READ_BUFFER_LEN;
    eprintln!(
        "journal of {journal_bytes} bytes: streaming recovery held at most {streaming} bytes"
    );
    assert!(
        streaming < bound,
        "streaming recovery held {streaming} bytes at once (bound {bound}) for a journal of {journal_bytes} bytes"
    );

    // The measure is honest: `open`, which hands back every record at once, is
    // seen to hold them all.
    let (_, all_at_once) =
        peak_during(|| FileJournal::open(tmp.path(), JournalOptions::default()).unwrap());
    assert!(
        all_at_once as u64 > RECORDS * record(0).len() as u64,
        "open held {all_at_once} bytes"
    );
}
