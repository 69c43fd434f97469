#![cfg_attr(feature = "stackless", feature(coroutines))]
//! What waits is woken: room that a full inbox grants passes on when the sender
//! it went to does not use it (it ended, failed, or waits on another inbox); a
//! transition to a larger inbox wakes the senders waiting for room; a stackless
//! `Sleep` polled again after it fired sleeps again. Each hung for good before its
//! fix (found by an adversarial review).

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use chronoflow::{
    Ctx, ManualClock, Pid, SimpleScheduler, Status, Step, Template, Time, Transition, Wait,
};
#[cfg(feature = "stackless")]
use chronoflow::{Sleep, StacklessCtx, StacklessTemplate};
use support::isolated;

/// `yield $pending` in a stackless body: the keyword does not even parse on
/// stable, cfg'd out or not, but a macro's body is parsed where it is used.
#[cfg(feature = "stackless")]
macro_rules! yield_ {
    ($pending:expr) => {
        yield $pending
    };
}

/// A sender waiting for room in a full inbox is not woken when its owner
/// transitions to a larger capacity (or a non-Backoff policy): it waits although
/// there is room, here for ever.
#[test]
fn a_transition_to_a_larger_inbox_wakes_the_senders_waiting_for_room() {
    isolated(
        "a_transition_to_a_larger_inbox_wakes_the_senders_waiting_for_room",
        || {
            let clock = ManualClock::new(Time::from_nanos(1_000_000_000));
            let big: Template<u64, u64, (), u64> =
                Template::new("big", |ctx: &mut Ctx<u64>, _: ()| ctx.select(|m| *m == 2))
                    .capacity(10);
            let small = {
                let big = big.clone();
                Template::stepping("small", move |ctx: &mut Ctx<u64>, _: ()| {
                    ctx.sleep(Duration::from_secs(10));
                    Step::Transition(Transition::to(&big, ()))
                })
                .capacity(1)
            };
            let snd = Template::new("snd", |ctx: &mut Ctx<u64>, to: Pid| ctx.send_to(to, 2));
            let mut s = SimpleScheduler::new();
            s.set_clock(clock.clone());
            let b = s.spawn(&small, ()).unwrap();
            s.run_until_idle();
            s.send(b.pid(), 1).unwrap();
            let w = s.spawn(&snd, b.pid()).unwrap();
            s.run_until_idle();
            assert_eq!(
                s.status(w.pid()),
                Some(Status::Waiting(Wait::Room(b.pid())))
            );
            clock.advance(Duration::from_secs(10));
            s.run_until_idle();
            assert_eq!(s.result(&b), Some(Ok(2)));
        },
    );
}

/// A Sleep polled again after it fired: waits on a timer that was never armed.
#[cfg(feature = "stackless")]
#[test]
fn a_stackless_sleep_polled_again_after_it_fired_sleeps_again() {
    isolated(
        "a_stackless_sleep_polled_again_after_it_fired_sleeps_again",
        || {
            let clock = ManualClock::new(Time::from_nanos(1_000_000_000));
            let t: StacklessTemplate<u64, u64, (), u32> =
                StacklessTemplate::new("s", |cx: StacklessCtx<u64>, _: ()| {
                    #[coroutine]
                    move || {
                        let mut sl = Sleep::new(Duration::from_secs(1));
                        let mut n = 0;
                        for _ in 0..2 {
                            loop {
                                match cx.poll_sleep(&mut sl) {
                                    Ok(()) => break,
                                    Err(p) => yield_!(p),
                                }
                            }
                            n += 1;
                        }
                        n
                    }
                });
            let mut s = SimpleScheduler::new();
            s.set_clock(clock.clone());
            let h = s.spawn(&t, ()).unwrap();
            s.run_until_idle();
            clock.advance(Duration::from_secs(1));
            s.run_until_idle();
            clock.advance(Duration::from_secs(100));
            s.run_until_idle();
            assert_eq!(
                s.result(&h),
                Some(Ok(2)),
                "stuck Waiting(Timer) with no timer"
            );
        },
    );
}

/// B, holding 1 (cap 1), sleeps, then takes one message and waits for more.
#[cfg(feature = "stackless")]
fn b_holder() -> Template<u64, u64, (), Vec<u64>> {
    Template::new("b", |ctx: &mut Ctx<u64>, _: ()| {
        ctx.sleep(Duration::from_secs(10));
        let a = ctx.receive();
        let b = ctx.receive();
        vec![a, b]
    })
    .capacity(1)
}

/// A stackless sender woken by a room grant gives up instead of retrying: the
/// grant is not passed on, and the next waiting sender waits for ever though
/// there is room.
#[cfg(feature = "stackless")]
#[test]
fn room_granted_to_a_stackless_sender_that_ends_passes_on() {
    isolated(
        "room_granted_to_a_stackless_sender_that_ends_passes_on",
        || {
            let clock = ManualClock::new(Time::from_nanos(1_000_000_000));
            let quitter: StacklessTemplate<u64, u64, Pid, bool> =
                StacklessTemplate::new("quitter", |cx: StacklessCtx<u64>, to: Pid| {
                    #[coroutine]
                    move || match cx.poll_send_to(to, 100) {
                        Ok(()) => true,
                        Err((_m, p)) => {
                            yield_!(p); // waits for room once, then gives up
                            false
                        }
                    }
                });
            let snd = Template::new("snd", |ctx: &mut Ctx<u64>, to: Pid| ctx.send_to(to, 2));
            let mut s = SimpleScheduler::new();
            s.set_clock(clock.clone());
            let b = s.spawn(&b_holder(), ()).unwrap();
            s.run_until_idle();
            s.send(b.pid(), 1).unwrap();
            let q = s.spawn(&quitter, b.pid()).unwrap();
            s.run_until_idle();
            let w = s.spawn(&snd, b.pid()).unwrap();
            s.run_until_idle();
            clock.advance(Duration::from_secs(10));
            s.run_until_idle();
            eprintln!(
                "quitter {:?}; b {:?} inbox {:?}; sender {:?}",
                s.result(&q),
                s.status(b.pid()),
                s.inbox_len(b.pid()),
                s.status(w.pid())
            );
            assert_eq!(s.result(&b), Some(Ok(vec![1, 2])));
        },
    );
}

