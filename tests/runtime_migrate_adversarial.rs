#![feature(coroutines)]
//! Adversarial tests of migration: per-sender order when both ends move,
//! back-pressure on a moved sender, and contexts used where they must not
//! work.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chronoflow::runtime::{Joiner, Placement, Runtime};
use chronoflow::stackless::{receive, send_to, yield_now};
use chronoflow::{Pid, StacklessCtx, StacklessTemplate};

const PATIENCE: Duration = Duration::from_secs(4);

#[derive(Debug, Clone)]
enum Msg {
    Seq(u64),
    Stop,
}

fn core_name() -> String {
    std::thread::current().name().unwrap_or("?").to_string()
}

fn spin_for(mut x: u64, time: Duration) -> u64 {
    let start = Instant::now();
    while start.elapsed() < time {
        for _ in 0..100 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
    }
    std::hint::black_box(x)
}

/// A spinner that never moves: turns of `turn`, until `done`.
fn stayer() -> StacklessTemplate<Msg, Msg, (Duration, Arc<AtomicBool>), ()> {
    StacklessTemplate::new(
        "stayer",
        |_cx: StacklessCtx<Msg>, (turn, done): (Duration, Arc<AtomicBool>)| {
            #[coroutine]
            move || {
                let mut x = 1;
                while !done.load(Ordering::Relaxed) {
                    x = spin_for(x, turn);
                    yield_now!();
                }
                std::hint::black_box(x);
            }
        },
    )
}

