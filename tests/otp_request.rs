//! Typed system requests: asked from a process or from outside, answered or
//! refused by a plain process reading its mail, and their failures.

use std::time::Duration;

use chronoflow::{CallError, Ctx, Mail, ManualClock, RequestType, SimpleScheduler, Template, Time};

struct Other;
impl RequestType for Other {
    type Reply = ();
}

/// A request of the test's own.
struct Double(u32);
impl RequestType for Double {
    type Reply = u32;
}

#[test]
fn a_plain_process_reads_requests_as_mail_and_answers_or_refuses_them() {
    let mut s = SimpleScheduler::<u32>::new();
    let server = Template::<u32, u32, (), ()>::new("server", |ctx, ()| {
        for _ in 0..2 {
            match ctx.receive_mail() {
                Mail::Request(r) => match r.take::<Double>() {
                    Some((Double(n), to)) => ctx.reply(to, 2 * n).unwrap(),
                    None => ctx.refuse(&r),
                },
                other => panic!("{other:?}"),
            }
        }
    });
    let h = s.spawn(&server, ()).unwrap();
    assert_eq!(s.request(h.pid(), Double(21)), Ok(42));
    assert_eq!(s.request(h.pid(), Other), Err(CallError::Unhandled));
    assert_eq!(s.request(h.pid(), Double(1)), Err(CallError::NoProc));
    // One that never answers: from outside, the scheduler goes idle.
    let mute = Template::<u32, u32, (), ()>::new("mute", |ctx, ()| {
        ctx.receive();
    });
    let m = s.spawn(&mute, ()).unwrap();
    assert_eq!(s.request(m.pid(), Double(1)), Err(CallError::Timeout));
    assert_eq!(s.live(), 1);
}

#[test]
fn a_request_from_a_process_times_out_on_the_scheduler_clock_and_sees_the_server_end() {
    let clock = ManualClock::new(Time::from_nanos(0));
    let mut s = SimpleScheduler::<u32>::new();
    s.set_clock(clock.clone());
    let mute = Template::<u32, u32, (), ()>::new("mute", |ctx, ()| {
        ctx.receive();
    });
    let m = s.spawn(&mute, ()).unwrap();
    let asker = Template::<u32, u32, chronoflow::Pid, Vec<Result<u32, CallError>>>::new(
        "asker",
        |ctx: &mut Ctx<u32>, server| {
            let timed = ctx.request(server, Double(1), Some(Duration::from_secs(1)));
            let down = ctx.request(server, Double(1), None);
            vec![timed, down]
        },
    );
    let a = s.spawn(&asker, m.pid()).unwrap();
    s.run_until_idle();
    clock.advance(Duration::from_secs(1));
    s.run_until_idle();
    assert_eq!(s.result(&a), None);
    s.send(m.pid(), 0).unwrap();
    s.run_until_idle();
    assert_eq!(
        s.result(&a),
        Some(Ok(vec![
            Err(CallError::Timeout),
            Err(CallError::Down(chronoflow::Reason::Normal))
        ]))
    );
}

#[test]
fn a_request_to_oneself_is_calling_self() {
    let mut s = SimpleScheduler::<u32>::new();
    let t = Template::<u32, u32, (), _>::new("t", |ctx, ()| {
        let me = ctx.pid();
        ctx.request(me, Double(1), None)
    });
    let h = s.spawn(&t, ()).unwrap();
    s.run_until_idle();
    assert_eq!(s.result(&h), Some(Ok(Err(CallError::CallingSelf))));
}
