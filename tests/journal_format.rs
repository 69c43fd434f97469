//! The journal's on-disk format is pinned by committed fixtures: writing a known
//! sequence of records must give the committed bytes exactly, and the committed
//! files must read back as those records. A test failing here means the format
//! changed: if that is intended, bump `FORMAT_VERSION`, keep reading the old
//! version if needed, and regenerate the fixture deliberately with
//!
//! ```sh
//! CHRONOFLOW_BLESS=1 cargo test --test journal_format
//! ```
//!
//! which rewrites `tests/fixtures/journal/v1/` from what this build writes (the
//! read-back test is skipped meanwhile); then run the tests again without it, and
//! commit the new fixture with the format change.

use std::fs;
use std::path::{Path, PathBuf};

use chronoflow::journal::{
    FileJournal, Journal, JournalExt, JournalOptions, Lsn, SyncPolicy, segment_file_name,
};
use tempfile::TempDir;

/// Segments this small make the fixture hold several of them.
const SEGMENT_SIZE: u64 = 64;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/journal/v1")
}

/// The fixture's records, in order; the typed one is appended with
/// `append_value`.
fn fixture_records() -> Vec<Vec<u8>> {
    vec![
        Vec::new(),
        b"a".to_vec(),
        b"hello, journal".to_vec(),
        postcard::to_allocvec(&(7u32, "typed".to_string(), vec![1u8, 2, 3])).unwrap(),
        vec![0xff; 80], // larger than a segment: one of its own
        vec![0, 1, 2, 3],
        b"the last record".to_vec(),
    ]
}

/// Writes the fixture's records into `dir` the way the fixture was made.
fn write_fixture(dir: &Path) {
    let options = JournalOptions::default()
        .segment_size(SEGMENT_SIZE)
        .sync(SyncPolicy::Never);
    let (mut j, _) = FileJournal::open(dir, options).unwrap();
    for (i, r) in fixture_records().iter().enumerate() {
        let lsn = if i == 3 {
            j.append_value(&(7u32, "typed".to_string(), vec![1u8, 2, 3]))
        } else {
            j.append(r)
        };
        assert_eq!(lsn.unwrap(), Lsn(i as u64));
    }
    j.commit().unwrap();
}

/// Whether the fixture is to be rewritten rather than checked.
fn blessing() -> bool {
    std::env::var_os("CHRONOFLOW_BLESS").is_some_and(|v| v == "1")
}

/// The segment files of `dir`, by name, with their bytes.
fn segments(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.ends_with(".cfj")
                .then(|| (name, fs::read(e.path()).unwrap()))
        })
        .collect();
    files.sort();
    files
}

#[test]
fn writing_gives_the_committed_bytes() {
    let tmp = TempDir::new().unwrap();
    write_fixture(tmp.path());
    let written = segments(tmp.path());

    if blessing() {
        let dir = fixture_dir();
        fs::create_dir_all(&dir).unwrap();
        for (name, _) in segments(&dir) {
            fs::remove_file(dir.join(name)).unwrap();
        }
        for (name, bytes) in &written {
            fs::write(dir.join(name), bytes).unwrap();
        }
        eprintln!("CHRONOFLOW_BLESS=1: rewrote {}", dir.display());
        return;
    }

    let committed = segments(&fixture_dir());
    let names = |files: &[(String, Vec<u8>)]| files.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&written), names(&committed), "segment files differ");
    for ((name, w), (_, c)) in written.iter().zip(&committed) {
        assert_eq!(
            w, c,
            "{name}: the bytes written differ from the committed fixture; \
             if the format change is intended, see this file's docs"
        );
    }
}

#[test]
fn the_committed_fixture_reads_back() {
    if blessing() {
        return; // the fixture is being rewritten
    }
    // Open a copy: opening adds a LOCK file and may truncate.
    let tmp = TempDir::new().unwrap();
    for (name, bytes) in segments(&fixture_dir()) {
        fs::write(tmp.path().join(name), bytes).unwrap();
    }
    let (mut j, recovered) = FileJournal::open(tmp.path(), JournalOptions::default()).unwrap();
    let expected: Vec<(Lsn, Vec<u8>)> = fixture_records()
        .into_iter()
        .enumerate()
        .map(|(i, r)| (Lsn(i as u64), r))
        .collect();
    assert_eq!(recovered.records, expected);
    assert_eq!(recovered.truncated, None);
    let typed: (u32, String, Vec<u8>) =
        chronoflow::journal::decode(Lsn(3), &recovered.records[3].1).unwrap();
    assert_eq!(typed, (7, "typed".to_string(), vec![1, 2, 3]));
    assert_eq!(j.next_lsn(), Lsn(7));
    assert_eq!(j.append(b"one more").unwrap(), Lsn(7));
}

#[test]
fn the_format_is_as_documented() {
    // The first segment, spelled out by hand from the module docs (CRC-32C values
    // computed independently of the crate).
    let tmp = TempDir::new().unwrap();
    write_fixture(tmp.path());
    let first = fs::read(tmp.path().join(segment_file_name(Lsn(0)))).unwrap();
    let mut expected = Vec::new();
    // Header: magic, version 1, first LSN 0.
    expected.extend_from_slice(b"CHRFLOW\0");
    expected.extend_from_slice(&[1, 0]);
    expected.extend_from_slice(&[0; 8]);
    // Record 0, empty: length 0, check of the length, CRC of nothing.
    expected.extend_from_slice(&[0, 0, 0, 0]);
    expected.extend_from_slice(&0x4867_4bc7u32.to_le_bytes());
    expected.extend_from_slice(&[0, 0, 0, 0]);
    // Record 1, "a".
    expected.extend_from_slice(&[1, 0, 0, 0]);
    expected.extend_from_slice(&0x9522_e17fu32.to_le_bytes());
    expected.extend_from_slice(&0xc1d0_4330u32.to_le_bytes());
    expected.extend_from_slice(b"a");
    assert_eq!(first, expected);
}