/// Spawns `n` stayers (turns of `turn` until `done`) on core `core`.
fn stayers(rt: &Runtime<Msg>, core: usize, n: usize, turn: Duration, done: &Arc<AtomicBool>) {
    for _ in 0..n {
        rt.spawn_at(Placement::Core(core), &stayer(), (turn, done.clone()))
            .unwrap();
    }
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while !cond() {
        if start.elapsed() > PATIENCE {
            eprintln!("waited too long for {what}");
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

/// Always ready; takes what came each turn and checks it is in order; the
/// cores it ran on.
fn checker() -> StacklessTemplate<Msg, Msg, (), Result<Vec<String>, String>> {
    StacklessTemplate::migratable("checker", |cx: StacklessCtx<Msg>, ()| {
        #[coroutine]
        move || {
            let mut next = 0;
            let mut seen: Vec<String> = Vec::new();
            let mut x = 1;
            loop {
                if !seen.contains(&core_name()) {
                    seen.push(core_name());
                }
                while let Some(msg) = cx.try_receive() {
                    match msg {
                        Msg::Seq(n) if n == next => next += 1,
                        Msg::Seq(n) => {
                            return Err(format!(
                                "message {n} where {next} was due, on {}",
                                core_name()
                            ));
                        }
                        Msg::Stop => return Ok(seen),
                    }
                }
                x = spin_for(x, Duration::from_micros(40));
                yield_now!();
            }
        }
    })
    .overflow(chronoflow::Overflow::Unbounded)
}

/// Always ready; sends `Seq(n)` to `to` each turn until `stop`, then `Stop`.
fn seq_sender() -> StacklessTemplate<Msg, Msg, (Pid, Arc<AtomicBool>), Vec<String>> {
    StacklessTemplate::migratable(
        "seq-sender",
        |cx: StacklessCtx<Msg>, (to, stop): (Pid, Arc<AtomicBool>)| {
            #[coroutine]
            move || {
                let mut n = 0;
                let mut x = 1;
                let mut seen: Vec<String> = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    if !seen.contains(&core_name()) {
                        seen.push(core_name());
                    }
                    send_to!(cx, to, Msg::Seq(n));
                    n += 1;
                    x = spin_for(x, Duration::from_micros(20));
                    yield_now!();
                }
                send_to!(cx, to, Msg::Stop);
                std::hint::black_box(x);
                seen
            }
        },
    )
}

/// The receiver R (home core 1) moves to core 2 first; then the sender S
/// (home core 0) moves to core 2 too. What S sent R from core 0 just
/// before its move goes through R's home (core 1, slow to read: long
/// turns) and on to core 2; S's fence goes only core 2 -> core 0 -> core 2,
/// so S may be put in core 2's kernel and send R there, directly, while its
/// earlier messages still wait on core 1.
/// (Three runs: one whose move falls where nothing is in flight shows
/// nothing; before the fix, about two runs in three failed.)
#[test]
fn order_holds_when_sender_and_receiver_both_move_to_a_third_core() {
    for _ in 0..3 {
        both_move_to_a_third_core();
    }
}

fn both_move_to_a_third_core() {
    let rt: Runtime<Msg> = Runtime::with_cores(3).unwrap();
    rt.set_migration(false);
    let done = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    // Core 1: long turns (it reads its inbound queue seldom) and R.
    stayers(&rt, 1, 4, Duration::from_millis(1), &done);
    let r: Joiner<Result<Vec<String>, String>> = rt
        .spawn_joinable(Placement::Core(1), &checker(), ())
        .unwrap();
    // Core 0: short turns; S comes once R moved.
    stayers(&rt, 0, 4, Duration::from_micros(40), &done);
    rt.set_migration(true);
    let r_pid = r.pid();
    let moved_r = wait_until("R to move to core 2", || rt.core_of(r_pid) == 2);
    let s: Joiner<Vec<String>> = rt
        .spawn_joinable(Placement::Core(0), &seq_sender(), (r_pid, stop.clone()))
        .unwrap();
    let s_pid = s.pid();
    let moved_s = moved_r && wait_until("S to move to core 2", || rt.core_of(s_pid) == 2);
    std::thread::sleep(Duration::from_millis(30));
    stop.store(true, Ordering::Relaxed);
    let s_seen = s.join().unwrap();
    let r_result = r.join().unwrap();
    done.store(true, Ordering::Relaxed);
    let report = rt.shutdown(Duration::from_secs(1));
    assert!(moved_r && moved_s, "setup: both moved ({s_seen:?})");
    assert!(report.killed().is_empty(), "{report:?}");
    r_result.unwrap_or_else(|e| panic!("{e} (sender ran on {s_seen:?})"));
}

/// Never moves; computes, not receiving, until `done`; then takes `n`
/// messages and checks their order.
fn slow_receiver() -> StacklessTemplate<Msg, Msg, (u64, Arc<AtomicBool>), Result<u64, String>> {
    StacklessTemplate::new(
        "slow-receiver",
        |cx: StacklessCtx<Msg>, (n, done): (u64, Arc<AtomicBool>)| {
            #[coroutine]
            move || {
                let mut x = 1;
                while !done.load(Ordering::Relaxed) {
                    x = spin_for(x, Duration::from_micros(40));
                    yield_now!();
                }
                std::hint::black_box(x);
                for i in 0..n {
                    match receive!(cx) {
                        Msg::Seq(m) if m == i => {}
                        other => return Err(format!("{other:?} where {i} was due")),
                    }
                }
                Ok(n)
            }
        },
    )
    .capacity(2)
}

/// Spins on its home core (0); once it moved, sends `n` messages to `to`,
/// counting them in `sent`.
fn moved_sender() -> StacklessTemplate<Msg, Msg, (Pid, u64, Arc<AtomicU64>), ()> {
    StacklessTemplate::migratable(
        "moved-sender",
        |cx: StacklessCtx<Msg>, (to, n, sent): (Pid, u64, Arc<AtomicU64>)| {
            #[coroutine]
            move || {
                let mut x = 1;
                while core_name() == "chronoflow-core-0" {
                    x = spin_for(x, Duration::from_micros(40));
                    yield_now!();
                }
                for i in 0..n {
                    send_to!(cx, to, Msg::Seq(i));
                    sent.fetch_add(1, Ordering::Relaxed);
                    x = spin_for(x, Duration::from_micros(10));
                    yield_now!();
                }
                std::hint::black_box(x);
            }
        },
    )
}

/// A sender that moved away from its home still waits for room in a full
/// inbox on another core: the other core tells the sender's home to hold
/// it, and the home must pass that on to where the sender is now.
#[test]
fn a_moved_sender_still_waits_for_room() {
    const N: u64 = 2000;
    let rt: Runtime<Msg> = Runtime::with_cores(2).unwrap();
    rt.set_migration(false);
    let done = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let r: Joiner<Result<u64, String>> = rt
        .spawn_joinable(Placement::Core(0), &slow_receiver(), (N, done.clone()))
        .unwrap();
    stayers(&rt, 0, 5, Duration::from_micros(40), &done);
    let s: Joiner<()> = rt
        .spawn_joinable(
            Placement::Core(0),
            &moved_sender(),
            (r.pid(), N, sent.clone()),
        )
        .unwrap();
    rt.set_migration(true);
    let s_pid = s.pid();
    let moved = wait_until("S to move to core 1", || rt.core_of(s_pid) == 1);
    std::thread::sleep(Duration::from_millis(150));
    let sent_while_full = sent.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(100));
    let sent_later = sent.load(Ordering::Relaxed);
    done.store(true, Ordering::Relaxed);
    s.join().unwrap();
    let got = r.join().unwrap();
    let report = rt.shutdown(Duration::from_secs(1));
    assert!(moved, "setup: S moved");
    assert_eq!(got, Ok(N));
    assert!(report.undelivered.is_empty(), "{report:?}");
    // (Some go before the word to wait comes back; then none.)
    assert!(
        sent_while_full < N && sent_later == sent_while_full,
        "a moved sender sent {sent_while_full}, then {sent_later} messages to an inbox of 2 \
         that took none: no back-pressure"
    );
}

/// A context smuggled out of its process (to a thread, and to another
/// process of the same runtime, after the first one moved) is refused: the
/// user of it fails, nothing else.
#[test]
fn a_smuggled_context_is_refused_elsewhere_after_a_move() {
    type Slot = Arc<std::sync::Mutex<Option<StacklessCtx<Msg>>>>;
    let rt: Runtime<Msg> = Runtime::with_cores(2).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let slot: Slot = Arc::default();
    // Publishes its context, then spins until `done` (movable).
    let owner = StacklessTemplate::migratable(
        "owner",
        |cx: StacklessCtx<Msg>, (slot, done): (Slot, Arc<AtomicBool>)| {
            #[coroutine]
            move || {
                *slot.lock().unwrap() = Some(cx);
                let mut x = 1;
                while !done.load(Ordering::Relaxed) {
                    x = spin_for(x, Duration::from_micros(40));
                    yield_now!();
                }
                cx.inbox_len()
            }
        },
    );
    // Uses the smuggled context.
    let thief = StacklessTemplate::new("thief", |_cx: StacklessCtx<Msg>, slot: Slot| {
        #[coroutine]
        move || {
            let stolen = slot.lock().unwrap().expect("published");
            stolen.try_receive().is_some()
        }
    });
    let o = rt
        .spawn_joinable(Placement::Core(0), &owner, (slot.clone(), done.clone()))
        .unwrap();
    stayers(&rt, 0, 5, Duration::from_micros(40), &done);
    let opid = o.pid();
    let moved = wait_until("the owner to move", || rt.core_of(opid) == 1);
    // From a plain thread.
    let stolen = slot.lock().unwrap().expect("published");
    let from_thread = std::thread::spawn(move || stolen.try_receive().is_some()).join();
    // From processes on both cores.
    let t0 = rt
        .spawn_joinable(Placement::Core(0), &thief, slot.clone())
        .unwrap();
    let t1 = rt
        .spawn_joinable(Placement::Core(1), &thief, slot.clone())
        .unwrap();
    let r0 = t0.join();
    let r1 = t1.join();
    done.store(true, Ordering::Relaxed);
    let owner_result = o.join();
    let report = rt.shutdown(Duration::from_secs(1));
    assert!(moved, "setup: the owner moved");
    assert!(from_thread.is_err(), "refused on a plain thread");
    assert!(r0.is_err() && r1.is_err(), "{r0:?} {r1:?}");
    assert_eq!(owner_result.unwrap(), 0, "the owner is fine");
    assert!(report.dead_cores().is_empty(), "{report:?}");
}
