//! Criterion benches of the hot dispatch loop of a `SimpleScheduler`: message
//! round trips, a token ring, spawning idle processes, selective receive behind a
//! queue, and many senders to one sink. Each reports per-op throughput (one element
//! = one round trip, hop, spawn, selective receive or message).
//!
//! The processes are those of the `bench` example (`benches/workloads/mod.rs`),
//! stackful and stackless: each bench has one function per engine.
//! Run with `cargo bench --bench dispatch` (add `-- --quick` for a fast look).
#![feature(coroutines)]

mod workloads;

use std::hint::black_box;
use std::time::{Duration, Instant};

use chronoflow::{DEFAULT_CAPACITY, Handle, Pid, SimpleScheduler, Spawnable};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use workloads::Msg;

/// pingpong: 10,000 round trips per iteration between two long-lived processes
/// (a fresh `ping` each iteration, whose stack comes from the pool).
fn pingpong_with(
    c: &mut Criterion,
    engine: &str,
    pong: &impl Spawnable<Msg, Msg, (), ()>,
    ping: &impl Spawnable<Msg, Msg, (Pid, u64), u64>,
) {
    const ROUND_TRIPS: u64 = 10_000;
    let mut sched = SimpleScheduler::new();
    let pong = sched.spawn(pong, ()).expect("spawn pong");
    let mut group = c.benchmark_group("pingpong");
    group.throughput(Throughput::Elements(ROUND_TRIPS));
    group.bench_function(format!("round_trips_{engine}"), |b| {
        b.iter(|| {
            let h = sched
                .spawn(ping, (pong.pid(), ROUND_TRIPS))
                .expect("spawn ping");
            sched.run_until_idle();
            black_box(sched.result(&h).expect("ping ended").expect("ping ok"))
        })
    });
    group.finish();
}

fn pingpong(c: &mut Criterion) {
    pingpong_with(c, "stackful", &workloads::pong(), &workloads::ping());
    use workloads::stackless as sl;
    pingpong_with(c, "stackless", &sl::pong(), &sl::ping());
}

/// ring: 100 processes, one token passed 10,000 hops per iteration.
fn ring_with(c: &mut Criterion, engine: &str, node: &impl Spawnable<Msg, Msg, Pid, ()>) {
    const NODES: usize = 100;
    const HOPS: u64 = 10_000;
    let mut sched = SimpleScheduler::new();
    let nodes = workloads::create_ring(&mut sched, node, NODES)
        .map_err(|(_, e)| e)
        .expect("create the ring");
    for &node in &nodes {
        sched.start(node).expect("start a node");
    }
    sched.run_until_idle();
    let last = *nodes.last().expect("a ring has nodes");
    let mut group = c.benchmark_group("ring");
    group.throughput(Throughput::Elements(HOPS));
    group.bench_function(format!("hops_100_nodes_{engine}"), |b| {
        b.iter(|| {
            sched.send(last, Msg::Token(HOPS)).expect("last node alive");
            black_box(sched.run_until_idle())
        })
    });
    group.finish();
}

fn ring(c: &mut Criterion) {
    ring_with(c, "stackful", &workloads::ring_node());
    ring_with(c, "stackless", &workloads::stackless::ring_node());
}

