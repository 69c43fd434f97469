//! Random process programs, crashed at a random point and reopened, end exactly as
//! an uninterrupted run of the same programs does: same results, no message lost
//! or duplicated, no violation; and an effect that ran before the last commit
//! before the crash does not run again.
//!
//! The programs can be compared across runs because they are deterministic
//! whatever the scheduling (a Kahn network): every message carries its sender,
//! each receive selects the oldest message of one given sender, and messages
//! between two processes keep their order. A child starts with its parent's
//! unconsumed inbox and gets whatever its parent gets, so it sees, per sender, the
//! messages after those its parent took before spawning it.
//!
//! Each program is crashed at every pass of its run, in both ways.
//!
//! A run: spawn the top-level processes, send each its outside messages, run until
//! idle, send each STOP (which every top-level process waits for last, so that
//! none ends while another may still send to it), run until idle. A crash is
//! either a drop of the scheduler after K passes, or a pass whose journal write
//! fails (its records are lost, as in a crash before the commit): then reopen and
//! go on where the run was, sending again what the lost pass lost. Half the runs
//! use small journal segments, so that segments no process needs any more are
//! released during the run.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use chronoflow::journal::{DEFAULT_SEGMENT_SIZE, IoOp, JournalOptions, SyncPolicy};
use chronoflow::{
    Ctx, DurableScheduler, ExitError, Pid, Recovery, SendError, Status, Step, Template, Transition,
};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use serde::{Deserialize, Serialize};
use tempfile::TempDir;

/// A message and the process that sent it (a top-level index, or `EXT` / `STOP`
/// from outside).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Msg {
    src: u64,
    val: u64,
}

const EXT: u64 = 1000;
const STOP: u64 = 1001;

#[derive(Debug, Clone)]
enum Op {
    /// Take the oldest message from this sender (`EXT` or a top-level index).
    Recv(u64),
    /// An effect returning this value plus the running hash.
    Effect(u64),
    /// Send this value plus the running hash to this top-level process.
    Send(usize, u64),
    /// Spawn a child running these ops (receives and effects only), then join it.
    Child(Vec<Op>),
    /// Move to the top-level template again (a transition), with the state and
    /// the position as arguments.
    Transition,
}

/// An effect: its top-level process, its op, and its op in the child (or
/// `usize::MAX`).
type EffectId = (usize, usize, usize);
type Counts = Arc<Mutex<BTreeMap<EffectId, u64>>>;
type Trace = Vec<u64>;

fn mix(acc: u64, v: u64) -> u64 {
    acc.wrapping_mul(31).wrapping_add(v)
}

/// The programs and their templates.
struct World {
    programs: Arc<Vec<Vec<Op>>>,
    outside: Vec<Vec<u64>>,
    counts: Counts,
    top: Template<Msg, Msg, TopArgs, Trace>,
    /// Holds `top`, which reaches itself through a `Weak` to this: no reference
    /// cycle leaks it (LeakSanitizer checks, in CI).
    _itself: Arc<OnceLock<Template<Msg, Msg, TopArgs, Trace>>>,
    child: Template<Msg, Msg, (usize, usize), Trace>,
    /// The journal's segment size: small ones make the journal release old
    /// segments during the run.
    segment_size: u64,
}

/// Runs `ops` from `from`; stops at a transition and returns its position.
#[allow(clippy::too_many_arguments)]
fn run_ops(
    ctx: &mut Ctx<Msg>,
    ops: &[Op],
    from: usize,
    counts: &Counts,
    id: impl Fn(usize) -> EffectId,
    acc: &mut u64,
    trace: &mut Trace,
    mut child: impl FnMut(&mut Ctx<Msg>, usize) -> Trace,
) -> Option<usize> {
    for (k, op) in ops.iter().enumerate().skip(from) {
        match op {
            Op::Recv(src) => {
                let src = *src;
                let m = ctx.select(move |m| m.src == src);
                *acc = mix(*acc, m.val);
                trace.push(m.val);
            }
            Op::Effect(v) => {
                let (counts, id, value) = (counts.clone(), id(k), v.wrapping_add(*acc));
                let r = ctx.durable_effect(move || {
                    *counts.lock().unwrap().entry(id).or_default() += 1;
                    value
                });
                *acc = mix(*acc, r);
                trace.push(r);
            }
            Op::Send(to, v) => {
                let src = id(k).0 as u64;
                ctx.send_to(
                    Pid(*to as u64),
                    Msg {
                        src,
                        val: v.wrapping_add(*acc),
                    },
                );
            }
            Op::Child(_) => {
                let got = child(ctx, k);
                for v in got {
                    *acc = mix(*acc, v);
                    trace.push(v);
                }
            }
            Op::Transition => return Some(k),
        }
    }
    None
}

