//! Time is an input: timers follow the scheduler's clock, and a durable scheduler
//! does not wait again for timers that ended before a crash.

use std::time::Duration;

use chronoflow::{
    Ctx, DurableScheduler, ManualClock, Pid, SimpleScheduler, Status, Template, Time, Wait,
};

const START: Time = Time(1_000_000_000_000);

#[test]
fn sleep_follows_the_clock() {
    let clock = ManualClock::new(START);
    let sleeper = Template::new("sleeper", |ctx: &mut Ctx<u8>, _: ()| {
        let before = ctx.now();
        ctx.sleep(Duration::from_secs(60));
        ctx.now().since(before)
    });
    let mut sched = SimpleScheduler::new();
    sched.set_clock(clock.clone());
    let h = sched.spawn(&sleeper, ()).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.status(h.pid()), Some(Status::Waiting(Wait::Timer)));
    assert_eq!(sched.next_deadline(), Some(START + Duration::from_secs(60)));
    clock.advance(Duration::from_secs(59));
    sched.run_until_idle();
    assert_eq!(
        sched.status(h.pid()),
        Some(Status::Waiting(Wait::Timer)),
        "not yet"
    );
    clock.advance(Duration::from_secs(1));
    sched.run_until_idle();
    assert_eq!(sched.result(&h), Some(Ok(Duration::from_secs(60))));
    assert_eq!(sched.next_deadline(), None);
}

#[test]
fn receive_timeout_gives_a_message_or_none() {
    let clock = ManualClock::new(START);
    let waiter = Template::new("waiter", |ctx: &mut Ctx<u8>, _: ()| {
        let first = ctx.receive_timeout(Duration::from_secs(5));
        let second = ctx.receive_timeout(Duration::from_secs(5));
        (first, second)
    });
    let mut sched = SimpleScheduler::new();
    sched.set_clock(clock.clone());
    let h = sched.spawn(&waiter, ()).unwrap();
    sched.run_until_idle();
    clock.advance(Duration::from_secs(2));
    sched.send(h.pid(), 7).unwrap();
    sched.run_until_idle();
    // The first timer must not cut the second wait short.
    clock.advance(Duration::from_secs(4));
    sched.run_until_idle();
    assert_eq!(sched.status(h.pid()), Some(Status::Waiting(Wait::Message)));
    clock.advance(Duration::from_secs(1));
    sched.run_until_idle();
    assert_eq!(sched.result(&h), Some(Ok((Some(7), None))));
}

#[test]
fn run_blocking_sleeps_until_the_next_timer() {
    let napper = Template::new("napper", |ctx: &mut Ctx<u8>, _: ()| {
        ctx.sleep(Duration::from_millis(20));
        1u8
    });
    let mut sched = SimpleScheduler::new();
    let h = sched.spawn(&napper, ()).unwrap();
    sched.run_blocking();
    assert_eq!(sched.result(&h), Some(Ok(1)));
}

#[test]
fn a_durable_scheduler_does_not_wait_again_for_timers_that_ended() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START);
    let waiter = Template::new("waiter", |ctx: &mut Ctx<u8>, _: ()| {
        ctx.sleep(Duration::from_secs(10));
        let got = ctx.receive_timeout(Duration::from_secs(10));
        ctx.sleep(Duration::from_secs(3600));
        got
    });
    let open = || {
        DurableScheduler::builder()
            .register(&waiter)
            .clock(clock.clone())
            .open(dir.path())
            .unwrap()
    };
    {
        let (mut sched, _) = open();
        sched.spawn(&waiter, ()).unwrap();
        sched.run_until_idle().unwrap();
        clock.advance(Duration::from_secs(10));
        sched.run_until_idle().unwrap();
        clock.advance(Duration::from_secs(10));
        sched.run_until_idle().unwrap(); // the receive timed out; now in the hour's sleep
        assert_eq!(sched.status(Pid(0)), Some(Status::Waiting(Wait::Timer)));
    }
    // Reopened later, but before the hour is over: the ended timers are not waited
    // for again, the interrupted one keeps its original deadline.
    clock.advance(Duration::from_secs(1800));
    let (mut sched, _) = open();
    sched.run_until_idle().unwrap();
    assert_eq!(sched.status(Pid(0)), Some(Status::Waiting(Wait::Timer)));
    assert_eq!(
        sched.next_deadline(),
        Some(START + Duration::from_secs(20 + 3600))
    );
    clock.advance(Duration::from_secs(1800));
    sched.run_until_idle().unwrap();
    assert_eq!(sched.result_of::<Option<u8>>(Pid(0)), Some(Ok(None)));
}

#[test]
fn run_blocking_does_not_wait_in_real_time_for_a_manual_clocks_timer() {
    // Before, it slept the deadline's distance in real time (an hour here),
    // then found the manual clock where it was, and slept again.
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let clock = ManualClock::new(START);
        let napper = Template::new("napper", |ctx: &mut Ctx<u8>, _: ()| {
            ctx.sleep(Duration::from_secs(3600));
            1u8
        });
        let mut sched = SimpleScheduler::new();
        sched.set_clock(clock.clone());
        let h = sched.spawn(&napper, ()).unwrap();
        sched.run_blocking();
        let waiting = sched.status(h.pid());
        clock.advance(Duration::from_secs(3600));
        sched.run_blocking();
        done.send((waiting, sched.result(&h))).unwrap();
    });
    let (waiting, result) = finished
        .recv_timeout(Duration::from_secs(10))
        .expect("run_blocking returns at once: waiting cannot bring a manual clock's timer");
    assert_eq!(
        waiting,
        Some(chronoflow::Status::Waiting(chronoflow::Wait::Timer))
    );
    assert_eq!(result, Some(Ok(1)));
}
