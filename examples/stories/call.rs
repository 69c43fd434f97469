//! The Call story: request and reply with `call`, a name, a monitor and a
//! timeout (the README's "Calls, timers, names and groups").
//!
//! A key-value server registers itself as `"kv"`. A client finds it by name and
//! calls it: a put, a get, then a request that the server holds without
//! replying, which times out on the scheduler's clock (a `ManualClock` here,
//! moved by the story); the server's late answer to it is dropped, not taken
//! for the next call. Last, the client asks the server to crash during a call:
//! the call ends with the server's DOWN, not with a timeout.
//!
//! Expected output:
//!
//! ```text
//! a key-value server registers itself as "kv"; a client calls it by name
//! put("lang", "erlang") -> Ok(None)
//! get("lang") -> Ok(Some("erlang"))
//! slow() with a 50 ms timeout ... (the clock moves on 50 ms)
//! slow() -> Err(Timeout)
//! get("lang") -> Ok(Some("erlang"))   (the late reply to slow() was dropped)
//! crash() -> Err(Down(Custom("asked to crash")))
//! the name "kv" is free again: whereis("kv") = None
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use chronoflow::{Ctx, ExitError, ManualClock, ReplyTo, SimpleScheduler, Template, Time, Value};

/// The server's requests, each with where its reply goes.
#[derive(Debug, Clone)]
pub enum Msg {
    /// Store a value: the reply is the value it replaced.
    Put(String, String, ReplyTo<Option<String>>),
    /// Read a value.
    Get(String, ReplyTo<Option<String>>),
    /// A request the server answers only when the next request comes.
    Slow(ReplyTo<Option<String>>),
    /// End the server, with a reason of its own.
    Crash,
}

/// The key-value server.
fn server() -> Template<Msg, Msg, (), ()> {
    Template::new("kv", |ctx: &mut Ctx<Msg>, ()| {
        let me = ctx.pid();
        ctx.register("kv", me).expect("the name is free");
        let mut store = BTreeMap::new();
        let mut held = None;
        loop {
            let msg = ctx.receive();
            if let Some(late) = held.take() {
                // Too late: the caller gave up; the reply is dropped unread.
                let _ = ctx.reply(late, Some("late".to_string()));
            }
            match msg {
                Msg::Put(k, v, from) => {
                    let _ = ctx.reply(from, store.insert(k, v));
                }
                Msg::Get(k, from) => {
                    let _ = ctx.reply(from, store.get(&k).cloned());
                }
                Msg::Slow(from) => held = Some(from),
                Msg::Crash => ctx.exit(ExitError::Custom(Value::text_of("asked to crash"))),
            }
        }
    })
}

/// Runs the story.
pub fn run() {
    println!("a key-value server registers itself as \"kv\"; a client calls it by name");
    let mut sched = SimpleScheduler::new();
    let clock = ManualClock::new(Time::from_nanos(0));
    sched.set_clock(clock.clone());
    let client = Template::new("client", |ctx: &mut Ctx<Msg>, ()| {
        let kv = ctx.whereis("kv").expect("registered");
        let timeout = Some(Duration::from_millis(50));
        let r = ctx.call(kv, |r| Msg::Put("lang".into(), "erlang".into(), r), timeout);
        println!("put(\"lang\", \"erlang\") -> {r:?}");
        let r = ctx.call(kv, |r| Msg::Get("lang".into(), r), timeout);
        println!("get(\"lang\") -> {r:?}");
        println!("slow() with a 50 ms timeout ... (the clock moves on 50 ms)");
        let r = ctx.call(kv, Msg::Slow, timeout);
        println!("slow() -> {r:?}");
        let r = ctx.call(kv, |r| Msg::Get("lang".into(), r), timeout);
        println!("get(\"lang\") -> {r:?}   (the late reply to slow() was dropped)");
        let r = ctx.call(kv, |_: ReplyTo<()>| Msg::Crash, timeout);
        println!("crash() -> {r:?}");
    });
    let _server = sched.spawn(&server(), ()).expect("spawn the server");
    let client = sched.spawn(&client, ()).expect("spawn the client");
    sched.run_until_idle();
    clock.advance(Duration::from_millis(50));
    sched.run_until_idle();
    assert_eq!(sched.result(&client), Some(Ok(())));
    println!(
        "the name \"kv\" is free again: whereis(\"kv\") = {:?}",
        sched.whereis("kv")
    );
}