/// A top-level process's arguments: its index, where it starts in its program,
/// its running hash and its trace so far.
type TopArgs = (usize, usize, u64, Trace);

impl World {
    fn new(programs: Vec<Vec<Op>>, outside: Vec<Vec<u64>>, segment_size: u64) -> World {
        let programs = Arc::new(programs);
        let counts: Counts = Arc::default();
        let (p, c) = (programs.clone(), counts.clone());
        let child = Template::new(
            "child",
            move |ctx: &mut Ctx<Msg>, (top, at): (usize, usize)| {
                let Op::Child(ops) = &p[top][at] else {
                    unreachable!("a child's op")
                };
                let (mut acc, mut trace) = (7, Vec::new());
                let id = |k| (top, at, k);
                let no_child = |_: &mut Ctx<Msg>, _| unreachable!("children do not spawn");
                let stop = run_ops(ctx, ops, 0, &c, id, &mut acc, &mut trace, no_child);
                assert_eq!(stop, None, "children do not transition");
                trace
            },
        );
        let (p, c, ch) = (programs.clone(), counts.clone(), child.clone());
        let itself: Arc<OnceLock<Template<Msg, Msg, TopArgs, Trace>>> = Arc::default();
        let next = Arc::downgrade(&itself);
        let top = Template::stepping(
            "top",
            move |ctx: &mut Ctx<Msg>, (me, from, mut acc, mut trace): TopArgs| {
                let id = |k| (me, k, usize::MAX);
                let spawn_join = |ctx: &mut Ctx<Msg>, k: usize| {
                    let c = ctx.spawn(&ch, (me, k)).expect("spawn a child");
                    ctx.join(c).expect("the child ends")
                };
                let stop = run_ops(ctx, &p[me], from, &c, id, &mut acc, &mut trace, spawn_join);
                if let Some(k) = stop {
                    let next = next.upgrade().expect("the world holds it");
                    let top = next.get().expect("set below");
                    return Step::Transition(Transition::to(top, (me, k + 1, acc, trace)));
                }
                ctx.select(|m| m.src == STOP);
                Step::Done(trace)
            },
        );
        itself.set(top.clone()).expect("set once");
        World {
            programs,
            outside,
            counts,
            top,
            _itself: itself,
            child,
            segment_size,
        }
    }

    fn open(&self, dir: &Path, fail_writes: &Arc<AtomicBool>) -> (DurableScheduler<Msg>, Recovery) {
        let fail = fail_writes.clone();
        let options = JournalOptions::default()
            .segment_size(self.segment_size)
            .sync(SyncPolicy::Never)
            .io_hook(move |op, _| {
                if op == IoOp::Write && fail.load(Ordering::SeqCst) {
                    Err(io::Error::other("the program died"))
                } else {
                    Ok(())
                }
            });
        DurableScheduler::<Msg>::builder()
            .register(&self.top)
            .register(&self.child)
            .options(options)
            .open(dir)
            .unwrap()
    }

    /// Spawns the top-level processes (<0>, <1>, ...) and sends their outside
    /// messages.
    fn start(&self, sched: &mut DurableScheduler<Msg>) {
        for me in 0..self.programs.len() {
            let args = (me, 0, me as u64, Vec::new());
            assert_eq!(sched.spawn(&self.top, args).unwrap().pid(), Pid(me as u64));
            for &val in &self.outside[me] {
                sched.send(Pid(me as u64), Msg { src: EXT, val }).unwrap();
            }
        }
    }

    fn stop(&self, sched: &mut DurableScheduler<Msg>) {
        for me in 0..self.programs.len() {
            sched
                .send(Pid(me as u64), Msg { src: STOP, val: 0 })
                .unwrap();
        }
    }

