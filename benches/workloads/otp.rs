//! The OTP workloads of `bench/beam/bench.erl` (its `otp` suite) for the `bench`
//! example (`examples/bench.rs`): one message type and the process templates.
//! The example's driver spawns each workload's driving process, which times its
//! own loop (as bench.erl's process does) and ends with the nanoseconds it took.
//!
//! Each workload has a stackful template (here) and a stackless one (in
//! [`stackless`], with the same names and signatures), for the example's
//! engine switch. The supervisor of `restart` is stackful either way (the
//! toolkit's supervisors are): only its workers and the driver change.

use std::time::{Duration, Instant};

use chronoflow::otp::server;
use chronoflow::otp::supervisor::{self, ChildSpec, Strategy, Supervisor, SupervisorTemplate};
use chronoflow::{Ctx, ExitError, Mail, Pid, Reason, ReplyTo, Spawnable, Step, Template, Value};

use crate::workloads::{DRIVER_STACK, IDLE_STACK, SMALL_STACK};

/// The one message type of the OTP workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Msg {
    /// call: a request; the server replies with how many calls it has
    /// answered (gen_server's state `S + 1`).
    Call(ReplyTo<u64>),
    /// named: a ping from the given process.
    Ping(Pid),
    /// named: the answer.
    Pong,
    /// timer_fire: what each timer sends.
    Tick,
    /// restart: a worker (this one) has started and is ready.
    Started(Pid),
    /// restart: makes a worker crash.
    Crash,
    /// Ends a server.
    Stop,
}

/// The timeout of a call: gen_server:call/2's default (5 s), which BEAM arms
/// as a `receive ... after` timer on every call.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// call: a server answering each [`Msg::Call`] with [`Ctx::reply`] (the count
/// of calls so far), until `Stop`.
pub fn server() -> Template<Msg, Msg, (), ()> {
    Template::new("server", |ctx: &mut Ctx<Msg>, ()| {
        let mut count = 0u64;
        loop {
            match ctx.receive() {
                Msg::Call(from) => {
                    count += 1;
                    // (The caller waits for it: it cannot have ended.)
                    let _ = ctx.reply(from, count);
                }
                Msg::Stop => return,
                other => unreachable!("server got {other:?}"),
            }
        }
    })
    .stack_size(SMALL_STACK)
}

/// call: `n` calls to `server` with `timeout`; returns how long they took, in
/// ns. One op = one call (monitor, request, reply, demonitor).
pub fn client() -> Template<Msg, Msg, (Pid, u64, Option<Duration>), u64> {
    Template::new(
        "client",
        |ctx: &mut Ctx<Msg>, (server, n, timeout): (Pid, u64, Option<Duration>)| {
            let t0 = Instant::now();
            for i in 1..=n {
                let count = ctx
                    .call(server, Msg::Call, timeout)
                    .expect("the server replies");
                debug_assert_eq!(count, i);
            }
            t0.elapsed().as_nanos() as u64
        },
    )
    .stack_size(DRIVER_STACK)
}

/// call through the server behaviour: a [`Server`](server::Server) that
/// answers each call with the count of calls so far, until `Stop`.
pub struct Counter(u64);

impl server::Server for Counter {
    type Engine = server::Stackful;
    type Msg = Msg;
    type Args = ();
    type Call = ();
    type Reply = u64;
    type Cast = ();
    type Continue = ();

    fn init(_: &mut server::ServerCtx<Self>, (): ()) -> server::Init<Self> {
        server::Init::Ok(Counter(0))
    }

    fn handle_call(
        &mut self,
        _: &mut server::ServerCtx<Self>,
        (): (),
        _: server::From<u64>,
    ) -> server::Reply<Self> {
        self.0 += 1;
        server::Reply::Reply(self.0)
    }

    fn handle_info(
        &mut self,
        _: &mut server::ServerCtx<Self>,
        mail: Mail<Msg>,
    ) -> server::Flow<Self> {
        match mail {
            Mail::Msg(Msg::Stop) => server::Flow::Stop(Reason::Normal),
            other => unreachable!("the counter got {other:?}"),
        }
    }
}

