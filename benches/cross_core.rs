//! Criterion benches of the multi-core runtime's send path: one sender to one
//! sink with both on one core, and across two cores (the batch, the queue
//! and the wake-up), and round trips across two cores (the latency of a
//! crossing, both ways). One element = one message (one round trip).
//!
//! Run with `cargo bench --bench cross_core` (add `-- --quick` for a fast
//! look). The runtime has two cores whatever the machine has.
#![feature(coroutines)]

// (Shared with the other benches; this one uses a few of its processes.)
#[allow(dead_code)]
mod workloads;

use std::time::{Duration, Instant};

use chronoflow::runtime::{Placement, Runtime};
use chronoflow::{Pid, Spawnable};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use workloads::Msg;

/// Messages per iteration.
const MESSAGES: u64 = 10_000;

fn send_with<K, S>(c: &mut Criterion, engine: &str, sink: &K, sender: &S)
where
    K: Spawnable<Msg, Msg, u64, u64> + Clone + Send + 'static,
    S: Spawnable<Msg, Msg, (Pid, u64), ()> + Clone + Send + 'static,
{
    let rt = Runtime::<Msg>::with_cores(2).expect("start the runtime");
    let mut group = c.benchmark_group("cross_core");
    group.throughput(Throughput::Elements(MESSAGES));
    for (name, from) in [("same_core", 0), ("across", 1)] {
        group.bench_function(format!("send_{name}_{engine}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let s = rt
                        .spawn_joinable(Placement::Core(0), sink, MESSAGES)
                        .expect("spawn the sink");
                    let t0 = Instant::now();
                    rt.spawn_at(Placement::Core(from), sender, (s.pid(), MESSAGES))
                        .expect("spawn the sender");
                    assert_eq!(s.join(), Ok(MESSAGES));
                    total += t0.elapsed();
                }
                total
            })
        });
    }
    group.finish();
}

fn round_trips_with<P, Q>(c: &mut Criterion, engine: &str, pong: &P, ping: &Q)
where
    P: Spawnable<Msg, Msg, (), ()> + Clone + Send + 'static,
    Q: Spawnable<Msg, Msg, (Pid, u64), u64> + Clone + Send + 'static,
{
    let rt = Runtime::<Msg>::with_cores(2).expect("start the runtime");
    let mut group = c.benchmark_group("cross_core");
    group.throughput(Throughput::Elements(MESSAGES));
    for (name, from) in [("same_core", 0), ("across", 1)] {
        let pong = rt
            .spawn_at(Placement::Core(0), pong, ())
            .expect("spawn pong");
        group.bench_function(format!("round_trip_{name}_{engine}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let t0 = Instant::now();
                    let p = rt
                        .spawn_joinable(Placement::Core(from), ping, (pong, MESSAGES))
                        .expect("spawn ping");
                    p.join().expect("ping ends");
                    total += t0.elapsed();
                }
                total
            })
        });
        rt.send_blocking(pong, Msg::Stop).expect("pong alive");
    }
    group.finish();
}

fn cross_core(c: &mut Criterion) {
    let unbounded = MESSAGES as usize;
    send_with(
        c,
        "stackful",
        &workloads::sink(unbounded),
        &workloads::sender(),
    );
    use workloads::stackless as sl;
    send_with(c, "stackless", &sl::sink(unbounded), &sl::sender());
    round_trips_with(c, "stackful", &workloads::pong(), &workloads::ping());
    round_trips_with(c, "stackless", &sl::pong(), &sl::ping());
}

criterion_group! {
    name = runtime;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    targets = cross_core
}
criterion_main!(runtime);
