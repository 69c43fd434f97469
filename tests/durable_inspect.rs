//! The journal inspector (`durable::inspect`, the `journal` example) reads a
//! durable journal without changing it: its records described and placed, its
//! processes, and the reason it does not open.

use std::fs;

use chronoflow::durable::inspect;
use chronoflow::journal::JournalError;
use chronoflow::{Ctx, DurableScheduler, Pid, RecoveryError, Template};

fn echo() -> Template<u64, u64, (), u64> {
    Template::new("echo", |ctx: &mut Ctx<u64>, _: ()| {
        let x = ctx.receive();
        ctx.durable_effect(move || x + 1)
    })
}

fn journal() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let (mut sched, _) = DurableScheduler::builder()
        .register(&echo())
        .open(dir.path())
        .unwrap();
    sched.spawn(&echo(), ()).unwrap();
    sched.spawn(&echo(), ()).unwrap();
    sched.send(Pid(0), 41).unwrap();
    sched.run_until_idle().unwrap();
    dir
}

#[test]
fn a_journal_that_opens_is_summarized() {
    let dir = journal();
    let summary = inspect::check(dir.path()).unwrap();
    assert_eq!(summary.segments.len(), 1);
    let states: Vec<_> = summary
        .processes
        .iter()
        .map(|p| (p.pid, p.template.as_str(), p.ended))
        .collect();
    assert_eq!(states, [(Pid(0), "echo", true), (Pid(1), "echo", false)]);
    assert!(summary.records > 0);
}

#[test]
fn records_are_described_with_their_process_and_place() {
    let dir = journal();
    let records: Vec<_> = inspect::records(dir.path())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let of_0: Vec<&str> = records
        .iter()
        .filter(|r| r.pid == Some(Pid(0)))
        .map(|r| r.text.as_str())
        .collect();
    assert!(of_0.contains(&"a spawn of <0> (echo)"), "{of_0:?}");
    assert!(of_0.contains(&"an effect with a 1-byte result"), "{of_0:?}");
    // In LSN order, each at its own offset.
    assert!(records.windows(2).all(|w| w[0].lsn < w[1].lsn));
    assert!(records.windows(2).all(|w| w[0].at.offset < w[1].at.offset));
}

#[test]
fn inspecting_changes_nothing_and_names_why_a_journal_does_not_open() {
    let dir = journal();
    let segment = dir.path().join("00000000000000000000.cfj");
    // A torn tail: inspecting does not cut it.
    let mut bytes = fs::read(&segment).unwrap();
    bytes.extend_from_slice(&[1, 2, 3]);
    fs::write(&segment, &bytes).unwrap();
    inspect::check(dir.path()).unwrap();
    assert_eq!(fs::read(&segment).unwrap(), bytes);
    // A missing segment is the reason.
    fs::remove_file(&segment).unwrap();
    assert!(matches!(
        inspect::check(dir.path()),
        Err(RecoveryError::Journal(JournalError::MissingSegment { .. }))
    ));
}

#[test]
fn a_path_without_a_journal_is_refused_not_made_one() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("typo");
    assert!(matches!(
        inspect::check(&missing),
        Err(RecoveryError::Journal(JournalError::MissingHead { .. }))
    ));
    assert!(!missing.exists());
    // An empty directory stays empty.
    assert!(inspect::records(tmp.path()).is_err());
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
}
