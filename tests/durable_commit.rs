//! When a durable process may act on the outside world: under the default
//! `CommitPolicy::BeforeEffects`, an effect runs only once every record of its
//! process before it is durable, so a crash re-runs at most the one effect in
//! flight per process, and never runs an effect on an input that the crash lost.
//! Processes waiting for a commit share one (group commit). Once a journal error
//! stops the run, nothing more runs: no effect, no send.
//!
//! A crash is simulated in the process: an I/O hook fails every write from some
//! point on, so that what was appended since the last commit never reaches the
//! file (as when the program is killed before its commit's `write`), and the
//! journal, poisoned, writes nothing more when dropped.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chronoflow::durable::CommitPolicy;
use chronoflow::journal::{IoOp, JournalOptions};
use chronoflow::{Ctx, DurableScheduler, Pid, Status, Template, Wait};
use tempfile::TempDir;

/// The outside world's log of effects: what each effect acted on, in order.
type World = Arc<Mutex<Vec<u64>>>;

fn world() -> World {
    Arc::new(Mutex::new(Vec::new()))
}

fn seen(world: &World) -> Vec<u64> {
    world.lock().unwrap().clone()
}

/// Takes `n` messages; acts on each with an effect that logs it in `world`.
fn worker(world: World, n: usize) -> Template<u64, u64, (), Vec<u64>> {
    Template::new("worker", move |ctx: &mut Ctx<u64>, _: ()| {
        (0..n)
            .map(|_| {
                let x = ctx.receive();
                let world = world.clone();
                ctx.durable_effect(move || {
                    world.lock().unwrap().push(x);
                    x
                })
            })
            .collect()
    })
}

/// Journal options whose writes (and syncs) fail once `crash` is set: the records
/// appended since the last commit are lost.
fn crashing(crash: Arc<AtomicBool>) -> JournalOptions {
    JournalOptions::default().io_hook(move |op, _| {
        if matches!(op, IoOp::Write | IoOp::Sync) && crash.load(Ordering::SeqCst) {
            Err(io::Error::other("injected crash"))
        } else {
            Ok(())
        }
    })
}

/// Opens a scheduler on `dir` with `policy`, the worker registered.
fn open(
    dir: &Path,
    policy: CommitPolicy,
    options: JournalOptions,
    t: &Template<u64, u64, (), Vec<u64>>,
) -> DurableScheduler<u64> {
    DurableScheduler::<u64>::builder()
        .register(t)
        .commit_policy(policy)
        .options(options)
        .open(dir)
        .unwrap()
        .0
}

/// A worker has 50 messages in its inbox, runs `passes` passes that commit, then
/// the next pass's commit is lost. Returns what the world saw, over the crash and
/// the recovered run to the end, and the worker's result.
fn lost_pass(policy: CommitPolicy, passes: usize) -> (Vec<u64>, Vec<u64>) {
    let tmp = TempDir::new().unwrap();
    let world = world();
    let t = worker(world.clone(), 50);
    let crash = Arc::new(AtomicBool::new(false));
    {
        let mut sched = open(tmp.path(), policy, crashing(crash.clone()), &t);
        // The messages are in its inbox, and on disk, before it starts.
        sched.create(&t, ()).unwrap();
        for m in 0..50 {
            sched.send(Pid(0), m).unwrap();
        }
        let _ = sched.update().unwrap();
        sched.start(Pid(0)).unwrap();
        for _ in 0..passes {
            let _ = sched.update().unwrap();
        }
        // The program dies before this pass's commit reaches the file.
        crash.store(true, Ordering::SeqCst);
        assert!(sched.update().is_err());
    }
    let mut sched = open(tmp.path(), policy, JournalOptions::default(), &t);
    if sched.status(Pid(0)) == Some(Status::Created) {
        // Its START was lost with the pass: the outside starts it again.
        sched.start(Pid(0)).unwrap();
    }
    sched.run_until_idle().unwrap();
    let result = sched.result_of::<Vec<u64>>(Pid(0)).unwrap().unwrap();
    (seen(&world), result)
}

