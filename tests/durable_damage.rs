//! Every kind of damage to a durable scheduler's journal is refused at open with
//! a typed error, never opened into an older state or fewer processes: missing
//! segments, intact records where they do not belong, records that do not
//! decode (named by file and offset), and types whose serde layout changed.

use std::fs;
use std::path::Path;

use chronoflow::journal::{FileJournal, Journal, JournalError, JournalOptions};
use chronoflow::{Ctx, DurableScheduler, Pid, RecoveryError, Template};
use serde::{Deserialize, Serialize};

#[path = "support/segments.rs"]
mod segments;
use segments::segments;

mod v1 {
    use super::*;

    /// A transfer between two accounts.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct Transfer {
        pub from: Pid,
        pub to: Pid,
    }
}

mod v2 {
    use super::*;

    /// The same, its fields swapped: the bytes of a v1 transfer decode as a v2
    /// one, into the opposite transfer.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct Transfer {
        pub to: Pid,
        pub from: Pid,
    }
}

/// Takes transfers forever; each a transition (so that old segments go).
fn ledger<M>() -> Template<M, M, u64, u64>
where
    M: Clone + Serialize + for<'de> Deserialize<'de> + 'static,
{
    Template::stepping("ledger", |ctx: &mut Ctx<M>, n: u64| {
        let _ = ctx.receive();
        chronoflow::Step::Transition(chronoflow::Transition::to(&ledger::<M>(), n + 1))
    })
}

fn options() -> JournalOptions {
    JournalOptions::default().segment_size(1024)
}

fn open<M>(dir: &Path) -> Result<DurableScheduler<M>, RecoveryError>
where
    M: Clone + Serialize + for<'de> Deserialize<'de> + 'static,
{
    DurableScheduler::builder()
        .register(&ledger::<M>())
        .options(options())
        .open(dir)
        .map(|(s, _)| s)
}

/// A journal with ten ledgers that took `n` transfers each.
fn journal(n: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut sched = open::<v1::Transfer>(dir.path()).unwrap();
    let pids: Vec<Pid> = (0..10)
        .map(|_| sched.spawn(&ledger(), 0).unwrap().pid())
        .collect();
    for _ in 0..n {
        for &pid in &pids {
            let t = v1::Transfer {
                from: pid,
                to: Pid(0),
            };
            sched.send(pid, t).unwrap();
        }
        sched.run_until_idle().unwrap();
    }
    dir
}

#[test]
fn a_missing_oldest_segment_is_refused() {
    let dir = journal(50);
    let segs = segments(dir.path());
    assert!(segs.len() >= 2, "{segs:?}");
    fs::remove_file(&segs[0]).unwrap();
    match open::<v1::Transfer>(dir.path()) {
        Err(RecoveryError::Journal(JournalError::MissingSegment { .. })) => {}
        Err(e) => panic!("expected a missing segment, got {e}"),
        Ok(s) => panic!("opened with {} processes", s.live()),
    }
}

#[test]
fn a_missing_newest_segment_is_refused() {
    let dir = journal(50);
    let segs = segments(dir.path());
    fs::remove_file(segs.last().unwrap()).unwrap();
    assert!(matches!(
        open::<v1::Transfer>(dir.path()),
        Err(RecoveryError::Journal(JournalError::MissingSegment { .. }))
    ));
}

#[test]
fn all_segments_missing_is_refused_not_a_fresh_start() {
    let dir = journal(5);
    for s in segments(dir.path()) {
        fs::remove_file(s).unwrap();
    }
    assert!(matches!(
        open::<v1::Transfer>(dir.path()),
        Err(RecoveryError::Journal(JournalError::MissingSegment { .. }))
    ));
}

#[test]
fn a_duplicated_last_record_is_corruption_not_a_violation() {
    let dir = journal(3);
    // Append a copy of the last frame (a delivery, say) to the last segment.
    let last = segments(dir.path()).pop().unwrap();
    let (journal, recovered) = FileJournal::open(dir.path(), options()).unwrap();
    let at = recovered.positions.last().unwrap().offset as usize;
    drop(journal);
    let mut bytes = fs::read(&last).unwrap();
    let copy = bytes[at..].to_vec();
    bytes.extend_from_slice(&copy);
    fs::write(&last, bytes).unwrap();
    match open::<v1::Transfer>(dir.path()) {
        Err(RecoveryError::Journal(JournalError::Corrupt { file, offset, .. })) => {
            assert_eq!(file, last);
            assert_eq!(
                offset as usize,
                fs::metadata(&last).unwrap().len() as usize - copy.len()
            );
        }
        Err(e) => panic!("expected corruption, got {e}"),
        Ok(_) => panic!("a duplicated record was accepted"),
    }
}

