#![feature(coroutines)]
//! Migration of stackless processes between a runtime's cores: who moves and
//! who never does, per-sender order across a move, results and failures of
//! moved processes, shutdown with moved processes on every core.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chronoflow::runtime::{JoinFailed, Joiner, Placement, Runtime, home};
use chronoflow::stackless::{join, receive, send_to, yield_now};
use chronoflow::{ExitError, Pid, StacklessCtx, StacklessTemplate};

const PATIENCE: Duration = Duration::from_secs(20);

#[derive(Debug, Clone)]
enum Msg {
    /// Message `n` of sender `from`.
    Seq(u64, u64),
    Stop,
}

/// The name of the core thread running the caller.
fn core_name() -> String {
    std::thread::current().name().unwrap_or("?").to_string()
}

/// 40 microseconds of computation, in any build: a turn long enough for
/// the balance checks to move processes (they move only for turns of 10 us
/// or more of busy time on average, and a loaded machine may take some of
/// this wall-clock time from the thread).
fn spin(x: u64) -> u64 {
    spin_for(x, Duration::from_micros(40))
}

/// `x` scrambled for `time`.
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

/// Until `done`: computes and yields (always ready); then the cores it ran on.
fn spinner(migratable: bool) -> StacklessTemplate<Msg, Msg, Arc<AtomicBool>, BTreeSet<String>> {
    let body = |_cx: StacklessCtx<Msg>, done: Arc<AtomicBool>| {
        #[coroutine]
        move || {
            let mut seen = BTreeSet::new();
            let mut x = 1;
            while !done.load(Ordering::Relaxed) {
                seen.insert(core_name());
                x = spin(x);
                yield_now!();
            }
            seen
        }
    };
    if migratable {
        StacklessTemplate::migratable("spinner", body)
    } else {
        StacklessTemplate::new("spinner", body)
    }
}

/// Waits (the test's thread) until `cond` holds, or panics after `PATIENCE`.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < PATIENCE, "waited too long for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn spinners(
    rt: &Runtime<Msg>,
    n: usize,
    migratable: bool,
    done: &Arc<AtomicBool>,
) -> Vec<Joiner<BTreeSet<String>>> {
    (0..n)
        .map(|_| {
            rt.spawn_joinable(Placement::Core(0), &spinner(migratable), done.clone())
                .unwrap()
        })
        .collect()
}

#[test]
fn migratable_processes_of_a_busy_core_move_to_an_idle_one_and_others_never() {
    let rt: Runtime<Msg> = Runtime::with_cores(2).unwrap();
    assert!(rt.migration(), "on by default");
    let done = Arc::new(AtomicBool::new(false));
    let movers = spinners(&rt, 16, true, &done);
    let stayers = spinners(&rt, 8, false, &done);
    wait_until("a process to move to core 1", || rt.moved_in()[1] > 0);
    let moved_pids: Vec<Pid> = movers
        .iter()
        .map(Joiner::pid)
        .filter(|&pid| rt.core_of(pid) == 1)
        .collect();
    assert!(!moved_pids.is_empty(), "core_of says where they run");
    assert!(moved_pids.iter().all(|&pid| home(pid) == 0));
    // A spawn near a moved process goes where it is now.
    let near = rt
        .spawn_at(
            Placement::Near(moved_pids[0]),
            &spinner(false),
            done.clone(),
        )
        .unwrap();
    assert_eq!(home(near), 1, "near where it moved");
    // Some more balance checks, then the results.
    std::thread::sleep(Duration::from_millis(50));
    done.store(true, Ordering::Relaxed);
    let mut ran_on_1 = 0;
    for j in movers {
        let pid = j.pid();
        let seen = j.join().expect("a moved process's result is joined");
        if seen.contains("chronoflow-core-1") {
            ran_on_1 += 1;
        }
        if moved_pids.contains(&pid) {
            assert!(
                seen.contains("chronoflow-core-1"),
                "{pid} ran on core 1: {seen:?}"
            );
        }
    }
    assert!(ran_on_1 >= 1);
    for j in stayers {
        let seen = j.join().unwrap();
        assert_eq!(
            seen,
            BTreeSet::from(["chronoflow-core-0".to_string()]),
            "a process of a template that is not migratable never moves"
        );
    }
    let report = rt.shutdown(Duration::from_secs(1));
    assert!(report.killed().is_empty(), "{report:?}");
    assert!(report.incidents.is_empty(), "{report:?}");
}

