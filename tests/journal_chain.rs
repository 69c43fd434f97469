//! The chain of segments: `HEAD` names the oldest and the newest segment, each
//! segment names its predecessor, so that a missing segment (at either end, in
//! the middle, or all of them), a missing `HEAD`, a segment of another journal
//! and a broken link are refused at open; and a crash at any step of creating a
//! journal, rolling over or releasing reopens without error or loss.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chronoflow::journal::{
    FRAME_HEADER_LEN, FileJournal, HEAD_FILE, HEADER_LEN, IoOp, Journal, JournalError,
    JournalOptions, Lsn, Recovered, SyncPolicy, segment_file_name,
};
use tempfile::TempDir;

/// "record 0" .. "record 9": 8-byte payloads.
fn record(i: u64) -> Vec<u8> {
    format!("record {i}").into_bytes()
}

fn records(range: std::ops::Range<u64>) -> Vec<(Lsn, Vec<u8>)> {
    range.map(|i| (Lsn(i), record(i))).collect()
}

/// Segments of this size hold three records.
const THREE_PER_SEGMENT: u64 = HEADER_LEN + 3 * (FRAME_HEADER_LEN + 8);

fn options() -> JournalOptions {
    JournalOptions::default().segment_size(THREE_PER_SEGMENT)
}

/// Ten committed records in segments 0, 3, 6, 9.
fn segmented(dir: &Path) {
    let (mut j, _) = FileJournal::open(dir, options()).unwrap();
    for i in 0..10 {
        j.append(&record(i)).unwrap();
    }
    j.commit().unwrap();
}

fn segment(dir: &Path, first: u64) -> PathBuf {
    dir.join(segment_file_name(Lsn(first)))
}

fn reopen(dir: &Path) -> Result<(FileJournal, Recovered), JournalError> {
    FileJournal::open(dir, options())
}

/// The segment files in `dir`, by first LSN.
fn segment_firsts(dir: &Path) -> Vec<u64> {
    let mut firsts: Vec<u64> = fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".cfj")?.parse().ok()
        })
        .collect();
    firsts.sort();
    firsts
}

/// Asserts that opening `dir` fails with `MissingSegment` for `first`.
fn assert_missing(dir: &Path, first: u64) {
    match reopen(dir) {
        Err(JournalError::MissingSegment {
            dir: d,
            first: f,
            reason,
        }) => {
            assert_eq!((d.as_path(), f), (dir, Lsn(first)), "{reason}");
            let shown = JournalError::MissingSegment {
                dir: d,
                first: f,
                reason,
            }
            .to_string();
            assert!(shown.contains(&segment_file_name(Lsn(first))), "{shown}");
        }
        Err(other) => panic!("expected MissingSegment {first}, got {other}"),
        Ok((_, recovered)) => panic!(
            "expected MissingSegment {first}, recovered {} records",
            recovered.records.len()
        ),
    }
}

#[test]
fn a_missing_oldest_segment_is_refused() {
    let tmp = TempDir::new().unwrap();
    segmented(tmp.path());
    fs::remove_file(segment(tmp.path(), 0)).unwrap();
    assert_missing(tmp.path(), 0);
    // Refused, not repaired: nothing was touched.
    assert_eq!(segment_firsts(tmp.path()), [3, 6, 9]);
}

#[test]
fn a_missing_newest_segment_is_refused() {
    let tmp = TempDir::new().unwrap();
    segmented(tmp.path());
    fs::remove_file(segment(tmp.path(), 9)).unwrap();
    assert_missing(tmp.path(), 9);
}

#[test]
fn a_missing_middle_segment_is_refused() {
    for gone in [3, 6] {
        let tmp = TempDir::new().unwrap();
        segmented(tmp.path());
        fs::remove_file(segment(tmp.path(), gone)).unwrap();
        assert_missing(tmp.path(), gone);
    }
}

#[test]
fn missing_segments_at_both_ends_are_refused() {
    let tmp = TempDir::new().unwrap();
    segmented(tmp.path());
    fs::remove_file(segment(tmp.path(), 0)).unwrap();
    fs::remove_file(segment(tmp.path(), 9)).unwrap();
    assert_missing(tmp.path(), 0);
}

#[test]
fn every_segment_missing_is_refused() {
    let tmp = TempDir::new().unwrap();
    segmented(tmp.path());
    for first in [0, 3, 6, 9] {
        fs::remove_file(segment(tmp.path(), first)).unwrap();
    }
    assert_missing(tmp.path(), 0);
    // Not started again from LSN 0.
    assert_eq!(segment_firsts(tmp.path()), Vec::<u64>::new());
}

