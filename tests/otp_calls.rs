//! Request/reply calls: replies, timeouts, a server that ends, late replies.

use std::time::Duration;

use chronoflow::{
    CallError, Ctx, ManualClock, Pid, Reason, ReplyTo, SimpleScheduler, Template, Time,
};

#[derive(Debug, Clone, PartialEq)]
enum Msg {
    /// Add to the counter; the reply is the new value.
    Add(u64, ReplyTo<u64>),
    /// Hold the request: the reply comes when `Release` does.
    Hold(ReplyTo<u64>),
    Release,
    /// End (failing) without replying.
    Crash(ReplyTo<u64>),
}

fn server() -> Template<Msg, Msg, (), ()> {
    Template::new("server", |ctx: &mut Ctx<Msg>, ()| {
        let mut total = 0;
        let mut held = Vec::new();
        loop {
            match ctx.receive() {
                Msg::Add(n, from) => {
                    total += n;
                    let _ = ctx.reply(from, total);
                }
                Msg::Hold(from) => held.push(from),
                Msg::Release => {
                    for from in held.drain(..) {
                        let _ = ctx.reply(from, 999);
                    }
                }
                Msg::Crash(_) => panic!("crashed on request"),
            }
        }
    })
}

#[test]
fn a_call_gets_its_reply() {
    let mut s = SimpleScheduler::new();
    let srv = s.spawn(&server(), ()).unwrap();
    let pid = srv.pid();
    let client = Template::new("client", move |ctx: &mut Ctx<Msg>, ()| {
        let a = ctx.call(pid, |r| Msg::Add(2, r), None);
        let b = ctx.call(pid, |r| Msg::Add(3, r), Some(Duration::from_secs(5)));
        (a, b)
    });
    let c = s.spawn(&client, ()).unwrap();
    s.run_until_idle();
    assert_eq!(s.result(&c), Some(Ok((Ok(2), Ok(5)))));
}

#[test]
fn a_call_to_a_dead_server_is_noproc_and_one_that_dies_is_down() {
    let mut s = SimpleScheduler::new();
    let srv = s.spawn(&server(), ()).unwrap();
    let pid = srv.pid();
    let client = Template::new("client", move |ctx: &mut Ctx<Msg>, ()| {
        let crashed = ctx.call(pid, Msg::Crash, None);
        let after = ctx.call(pid, |r| Msg::Add(1, r), None);
        let never = ctx.call(Pid(4242), |r| Msg::Add(1, r), None);
        (crashed, after, never)
    });
    let c = s.spawn(&client, ()).unwrap();
    s.run_until_idle();
    assert_eq!(
        s.result(&c),
        Some(Ok((
            Err(CallError::Down(Reason::Failed("crashed on request".into()))),
            Err(CallError::NoProc),
            Err(CallError::NoProc),
        )))
    );
}

#[test]
fn a_late_reply_after_a_timeout_is_dropped_not_taken_for_the_next_call() {
    let mut s = SimpleScheduler::new();
    let clock = ManualClock::new(Time::from_nanos(0));
    s.set_clock(clock.clone());
    let srv = s.spawn(&server(), ()).unwrap();
    let pid = srv.pid();
    let client = Template::new("client", move |ctx: &mut Ctx<Msg>, ()| {
        let first = ctx.call(pid, Msg::Hold, Some(Duration::from_millis(100)));
        // The held request is answered (999) only now, after the timeout.
        ctx.send_to(pid, Msg::Release);
        let second = ctx.call(pid, |r| Msg::Add(1, r), Some(Duration::from_millis(100)));
        let leftover = ctx.try_receive_mail();
        (first, second, leftover)
    });
    let c = s.spawn(&client, ()).unwrap();
    s.run_until_idle();
    assert_eq!(s.result(&c), None, "the first call waits");
    clock.advance(Duration::from_millis(99));
    s.run_until_idle();
    assert_eq!(s.result(&c), None, "not before its deadline");
    clock.advance(Duration::from_millis(1));
    s.run_until_idle();
    assert_eq!(
        s.result(&c),
        Some(Ok((Err(CallError::Timeout), Ok(1), None)))
    );
}

#[test]
fn a_reply_from_outside_reaches_a_waiting_caller_and_one_to_an_ended_caller_comes_back() {
    let mut s = SimpleScheduler::new();
    // A "server" that hands the request to the owner and waits.
    let slot = std::sync::Arc::new(std::sync::Mutex::new(None));
    let out = slot.clone();
    let relay = Template::new("relay", move |ctx: &mut Ctx<Msg>, ()| {
        if let Msg::Hold(from) = ctx.receive() {
            *out.lock().unwrap() = Some(from);
        }
        ctx.receive();
    });
    let r = s.spawn(&relay, ()).unwrap();
    let pid = r.pid();
    let client = Template::new("client", move |ctx: &mut Ctx<Msg>, ()| {
        ctx.call(pid, Msg::Hold, None)
    });
    let c = s.spawn(&client, ()).unwrap();
    s.run_until_idle();
    let from: ReplyTo<u64> = slot.lock().unwrap().take().unwrap();
    assert_eq!(from.pid(), c.pid());
    s.reply(from, 7).unwrap();
    s.run_until_idle();
    assert_eq!(s.result(&c), Some(Ok(Ok(7))));
    // The caller ended: a reply gives the value back.
    assert_eq!(s.reply(from, 8), Err(8));
}

#[test]
fn a_process_cannot_call_itself() {
    let mut s = SimpleScheduler::new();
    let t = Template::new("t", |ctx: &mut Ctx<Msg>, ()| {
        let me = ctx.pid();
        ctx.call(me, |r| Msg::Add(1, r), None)
    });
    let h = s.spawn(&t, ()).unwrap();
    s.run_until_idle();
    assert_eq!(s.result(&h), Some(Ok(Err(CallError::CallingSelf))));
}
