//! The Pool story: a dynamic supervisor starts workers on demand, at most
//! three, each with a restart budget of its own; an agent keeps the tally of
//! their work (the README's "Supervisors" and "Servers").
//!
//! The pool (`DynamicSupervisor`, Elixir's) starts workers with `StartChild`
//! requests: a fourth is refused (`MaxChildren`). Each worker adds what it is
//! sent to the tally, an `Agent` (Elixir's), by a cast. A worker that is sent
//! a 0 panics: the pool restarts it once within ten seconds; the second crash
//! is one too many for that worker, which is stopped for good, while the pool
//! and the other workers go on. The owner reads the tally with an agent call
//! from outside.
//!
//! Expected output (the panics' own messages are kept off it):
//!
//! ```text
//! a pool of at most 3 workers, each restarted at most once within 10 s
//! start a, b and c: 3 workers; a fourth: Err(MaxChildren)
//! the workers add 1 + 2 + 3 to the tally: 6
//! worker a crashes twice: restarted once, then stopped for good
//! workers left: 2 (b and c); the pool is alive: true
//! b and c add 10 + 20: the tally is 36
//! ```

use std::time::Duration;

use chronoflow::otp::agent::Agent;
use chronoflow::otp::supervisor::{
    ChildState, DynamicSpec, DynamicSupervisor, StartChild, WhichChildren,
};
use chronoflow::{Ctx, ManualClock, Pid, SimpleScheduler, Status, Template, Time};

/// What a worker is told: a number to add to the tally (0: it crashes).
type Tally = Agent<u64, u64>;

/// Adds what it is sent to the tally; panics on 0.
fn worker() -> Template<u64, u64, Tally, ()> {
    Template::new("worker", |ctx: &mut Ctx<u64>, tally: Tally| {
        loop {
            match ctx.receive() {
                0 => panic!("zero"),
                n => tally.cast(ctx, move |t| *t += n),
            }
        }
    })
}

/// The pool's running workers, in start order.
fn running(sched: &mut SimpleScheduler<u64>, pool: Pid) -> Vec<Pid> {
    let children = sched
        .request(pool, WhichChildren)
        .expect("the pool answers");
    children
        .into_iter()
        .filter_map(|c| match c.child {
            ChildState::Running(pid) => Some(pid),
            _ => None,
        })
        .collect()
}

/// Runs the story.
pub fn run() {
    println!("a pool of at most 3 workers, each restarted at most once within 10 s");
    // (The panics are the story: keep their messages off the output.)
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut sched = SimpleScheduler::new();
    let clock = ManualClock::new(Time::from_nanos(0));
    sched.set_clock(clock.clone());
    let tally = sched
        .spawn(&Tally::template("tally"), 0)
        .expect("spawn the tally");
    let tally = Tally::new(tally.pid());
    let pool = DynamicSupervisor::new("pool", DynamicSpec::new(&worker()))
        .max_children(3)
        .child_intensity(1, Duration::from_secs(10))
        .template()
        .expect("a valid pool");
    let pool = sched.spawn(&pool, ()).expect("spawn the pool").pid();
    sched.run_until_idle();
    let mut workers = Vec::new();
    for _ in 0..3 {
        let worker = sched
            .request(pool, StartChild(tally))
            .expect("the pool answers");
        workers.push(worker.expect("room for it"));
    }
    let fourth = sched
        .request(pool, StartChild(tally))
        .expect("the pool answers");
    println!(
        "start a, b and c: {} workers; a fourth: {fourth:?}",
        workers.len()
    );
    for (n, &w) in (1..).zip(&workers) {
        sched.send(w, n).expect("a worker is alive");
    }
    sched.run_until_idle();
    let total = sched.call_agent(&tally, |t| *t).expect("the tally answers");
    println!("the workers add 1 + 2 + 3 to the tally: {total}");
    println!("worker a crashes twice: restarted once, then stopped for good");
    sched.send(workers[0], 0).expect("a is alive");
    sched.run_until_idle();
    clock.advance(Duration::from_secs(1));
    let a = running(&mut sched, pool)
        .into_iter()
        .find(|p| !workers[1..].contains(p))
        .expect("a was restarted");
    sched.send(a, 0).expect("a is alive");
    sched.run_until_idle();
    let left = running(&mut sched, pool);
    let alive = sched.status(pool).is_some_and(|s| s != Status::Stopped);
    println!(
        "workers left: {} (b and c); the pool is alive: {alive}",
        left.len()
    );
    for (n, &w) in [10, 20].iter().zip(&left) {
        sched.send(w, *n).expect("a worker is alive");
    }
    sched.run_until_idle();
    let total = sched.call_agent(&tally, |t| *t).expect("the tally answers");
    println!("b and c add 10 + 20: the tally is {total}");
    std::panic::set_hook(hook);
}
