//! The Supervision story: a worker that crashes is restarted by its
//! supervisor and stays reachable by its name; when crashes come faster than
//! the restart budget allows, the supervisor gives up (the README's
//! "Supervisors").
//!
//! A one-for-one supervisor starts a counter registered as `"counter"`, with
//! a budget of 2 restarts within 10 seconds of the scheduler's clock (a
//! `ManualClock`, which the story moves). A client sends numbers to the name;
//! a 0 makes the counter panic. The first crash is restarted: the name now
//! reaches the new incarnation, which counts from zero again. A minute later
//! (the old restart has left the window) two more crashes in a row are still
//! within the budget; the third is one too many: the supervisor stops and
//! ends with `shutdown`, which a watching process sees as a DOWN.
//!
//! Expected output (the panics' own messages are kept off it):
//!
//! ```text
//! a supervisor starts "counter" (budget: 2 restarts within 10 s)
//! counter <2> got 5, total 5
//! counter <2> got 0: it panics
//! counter <3> got 7, total 7
//!   (the name reached the restarted counter)
//! a minute later, three crashes in a row:
//! counter <3> got 0: it panics
//! counter <4> got 0: it panics
//! counter <5> got 0: it panics
//! the supervisor gave up: its watcher got DOWN shutdown
//! the name "counter" is free: whereis = None; processes left: 0
//! ```

use std::time::Duration;

use chronoflow::otp::supervisor::{ChildSpec, Supervisor};
use chronoflow::{Ctx, Mail, ManualClock, Pid, SimpleScheduler, Template, Time};

/// Counts what it is sent; panics on 0.
fn counter() -> Template<u32, u32, (), ()> {
    Template::new("counter", |ctx: &mut Ctx<u32>, ()| {
        let me = ctx.pid();
        let mut total = 0;
        loop {
            let n = ctx.receive();
            if n == 0 {
                println!("counter {me} got 0: it panics");
                panic!("zero");
            }
            total += n;
            println!("counter {me} got {n}, total {total}");
        }
    })
}

/// Waits for the DOWN of the pid given and prints its reason.
fn watcher() -> Template<u32, u32, Pid, ()> {
    Template::new("watcher", |ctx: &mut Ctx<u32>, sup: Pid| {
        ctx.monitor(sup);
        if let Mail::Down { reason, .. } = ctx.receive_mail() {
            println!("the supervisor gave up: its watcher got DOWN {reason}");
        }
    })
}

/// Runs the story.
pub fn run() {
    println!("a supervisor starts \"counter\" (budget: 2 restarts within 10 s)");
    // (The panics are the story: keep their messages off the output.)
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut sched = SimpleScheduler::new();
    let clock = ManualClock::new(Time::from_nanos(0));
    sched.set_clock(clock.clone());
    let sup = Supervisor::new("root")
        .intensity(2, Duration::from_secs(10))
        .child(ChildSpec::new("counter", &counter(), ()).name("counter"))
        .template()
        .expect("a valid supervisor");
    let root = sched.spawn(&sup, ()).expect("spawn the supervisor");
    sched
        .spawn(&watcher(), root.pid())
        .expect("spawn the watcher");
    sched.run_until_idle();
    for n in [5, 0] {
        sched.send_named("counter", n).expect("registered");
        sched.run_until_idle();
    }
    sched.send_named("counter", 7).expect("registered again");
    sched.run_until_idle();
    println!("  (the name reached the restarted counter)");
    clock.advance(Duration::from_secs(60));
    println!("a minute later, three crashes in a row:");
    for _ in 0..3 {
        sched.send_named("counter", 0).expect("registered");
        sched.run_until_idle();
    }
    std::panic::set_hook(hook);
    println!(
        "the name \"counter\" is free: whereis = {:?}; processes left: {}",
        sched.whereis("counter"),
        sched.live()
    );
}