/// call through the server behaviour: the [`Counter`]'s process.
pub fn counter() -> Template<Msg, Msg, (), (), chronoflow::Local> {
    server::template::<Counter>("counter").stack_size(SMALL_STACK)
}

/// call through the server behaviour: `n` calls of the [`Counter`] through
/// its typed handle, with `timeout`; returns how long they took, in ns.
pub fn counter_client() -> Template<Msg, Msg, (Pid, u64, Option<Duration>), u64> {
    Template::new(
        "counter_client",
        |ctx: &mut Ctx<Msg>, (counter, n, timeout): (Pid, u64, Option<Duration>)| {
            let counter = server::ServerRef::<Counter>::new(counter);
            let t0 = Instant::now();
            for i in 1..=n {
                let count = counter
                    .call_timeout(ctx, (), timeout)
                    .expect("the counter replies");
                debug_assert_eq!(count, i);
            }
            t0.elapsed().as_nanos() as u64
        },
    )
    .stack_size(DRIVER_STACK)
}

/// named: answers every `Ping(from)` with `Pong` until `Stop` (bench.erl's
/// `pong`, registered by the driver).
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

/// named: the name `pong` is registered under (bench.erl's `bench_pong`).
pub const PONG_NAME: &str = "bench_pong";

/// named: `n` round trips to the process registered as [`PONG_NAME`], each sent by
/// name (looked up every time, as `bench_pong ! {ping, self()}` is); returns
/// how long they took, in ns.
pub fn named_ping() -> Template<Msg, Msg, u64, u64> {
    Template::new("named_ping", |ctx: &mut Ctx<Msg>, n: u64| {
        let me = ctx.pid();
        let t0 = Instant::now();
        for _ in 0..n {
            ctx.send_named(PONG_NAME, Msg::Ping(me))
                .expect("the name is registered");
            let answer = ctx.receive();
            debug_assert_eq!(answer, Msg::Pong);
        }
        t0.elapsed().as_nanos() as u64
    })
    .stack_size(DRIVER_STACK)
}

/// monitor: a process that ends at once (`fun() -> ok end`).
pub fn done() -> Template<Msg, Msg, (), ()> {
    Template::new("done", |_: &mut Ctx<Msg>, ()| {}).stack_size(IDLE_STACK)
}

/// monitor: `n` times, spawns a process that ends at once, monitored, and
/// receives its DOWN; returns how long it took, in ns. One op = all four.
pub fn monitor() -> Template<Msg, Msg, u64, u64> {
    let done = done();
    Template::new("monitor", move |ctx: &mut Ctx<Msg>, n: u64| {
        let t0 = Instant::now();
        for _ in 0..n {
            let (pid, monitor) = ctx.spawn_monitor(&done, ()).expect("spawn");
            let mail = ctx.receive_mail();
            debug_assert!(
                matches!(&mail, Mail::Down { monitor: m, pid: p, reason: Reason::Normal }
                    if *m == monitor && *p == pid),
                "{mail:?}"
            );
        }
        t0.elapsed().as_nanos() as u64
    })
    .stack_size(DRIVER_STACK)
}

/// link: a process that exits at once with the reason it is given (bench.erl's
/// `fun() -> exit(boom) end`): its last word, `Step::Exit`.
pub fn failing() -> Template<Msg, Msg, Value, ()> {
    Template::stepping("failing", |_: &mut Ctx<Msg>, why: Value| {
        Step::Exit(ExitError::Custom(why))
    })
    .stack_size(IDLE_STACK)
}

/// link: the same with `Ctx::exit`, which unwinds the process's stack.
pub fn failing_unwound() -> Template<Msg, Msg, Value, ()> {
    Template::new("failing", |ctx: &mut Ctx<Msg>, why: Value| {
        ctx.exit(ExitError::Custom(why))
    })
    .stack_size(IDLE_STACK)
}

