//! The Echo story: two processes in a `SimpleScheduler` bouncing a message.
//!
//! The README's "The SimpleScheduler" section. The message is a struct with
//! `from`, `to` and `data`, and the template's route sends every outgoing message
//! to its `to` pid, so the scheduler delivers it with no orchestration from us.
//! Each Echo process receives `count` messages; for each it prints a line, sends
//! the data back to the sender, and performs a tiny effect (standing in for the
//! README's one-second `sleep`, which is skipped here). We create and start two
//! processes (pids 0 and 1), spoof a `hello` from 1 to 0 from outside, and update
//! the scheduler until it is idle.
//!
//! Expected output (the two processes alternate, 5 rounds each):
//!
//! ```text
//! 0> i=0 received hello from 1
//! 1> i=0 received hello from 0
//! 0> i=1 received hello from 1
//! 1> i=1 received hello from 0
//! 0> i=2 received hello from 1
//! 1> i=2 received hello from 0
//! 0> i=3 received hello from 1
//! 1> i=3 received hello from 0
//! 0> i=4 received hello from 1
//! 1> i=4 received hello from 0
//! both stopped after 9 passes; 1's last reply found no one (UnknownPid)
//! ```
//!
//! The last line: process 0 stops after its fifth message, so process 1's fifth
//! reply has no live recipient; the scheduler keeps it with the undelivered
//! messages (`take_undelivered`) rather than losing it silently.

use chronoflow::{Ctx, Pid, SimpleScheduler, Template};

/// The message the two processes exchange.
#[derive(Debug, Clone)]
pub struct Message {
    /// Who sent it.
    pub from: Pid,
    /// Where it goes (the route reads this).
    pub to: Pid,
    /// The text bounced back and forth.
    pub data: String,
}

/// Runs the story.
pub fn run() {
    let echo = Template::new("echo", |ctx: &mut Ctx<Message>, count: u32| {
        for i in 0..count {
            let Message { from, data, .. } = ctx.receive();
            let me = ctx.pid();
            println!(
                "{}> i={i} received {data} from {}",
                me.as_u64(),
                from.as_u64()
            );
            ctx.send(Message {
                from: me,
                to: from,
                data,
            });
            // A tiny effect in place of the README's `sleep(1_000)`.
            ctx.effect(|| i);
        }
    })
    .route(|outgoing: &Message| Some(outgoing.to));

    let mut scheduler = SimpleScheduler::new();
    let proc1 = scheduler.create(&echo, 5).expect("a stack");
    let proc2 = scheduler.create(&echo, 5).expect("a stack");
    scheduler.start(proc1.pid()).expect("created, not started");
    scheduler.start(proc2.pid()).expect("created, not started");

    // Spoof a message from proc2 to proc1 to get the ball rolling.
    scheduler
        .send(
            proc1.pid(),
            Message {
                from: proc2.pid(),
                to: proc1.pid(),
                data: "hello".to_string(),
            },
        )
        .expect("proc1's inbox has room");

    let mut passes = 0;
    while !scheduler.update().is_idle() {
        passes += 1;
    }

    assert_eq!(scheduler.result(proc1), Some(Ok(())));
    assert_eq!(scheduler.result(proc2), Some(Ok(())));
    let undelivered = scheduler.take_undelivered();
    assert_eq!(undelivered.len(), 1);
    println!(
        "both stopped after {passes} passes; {}'s last reply found no one ({:?})",
        proc2.pid().as_u64(),
        undelivered[0].reason
    );
}
