//! Many cores: a `Runtime` of two cores, each a thread with its own scheduler.
//!
//! The README's "Many cores" section. A coordinator on core 0 spawns eight
//! workers round-robin over the cores
//! (`ctx.spawn_joinable_at(Placement::RoundRobin, ..)`): each sums the
//! squares of its slice of 1..=1,000,000 and gives its core and its sum as
//! its result, which the coordinator joins (`ctx.join_across`), across cores
//! or not. Then a producer on
//! core 1 sends 1,000,000 numbers to a slow consumer on core 0 whose inbox holds
//! 4, which reads nothing until the producer stopped sending: the producer
//! is suspended while the inbox is full (back-pressure across cores), and
//! every number arrives, in order. The runtime then shuts down,
//! and reports nothing killed. The program checks each fact (and panics
//! otherwise).
//!
//! Expected output (deterministic: two cores whatever the machine has):
//!
//! ```text
//! A runtime of 2 cores, each a thread with its own scheduler; a pid names its core.
//! the coordinator (core 0) spawned 8 workers round-robin and joined them: 4 ran on core 0, 4 on core 1
//! sum of the squares of 1..=1000000: 333333833333500000 (checked)
//! a producer on core 1 sends 1000000 numbers to a consumer on core 0 whose inbox holds 4:
//! it is held back while the inbox is full (checked), and all arrive in order
//! shutdown: every process had ended, none killed
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chronoflow::runtime::{Placement, Runtime, home};
use chronoflow::{Ctx, Pid, Template};

#[derive(Debug)]
enum Msg {
    /// A number from the producer.
    Number(u64),
}

const N: u64 = 1_000_000;
const WORKERS: u64 = 8;
const NUMBERS: u64 = 1_000_000;

/// Runs the story.
pub fn run() {
    let rt = Runtime::<Msg>::with_cores(2).expect("start two core threads");
    println!(
        "A runtime of {} cores, each a thread with its own scheduler; a pid names its core.",
        rt.cores()
    );
    let worker = Template::new("worker", |ctx: &mut Ctx<Msg>, (from, until): (u64, u64)| {
        let sum: u128 = (from..until).map(|i| u128::from(i) * u128::from(i)).sum();
        (home(ctx.pid()), sum)
    });
    let coordinator = Template::new("coordinator", move |ctx: &mut Ctx<Msg>, ()| {
        let slice = N / WORKERS;
        let workers: Vec<_> = (0..WORKERS)
            .map(|w| {
                let (from, until) = (1 + w * slice, 1 + (w + 1) * slice);
                ctx.spawn_joinable_at(Placement::RoundRobin, &worker, (from, until))
                    .expect("spawn a worker")
            })
            .collect();
        let (mut total, mut on) = (0u128, [0u32; 2]);
        for w in workers {
            let (core, sum) = ctx.join_across(w).expect("a worker ends");
            total += sum;
            on[core] += 1;
        }
        (total, on)
    });
    let (total, on) = rt
        .spawn_joinable(Placement::Core(0), &coordinator, ())
        .expect("spawn the coordinator")
        .join()
        .expect("the coordinator ends");
    println!(
        "the coordinator (core 0) spawned {WORKERS} workers round-robin and joined them: {} ran on core 0, {} on core 1",
        on[0], on[1]
    );
    let n = u128::from(N);
    assert_eq!(total, n * (n + 1) * (2 * n + 1) / 6, "the sum of squares");
    println!("sum of the squares of 1..={N}: {total} (checked)");

    // Back-pressure across cores: a consumer with an inbox of 4 that reads
    // nothing until the producer has stopped sending for 20 ms: held back by
    // the full inbox, it must stop short of its 1,000,000.
    let sent = Arc::new(AtomicU64::new(0));
    let seen = sent.clone();
    let consumer = Template::new("consumer", move |ctx: &mut Ctx<Msg>, ()| {
        let held_at = loop {
            let before = seen.load(Ordering::Relaxed);
            ctx.sleep(Duration::from_millis(20));
            let after = seen.load(Ordering::Relaxed);
            if after == before && after > 0 {
                break after;
            }
        };
        for i in 0..NUMBERS {
            let Msg::Number(n) = ctx.receive();
            assert_eq!(n, i, "in order");
        }
        held_at
    })
    .capacity(4);
    let counted = sent.clone();
    let producer = Template::new("producer", move |ctx: &mut Ctx<Msg>, to: Pid| {
        for i in 0..NUMBERS {
            ctx.send_to(to, Msg::Number(i));
            counted.fetch_add(1, Ordering::Relaxed);
        }
    });
    let consumer = rt
        .spawn_joinable(Placement::Core(0), &consumer, ())
        .expect("spawn the consumer");
    rt.spawn_at(Placement::Core(1), &producer, consumer.pid())
        .expect("spawn the producer");
    let held_at = consumer.join().expect("the consumer got everything");
    assert!(held_at < NUMBERS, "the producer was held back: {held_at}");
    println!(
        "a producer on core 1 sends {NUMBERS} numbers to a consumer on core 0 whose inbox holds 4:"
    );
    println!("it is held back while the inbox is full (checked), and all arrive in order");
    let report = rt.shutdown(Duration::from_secs(1));
    assert!(report.killed().is_empty() && report.undelivered.is_empty());
    println!("shutdown: every process had ended, none killed");
}