/// spawn: 1,000 idle processes spawned and run until they wait in receive, per
/// iteration; then stopped, untimed. `cold`: a fresh scheduler each iteration (its
/// stacks are new); `warm`: one scheduler, whose pool has the stacks of the
/// previous iteration's processes.
fn spawn_with(c: &mut Criterion, engine: &str, idle: &impl Spawnable<Msg, Msg, (), ()>) {
    const PROCS: usize = 1_000;
    let spawn_all = |sched: &mut SimpleScheduler<Msg>, handles: &mut Vec<Handle<()>>| {
        let t0 = Instant::now();
        for _ in 0..PROCS {
            handles.push(sched.spawn(idle, ()).expect("spawn idle"));
        }
        sched.run_until_idle();
        t0.elapsed()
    };
    let stop_all = |sched: &mut SimpleScheduler<Msg>, handles: &mut Vec<Handle<()>>| {
        for h in handles.iter() {
            sched.send(h.pid(), Msg::Stop).expect("idle process alive");
        }
        sched.run_until_idle();
        for h in handles.drain(..) {
            sched.result(&h).expect("ended").expect("ok");
        }
    };
    let mut group = c.benchmark_group("spawn");
    group.throughput(Throughput::Elements(PROCS as u64));
    let mut handles = Vec::with_capacity(PROCS);
    group.bench_function(format!("idle_1000_cold_{engine}"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut sched = SimpleScheduler::new();
                total += spawn_all(&mut sched, &mut handles);
                stop_all(&mut sched, &mut handles);
            }
            total
        })
    });
    let mut sched = SimpleScheduler::new();
    group.bench_function(format!("idle_1000_warm_{engine}"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                total += spawn_all(&mut sched, &mut handles);
                stop_all(&mut sched, &mut handles);
            }
            total
        })
    });
    group.finish();
}

fn spawn(c: &mut Criterion) {
    spawn_with(c, "stackful", &workloads::idle());
    spawn_with(c, "stackless", &workloads::stackless::idle());
}

/// selective: 1,000 selective receives per iteration, each behind 1,000 unmatched
/// messages in the inbox (timed inside the process, without the queueing).
fn selective_with(c: &mut Criterion, engine: &str, sel: &impl Spawnable<Msg, Msg, u64, u64>) {
    const ROUNDS: u64 = 1_000;
    let mut sched = SimpleScheduler::new();
    let mut group = c.benchmark_group("selective");
    group.throughput(Throughput::Elements(ROUNDS));
    group.bench_function(format!("behind_1000_{engine}"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let h = sched.spawn(sel, ROUNDS).expect("spawn selective");
                sched.run_until_idle();
                let ns = sched.result(&h).expect("ended").expect("ok");
                total += Duration::from_nanos(ns);
            }
            total
        })
    });
    group.finish();
}

fn selective(c: &mut Criterion) {
    const QUEUED: u64 = 1_000;
    selective_with(c, "stackful", &workloads::selective(QUEUED));
    selective_with(c, "stackless", &workloads::stackless::selective(QUEUED));
}

/// fanin: 100 senders x 100 messages to one sink per iteration, with a sink inbox
/// that holds them all (as BEAM's unbounded mailbox: no sender waits) and with the
/// default capacity (1024: senders back off once the sink is full).
fn fanin_with<T: Spawnable<Msg, Msg, u64, u64>>(
    c: &mut Criterion,
    engine: &str,
    sink: impl Fn(usize) -> T,
    sender: &impl Spawnable<Msg, Msg, (Pid, u64), ()>,
) {
    const SENDERS: u64 = 100;
    const MESSAGES: u64 = 100;
    let mut group = c.benchmark_group("fanin");
    group.throughput(Throughput::Elements(SENDERS * MESSAGES));
    for (name, capacity) in [
        ("100x100_unbounded", (SENDERS * MESSAGES) as usize),
        ("100x100_cap1024", DEFAULT_CAPACITY),
    ] {
        let sink = sink(capacity);
        let mut sched = SimpleScheduler::new();
        group.bench_function(format!("{name}_{engine}"), |b| {
            b.iter(|| {
                let s = sched.spawn(&sink, SENDERS * MESSAGES).expect("spawn sink");
                for _ in 0..SENDERS {
                    sched
                        .spawn(sender, (s.pid(), MESSAGES))
                        .expect("spawn sender");
                }
                sched.run_until_idle();
                black_box(sched.result(&s).expect("sink ended").expect("sink ok"))
            })
        });
    }
    group.finish();
}

fn fanin(c: &mut Criterion) {
    fanin_with(c, "stackful", workloads::sink, &workloads::sender());
    use workloads::stackless as sl;
    fanin_with(c, "stackless", sl::sink, &sl::sender());
}

criterion_group! {
    name = dispatch;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    targets = pingpong, ring, spawn, selective, fanin
}
criterion_main!(dispatch);
