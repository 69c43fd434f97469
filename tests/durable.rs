//! Durable processes: a `DurableScheduler` dropped in the middle of a run (a crash)
//! and opened again rebuilds every process from its journal and carries on: effects
//! that ran are not run again, messages are neither lost nor duplicated, finished
//! processes are fast-forwarded, children are rebuilt with their parents, a body
//! that does not match its records is held, and journal faults stop the run.
//!
//! Dropping the scheduler is the crash: its processes are unwound without ending,
//! and what was journaled stays on disk.

use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use chronoflow::journal::{FRAME_HEADER_LEN, HEAD_FILE, IoOp, JournalError, JournalOptions};
use chronoflow::{
    Child, Ctx, DurableBuilder, DurableScheduler, ExitError, Overflow, Pid, Recovery,
    RecoveryError, SpawnError, Status, Step, Template, Transition, UndeliveredReason, Wait,
};
use tempfile::TempDir;

#[path = "support/segments.rs"]
mod segments;
use segments::segments;

/// The message that lets a waiting process go on (`select(|m| *m == GO)`).
const GO: u64 = 0;

fn counter() -> Arc<AtomicU64> {
    Arc::new(AtomicU64::new(0))
}

fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::SeqCst)
}

fn bump(c: &AtomicU64) -> u64 {
    c.fetch_add(1, Ordering::SeqCst)
}

/// A process's result as `result_of` gives it.
type Ended<R> = Option<Result<R, ExitError>>;

/// A template of this file's schedulers (messages are `u64`).
type Tpl<A, R> = Template<u64, u64, A, R>;

/// Opens a durable scheduler of `u64` messages on `dir` with the templates
/// registered by `register`.
fn open_with(
    dir: &Path,
    register: impl FnOnce(DurableBuilder<u64>) -> DurableBuilder<u64>,
) -> (DurableScheduler<u64>, Recovery) {
    register(DurableScheduler::<u64>::builder())
        .open(dir)
        .unwrap()
}

fn last_segment(dir: &Path) -> PathBuf {
    segments(dir).pop().expect("the journal has a segment")
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).unwrap().len()
}

