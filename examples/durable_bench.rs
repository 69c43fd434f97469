//! What durable effects cost: effects per second of a `DurableScheduler`, with 1
//! and with 100 processes, under each `CommitPolicy`.
//!
//! ```sh
//! cargo run --release --example durable_bench -- [quick|full] [DIR]
//! ```
//!
//! Each process performs effects back to back (an effect that adds to a counter:
//! the cost measured is the journal's, not the effect's). Under
//! `CommitPolicy::BeforeEffects` a process waits for a commit (one `fdatasync`)
//! before each effect, shared by every process waiting; under
//! `CommitPolicy::PerPass` it does not wait. The journal lives in `DIR` (default:
//! a fresh directory under the system's temporary directory; put it on the disk
//! you mean to measure). Each line gives the median of 5 runs:
//!
//! ```text
//! workload=durable_effects procs=N policy=P effects_per_s=X syncs_per_s=Y
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use chronoflow::durable::CommitPolicy;
use chronoflow::journal::{IoOp, JournalOptions};
use chronoflow::{Ctx, DurableScheduler, Template};

/// Performs `n` effects, each adding one to a counter.
fn actor() -> Template<u64, u64, u64, u64> {
    Template::new("actor", |ctx: &mut Ctx<u64>, n: u64| {
        let mut total = 0;
        for _ in 0..n {
            total = ctx.durable_effect(move || total + 1);
        }
        total
    })
}

/// One run: `procs` processes, `each` effects each. Returns the effects and the
/// syncs per second.
fn run(dir: &Path, policy: CommitPolicy, procs: u64, each: u64) -> (f64, f64) {
    let _ = std::fs::remove_dir_all(dir);
    let syncs = Arc::new(AtomicU64::new(0));
    let counted = syncs.clone();
    let options = JournalOptions::default().io_hook(move |op, _| {
        if op == IoOp::Sync {
            counted.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    });
    let t = actor();
    let (mut sched, _) = DurableScheduler::builder()
        .register(&t)
        .commit_policy(policy)
        .options(options)
        .open(dir)
        .expect("open the journal");
    let handles: Vec<_> = (0..procs)
        .map(|_| sched.spawn(&t, each).expect("spawn"))
        .collect();
    let before = syncs.load(Ordering::Relaxed);
    let start = Instant::now();
    sched.run_until_idle().expect("run");
    let secs = start.elapsed().as_secs_f64();
    let synced = syncs.load(Ordering::Relaxed) - before;
    for h in handles {
        assert_eq!(sched.result(&h), Some(Ok(each)));
    }
    ((procs * each) as f64 / secs, synced as f64 / secs)
}

fn median(mut xs: Vec<(f64, f64)>) -> (f64, f64) {
    xs.sort_by(|a, b| a.0.total_cmp(&b.0));
    xs[xs.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let size = args.next().unwrap_or_else(|| "full".into());
    let scale = match size.as_str() {
        "quick" => 10,
        "full" => 1,
        other => {
            eprintln!("usage: durable_bench [quick|full] [DIR] (got {other:?})");
            std::process::exit(2);
        }
    };
    let dir = args.next().map(PathBuf::from).unwrap_or_else(|| {
        std::env::temp_dir().join(format!("chronoflow-durable-bench-{}", std::process::id()))
    });
    println!(
        "# chronoflow {}, durable effects, journal in {}, size {size}, median of 5",
        env!("CARGO_PKG_VERSION"),
        dir.display()
    );
    for (policy, name) in [
        (CommitPolicy::BeforeEffects, "before_effects"),
        (CommitPolicy::PerPass, "per_pass"),
    ] {
        for (procs, each) in [(1, 2_000 / scale), (100, 200 / scale)] {
            let runs = (0..5).map(|_| run(&dir, policy, procs, each)).collect();
            let (effects, syncs) = median(runs);
            println!(
                "workload=durable_effects procs={procs} policy={name} effects_per_s={effects:.0} syncs_per_s={syncs:.0}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