#[test]
fn a_record_that_does_not_decode_is_named_by_file_and_offset() {
    let dir = journal(1);
    let (mut journal, _) = FileJournal::open(dir.path(), options()).unwrap();
    // Intact as a frame, but no record of the durable scheduler's.
    journal.append(&[0xff, 0xff, 0xff]).unwrap();
    journal.commit().unwrap();
    let file = journal.segment_paths().pop().unwrap();
    drop(journal);
    match open::<v1::Transfer>(dir.path()) {
        Err(RecoveryError::Record { at, .. }) => {
            assert_eq!(&*at.file, file.as_path());
            assert!(at.offset > 0);
            let shown = RecoveryError::Record {
                lsn: 0,
                at: at.clone(),
                source: postcard::Error::DeserializeBadEnum,
            }
            .to_string();
            assert!(shown.contains(&format!("byte {}", at.offset)), "{shown}");
        }
        Err(e) => panic!("expected an undecodable record, got {e}"),
        Ok(_) => panic!("opened"),
    }
}

#[test]
fn a_changed_message_layout_is_refused_unless_declared() {
    let dir = journal(50);
    match open::<v2::Transfer>(dir.path()) {
        Err(RecoveryError::LayoutChanged { what, .. }) => assert_eq!(what, "message"),
        Err(e) => panic!("expected a layout change, got {e}"),
        Ok(_) => panic!("the swapped fields were accepted"),
    }
    // The same types open as before: the layouts outlived the released segments.
    assert!(open::<v1::Transfer>(dir.path()).is_ok());
    // Declared, it opens, and the new layout is the journal's from then on.
    let declared = DurableScheduler::<v2::Transfer>::builder()
        .register(&ledger::<v2::Transfer>())
        .options(options())
        .layout_changed("message")
        .open(dir.path());
    let mut sched = declared.map(|(s, _)| s).unwrap();
    sched.run_until_idle().unwrap();
    drop(sched);
    assert!(open::<v2::Transfer>(dir.path()).is_ok());
    assert!(matches!(
        open::<v1::Transfer>(dir.path()),
        Err(RecoveryError::LayoutChanged { .. })
    ));
}

/// A template whose arguments changed layout.
fn counter_v1() -> Template<u64, u64, (u64, String), u64> {
    Template::new("counter", |ctx: &mut Ctx<u64>, (n, _): (u64, String)| {
        ctx.receive() + n
    })
}

fn counter_v2() -> Template<u64, u64, (String, u64), u64> {
    Template::new("counter", |ctx: &mut Ctx<u64>, (_, n): (String, u64)| {
        ctx.receive() + n
    })
}

#[test]
fn changed_arguments_are_refused_by_template() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut sched, _) = DurableScheduler::builder()
            .register(&counter_v1())
            .open(dir.path())
            .unwrap();
        sched.spawn(&counter_v1(), (1, "a".into())).unwrap();
        sched.run_until_idle().unwrap();
    }
    let reopened = DurableScheduler::builder()
        .register(&counter_v2())
        .open(dir.path());
    match reopened {
        Err(RecoveryError::LayoutChanged { what, .. }) => assert_eq!(what, "args of counter"),
        Err(e) => panic!("expected a layout change, got {e}"),
        Ok(_) => panic!("the changed arguments were accepted"),
    }
}

/// A recursive message type whose first variant recurses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum List {
    Cons(u8, Box<List>),
    Nil,
}

#[test]
fn a_recursive_message_type_opens_and_reopens() {
    // Before, tracing its layout recursed until the stack overflowed (an abort).
    let dir = tempfile::tempdir().unwrap();
    let keep = || {
        Template::new("keep", |ctx: &mut Ctx<List>, _: ()| {
            let _ = ctx.receive();
            0u64
        })
    };
    {
        let (mut sched, _) = DurableScheduler::<List>::builder()
            .register(&keep())
            .open(dir.path())
            .unwrap();
        sched.spawn(&keep(), ()).unwrap();
        sched.run_until_idle().unwrap();
    }
    let (mut sched, recovery) = DurableScheduler::<List>::builder()
        .register(&keep())
        .open(dir.path())
        .unwrap();
    assert_eq!(recovery.replayed, [Pid(0)]);
    sched
        .send(Pid(0), List::Cons(1, Box::new(List::Nil)))
        .unwrap();
    sched.run_until_idle().unwrap();
    assert_eq!(sched.result_of::<u64>(Pid(0)), Some(Ok(0)));
}
