//! A long-running program that spawns a process per request and drops the
//! handles does not grow: each result is freed with its handle. (Measured with
//! a counting allocator: this binary holds one test, so nothing else allocates
//! while it measures.)

#[path = "support/counting.rs"]
mod counting;

use chronoflow::{Ctx, SimpleScheduler, Template};

#[test]
fn a_process_per_request_with_dropped_handles_does_not_grow() {
    // Each request's process returns a kilobyte.
    let request = Template::new("request", |ctx: &mut Ctx<u64>, n: u64| {
        vec![n as u8; 1024 + ctx.receive() as usize]
    });
    let mut sched = SimpleScheduler::new();
    let mut serve = |requests: u64| {
        for n in 0..requests {
            let h = sched.spawn(&request, n).unwrap();
            sched.send(h.pid(), 0).unwrap();
            let _ = sched.update();
            if n % 2 == 0 {
                drop(h); // dropped after the process ended
            } else {
                let pid = sched.spawn_detached(&request, n).unwrap();
                sched.send(pid, 0).unwrap();
                drop(h); // dropped before
            }
        }
        sched.run_until_idle();
    };
    serve(1_000); // warm up: pools, tables
    let before = counting::allocated_now();
    serve(20_000);
    let grown = counting::allocated_now().saturating_sub(before);
    // Kept, the results alone would take 30,000 x 1 KiB.
    assert!(grown < 64 * 1024, "grew by {grown} bytes");
}