    /// Sends STOP again after a crash that may have lost it: records appended since
    /// the last commit may or may not have reached the disk (a segment roll-over
    /// writes them early), so a process may have got its STOP and ended.
    fn stop_again(&self, sched: &mut DurableScheduler<Msg>) {
        for me in 0..self.programs.len() {
            let pid = Pid(me as u64);
            match sched.send(pid, Msg { src: STOP, val: 0 }) {
                Ok(()) => {}
                Err(SendError::UnknownPid(..)) => {
                    assert_eq!(sched.status(pid), Some(Status::Stopped), "{pid} ended");
                }
                Err(e) => panic!("{e}"),
            }
        }
    }

    fn counts(&self) -> BTreeMap<EffectId, u64> {
        self.counts.lock().unwrap().clone()
    }

    fn outcome(&self, sched: &mut DurableScheduler<Msg>) -> Outcome {
        Outcome {
            results: (0..self.programs.len())
                .map(|me| sched.result_of::<Trace>(Pid(me as u64)))
                .collect(),
            effects: self.counts().into_keys().collect(),
            undelivered: sched
                .take_undelivered()
                .into_iter()
                .map(|u| (u.from, u.to, u.msg))
                .collect(),
            violations: sched.violations().iter().map(|v| v.to_string()).collect(),
        }
    }
}

#[derive(Debug, PartialEq)]
struct Outcome {
    results: Vec<Option<Result<Trace, ExitError>>>,
    /// The effects that ran (whatever the number of times).
    effects: Vec<EffectId>,
    undelivered: Vec<(Option<Pid>, Option<Pid>, Msg)>,
    violations: Vec<String>,
}

/// Returns the outcome and the number of passes (`update` calls) of the run.
fn uninterrupted(world: &World) -> (Outcome, usize) {
    let tmp = TempDir::new().unwrap();
    let (mut sched, _) = world.open(tmp.path(), &Arc::default());
    world.start(&mut sched);
    let mut passes = 0;
    for stop in [true, false] {
        loop {
            passes += 1;
            if sched.update().unwrap().is_idle() {
                break;
            }
        }
        if stop {
            world.stop(&mut sched);
        }
    }
    (world.outcome(&mut sched), passes)
}

/// Runs with a crash after `passes` passes: a drop, or (`failed_write`) one more
/// pass whose journal write fails (after at least one committed pass, so that
/// the spawns are on disk). Returns the outcome and the effect counts at the last
/// commit before the crash.
fn crashed(world: &World, passes: usize, failed_write: bool) -> (Outcome, BTreeMap<EffectId, u64>) {
    let passes = if failed_write { passes.max(1) } else { passes };
    let tmp = TempDir::new().unwrap();
    let fail = Arc::new(AtomicBool::new(false));
    let (mut sched, _) = world.open(tmp.path(), &fail);
    world.start(&mut sched);
    let mut stopped = false;
    // Passes committed since STOP was sent: with one, STOP is durable.
    let mut since_stop = 0;
    for _ in 0..passes {
        let pass = sched.update().unwrap();
        if stopped {
            since_stop += 1;
        }
        if pass.is_idle() {
            if stopped {
                break;
            }
            world.stop(&mut sched);
            stopped = true;
        }
    }
    let committed = world.counts();
    // STOP was sent and may not be on disk: send it again after reopening.
    let mut resend = false;
    if failed_write {
        fail.store(true, Ordering::SeqCst);
        resend = sched.update().is_err() && stopped && since_stop == 0;
    }
    drop(sched);
    fail.store(false, Ordering::SeqCst);

    let (mut sched, recovery) = world.open(tmp.path(), &fail);
    assert!(recovery.records > 0, "the spawns were committed");
    sched.run_until_idle().unwrap();
    if resend {
        world.stop_again(&mut sched);
        sched.run_until_idle().unwrap();
    } else if !stopped {
        world.stop(&mut sched);
        sched.run_until_idle().unwrap();
    }
    (world.outcome(&mut sched), committed)
}

/// One step of the witness schedule the programs are built from.
#[derive(Debug, Clone)]
enum Event {
    /// `from` sends `val` to `to`, which takes it.
    Msg {
        from: usize,
        to: usize,
        val: u64,
    },
    /// `to` gets `val` from outside and takes it.
    Outside {
        to: usize,
        val: u64,
    },
    Effect {
        at: usize,
        val: u64,
    },
    Transition {
        at: usize,
    },
    /// `at` spawns a child that takes `takes` messages from `src` (outside when
    /// `src` is `at`), with an effect before each, and joins it; `src` sends them
    /// to `at` right after the spawn.
    Child {
        at: usize,
        src: usize,
        takes: usize,
        val: u64,
    },
}

