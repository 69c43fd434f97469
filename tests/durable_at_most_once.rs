//! At-most-once effects: a crash between an effect and its record makes recovery
//! return `Interrupted` instead of running the effect again.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use chronoflow::journal::{IoOp, JournalOptions};
use chronoflow::{Ctx, DurableScheduler, Interrupted, Pid, Template};

fn charge(
    runs: Arc<AtomicU64>,
    crash: Arc<AtomicBool>,
) -> Template<u64, u64, (), Vec<Result<u64, Interrupted>>> {
    Template::new("charge", move |ctx: &mut Ctx<u64>, _: ()| {
        let mut outcomes = Vec::new();
        for _ in 0..2 {
            let amount = ctx.receive();
            let (runs, crash) = (runs.clone(), crash.clone());
            outcomes.push(ctx.effect_at_most_once(move || {
                runs.fetch_add(1, Ordering::SeqCst);
                if amount == 13 {
                    // The program "dies" now: nothing journaled after this point
                    // reaches the disk.
                    crash.store(true, Ordering::SeqCst);
                }
                amount * 100
            }));
        }
        outcomes
    })
}

#[test]
fn an_effect_interrupted_by_a_crash_is_not_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let runs = Arc::new(AtomicU64::new(0));
    let crash = Arc::new(AtomicBool::new(false));
    let hook_crash = crash.clone();
    let options = JournalOptions::default().io_hook(move |op, _| {
        if op == IoOp::Write && hook_crash.load(Ordering::SeqCst) {
            Err(io::Error::other("the program died"))
        } else {
            Ok(())
        }
    });
    {
        let template = charge(runs.clone(), crash.clone());
        let (mut sched, _) = DurableScheduler::builder()
            .register(&template)
            .options(options)
            .open(dir.path())
            .unwrap();
        let h = sched.spawn(&template, ()).unwrap();
        sched.send(h.pid(), 7).unwrap();
        sched.run_until_idle().unwrap();
        sched.send(h.pid(), 13).unwrap();
        // The effect for 13 runs, then its record cannot be written: the run stops.
        assert!(sched.run_until_idle().is_err());
    }
    assert_eq!(runs.load(Ordering::SeqCst), 2);

    let crash = Arc::new(AtomicBool::new(false));
    let template = charge(runs.clone(), crash);
    let (mut sched, recovery) = DurableScheduler::builder()
        .register(&template)
        .open(dir.path())
        .unwrap();
    assert_eq!(recovery.replayed, [Pid(0)]);
    sched.run_until_idle().unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 2, "neither effect ran again");
    assert_eq!(sched.status(Pid(0)), Some(chronoflow::Status::Stopped));
    drop(sched);

    // The interruption itself is journaled: a later recovery agrees.
    let (mut sched, recovery) = DurableScheduler::builder()
        .register(&template)
        .open(dir.path())
        .unwrap();
    assert_eq!(recovery.fast_forwarded, [Pid(0)]);
    assert_eq!(
        sched.result_of::<Vec<Result<u64, Interrupted>>>(Pid(0)),
        Some(Ok(vec![Ok(700), Err(Interrupted)]))
    );
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    drop(sched);

    // Taking the result reaped the process: it is not rebuilt again.
    let (_, recovery) = DurableScheduler::builder()
        .register(&template)
        .open(dir.path())
        .unwrap();
    assert!(
        recovery.fast_forwarded.is_empty() && recovery.replayed.is_empty(),
        "{recovery:?}"
    );
}

#[test]
fn without_a_crash_at_most_once_effects_return_their_results() {
    let dir = tempfile::tempdir().unwrap();
    let runs = Arc::new(AtomicU64::new(0));
    let template = charge(runs.clone(), Arc::new(AtomicBool::new(false)));
    {
        let (mut sched, _) = DurableScheduler::builder()
            .register(&template)
            .open(dir.path())
            .unwrap();
        let h = sched.spawn(&template, ()).unwrap();
        sched.send(h.pid(), 1).unwrap();
        sched.run_until_idle().unwrap();
    }
    let (mut sched, _) = DurableScheduler::builder()
        .register(&template)
        .open(dir.path())
        .unwrap();
    sched.send(Pid(0), 2).unwrap();
    sched.run_until_idle().unwrap();
    assert_eq!(
        runs.load(Ordering::SeqCst),
        2,
        "the first effect was not run again in replay"
    );
    assert_eq!(
        sched.result_of::<Vec<Result<u64, Interrupted>>>(Pid(0)),
        Some(Ok(vec![Ok(100), Ok(200)]))
    );
}
