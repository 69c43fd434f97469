//! Recovery's memory does not grow with the journal: the streaming reader holds one
//! record and its read buffer, never a whole segment. Measured with a counting
//! global allocator; this binary has one test, so that nothing else allocates
//! meanwhile.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use chronoflow::journal::{FileJournal, Journal, JournalOptions, Lsn, READ_BUFFER_LEN, SyncPolicy};
use tempfile::TempDir;

/// Counts the bytes allocated now, and the most ever allocated at once.
struct Counting;

static NOW: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = NOW.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
        PEAK.fetch_max(now, Ordering::SeqCst);
        // SAFETY: the caller's contract for `alloc` is passed on as it is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        NOW.fetch_sub(layout.size(), Ordering::SeqCst);
        // SAFETY: `ptr` was allocated by `System` with `layout` (see `alloc`).
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The most allocated at once while `f` runs, above what was allocated before.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = NOW.load(Ordering::SeqCst);
    PEAK.store(before, Ordering::SeqCst);
    let out = f();
    (out, PEAK.load(Ordering::SeqCst) - before)
}

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
