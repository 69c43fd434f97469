//! The durable scheduler's journal format is pinned by a committed fixture: a
//! fixed run must write exactly these bytes, and the committed journal must rebuild
//! exactly this state. An unintended change of the record encoding fails here.
//!
//! To change the format on purpose, say so in the commit, and
//! regenerate the fixture:
//! `CHRONOFLOW_BLESS=1 cargo test --test durable_format -- --test-threads=1`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chronoflow::journal::{HEAD_FILE, JournalOptions};
use chronoflow::{
    Child, Ctx, DurableScheduler, ManualClock, Pid, Status, Step, Template, Time, Transition, Wait,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Msg {
    Add(u64),
    Note(String),
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/durable/v1")
}

struct Templates {
    counter: Template<Msg, Msg, u64, u64>,
    holder: Template<Msg, Msg, Child<u64>, u64>,
    boss: Template<Msg, Msg, (), u64>,
    quick: Template<Msg, Msg, u64, u64>,
}

fn templates() -> Templates {
    // Adds what it receives until it has seen `n` numbers.
    let counter = Template::new("counter", |ctx: &mut Ctx<Msg>, n: u64| {
        let mut sum = 0;
        let mut seen = 0;
        while seen < n {
            if let Msg::Add(x) = ctx.receive() {
                sum += ctx.durable_effect(|| x * 10);
                seen += 1;
            }
        }
        sum
    });
    // Holds a child across a snapshot, then joins it.
    let holder = Template::stepping("holder", |ctx: &mut Ctx<Msg>, kid: Child<u64>| {
        let note = ctx.select(|m| matches!(m, Msg::Note(_)));
        ctx.sleep(Duration::from_secs(30));
        let own = if let Msg::Note(text) = note {
            text.len() as u64
        } else {
            0
        };
        Step::Done(own + ctx.join(kid).unwrap())
    });
    let boss = {
        let (counter, holder) = (counter.clone(), holder.clone());
        Template::stepping("boss", move |ctx: &mut Ctx<Msg>, _: ()| {
            let kid = ctx.spawn(&counter, 2).unwrap();
            let me = ctx.pid();
            ctx.send_to(me, Msg::Note("hello".into()));
            Step::Transition(Transition::to(&holder, kid))
        })
    };
    let quick = Template::new("quick", |ctx: &mut Ctx<Msg>, x: u64| {
        ctx.durable_effect(|| x + 1)
    });
    Templates {
        counter,
        holder,
        boss,
        quick,
    }
}

fn open(dir: &Path, clock: &ManualClock) -> (DurableScheduler<Msg>, chronoflow::Recovery) {
    let t = templates();
    DurableScheduler::builder()
        .register(&t.counter)
        .register(&t.holder)
        .register(&t.boss)
        .register(&t.quick)
        .clock(clock.clone())
        // A fixed journal id, so that the bytes are reproducible.
        .options(JournalOptions::default().new_journal_id(0x0123_4567_89ab_cdef))
        .open(dir)
        .unwrap()
}

/// The fixed run: a finished process, a boss that snapshotted with a child, a
/// message waiting in an inbox, a timer armed.
fn scenario(dir: &Path) {
    let clock = ManualClock::new(Time(1_700_000_000_000_000_000));
    let (mut sched, _) = open(dir, &clock);
    let t = templates();
    sched.spawn(&t.quick, 41).unwrap();
    let boss = sched.spawn(&t.boss, ()).unwrap();
    sched.run_until_idle().unwrap();
    sched.send(boss.pid(), Msg::Add(1)).unwrap();
    sched.run_until_idle().unwrap();
    sched.send(boss.pid(), Msg::Add(2)).unwrap();
    sched.run_until_idle().unwrap();
}

fn segment_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "cfj") || p.ends_with(HEAD_FILE))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn a_fixed_run_writes_the_committed_bytes() {
    let dir = tempfile::tempdir().unwrap();
    scenario(dir.path());
    let written = segment_files(dir.path());
    if std::env::var_os("CHRONOFLOW_BLESS").is_some() {
        let _ = std::fs::remove_dir_all(fixture());
        std::fs::create_dir_all(fixture()).unwrap();
        for (name, bytes) in &written {
            std::fs::write(fixture().join(name), bytes).unwrap();
        }
    }
    assert!(!written.is_empty());
    assert_eq!(
        written,
        segment_files(&fixture()),
        "the journal format changed (see this file's docs)"
    );
}

#[test]
fn the_committed_journal_rebuilds_its_processes() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in segment_files(&fixture()) {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    let clock = ManualClock::new(Time(1_700_000_000_000_000_000));
    let (mut sched, recovery) = open(dir.path(), &clock);
    assert_eq!(recovery.fast_forwarded, [Pid(0)]);
    assert_eq!(recovery.replayed, [Pid(1)]);
    assert_eq!(sched.result_of::<u64>(Pid(0)), Some(Ok(42)));
    sched.run_until_idle().unwrap();
    // The boss (now a holder) waits on its 30 s timer; its child has finished.
    assert_eq!(sched.status(Pid(1)), Some(Status::Waiting(Wait::Timer)));
    assert_eq!(sched.status(Pid(2)), Some(Status::Stopped));
    clock.advance(Duration::from_secs(30));
    sched.run_until_idle().unwrap();
    assert_eq!(
        sched.result_of::<u64>(Pid(1)),
        Some(Ok("hello".len() as u64 + 10 + 20))
    );
    assert!(sched.violations().is_empty(), "{:?}", sched.violations());
}