/// link: traps exits, then `n` times spawns a linked process that exits with
/// `boom` and receives its EXIT; returns how long it took, in ns (trapping is
/// set before the clock starts, as in bench.erl). The linked process returns
/// `Step::Exit`, or with `unwound`, calls `Ctx::exit` (to see what an
/// unwinding costs).
pub fn link(unwound: bool) -> Template<Msg, Msg, u64, u64> {
    let failing = if unwound {
        failing_unwound()
    } else {
        failing()
    };
    Template::new("link", move |ctx: &mut Ctx<Msg>, n: u64| {
        // An atom in BEAM: made once, then shared.
        let why = Value::atom("boom");
        let expected = Reason::Custom(why.clone());
        ctx.trap_exit(true);
        let t0 = Instant::now();
        for _ in 0..n {
            let pid = ctx.spawn_link(&failing, why.clone()).expect("spawn");
            let mail = ctx.receive_mail();
            debug_assert!(
                matches!(&mail, Mail::Exit { from, reason } if *from == pid && *reason == expected),
                "{mail:?}"
            );
        }
        let ns = t0.elapsed().as_nanos() as u64;
        ctx.trap_exit(false);
        ns
    })
    .stack_size(DRIVER_STACK)
}

/// timer: `n` times, starts a 60 s timer and cancels it before it fires;
/// returns how long it took, in ns. One op = both.
pub fn timer() -> Template<Msg, Msg, u64, u64> {
    Template::new("timer", |ctx: &mut Ctx<Msg>, n: u64| {
        let t0 = Instant::now();
        for _ in 0..n {
            let timer = ctx.start_timer(Duration::from_secs(60));
            let left = ctx.cancel_timer(timer);
            debug_assert!(left.is_some());
        }
        t0.elapsed().as_nanos() as u64
    })
    .stack_size(DRIVER_STACK)
}

/// timer_fire: arms `n` zero-delay timers that send it `Tick`, then receives
/// all `n`; returns how long it took, in ns. One op = one set and fire.
pub fn timer_fire() -> Template<Msg, Msg, u64, u64> {
    Template::new("timer_fire", |ctx: &mut Ctx<Msg>, n: u64| {
        let me = ctx.pid();
        let t0 = Instant::now();
        for _ in 0..n {
            ctx.send_after(Duration::ZERO, me, Msg::Tick);
        }
        for _ in 0..n {
            let tick = ctx.receive();
            debug_assert_eq!(tick, Msg::Tick);
        }
        t0.elapsed().as_nanos() as u64
    })
    .stack_size(DRIVER_STACK)
}

/// restart: the restarts per supervisor (bench.erl's `Batch`): each batch has
/// a fresh supervisor, so that its restart history stays short.
pub const RESTART_BATCH: u64 = 100;

/// restart: a worker that tells `main` it has started, then waits for `Crash`
/// and exits with `crash` (bench.erl's `worker/1`: `Main ! {started, self()},
/// receive crash -> exit(crash) end`).
///
/// Its end is its last word, `Step::Exit(ExitError::Custom(crash))`: Erlang's
/// `exit(crash)` ends a process with the atom `crash` as its reason, a reason
/// of the user's own (`Custom`), not a failure (`Failed` is a panic's
/// reason: erlang:error's). No unwinding, no panic hook, no message printed;
/// the supervisor sees an abnormal reason and restarts it (a permanent child
/// would be restarted after any reason, `Normal` too: the reason is what
/// bench.erl's is). The reason is made once and shared, as an atom is.
pub fn worker() -> Template<Msg, Msg, Pid, ()> {
    let crash = Value::atom("crash");
    Template::stepping("worker", move |ctx: &mut Ctx<Msg>, main: Pid| {
        ctx.send_to(main, Msg::Started(ctx.pid()));
        match ctx.receive() {
            Msg::Crash => Step::Exit(ExitError::Custom(crash.clone())),
            other => unreachable!("worker got {other:?}"),
        }
    })
    .stack_size(IDLE_STACK)
}

