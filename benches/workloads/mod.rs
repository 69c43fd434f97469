//! The workloads shared by the `bench` example (`examples/bench.rs`, which mirrors
//! `bench/beam/bench.erl`) and the criterion benches (`benches/dispatch.rs`):
//! one message type and the process templates. The drivers (timing, sizes,
//! schedulers) live in each of the two.
//!
//! Messages are plain `Copy` values: nothing on the measured paths allocates.
//!
//! Each workload has a stackful template (a [`Template`], here) and a stackless
//! one (a [`StacklessTemplate`](chronoflow::StacklessTemplate), in [`stackless`])
//! doing the same: the crate that includes this module needs
//! `#![feature(coroutines)]`.

use std::time::Instant;

use chronoflow::{Ctx, Pid, SimpleScheduler, SpawnError, Spawnable, Template};

/// The one message type of every workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Msg {
    /// pingpong: a ping from the given process.
    Ping(Pid),
    /// pingpong: the answer.
    Pong,
    /// ring: the token, with the hops still to go.
    Token(u64),
    /// ring: wires a node to its next node.
    Set(Pid),
    /// selective: a message nobody selects.
    Noise(u64),
    /// selective: the message the next selective receive takes.
    Match(u64),
    /// fanin: one message of a sender.
    Data(u64),
    /// Ends a process that loops forever.
    Stop,
}

/// Stack of a process that only loops over receive/send (ring nodes, pong).
pub const SMALL_STACK: usize = 32 * 1024;
/// Stack of an idle process (spawn workload): it does nothing but receive.
pub const IDLE_STACK: usize = 16 * 1024;
/// Stack of the drivers (ping, selective, sink, senders).
pub const DRIVER_STACK: usize = 64 * 1024;

/// pingpong: answers every `Ping(from)` with `Pong` until `Stop`.
pub fn pong() -> Template<Msg, Msg, (), ()> {
    Template::new("pong", |ctx: &mut Ctx<Msg>, ()| {
        loop {
            match ctx.receive() {
                Msg::Ping(from) => ctx.send_to(from, Msg::Pong),
                Msg::Stop => return,
                other => unreachable!("pong got {other:?}"),
            }
        }
    })
    .stack_size(SMALL_STACK)
}

/// pingpong: `n` round trips with `pong`; returns how long they took, in ns.
pub fn ping() -> Template<Msg, Msg, (Pid, u64), u64> {
    Template::new("ping", |ctx: &mut Ctx<Msg>, (pong, n): (Pid, u64)| {
        let me = ctx.pid();
        let t0 = Instant::now();
        for _ in 0..n {
            ctx.send_to(pong, Msg::Ping(me));
            let answer = ctx.receive();
            debug_assert_eq!(answer, Msg::Pong);
        }
        t0.elapsed().as_nanos() as u64
    })
    .stack_size(DRIVER_STACK)
}

/// ring: passes `Token(h)` on as `Token(h - 1)` to its next node; `Token(0)` ends
/// the trip. `Set(next)` rewires it, `Stop` ends it.
pub fn ring_node() -> Template<Msg, Msg, Pid, ()> {
    Template::new("ring_node", |ctx: &mut Ctx<Msg>, mut next: Pid| {
        loop {
            match ctx.receive() {
                Msg::Token(0) => {}
                Msg::Token(h) => ctx.send_to(next, Msg::Token(h - 1)),
                Msg::Set(n) => next = n,
                Msg::Stop => return,
                other => unreachable!("ring node got {other:?}"),
            }
        }
    })
    .stack_size(SMALL_STACK)
}

/// Creates (without starting) a ring of `k` nodes from `node`, like bench.erl:
/// each node's next is the one created before it, and the first one is wired to
/// the last with `Set`. Returns the nodes' pids, the first created first; a token
/// goes in at the last one. On a spawn error, returns how many nodes were
/// created, and the error.
pub fn create_ring(
    sched: &mut SimpleScheduler<Msg>,
    node: &impl Spawnable<Msg, Msg, Pid, ()>,
    k: usize,
) -> Result<Vec<Pid>, (usize, SpawnError)> {
    let mut nodes = Vec::with_capacity(k);
    let mut prev = Pid(u64::MAX); // the first node's next, replaced by `Set` below
    for i in 0..k {
        let pid = sched.create(node, prev).map_err(|e| (i, e))?.pid();
        nodes.push(pid);
        prev = pid;
    }
    sched
        .send(nodes[0], Msg::Set(prev))
        .expect("a created node takes a message");
    Ok(nodes)
}

/// spawn: waits in `receive` until `Stop`.
pub fn idle() -> Template<Msg, Msg, (), ()> {
    Template::new(
        "idle",
        |ctx: &mut Ctx<Msg>, ()| {
            while ctx.receive() != Msg::Stop {}
        },
    )
    .stack_size(IDLE_STACK)
}

/// selective: queues `k` unmatched messages in its own inbox, then `rounds` (the
/// argument) times sends itself a `Match` and takes it with a selective receive
/// behind the `k`. Returns how long the rounds took, in ns (the `k` sends are not
/// counted).
pub fn selective(k: u64) -> Template<Msg, Msg, u64, u64> {
    Template::new("selective", move |ctx: &mut Ctx<Msg>, rounds: u64| {
        let me = ctx.pid();
        for i in 0..k {
            ctx.send_to(me, Msg::Noise(i));
        }
        let t0 = Instant::now();
        for r in (1..=rounds).rev() {
            ctx.send_to(me, Msg::Match(r));
            let m = ctx.select(|m| *m == Msg::Match(r));
            debug_assert_eq!(m, Msg::Match(r));
        }
        let ns = t0.elapsed().as_nanos() as u64;
        assert_eq!(
            ctx.inbox_len() as u64,
            k,
            "the unmatched messages stay queued"
        );
        ns
    })
    .capacity((k as usize + 1).max(4096))
    .stack_size(DRIVER_STACK)
}

