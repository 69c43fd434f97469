//! Load for the tests that need the balance to move processes: busy
//! processes on cores 0 and 1 that never move (stackless, not migratable),
//! so that migratable ones placed there go to core 2.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chronoflow::runtime::{Joiner, Placement, Runtime};
use chronoflow::stackless::yield_now;
use chronoflow::{StacklessCtx, StacklessTemplate};

/// The index of the core running the caller (its thread's name ends with it).
pub fn core_index() -> u64 {
    let name = std::thread::current().name().unwrap_or("").to_string();
    let digits: String = name
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .chars()
        .rev()
        .collect::<String>()
        .parse()
        .unwrap_or(u64::MAX)
}

/// Busy for a while (a turn long enough for the balance to move processes).
pub fn work(mut x: u64) -> u64 {
    for _ in 0..20_000 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
    }
    std::hint::black_box(x)
}

/// Eight busy processes on each of cores 0 and 1, until [`stop`](Self::stop).
pub struct Stayers {
    done: Arc<AtomicBool>,
    joiners: Vec<Joiner<()>>,
}

impl Stayers {
    /// Starts them on `rt`.
    pub fn start<M: Send + 'static>(rt: &Runtime<M>) -> Stayers {
        let busy = StacklessTemplate::new("busy", |_cx: StacklessCtx<M>, done: Arc<AtomicBool>| {
            #[coroutine]
            move || {
                let mut x = 1;
                while !done.load(Ordering::Relaxed) {
                    x = work(x);
                    yield_now!();
                }
            }
        });
        let done = Arc::new(AtomicBool::new(false));
        let mut joiners = Vec::new();
        for core in 0..2 {
            for _ in 0..8 {
                joiners.push(
                    rt.spawn_joinable(Placement::Core(core), &busy, done.clone())
                        .unwrap(),
                );
            }
        }
        Stayers { done, joiners }
    }

    /// Ends them, and waits for their ends.
    pub fn stop(self) {
        self.done.store(true, Ordering::Relaxed);
        for j in self.joiners {
            j.join().unwrap();
        }
    }
}