/// restart: bench.erl's supervisor for one batch: one_for_one, one permanent
/// child `w` running `worker` with `main`'s pid, intensity `RESTART_BATCH +
/// 10` within an hour (never reached).
pub fn restart_supervisor<W>(worker: &W, main: Pid) -> SupervisorTemplate<Msg>
where
    W: Spawnable<Msg, Msg, Pid, ()> + Clone + 'static,
{
    Supervisor::new("restart_sup")
        .strategy(Strategy::OneForOne)
        .intensity(RESTART_BATCH as u32 + 10, Duration::from_secs(3600))
        .child(ChildSpec::new("w", worker, main))
        .template()
        .expect("a valid supervisor")
}

/// restart: `n / RESTART_BATCH` batches, each with a fresh supervisor
/// (spawned linked, as supervisor:start_link) whose worker is made to crash
/// `RESTART_BATCH` times; returns how long the crash loops took, in ns (the
/// supervisors' starts and stops are not timed, as in bench.erl). One op =
/// `Crash` sent, the worker's exit, its EXIT at the supervisor, the restart
/// (a new worker spawned linked) and its `Started` received.
pub fn restart() -> Template<Msg, Msg, u64, u64> {
    let worker = worker();
    Template::new("restart", move |ctx: &mut Ctx<Msg>, n: u64| {
        let sup = restart_supervisor(&worker, ctx.pid());
        let mut total = 0;
        for _ in 0..n / RESTART_BATCH {
            let pid = ctx.spawn_link(&sup, ()).expect("spawn the supervisor");
            let mut w = started(ctx);
            let t0 = Instant::now();
            for _ in 0..RESTART_BATCH {
                ctx.send_to(w, Msg::Crash);
                w = started(ctx);
            }
            total += t0.elapsed().as_nanos() as u64;
            ctx.unlink(pid);
            let why = supervisor::stop(ctx, pid, Reason::Shutdown(None));
            debug_assert_eq!(why, Reason::Shutdown(None));
        }
        total
    })
    .stack_size(DRIVER_STACK)
}

/// restart: waits for a worker's `Started`.
fn started(ctx: &mut Ctx<Msg>) -> Pid {
    match ctx.receive() {
        Msg::Started(w) => w,
        other => unreachable!("the restart driver got {other:?}"),
    }
}

/// The same workloads as stackless processes: every process is stackless but
/// the supervisor of `restart` (the toolkit's supervisors are stackful).
pub mod stackless {
    use std::time::{Duration, Instant};

    use chronoflow::stackless::{call, receive, receive_mail, select_mail, send_after, send_to};
    use chronoflow::{
        ExitError, Mail, MailRef, Pid, Reason, Spawnable, StacklessCtx, StacklessTemplate, Value,
    };

    use super::{Msg, PONG_NAME, RESTART_BATCH, restart_supervisor};

    /// call: as [`super::server`], replying with [`StacklessCtx::reply`].
    pub fn server() -> StacklessTemplate<Msg, Msg, (), ()> {
        StacklessTemplate::new("server", |cx: StacklessCtx<Msg>, ()| {
            #[coroutine]
            move || {
                let mut count = 0u64;
                loop {
                    match receive!(cx) {
                        Msg::Call(from) => {
                            count += 1;
                            // (The caller waits for it: it cannot have ended.)
                            let _ = cx.reply(from, count);
                        }
                        Msg::Stop => return,
                        other => unreachable!("server got {other:?}"),
                    }
                }
            }
        })
    }

    /// call: as [`super::client`], with `call!`.
    pub fn client() -> StacklessTemplate<Msg, Msg, (Pid, u64, Option<Duration>), u64> {
        StacklessTemplate::new(
            "client",
            |cx: StacklessCtx<Msg>, (server, n, timeout): (Pid, u64, Option<Duration>)| {
                #[coroutine]
                move || {
                    let t0 = Instant::now();
                    for i in 1..=n {
                        let count =
                            call!(cx, server, Msg::Call, timeout).expect("the server replies");
                        debug_assert_eq!(count, i);
                    }
                    t0.elapsed().as_nanos() as u64
                }
            },
        )
    }

    /// named: as [`super::pong`].
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

