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
//! which rewrites `tests/fixtures/journal/v2/` (the segment files and `HEAD`)
//! from what this build writes (the read-back test is skipped meanwhile); then run
//! the tests again without it, and commit the new fixture with the format change.
//!
//! The fixture's journal has a fixed id ([`JournalOptions::new_journal_id`]), so
//! that its bytes are reproducible. `tests/fixtures/journal/v1-refused/` holds a
//! segment of format version 1, which this build refuses.

use std::fs;
use std::path::{Path, PathBuf};

use chronoflow::journal::{
    FileJournal, HEAD_FILE, Journal, JournalError, JournalExt, JournalOptions, Lsn, SyncPolicy,
    segment_file_name,
};
use tempfile::TempDir;

/// Segments this small make the fixture hold several of them.
const SEGMENT_SIZE: u64 = 128;

/// The fixture journal's id.
const FIXTURE_ID: u64 = 0x0123_4567_89ab_cdef;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/journal/v2")
}

/// The fixture's records, in order; the typed one is appended with
/// `append_value`.
fn fixture_records() -> Vec<Vec<u8>> {
    vec![
        Vec::new(),
        b"a".to_vec(),
        b"hello, journal".to_vec(),
        postcard::to_allocvec(&(7u32, "typed".to_string(), vec![1u8, 2, 3])).unwrap(),
        vec![0xff; 80], // with its frame, larger than a segment: one of its own
        vec![0, 1, 2, 3],
        b"the last record".to_vec(),
    ]
}

/// Writes the fixture's records into `dir` the way the fixture was made.
fn write_fixture(dir: &Path) {
    let options = JournalOptions::default()
        .segment_size(SEGMENT_SIZE)
        .sync(SyncPolicy::Never)
        .new_journal_id(FIXTURE_ID);
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

/// The journal files of `dir` (segments and `HEAD`), by name, with their bytes.
fn journal_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            (name.ends_with(".cfj") || name == HEAD_FILE)
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
    let written = journal_files(tmp.path());

    if blessing() {
        let dir = fixture_dir();
        fs::create_dir_all(&dir).unwrap();
        for (name, _) in journal_files(&dir) {
            fs::remove_file(dir.join(name)).unwrap();
        }
        for (name, bytes) in &written {
            fs::write(dir.join(name), bytes).unwrap();
        }
        eprintln!("CHRONOFLOW_BLESS=1: rewrote {}", dir.display());
        return;
    }

    let committed = journal_files(&fixture_dir());
    let names = |files: &[(String, Vec<u8>)]| files.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&written), names(&committed), "journal files differ");
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
    let files = journal_files(&fixture_dir());
    assert!(files.iter().any(|(name, _)| name == HEAD_FILE));
    for (name, bytes) in files {
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
    assert_eq!(j.journal_id(), FIXTURE_ID);
    assert_eq!(j.next_lsn(), Lsn(7));
    assert_eq!(j.append(b"one more").unwrap(), Lsn(7));
}

#[test]
fn the_format_is_as_documented() {
    // The first segment, the second's header and HEAD, spelled out by hand from
    // the module docs (CRC-32C values computed independently of the crate).
    let tmp = TempDir::new().unwrap();
    write_fixture(tmp.path());
    let first = fs::read(tmp.path().join(segment_file_name(Lsn(0)))).unwrap();
    let id = FIXTURE_ID.to_le_bytes();
    let tag = (FIXTURE_ID as u32).to_le_bytes();
    let mut expected = Vec::new();
    // Header: magic, version 2, journal id, first LSN 0, no predecessor, CRC.
    expected.extend_from_slice(b"CHRFLOW\0");
    expected.extend_from_slice(&[2, 0]);
    expected.extend_from_slice(&id);
    expected.extend_from_slice(&[0; 8]);
    expected.extend_from_slice(&[0xff; 8]);
    expected.extend_from_slice(&0x9520_dab0u32.to_le_bytes());
    // Record 0, empty: length 0, LSN 0, tag, header check, CRC of nothing.
    expected.extend_from_slice(&[0, 0, 0, 0]);
    expected.extend_from_slice(&0u64.to_le_bytes());
    expected.extend_from_slice(&tag);
    expected.extend_from_slice(&0x1b64_aec0u32.to_le_bytes());
    expected.extend_from_slice(&[0, 0, 0, 0]);
    // Record 1, "a".
    expected.extend_from_slice(&[1, 0, 0, 0]);
    expected.extend_from_slice(&1u64.to_le_bytes());
    expected.extend_from_slice(&tag);
    expected.extend_from_slice(&0xd819_770eu32.to_le_bytes());
    expected.extend_from_slice(&0xc1d0_4330u32.to_le_bytes());
    expected.extend_from_slice(b"a");
    // Record 2, "hello, journal".
    expected.extend_from_slice(&[14, 0, 0, 0]);
    expected.extend_from_slice(&2u64.to_le_bytes());
    expected.extend_from_slice(&tag);
    expected.extend_from_slice(&0xd792_e861u32.to_le_bytes());
    expected.extend_from_slice(&0xe80f_6a84u32.to_le_bytes());
    expected.extend_from_slice(b"hello, journal");
    assert_eq!(first, expected);

    // The second segment names the first as its predecessor.
    let second = fs::read(tmp.path().join(segment_file_name(Lsn(3)))).unwrap();
    let mut expected = Vec::new();
    expected.extend_from_slice(b"CHRFLOW\0");
    expected.extend_from_slice(&[2, 0]);
    expected.extend_from_slice(&id);
    expected.extend_from_slice(&3u64.to_le_bytes());
    expected.extend_from_slice(&0u64.to_le_bytes());
    expected.extend_from_slice(&0x4297_430eu32.to_le_bytes());
    assert_eq!(second[..38], expected[..]);

    // HEAD: magic, version 2, journal id, oldest 0, newest 5, CRC.
    let head = fs::read(tmp.path().join(HEAD_FILE)).unwrap();
    let mut expected = Vec::new();
    expected.extend_from_slice(b"CHRFHEAD");
    expected.extend_from_slice(&[2, 0]);
    expected.extend_from_slice(&id);
    expected.extend_from_slice(&0u64.to_le_bytes());
    expected.extend_from_slice(&5u64.to_le_bytes());
    expected.extend_from_slice(&0x50f9_d2e0u32.to_le_bytes());
    assert_eq!(head, expected);
}

#[test]
fn a_version_1_segment_is_refused_with_its_version() {
    // A segment written by format version 1, as it was committed then.
    let v1 = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/journal/v1-refused")
        .join(segment_file_name(Lsn(0)));
    let tmp = TempDir::new().unwrap();
    let segment = tmp.path().join(segment_file_name(Lsn(0)));
    fs::copy(&v1, &segment).unwrap();
    let err = FileJournal::open(tmp.path(), JournalOptions::default()).unwrap_err();
    assert!(
        matches!(&err, JournalError::UnsupportedVersion { file, version: 1 } if *file == segment),
        "{err}"
    );
    let shown = err.to_string();
    assert!(shown.contains(&segment.display().to_string()), "{shown}");
    assert!(shown.contains("version 1"), "{shown}");
    // Refused, not repaired: the file is as it was.
    assert_eq!(fs::read(&segment).unwrap(), fs::read(&v1).unwrap());
}