/// Builds each process's program from the events, in order. Executed in the
/// events' order, every receive finds its message: the programs cannot deadlock.
fn programs_of(tops: usize, events: &[Event]) -> (Vec<Vec<Op>>, Vec<Vec<u64>>) {
    let mut programs = vec![Vec::new(); tops];
    let mut outside = vec![Vec::new(); tops];
    for event in events {
        match *event {
            Event::Msg { from, to, val } => {
                programs[from].push(Op::Send(to, val));
                programs[to].push(Op::Recv(from as u64));
            }
            Event::Outside { to, val } => {
                outside[to].push(val);
                programs[to].push(Op::Recv(EXT));
            }
            Event::Effect { at, val } => programs[at].push(Op::Effect(val)),
            Event::Transition { at } => programs[at].push(Op::Transition),
            Event::Child {
                at,
                src,
                takes,
                val,
            } => {
                let from = if src == at { EXT } else { src as u64 };
                let mut ops = Vec::new();
                for k in 0..takes {
                    ops.push(Op::Effect(val + k as u64));
                    ops.push(Op::Recv(from));
                    if src == at {
                        outside[at].push(val + k as u64);
                    } else {
                        programs[src].push(Op::Send(at, val + k as u64));
                    }
                }
                programs[at].push(Op::Child(ops));
            }
        }
    }
    (programs, outside)
}

fn world_strategy() -> impl Strategy<Value = (usize, Vec<Event>)> {
    (1usize..=3).prop_flat_map(|tops| {
        let p = 0..tops;
        let event = prop_oneof![
            4 => (p.clone(), p.clone(), 0..100u64)
                .prop_map(|(from, to, val)| Event::Msg { from, to, val }),
            1 => (p.clone(), 0..100u64).prop_map(|(to, val)| Event::Outside { to, val }),
            2 => (p.clone(), 0..100u64).prop_map(|(at, val)| Event::Effect { at, val }),
            1 => p.clone().prop_map(|at| Event::Transition { at }),
            2 => (p.clone(), p, 1usize..3, 0..100u64).prop_map(|(at, src, takes, val)| {
                Event::Child { at, src, takes, val }
            }),
        ];
        (Just(tops), prop::collection::vec(event, 0..12))
    })
}

proptest! {
    // A fixed seed: the same cases every run.
    #![proptest_config(ProptestConfig {
        cases: 32,
        failure_persistence: None,
        // Each candidate runs every crash point: keep a failure's shrinking short.
        max_shrink_iters: 128,
        rng_seed: RngSeed::Fixed(0x005e_edd0_ab1e),
        ..ProptestConfig::default()
    })]

    #[test]
    fn a_crash_anywhere_ends_as_an_uninterrupted_run(
        (tops, events) in world_strategy(),
        small_segments in any::<bool>(),
    ) {
        let segment_size = if small_segments { 1024 } else { DEFAULT_SEGMENT_SIZE };
        let (programs, outside) = programs_of(tops, &events);
        let (expected, passes) =
            uninterrupted(&World::new(programs.clone(), outside.clone(), segment_size));
        prop_assert!(expected.violations.is_empty());
        prop_assert!(
            expected.results.iter().all(|r| matches!(r, Some(Ok(_)))),
            "the events' order is a schedule: every process ends: {:?}",
            expected
        );

        // Every crash point, both kinds of crash.
        for crash_at in 0..=passes {
            for failed_write in [false, true] {
                let world = World::new(programs.clone(), outside.clone(), segment_size);
                let (outcome, committed) = crashed(&world, crash_at, failed_write);
                prop_assert_eq!(
                    &outcome,
                    &expected,
                    "crash after {} passes, failed write: {}",
                    crash_at,
                    failed_write
                );
                for (id, &n) in &world.counts() {
                    if committed.contains_key(id) {
                        prop_assert_eq!(n, 1, "effect {:?} ran before the last commit, and again", id);
                    } else {
                        prop_assert!(n <= 2, "effect {:?} ran {} times for one crash", id, n);
                    }
                    if !failed_write {
                        prop_assert_eq!(n, 1, "effect {:?}: no record was lost, yet it ran again", id);
                    }
                }
            }
        }
    }
}
