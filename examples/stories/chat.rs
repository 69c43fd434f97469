//! The Chat story: a chat room as a server (`otp::server`, OTP's
//! `gen_server`) with typed calls (the README's "Servers").
//!
//! The room is a `Server`: `Join` is a call that answers who is there (or
//! that the nick is taken), `Say` is a cast, and the room monitors each
//! member, so that one that ends (crashes, here) is gone from the room and the
//! others hear of it, in `handle_info`. Members are plain processes that print
//! what the room sends them. A wrong call type would not compile: the room's
//! handle, `ServerRef<Room>`, takes `Ask` and gives `Answer`.
//!
//! A moderator locks the room for a moment: the room's own timer
//! (`ctx.timers().send_after`) reopens it, and what came meanwhile (a join, a
//! line) waits in the room's stash, handled in order once it reopens. At the
//! end the scheduler shuts down (`SimpleScheduler::shutdown`): the newest
//! processes first, the room last, its `terminate` run.
//!
//! Expected output:
//!
//! ```text
//! a chat room server; alice, bob and a second "bob" join it
//! alice joins: Ok(Welcome(["alice"]))
//! alice hears: bob joined
//! bob joins: Ok(Welcome(["alice", "bob"]))
//! the second bob joins: Ok(Taken)
//! bob hears: alice: hello
//! bob crashes: the room's monitor tells it
//! alice hears: bob left (failed: a crash)
//! alice asks who is there: Ok(Welcome(["alice"]))
//! the room is locked for 20 ms; carol joins and alice speaks meanwhile
//! alice hears: the room is open again
//! alice hears: carol joined
//! carol joins: Ok(Welcome(["alice", "carol"]))
//! carol hears: alice: anyone new?
//! the scheduler shuts down, the newest processes first
//! the room stops: its terminate says goodbye to 0 member(s)
//! shut down: 3 stopped, 0 killed
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use chronoflow::otp::server::{self, Flow, Init, Reply, Server, ServerCtx, ServerRef};
use chronoflow::{Ctx, ExitError, Local, Mail, MonitorRef, Pid, Reason, SimpleScheduler, Template};

/// What members hear (and the room's own timer message).
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    Line(String),
    /// A member is asked to crash (the story's way to end one).
    Crash,
    /// The room's timer: it reopens.
    Reopen,
}

/// What the room is told (casts).
pub enum Tell {
    /// A line said by a member: its nick, the text.
    Say(String, String),
    /// Locked for this long: joins and lines wait in the room's stash.
    Lock(std::time::Duration),
}

/// The room's calls.
pub enum Ask {
    /// Join with a nick (the caller is the member).
    Join(String),
    /// Who is there.
    Who,
}

/// The room's answers.
#[derive(Debug, PartialEq)]
pub enum Answer {
    /// In: the members, by nick.
    Welcome(Vec<String>),
    /// The nick is someone else's.
    Taken,
}

/// The room's state: its members by nick, each with its pid and monitor;
/// whether it is locked.
pub struct Room {
    members: BTreeMap<String, (Pid, MonitorRef)>,
    locked: bool,
}

impl Room {
    /// Sends `line` to every member but `except`.
    fn broadcast(&self, ctx: &mut Ctx<Msg>, line: &str, except: Option<Pid>) {
        for &(pid, _) in self.members.values() {
            if Some(pid) != except {
                ctx.send_to(pid, Msg::Line(line.to_string()));
            }
        }
    }

    fn nicks(&self) -> Vec<String> {
        self.members.keys().cloned().collect()
    }
}

impl Server for Room {
    type Engine = server::Stackful;
    type Msg = Msg;
    type Args = ();
    type Call = Ask;
    type Reply = Answer;
    type Cast = Tell;
    type Continue = ();

    fn init(ctx: &mut ServerCtx<Self>, (): ()) -> Init<Self> {
        let me = ctx.pid();
        ctx.register("room", me).expect("the name is free");
        Init::Ok(Room {
            members: BTreeMap::new(),
            locked: false,
        })
    }

    fn handle_call(
        &mut self,
        ctx: &mut ServerCtx<Self>,
        ask: Ask,
        from: server::From<Answer>,
    ) -> Reply<Self> {
        if self.locked {
            ctx.stash_call(ask, from).expect("room in the stash");
            return Reply::NoReply;
        }
        match ask {
            Ask::Who => Reply::Reply(Answer::Welcome(self.nicks())),
            Ask::Join(nick) if self.members.contains_key(&nick) => Reply::Reply(Answer::Taken),
            Ask::Join(nick) => {
                let member = from.pid();
                self.broadcast(ctx, &format!("{nick} joined"), None);
                let monitor = ctx.monitor(member);
                self.members.insert(nick, (member, monitor));
                Reply::Reply(Answer::Welcome(self.nicks()))
            }
        }
    }