    /// named: as [`super::named_ping`]; the name is looked up on every send
    /// ([`StacklessCtx::whereis`], then `send_to!` its pid: what
    /// `Ctx::send_named` does).
    pub fn named_ping() -> StacklessTemplate<Msg, Msg, u64, u64> {
        StacklessTemplate::new("named_ping", |cx: StacklessCtx<Msg>, n: u64| {
            #[coroutine]
            move || {
                let me = cx.pid();
                let t0 = Instant::now();
                for _ in 0..n {
                    let pong = cx.whereis(PONG_NAME).expect("the name is registered");
                    send_to!(cx, pong, Msg::Ping(me));
                    let answer = receive!(cx);
                    debug_assert_eq!(answer, Msg::Pong);
                }
                t0.elapsed().as_nanos() as u64
            }
        })
    }

    /// monitor: a process that ends at once.
    pub fn done() -> StacklessTemplate<Msg, Msg, (), ()> {
        StacklessTemplate::new("done", |_: StacklessCtx<Msg>, ()| {
            #[coroutine]
            || {}
        })
    }

    /// monitor: as [`super::monitor`].
    pub fn monitor() -> StacklessTemplate<Msg, Msg, u64, u64> {
        let done = done();
        StacklessTemplate::new("monitor", move |cx: StacklessCtx<Msg>, n: u64| {
            let done = done.clone();
            #[coroutine]
            move || {
                let t0 = Instant::now();
                for _ in 0..n {
                    let (pid, monitor) = cx.spawn_monitor(&done, ()).expect("spawn");
                    let mail = receive_mail!(cx);
                    debug_assert!(
                        matches!(&mail, Mail::Down { monitor: m, pid: p, reason: Reason::Normal }
                            if *m == monitor && *p == pid),
                        "{mail:?}"
                    );
                }
                t0.elapsed().as_nanos() as u64
            }
        })
    }

    /// link: a process that exits at once with the reason it is given: its
    /// coroutine returns it (`StacklessTemplate::exiting`), as bench.erl's
    /// `exit(boom)` is a last word.
    pub fn failing() -> StacklessTemplate<Msg, Msg, Value, ()> {
        StacklessTemplate::exiting("failing", |_: StacklessCtx<Msg>, why: Value| {
            #[coroutine]
            move || Err(ExitError::Custom(why))
        })
    }

    /// link: the same with [`StacklessCtx::exit`], which unwinds its
    /// coroutine.
    pub fn failing_unwound() -> StacklessTemplate<Msg, Msg, Value, ()> {
        StacklessTemplate::new("failing", |cx: StacklessCtx<Msg>, why: Value| {
            #[coroutine]
            move || cx.exit(ExitError::Custom(why))
        })
    }

    /// link: as [`super::link`]: traps exits, then `n` times spawns a linked
    /// `failing` process (stackless, or the stackful one that returns
    /// `Step::Exit`: what the unwinding costs is the difference) and receives
    /// its EXIT.
    pub fn link<F>(failing: F) -> StacklessTemplate<Msg, Msg, u64, u64>
    where
        F: Spawnable<Msg, Msg, Value, ()> + Clone + Send + Sync + 'static,
    {
        StacklessTemplate::new("link", move |cx: StacklessCtx<Msg>, n: u64| {
            let failing = failing.clone();
            #[coroutine]
            move || {
                // An atom in BEAM: made once, then shared.
                let why = Value::atom("boom");
                let expected = Reason::Custom(why.clone());
                cx.trap_exit(true);
                let t0 = Instant::now();
                for _ in 0..n {
                    let pid = cx.spawn_link(&failing, why.clone()).expect("spawn");
                    let mail = receive_mail!(cx);
                    debug_assert!(
                        matches!(&mail, Mail::Exit { from, reason } if *from == pid && *reason == expected),
                        "{mail:?}"
                    );
                }
                let ns = t0.elapsed().as_nanos() as u64;
                cx.trap_exit(false);
                ns
            }
        })
    }

