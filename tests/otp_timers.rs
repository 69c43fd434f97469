//! Timers that send, on the scheduler's clock.

use std::time::Duration;

use chronoflow::{Ctx, Mail, ManualClock, SimpleScheduler, Template, Time};

fn clocked() -> (SimpleScheduler<u32>, ManualClock) {
    let mut s = SimpleScheduler::new();
    let clock = ManualClock::new(Time::from_nanos(0));
    s.set_clock(clock.clone());
    (s, clock)
}

fn collect(n: usize) -> Template<u32, u32, (), Vec<Mail<u32>>> {
    Template::new("collect", move |ctx: &mut Ctx<u32>, ()| {
        (0..n).map(|_| ctx.receive_mail()).collect()
    })
}

#[test]
fn send_after_delivers_on_the_clock_and_cancel_stops_it() {
    let (mut s, clock) = clocked();
    let c = s.spawn(&collect(2), ()).unwrap();
    s.send_after(Duration::from_millis(20), c.pid(), 2);
    s.send_after(Duration::from_millis(10), c.pid(), 1);
    let dropped = s.send_after(Duration::from_millis(15), c.pid(), 99);
    assert_eq!(s.next_deadline(), Some(Time::from_nanos(10_000_000)));
    s.run_until_idle();
    clock.advance(Duration::from_millis(5));
    assert_eq!(s.cancel_timer(dropped), Some(Duration::from_millis(10)));
    assert_eq!(s.cancel_timer(dropped), None, "once");
    clock.advance(Duration::from_millis(5));
    s.run_until_idle();
    assert_eq!(s.result(&c), None);
    clock.advance(Duration::from_millis(10));
    s.run_until_idle();
    assert_eq!(s.result(&c), Some(Ok(vec![Mail::Msg(1), Mail::Msg(2)])));
    assert_eq!(s.next_deadline(), None);
}

#[test]
fn start_timer_gives_a_timeout_and_cancel_from_inside_gives_the_time_left() {
    let (mut s, clock) = clocked();
    let t = Template::new("t", |ctx: &mut Ctx<u32>, ()| {
        let keep = ctx.start_timer(Duration::from_millis(50));
        let gone = ctx.start_timer(Duration::from_millis(30));
        let left = ctx.cancel_timer(gone);
        (keep, left, ctx.receive_mail())
    });
    let h = s.spawn(&t, ()).unwrap();
    s.run_until_idle();
    clock.advance(Duration::from_millis(50));
    s.run_until_idle();
    let (keep, left, mail) = s.result(&h).unwrap().unwrap();
    assert_eq!(left, Some(Duration::from_millis(30)));
    assert_eq!(mail, Mail::Timeout(keep));
}

#[test]
fn a_timer_to_an_ended_process_is_dropped_and_counted() {
    let (mut s, clock) = clocked();
    let quick = Template::new("quick", |_: &mut Ctx<u32>, ()| ());
    let q = s.spawn(&quick, ()).unwrap();
    s.send_after(Duration::from_millis(1), q.pid(), 7);
    s.run_until_idle();
    assert_eq!(s.result(&q), Some(Ok(())));
    clock.advance(Duration::from_millis(1));
    s.run_until_idle();
    assert_eq!(s.timers_dropped(), 1);
}

#[test]
fn a_timed_message_goes_past_a_full_inbox_and_a_zero_delay_fires_at_the_next_pass() {
    let (mut s, _clock) = clocked();
    let t = Template::new("small", |ctx: &mut Ctx<u32>, ()| {
        let me = ctx.pid();
        ctx.send_after(Duration::ZERO, me, 5);
        ctx.yield_now();
        (ctx.receive(), ctx.receive())
    })
    .capacity(1);
    let h = s.spawn(&t, ()).unwrap();
    s.send(h.pid(), 4).unwrap();
    s.run_until_idle();
    assert_eq!(s.result(&h), Some(Ok((4, 5))));
}

#[test]
fn receive_mail_timeout_gives_none_in_time_and_mail_if_it_comes() {
    let (mut s, clock) = clocked();
    let t = Template::new("t", |ctx: &mut Ctx<u32>, ()| {
        let none = ctx.receive_mail_timeout(Duration::from_millis(10));
        let some = ctx.receive_mail_timeout(Duration::from_millis(10));
        (none, some)
    });
    let h = s.spawn(&t, ()).unwrap();
    s.run_until_idle();
    clock.advance(Duration::from_millis(10));
    s.run_until_idle();
    s.send(h.pid(), 3).unwrap();
    s.run_until_idle();
    assert_eq!(s.result(&h), Some(Ok((None, Some(Mail::Msg(3))))));
}

/// A timer armed in a turn reads no clock: its deadline is set after the
/// turn, from the time then. It never fires early (here the turn itself
/// takes 5 ms of the clock before arming it), and the time left of one
/// cancelled in the turn that armed it is its whole delay.
#[test]
fn a_timer_armed_in_a_turn_never_fires_early() {
    let (mut s, clock) = clocked();
    let turn = clock.clone();
    let t = Template::new("t", move |ctx: &mut Ctx<u32>, ()| {
        turn.advance(Duration::from_millis(5));
        let me = ctx.pid();
        ctx.send_after(Duration::from_millis(10), me, 1);
        let gone = ctx.send_after(Duration::from_millis(20), me, 2);
        let left = ctx.cancel_timer(gone);
        (left, ctx.receive_mail())
    });
    let h = s.spawn(&t, ()).unwrap();
    s.run_until_idle();
    assert_eq!(s.next_deadline(), Some(Time::from_nanos(15_000_000)));
    clock.advance(Duration::from_millis(9));
    s.run_until_idle();
    assert_eq!(s.result(&h), None, "14 ms: not yet");
    clock.advance(Duration::from_millis(1));
    s.run_until_idle();
    assert_eq!(
        s.result(&h),
        Some(Ok((Some(Duration::from_millis(20)), Mail::Msg(1))))
    );
}

/// Timers armed in one turn and cancelled out of order (the first, the
/// middle one), the rest firing in their deadlines' order; a zero-delay one
/// at the next pass.
#[test]
fn timers_of_one_turn_cancel_out_of_order_and_fire_in_order() {
    let (mut s, clock) = clocked();
    let t = Template::new("t", |ctx: &mut Ctx<u32>, ()| {
        let me = ctx.pid();
        let a = ctx.send_after(Duration::from_millis(30), me, 1);
        ctx.send_after(Duration::from_millis(20), me, 2);
        let b = ctx.send_after(Duration::from_millis(10), me, 3);
        ctx.send_after(Duration::from_millis(40), me, 4);
        ctx.send_after(Duration::ZERO, me, 5);
        let left = (
            ctx.cancel_timer(b),
            ctx.cancel_timer(a),
            ctx.cancel_timer(a),
        );
        let first = ctx.receive_mail();
        (left, first, ctx.receive_mail(), ctx.receive_mail())
    });
    let h = s.spawn(&t, ()).unwrap();
    s.run_until_idle();
    clock.advance(Duration::from_millis(40));
    s.run_until_idle();
    assert_eq!(
        s.result(&h),
        Some(Ok((
            (
                Some(Duration::from_millis(10)),
                Some(Duration::from_millis(30)),
                None
            ),
            Mail::Msg(5),
            Mail::Msg(2),
            Mail::Msg(4)
        )))
    );
    assert_eq!(s.next_deadline(), None);
}
