//! The Swarm story: stackless processes, a hundred thousand of them.
//!
//! The README's "Stackless processes" section. The scheduler spawns 100,000
//! stackless `cell` processes and one stackful `summer`. Each cell waits in
//! `receive!` for a number, sends its square to the summer, and ends with it; the
//! summer adds up what it receives. We measure what the idle swarm costs in
//! memory, send every cell a 3, and read the results.
//!
//! Expected output (the memory figure depends on the machine):
//!
//! ```text
//! 100,000 stackless processes (state machines, no stack each): their memory, a message to each,
//! their results, added up by one ordinary (stackful) process, the summer.
//! 100000 stackless cells alive, waiting for a message (in receive!)
//! about 300 bytes of memory each
//! the summer got 100000 squares of 3: 900000
//! every cell ended with 9; 0 processes left
//! ```

use chronoflow::stackless::{receive, send_to};
use chronoflow::{Ctx, Pid, SimpleScheduler, StacklessCtx, StacklessTemplate, Template};

/// The message type of the story.
#[derive(Debug, Clone)]
pub enum Msg {
    /// From outside: square this.
    Square(u64),
    /// A cell's answer.
    Answer(u64),
}

const CELLS: usize = 100_000;

/// The resident memory of this program, in bytes (VmRSS; 0 where unknown).
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        });
    kb.unwrap_or(0) * 1024
}

/// Runs the story.
pub fn run() {
    println!(
        "100,000 stackless processes (state machines, no stack each): their memory, a message \
         to each,"
    );
    println!("their results, added up by one ordinary (stackful) process, the summer.");
    // A cell: one number in, its square to the summer, and the square as result.
    let cell = StacklessTemplate::new("cell", |cx: StacklessCtx<Msg>, summer: Pid| {
        #[coroutine]
        move || {
            loop {
                if let Msg::Square(n) = receive!(cx) {
                    send_to!(cx, summer, Msg::Answer(n * n));
                    return n * n;
                }
            }
        }
    });
    let summer = Template::new("summer", |ctx: &mut Ctx<Msg>, count: usize| {
        let mut sum = 0;
        for _ in 0..count {
            if let Msg::Answer(a) = ctx.receive() {
                sum += a;
            }
        }
        sum
    });

    let mut sched = SimpleScheduler::new();
    let s = sched.spawn(&summer, CELLS).expect("spawn the summer");
    let before = rss();
    let cells: Vec<_> = (0..CELLS)
        .map(|_| sched.spawn(&cell, s.pid()).expect("spawn a cell"))
        .collect();
    sched.run_until_idle(); // every cell runs up to its receive!
    let each = rss().saturating_sub(before) / CELLS as u64;
    println!(
        "{} stackless cells alive, waiting for a message (in receive!)",
        sched.live() - 1
    );
    println!("about {} bytes of memory each", (each + 50) / 100 * 100);

    for c in &cells {
        sched.send(c.pid(), Msg::Square(3)).expect("a waiting cell");
    }
    sched.run_until_idle();
    let sum = sched.result(&s).expect("the summer ended").expect("ok");
    println!("the summer got {CELLS} squares of 3: {sum}");
    let all_nine = cells.into_iter().all(|c| sched.result(&c) == Some(Ok(9)));
    assert!(all_nine);
    println!("every cell ended with 9; {} processes left", sched.live());
}
