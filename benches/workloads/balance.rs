//! Would migrating stackless processes between cores pay? The `bench`
//! example's `balance` workload of its `multi` suite (stackless processes
//! only; `#` lines, no BEAM counterpart), run with
//! `bench [quick|full] stackless multi balance`.
//!
//! A feeder on core 0 spawns `W` workers and sends each `K` messages, round
//! after round; a worker does `work` units of computation per message and
//! reports its sum once it has them all; T0 when the feeder is spawned, T1
//! when it has every report. Three placements of the same workers:
//!
//! - `local`: all on the feeder's core (the default `Placement::Local` of a
//!   process that spawns everything): the load that migration would balance;
//! - `spread`: round-robin over the cores, placed so at their spawn: the best
//!   that any migration could do, at no cost;
//! - `moved`: on the feeder's core, half of them moved to another core at
//!   their start, as a migration would in a runtime whose pids name their
//!   core: the moved worker runs on the other core, and its old pid is kept
//!   by a forwarder on its old core that passes on each message it gets (one
//!   more crossing of cores per message, and the forwarder's work on the
//!   busy core);
//! - `migrate`: on the feeder's core, of a migratable template
//!   (`StacklessTemplate::migratable`), with the runtime's migration on: its
//!   balance checks move what they see fit to the other cores. (The other
//!   modes' workers are not migratable: they stay where they are placed.)
//!
//! One op = one message handled. `work=0` is a message-bound load, `work=N`
//! a compute-bound one.

use std::time::{Duration, Instant};

use chronoflow::runtime::{Placement, Runtime};
use chronoflow::stackless::{receive, send_to};
use chronoflow::{Pid, StacklessCtx, StacklessTemplate};

use crate::workloads::Msg;

/// How the feeder places its workers.
#[derive(Clone, Copy, Debug)]
enum Mode {
    Local,
    Spread,
    Moved,
    Migrate,
}

/// `work` rounds of a xorshift on `x`: computation the compiler cannot
/// remove.
fn spin(mut x: u64, work: u64) -> u64 {
    for _ in 0..work {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    std::hint::black_box(x)
}

/// A worker: `k` messages, each spun `work` times; its sum to `feeder`.
/// Migratable (its processes may move between cores) if asked.
fn worker(migratable: bool) -> StacklessTemplate<Msg, Msg, (Pid, u64, u64), ()> {
    let body = |cx: StacklessCtx<Msg>, (feeder, k, work): (Pid, u64, u64)| {
        #[coroutine]
        move || {
            let mut sum = 0u64;
            for _ in 0..k {
                if let Msg::Data(x) = receive!(cx) {
                    sum = sum.wrapping_add(spin(x | 1, work));
                }
            }
            send_to!(cx, feeder, Msg::Data(sum));
        }
    };
    if migratable {
        StacklessTemplate::migratable("worker", body)
    } else {
        StacklessTemplate::new("worker", body)
    }
}

/// A moved process's old pid: passes its next `k` messages on to `to`.
fn forwarder() -> StacklessTemplate<Msg, Msg, (Pid, u64), ()> {
    StacklessTemplate::new("forwarder", |cx: StacklessCtx<Msg>, (to, k): (Pid, u64)| {
        #[coroutine]
        move || {
            for _ in 0..k {
                let msg = receive!(cx);
                send_to!(cx, to, msg);
            }
        }
    })
}

/// The feeder: `w` workers placed by `mode`, `k` messages to each, their
/// reports received.
fn feeder() -> StacklessTemplate<Msg, Msg, (Mode, u64, u64, u64), u64> {
    let (worker, migratable, forwarder) = (worker(false), worker(true), forwarder());
    StacklessTemplate::new(
        "feeder",
        move |cx: StacklessCtx<Msg>, (mode, w, k, work): (Mode, u64, u64, u64)| {
            let (worker, migratable, forwarder) =
                (worker.clone(), migratable.clone(), forwarder.clone());
            #[coroutine]
            move || {
                let me = cx.pid();
                let mut to: Vec<Pid> = Vec::with_capacity(w as usize);
                for i in 0..w {
                    let pid = match mode {
                        Mode::Local => cx.spawn_at(Placement::Local, &worker, (me, k, work)),
                        Mode::Spread => cx.spawn_at(Placement::RoundRobin, &worker, (me, k, work)),
                        Mode::Moved if i % 2 == 1 => {
                            let moved = cx
                                .spawn_at(Placement::Core(1), &worker, (me, k, work))
                                .expect("spawn a moved worker");
                            cx.spawn_at(Placement::Local, &forwarder, (moved, k))
                        }
                        Mode::Moved => cx.spawn_at(Placement::Local, &worker, (me, k, work)),
                        Mode::Migrate => cx.spawn_at(Placement::Local, &migratable, (me, k, work)),
                    };
                    to.push(pid.expect("spawn a worker"));
                }
                for round in 0..k {
                    for i in 0..to.len() {
                        send_to!(cx, to[i], Msg::Data(round));
                    }
                }
                let mut sums = 0u64;
                for _ in 0..w {
                    if let Msg::Data(s) = receive!(cx) {
                        sums = sums.wrapping_add(s);
                    }
                }
                sums
            }
        },
    )
}

/// One run: ns per message handled, and how many processes moved.
fn run(mode: Mode, w: u64, k: u64, work: u64) -> (f64, u64) {
    let rt: Runtime<Msg> =
        Runtime::with_cores(chronoflow::runtime::default_cores()).expect("start the runtime");
    let t0 = Instant::now();
    let feeder = rt
        .spawn_joinable(Placement::Core(0), &feeder(), (mode, w, k, work))
        .expect("spawn the feeder");
    feeder.join().expect("the feeder ends");
    let ns = t0.elapsed().as_nanos() as f64;
    let moved = rt.moved_in().iter().sum();
    let report = rt.shutdown(Duration::from_secs(5));
    assert!(report.killed().is_empty(), "{report:?}");
    (ns / (w * k) as f64, moved)
}

/// The `balance` lines: each work size under the four placements.
pub fn suite(scale: u64) {
    let cores = chronoflow::runtime::default_cores();
    if cores < 2 {
        println!("# balance needs two cores or more (CHRONOFLOW_CORES={cores})");
        return;
    }
    let (w, k) = (100, 20_000 / scale);
    for work in [0, 100, 1_000] {
        let [local, spread, moved, migrate] =
            [Mode::Local, Mode::Spread, Mode::Moved, Mode::Migrate]
                .map(|mode| run(mode, w, k, work));
        println!(
            "# balance workers={w} messages={k} work={work} (ns per message): local={:.1} spread={:.1} moved={:.1} migrate={:.1} ({} moved)",
            local.0, spread.0, moved.0, migrate.0, migrate.1
        );
    }
}
