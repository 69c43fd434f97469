//! The Client/Server story: selective receive with `select`.
//!
//! The README's "Receiving: receive, select, filter" section. Requests and
//! replies are one enum routed by their `to` field. The server loops forever: it
//! takes a request, answers `TIME` with the time elapsed since the story began
//! (read through `ctx.effect`, so it would be recorded in a USE signal) and
//! anything else with an error. The client sends requests 100, 101 and 102, then
//! uses `select` to take the replies out of arrival order: 102 first, then 101,
//! then 100. Replies that do not match stay in the inbox until a later `select`
//! takes them.
//!
//! Expected output (the times vary):
//!
//! ```text
//! A client sends requests 100, 101, 102 to a server, then takes the replies
//! in the order it picks, 102 first, with select (the others wait in its inbox).
//! client got reply 102 from server <0>: error "unknown command STOP"
//! client got reply 101 from server <0>: time 0.041 ms since the start
//! client got reply 100 from server <0>: time 0.039 ms since the start
//! the client ended with [102, 101, 100]
//! the server loops forever: it is waiting for a message (status Waiting(Message))
//! ```

use std::time::{Duration, Instant};

use chronoflow::{Ctx, Pid, SimpleScheduler, Status, Template, Wait};

/// Requests to the server and its replies, in one type: a scheduler's processes
/// share one message type.
#[derive(Debug, Clone)]
pub enum Msg {
    /// A request: run `command`.
    Request {
        /// Matches the reply to the request.
        id: u32,
        /// The client.
        from: Pid,
        /// The server.
        to: Pid,
        /// `TIME`, or anything else (an error).
        command: String,
    },
    /// The server's answer to request `id`.
    Reply {
        /// The request's id.
        id: u32,
        /// The server.
        from: Pid,
        /// The client.
        to: Pid,
        /// The time elapsed since the story began, or an error.
        result: Result<Duration, String>,
    },
}

impl Msg {
    /// Where the message goes.
    pub fn to(&self) -> Pid {
        match self {
            Msg::Request { to, .. } | Msg::Reply { to, .. } => *to,
        }
    }
}

/// Runs the story.
pub fn run() {
    println!("A client sends requests 100, 101, 102 to a server, then takes the replies");
    println!("in the order it picks, 102 first, with select (the others wait in its inbox).");
    let start = Instant::now();
    // The body never returns; the result type `()` is spelled out because a
    // closure that only loops would otherwise have the never type `!`.
    let server = Template::<Msg, Msg, (), ()>::new("server", move |ctx: &mut Ctx<Msg>, (): ()| {
        loop {
            let Msg::Request {
                id, from, command, ..
            } = ctx.receive()
            else {
                continue; // not a request: ignore it
            };
            let result = if command == "TIME" {
                Ok(ctx.effect(|| start.elapsed()))
            } else {
                Err(format!("unknown command {command}"))
            };
            let me = ctx.pid();
            ctx.send(Msg::Reply {
                id,
                from: me,
                to: from,
                result,
            });
        }
    })
    .route(|outgoing: &Msg| Some(outgoing.to()));

    let client = Template::new("client", |ctx: &mut Ctx<Msg>, server: Pid| {
        let me = ctx.pid();
        for (id, command) in [(100, "TIME"), (101, "TIME"), (102, "STOP")] {
            ctx.send(Msg::Request {
                id,
                from: me,
                to: server,
                command: command.to_string(),
            });
        }
        let mut order = Vec::new();
        for wanted in [102, 101, 100] {
            let reply =
                ctx.select(|incoming| matches!(incoming, Msg::Reply { id, .. } if *id == wanted));
            let Msg::Reply {
                id, from, result, ..
            } = reply
            else {
                unreachable!("select matched a reply");
            };
            match result {
                Ok(time) => println!(
                    "client got reply {id} from server {from}: time {:.3} ms since the start",
                    time.as_secs_f64() * 1e3
                ),
                Err(error) => println!("client got reply {id} from server {from}: error {error:?}"),
            }
            order.push(id);
        }
        order
    })
    .route(|outgoing: &Msg| Some(outgoing.to()));

    let mut scheduler = SimpleScheduler::new();
    let server = scheduler.spawn(&server, ()).expect("a stack");
    let client = scheduler.spawn(&client, server.pid()).expect("a stack");
    scheduler.run_until_idle();

    let order = scheduler
        .result(&client)
        .expect("the client has ended")
        .expect("the client did not fail");
    assert_eq!(order, [102, 101, 100]);
    let status = scheduler.status(server.pid());
    assert_eq!(status, Some(Status::Waiting(Wait::Message)));
    println!("the client ended with {order:?}");
    println!(
        "the server loops forever: it is waiting for a message (status {:?})",
        status.expect("the server is alive")
    );
}
