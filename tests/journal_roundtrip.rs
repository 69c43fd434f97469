//! Journal round trips: records and LSNs survive a reopen, LSNs continue, segments
//! roll over and are released whole, each sync policy syncs when it says.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chronoflow::journal::{
    FRAME_HEADER_LEN, FileJournal, HEAD_FILE, HEADER_LEN, IoOp, Journal, JournalError, JournalExt,
    JournalOptions, Lsn, Recovered, SyncPolicy, segment_file_name,
};
use serde::{Deserialize, Serialize};
use tempfile::TempDir;

fn open(dir: &Path, options: JournalOptions) -> (FileJournal, Recovered) {
    FileJournal::open(dir, options).unwrap()
}

/// The segment files in `dir`, by name, sorted.
fn segment_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".cfj"))
        .collect();
    names.sort();
    names
}

fn names(firsts: &[u64]) -> Vec<String> {
    firsts.iter().map(|&f| segment_file_name(Lsn(f))).collect()
}

/// "record N" is 8 bytes: segments of this size hold three of them.
const THREE_PER_SEGMENT: u64 = HEADER_LEN + 3 * (FRAME_HEADER_LEN + 8);

fn numbered(range: std::ops::Range<u64>) -> Vec<(Lsn, Vec<u8>)> {
    range
        .map(|i| (Lsn(i), format!("record {i}").into_bytes()))
        .collect()
}

#[test]
fn records_come_back_with_their_lsns() {
    let tmp = TempDir::new().unwrap();
    let records: Vec<Vec<u8>> = vec![
        b"first".to_vec(),
        Vec::new(), // an empty record is a record
        vec![0u8; 1000],
        (0..=255).collect(),
    ];
    let (mut j, recovered) = open(tmp.path(), JournalOptions::default());
    assert_eq!(recovered.records, vec![]);
    assert_eq!(recovered.truncated, None);
    assert_eq!(j.next_lsn(), Lsn(0));
    for (i, r) in records.iter().enumerate() {
        assert_eq!(j.append(r).unwrap(), Lsn(i as u64));
    }
    j.commit().unwrap();
    drop(j);

    let (j, recovered) = open(tmp.path(), JournalOptions::default());
    let expected: Vec<_> = records
        .into_iter()
        .enumerate()
        .map(|(i, r)| (Lsn(i as u64), r))
        .collect();
    assert_eq!(recovered.records, expected);
    assert_eq!(recovered.truncated, None);
    assert_eq!(j.next_lsn(), Lsn(4));
    assert_eq!(j.first_lsn(), Lsn(0));
}

#[test]
fn lsns_continue_after_reopen() {
    let tmp = TempDir::new().unwrap();
    for round in 0..3u64 {
        let (mut j, recovered) = open(tmp.path(), JournalOptions::default());
        assert_eq!(recovered.records, numbered(0..round * 2));
        assert_eq!(j.next_lsn(), Lsn(round * 2));
        for i in round * 2..round * 2 + 2 {
            let lsn = j.append(format!("record {i}").as_bytes()).unwrap();
            assert_eq!(lsn, Lsn(i));
        }
        j.commit().unwrap();
    }
}

#[test]
fn an_empty_journal_reopens_empty() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("not/yet/there");
    drop(open(&dir, JournalOptions::default()));
    assert_eq!(segment_names(&dir), names(&[0]));
    assert!(dir.join(HEAD_FILE).is_file());
    let (j, recovered) = open(&dir, JournalOptions::default());
    assert!(recovered.records.is_empty());
    assert_eq!(j.next_lsn(), Lsn(0));
}

#[test]
fn segments_roll_over_at_the_segment_size() {
    let tmp = TempDir::new().unwrap();
    // Three records fill a segment; the fourth starts a new one.
    let options = JournalOptions::default().segment_size(THREE_PER_SEGMENT + 2);
    let (mut j, _) = open(tmp.path(), options.clone());
    for i in 0..10 {
        j.append(format!("record {i}").as_bytes()).unwrap();
    }
    j.commit().unwrap();
    assert_eq!(segment_names(tmp.path()), names(&[0, 3, 6, 9]));
    let sizes: Vec<u64> = j
        .segment_paths()
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .collect();
    let full = THREE_PER_SEGMENT;
    assert_eq!(
        sizes,
        vec![full, full, full, HEADER_LEN + FRAME_HEADER_LEN + 8]
    );
    drop(j);

    let (mut j, recovered) = open(tmp.path(), options.clone());
    assert_eq!(recovered.records, numbered(0..10));
    // Appending continues in the last segment, then rolls over again.
    for i in 10..13 {
        j.append(format!("record {i}").as_bytes()).unwrap();
    }
    j.commit().unwrap();
    drop(j);
    assert_eq!(segment_names(tmp.path()), names(&[0, 3, 6, 9, 12]));
    let (_, recovered) = open(tmp.path(), options);
    assert_eq!(recovered.records, numbered(0..13));
}

