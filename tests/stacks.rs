//! Stacks come from a pool of slabs: many processes per memory mapping, and no new
//! mapping per spawn in the steady state.
//!
//! One test function only: the mapping count is process-wide, so nothing else may
//! run beside it in this binary.

use chronoflow::{Ctx, Pid, SimpleScheduler, Template};

fn mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .expect("Linux /proc")
        .lines()
        .count()
}

#[test]
#[cfg_attr(
    feature = "asan",
    ignore = "counts /proc/self/maps, and ASan maps memory of its own (shadow, fake stacks, allocator regions)"
)]
fn stacks_are_pooled_and_cost_far_less_than_a_mapping_each() {
    let idle = Template::new("idle", |ctx: &mut Ctx<u8>, _: ()| {
        ctx.receive();
    })
    .stack_size(16 * 1024);
    let mut sched = SimpleScheduler::new();

    // Steady state: spawning and ending processes round after round maps nothing
    // new once the pool has its stacks.
    let mut next = 0u64;
    let mut round = |sched: &mut SimpleScheduler<u8>| {
        for _ in 0..2_000 {
            sched.spawn(&idle, ()).unwrap();
        }
        sched.run_until_idle();
        for _ in 0..2_000 {
            sched.send(Pid(next), 0).unwrap();
            next += 1;
        }
        sched.run_until_idle();
        assert_eq!(sched.live(), 0);
    };
    round(&mut sched);
    let after_first = mappings();
    for _ in 0..10 {
        round(&mut sched);
    }
    assert_eq!(
        mappings(),
        after_first,
        "no new mapping per spawn in the steady state"
    );

    // Far more live processes than Linux's default vm.max_map_count (65530) would
    // allow at one or two mappings per stack.
    let before = mappings();
    let n = 100_000;
    for _ in 0..n {
        sched.spawn(&idle, ()).unwrap();
    }
    sched.run_until_idle();
    assert_eq!(sched.live(), n);
    let added = mappings() - before;
    assert!(
        added < n / 100,
        "{added} new mappings for {n} live processes"
    );
}
