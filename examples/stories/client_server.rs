//! The Client/Server story: selective receive with `select`.
//!
//! The README's "Selecting and Filtering Messages" section. Requests and replies
//! are one enum routed by their `to` field. The server loops forever: it takes a
//! request, answers `TIME` with the current time in milliseconds (read through
//! `ctx.effect`, so it would be recorded in a USE signal) and anything else with an
//! error. The client sends requests 100, 101 and 102, then uses `select` to take
//! the replies out of arrival order: 102 first, then 101, then 100. Replies that do
//! not match stay in the inbox until a later `select` takes them.
//!
//! Expected output (the times vary):
//!
//! ```text
//! client got reply 102 from <0>: error "unknown command STOP"
//! client got reply 101 from <0>: time 1732245600123 ms
//! client got reply 100 from <0>: time 1732245600123 ms
//! client result: [102, 101, 100]; the server still waits: Some(Waiting(Message))
//! ```

use std::time::{SystemTime, UNIX_EPOCH};

use chronoflow::{Ctx, Pid, SimpleScheduler, Template};

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
        /// The time in milliseconds since the Unix epoch, or an error.
        result: Result<u64, String>,
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
    // The body never returns; the result type `()` is spelled out because a
    // closure that only loops would otherwise have the never type `!`.
    let server = Template::<Msg, Msg, (), ()>::new("server", |ctx: &mut Ctx<Msg>, (): ()| {
        loop {
            let Msg::Request {
                id, from, command, ..
            } = ctx.receive()
            else {
                continue; // not a request: ignore it
            };
            let result = if command == "TIME" {
                Ok(ctx.effect(|| {
                    SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis() as u64)
                }))
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
                Ok(millis) => println!("client got reply {id} from {from}: time {millis} ms"),
                Err(error) => println!("client got reply {id} from {from}: error {error:?}"),
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
        .result(client)
        .expect("the client has ended")
        .expect("the client did not fail");
    assert_eq!(order, [102, 101, 100]);
    println!(
        "client result: {order:?}; the server still waits: {:?}",
        scheduler.status(server.pid())
    );
}
