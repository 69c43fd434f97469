//! A tour of chronoflow: the stories of the README's "Examples" table, run one
//! after the other, each under a heading and a line or two saying what it shows:
//!
//! 1. Greeter: a standalone process, fed with `push`, read with `pull`.
//! 2. Echo: two processes in a `SimpleScheduler` bouncing a message.
//! 3. Client/Server: selective receive with `select`.
//! 4. Parent/Child: children receive what their parent receives; `join`.
//! 5. Backoff: a fast producer backs off on a slow consumer's small inbox.
//! 6. Swarm: a hundred thousand stackless processes.
//! 7. Call: request and reply by name, with a monitor and a timeout.
//! 8. Supervision: a crashed worker restarted under its name, then a restart
//!    budget that runs out.
//! 9. Chat: a chat room as a server (`otp::server`) with typed calls; a member
//!    that crashes leaves, through the room's monitor; the room's own timer and
//!    stash hold what comes while it is locked; the scheduler shuts down
//!    gracefully.
//! 10. Pool: a dynamic supervisor starts workers on demand (at most three,
//!     each with a restart budget of its own); an agent keeps the tally of
//!     their work.
//! 11. Cores: a runtime of two cores; workers spread over them and joined
//!     across cores; back-pressure across cores.
//!
//! Each story lives in `examples/stories/` (which documents its expected output)
//! and also runs on its own as an example of the same name, for instance
//! `cargo run --example echo`.
//!
//! Run with `cargo run --release --example tour` (the swarm is slow in a debug
//! build).
#![feature(coroutines)]

#[path = "stories/backoff.rs"]
mod backoff;
#[path = "stories/call.rs"]
mod call;
#[path = "stories/chat.rs"]
mod chat;
#[path = "stories/client_server.rs"]
mod client_server;
#[path = "stories/cores.rs"]
mod cores;
#[path = "stories/echo.rs"]
mod echo;
#[path = "stories/greeter.rs"]
mod greeter;
#[path = "stories/parent_child.rs"]
mod parent_child;
#[path = "stories/pool.rs"]
mod pool;
#[path = "stories/supervision.rs"]
mod supervision;
#[path = "stories/swarm.rs"]
mod swarm;

fn main() {
    println!("chronoflow tour: short programs, each printing what its processes do.");
    println!("Processes are named by pid, written <0>, <1>, ...");
    println!();
    let stories: [(&str, fn()); 11] = [
        ("Greeter: a standalone process", greeter::run),
        ("Echo: two processes in a SimpleScheduler", echo::run),
        ("Client/Server: selective receive", client_server::run),
        ("Parent/Child: child processes", parent_child::run),
        ("Backoff: a full inbox holds the sender back", backoff::run),
        ("Swarm: stackless processes", swarm::run),
        ("Call: request and reply by name", call::run),
        ("Supervision: restarts, a name, a budget", supervision::run),
        (
            "Chat: a server with typed calls, its own timer and stash, and a graceful shutdown",
            chat::run,
        ),
        ("Pool: a dynamic supervisor and an agent", pool::run),
        ("Cores: one scheduler per core", cores::run),
    ];
    for (i, (title, run)) in stories.into_iter().enumerate() {
        if i > 0 {
            println!();
        }
        println!("== {}. {title} ==", i + 1);
        run();
    }
}