fn truncate(path: &Path, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

/// Copies the journal files (segments and `HEAD`) of `from` into a new directory.
fn copy_journal(from: &Path) -> TempDir {
    let to = TempDir::new().unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "cfj") || path.ends_with(HEAD_FILE) {
            fs::copy(&path, to.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    to
}

// ---------------------------------------------------------------------------------
// A process interrupted mid-run continues where it was.

/// Takes two messages, waits for GO, takes two more. Each message goes through an
/// effect whose result is a stamp: how many effects had run before it, so that an
/// effect run again would show in the result.
fn stamper(effects: Arc<AtomicU64>) -> Template<u64, u64, (), Vec<u64>> {
    Template::new("stamper", move |ctx: &mut Ctx<u64>, _: ()| {
        let mut out = Vec::new();
        for i in 0..4 {
            if i == 2 {
                ctx.select(|m| *m == GO);
            }
            let x = ctx.receive();
            let effects = effects.clone();
            let stamp = ctx.durable_effect(move || bump(&effects));
            out.push(x * 100 + stamp);
        }
        out
    })
}

/// Runs the stamper on 1, 2, 3, 4 then GO, crashing (or not) while it waits for GO
/// with 3 and 4 delivered and not yet received. Returns its result and how many
/// effects ran.
fn run_stamper(crash: bool) -> (Ended<Vec<u64>>, u64) {
    let tmp = TempDir::new().unwrap();
    let effects = counter();
    let t = stamper(effects.clone());
    let (mut sched, recovery) = open_with(tmp.path(), |b| b.register(&t));
    assert_eq!(recovery, Recovery::default());
    assert_eq!(sched.spawn(&t, ()).unwrap().pid(), Pid(0));
    for m in [1, 2, 3, 4] {
        sched.send(Pid(0), m).unwrap();
    }
    sched.run_until_idle().unwrap();
    assert_eq!(get(&effects), 2);
    if crash {
        drop(sched);
        let (s, recovery) = open_with(tmp.path(), |b| b.register(&t));
        sched = s;
        assert_eq!(recovery.replayed, [Pid(0)]);
        assert!(recovery.fast_forwarded.is_empty());
        assert_eq!(recovery.truncated, None);
        sched.run_until_idle().unwrap();
        assert_eq!(get(&effects), 2, "the replay ran no effect again");
        assert_eq!(sched.status(Pid(0)), Some(Status::Waiting(Wait::Message)));
    }
    sched.send(Pid(0), GO).unwrap();
    sched.run_until_idle().unwrap();
    assert!(sched.violations().is_empty(), "{:?}", sched.violations());
    (sched.result_of(Pid(0)), get(&effects))
}

#[test]
fn an_interrupted_process_continues_where_it_was() {
    let uninterrupted = run_stamper(false);
    assert_eq!(uninterrupted, (Some(Ok(vec![100, 201, 302, 403])), 4));
    assert_eq!(
        run_stamper(true),
        uninterrupted,
        "same result, each effect run once, 3 and 4 received after the crash"
    );
}

// ---------------------------------------------------------------------------------
// Finished processes are fast-forwarded.

fn adder(starts: Arc<AtomicU64>, effects: Arc<AtomicU64>) -> Template<u64, u64, u64, u64> {
    Template::new("adder", move |ctx: &mut Ctx<u64>, n: u64| {
        bump(&starts);
        let mut sum = 0;
        for _ in 0..n {
            let x = ctx.receive();
            let effects = effects.clone();
            sum += ctx.durable_effect(move || {
                bump(&effects);
                x
            });
        }
        sum
    })
}

fn unlucky() -> Template<u64, u64, (), u64> {
    Template::new("unlucky", |ctx: &mut Ctx<u64>, _: ()| {
        let x = ctx.receive();
        if x == 13 {
            panic!("unlucky {x}");
        }
        x
    })
}

#[test]
fn a_finished_process_is_fast_forwarded_without_running() {
    let tmp = TempDir::new().unwrap();
    let (starts, effects) = (counter(), counter());
    let add = adder(starts.clone(), effects.clone());
    let fail = unlucky();
    {
        let (mut sched, _) = open_with(tmp.path(), |b| b.register(&add).register(&fail));
        sched.spawn(&add, 2).unwrap();
        sched.spawn(&fail, ()).unwrap();
        sched.send(Pid(0), 2).unwrap();
        sched.send(Pid(0), 3).unwrap();
        sched.send(Pid(1), 13).unwrap();
        sched.run_until_idle().unwrap();
        assert_eq!(sched.status(Pid(0)), Some(Status::Stopped));
        assert_eq!(sched.status(Pid(1)), Some(Status::Stopped));
        // The results are not taken: the crash comes first.
    }
    let (mut sched, recovery) = open_with(tmp.path(), |b| b.register(&add).register(&fail));
    assert_eq!(recovery.fast_forwarded, [Pid(0), Pid(1)]);
    assert!(recovery.replayed.is_empty());
    assert_eq!(sched.live(), 0, "no process is rebuilt to run");
    assert_eq!(sched.status(Pid(0)), Some(Status::Stopped));
    assert_eq!(sched.run_until_idle().unwrap(), 0, "nothing runs");
    assert_eq!((get(&starts), get(&effects)), (1, 2), "nothing ran again");
    assert_eq!(sched.result_of::<u64>(Pid(0)), Some(Ok(5)));
    assert_eq!(
        sched.result_of::<u64>(Pid(1)),
        Some(Err(ExitError::Failed("unlucky 13".into())))
    );
    assert_eq!(sched.status(Pid(0)), None, "the result was taken");
}

// ---------------------------------------------------------------------------------
// Children are rebuilt with their parents.

/// A child that finishes at once: one effect.
fn quick(starts: Arc<AtomicU64>, effects: Arc<AtomicU64>) -> Template<u64, u64, u64, u64> {
    Template::new("quick", move |ctx: &mut Ctx<u64>, x: u64| {
        bump(&starts);
        let effects = effects.clone();
        ctx.durable_effect(move || {
            bump(&effects);
            x * 2
        })
    })
}

/// A child that does an effect, then waits for a message of 100 or more.
fn slow(effects: Arc<AtomicU64>) -> Template<u64, u64, u64, u64> {
    Template::new("slow", move |ctx: &mut Ctx<u64>, x: u64| {
        let effects = effects.clone();
        let e = ctx.durable_effect(move || {
            bump(&effects);
            x + 1
        });
        e + ctx.select(|m| *m >= 100)
    })
}

/// The family: a parent (<0>) that spawns `quick` (<1>) and `slow` (<2>), waits for
/// GO, then joins both.
struct Family {
    quick_starts: Arc<AtomicU64>,
    quick_effects: Arc<AtomicU64>,
    slow_effects: Arc<AtomicU64>,
    quick: Template<u64, u64, u64, u64>,
    slow: Template<u64, u64, u64, u64>,
    parent: Template<u64, u64, u64, (u64, u64)>,
}

impl Family {
    fn new() -> Family {
        let (quick_starts, quick_effects, slow_effects) = (counter(), counter(), counter());
        let q = quick(quick_starts.clone(), quick_effects.clone());
        let s = slow(slow_effects.clone());
        let (q2, s2) = (q.clone(), s.clone());
        let parent = Template::new("parent", move |ctx: &mut Ctx<u64>, x: u64| {
            let a = ctx.spawn(&q2, x).unwrap();
            let b = ctx.spawn(&s2, x).unwrap();
            ctx.select(|m| *m == GO);
            (ctx.join(a).unwrap(), ctx.join(b).unwrap())
        });
        Family {
            quick_starts,
            quick_effects,
            slow_effects,
            quick: q,
            slow: s,
            parent,
        }
    }

    fn open(&self, dir: &Path) -> (DurableScheduler<u64>, Recovery) {
        open_with(dir, |b| {
            b.register(&self.parent)
                .register(&self.quick)
                .register(&self.slow)
        })
    }

    /// The first run: `quick` finishes, `slow` and the parent wait; then the crash.
    fn first_run(&self, dir: &Path) {
        let (mut sched, _) = self.open(dir);
        sched.spawn(&self.parent, 10).unwrap();
        sched.run_until_idle().unwrap();
        assert_eq!(sched.status(Pid(1)), Some(Status::Stopped));
        assert_eq!(sched.status(Pid(2)), Some(Status::Waiting(Wait::Message)));
        assert_eq!(self.counts(), (1, 1, 1));
    }

    fn counts(&self) -> (u64, u64, u64) {
        (
            get(&self.quick_starts),
            get(&self.quick_effects),
            get(&self.slow_effects),
        )
    }
}

#[test]
fn children_are_fast_forwarded_or_replayed_with_their_parent() {
    let tmp = TempDir::new().unwrap();
    let family = Family::new();
    family.first_run(tmp.path());

    let (mut sched, recovery) = family.open(tmp.path());
    assert_eq!(
        recovery.replayed,
        [Pid(0)],
        "children come with their parent"
    );
    assert!(recovery.fast_forwarded.is_empty());
    sched.run_until_idle().unwrap();
    assert_eq!(family.counts(), (1, 1, 1), "no child ran its effect again");
    assert_eq!(sched.status(Pid(1)), Some(Status::Stopped));
    assert_eq!(sched.status(Pid(2)), Some(Status::Waiting(Wait::Message)));

    sched.send(Pid(0), 100).unwrap();
    sched.send(Pid(0), GO).unwrap();
    sched.run_until_idle().unwrap();
    assert!(sched.violations().is_empty(), "{:?}", sched.violations());
    assert_eq!(sched.result_of::<(u64, u64)>(Pid(0)), Some(Ok((20, 111))));
    assert_eq!(family.counts(), (1, 1, 1));
    assert_eq!(sched.live(), 0);
}

#[test]
fn messages_sent_right_after_reopening_reach_the_children_too() {
    // In an uninterrupted run, what the parent receives its live children receive
    // too. After reopening, the children exist again only once the parent has
    // replayed their spawns: a message sent before that must still reach them.
    let tmp = TempDir::new().unwrap();
    let family = Family::new();
    family.first_run(tmp.path());

    let (mut sched, _) = family.open(tmp.path());
    sched.send(Pid(0), 100).unwrap();
    sched.send(Pid(0), GO).unwrap();
    sched.run_until_idle().unwrap();
    assert!(sched.violations().is_empty(), "{:?}", sched.violations());
    assert_eq!(
        sched.result_of::<(u64, u64)>(Pid(0)),
        Some(Ok((20, 111))),
        "slow (<2>) got 100 as it would have without the crash"
    );
}

#[test]
fn a_live_child_can_be_sent_to_right_after_reopening() {
    let tmp = TempDir::new().unwrap();
    let family = Family::new();
    family.first_run(tmp.path());

    let (mut sched, _) = family.open(tmp.path());
    assert_eq!(
        sched.send(Pid(2), 100),
        Ok(()),
        "<2> is alive in the journal"
    );
    assert!(sched.status(Pid(2)).is_some());
    sched.run_until_idle().unwrap();
    sched.send(Pid(0), GO).unwrap();
    sched.run_until_idle().unwrap();
    assert_eq!(sched.result_of::<(u64, u64)>(Pid(0)), Some(Ok((20, 111))));
}

// ---------------------------------------------------------------------------------
// Selective receive and filter: the journal gives the same messages back.

fn picky() -> Template<u64, u64, (), Vec<u64>> {
    Template::new("picky", |ctx: &mut Ctx<u64>, _: ()| {
        vec![
            ctx.select(|m| *m == 3),
            ctx.receive(),
            ctx.select(|m| *m == 5),
            ctx.select(|m| *m == 7), // waits: first crash
            ctx.filter(|m| *m == 6), // drops what is before 6
            ctx.select(|m| *m == 9), // waits: second crash
            ctx.receive(),
            ctx.receive(),
        ]
    })
}

fn run_picky(crash: bool) -> Ended<Vec<u64>> {
    let tmp = TempDir::new().unwrap();
    let t = picky();
    let (mut sched, _) = open_with(tmp.path(), |b| b.register(&t));
    sched.spawn(&t, ()).unwrap();
    for batch in [&[1, 2, 3, 4, 5][..], &[6, 7, 8], &[10, 9]] {
        for &m in batch {
            sched.send(Pid(0), m).unwrap();
        }
        sched.run_until_idle().unwrap();
        if crash {
            drop(sched);
            let (s, recovery) = open_with(tmp.path(), |b| b.register(&t));
            sched = s;
            if recovery.fast_forwarded.is_empty() {
                assert_eq!(recovery.replayed, [Pid(0)]);
            }
            sched.run_until_idle().unwrap();
        }
    }
    assert!(sched.violations().is_empty(), "{:?}", sched.violations());
    sched.result_of(Pid(0))
}

#[test]
fn selective_receive_and_filter_get_the_same_messages_across_crashes() {
    // select leaves 1, 2, 4 in order; filter drops 2 and 4 for good.
    let expected = Some(Ok(vec![3, 1, 5, 7, 6, 9, 8, 10]));
    assert_eq!(run_picky(false), expected);
    assert_eq!(run_picky(true), expected);
}

// ---------------------------------------------------------------------------------
// Determinism violations.

/// Takes two messages, sends their sum to `peer`, then returns the next message.
fn flaky_v1() -> Template<u64, u64, Pid, u64> {
    Template::new("flaky", |ctx: &mut Ctx<u64>, peer: Pid| {
        let a = ctx.receive();
        let b = ctx.receive();
        ctx.send_to(peer, a + b);
        ctx.receive()
    })
}

/// Takes two messages and returns them.
fn sink() -> Template<u64, u64, (), Vec<u64>> {
    Template::new("sink", |ctx: &mut Ctx<u64>, _: ()| {
        vec![ctx.receive(), ctx.receive()]
    })
}

/// The first run: sink (<0>), flaky (<1>) takes 1 and 2 and sends 3 to the sink;
/// both wait. Then the crash.
fn flaky_first_run(dir: &Path) {
    let (f, s) = (flaky_v1(), sink());
    let (mut sched, _) = open_with(dir, |b| b.register(&f).register(&s));
    sched.spawn(&s, ()).unwrap();
    sched.spawn(&f, Pid(0)).unwrap();
    sched.send(Pid(1), 1).unwrap();
    sched.send(Pid(1), 2).unwrap();
    sched.run_until_idle().unwrap();
}

/// Reopens with `flaky` registered as the body of "flaky", runs the replay, and
/// checks what every violation case shares: exactly one violation, of <1> at
/// `step`; <1> is held for good; the sink carries on and finishes, having got the
/// sum once. Then reopens with the right body: the journal holds nothing of the
/// wrong one, and <1> carries on. Returns the violation's texts.
fn assert_held(dir: &Path, flaky: Template<u64, u64, Pid, u64>, step: u64) -> (String, String) {
    let s = sink();
    let texts = {
        let (mut sched, recovery) = open_with(dir, |b| b.register(&flaky).register(&s));
        assert_eq!(recovery.replayed, [Pid(0), Pid(1)]);
        sched.run_until_idle().unwrap();
        let violations = sched.violations().to_vec();
        assert_eq!(violations.len(), 1, "{violations:?}");
        let v = &violations[0];
        assert_eq!((v.pid, v.step), (Pid(1), step), "{v}");
        assert_eq!(sched.status(Pid(1)), Some(Status::Waiting(Wait::Held)));

        sched.send(Pid(0), 4).unwrap();
        sched.send(Pid(1), 5).unwrap();
        sched.run_until_idle().unwrap();
        assert_eq!(
            sched.result_of::<Vec<u64>>(Pid(0)),
            Some(Ok(vec![3, 4])),
            "the other process carries on"
        );
        assert_eq!(sched.status(Pid(1)), Some(Status::Waiting(Wait::Held)));
        assert_eq!(sched.result_of::<u64>(Pid(1)), None);
        assert_eq!(sched.violations().len(), 1);
        (v.recorded.clone(), v.emitted.clone())
    };
    let f = flaky_v1();
    let (mut sched, _) = open_with(dir, |b| b.register(&f).register(&s));
    sched.run_until_idle().unwrap();
    assert!(sched.violations().is_empty(), "{:?}", sched.violations());
    assert_eq!(
        sched.result_of::<u64>(Pid(1)),
        Some(Ok(5)),
        "with its right body, <1> carries on from its records"
    );
    texts
}

#[test]
fn an_effect_where_a_receive_was_recorded_is_a_violation() {
    let tmp = TempDir::new().unwrap();
    flaky_first_run(tmp.path());
    let ran = counter();
    let r = ran.clone();
    let v2 = Template::new("flaky", move |ctx: &mut Ctx<u64>, peer: Pid| {
        let a = ctx.receive();
        let r = r.clone();
        let b = ctx.durable_effect(move || {
            bump(&r);
            2
        });
        ctx.send_to(peer, a + b);
        ctx.receive()
    });
    let (recorded, emitted) = assert_held(tmp.path(), v2, 1);
    assert!(recorded.contains("receive"), "{recorded}");
    assert!(emitted.contains("effect"), "{emitted}");
    assert_eq!(get(&ran), 0, "the mismatched effect did not run");
}

#[test]
fn a_send_to_another_pid_is_a_violation() {
    let tmp = TempDir::new().unwrap();
    flaky_first_run(tmp.path());
    let v2 = Template::new("flaky", |ctx: &mut Ctx<u64>, _peer: Pid| {
        let a = ctx.receive();
        let b = ctx.receive();
        let me = ctx.pid();
        ctx.send_to(me, a + b);
        ctx.receive()
    });
    let (recorded, emitted) = assert_held(tmp.path(), v2, 2);
    assert!(
        recorded.contains("send") && recorded.contains("<0>"),
        "{recorded}"
    );
    assert!(
        emitted.contains("send") && emitted.contains("<1>"),
        "{emitted}"
    );
}

#[test]
fn a_send_of_another_message_is_a_violation() {
    let tmp = TempDir::new().unwrap();
    flaky_first_run(tmp.path());
    let v2 = Template::new("flaky", |ctx: &mut Ctx<u64>, peer: Pid| {
        let a = ctx.receive();
        let b = ctx.receive();
        ctx.send_to(peer, a + b + 1);
        ctx.receive()
    });
    let (recorded, emitted) = assert_held(tmp.path(), v2, 2);
    assert!(
        recorded.contains("send") && recorded.contains("<0>"),
        "{recorded}"
    );
    assert!(
        emitted.contains("send") && emitted.contains("<0>"),
        "{emitted}"
    );
    assert_ne!(recorded, emitted, "the texts tell the messages apart");
}

#[test]
fn ending_before_the_records_do_is_a_violation_and_holds_the_process() {
    // The records say: take, take, send. This body returns after one take: it must
    // not end with a result its records do not support.
    let tmp = TempDir::new().unwrap();
    flaky_first_run(tmp.path());
    let v2 = Template::new("flaky", |ctx: &mut Ctx<u64>, _peer: Pid| ctx.receive());
    let (recorded, _) = assert_held(tmp.path(), v2, 1);
    assert!(recorded.contains("receive"), "{recorded}");
}

/// A parent that spawns a child with an argument, then adds what it receives to
/// what the child computes from the same message.
fn nest(kid_arg: u64) -> (Tpl<(), u64>, Tpl<u64, u64>) {
    let kid = Template::new("kid", |ctx: &mut Ctx<u64>, k: u64| ctx.receive() * k);
    let k = kid.clone();
    let parent = Template::new("nest", move |ctx: &mut Ctx<u64>, _: ()| {
        let c = ctx.spawn(&k, kid_arg).unwrap();
        let x = ctx.receive();
        x + ctx.join(c).unwrap()
    });
    (parent, kid)
}

#[test]
fn a_spawn_with_other_arguments_is_not_run_on_with_them() {
    // The records say the child was spawned with 1. A body that spawns it with 2
    // must be held (another payload), or at least its child must go on with what
    // its records say: never with state the journal does not hold.
    let tmp = TempDir::new().unwrap();
    {
        let (parent, kid) = nest(1);
        let (mut sched, _) = open_with(tmp.path(), |b| b.register(&parent).register(&kid));
        sched.spawn(&parent, ()).unwrap();
        sched.run_until_idle().unwrap();
    }
    let (parent, kid) = nest(2);
    let (mut sched, _) = open_with(tmp.path(), |b| b.register(&parent).register(&kid));
    sched.run_until_idle().unwrap();
    sched.send(Pid(0), 5).unwrap();
    sched.run_until_idle().unwrap();
    let held = sched
        .violations()
        .iter()
        .any(|v| v.pid == Pid(0) && v.step == 0);
    let result = sched.result_of::<u64>(Pid(0));
    assert!(
        held && result.is_none(),
        "the spawn's other argument is a violation, and the process is held: {result:?}, {:?}",
        sched.violations()
    );
    assert_eq!(sched.status(Pid(0)), Some(Status::Waiting(Wait::Held)));
}

/// `phase1` takes a message and moves to `phase2` with it plus `bump`; `phase2`
/// adds the next message.
fn phases(bump_by: u64) -> (Tpl<(), u64>, Tpl<u64, u64>) {
    let phase2 = Template::new("phase2", |ctx: &mut Ctx<u64>, a: u64| a + ctx.receive());
    let p2 = phase2.clone();
    let phase1 = Template::stepping("phase1", move |ctx: &mut Ctx<u64>, _: ()| {
        let a = ctx.receive();
        Step::Transition(Transition::to(&p2, a + bump_by))
    });
    (phase1, phase2)
}

#[test]
fn a_transition_with_other_arguments_is_not_run_on_with_them() {
    let tmp = TempDir::new().unwrap();
    {
        let (p1, p2) = phases(0);
        let (mut sched, _) = open_with(tmp.path(), |b| b.register(&p1).register(&p2));
        sched.spawn(&p1, ()).unwrap();
        sched.send(Pid(0), 1).unwrap();
        sched.run_until_idle().unwrap();
    }
    let (p1, p2) = phases(1);
    let (mut sched, _) = open_with(tmp.path(), |b| b.register(&p1).register(&p2));
    sched.run_until_idle().unwrap();
    sched.send(Pid(0), 10).unwrap();
    sched.run_until_idle().unwrap();
    let held = sched.violations().iter().any(|v| v.pid == Pid(0));
    let result = sched.result_of::<u64>(Pid(0));
    // The process restarts from its snapshot (the TRANSITION record): the changed
    // code before it does not run again, and the recorded argument stands.
    assert!(
        !held && result == Some(Ok(11)),
        "restarted from the snapshot with the recorded argument: {result:?}, {:?}",
        sched.violations()
    );
}

// ---------------------------------------------------------------------------------
// Registration.

#[test]
fn spawning_an_unregistered_template_is_refused() {
    let tmp = TempDir::new().unwrap();
    let known = Template::new("known", |ctx: &mut Ctx<u64>, _: ()| ctx.receive());
    let stranger = Template::new("stranger", |ctx: &mut Ctx<u64>, _: ()| ctx.receive());
    let s = stranger.clone();
    let spawner = Template::new("spawner", move |ctx: &mut Ctx<u64>, _: ()| {
        match ctx.spawn(&s, ()) {
            Err(SpawnError::Unregistered(name)) => name,
            other => format!("unexpected: {other:?}"),
        }
    });
    let (mut sched, _) = open_with(tmp.path(), |b| b.register(&known).register(&spawner));
    match sched.spawn(&stranger, ()) {
        Err(SpawnError::Unregistered(name)) => assert_eq!(name, "stranger"),
        other => panic!("expected Unregistered, got {other:?}"),
    }
    assert_eq!(sched.live(), 0);
    assert_eq!(
        sched.spawn(&known, ()).unwrap().pid(),
        Pid(0),
        "the refused spawn took no pid"
    );
    let h = sched.spawn(&spawner, ()).unwrap();
    sched.run_until_idle().unwrap();
    assert_eq!(
        sched.result(&h),
        Some(Ok("stranger".to_string())),
        "a process's spawn is refused too"
    );
}

#[test]
fn reopening_with_a_process_template_not_registered_is_refused() {
    let tmp = TempDir::new().unwrap();
    let worker = Template::new("worker", |ctx: &mut Ctx<u64>, _: ()| ctx.receive());
    let other = Template::new("other", |ctx: &mut Ctx<u64>, _: ()| ctx.receive());
    {
        let (mut sched, _) = open_with(tmp.path(), |b| b.register(&worker));
        sched.spawn(&worker, ()).unwrap();
        sched.run_until_idle().unwrap();
    }
    match DurableScheduler::<u64>::builder()
        .register(&other)
        .open(tmp.path())
    {
        Err(RecoveryError::Unregistered { pid, template }) => {
            assert_eq!((pid, template.as_str()), (Pid(0), "worker"));
        }
        Err(e) => panic!("expected Unregistered, got {e}"),
        Ok(_) => panic!("expected Unregistered, the journal was opened"),
    }
    // The refusal changed nothing and released the directory.
    let (mut sched, recovery) = open_with(tmp.path(), |b| b.register(&worker));
    assert_eq!(recovery.replayed, [Pid(0)]);
    sched.send(Pid(0), 7).unwrap();
    sched.run_until_idle().unwrap();
    assert_eq!(sched.result_of::<u64>(Pid(0)), Some(Ok(7)));
}

#[test]
fn reopening_with_a_child_template_not_registered_is_refused() {
    // Every template a durable scheduler runs must be registered; a live child's
    // is no exception.
    let tmp = TempDir::new().unwrap();
    let (parent, kid) = nest(1);
    {
        let (mut sched, _) = open_with(tmp.path(), |b| b.register(&parent).register(&kid));
        sched.spawn(&parent, ()).unwrap();
        sched.run_until_idle().unwrap();
    }
    match DurableScheduler::<u64>::builder()
        .register(&parent)
        .open(tmp.path())
    {
        Err(RecoveryError::Unregistered { pid, template }) => {
            assert_eq!((pid, template.as_str()), (Pid(1), "kid"));
        }
        Err(e) => panic!("expected Unregistered, got {e}"),
        Ok(_) => panic!("expected Unregistered, the journal was opened"),
    }
}

// ---------------------------------------------------------------------------------
// Transitions.

type Outcome2 = (Pid, u64, u64, Vec<u64>);

/// `first` (<0>) takes a message, runs an effect, spawns a child (<1>) that takes
/// two messages, waits for 3 and moves to `second` with the child's handle;
/// `second` waits for 2, runs an effect and joins the child.
struct Phases {
    effects: Arc<AtomicU64>,
    first: Template<u64, u64, u64, Outcome2>,
    second: Template<u64, u64, (u64, Child<Vec<u64>>), Outcome2>,
    kid: Template<u64, u64, (), Vec<u64>>,
}

impl Phases {
    fn new() -> Phases {
        let effects = counter();
        let kid = Template::new("two", |ctx: &mut Ctx<u64>, _: ()| {
            vec![ctx.receive(), ctx.receive()]
        });
        let e = effects.clone();
        let second = Template::new(
            "second",
            move |ctx: &mut Ctx<u64>, (acc, kid): (u64, Child<Vec<u64>>)| {
                let b = ctx.select(|m| *m == 2);
                let e = e.clone();
                let b = ctx.durable_effect(move || {
                    bump(&e);
                    b * 1000
                });
                (ctx.pid(), acc, b, ctx.join(kid).unwrap())
            },
        );
        let (e, k, s) = (effects.clone(), kid.clone(), second.clone());
        let first = Template::stepping("first", move |ctx: &mut Ctx<u64>, x: u64| {
            let a = ctx.receive();
            let e = e.clone();
            let a = ctx.durable_effect(move || {
                bump(&e);
                a * 10
            });
            let c = ctx.spawn(&k, ()).unwrap();
            ctx.select(|m| *m == 3);
            Step::Transition(Transition::to(&s, (x + a, c)))
        });
        Phases {
            effects,
            first,
            second,
            kid,
        }
    }

    fn open(&self, dir: &Path) -> (DurableScheduler<u64>, Recovery) {
        open_with(dir, |b| {
            b.register(&self.first)
                .register(&self.second)
                .register(&self.kid)
        })
    }

    /// 1, then 4 and 3 (the child takes both and ends; `first` moves to
    /// `second`), then 2; crashing (or not) before each batch.
    fn run(&self, crash: bool) -> Ended<Outcome2> {
        let tmp = TempDir::new().unwrap();
        let (mut sched, _) = self.open(tmp.path());
        sched.spawn(&self.first, 5).unwrap();
        for batch in [&[1][..], &[4, 3], &[2]] {
            if crash {
                drop(sched);
                let (s, recovery) = self.open(tmp.path());
                sched = s;
                assert_eq!(recovery.replayed, [Pid(0)]);
                sched.run_until_idle().unwrap();
            }
            for &m in batch {
                sched.send(Pid(0), m).unwrap();
            }
            sched.run_until_idle().unwrap();
        }
        assert!(sched.violations().is_empty(), "{:?}", sched.violations());
        sched.result_of(Pid(0))
    }
}

#[test]
fn a_transition_keeps_pid_inbox_and_children_across_crashes() {
    let expected = Some(Ok((Pid(0), 15, 2000, vec![4, 3])));
    let phases = Phases::new();
    assert_eq!(phases.run(false), expected);
    assert_eq!(get(&phases.effects), 2);
    let phases = Phases::new();
    assert_eq!(phases.run(true), expected);
    assert_eq!(get(&phases.effects), 2, "no effect ran again");
}

// ---------------------------------------------------------------------------------
// Pids.

fn idle() -> Template<u64, u64, (), u64> {
    Template::new("idle", |ctx: &mut Ctx<u64>, _: ()| ctx.receive())
}

#[test]
fn pids_after_reopening_continue_after_the_largest_journaled_one() {
    let tmp = TempDir::new().unwrap();
    let (parent, kid) = nest(1);
    let wait = idle();
    let open = || {
        open_with(tmp.path(), |b| {
            b.register(&parent).register(&kid).register(&wait)
        })
    };
    {
        let (mut sched, _) = open();
        assert_eq!(sched.spawn(&wait, ()).unwrap().pid(), Pid(0));
        assert_eq!(sched.spawn(&parent, ()).unwrap().pid(), Pid(1));
        sched.run_until_idle().unwrap(); // its child is <2>
        assert_eq!(sched.status(Pid(2)), Some(Status::Waiting(Wait::Message)));
        // <3> ends and its result is taken before the crash.
        let last = sched.spawn(&wait, ()).unwrap();
        assert_eq!(last.pid(), Pid(3));
        sched.send(last.pid(), 9).unwrap();
        sched.run_until_idle().unwrap();
        assert_eq!(sched.result(&last), Some(Ok(9)));
    }
    {
        let (mut sched, _) = open();
        assert_eq!(sched.spawn(&wait, ()).unwrap().pid(), Pid(4));
        sched.run_until_idle().unwrap();
    }
    let (mut sched, _) = open();
    sched.run_until_idle().unwrap();
    let p = sched.spawn(&parent, ()).unwrap();
    assert_eq!(p.pid(), Pid(5));
    sched.run_until_idle().unwrap();
    assert_eq!(
        sched.status(Pid(6)),
        Some(Status::Waiting(Wait::Message)),
        "a child spawned after reopening gets a new pid too"
    );
    sched.send(p.pid(), 4).unwrap();
    sched.run_until_idle().unwrap();
    assert_eq!(sched.result(&p), Some(Ok(8)));
}

#[test]
fn pids_are_not_reused_once_old_segments_are_released() {
    // Small segments: the journal releases those no process needs any more.
    let tmp = TempDir::new().unwrap();
    let wait = idle();
    let open = || {
        DurableScheduler::<u64>::builder()
            .register(&wait)
            .options(JournalOptions::default().segment_size(64))
            .open(tmp.path())
            .unwrap()
    };
    {
        let (mut sched, _) = open();
        let h = sched.spawn(&wait, ()).unwrap();
        assert_eq!(h.pid(), Pid(0));
        sched.send(h.pid(), 1).unwrap();
        sched.run_until_idle().unwrap();
        assert_eq!(sched.result(&h), Some(Ok(1)));
        sched.run_until_idle().unwrap();
    }
    let (mut sched, _) = open();
    assert_eq!(sched.spawn(&wait, ()).unwrap().pid(), Pid(1));
}

// ---------------------------------------------------------------------------------
// Journal faults.

/// Options whose segment syncs fail while `fail` is set.
fn failing_sync(fail: Arc<AtomicBool>) -> JournalOptions {
    JournalOptions::default().io_hook(move |op, _| {
        if op == IoOp::Sync && fail.load(Ordering::SeqCst) {
            Err(io::Error::other("injected fdatasync failure"))
        } else {
            Ok(())
        }
    })
}

/// Takes three messages, each through an effect.
fn collector(effects: Arc<AtomicU64>) -> Template<u64, u64, (), Vec<u64>> {
    Template::new("collector", move |ctx: &mut Ctx<u64>, _: ()| {
        (0..3)
            .map(|_| {
                let x = ctx.receive();
                let effects = effects.clone();
                ctx.durable_effect(move || {
                    bump(&effects);
                    x * 10
                })
            })
            .collect()
    })
}

fn assert_sync_error(result: Result<impl std::fmt::Debug, JournalError>, dir: &Path) {
    match result {
        Err(JournalError::Sync { file, source }) => {
            assert!(file.starts_with(dir), "{}", file.display());
            assert_eq!(source.to_string(), "injected fdatasync failure");
        }
        other => panic!("expected a Sync error, got {other:?}"),
    }
}

/// Opens a collector with failing syncs, runs it on 1, then makes the syncs fail
/// and sends 2; `step` runs the scheduler (update or run_until_idle).
fn sync_failure_case<T: std::fmt::Debug>(
    step: impl Fn(&mut DurableScheduler<u64>) -> Result<T, JournalError>,
) {
    let tmp = TempDir::new().unwrap();
    let effects = counter();
    let t = collector(effects.clone());
    let fail = Arc::new(AtomicBool::new(false));
    {
        let (mut sched, _) = DurableScheduler::<u64>::builder()
            .register(&t)
            .options(failing_sync(fail.clone()))
            .open(tmp.path())
            .unwrap();
        sched.spawn(&t, ()).unwrap();
        sched.send(Pid(0), 1).unwrap();
        sched.run_until_idle().unwrap();
        assert_eq!(get(&effects), 1);

        fail.store(true, Ordering::SeqCst);
        sched.send(Pid(0), 2).unwrap();
        assert_sync_error(step(&mut sched), tmp.path());
        // The second effect waited for the take of 2 to be durable, which the
        // failed commit never made it: it did not run.
        assert_eq!(get(&effects), 1, "an effect ran on an input not on disk");

        // Stopped for good: not retried, even once syncs would work again.
        fail.store(false, Ordering::SeqCst);
        assert!(matches!(sched.update(), Err(JournalError::Poisoned)));
        // Nothing is taken in any more: the message comes back, no spawn is made.
        assert_eq!(
            sched.send(Pid(0), 3),
            Err(chronoflow::SendError::Stopped(3))
        );
        assert!(matches!(
            sched.spawn(&t, ()),
            Err(chronoflow::SpawnError::Stopped)
        ));
        assert!(sched.is_stopped());
        assert!(matches!(sched.update(), Err(JournalError::Poisoned)));
        assert!(matches!(
            sched.run_until_idle(),
            Err(JournalError::Poisoned)
        ));
        assert_eq!(get(&effects), 1, "nothing ran after the error");
        assert_eq!(sched.result_of::<Vec<u64>>(Pid(0)), None);
    }
    // Reopening recovers what reached the disk, and the process carries on.
    let (mut sched, recovery) = open_with(tmp.path(), |b| b.register(&t));
    assert_eq!(recovery.replayed, [Pid(0)]);
    sched.run_until_idle().unwrap();
    sched.send(Pid(0), 3).unwrap();
    sched.run_until_idle().unwrap();
    assert_eq!(
        sched.result_of::<Vec<u64>>(Pid(0)),
        Some(Ok(vec![10, 20, 30]))
    );
}

#[test]
fn a_failed_fsync_stops_update_for_good() {
    sync_failure_case(|s| s.update());
}

#[test]
fn a_failed_fsync_stops_run_until_idle_for_good() {
    sync_failure_case(|s| s.run_until_idle());
}

#[test]
fn a_torn_tail_is_cut_and_the_lost_effect_runs_again() {
    let tmp = TempDir::new().unwrap();
    let effects = counter();
    let t = collector(effects.clone());
    {
        let (mut sched, _) = open_with(tmp.path(), |b| b.register(&t));
        sched.spawn(&t, ()).unwrap();
        for m in [1, 2] {
            sched.send(Pid(0), m).unwrap();
            sched.run_until_idle().unwrap();
        }
        assert_eq!(get(&effects), 2);
    }
    // The last record is the second effect's result: cut its last 3 bytes.
    let segment = last_segment(tmp.path());
    let len = file_len(&segment);
    truncate(&segment, len - 3);

    let (mut sched, recovery) = open_with(tmp.path(), |b| b.register(&t));
    let cut = recovery.truncated.clone().expect("a torn tail is reported");
    assert_eq!(cut.file, segment);
    assert_eq!(cut.offset + cut.bytes, len - 3);
    assert_eq!(file_len(&segment), cut.offset);
    assert_eq!(recovery.replayed, [Pid(0)]);
    sched.run_until_idle().unwrap();
    assert_eq!(
        get(&effects),
        3,
        "the effect whose record was cut ran again"
    );
    sched.send(Pid(0), 3).unwrap();
    sched.run_until_idle().unwrap();
    assert!(sched.violations().is_empty(), "{:?}", sched.violations());
    assert_eq!(
        sched.result_of::<Vec<u64>>(Pid(0)),
        Some(Ok(vec![10, 20, 30]))
    );
    assert_eq!(get(&effects), 4);
}

/// Takes two messages, each through an effect, and sends what it makes to `sink`.
fn relay() -> Template<u64, u64, Pid, ()> {
    Template::new("relay", |ctx: &mut Ctx<u64>, sink: Pid| {
        for _ in 0..2 {
            let x = ctx.receive();
            let y = ctx.durable_effect(move || x * 10);
            ctx.send_to(sink, y);
        }
    })
}

#[test]
fn a_torn_tail_anywhere_in_a_pass_neither_loses_nor_duplicates_a_message() {
    // A crash can tear the last commit's write at any byte. Whatever survives, the
    // relay's message to the sink must arrive exactly once.
    let tmp = TempDir::new().unwrap();
    let (r, s) = (relay(), sink());
    let (start, end) = {
        let (mut sched, _) = open_with(tmp.path(), |b| b.register(&r).register(&s));
        sched.spawn(&s, ()).unwrap();
        sched.spawn(&r, Pid(0)).unwrap();
        sched.run_until_idle().unwrap();
        let before = file_len(&last_segment(tmp.path()));
        sched.send(Pid(1), 1).unwrap();
        sched.run_until_idle().unwrap();
        (before, file_len(&last_segment(tmp.path())))
    };
    // The first record after `start` is the delivery of 1, from outside: a cut
    // that loses it loses an input nobody has been told is durable. Cut after it.
    let segment = last_segment(tmp.path());
    let bytes = fs::read(&segment).unwrap();
    let at = start as usize;
    let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as u64;
    let delivered = start + FRAME_HEADER_LEN + len;
    assert!(delivered < end);

    let mut wrong = Vec::new();
    for cut in delivered..=end {
        let copy = copy_journal(tmp.path());
        truncate(&copy.path().join(segment.file_name().unwrap()), cut);
        let (mut sched, _) = open_with(copy.path(), |b| b.register(&r).register(&s));
        sched.run_until_idle().unwrap();
        sched.send(Pid(1), 2).unwrap();
        sched.run_until_idle().unwrap();
        let got = sched.result_of::<Vec<u64>>(Pid(0));
        if got != Some(Ok(vec![10, 20])) || !sched.violations().is_empty() {
            wrong.push((cut, got, sched.violations().to_vec()));
        }
    }
    let wrong: Vec<String> = wrong
        .iter()
        .map(|(cut, got, v)| format!("cut at byte {cut}: sink got {got:?}, violations {v:?}"))
        .collect();
    assert!(
        wrong.is_empty(),
        "of the cuts {delivered}..={end}:\n{}",
        wrong.join("\n")
    );
}

// ---------------------------------------------------------------------------------
// What a process observes of its inbox is the same after a crash.

#[test]
fn a_try_receive_that_found_nothing_finds_nothing_in_replay() {
    let peek = Template::new("peek", |ctx: &mut Ctx<u64>, _: ()| {
        let first = ctx.try_receive();
        (first, ctx.receive())
    });
    let first_run = |dir: &Path| {
        let (mut sched, _) = open_with(dir, |b| b.register(&peek));
        sched.spawn(&peek, ()).unwrap();
        sched.run_until_idle().unwrap(); // found nothing, waits in receive
    };

    // A message sent right after reopening is for the receive, not the try_receive.
    let tmp = TempDir::new().unwrap();
    first_run(tmp.path());
    let (mut sched, _) = open_with(tmp.path(), |b| b.register(&peek));
    sched.send(Pid(0), 5).unwrap();
    sched.run_until_idle().unwrap();
    assert!(sched.violations().is_empty(), "{:?}", sched.violations());
    assert_eq!(
        sched.result_of::<(Option<u64>, u64)>(Pid(0)),
        Some(Ok((None, 5)))
    );

    // Replaying it journals nothing new: a second crash replays the same.
    let tmp = TempDir::new().unwrap();
    first_run(tmp.path());
    for _ in 0..2 {
        let (mut sched, _) = open_with(tmp.path(), |b| b.register(&peek));
        sched.run_until_idle().unwrap();
        assert!(sched.violations().is_empty(), "{:?}", sched.violations());
    }
    let (mut sched, _) = open_with(tmp.path(), |b| b.register(&peek));
    sched.run_until_idle().unwrap();
    sched.send(Pid(0), 5).unwrap();
    sched.run_until_idle().unwrap();
    assert!(sched.violations().is_empty(), "{:?}", sched.violations());
    assert_eq!(
        sched.result_of::<(Option<u64>, u64)>(Pid(0)),
        Some(Ok((None, 5)))
    );
}

/// Waits for GO in an inbox of capacity 2 that drops its oldest message when full,
/// then returns what it receives until 99.
fn gated() -> Template<u64, u64, (), Vec<u64>> {
    Template::new("gated", |ctx: &mut Ctx<u64>, _: ()| {
        ctx.select(|m| *m == GO);
        let mut rest = Vec::new();
        loop {
            match ctx.receive() {
                99 => return rest,
                m => rest.push(m),
            }
        }
    })
    .capacity(2)
    .overflow(Overflow::DropOldest)
}

fn run_gated(crash: bool) -> Ended<Vec<u64>> {
    let tmp = TempDir::new().unwrap();
    let t = gated();
    let (mut sched, _) = open_with(tmp.path(), |b| b.register(&t));
    sched.spawn(&t, ()).unwrap();
    sched.send(Pid(0), 1).unwrap();
    sched.send(Pid(0), 2).unwrap();
    sched.run_until_idle().unwrap(); // the inbox is full: [1, 2]
    if crash {
        drop(sched);
        sched = open_with(tmp.path(), |b| b.register(&t)).0;
    }
    sched.send(Pid(0), 3).unwrap(); // drops 1
    sched.send(Pid(0), GO).unwrap(); // drops 2
    sched.run_until_idle().unwrap();
    sched.send(Pid(0), 99).unwrap();
    sched.run_until_idle().unwrap();
    sched.result_of(Pid(0))
}

#[test]
fn a_rebuilt_inbox_keeps_its_capacity_and_overflow_policy() {
    assert_eq!(run_gated(false), Some(Ok(vec![3])));
    assert_eq!(run_gated(true), Some(Ok(vec![3])));
}

fn run_counting(crash: bool) -> (Ended<Vec<u64>>, usize) {
    // Takes a message, then as many more as its inbox holds at that moment, then
    // waits for GO.
    let t = Template::new("counting", |ctx: &mut Ctx<u64>, _: ()| {
        ctx.receive();
        let n = ctx.inbox_len();
        let got: Vec<u64> = (0..n).map(|_| ctx.receive()).collect();
        ctx.select(|m| *m == GO);
        got
    });
    let tmp = TempDir::new().unwrap();
    let (mut sched, _) = open_with(tmp.path(), |b| b.register(&t));
    sched.spawn(&t, ()).unwrap();
    for m in [7, 1, 2] {
        sched.send(Pid(0), m).unwrap();
    }
    sched.run_until_idle().unwrap();
    if crash {
        drop(sched);
        sched = open_with(tmp.path(), |b| b.register(&t)).0;
        sched.run_until_idle().unwrap();
    }
    sched.send(Pid(0), GO).unwrap();
    sched.run_until_idle().unwrap();
    (sched.result_of(Pid(0)), sched.violations().len())
}

#[test]
fn inbox_len_in_replay_is_what_it_was() {
    assert_eq!(run_counting(false), (Some(Ok(vec![1, 2])), 0));
    assert_eq!(run_counting(true), (Some(Ok(vec![1, 2])), 0));
}

#[test]
fn undelivered_messages_not_yet_taken_survive_a_crash() {
    let stray = Template::new("stray", |ctx: &mut Ctx<u64>, _: ()| {
        ctx.send_to(Pid(99), 7);
        ctx.receive()
    });
    let tmp = TempDir::new().unwrap();
    {
        let (mut sched, _) = open_with(tmp.path(), |b| b.register(&stray));
        sched.spawn(&stray, ()).unwrap();
        sched.run_until_idle().unwrap();
        // The owner has not read them back when the program crashes.
    }
    let (mut sched, _) = open_with(tmp.path(), |b| b.register(&stray));
    sched.run_until_idle().unwrap();
    let kept = sched.take_undelivered();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(
        (kept[0].from, kept[0].to, kept[0].reason, kept[0].msg),
        (
            Some(Pid(0)),
            Some(Pid(99)),
            UndeliveredReason::UnknownPid,
            7
        )
    );
}

#[test]
fn a_created_process_is_rebuilt_created_with_its_inbox() {
    let tmp = TempDir::new().unwrap();
    let wait = idle();
    {
        let (mut sched, _) = open_with(tmp.path(), |b| b.register(&wait));
        sched.create(&wait, ()).unwrap();
        sched.send(Pid(0), 4).unwrap();
        sched.run_until_idle().unwrap();
    }
    let (mut sched, recovery) = open_with(tmp.path(), |b| b.register(&wait));
    assert!(recovery.replayed.is_empty() && recovery.fast_forwarded.is_empty());
    assert_eq!(sched.status(Pid(0)), Some(Status::Created));
    sched.start(Pid(0)).unwrap();
    sched.run_until_idle().unwrap();
    assert_eq!(sched.result_of::<u64>(Pid(0)), Some(Ok(4)));
}

#[test]
fn a_plain_effect_in_a_durable_process_is_held_before_it_runs() {
    // `Ctx::effect` need not return a serde type, so it cannot be journaled: a
    // durable process that calls it is held, and `f` never runs.
    let dir = TempDir::new().unwrap();
    let ran = counter();
    let r = ran.clone();
    let t = Template::new("plain", move |ctx: &mut Ctx<u64>, _: ()| {
        ctx.effect(|| bump(&r));
    });
    let (mut sched, _) = DurableScheduler::builder()
        .register(&t)
        .open(dir.path())
        .unwrap();
    let h = sched.spawn(&t, ()).unwrap();
    sched.run_until_idle().unwrap();
    assert_eq!(get(&ran), 0);
    assert_eq!(sched.status(h.pid()), Some(Status::Waiting(Wait::Held)));
    let v = &sched.violations()[0];
    assert_eq!(v.pid, h.pid());
    assert!(v.recorded.contains("Ctx::durable_effect"), "{v:?}");
}
