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

/// A few microseconds of computation.
fn spin(mut x: u64) -> u64 {
    for _ in 0..2_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
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

/// Receives `senders * per` messages (taking them as they come, computing
/// between, so that it stays ready: movable); checks each sender's are in
/// order. Its result: the cores it ran on.
fn receiver() -> StacklessTemplate<Msg, Msg, (u64, u64), Result<BTreeSet<String>, String>> {
    StacklessTemplate::migratable(
        "receiver",
        |cx: StacklessCtx<Msg>, (senders, per): (u64, u64)| {
            #[coroutine]
            move || {
                let mut next = vec![0u64; senders as usize];
                let mut got = 0;
                let mut seen = BTreeSet::new();
                let mut x = 1;
                while got < senders * per {
                    seen.insert(core_name());
                    while let Some(msg) = cx.try_receive() {
                        let Msg::Seq(from, n) = msg else {
                            return Err(format!("unexpected {msg:?}"));
                        };
                        if next[from as usize] != n {
                            return Err(format!(
                                "from sender {from}: message {n} where {} was due, on {}",
                                next[from as usize],
                                core_name()
                            ));
                        }
                        next[from as usize] += 1;
                        got += 1;
                    }
                    x = spin(x);
                    yield_now!();
                }
                Ok(seen)
            }
        },
    )
    // (Unbounded: no message waits for room, which would keep it from moving.)
    .overflow(chronoflow::Overflow::Unbounded)
}

/// Sends `per` numbered messages as sender `id` to each of `to`, one to
/// each per turn (so that it sends all along the receivers' moves).
fn sender() -> StacklessTemplate<Msg, Msg, (u64, Vec<Pid>, u64), ()> {
    StacklessTemplate::new(
        "sender",
        |cx: StacklessCtx<Msg>, (id, to, per): (u64, Vec<Pid>, u64)| {
            #[coroutine]
            move || {
                for n in 0..per {
                    for i in 0..to.len() {
                        send_to!(cx, to[i], Msg::Seq(id, n));
                    }
                    yield_now!();
                }
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
    // Off until every sender sends: the moves come in the thick of it.
    rt.set_migration(false);
    let per = 5_000;
    // Receivers on core 0, with spinners that keep its run queue long (they
    // are not migratable: the receivers are what moves).
    let done = Arc::new(AtomicBool::new(false));
    let stayers = spinners(&rt, 8, false, &done);
    let receivers: Vec<Joiner<Result<BTreeSet<String>, String>>> = (0..8)
        .map(|_| {
            rt.spawn_joinable(Placement::Core(0), &receiver(), (6, per))
                .unwrap()
        })
        .collect();
    let to: Vec<Pid> = receivers.iter().map(Joiner::pid).collect();
    // Senders: one on the receivers' core, one on the core they move to
    // (whose sends to a process on its way in are held for it), one more
    // there, and the test's thread (from outside).
    rt.spawn_at(Placement::Core(0), &sender(), (0, to.clone(), per))
        .unwrap();
    for id in 1..5 {
        rt.spawn_at(Placement::Core(1), &sender(), (id, to.clone(), per))
            .unwrap();
    }
    for n in 0..per {
        if n == 100 {
            rt.set_migration(true);
        }
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
    }
    let mut moved = 0;
    for j in receivers {
        let seen = j.join().unwrap().unwrap_or_else(|e| panic!("{e}"));
        if seen.contains("chronoflow-core-1") {
            moved += 1;
        }
    }
    done.store(true, Ordering::Relaxed);
    for j in stayers {
        j.join().unwrap();
    }
    assert!(moved > 0, "some receiver moved while it received");
    assert!(rt.moved_in()[1] > 0);
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
    assert!(stopped[1] > 0 && stopped[2] > 0, "{stopped:?}");
    for j in all {
        assert!(
            matches!(j.join(), Err(JoinFailed::Exited(_))),
            "each was stopped, none lost"
        );
    }
}