#[test]
fn a_missing_head_is_refused() {
    let tmp = TempDir::new().unwrap();
    segmented(tmp.path());
    fs::remove_file(tmp.path().join(HEAD_FILE)).unwrap();
    let err = reopen(tmp.path()).unwrap_err();
    assert!(
        matches!(&err, JournalError::MissingHead { dir } if dir == tmp.path()),
        "{err}"
    );

    // Even with a single segment, once it has a record.
    let tmp = TempDir::new().unwrap();
    let (mut j, _) = reopen(tmp.path()).unwrap();
    j.append(b"one").unwrap();
    j.commit().unwrap();
    drop(j);
    fs::remove_file(tmp.path().join(HEAD_FILE)).unwrap();
    let err = reopen(tmp.path()).unwrap_err();
    assert!(matches!(err, JournalError::MissingHead { .. }), "{err}");
}

#[test]
fn a_damaged_head_is_corruption() {
    let tmp = TempDir::new().unwrap();
    segmented(tmp.path());
    let head = tmp.path().join(HEAD_FILE);
    let mut bytes = fs::read(&head).unwrap();
    bytes[20] ^= 1;
    fs::write(&head, bytes).unwrap();
    let err = reopen(tmp.path()).unwrap_err();
    assert!(
        matches!(&err, JournalError::Corrupt { file, offset: 0, reason } if *file == head && reason.contains("CRC")),
        "{err}"
    );
}

#[test]
fn a_segment_of_another_journal_is_refused() {
    let ours = TempDir::new().unwrap();
    segmented(ours.path());
    let theirs = TempDir::new().unwrap();
    segmented(theirs.path());
    let (our_id, their_id) = {
        let (a, _) = reopen(ours.path()).unwrap();
        let (b, _) = reopen(theirs.path()).unwrap();
        (a.journal_id(), b.journal_id())
    };
    assert_ne!(our_id, their_id, "every journal gets its own id");
    // Their segment 3 is intact, and has the same name and LSNs as ours.
    fs::copy(segment(theirs.path(), 3), segment(ours.path(), 3)).unwrap();
    let err = reopen(ours.path()).unwrap_err();
    match &err {
        JournalError::ForeignSegment {
            file,
            found,
            expected,
        } => {
            assert_eq!(file, &segment(ours.path(), 3));
            assert_eq!((*found, *expected), (their_id, our_id));
        }
        other => panic!("expected ForeignSegment, got {other}"),
    }
}

/// Rewrites the predecessor field of a segment header (and its CRC).
fn set_predecessor(path: &Path, predecessor: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[26..34].copy_from_slice(&predecessor.to_le_bytes());
    let crc = crc32c::crc32c(&bytes[..34]);
    bytes[34..38].copy_from_slice(&crc.to_le_bytes());
    fs::write(path, bytes).unwrap();
}

#[test]
fn a_broken_predecessor_link_is_refused() {
    // Segment 6 says its predecessor is 1 or none, but the segment before it is 3.
    for predecessor in [1, u64::MAX] {
        let tmp = TempDir::new().unwrap();
        segmented(tmp.path());
        let path = segment(tmp.path(), 6);
        set_predecessor(&path, predecessor);
        let err = reopen(tmp.path()).unwrap_err();
        assert!(
            matches!(&err, JournalError::Corrupt { file, offset: 26, reason } if *file == path && reason.contains("predecessor")),
            "{err}"
        );
    }
    // A predecessor between the segment before and this one: that one is missing.
    let tmp = TempDir::new().unwrap();
    segmented(tmp.path());
    set_predecessor(&segment(tmp.path(), 6), 4);
    assert_missing(tmp.path(), 4);
}

#[test]
fn a_segment_after_heads_newest_with_records_is_refused() {
    let tmp = TempDir::new().unwrap();
    segmented(tmp.path());
    // HEAD as it was before segment 9 was created: segment 9 has a record, so it
    // is not the leftover of an interrupted rollover.
    let head_before = {
        let other = TempDir::new().unwrap();
        let options = options().new_journal_id(reopen(tmp.path()).unwrap().0.journal_id());
        let (mut j, _) = FileJournal::open(other.path(), options).unwrap();
        for i in 0..9 {
            j.append(&record(i)).unwrap();
        }
        j.commit().unwrap();
        drop(j);
        fs::read(other.path().join(HEAD_FILE)).unwrap()
    };
    fs::write(tmp.path().join(HEAD_FILE), head_before).unwrap();
    let err = reopen(tmp.path()).unwrap_err();
    let last = segment(tmp.path(), 9);
    assert!(
        matches!(&err, JournalError::Corrupt { file, reason, .. } if *file == last && reason.contains("HEAD's newest")),
        "{err}"
    );
}