static PANIC_CLONE: AtomicBool = AtomicBool::new(false);

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct C(u64);
impl Clone for C {
    fn clone(&self) -> Self {
        if self.0 == 13 && PANIC_CLONE.load(Ordering::SeqCst) {
            panic!("Clone of 13 panics");
        }
        C(self.0)
    }
}

/// A stackful sender woken by a room grant fails in its retry (its message's
/// Clone panics, for the SEND signal): the grant is not passed on.
#[test]
fn room_granted_to_a_stackful_sender_that_fails_in_its_retry_passes_on() {
    isolated(
        "room_granted_to_a_stackful_sender_that_fails_in_its_retry_passes_on",
        || {
            let clock = ManualClock::new(Time::from_nanos(1_000_000_000));
            let b = Template::new("b", |ctx: &mut Ctx<C>, _: ()| {
                ctx.sleep(Duration::from_secs(10));
                let a = ctx.receive().0;
                let b = ctx.receive().0;
                vec![a, b]
            })
            .capacity(1);
            let snd = Template::new("snd", |ctx: &mut Ctx<C>, (to, v): (Pid, u64)| {
                ctx.send_to(to, C(v))
            });
            let mut s = SimpleScheduler::new();
            s.set_clock(clock.clone());
            s.record();
            let b = s.spawn(&b, ()).unwrap();
            s.run_until_idle();
            s.send(b.pid(), C(1)).unwrap();
            let f = s.spawn(&snd, (b.pid(), 13)).unwrap();
            s.run_until_idle();
            let w = s.spawn(&snd, (b.pid(), 2)).unwrap();
            s.run_until_idle();
            PANIC_CLONE.store(true, Ordering::SeqCst);
            clock.advance(Duration::from_secs(10));
            s.run_until_idle();
            let _ = s.pull();
            eprintln!(
                "failing sender {:?}; b {:?} inbox {:?}; sender {:?}",
                s.result(&f),
                s.status(b.pid()),
                s.inbox_len(b.pid()),
                s.status(w.pid())
            );
            assert_eq!(s.result(&b), Some(Ok(vec![1, 2])));
        },
    );
}

/// A stackful sender granted room by B retries, finds another full inbox (C) in
/// its destination's tree and waits there: B's room is not passed on, and a
/// sender waiting on B alone waits for ever.
#[test]
fn room_granted_to_a_sender_whose_retry_waits_elsewhere_passes_on() {
    isolated(
        "room_granted_to_a_sender_whose_retry_waits_elsewhere_passes_on",
        || {
            let clock = ManualClock::new(Time::from_nanos(1_000_000_000));
            let b = Template::new("b", |ctx: &mut Ctx<u64>, _: ()| {
                ctx.sleep(Duration::from_secs(10));
                vec![ctx.receive(), ctx.receive()]
            })
            .capacity(1);
            let c = Template::new("c", |ctx: &mut Ctx<u64>, _: ()| {
                ctx.sleep(Duration::from_secs(1000));
                vec![ctx.receive(), ctx.receive()]
            })
            .capacity(1);
            let g = Template::new("g", move |ctx: &mut Ctx<u64>, _: ()| {
                let b = ctx.spawn(&b, ()).unwrap();
                let c = ctx.spawn(&c, ()).unwrap();
                (ctx.join(b).unwrap(), ctx.join(c).unwrap())
            })
            .capacity(10);
            let snd = Template::new("snd", |ctx: &mut Ctx<u64>, (to, v): (Pid, u64)| {
                ctx.send_to(to, v)
            });
            let mut s = SimpleScheduler::new();
            s.set_clock(clock.clone());
            let gh = s.spawn(&g, ()).unwrap();
            s.run_until_idle();
            s.send(gh.pid(), 7).unwrap(); // g, b (pid 1), c (pid 2) each hold 7
            let s1 = s.spawn(&snd, (gh.pid(), 8)).unwrap();
            s.run_until_idle();
            let s2 = s.spawn(&snd, (Pid(1), 9)).unwrap();
            s.run_until_idle();
            clock.advance(Duration::from_secs(10));
            s.run_until_idle();
            eprintln!(
                "after: b {:?} inbox {:?}; s1 {:?}; s2 {:?}",
                s.status(Pid(1)),
                s.inbox_len(Pid(1)),
                s.status(s1.pid()),
                s.status(s2.pid())
            );
            assert_ne!(
                s.status(s2.pid()),
                Some(Status::Waiting(Wait::Room(Pid(1)))),
                "s2 waits on b, which has room"
            );
        },
    );
}
