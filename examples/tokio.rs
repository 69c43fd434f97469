//! A TCP chat server on tokio, in which every connection is a pair of chronoflow
//! processes: a reader that reads lines from the socket and a writer that writes
//! the lines the room sends it, both through effect futures
//! ([`Ctx::effect_future`] over tokio's `io::Result`s). A `room` process relays
//! what each client says to the others, and tokio tasks (here an announcer)
//! feed messages to it through a [`Sender`], from outside the scheduler.
//!
//! The scheduler lives in the tokio runtime's thread: `serve` awaits
//! [`SimpleScheduler::run`] and the listener's `accept` together, and spawns the
//! processes of each new connection between passes (`run` is cancel-safe).
//!
//! ```sh
//! cargo run --example tokio                  # listens on 127.0.0.1:7878
//! nc 127.0.0.1 7878                          # in two other terminals: chat
//! ```
//!
//! `cargo test --example tokio` (and the project's `cargo test`) runs the test
//! at the bottom against a real socket on 127.0.0.1.

use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use chronoflow::{Ctx, Handle, Pid, Sender, SimpleScheduler, Template};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// The one message type of the chat's processes.
#[derive(Debug, Clone)]
pub enum Msg {
    /// A client's writer joined the room.
    Join(Pid),
    /// A client (named by its writer) said a line.
    Said { from: Pid, text: String },
    /// A client (named by its writer) closed its connection.
    Left(Pid),
    /// A line for everyone, from outside the scheduler.
    Announce(String),
    /// A line for a writer to write to its client.
    Line(Arc<str>),
    /// To the room: close the chat. To a writer: close the connection.
    Bye,
}

/// The room: relays what each client says to the others. Returns how many
/// lines it relayed, once told `Bye`.
fn room() -> Template<Msg, Msg, (), usize> {
    Template::new("room", |ctx: &mut Ctx<Msg>, _: ()| {
        let mut members: Vec<Pid> = Vec::new();
        let mut relayed = 0;
        loop {
            match ctx.receive() {
                Msg::Join(who) => {
                    tell(ctx, &members, format!("* {who} joined"));
                    members.push(who);
                }
                Msg::Said { from, text } => {
                    relayed += 1;
                    let others: Vec<Pid> = members.iter().copied().filter(|&m| m != from).collect();
                    tell(ctx, &others, format!("{from}: {text}"));
                }
                Msg::Left(who) => {
                    members.retain(|&m| m != who);
                    ctx.send_to(who, Msg::Bye);
                    tell(ctx, &members, format!("* {who} left"));
                }
                Msg::Announce(text) => tell(ctx, &members, format!("! {text}")),
                Msg::Bye => {
                    for member in members {
                        ctx.send_to(member, Msg::Bye);
                    }
                    return relayed;
                }
                Msg::Line(_) => {}
            }
        }
    })
}

/// Sends `line` to each of `members`' writers.
fn tell(ctx: &mut Ctx<Msg>, members: &[Pid], line: String) {
    let line: Arc<str> = line.into();
    for &member in members {
        ctx.send_to(member, Msg::Line(line.clone()));
    }
}

/// A connection's writer: writes what the room sends it until `Bye`, then
/// closes its half of the connection (dropping it).
fn writer() -> Template<Msg, Msg, OwnedWriteHalf, ()> {
    Template::new("writer", |ctx: &mut Ctx<Msg>, mut out: OwnedWriteHalf| {
        let mut line = format!("* welcome, you are {}\n", ctx.pid());
        let mut open = true;
        loop {
            if open {
                // A write that fails (the client went) ends the writing; the
                // reader sees the connection close and tells the room.
                let written: io::Result<()> = ctx.effect_future(out.write_all(line.as_bytes()));
                open = written.is_ok();
            }
            match ctx.receive() {
                Msg::Line(text) => line = format!("{text}\n"),
                Msg::Bye => return,
                _ => {}
            }
        }
    })
}

/// A connection's reader: tells the room what the client says, and when the
/// client leaves. Returns how many lines it read.
fn reader() -> Template<Msg, Msg, (OwnedReadHalf, Pid, Pid), usize> {
    Template::new(
        "reader",
        |ctx: &mut Ctx<Msg>, (input, room, writer): (OwnedReadHalf, Pid, Pid)| {
            ctx.send_to(room, Msg::Join(writer));
            let mut lines = BufReader::new(input).lines();
            let mut said = 0;
            loop {
                let line: io::Result<Option<String>> = ctx.effect_future(lines.next_line());
                match line {
                    Ok(Some(text)) => {
                        said += 1;
                        ctx.send_to(room, Msg::Said { from: writer, text });
                    }
                    // Closed, or broken.
                    Ok(None) | Err(_) => {
                        ctx.send_to(room, Msg::Left(writer));
                        return said;
                    }
                }
            }
        },
    )
}

/// How long the processes get to say goodbye once the chat closes.
const GRACE: Duration = Duration::from_millis(200);

/// A chat server: a scheduler with its room.
pub struct Chat {
    sched: SimpleScheduler<Msg>,
    room: Handle<usize>,
}