    fn handle_cast(&mut self, ctx: &mut ServerCtx<Self>, tell: Tell) -> Flow<Self> {
        match tell {
            Tell::Say(nick, text) if self.locked => {
                ctx.stash_cast(Tell::Say(nick, text))
                    .expect("room in the stash");
            }
            Tell::Say(nick, text) => {
                let from = self.members.get(&nick).map(|&(pid, _)| pid);
                self.broadcast(ctx, &format!("{nick}: {text}"), from);
            }
            Tell::Lock(how_long) => {
                self.locked = true;
                ctx.timers().send_after(how_long, Msg::Reopen);
            }
        }
        Flow::Continue
    }

    fn handle_info(&mut self, ctx: &mut ServerCtx<Self>, mail: Mail<Msg>) -> Flow<Self> {
        if let Mail::Msg(Msg::Reopen) = mail {
            self.locked = false;
            self.broadcast(ctx, "the room is open again", None);
            // What waited comes now, in the order it came.
            ctx.unstash_all();
        } else if let Mail::Down {
            monitor, reason, ..
        } = mail
        {
            let gone = self.members.iter().find(|(_, (_, m))| *m == monitor);
            if let Some(nick) = gone.map(|(nick, _)| nick.clone()) {
                self.members.remove(&nick);
                self.broadcast(ctx, &format!("{nick} left ({reason})"), None);
            }
        }
        Flow::Continue
    }

    fn terminate(&mut self, ctx: &mut ServerCtx<Self>, _reason: &Reason) {
        println!(
            "the room stops: its terminate says goodbye to {} member(s)",
            self.members.len()
        );
        self.broadcast(ctx, "the room is closing", None);
    }
}

/// A member: joins as `nick`, prints what it hears; says `line`, if any.
fn member() -> Template<Msg, Msg, (String, Option<String>), (), Local> {
    Template::local(
        "member",
        |ctx: &mut Ctx<Msg>, (nick, line): (String, Option<String>)| {
            let room = ServerRef::<Room>::new(ctx.whereis("room").expect("the room is up"));
            let joined = room.call(ctx, Ask::Join(nick.clone()));
            if joined == Ok(Answer::Taken) {
                println!("the second {nick} joins: {joined:?}");
                return;
            }
            println!("{nick} joins: {joined:?}");
            if let Some(line) = line {
                room.cast(ctx, Tell::Say(nick.clone(), line));
            }
            loop {
                match ctx.receive() {
                    Msg::Line(line) => println!("{nick} hears: {line}"),
                    Msg::Reopen => {}
                    Msg::Crash => {
                        println!("{nick} crashes: the room's monitor tells it");
                        ctx.exit(ExitError::Failed("a crash".into()));
                    }
                }
            }
        },
    )
}

/// Runs the story.
pub fn run() {
    println!("a chat room server; alice, bob and a second \"bob\" join it");
    let mut sched = SimpleScheduler::new();
    let room = sched
        .spawn(&server::template::<Room>("room"), ())
        .expect("spawn the room");
    sched.run_until_idle();
    let alice = sched
        .spawn(&member(), ("alice".to_string(), None))
        .expect("spawn alice");
    sched.run_until_idle();
    let bob = sched
        .spawn(&member(), ("bob".to_string(), None))
        .expect("spawn bob");
    sched.run_until_idle();
    sched
        .spawn(&member(), ("bob".to_string(), None))
        .expect("spawn the second bob");
    sched.run_until_idle();
    // alice says hello (the owner casts it for her).
    let handle = ServerRef::<Room>::new(room.pid());
    sched.cast_server(&handle, Tell::Say("alice".to_string(), "hello".to_string()));
    sched.run_until_idle();
    sched.send(bob.pid(), Msg::Crash).expect("bob is alive");
    sched.run_until_idle();
    println!(
        "alice asks who is there: {:?}",
        sched.call_server(&handle, Ask::Who)
    );
    println!("the room is locked for 20 ms; carol joins and alice speaks meanwhile");
    sched.cast_server(&handle, Tell::Lock(Duration::from_millis(20)));
    sched.run_until_idle();
    sched
        .spawn(&member(), ("carol".to_string(), None))
        .expect("spawn carol");
    sched.run_until_idle();
    let anyone = Tell::Say("alice".to_string(), "anyone new?".to_string());
    sched.cast_server(&handle, anyone);
    // Until the room's timer has fired and what it held is handled.
    sched.run_blocking();
    println!("the scheduler shuts down, the newest processes first");
    let report = sched.shutdown(Duration::from_secs(1), true);
    println!(
        "shut down: {} stopped, {} killed",
        report.stopped,
        report.killed.len()
    );
    assert!(sched.result(&alice).is_some(), "alice was stopped");
}