#[test]
fn a_record_larger_than_a_segment_gets_its_own() {
    let tmp = TempDir::new().unwrap();
    let options = JournalOptions::default().segment_size(64);
    let (mut j, _) = open(tmp.path(), options.clone());
    j.append(b"small").unwrap();
    j.append(&[7u8; 500]).unwrap();
    j.append(b"small again").unwrap();
    j.commit().unwrap();
    drop(j);
    assert_eq!(segment_names(tmp.path()), names(&[0, 1, 2]));
    let (_, recovered) = open(tmp.path(), options);
    assert_eq!(recovered.records[1], (Lsn(1), vec![7u8; 500]));
    assert_eq!(recovered.records.len(), 3);
}

#[test]
fn release_deletes_whole_old_segments_only() {
    let tmp = TempDir::new().unwrap();
    let options = JournalOptions::default().segment_size(THREE_PER_SEGMENT);
    let (mut j, _) = open(tmp.path(), options.clone());
    for i in 0..10 {
        j.append(format!("record {i}").as_bytes()).unwrap();
    }
    j.commit().unwrap();
    assert_eq!(segment_names(tmp.path()), names(&[0, 3, 6, 9]));

    // Segment 0 holds 0, 1, 2: kept while 2 is needed, deleted once it is not.
    j.release_before(Lsn(2)).unwrap();
    assert_eq!(segment_names(tmp.path()), names(&[0, 3, 6, 9]));
    j.release_before(Lsn(3)).unwrap();
    assert_eq!(segment_names(tmp.path()), names(&[3, 6, 9]));
    // Segment 3 holds 3, 4, 5: 5 is still needed.
    j.release_before(Lsn(5)).unwrap();
    assert_eq!(segment_names(tmp.path()), names(&[3, 6, 9]));
    assert_eq!(j.first_lsn(), Lsn(3));

    // Everything released: the segment being appended to stays.
    j.release_before(Lsn(u64::MAX)).unwrap();
    assert_eq!(segment_names(tmp.path()), names(&[9]));
    assert_eq!(j.first_lsn(), Lsn(9));
    assert_eq!(j.append(b"record 10").unwrap(), Lsn(10));
    j.commit().unwrap();
    drop(j);

    // LSNs go on from where they were, not from 0.
    let (mut j, recovered) = open(tmp.path(), options.clone());
    assert_eq!(recovered.records, numbered(9..11));
    assert_eq!(j.next_lsn(), Lsn(11));
    j.release_before(Lsn(11)).unwrap();
    assert_eq!(
        segment_names(tmp.path()),
        names(&[9]),
        "never the active one"
    );
    for i in 11..14 {
        assert_eq!(j.append(format!("record {i}").as_bytes()).unwrap(), Lsn(i));
    }
    j.commit().unwrap();
    drop(j);
    let (_, recovered) = open(tmp.path(), options);
    assert_eq!(recovered.records, numbered(9..14));
}

/// Counts the segment syncs (`fdatasync`) a journal does.
fn counting(policy: SyncPolicy) -> (JournalOptions, Arc<AtomicUsize>) {
    let syncs = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&syncs);
    let options = JournalOptions::default()
        .sync(policy)
        .io_hook(move |op, _path| {
            if op == IoOp::Sync {
                counter.fetch_add(1, Ordering::SeqCst);
            }
            Ok(())
        });
    (options, syncs)
}

#[test]
fn each_sync_policy_syncs_when_it_says() {
    // (policy, syncs for 3 passes of 4 records plus an empty commit)
    for (policy, expected) in [
        (SyncPolicy::EveryRecord, 12),
        (SyncPolicy::EveryCommit, 3),
        (SyncPolicy::Never, 0),
    ] {
        let tmp = TempDir::new().unwrap();
        let (options, syncs) = counting(policy);
        let (mut j, _) = open(tmp.path(), options.clone());
        let after_open = syncs.load(Ordering::SeqCst);
        for pass in 0..3 {
            for i in 0..4 {
                j.append(format!("pass {pass} record {i}").as_bytes())
                    .unwrap();
            }
            j.commit().unwrap();
        }
        j.commit().unwrap(); // nothing new: no sync
        assert_eq!(
            syncs.load(Ordering::SeqCst) - after_open,
            expected,
            "{policy:?}"
        );
        drop(j);

        let (_, recovered) = open(tmp.path(), options);
        assert_eq!(recovered.records.len(), 12, "{policy:?}");
        assert_eq!(
            recovered.records[5],
            (Lsn(5), b"pass 1 record 1".to_vec()),
            "{policy:?}"
        );
    }
}

