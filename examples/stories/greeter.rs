//! The Greeter story: a standalone process, fed with `push` and read with `pull`.
//!
//! The README's "Getting Started": a template whose body receives `count` names and
//! sends a greeting for each. `template.create(0, 10)` makes a standalone process
//! with pid 0 (no scheduler), `start()` runs it until it waits for its first name,
//! each `push(name)` delivers a name and runs the process until it waits again, and
//! `pull()` drains the signals it emitted meanwhile. The body prints
//! `received <name>` as it runs; every signal is printed with its `Display` impl
//! (`<pid> #<seq> <TYPE> ...`). A standalone process has no route: what it sends
//! goes to its outbox as a SEND signal, shown as `SEND (no route)`.
//!
//! Expected output:
//!
//! ```text
//! received Alice
//!   <0> #0 START
//!   <0> #1 SEND (no route): "greeting #0: Hello Alice!"
//! received Bob
//!   <0> #2 SEND (no route): "greeting #1: Hello Bob!"
//! received Carol
//!   <0> #3 SEND (no route): "greeting #2: Hello Carol!"
//! greeter status after 3 of 10 names: Waiting(Message)
//! ```

use chronoflow::{Ctx, Template};

/// Runs the story.
pub fn run() {
    // Inbound and outbound messages are both `String`; the argument is how many
    // names to greet.
    let greeter = Template::new("greeter", |ctx: &mut Ctx<String, String>, count: u32| {
        for i in 0..count {
            let name = ctx.receive();
            println!("received {name}");
            ctx.send(format!("greeting #{i}: Hello {name}!"));
        }
    });

    let mut proc = greeter.create(0, 10).expect("a stack for the process");
    proc.start().expect("started once");

    for name in ["Alice", "Bob", "Carol"] {
        proc.push(name.to_string())
            .expect("the greeter is waiting for a name");
        for signal in proc.pull() {
            println!("  {signal}");
        }
    }

    println!("greeter status after 3 of 10 names: {:?}", proc.status());
}
