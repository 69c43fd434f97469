//! The Greeter story: a standalone process, fed with `push` and read with `pull`.
//!
//! The README's "A standalone process" section: a template whose body receives
//! `count` names and sends a greeting for each. `template.create(Pid(0), 10)` makes a
//! standalone process with pid 0 (no scheduler), `start()` runs it until it waits
//! for its first name, each `push(name)` delivers a name and runs the process
//! until it waits again, and `pull()` drains the signals it emitted meanwhile. The
//! body prints `received <name>` as it runs; every signal is printed with its
//! `Display` impl, `<pid> #<seq> KIND payload`, which the story explains before
//! the first one. A standalone process has no route: what it sends goes to its
//! outbox as a SEND signal, shown as `SEND (no route)`.
//!
//! Expected output:
//!
//! ```text
//! A process on its own, without a scheduler: we push it names and pull what it emitted.
//! Its signals are printed as `<pid> #seq KIND payload`: the process's pid, the signal's
//! number in that process's sequence (0, 1, 2, ...), what happened, and its data.
//! SEND (no route): it sent a message with no destination, kept in its outbox for pull().
//! received Alice
//!   <0> #0 START
//!   <0> #1 SEND (no route): "greeting #0: Hello Alice!"
//! received Bob
//!   <0> #2 SEND (no route): "greeting #1: Hello Bob!"
//! received Carol
//!   <0> #3 SEND (no route): "greeting #2: Hello Carol!"
//! after 3 of its 10 names, the greeter is waiting for a message (status Waiting(Message))
//! ```

use chronoflow::{Ctx, Pid, Status, Template, Wait};

/// Runs the story.
pub fn run() {
    println!(
        "A process on its own, without a scheduler: we push it names and pull what it emitted."
    );
    println!(
        "Its signals are printed as `<pid> #seq KIND payload`: the process's pid, the signal's"
    );
    println!("number in that process's sequence (0, 1, 2, ...), what happened, and its data.");
    println!(
        "SEND (no route): it sent a message with no destination, kept in its outbox for pull()."
    );

    // Inbound and outbound messages are both `String`; the argument is how many
    // names to greet.
    let greeter = Template::new("greeter", |ctx: &mut Ctx<String, String>, count: u32| {
        for i in 0..count {
            let name = ctx.receive();
            println!("received {name}");
            ctx.send(format!("greeting #{i}: Hello {name}!"));
        }
    });

    let mut proc = greeter.create(Pid(0), 10).expect("a stack for the process");
    proc.start().expect("started once");

    for name in ["Alice", "Bob", "Carol"] {
        proc.push(name.to_string())
            .expect("the greeter is waiting for a name");
        for signal in proc.pull() {
            println!("  {signal}");
        }
    }

    let status = proc.status();
    assert_eq!(status, Status::Waiting(Wait::Message));
    println!("after 3 of its 10 names, the greeter is waiting for a message (status {status:?})");
}