    /// timer: as [`super::timer`].
    pub fn timer() -> StacklessTemplate<Msg, Msg, u64, u64> {
        StacklessTemplate::new("timer", |cx: StacklessCtx<Msg>, n: u64| {
            #[coroutine]
            move || {
                let t0 = Instant::now();
                for _ in 0..n {
                    let timer = cx.start_timer(Duration::from_secs(60));
                    let left = cx.cancel_timer(timer);
                    debug_assert!(left.is_some());
                }
                t0.elapsed().as_nanos() as u64
            }
        })
    }

    /// timer_fire: as [`super::timer_fire`], with `send_after!`, which yields
    /// the turn once its budget is spent, as a stackful `send_after` does (and
    /// as BEAM preempts a process after its reductions): the timers fire every
    /// `DEFAULT_BUDGET` arms. With `method`, with `cx.send_after`, which never
    /// yields: the loop arms all `n` timers in one turn (the scheduler fires
    /// none meanwhile).
    pub fn timer_fire(method: bool) -> StacklessTemplate<Msg, Msg, u64, u64> {
        StacklessTemplate::new("timer_fire", move |cx: StacklessCtx<Msg>, n: u64| {
            #[coroutine]
            move || {
                let me = cx.pid();
                let t0 = Instant::now();
                for _ in 0..n {
                    if method {
                        cx.send_after(Duration::ZERO, me, Msg::Tick);
                    } else {
                        send_after!(cx, Duration::ZERO, me, Msg::Tick);
                    }
                }
                for _ in 0..n {
                    let tick = receive!(cx);
                    debug_assert_eq!(tick, Msg::Tick);
                }
                t0.elapsed().as_nanos() as u64
            }
        })
    }

    /// restart: as [`super::worker`], stackless: it ends with `crash` by
    /// returning it (`StacklessTemplate::exiting`, see [`failing`]).
    pub fn worker() -> StacklessTemplate<Msg, Msg, Pid, ()> {
        let crash = Value::atom("crash");
        StacklessTemplate::exiting("worker", move |cx: StacklessCtx<Msg>, main: Pid| {
            let crash = crash.clone();
            #[coroutine]
            move || {
                send_to!(cx, main, Msg::Started(cx.pid()));
                match receive!(cx) {
                    Msg::Crash => Err(ExitError::Custom(crash)),
                    other => unreachable!("worker got {other:?}"),
                }
            }
        })
    }

    /// restart: as [`super::restart`], the driver and the workers stackless,
    /// under the same (stackful) supervisor.
    pub fn restart() -> StacklessTemplate<Msg, Msg, u64, u64> {
        let worker = worker();
        StacklessTemplate::new("restart", move |cx: StacklessCtx<Msg>, n: u64| {
            let worker = worker.clone();
            #[coroutine]
            move || {
                let sup = restart_supervisor(&worker, cx.pid());
                let mut total = 0;
                for _ in 0..n / RESTART_BATCH {
                    let pid = cx.spawn_link(&sup, ()).expect("spawn the supervisor");
                    let Msg::Started(mut w) = receive!(cx) else {
                        unreachable!("the restart driver expects Started")
                    };
                    let t0 = Instant::now();
                    for _ in 0..RESTART_BATCH {
                        send_to!(cx, w, Msg::Crash);
                        w = match receive!(cx) {
                            Msg::Started(w) => w,
                            other => unreachable!("the restart driver got {other:?}"),
                        };
                    }
                    total += t0.elapsed().as_nanos() as u64;
                    // supervisor::stop, stackless: unlinked, then stopped,
                    // and its end waited for.
                    cx.unlink(pid);
                    let monitor = cx.monitor(pid);
                    cx.exit_signal(pid, Reason::Shutdown(None));
                    let down = select_mail!(cx, |m: MailRef<'_, Msg>| matches!(
                        m,
                        MailRef::Down { monitor: r, .. } if r == monitor
                    ));
                    debug_assert!(
                        matches!(
                            &down,
                            Mail::Down {
                                reason: Reason::Shutdown(None),
                                ..
                            }
                        ),
                        "{down:?}"
                    );
                }
                total
            }
        })
    }
}
