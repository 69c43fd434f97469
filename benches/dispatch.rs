//! Criterion benches of the hot dispatch loop of a `SimpleScheduler`: message
//! round trips, a token ring, spawning idle processes, selective receive behind a
//! queue, and many senders to one sink. Each reports per-op throughput (one element
//! = one round trip, hop, spawn, selective receive or message).
//!
//! The processes are those of the `bench` example (`benches/workloads/mod.rs`).
//! Run with `cargo bench --bench dispatch` (add `-- --quick` for a fast look).
#![feature(coroutines)]

mod workloads;

use std::hint::black_box;
use std::time::{Duration, Instant};

use chronoflow::{DEFAULT_CAPACITY, Handle, SimpleScheduler};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use workloads::Msg;

/// pingpong: 10,000 round trips per iteration between two long-lived processes
/// (a fresh `ping` each iteration, whose stack comes from the pool).
fn pingpong(c: &mut Criterion) {
    const ROUND_TRIPS: u64 = 10_000;
    let mut sched = SimpleScheduler::new();
    let pong = sched.spawn(&workloads::pong(), ()).expect("spawn pong");
    let ping = workloads::ping();
    let mut group = c.benchmark_group("pingpong");
    group.throughput(Throughput::Elements(ROUND_TRIPS));
    group.bench_function("round_trips", |b| {
        b.iter(|| {
            let h = sched
                .spawn(&ping, (pong.pid(), ROUND_TRIPS))
                .expect("spawn ping");
            sched.run_until_idle();
            black_box(sched.result(h).expect("ping ended").expect("ping ok"))
        })
    });
    group.finish();
}

/// ring: 100 processes, one token passed 10,000 hops per iteration.
fn ring(c: &mut Criterion) {
    const NODES: usize = 100;
    const HOPS: u64 = 10_000;
    let mut sched = SimpleScheduler::new();
    let nodes = workloads::create_ring(&mut sched, &workloads::ring_node(), NODES)
        .map_err(|(_, e)| e)
        .expect("create the ring");
    for &node in &nodes {
        sched.start(node).expect("start a node");
    }
    sched.run_until_idle();
    let last = *nodes.last().expect("a ring has nodes");
    let mut group = c.benchmark_group("ring");
    group.throughput(Throughput::Elements(HOPS));
    group.bench_function("hops_100_nodes", |b| {
        b.iter(|| {
            sched.send(last, Msg::Token(HOPS)).expect("last node alive");
            black_box(sched.run_until_idle())
        })
    });
    group.finish();
}

/// spawn: 1,000 idle processes spawned and run until they wait in receive, per
/// iteration; then stopped, untimed. `cold`: a fresh scheduler each iteration (its
/// stacks are new); `warm`: one scheduler, whose pool has the stacks of the
/// previous iteration's processes.
fn spawn(c: &mut Criterion) {
    const PROCS: usize = 1_000;
    let idle = workloads::idle();
    let spawn_all = |sched: &mut SimpleScheduler<Msg>, handles: &mut Vec<Handle<()>>| {
        let t0 = Instant::now();
        for _ in 0..PROCS {
            handles.push(sched.spawn(&idle, ()).expect("spawn idle"));
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
            sched.result(h).expect("ended").expect("ok");
        }
    };
    let mut group = c.benchmark_group("spawn");
    group.throughput(Throughput::Elements(PROCS as u64));
    let mut handles = Vec::with_capacity(PROCS);
    group.bench_function("idle_1000_cold", |b| {
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
    group.bench_function("idle_1000_warm", |b| {
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

/// selective: 1,000 selective receives per iteration, each behind 1,000 unmatched
/// messages in the inbox (timed inside the process, without the queueing).
fn selective(c: &mut Criterion) {
    const QUEUED: u64 = 1_000;
    const ROUNDS: u64 = 1_000;
    let mut sched = SimpleScheduler::new();
    let sel = workloads::selective(QUEUED);
    let mut group = c.benchmark_group("selective");
    group.throughput(Throughput::Elements(ROUNDS));
    group.bench_function("behind_1000", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let h = sched.spawn(&sel, ROUNDS).expect("spawn selective");
                sched.run_until_idle();
                let ns = sched.result(h).expect("ended").expect("ok");
                total += Duration::from_nanos(ns);
            }
            total
        })
    });
    group.finish();
}

/// fanin: 100 senders x 100 messages to one sink per iteration, with a sink inbox
/// that holds them all (as BEAM's unbounded mailbox: no sender waits) and with the
/// default capacity (1024: senders back off once the sink is full).
fn fanin(c: &mut Criterion) {
    const SENDERS: u64 = 100;
    const MESSAGES: u64 = 100;
    let sender = workloads::sender();
    let mut group = c.benchmark_group("fanin");
    group.throughput(Throughput::Elements(SENDERS * MESSAGES));
    for (name, capacity) in [
        ("100x100_unbounded", (SENDERS * MESSAGES) as usize),
        ("100x100_cap1024", DEFAULT_CAPACITY),
    ] {
        let sink = workloads::sink(capacity);
        let mut sched = SimpleScheduler::new();
        group.bench_function(name, |b| {
            b.iter(|| {
                let s = sched.spawn(&sink, SENDERS * MESSAGES).expect("spawn sink");
                for _ in 0..SENDERS {
                    sched
                        .spawn(&sender, (s.pid(), MESSAGES))
                        .expect("spawn sender");
                }
                sched.run_until_idle();
                black_box(sched.result(s).expect("sink ended").expect("sink ok"))
            })
        });
    }
    group.finish();
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