#[test]
fn a_crash_reruns_at_most_the_effect_in_flight() {
    let (world, result) = lost_pass(CommitPolicy::BeforeEffects, 10);
    assert_eq!(result, (0..50).collect::<Vec<_>>());
    // Every step acted on once, and one at most twice: the one whose effect ran
    // while its record was in the lost commit.
    assert!(
        world.len() <= 51,
        "{} effects for 50 steps: {world:?}",
        world.len()
    );
    // Here, the one in flight when the program died: the tenth (each pass acts
    // on the message the previous one took, then takes the next).
    assert_eq!(world.iter().filter(|&&x| x == 9).count(), 2, "{world:?}");
    let mut deduped = world.clone();
    deduped.dedup();
    assert_eq!(
        deduped, result,
        "in order, each step once or twice in a row"
    );
}

#[test]
fn per_pass_commits_rerun_the_whole_lost_pass() {
    // The opt-in policy keeps the wider window its doc states: every effect of
    // the lost pass runs again.
    let (world, result) = lost_pass(CommitPolicy::PerPass, 0);
    assert_eq!(result, (0..50).collect::<Vec<_>>());
    assert_eq!(world.len(), 100, "the whole lost pass re-ran");
}

#[test]
fn an_effect_never_runs_on_an_input_that_was_lost() {
    // The outside sends A; the worker acts on it in the same pass; the program
    // dies before that pass's commit. After recovery the outside, which never
    // saw an answer, sends B. An effect that ran on A would be orphaned: the
    // recovered worker takes B, and nothing it journals ever mentions A.
    let tmp = TempDir::new().unwrap();
    let world = world();
    let t = worker(world.clone(), 1);
    let crash = Arc::new(AtomicBool::new(false));
    {
        let mut sched = open(
            tmp.path(),
            CommitPolicy::default(),
            crashing(crash.clone()),
            &t,
        );
        sched.spawn(&t, ()).unwrap();
        let _ = sched.update().unwrap();
        sched.send(Pid(0), 7).unwrap();
        // The pass that takes A also would act on it; its commit is lost.
        crash.store(true, Ordering::SeqCst);
        assert!(sched.update().is_err());
    }
    let mut sched = open(
        tmp.path(),
        CommitPolicy::default(),
        JournalOptions::default(),
        &t,
    );
    sched.send(Pid(0), 8).unwrap();
    sched.run_until_idle().unwrap();
    assert_eq!(sched.result_of::<Vec<u64>>(Pid(0)), Some(Ok(vec![8])));
    assert_eq!(seen(&world), [8], "an effect acted on a lost input");
}