impl Chat {
    /// A chat with an empty room.
    pub fn new() -> Chat {
        let mut sched = SimpleScheduler::new();
        let room = sched.spawn(&room(), ()).expect("a room");
        Chat { sched, room }
    }

    /// The room's pid, for [`Msg::Announce`] from outside.
    pub fn room(&self) -> Pid {
        self.room.pid()
    }

    /// A handle through which tokio tasks (or threads) send to the room.
    pub fn sender(&mut self) -> Sender<Msg> {
        self.sched.sender()
    }

    /// A new connection: its writer and its reader. Their results are not
    /// read (detached), so a long-running chat does not keep them.
    fn connect(&mut self, stream: TcpStream) {
        let (input, output) = stream.into_split();
        let writer = self.sched.spawn_detached(&writer(), output).expect("spawn");
        let room = self.room.pid();
        self.sched
            .spawn_detached(&reader(), (input, room, writer))
            .expect("spawn");
    }

    /// Serves connections from `listener` until `shutdown` completes, then
    /// tells everyone, closes the room and the connections (after a grace
    /// period for the last writes), and returns how many lines the room
    /// relayed.
    pub async fn serve(
        mut self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<usize> {
        let mut shutdown = pin!(shutdown);
        let mut idle = false;
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, _) = accepted?;
                    self.connect(stream);
                    idle = false;
                }
                () = &mut shutdown => break,
                // Runs the processes; it ends only when nothing can wake them
                // (no connection, no sender): then only a connection can.
                _ = self.sched.run(), if !idle => idle = true,
            }
        }
        let room = self.room.pid();
        let bye = Msg::Announce("server shutting down".into());
        self.sched.send(room, bye).expect("the room is there");
        self.sched.send(room, Msg::Bye).expect("the room is there");
        // The readers wait on their clients: give the writers `GRACE` to
        // finish, then drop the scheduler, which stops every process.
        let _ = tokio::time::timeout(GRACE, self.sched.run()).await;
        let relayed = self.sched.result(&self.room);
        Ok(relayed.and_then(Result::ok).unwrap_or(0))
    }
}

impl Default for Chat {
    fn default() -> Self {
        Chat::new()
    }
}

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7878".into());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async {
        let listener = TcpListener::bind(&addr).await?;
        println!("chat on {addr}: connect with `nc {addr}`; Ctrl-D in a client leaves");
        let mut chat = Chat::new();
        // A tokio task that feeds the room through the handle.
        let announcer = chat.sender();
        let room = chat.room();
        tokio::task::spawn_local(async move {
            let mut minutes = 0;
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                minutes += 1;
                let text = format!("the chat has been up for {minutes} min");
                if announcer.send(room, Msg::Announce(text)).await.is_err() {
                    return;
                }
            }
        });
        let relayed = chat.serve(listener, std::future::pending()).await?;
        println!("relayed {relayed} lines");
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{BufReader, Lines};

    /// A chat client over a real socket.
    struct Client {
        lines: Lines<BufReader<OwnedReadHalf>>,
        out: OwnedWriteHalf,
    }

    impl Client {
        async fn connect(addr: std::net::SocketAddr) -> Client {
            let (input, out) = TcpStream::connect(addr).await.unwrap().into_split();
            Client {
                lines: BufReader::new(input).lines(),
                out,
            }
        }

        /// The next line, or `None` at the end.
        async fn next(&mut self) -> Option<String> {
            tokio::time::timeout(Duration::from_secs(10), self.lines.next_line())
                .await
                .expect("a line within 10 s")
                .unwrap()
        }

        async fn line(&mut self) -> String {
            self.next().await.expect("a line, not the end")
        }

        /// The welcome line's pid.
        async fn welcome(&mut self) -> String {
            let line = self.line().await;
            line.strip_prefix("* welcome, you are ")
                .expect("a welcome")
                .to_string()
        }

        async fn say(&mut self, text: &str) {
            self.out
                .write_all(format!("{text}\n").as_bytes())
                .await
                .unwrap();
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn two_clients_chat_hear_announcements_and_are_closed_at_shutdown() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut chat = Chat::new();
        let announcer = chat.sender();
        let room = chat.room();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = chat.serve(listener, async {
            let _ = stopped.await;
        });
        let clients = async move {
            let mut a = Client::connect(addr).await;
            let a_pid = a.welcome().await;
            let mut b = Client::connect(addr).await;
            let b_pid = b.welcome().await;
            assert_eq!(a.line().await, format!("* {b_pid} joined"));
            a.say("hello").await;
            assert_eq!(b.line().await, format!("{a_pid}: hello"));
            // A task outside the scheduler, through the handle.
            let announce = Msg::Announce("maintenance at noon".into());
            announcer.send(room, announce).await.unwrap();
            assert_eq!(a.line().await, "! maintenance at noon");
            assert_eq!(b.line().await, "! maintenance at noon");
            drop(b);
            assert_eq!(a.line().await, format!("* {b_pid} left"));
            drop(announcer);
            stop.send(()).unwrap();
            assert_eq!(a.line().await, "! server shutting down");
            assert_eq!(a.next().await, None, "the server closed the connection");
        };
        let (relayed, ()) = tokio::join!(server, clients);
        assert_eq!(relayed.unwrap(), 1);
    }
}