/// fanin: sends `m` messages to `to`.
pub fn sender() -> Template<Msg, Msg, (Pid, u64), ()> {
    Template::new("sender", |ctx: &mut Ctx<Msg>, (to, m): (Pid, u64)| {
        for i in 0..m {
            ctx.send_to(to, Msg::Data(i));
        }
    })
    .stack_size(DRIVER_STACK)
}

/// fanin: receives `n` messages, then ends with how many it got.
pub fn sink(capacity: usize) -> Template<Msg, Msg, u64, u64> {
    Template::new("sink", |ctx: &mut Ctx<Msg>, n: u64| {
        let mut got = 0;
        while got < n {
            if let Msg::Data(_) = ctx.receive() {
                got += 1;
            }
        }
        got
    })
    .capacity(capacity)
    .stack_size(DRIVER_STACK)
}

/// The same workloads as stackless processes.
pub mod stackless {
    use std::time::Instant;

    use chronoflow::stackless::{receive, select, send_to};
    use chronoflow::{Pid, StacklessCtx, StacklessTemplate};

    use super::Msg;

    /// pingpong: answers every `Ping(from)` with `Pong` until `Stop`.
    pub fn pong() -> StacklessTemplate<Msg, Msg, (), ()> {
        StacklessTemplate::new("pong", |cx: StacklessCtx<Msg>, ()| {
            #[coroutine]
            move || {
                loop {
                    match receive!(cx) {
                        Msg::Ping(from) => send_to!(cx, from, Msg::Pong),
                        Msg::Stop => return,
                        other => unreachable!("pong got {other:?}"),
                    }
                }
            }
        })
    }

    /// pingpong: `n` round trips with `pong`; returns how long they took, in ns.
    pub fn ping() -> StacklessTemplate<Msg, Msg, (Pid, u64), u64> {
        StacklessTemplate::new("ping", |cx: StacklessCtx<Msg>, (pong, n): (Pid, u64)| {
            #[coroutine]
            move || {
                let me = cx.pid();
                let t0 = Instant::now();
                for _ in 0..n {
                    send_to!(cx, pong, Msg::Ping(me));
                    let answer = receive!(cx);
                    debug_assert_eq!(answer, Msg::Pong);
                }
                t0.elapsed().as_nanos() as u64
            }
        })
    }

    /// ring: as [`super::ring_node`].
    pub fn ring_node() -> StacklessTemplate<Msg, Msg, Pid, ()> {
        StacklessTemplate::new("ring_node", |cx: StacklessCtx<Msg>, next: Pid| {
            #[coroutine]
            move || {
                let mut next = next;
                loop {
                    match receive!(cx) {
                        Msg::Token(0) => {}
                        Msg::Token(h) => send_to!(cx, next, Msg::Token(h - 1)),
                        Msg::Set(n) => next = n,
                        Msg::Stop => return,
                        other => unreachable!("ring node got {other:?}"),
                    }
                }
            }
        })
    }

    /// spawn: waits in `receive` until `Stop`.
    pub fn idle() -> StacklessTemplate<Msg, Msg, (), ()> {
        StacklessTemplate::new("idle", |cx: StacklessCtx<Msg>, ()| {
            #[coroutine]
            move || while receive!(cx) != Msg::Stop {}
        })
    }

    /// selective: as [`super::selective`].
    pub fn selective(k: u64) -> StacklessTemplate<Msg, Msg, u64, u64> {
        StacklessTemplate::new("selective", move |cx: StacklessCtx<Msg>, rounds: u64| {
            #[coroutine]
            move || {
                let me = cx.pid();
                for i in 0..k {
                    send_to!(cx, me, Msg::Noise(i));
                }
                let t0 = Instant::now();
                for r in (1..=rounds).rev() {
                    send_to!(cx, me, Msg::Match(r));
                    let m = select!(cx, |m: &Msg| *m == Msg::Match(r));
                    debug_assert_eq!(m, Msg::Match(r));
                }
                let ns = t0.elapsed().as_nanos() as u64;
                assert_eq!(
                    cx.inbox_len() as u64,
                    k,
                    "the unmatched messages stay queued"
                );
                ns
            }
        })
        .capacity((k as usize + 1).max(4096))
    }

    /// fanin: sends `m` messages to `to`.
    pub fn sender() -> StacklessTemplate<Msg, Msg, (Pid, u64), ()> {
        StacklessTemplate::new("sender", |cx: StacklessCtx<Msg>, (to, m): (Pid, u64)| {
            #[coroutine]
            move || {
                for i in 0..m {
                    send_to!(cx, to, Msg::Data(i));
                }
            }
        })
    }

    /// fanin: receives `n` messages, then ends with how many it got.
    pub fn sink(capacity: usize) -> StacklessTemplate<Msg, Msg, u64, u64> {
        StacklessTemplate::new("sink", |cx: StacklessCtx<Msg>, n: u64| {
            #[coroutine]
            move || {
                let mut got = 0;
                while got < n {
                    if let Msg::Data(_) = receive!(cx) {
                        got += 1;
                    }
                }
                got
            }
        })
        .capacity(capacity)
    }
}