#[test]
fn leftovers_of_an_interrupted_release_are_deleted_at_open() {
    let tmp = TempDir::new().unwrap();
    segmented(tmp.path());
    let kept: Vec<(PathBuf, Vec<u8>)> = [0, 3]
        .map(|f| {
            (
                segment(tmp.path(), f),
                fs::read(segment(tmp.path(), f)).unwrap(),
            )
        })
        .into();
    let (mut j, _) = reopen(tmp.path()).unwrap();
    j.release_before(Lsn(6)).unwrap();
    drop(j);
    assert_eq!(segment_firsts(tmp.path()), [6, 9]);
    // As if the deletions had not reached the disk.
    for (path, bytes) in &kept {
        fs::write(path, bytes).unwrap();
    }
    let (j, recovered) = reopen(tmp.path()).unwrap();
    assert_eq!(recovered.records, records(6..10));
    assert_eq!(j.first_lsn(), Lsn(6));
    assert_eq!(segment_firsts(tmp.path()), [6, 9]);
}

// ---------------------------------------------------------------------------------
// Crashes: the I/O hook fails the n-th operation, the journal is dropped (as a
// crash would leave the files) and reopened.

/// Every hooked operation, with its file's name, while `armed`; the `fail_at`-th
/// of them fails.
#[derive(Default)]
struct Crash {
    armed: bool,
    fail_at: usize,
    ops: Vec<(IoOp, String)>,
}

