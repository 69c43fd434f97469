#![cfg_attr(feature = "stackless", feature(coroutines))]
//! A timer nobody waits on any more (its `receive_timeout` was answered by a
//! message, or its sleeping process was killed) is gone: `next_deadline` does not
//! report it, `run_blocking` does not wait for it, and it does not hold memory.
//!
//! A counting global allocator keeps the net bytes allocated by the current
//! thread, so that the memory test sees only its own scheduler.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::mpsc;
use std::time::Duration;

#[cfg(feature = "stackless")]
use chronoflow::stackless::{receive, sleep};
use chronoflow::{Ctx, Handle, ManualClock, Pid, SimpleScheduler, Status, Template, Time, Wait};
#[cfg(feature = "stackless")]
use chronoflow::{StacklessCtx, StacklessTemplate};

struct Counting;

thread_local! {
    static NET: Cell<isize> = const { Cell::new(0) };
}

fn note(bytes: isize) {
    // `try_with`: the allocator may run while thread-locals are torn down.
    let _ = NET.try_with(|n| n.set(n.get() + bytes));
}

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size() as isize);
        // SAFETY: the caller's contract, passed on as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(-(layout.size() as isize));
        // SAFETY: the caller's contract, passed on as is.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size as isize - layout.size() as isize);
        // SAFETY: the caller's contract, passed on as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Net bytes allocated by this thread so far.
fn net_bytes() -> isize {
    NET.with(|n| n.get())
}

const START: Time = Time(1_000_000_000_000);
const HOUR: Duration = Duration::from_secs(3600);

/// Waits an hour for a message (which is there already), then for another one
/// without a timeout.
fn answered_then_receive() -> Template<u8, u8, (), u8> {
    Template::new("answered", |ctx: &mut Ctx<u8>, _: ()| {
        ctx.send_to(ctx.pid(), 1);
        let first = ctx.receive_timeout(HOUR);
        assert_eq!(first, Some(1));
        ctx.receive()
    })
}

#[test]
fn an_answered_receive_timeout_leaves_no_deadline() {
    let mut sched = SimpleScheduler::new();
    sched.set_clock(ManualClock::new(START));
    let h = sched.spawn(&answered_then_receive(), ()).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.status(h.pid()), Some(Status::Waiting(Wait::Message)));
    assert_eq!(sched.next_deadline(), None, "nobody waits on the timer");
    sched.send(h.pid(), 2).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&h), Some(Ok(2)));
}

#[test]
fn a_receive_timeout_answered_after_a_wait_leaves_no_deadline() {
    let mut sched = SimpleScheduler::new();
    sched.set_clock(ManualClock::new(START));
    let waiter = Template::new("waiter", |ctx: &mut Ctx<u8>, _: ()| {
        let first = ctx.receive_timeout(HOUR);
        (first, ctx.receive())
    });
    let h = sched.spawn(&waiter, ()).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.next_deadline(), Some(START + HOUR));
    sched.send(h.pid(), 1).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.status(h.pid()), Some(Status::Waiting(Wait::Message)));
    assert_eq!(sched.next_deadline(), None);
    sched.send(h.pid(), 2).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&h), Some(Ok((Some(1), 2))));
}

/// Spawns `child`, waits for a message, and returns without joining it: the child
/// is killed with it.
fn parent_of<T: chronoflow::Spawnable<u64, u64, (), ()> + Send + Sync + 'static>(
    child: T,
) -> Template<u64, u64, (), ()> {
    Template::new("parent", move |ctx: &mut Ctx<u64>, _: ()| {
        let _unjoined = ctx.spawn(&child, ()).unwrap();
        ctx.receive();
    })
}

fn assert_killed_sleeper_leaves_no_deadline(parent: Template<u64, u64, (), ()>) {
    let mut sched = SimpleScheduler::new();
    sched.set_clock(ManualClock::new(START));
    let h = sched.spawn(&parent, ()).unwrap();
    sched.run_until_idle();
    let child = Pid(h.pid().as_u64() + 1);
    assert_eq!(sched.status(child), Some(Status::Waiting(Wait::Timer)));
    assert_eq!(sched.next_deadline(), Some(START + HOUR));
    sched.send(h.pid(), 0).unwrap();
    sched.run_until_idle();
    assert!(matches!(sched.result(&h), Some(Err(_))), "unjoined child");
    assert_eq!(sched.status(child), None, "killed with its parent");
    assert_eq!(sched.next_deadline(), None, "nobody waits on its timer");
}

#[test]
fn a_stackful_sleeper_killed_with_its_parent_leaves_no_deadline() {
    let sleeper = Template::new("sleeper", |ctx: &mut Ctx<u64>, _: ()| ctx.sleep(HOUR));
    assert_killed_sleeper_leaves_no_deadline(parent_of(sleeper));
}

#[cfg(feature = "stackless")]
#[test]
fn a_stackless_sleeper_killed_with_its_parent_leaves_no_deadline() {
    let sleeper: StacklessTemplate<u64, u64, (), ()> =
        StacklessTemplate::new("sleeper", |cx: StacklessCtx<u64>, _: ()| {
            #[coroutine]
            move || {
                sleep!(cx, HOUR);
            }
        });
    assert_killed_sleeper_leaves_no_deadline(parent_of(sleeper));
}

