//! Journal properties over random records and segment sizes: records round-trip,
//! a last segment cut at any byte recovers a prefix, a flipped byte anywhere never
//! yields altered records, garbage after the last record is cut off.

use std::fs;
use std::path::{Path, PathBuf};

use chronoflow::journal::{
    FRAME_HEADER_LEN, FileJournal, HEADER_LEN, Journal, JournalError, JournalOptions, Lsn,
    SyncPolicy,
};
use proptest::prelude::*;
use tempfile::TempDir;

fn options(segment_size: u64) -> JournalOptions {
    JournalOptions::default()
        .segment_size(segment_size)
        .sync(SyncPolicy::Never)
}

/// Writes `records`, committing every `commit_every`; returns the segment paths.
fn write(dir: &Path, records: &[Vec<u8>], segment_size: u64, commit_every: usize) -> Vec<PathBuf> {
    let (mut j, _) = FileJournal::open(dir, options(segment_size)).unwrap();
    for (i, r) in records.iter().enumerate() {
        assert_eq!(j.append(r).unwrap(), Lsn(i as u64));
        if (i + 1) % commit_every == 0 {
            j.commit().unwrap();
        }
    }
    j.commit().unwrap();
    j.segment_paths()
}

fn with_lsns(records: &[Vec<u8>]) -> Vec<(Lsn, Vec<u8>)> {
    records
        .iter()
        .enumerate()
        .map(|(i, r)| (Lsn(i as u64), r.clone()))
        .collect()
}

fn records_strategy() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..24)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn records_round_trip(
        records in records_strategy(),
        segment_size in 16u64..300,
        commit_every in 1usize..6,
    ) {
        let tmp = TempDir::new().unwrap();
        write(tmp.path(), &records, segment_size, commit_every);
        let (j, recovered) = FileJournal::open(tmp.path(), options(segment_size)).unwrap();
        prop_assert_eq!(recovered.records, with_lsns(&records));
        prop_assert_eq!(recovered.truncated, None);
        prop_assert_eq!(j.next_lsn(), Lsn(records.len() as u64));
    }

    #[test]
    fn a_last_segment_cut_anywhere_recovers_a_prefix(
        records in records_strategy(),
        segment_size in 16u64..300,
        cut_fraction in 0.0f64..=1.0,
    ) {
        let tmp = TempDir::new().unwrap();
        let paths = write(tmp.path(), &records, segment_size, 3);
        let last = paths.last().unwrap();
        let bytes = fs::read(last).unwrap();
        let cut = ((bytes.len() as f64) * cut_fraction) as usize;
        fs::write(last, &bytes[..cut]).unwrap();

        let result = FileJournal::open(tmp.path(), options(segment_size));
        if cut < HEADER_LEN as usize {
            let is_corrupt = matches!(result, Err(JournalError::Corrupt { offset: 0, .. }));
            prop_assert!(is_corrupt, "a cut header is corruption");
            return Ok(());
        }
        // The frames of the last segment, and how many end within the cut.
        let mut ends = Vec::new();
        let mut pos = HEADER_LEN as usize;
        while pos < bytes.len() {
            let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
            pos += FRAME_HEADER_LEN as usize + len;
            ends.push(pos);
        }
        let kept_in_last = ends.iter().filter(|&&end| end <= cut).count();
        let boundary = ends.iter().rev().find(|&&end| end <= cut).copied()
            .unwrap_or(HEADER_LEN as usize);
        let survivors = records.len() - ends.len() + kept_in_last;

        let (mut j, recovered) = result.unwrap();
        prop_assert_eq!(&recovered.records, &with_lsns(&records[..survivors]));
        match recovered.truncated {
            None => prop_assert_eq!(cut, boundary),
            Some(t) => {
                prop_assert_eq!(&t.file, last);
                prop_assert_eq!(t.offset, boundary as u64);
                prop_assert_eq!(t.bytes, (cut - boundary) as u64);
            }
        }
        // Appending goes on after the prefix, and survives a reopen.
        prop_assert_eq!(j.append(b"after").unwrap(), Lsn(survivors as u64));
        j.commit().unwrap();
        drop(j);
        let (_, recovered) = FileJournal::open(tmp.path(), options(segment_size)).unwrap();
        let mut expected = with_lsns(&records[..survivors]);
        expected.push((Lsn(survivors as u64), b"after".to_vec()));
        prop_assert_eq!(recovered.records, expected);
        prop_assert_eq!(recovered.truncated, None);
    }

    #[test]
    fn a_flipped_byte_never_yields_altered_records(
        records in records_strategy(),
        segment_size in 16u64..300,
        which in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        mask in 1u8..=255,
    ) {
        let tmp = TempDir::new().unwrap();
        let paths = write(tmp.path(), &records, segment_size, 2);
        let path = which.get(&paths);
        let mut bytes = fs::read(path).unwrap();
        let at = at.index(bytes.len());
        bytes[at] ^= mask;
        fs::write(path, &bytes).unwrap();

        match FileJournal::open(tmp.path(), options(segment_size)) {
            // Refused, naming the damaged file, at or before the damage.
            Err(JournalError::Corrupt { file, offset, .. }) => {
                prop_assert_eq!(&file, path);
                prop_assert!(offset <= at as u64);
            }
            // A flip in a header's version field.
            Err(JournalError::UnsupportedVersion { file, .. }) => {
                prop_assert_eq!(&file, path);
                prop_assert!((8..10).contains(&at));
            }
            Err(other) => prop_assert!(false, "unexpected error {}", other),
            // Or cut as a torn tail (damage in the last record's payload): a strict
            // prefix, reported.
            Ok((_, recovered)) => {
                prop_assert!(recovered.truncated.is_some());
                prop_assert!(recovered.records.len() < records.len());
                let n = recovered.records.len();
                prop_assert_eq!(recovered.records, with_lsns(&records[..n]));
            }
        }
    }

    #[test]
    fn garbage_after_the_last_record_is_cut_off(
        records in records_strategy(),
        segment_size in 16u64..300,
        garbage in prop::collection::vec(any::<u8>(), 1..200),
    ) {
        let tmp = TempDir::new().unwrap();
        let paths = write(tmp.path(), &records, segment_size, 4);
        let last = paths.last().unwrap();
        let mut bytes = fs::read(last).unwrap();
        let good = bytes.len() as u64;
        bytes.extend_from_slice(&garbage);
        fs::write(last, &bytes).unwrap();

        let (_, recovered) = FileJournal::open(tmp.path(), options(segment_size)).unwrap();
        prop_assert_eq!(recovered.records, with_lsns(&records));
        let t = recovered.truncated.unwrap();
        prop_assert_eq!((t.offset, t.bytes), (good, garbage.len() as u64));
    }
}