#[test]
fn migration_off_moves_nothing() {
    let rt: Runtime<Msg> = Runtime::with_cores(2).unwrap();
    rt.set_migration(false);
    let done = Arc::new(AtomicBool::new(false));
    let movers = spinners(&rt, 16, true, &done);
    std::thread::sleep(Duration::from_millis(100));
    done.store(true, Ordering::Relaxed);
    for j in movers {
        assert_eq!(j.join().unwrap().len(), 1);
    }
    assert_eq!(rt.moved_in(), vec![0, 0]);
}

/// Receives from `senders` senders until each said `Stop` (taking messages
/// as they come, computing between, so that it stays ready: movable);
/// checks each sender's are in order. Its result: the cores it ran on.
fn receiver() -> StacklessTemplate<Msg, Msg, u64, Result<BTreeSet<String>, String>> {
    StacklessTemplate::migratable("receiver", |cx: StacklessCtx<Msg>, senders: u64| {
        #[coroutine]
        move || {
            let mut next = vec![0u64; senders as usize];
            let mut stopped = 0;
            let mut seen = BTreeSet::new();
            let mut x = 1;
            while stopped < senders {
                seen.insert(core_name());
                while let Some(msg) = cx.try_receive() {
                    let Msg::Seq(from, n) = msg else {
                        stopped += 1;
                        continue;
                    };
                    if next[from as usize] != n {
                        return Err(format!(
                            "from sender {from}: message {n} where {} was due, on {}",
                            next[from as usize],
                            core_name()
                        ));
                    }
                    next[from as usize] += 1;
                }
                x = spin(x);
                yield_now!();
            }
            Ok(seen)
        }
    })
    // (Unbounded: no message waits for room, which would keep it from moving.)
    .overflow(chronoflow::Overflow::Unbounded)
}

/// A sender's arguments: its id, its receivers, when to stop.
type SenderArgs = (u64, Vec<Pid>, Arc<AtomicBool>);

/// Sends numbered messages as sender `id` to each of `to`, one to each per
/// turn, computing a little in each, until `stop`; then `Stop` to each.
fn sender() -> StacklessTemplate<Msg, Msg, SenderArgs, ()> {
    StacklessTemplate::new(
        "sender",
        |cx: StacklessCtx<Msg>, (id, to, stop): SenderArgs| {
            #[coroutine]
            move || {
                let mut x = 1;
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    for i in 0..to.len() {
                        send_to!(cx, to[i], Msg::Seq(id, n));
                    }
                    n += 1;
                    x = spin_for(x, Duration::from_micros(10));
                    yield_now!();
                }
                for i in 0..to.len() {
                    send_to!(cx, to[i], Msg::Stop);
                }
                std::hint::black_box(x);
            }
        },
    )
}

/// (Three runs: a run whose moves fall where no message is in flight would
/// not show a reordering; each run moves several receivers.)
#[test]
fn per_sender_order_holds_for_messages_sent_before_during_and_after_a_move() {
    for _ in 0..3 {
        order_across_moves();
    }
}