#[test]
fn processes_waiting_for_a_commit_share_one() {
    // 100 processes each take a message and act on it: they all wait for the
    // same commit (one fdatasync), then all act in the next pass.
    let tmp = TempDir::new().unwrap();
    let world = world();
    let t = worker(world.clone(), 1);
    let syncs = Arc::new(AtomicU64::new(0));
    let counted = syncs.clone();
    let options = JournalOptions::default().io_hook(move |op, _| {
        if op == IoOp::Sync {
            counted.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    });
    let mut sched = open(tmp.path(), CommitPolicy::default(), options, &t);
    let pids: Vec<Pid> = (0..100)
        .map(|_| sched.spawn(&t, ()).unwrap().pid())
        .collect();
    for (i, &pid) in pids.iter().enumerate() {
        sched.send(pid, i as u64).unwrap();
    }
    let before = syncs.load(Ordering::SeqCst);
    let _ = sched.update().unwrap();
    // Each took its message and now waits for the commit that just ran.
    assert!(seen(&world).is_empty(), "an effect ran before its commit");
    for &pid in &pids {
        assert_eq!(
            sched.status(pid),
            Some(Status::Ready),
            "released by the commit"
        );
    }
    assert_eq!(
        syncs.load(Ordering::SeqCst),
        before + 1,
        "one commit for all"
    );
    let _ = sched.update().unwrap();
    assert_eq!(seen(&world).len(), 100);
    assert_eq!(syncs.load(Ordering::SeqCst), before + 2);
}

#[test]
fn a_process_waits_for_the_commit_as_its_status_says() {
    let tmp = TempDir::new().unwrap();
    let world = world();
    let t = worker(world.clone(), 1);
    // A commit that cannot happen (its write fails) never releases it.
    let crash = Arc::new(AtomicBool::new(false));
    let mut sched = open(
        tmp.path(),
        CommitPolicy::default(),
        crashing(crash.clone()),
        &t,
    );
    sched.spawn(&t, ()).unwrap();
    sched.send(Pid(0), 1).unwrap();
    crash.store(true, Ordering::SeqCst);
    assert!(sched.update().is_err());
    assert_eq!(sched.status(Pid(0)), Some(Status::Waiting(Wait::Commit)));
    assert!(seen(&world).is_empty());
}

/// Acts `n` times in one turn, each effect logged in `world` (effects under
/// `PerPass` do not wait, so the whole loop is one turn).
fn busy(world: World, n: u64) -> Template<u64, u64, (), u64> {
    Template::new("busy", move |ctx: &mut Ctx<u64>, _: ()| {
        for i in 0..n {
            let world = world.clone();
            ctx.durable_effect(move || world.lock().unwrap().push(i));
        }
        n
    })
}

/// Sends `n` messages in one turn to a pid that does not exist: each is kept
/// undelivered (and journaled).
fn lost_sender(n: u64) -> Template<u64, u64, (), u64> {
    Template::new("lost-sender", move |ctx: &mut Ctx<u64>, _: ()| {
        for i in 0..n {
            ctx.send_to(Pid(1_000_000), i);
        }
        n
    })
}

/// Journal options with small segments whose first rollover's sync fails (the
/// first sync of a segment file under its own name: a new segment is synced
/// under a temporary name before it is renamed).
fn failing_rollover() -> JournalOptions {
    let failed = Arc::new(AtomicBool::new(false));
    JournalOptions::default()
        .segment_size(4096)
        .io_hook(move |op, path| {
            let segment = path.extension().is_some_and(|x| x == "cfj");
            if op == IoOp::Sync && segment && !failed.swap(true, Ordering::SeqCst) {
                Err(io::Error::other("injected fdatasync failure"))
            } else {
                Ok(())
            }
        })
}

#[test]
fn after_a_journal_error_no_effect_runs() {
    let tmp = TempDir::new().unwrap();
    let world = world();
    let t = busy(world.clone(), 1000);
    let ran = {
        let (mut sched, _) = DurableScheduler::<u64>::builder()
            .register(&t)
            .commit_policy(CommitPolicy::PerPass)
            .options(failing_rollover())
            .open(tmp.path())
            .unwrap();
        sched.spawn(&t, ()).unwrap();
        assert!(sched.update().is_err());
        seen(&world).len()
    };
    assert!(ran < 1000, "the failed rollover stopped nothing");
    // What ran was journaled, but for the effect whose record failed.
    let (mut sched, _) = DurableScheduler::<u64>::builder()
        .register(&t)
        .open(tmp.path())
        .unwrap();
    let replayed_from = seen(&world).len();
    sched.run_until_idle().unwrap();
    assert_eq!(sched.result_of::<u64>(Pid(0)), Some(Ok(1000)));
    let rerun = seen(&world).len() - replayed_from;
    assert!(
        ran + rerun <= 1001,
        "{ran} effects before the error, {rerun} after recovery: more than one re-ran"
    );
}

#[test]
fn after_a_journal_error_no_send_is_made() {
    let tmp = TempDir::new().unwrap();
    let t = lost_sender(1000);
    let kept = {
        let (mut sched, _) = DurableScheduler::<u64>::builder()
            .register(&t)
            .options(failing_rollover())
            .open(tmp.path())
            .unwrap();
        sched.spawn(&t, ()).unwrap();
        assert!(sched.update().is_err());
        sched.take_undelivered().len()
    };
    assert!(kept < 1000, "the failed rollover stopped no send");
    let (mut sched, _) = DurableScheduler::<u64>::builder()
        .register(&t)
        .options(JournalOptions::default().segment_size(4096))
        .open(tmp.path())
        .unwrap();
    // Every send made before the error is in the journal, but the one whose
    // record failed.
    let journaled = sched.take_undelivered().len();
    assert!(
        kept <= journaled + 1,
        "{kept} sends made, {journaled} journaled"
    );
}
