//! Back-pressure: a fast producer, a slow consumer, and a small inbox.
//!
//! The README's "Back-pressure" section: the BACKOFF signal, in a
//! `SimpleScheduler` with recording on (`record()`). The consumer's inbox holds only 4 messages, with
//! the default overflow policy, `Overflow::Backoff`. The producer sends 100
//! numbered messages as fast as it can; the consumer takes one at a time and
//! yields its turn after each (`ctx.yield_now()`), so it is slow. Whenever the
//! producer finds the inbox full, it emits a BACKOFF signal and is suspended until
//! the consumer takes a message and makes room; nothing is dropped. At the end the
//! program checks (and panics otherwise) that all 100 messages arrived in order,
//! that the producer recorded 100 SENDs, and that it backed off at least once.
//!
//! Expected output (the counts are deterministic):
//!
//! ```text
//! A producer sends 100 numbers to a slow consumer whose inbox holds 4: when it is full,
//! the producer is suspended (BACKOFF) until there is room, and no message is lost.
//! the first 8 signals (<0> is the consumer, <1> the producer; `<pid> #seq KIND payload`):
//!   <0> #0 START
//!   <1> #0 START
//!   <1> #1 SEND to <0>: 0
//!   <1> #2 SEND to <0>: 1
//!   <1> #3 SEND to <0>: 2
//!   <1> #4 SEND to <0>: 3
//!   <1> #5 BACKOFF waiting for <0>
//!   <1> #6 SEND to <0>: 4
//! all 100 messages arrived in order (100 SEND signals, 96 BACKOFF signals, inbox capacity 4)
//! ```

use chronoflow::{Ctx, Overflow, Pid, SignalKind, SimpleScheduler, Template};

/// The consumer's inbox capacity.
const CAPACITY: usize = 4;
/// How many messages the producer sends.
const COUNT: u64 = 100;

/// Runs the story.
pub fn run() {
    println!(
        "A producer sends 100 numbers to a slow consumer whose inbox holds 4: when it is full,"
    );
    println!("the producer is suspended (BACKOFF) until there is room, and no message is lost.");
    let consumer = Template::new("consumer", |ctx: &mut Ctx<u64>, count: u64| {
        let mut received = Vec::new();
        for _ in 0..count {
            received.push(ctx.receive());
            ctx.yield_now(); // slow: give the turn away after every message
        }
        received
    })
    .capacity(CAPACITY)
    .overflow(Overflow::Backoff); // the default, spelled out

    let producer = Template::new("producer", |ctx: &mut Ctx<u64>, (to, count): (Pid, u64)| {
        for n in 0..count {
            ctx.send_to(to, n); // suspends (BACKOFF) while `to`'s inbox is full
        }
        count
    });

    let mut scheduler = SimpleScheduler::new();
    scheduler.record();
    let consumer = scheduler.spawn(&consumer, COUNT).expect("a stack");
    let producer = scheduler
        .spawn(&producer, (consumer.pid(), COUNT))
        .expect("a stack");
    scheduler.run_until_idle();

    let received = scheduler
        .result(&consumer)
        .expect("the consumer has ended")
        .expect("the consumer did not fail");
    let sent = scheduler
        .result(&producer)
        .expect("the producer has ended")
        .expect("the producer did not fail");

    let signals = scheduler.pull();
    println!(
        "the first 8 signals (<0> is the consumer, <1> the producer; `<pid> #seq KIND payload`):"
    );
    for signal in signals.iter().take(8) {
        println!("  {signal}");
    }
    let count = |t: SignalKind| signals.iter().filter(|s| s.kind() == t).count();
    let sends = count(SignalKind::Send);
    let backoffs = count(SignalKind::Backoff);

    let expected: Vec<u64> = (0..COUNT).collect();
    assert_eq!(sent, COUNT, "the producer sent every message");
    assert_eq!(received, expected, "every message arrived, in order");
    assert_eq!(sends as u64, COUNT, "one SEND signal per message");
    assert!(backoffs >= 1, "the producer never backed off");
    assert!(scheduler.take_undelivered().is_empty(), "nothing was lost");

    println!(
        "all {} messages arrived in order ({sends} SEND signals, {backoffs} BACKOFF signals, \
         inbox capacity {CAPACITY})",
        received.len()
    );
}