fn order_across_moves() {
    let rt: Runtime<Msg> = Runtime::with_cores(2).unwrap();
    // Off until every sender is spawned: the moves come in the thick of it.
    rt.set_migration(false);
    // Receivers on core 0, with spinners that keep its run queue long (they
    // are not migratable: the receivers are what moves).
    let done = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let stayers = spinners(&rt, 8, false, &done);
    let receivers: Vec<Joiner<Result<BTreeSet<String>, String>>> = (0..8)
        .map(|_| {
            rt.spawn_joinable(Placement::Core(0), &receiver(), 6)
                .unwrap()
        })
        .collect();
    let to: Vec<Pid> = receivers.iter().map(Joiner::pid).collect();
    // Senders: one on the receivers' core, four on the core they move to
    // (whose sends to a process on its way in are held for it, and whose
    // earlier sends may still be on their way through the old core), and
    // the test's thread (from outside).
    rt.spawn_at(Placement::Core(0), &sender(), (0, to.clone(), stop.clone()))
        .unwrap();
    for id in 1..5 {
        rt.spawn_at(
            Placement::Core(1),
            &sender(),
            (id, to.clone(), stop.clone()),
        )
        .unwrap();
    }
    rt.set_migration(true);
    let start = Instant::now();
    let mut moved_at = None;
    let mut n = 0;
    // Until some time after the first receivers moved (more may follow).
    while moved_at.is_none_or(|at: Instant| at.elapsed() < Duration::from_millis(100)) {
        assert!(start.elapsed() < PATIENCE, "the receivers did not move");
        for &pid in &to {
            let mut msg = Msg::Seq(5, n);
            loop {
                match rt.try_send(pid, msg) {
                    Ok(()) => break,
                    Err(chronoflow::SendError::Full(back)) => {
                        msg = back;
                        std::thread::yield_now();
                    }
                    Err(e) => panic!("{e:?}"),
                }
            }
        }
        n += 1;
        if moved_at.is_none() && to.iter().any(|&pid| rt.core_of(pid) == 1) {
            moved_at = Some(Instant::now());
        }
        std::thread::sleep(Duration::from_micros(50));
    }
    stop.store(true, Ordering::Relaxed);
    for &pid in &to {
        rt.try_send(pid, Msg::Stop).unwrap();
    }
    let mut moved = 0;
    for j in receivers {
        let seen = j.join().unwrap().unwrap_or_else(|e| panic!("{e}"));
        if seen.contains("chronoflow-core-1") {
            moved += 1;
        }
    }
    assert!(moved > 0);
    done.store(true, Ordering::Relaxed);
    for j in stayers {
        j.join().unwrap();
    }
    let report = rt.shutdown(Duration::from_secs(1));
    assert!(report.undelivered.is_empty(), "{report:?}");
    assert!(report.killed().is_empty(), "{report:?}");
}

/// A spinner tied to its core: `tie` says how.
fn tied() -> StacklessTemplate<Msg, Msg, (u8, Pid, Arc<AtomicBool>), BTreeSet<String>> {
    let idle = StacklessTemplate::new("idle", |cx: StacklessCtx<Msg>, ()| {
        #[coroutine]
        move || {
            let _ = receive!(cx);
        }
    });
    StacklessTemplate::migratable(
        "tied",
        move |cx: StacklessCtx<Msg>, (tie, other, done): (u8, Pid, Arc<AtomicBool>)| {
            let idle = idle.clone();
            #[coroutine]
            move || {
                let mut child = None;
                match tie {
                    0 => cx.link(other),
                    1 => drop(cx.monitor(other)),
                    2 => drop(cx.send_after(Duration::from_secs(3600), other, Msg::Stop)),
                    3 => child = Some(cx.spawn(&idle, ()).unwrap()),
                    4 => cx
                        .register(&format!("tied-{}", cx.pid()), cx.pid())
                        .unwrap(),
                    _ => drop(cx.trap_exit(true)),
                }
                let mut seen = BTreeSet::new();
                let mut x = 1;
                while !done.load(Ordering::Relaxed) {
                    seen.insert(core_name());
                    x = spin(x);
                    yield_now!();
                }
                if let Some(child) = child {
                    send_to!(cx, child.pid(), Msg::Stop);
                    let _ = join!(cx, child);
                }
                seen
            }
        },
    )
}

#[test]
fn a_process_with_a_link_monitor_timer_child_name_or_trapped_exits_never_moves() {
    let rt: Runtime<Msg> = Runtime::with_cores(2).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    // Something to tie to, on core 0.
    let idle = StacklessTemplate::new("target", |cx: StacklessCtx<Msg>, ()| {
        #[coroutine]
        move || {
            let _ = receive!(cx);
        }
    });
    let target = rt.spawn_at(Placement::Core(0), &idle, ()).unwrap();
    // Untied ones, that do move: the balance checks run meanwhile. Few, and
    // first in the run queue: the checks move more than these (half the
    // queue), from its back, where the tied ones are.
    let movers = spinners(&rt, 4, true, &done);
    let tied: Vec<Joiner<BTreeSet<String>>> = (0..24u8)
        .map(|i| {
            rt.spawn_joinable(Placement::Core(0), &tied(), (i % 6, target, done.clone()))
                .unwrap()
        })
        .collect();
    wait_until("an untied process to move", || rt.moved_in()[1] > 0);
    std::thread::sleep(Duration::from_millis(100));
    done.store(true, Ordering::Relaxed);
    for (i, j) in tied.into_iter().enumerate() {
        let seen = j.join().unwrap();
        assert_eq!(
            seen,
            BTreeSet::from(["chronoflow-core-0".to_string()]),
            "tie {} kept it on core 0",
            i % 6
        );
    }
    let moved = movers
        .into_iter()
        .map(|j| j.join().unwrap())
        .filter(|seen| seen.contains("chronoflow-core-1"))
        .count();
    assert!(moved > 0);
    rt.try_send(target, Msg::Stop).unwrap();
    let report = rt.shutdown(Duration::from_secs(1));
    assert!(report.killed().is_empty(), "{report:?}");
}

