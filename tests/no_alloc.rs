//! The hot path allocates nothing: in steady state, sending, routing, receiving and
//! resuming processes make no heap allocation (no signal sink attached).
//!
//! A counting global allocator counts the allocations of the current thread while
//! counting is switched on; the processes switch it on themselves once warmed up.
#![cfg_attr(feature = "stackless", feature(coroutines))]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

#[cfg(feature = "stackless")]
use chronoflow::stackless::{receive, select, send_to};
use chronoflow::{Ctx, Pid, SimpleScheduler, Template};
#[cfg(feature = "stackless")]
use chronoflow::{StacklessCtx, StacklessTemplate};

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn note() {
    // `try_with`: the allocator may run while thread-locals are torn down.
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        }
    });
}

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn counting(on: bool) {
    COUNTING.with(|c| c.set(on));
}

fn allocations() -> u64 {
    ALLOCATIONS.with(|n| n.get())
}

#[derive(Debug, Clone, Copy)]
enum Msg {
    Ping(Pid),
    Pong,
    Token(u32),
    Next(Pid),
}

const WARM_UP: u32 = 1_000;
const MEASURED: u32 = 100_000;

#[test]
fn pingpong_in_steady_state_allocates_nothing() {
    // Pong ends (which allocates: its result is kept) only on a message sent once
    // counting is off.
    let pong = Template::new("pong", |ctx: &mut Ctx<Msg>, _: ()| {
        while let Msg::Ping(from) = ctx.receive() {
            ctx.send_to(from, Msg::Pong);
        }
    });
    let ping = Template::new("ping", |ctx: &mut Ctx<Msg>, peer: Pid| {
        let me = ctx.pid();
        for i in 0..WARM_UP + MEASURED {
            if i == WARM_UP {
                counting(true);
            }
            ctx.send_to(peer, Msg::Ping(me));
            ctx.receive();
        }
        counting(false);
        ctx.send_to(peer, Msg::Pong);
    });
    let mut sched = SimpleScheduler::new();
    let b = sched.spawn(&pong, ()).unwrap();
    sched.spawn(&ping, b.pid()).unwrap();
    let before = allocations();
    sched.run_until_idle();
    assert_eq!(
        allocations() - before,
        0,
        "allocations in {MEASURED} round trips"
    );
    assert_eq!(sched.live(), 0);
}

#[test]
fn a_ring_with_selective_receive_in_steady_state_allocates_nothing() {
    // 100 processes pass a token around; each selects the token past a message it
    // keeps queued, so selective receive is measured too.
    const NODES: u32 = 100;
    let node = Template::new("node", |ctx: &mut Ctx<Msg>, _: ()| {
        let Msg::Next(next) = ctx.receive() else {
            unreachable!()
        };
        ctx.send_to(ctx.pid(), Msg::Pong); // stays queued ahead of every token
        loop {
            let Msg::Token(hops) = ctx.select(|m| matches!(m, Msg::Token(_))) else {
                unreachable!()
            };
            if hops == MEASURED {
                counting(true);
            }
            if hops == 0 {
                counting(false);
                return;
            }
            ctx.send_to(next, Msg::Token(hops - 1));
        }
    });
    let mut sched = SimpleScheduler::new();
    let pids: Vec<Pid> = (0..NODES)
        .map(|_| sched.spawn(&node, ()).unwrap().pid())
        .collect();
    for (i, &pid) in pids.iter().enumerate() {
        let next = pids[(i + 1) % pids.len()];
        sched.send(pid, Msg::Next(next)).unwrap();
    }
    sched.run_until_idle();
    let before = allocations();
    sched.send(pids[0], Msg::Token(MEASURED + WARM_UP)).unwrap();
    sched.run_until_idle();
    assert_eq!(allocations() - before, 0, "allocations in {MEASURED} hops");
}

#[cfg(feature = "stackless")]
#[test]
fn stackless_pingpong_and_selective_ring_in_steady_state_allocate_nothing() {
    let pong = StacklessTemplate::new("pong", |cx: StacklessCtx<Msg>, _: ()| {
        #[coroutine]
        move || {
            while let Msg::Ping(from) = receive!(cx) {
                send_to!(cx, from, Msg::Pong);
            }
        }
    });
    let ping = StacklessTemplate::new("ping", |cx: StacklessCtx<Msg>, peer: Pid| {
        #[coroutine]
        move || {
            for i in 0..WARM_UP + MEASURED {
                if i == WARM_UP {
                    counting(true);
                }
                send_to!(cx, peer, Msg::Ping(cx.pid()));
                receive!(cx);
            }
            counting(false);
            send_to!(cx, peer, Msg::Pong);
        }
    });
    let mut sched = SimpleScheduler::new();
    let b = sched.spawn(&pong, ()).unwrap();
    sched.spawn(&ping, b.pid()).unwrap();
    let before = allocations();
    sched.run_until_idle();
    assert_eq!(
        allocations() - before,
        0,
        "allocations in {MEASURED} stackless round trips"
    );
    assert_eq!(sched.live(), 0);

    // A ring of stackless nodes, each selecting the token past a queued message.
    const NODES: u32 = 100;
    let node = StacklessTemplate::new("node", |cx: StacklessCtx<Msg>, _: ()| {
        #[coroutine]
        move || {
            let Msg::Next(next) = receive!(cx) else {
                unreachable!()
            };
            send_to!(cx, cx.pid(), Msg::Pong); // stays queued ahead of every token
            loop {
                let Msg::Token(hops) = select!(cx, |m: &Msg| matches!(m, Msg::Token(_))) else {
                    unreachable!()
                };
                if hops == MEASURED {
                    counting(true);
                }
                if hops == 0 {
                    counting(false);
                    return;
                }
                send_to!(cx, next, Msg::Token(hops - 1));
            }
        }
    });
    let pids: Vec<Pid> = (0..NODES)
        .map(|_| sched.spawn(&node, ()).unwrap().pid())
        .collect();
    for (i, &pid) in pids.iter().enumerate() {
        let next = pids[(i + 1) % pids.len()];
        sched.send(pid, Msg::Next(next)).unwrap();
    }
    sched.run_until_idle();
    let before = allocations();
    sched.send(pids[0], Msg::Token(MEASURED + WARM_UP)).unwrap();
    sched.run_until_idle();
    assert_eq!(
        allocations() - before,
        0,
        "allocations in {MEASURED} stackless hops"
    );
}