fn crashing(base: JournalOptions, fail_at: usize) -> (JournalOptions, Arc<Mutex<Crash>>) {
    let crash = Arc::new(Mutex::new(Crash {
        fail_at,
        ..Crash::default()
    }));
    let hook = Arc::clone(&crash);
    let options = base.io_hook(move |op, path| {
        let mut c = hook.lock().unwrap();
        if !c.armed {
            return Ok(());
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        c.ops.push((op, name));
        if c.ops.len() - 1 == c.fail_at {
            Err(io::Error::other("injected crash"))
        } else {
            Ok(())
        }
    });
    (options, crash)
}

fn arm(crash: &Mutex<Crash>) {
    crash.lock().unwrap().armed = true;
}

/// The operations done (the failed one included), and whether one failed.
fn ops(crash: &Mutex<Crash>) -> (Vec<(IoOp, String)>, bool) {
    let c = crash.lock().unwrap();
    (c.ops.clone(), c.ops.len() > c.fail_at)
}

fn op(op: IoOp, name: &str) -> (IoOp, String) {
    (op, name.to_string())
}

/// After a crash: reopens `dir` cleanly, checks the records are `expected`
/// (one of them), appends two more, and checks a second reopen has them all.
fn assert_recovers(dir: &Path, expected: &[Vec<(Lsn, Vec<u8>)>], what: &str) {
    let (mut j, recovered) = reopen(dir).unwrap_or_else(|e| panic!("{what}: reopen failed: {e}"));
    assert!(
        expected.contains(&recovered.records),
        "{what}: recovered {:?}",
        recovered.records
    );
    let next = recovered.records.last().map_or(0, |r| r.0.0 + 1);
    assert_eq!(j.next_lsn(), Lsn(next), "{what}");
    for i in next..next + 2 {
        assert_eq!(j.append(&record(i)).unwrap(), Lsn(i), "{what}");
    }
    j.commit().unwrap();
    drop(j);
    let (_, again) = reopen(dir).unwrap_or_else(|e| panic!("{what}: second reopen: {e}"));
    let mut all = recovered.records.clone();
    all.extend(records(next..next + 2));
    assert_eq!(again.records, all, "{what}");
    assert_eq!(again.truncated, None, "{what}");
}

#[test]
fn a_crash_at_any_step_of_creating_a_journal_reopens_empty() {
    let expected_ops = [
        op(IoOp::Write, "00000000000000000000.cfj.tmp"),
        op(IoOp::Sync, "00000000000000000000.cfj.tmp"),
        op(IoOp::Rename, "00000000000000000000.cfj"),
        op(IoOp::SyncDir, ""),
        op(IoOp::Write, "HEAD.tmp"),
        op(IoOp::Sync, "HEAD.tmp"),
        op(IoOp::Rename, "HEAD"),
        op(IoOp::SyncDir, ""),
    ];
    for fail_at in 0..=expected_ops.len() {
        let tmp = TempDir::new().unwrap();
        let (options, crash) = crashing(options(), fail_at);
        arm(&crash);
        let result = FileJournal::open(tmp.path(), options);
        let (done, failed) = ops(&crash);
        let done: Vec<_> = done
            .into_iter()
            .map(|(o, n)| (o, dir_blank(n, tmp.path())))
            .collect();
        assert_eq!(done[..], expected_ops[..done.len()], "step {fail_at}");
        assert_eq!(result.is_err(), failed, "step {fail_at}");
        drop(result);
        assert_recovers(
            tmp.path(),
            &[vec![]],
            &format!("crash at creation step {fail_at}"),
        );
    }
}

/// The directory's own name is shown as "" in the expected operations.
fn dir_blank(name: String, dir: &Path) -> String {
    if Some(name.as_str()) == dir.file_name().and_then(|n| n.to_str()) {
        String::new()
    } else {
        name
    }
}

#[test]
fn a_crash_at_any_step_of_a_rollover_loses_no_committed_record() {
    // Under Never the old segment's sync is part of the rollover; under
    // EveryCommit it was synced at the commit already.
    for policy in [SyncPolicy::Never, SyncPolicy::EveryCommit] {
        let mut expected_ops = vec![
            op(IoOp::Write, "00000000000000000003.cfj.tmp"),
            op(IoOp::Sync, "00000000000000000003.cfj.tmp"),
            op(IoOp::Rename, "00000000000000000003.cfj"),
            op(IoOp::SyncDir, ""),
            op(IoOp::Write, "HEAD.tmp"),
            op(IoOp::Sync, "HEAD.tmp"),
            op(IoOp::Rename, "HEAD"),
            op(IoOp::SyncDir, ""),
            // The commit of record 3, after the rollover.
            op(IoOp::Write, "00000000000000000003.cfj"),
        ];
        if policy == SyncPolicy::Never {
            expected_ops.insert(0, op(IoOp::Sync, "00000000000000000000.cfj"));
        } else {
            expected_ops.push(op(IoOp::Sync, "00000000000000000003.cfj"));
        }
        for fail_at in 0..=expected_ops.len() {
            let what = format!("{policy:?}, crash at rollover step {fail_at}");
            let tmp = TempDir::new().unwrap();
            let (options, crash) = crashing(options().sync(policy), fail_at);
            let (mut j, _) = FileJournal::open(tmp.path(), options).unwrap();
            for i in 0..3 {
                j.append(&record(i)).unwrap();
            }
            j.commit().unwrap();
            arm(&crash);
            // Record 3 does not fit: a new segment.
            let result = j.append(&record(3)).and_then(|_| j.commit());
            let (done, failed) = ops(&crash);
            let done: Vec<_> = done
                .into_iter()
                .map(|(o, n)| (o, dir_blank(n, tmp.path())))
                .collect();
            assert_eq!(done[..], expected_ops[..done.len()], "{what}");
            assert_eq!(result.is_err(), failed, "{what}");
            drop(j);
            // Records 0..3 were committed; record 3 was if its commit returned (and
            // may have reached the file even if it failed).
            let expected = if failed {
                vec![records(0..3), records(0..4)]
            } else {
                vec![records(0..4)]
            };
            assert_recovers(tmp.path(), &expected, &what);
        }
    }
}

#[test]
fn a_crash_at_any_step_of_a_release_loses_no_needed_record() {
    let expected_ops = [
        op(IoOp::Write, "HEAD.tmp"),
        op(IoOp::Sync, "HEAD.tmp"),
        op(IoOp::Rename, "HEAD"),
        op(IoOp::SyncDir, ""),
        op(IoOp::Remove, "00000000000000000000.cfj"),
        op(IoOp::Remove, "00000000000000000003.cfj"),
        op(IoOp::Remove, "00000000000000000006.cfj"),
        op(IoOp::SyncDir, ""),
    ];
    for fail_at in 0..=expected_ops.len() {
        let what = format!("crash at release step {fail_at}");
        let tmp = TempDir::new().unwrap();
        let (options, crash) = crashing(options(), fail_at);
        let (mut j, _) = FileJournal::open(tmp.path(), options).unwrap();
        for i in 0..10 {
            j.append(&record(i)).unwrap();
        }
        j.commit().unwrap();
        arm(&crash);
        let result = j.release_before(Lsn(9));
        let (done, failed) = ops(&crash);
        let done: Vec<_> = done
            .into_iter()
            .map(|(o, n)| (o, dir_blank(n, tmp.path())))
            .collect();
        assert_eq!(done[..], expected_ops[..done.len()], "{what}");
        assert_eq!(result.is_err(), failed, "{what}");
        drop(j);
        // Released or not, whole: records 9 on are there.
        assert_recovers(tmp.path(), &[records(0..10), records(9..10)], &what);
        // Segments older than HEAD's oldest went at the reopen.
        let firsts = segment_firsts(tmp.path());
        assert!(
            firsts.starts_with(&[0, 3, 6, 9]) || firsts.starts_with(&[9]),
            "{what}: {firsts:?}"
        );
    }
}