#[test]
fn a_moved_process_that_panics_is_that_process_failure() {
    let rt: Runtime<Msg> = Runtime::with_cores(2).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    // Fails once it runs on another core than its home; returns once `done`.
    let panicker = StacklessTemplate::migratable(
        "panicker",
        |_cx: StacklessCtx<Msg>, done: Arc<AtomicBool>| {
            #[coroutine]
            move || {
                let mut x = 1;
                while !done.load(Ordering::Relaxed) {
                    if core_name() != "chronoflow-core-0" {
                        panic!("moved and failed on {}", core_name());
                    }
                    x = spin(x);
                    yield_now!();
                }
                x
            }
        },
    );
    let panickers: Vec<Joiner<u64>> = (0..16)
        .map(|_| {
            rt.spawn_joinable(Placement::Core(0), &panicker, done.clone())
                .unwrap()
        })
        .collect();
    let others = spinners(&rt, 8, false, &done);
    wait_until("a process to move", || rt.moved_in()[1] > 0);
    std::thread::sleep(Duration::from_millis(50));
    done.store(true, Ordering::Relaxed);
    for j in others {
        j.join().expect("the others go on");
    }
    let mut failed = 0;
    for j in panickers {
        match j.join() {
            Err(JoinFailed::Exited(ExitError::Failed(why))) => {
                assert!(
                    why.contains("moved and failed on chronoflow-core-1"),
                    "{why}"
                );
                failed += 1;
            }
            Ok(_) => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(failed > 0);
    let report = rt.shutdown(Duration::from_secs(1));
    assert!(report.dead_cores().is_empty(), "{report:?}");
    assert!(report.incidents.is_empty(), "{report:?}");
    assert!(report.killed().is_empty(), "{report:?}");
}

#[test]
fn shutdown_stops_moved_processes_on_every_core() {
    let rt: Runtime<Msg> = Runtime::with_cores(3).unwrap();
    // Spinners that never end by themselves.
    let forever = Arc::new(AtomicBool::new(false));
    let all = spinners(&rt, 48, true, &forever);
    wait_until("processes to move to both other cores", || {
        let m = rt.moved_in();
        m[1] > 0 && m[2] > 0
    });
    let report = rt.shutdown(Duration::from_secs(2));
    assert!(report.dead_cores().is_empty(), "{report:?}");
    assert!(report.killed().is_empty(), "{report:?}");
    let stopped: Vec<usize> = report
        .cores
        .iter()
        .map(|r| r.as_ref().unwrap().stopped)
        .collect();
    assert_eq!(stopped.iter().sum::<usize>(), 48, "{stopped:?}");
    // (Processes may move on from core 1 to core 2: each core stops what it
    // holds then.)
    assert!(stopped[1] + stopped[2] > 0, "{stopped:?}");
    for j in all {
        assert!(
            matches!(j.join(), Err(JoinFailed::Exited(_))),
            "each was stopped, none lost"
        );
    }
}

#[test]
#[cfg_attr(
    feature = "asan",
    ignore = "AddressSanitizer makes every turn several times longer: short turns are not short there"
)]
fn processes_of_short_turns_stay_where_they_are() {
    let rt: Runtime<Msg> = Runtime::with_cores(2).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    // Always ready, but each turn is short (a microsecond or less, in a
    // debug build): a move would not pay.
    let quick =
        StacklessTemplate::migratable("quick", |_cx: StacklessCtx<Msg>, done: Arc<AtomicBool>| {
            #[coroutine]
            move || {
                let mut stayed = true;
                while !done.load(Ordering::Relaxed) {
                    stayed &= std::thread::current().name() == Some("chronoflow-core-0");
                    yield_now!();
                }
                stayed
            }
        });
    let all: Vec<Joiner<bool>> = (0..32)
        .map(|_| {
            rt.spawn_joinable(Placement::Core(0), &quick, done.clone())
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    done.store(true, Ordering::Relaxed);
    for j in all {
        assert!(j.join().unwrap(), "a process of short turns moved");
    }
    assert_eq!(rt.moved_in(), vec![0, 0]);
}
