//! The Echo story: two processes in a `SimpleScheduler` bouncing a message.
//!
//! The README's "The scheduler loop" section. The message is a struct with
//! `from`, `to` and `data`, and the template's route sends every outgoing message
//! to its `to` pid, so the scheduler delivers it with no orchestration from us.
//! Each Echo process receives `count` messages; for each it prints a line, sends
//! the data back to the sender, and performs an effect (a trivial one, `ctx.effect`
//! returning the round number; with recording on it would be a USE signal). We
//! create and start two processes (pids 0 and 1), send a `hello` to 0 from outside
//! as if 1 had sent it, and update the scheduler until a pass runs nothing. Each
//! `update()` is one pass: each process that is runnable when it begins runs one
//! turn (until it waits, or until its budget is used up).
//!
//! Expected output (the two processes alternate, 5 rounds each):
//!
//! ```text
//! Two processes in a scheduler bounce a message, 5 times each; each line is printed by its receiver.
//! <0>, round 0: received "hello" from <1>
//! <1>, round 0: received "hello" from <0>
//! <0>, round 1: received "hello" from <1>
//! <1>, round 1: received "hello" from <0>
//! <0>, round 2: received "hello" from <1>
//! <1>, round 2: received "hello" from <0>
//! <0>, round 3: received "hello" from <1>
//! <1>, round 3: received "hello" from <0>
//! <0>, round 4: received "hello" from <1>
//! <1>, round 4: received "hello" from <0>
//! both stopped after 9 passes of the scheduler (in a pass, each runnable process runs one turn)
//! <1>'s last reply found no one, as <0> had stopped: it is kept as undelivered (UnknownPid)
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
    println!(
        "Two processes in a scheduler bounce a message, 5 times each; each line is printed by \
         its receiver."
    );
    let echo = Template::new("echo", |ctx: &mut Ctx<Message>, count: u32| {
        for i in 0..count {
            let Message { from, data, .. } = ctx.receive();
            let me = ctx.pid();
            println!("{me}, round {i}: received {data:?} from {from}");
            ctx.send(Message {
                from: me,
                to: from,
                data,
            });
            // An effect, standing for real work: recorded (a USE signal) when
            // recording is on.
            ctx.effect(|| i);
        }
    })
    .route(|outgoing: &Message| Some(outgoing.to));

    let mut scheduler = SimpleScheduler::new();
    let proc1 = scheduler.create(&echo, 5).expect("a stack");
    let proc2 = scheduler.create(&echo, 5).expect("a stack");
    scheduler.start(proc1.pid()).expect("created, not started");
    scheduler.start(proc2.pid()).expect("created, not started");

    // A message to proc1, as if from proc2, to get the ball rolling.
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

    assert_eq!(scheduler.result(&proc1), Some(Ok(())));
    assert_eq!(scheduler.result(&proc2), Some(Ok(())));
    let undelivered = scheduler.take_undelivered();
    assert_eq!(undelivered.len(), 1);
    println!(
        "both stopped after {passes} passes of the scheduler (in a pass, each runnable \
         process runs one turn)"
    );
    println!(
        "{}'s last reply found no one, as {} had stopped: it is kept as undelivered ({:?})",
        proc2.pid(),
        proc1.pid(),
        undelivered[0].reason
    );
}
