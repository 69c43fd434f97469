//! Recovery reads the journal in bounded memory: what it holds grows with what
//! is live (processes, their records since their restart points, inboxes,
//! undelivered messages), not with the records read. Measured with a counting
//! allocator: the peak of live heap bytes while the scheduler opens.

use chronoflow::journal::JournalOptions;
use chronoflow::{Ctx, DurableScheduler, Template};

#[path = "support/counting.rs"]
mod counting;
use counting::peak_during;

/// Takes `n` messages and returns their sum.
fn worker() -> Template<u64, u64, u64, u64> {
    Template::new("worker", |ctx: &mut Ctx<u64>, n: u64| {
        (0..n).map(|_| ctx.receive()).sum()
    })
}

/// Waits forever: its restart point (its creation) keeps every segment.
fn anchor() -> Template<u64, u64, (), u64> {
    Template::new("anchor", |ctx: &mut Ctx<u64>, _: ()| ctx.receive())
}

fn open(dir: &std::path::Path) -> DurableScheduler<u64> {
    DurableScheduler::builder()
        .register(&worker())
        .register(&anchor())
        .options(JournalOptions::default().segment_size(1 << 20))
        .open(dir)
        .unwrap()
        .0
}

#[test]
fn recovery_memory_does_not_grow_with_the_records_read() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut sched = open(dir.path());
        sched.spawn(&anchor(), ()).unwrap();
        // 3,000 workers that each take 40 messages, end, and are reaped: their
        // records are dead, but the anchor keeps every segment on disk.
        for _ in 0..3_000 {
            let h = sched.spawn(&worker(), 40).unwrap();
            for i in 0..40 {
                sched.send(h.pid(), i).unwrap();
            }
            sched.run_until_idle().unwrap();
            assert_eq!(sched.result(&h), Some(Ok(780)));
        }
    }
    let journal_bytes: u64 = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(
        journal_bytes > 4 << 20,
        "a journal of {journal_bytes} bytes"
    );

    let (sched, peak) = peak_during(|| open(dir.path()));
    assert_eq!(sched.live(), 1, "the anchor, rebuilt");
    eprintln!("journal {journal_bytes} bytes, recovery peak {peak} bytes");
    assert!(
        peak < 1 << 20,
        "recovering a journal of {journal_bytes} bytes held {peak} bytes at its peak"
    );
}