#[cfg(feature = "stackless")]
#[test]
fn a_stackless_parent_killing_its_sleeping_child_leaves_no_deadline() {
    let sleeper: StacklessTemplate<u64, u64, (), ()> =
        StacklessTemplate::new("sleeper", |cx: StacklessCtx<u64>, _: ()| {
            #[coroutine]
            move || {
                sleep!(cx, HOUR);
            }
        });
    let parent: StacklessTemplate<u64, u64, (), ()> =
        StacklessTemplate::new("parent", move |cx: StacklessCtx<u64>, _: ()| {
            let sleeper = sleeper.clone();
            #[coroutine]
            move || {
                let _unjoined = cx.spawn(&sleeper, ()).unwrap();
                receive!(cx);
            }
        });
    let mut sched = SimpleScheduler::new();
    sched.set_clock(ManualClock::new(START));
    let h = sched.spawn(&parent, ()).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.next_deadline(), Some(START + HOUR));
    sched.send(h.pid(), 0).unwrap();
    sched.run_until_idle();
    assert!(matches!(sched.result(&h), Some(Err(_))), "unjoined child");
    assert_eq!(sched.next_deadline(), None);
}

const ROUNDS: u64 = 100_000;

/// Two processes play ping-pong `ROUNDS` times, each waiting for the other's
/// message with `receive_timeout(1h)`: every timer is answered by a message.
/// Their handles, which keep their results.
fn ping_pong(sched: &mut SimpleScheduler<u64>) -> (Handle<u64>, Handle<u64>) {
    let player = Template::new("player", |ctx: &mut Ctx<u64>, serve: bool| {
        let other = Pid(ctx.receive());
        if serve {
            ctx.send_to(other, 0);
        }
        loop {
            let n = ctx.receive_timeout(HOUR).expect("answered at once");
            if n >= ROUNDS {
                return n;
            }
            ctx.send_to(other, n + 1);
        }
    });
    let a = sched.spawn(&player, true).unwrap();
    let b = sched.spawn(&player, false).unwrap();
    sched.send(a.pid(), b.pid().as_u64()).unwrap();
    sched.send(b.pid(), a.pid().as_u64()).unwrap();
    (a, b)
}

#[test]
fn answered_receive_timeouts_leave_no_deadline_and_no_memory() {
    let mut sched = SimpleScheduler::new();
    sched.set_clock(ManualClock::new(START));
    let (a, b) = ping_pong(&mut sched);
    let (a, b, _handles) = (a.pid(), b.pid(), (a, b));
    let before = net_bytes();
    sched.run_until_idle();
    let grown = net_bytes() - before;
    // (b's result is kept: a few bytes.)
    assert!(
        grown < 64 * 1024,
        "{grown} bytes more after {ROUNDS} answered receive_timeouts"
    );
    assert_eq!(sched.status(a), Some(Status::Waiting(Wait::Message)));
    assert_eq!(sched.status(b), Some(Status::Stopped));
    assert_eq!(sched.next_deadline(), Some(START + HOUR), "a's last wait");
    sched.send(a, ROUNDS).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.next_deadline(), None);
}

#[test]
fn stale_timers_under_a_live_one_are_discarded() {
    // A sleeper's earlier deadline stays at the top of the timers: the stale ones
    // below it must not pile up.
    let mut sched = SimpleScheduler::new();
    sched.set_clock(ManualClock::new(START));
    let sleeper = Template::new("sleeper", |ctx: &mut Ctx<u64>, _: ()| {
        ctx.sleep(Duration::from_secs(600))
    });
    let s = sched.spawn(&sleeper, ()).unwrap();
    sched.run_until_idle();
    let (a, _b) = ping_pong(&mut sched);
    let a = a.pid();
    let before = net_bytes();
    sched.run_until_idle();
    let grown = net_bytes() - before;
    assert_eq!(sched.status(a), Some(Status::Waiting(Wait::Message)));
    assert_eq!(
        sched.next_deadline(),
        Some(START + Duration::from_secs(600))
    );
    // Before the fix: 2 x 100,000 entries of 24 bytes (and more capacity).
    assert!(
        grown < 64 * 1024,
        "{grown} bytes more after {ROUNDS} answered receive_timeouts"
    );
    sched.send(a, ROUNDS).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.status(s.pid()), Some(Status::Waiting(Wait::Timer)));
    assert_eq!(
        sched.next_deadline(),
        Some(START + Duration::from_secs(600))
    );
}

#[test]
fn run_blocking_does_not_wait_for_an_answered_receive_timeout() {
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let mut sched = SimpleScheduler::new(); // the system clock
        let h = sched.spawn(&answered_then_receive(), ()).unwrap();
        sched.run_blocking();
        let status = sched.status(h.pid());
        done.send(status).unwrap();
    });
    let status = finished
        .recv_timeout(Duration::from_secs(5))
        .expect("run_blocking returns promptly: nothing waits on a timer");
    assert_eq!(status, Some(Status::Waiting(Wait::Message)));
}