#[test]
fn the_old_segment_is_synced_before_a_new_one_whatever_the_policy() {
    let tmp = TempDir::new().unwrap();
    let (options, syncs) = counting(SyncPolicy::Never);
    let (mut j, _) = open(tmp.path(), options.segment_size(THREE_PER_SEGMENT));
    let after_open = syncs.load(Ordering::SeqCst);
    for i in 0..4 {
        j.append(format!("record {i}").as_bytes()).unwrap();
    }
    // The fourth record started segment 3: segment 0 synced, then segment 3's
    // header (as a .tmp file) synced, then the new HEAD (as HEAD.tmp) synced.
    assert_eq!(syncs.load(Ordering::SeqCst) - after_open, 3);
    assert_eq!(segment_names(tmp.path()), names(&[0, 3]));
}

#[test]
fn dropping_writes_uncommitted_records_to_the_os() {
    let tmp = TempDir::new().unwrap();
    let (mut j, _) = open(tmp.path(), JournalOptions::default());
    j.append(b"committed").unwrap();
    j.commit().unwrap();
    j.append(b"not committed").unwrap();
    let path = j.segment_paths()[0].clone();
    let len_before_drop = std::fs::metadata(&path).unwrap().len();
    assert_eq!(
        len_before_drop,
        HEADER_LEN + FRAME_HEADER_LEN + 9,
        "buffered until commit"
    );
    drop(j);
    let (_, recovered) = open(tmp.path(), JournalOptions::default());
    assert_eq!(recovered.records.len(), 2);
}

#[test]
fn typed_records_round_trip() {
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Event {
        Start { pid: u64 },
        Send { from: u64, to: u64, text: String },
        Stop,
    }
    let events = [
        Event::Start { pid: 1 },
        Event::Send {
            from: 1,
            to: 2,
            text: "hello".into(),
        },
        Event::Stop,
    ];
    let tmp = TempDir::new().unwrap();
    let (mut j, _) = open(tmp.path(), JournalOptions::default());
    {
        // Through a trait object, as a scheduler would hold it.
        let dyn_j: &mut dyn Journal = &mut j;
        for e in &events {
            dyn_j.append_value(e).unwrap();
        }
        dyn_j.commit().unwrap();
    }
    drop(j);
    let (_, recovered) = open(tmp.path(), JournalOptions::default());
    let decoded: Vec<(Lsn, Event)> = recovered.decode().unwrap();
    let expected: Vec<(Lsn, Event)> = events
        .into_iter()
        .enumerate()
        .map(|(i, e)| (Lsn(i as u64), e))
        .collect();
    assert_eq!(decoded, expected);

    // A record that is not a `T` is a typed error, not a panic.
    let err = chronoflow::journal::decode::<Event>(Lsn(7), &[200]).unwrap_err();
    assert!(
        matches!(err, JournalError::Decode { lsn: Lsn(7), .. }),
        "{err}"
    );
}

#[test]
fn a_directory_has_one_journal_at_a_time() {
    let tmp = TempDir::new().unwrap();
    let (j, _) = open(tmp.path(), JournalOptions::default());
    let err = FileJournal::open(tmp.path(), JournalOptions::default()).unwrap_err();
    assert!(
        matches!(&err, JournalError::Locked { dir } if dir == tmp.path()),
        "{err}"
    );
    drop(j);
    drop(open(tmp.path(), JournalOptions::default()));
}

#[test]
fn leftover_temporary_segments_are_deleted_and_other_files_ignored() {
    let tmp = TempDir::new().unwrap();
    let (mut j, _) = open(tmp.path(), JournalOptions::default());
    j.append(b"kept").unwrap();
    j.commit().unwrap();
    drop(j);
    let tmp_segment: PathBuf = tmp
        .path()
        .join(format!("{}.tmp", segment_file_name(Lsn(1))));
    std::fs::write(&tmp_segment, b"CHRFLOW").unwrap(); // a creation cut short
    std::fs::write(tmp.path().join("notes.txt"), b"not a segment").unwrap();
    let (j, recovered) = open(tmp.path(), JournalOptions::default());
    assert_eq!(recovered.records, vec![(Lsn(0), b"kept".to_vec())]);
    assert!(!tmp_segment.exists());
    assert!(tmp.path().join("notes.txt").exists());
    assert_eq!(j.next_lsn(), Lsn(1));
}
