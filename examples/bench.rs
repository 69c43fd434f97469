//! The BEAM reference workloads of `bench/beam/bench.erl`, on one thread with a
//! fresh `SimpleScheduler` each, printing the same lines so that
//! `bench/compare.sh` can put the two side by side:
//!
//! ```text
//! workload=NAME param=N ns_per_op=X [bytes_per_proc=B]
//! ```
//!
//! Run with
//! `cargo run --release --example bench -- [quick|full] [stackful|stackless] [core|otp [WORKLOAD,...]|tokio]`
//! (`quick` divides the sizes by 10, like bench.erl). The processes are stackful
//! unless the second argument, or the environment variable
//! `CHRONOFLOW_BENCH_ENGINE`, says `stackless` (so that
//! `CHRONOFLOW_BENCH_ENGINE=stackless bench/compare.sh` compares the stackless
//! engine). Lines starting with `#` are comments (a workload that could not run
//! says why on one, and a few workloads add a variant on one).
//!
//! Suites (the third argument, `core` by default), as in bench.erl:
//!
//! - `core`: pingpong, ring, spawn, selective receive, fan-in;
//! - `otp`: the OTP toolkit (`benches/workloads/otp.rs`): `call` (a server
//!   answering with `reply`, called with gen_server:call's default 5 s
//!   timeout; a `#` line gives the same with no timeout), `named` (a round trip
//!   to a registered name, looked up on every send), `monitor` (spawn_monitor
//!   of a process that ends at once, and its DOWN), `link` (spawn_link of a
//!   process that exits with `boom`, its EXIT trapped), `restart` (a
//!   one_for_one `Supervisor` restarting a worker that exits with `crash`, in
//!   batches of 100 restarts under a fresh supervisor each; one op = the
//!   crash, the restart and the new worker's `started` received), `timer`
//!   (start_timer and cancel_timer) and `timer_fire` (zero-delay timers set,
//!   then all received). With stackful processes, a process ends with a
//!   reason by returning `Step::Exit` (no unwinding): link's `#` line gives
//!   the same with `Ctx::exit`, which unwinds the process's stack. With
//!   stackless processes every process is stackless but restart's supervisor
//!   (the toolkit's supervisors are stackful); link's linked process and
//!   restart's worker return their reason (`StacklessTemplate::exiting`, no
//!   unwinding): link's `#` line gives the same with `StacklessCtx::exit`,
//!   which unwinds the coroutine. A stackless `send_after` cannot yield
//!   (a stackful one yields the turn once its budget is spent): timer_fire's
//!   stackless loop arms all its timers before any fires, and its `#` line
//!   gives the same yielding as the stackful one does. A fourth argument, a
//!   comma-separated list of workloads (`link,timer`), runs only those (to
//!   profile one); a workload's `#` line is named by its name and `#`
//!   (`call#`, `link#`, `timer_fire#`).
//!
//! - `multi`: bench.erl's multi suite (pairs, skynet, fan-in) on a
//!   [`Runtime`](chronoflow::runtime::Runtime) of `CHRONOFLOW_CORES` cores
//!   (`benches/workloads/multi.rs`); `multi balance` (stackless only, not
//!   one of bench.erl's) measures whether migrating processes between cores
//!   would pay (`benches/workloads/balance.rs`).
//!
//! - `tokio`: bench.erl's `multi` suite (pairs, skynet, fan-in) on a tokio
//!   multi-thread runtime, as a peer (`benches/workloads/tokio_multi.rs`): a
//!   task per process, a bounded mpsc channel of capacity 1024 per mailbox,
//!   worker threads from `CHRONOFLOW_CORES` or else the available parallelism
//!   (the engine argument does not apply).
#![feature(coroutines)]

#[path = "../benches/workloads/mod.rs"]
mod workloads;

#[path = "../benches/workloads/otp.rs"]
mod otp;

#[path = "../benches/workloads/tokio_multi.rs"]
mod tokio_multi;

#[path = "../benches/workloads/multi.rs"]
mod multi;

#[path = "../benches/workloads/balance.rs"]
mod balance;

use std::time::{Duration, Instant};

use chronoflow::{Pid, SimpleScheduler, Spawnable};
use workloads::Msg;

fn report(name: &str, param: u64, ops: u64, ns: u64) {
    println!(
        "workload={name} param={param} ns_per_op={:.2}",
        ns as f64 / ops as f64
    );
}

/// pingpong: one op = one round trip (two messages).
fn pingpong(
    n: u64,
    pong: &impl Spawnable<Msg, Msg, (), ()>,
    ping: &impl Spawnable<Msg, Msg, (Pid, u64), u64>,
) {
    let mut sched = SimpleScheduler::new();
    let pong = sched.spawn(pong, ()).expect("spawn pong");
    let ping = sched.spawn(ping, (pong.pid(), n)).expect("spawn ping");
    sched.run_until_idle();
    let ns = sched.result(&ping).expect("ping ended").expect("ping ok");
    sched.send(pong.pid(), Msg::Stop).expect("pong alive");
    sched.run_until_idle();
    report("pingpong", n, n, ns);
}

/// ring: `k` processes, one token passed `hops` times; one op = one hop. Only the
/// token's trip is timed.
fn ring(k: usize, hops: u64, node: &impl Spawnable<Msg, Msg, Pid, ()>) {
    let mut sched = SimpleScheduler::new();
    let nodes = match workloads::create_ring(&mut sched, node, k) {
        Ok(nodes) => nodes,
        Err((created, e)) => {
            println!("# ring {k} failed after {created} processes: {e}");
            return;
        }
    };
    for &node in &nodes {
        sched.start(node).expect("a created node starts");
    }
    sched.run_until_idle();
    let last = *nodes.last().expect("k > 0");
    let t0 = Instant::now();
    sched.send(last, Msg::Token(hops)).expect("last node alive");
    let turns = sched.run_until_idle();
    let ns = t0.elapsed().as_nanos() as u64;
    assert_eq!(turns as u64, hops + 1, "one turn per node the token visits");
    for &node in &nodes {
        sched.send(node, Msg::Stop).expect("node alive");
    }
    sched.run_until_idle();
    report("ring", k as u64, hops, ns);
}

/// The resident memory of this process, in bytes (VmRSS).
fn vm_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kb| kb * 1024)
}

/// spawn: `n` idle processes waiting in receive, all alive at once; one op = one
/// spawn (creating, starting and running it until it waits in receive). Memory is
/// the growth of the resident set over the spawns, divided by `n`. The memory
/// that earlier workloads freed is handed back to the system first, so that the
/// spawns pay for fresh memory (and the growth is theirs).
fn spawn_many(n: usize, idle: &impl Spawnable<Msg, Msg, (), ()>) {
    let mut sched = SimpleScheduler::new();
    // Touched before the baseline, so that the pid list is not counted.
    let mut pids = vec![Pid(0); n];
    // SAFETY: malloc_trim only returns free heap memory to the system.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::malloc_trim(0);
    }
    let rss0 = vm_rss();
    let t0 = Instant::now();
    for (i, slot) in pids.iter_mut().enumerate() {
        // Its pid alone, as BEAM's spawn: nobody reads an idle process's result.
        match sched.spawn_detached(idle, ()) {
            Ok(pid) => *slot = pid,
            Err(e) => {
                println!("# spawn {n} failed after {i} processes: {e}");
                return; // dropping the scheduler ends the ones spawned
            }
        }
    }
    sched.run_until_idle();
    let ns = t0.elapsed().as_nanos() as u64;
    let rss1 = vm_rss();
    assert_eq!(sched.live(), n, "every idle process is alive");
    println!(
        "workload=spawn param={n} ns_per_op={:.2} bytes_per_proc={}",
        ns as f64 / n as f64,
        rss1.saturating_sub(rss0) / n as u64
    );
    for pid in pids {
        sched.send(pid, Msg::Stop).expect("idle process alive");
    }
    sched.run_until_idle();
    assert_eq!(sched.live(), 0, "every idle process stopped");
}

/// selective: `k` unmatched messages queued ahead; one op = one selective receive.
fn selective(k: u64, rounds: u64, sel: &impl Spawnable<Msg, Msg, u64, u64>) {
    let mut sched = SimpleScheduler::new();
    let h = sched.spawn(sel, rounds).expect("spawn selective");
    sched.run_until_idle();
    let ns = sched.result(&h).expect("selective ended").expect("ok");
    report("selective", k, rounds, ns);
}

/// fanin: `s` senders x `m` messages to one sink whose inbox holds `capacity`;
/// one op = one message. Timed from spawning the senders to the sink having
/// received all.
fn fanin_run(
    s: u64,
    m: u64,
    sink: &impl Spawnable<Msg, Msg, u64, u64>,
    sender: &impl Spawnable<Msg, Msg, (Pid, u64), ()>,
) -> u64 {
    let mut sched = SimpleScheduler::new();
    let sink = sched.spawn(sink, s * m).expect("spawn sink");
    sched.run_until_idle();
    let t0 = Instant::now();
    for _ in 0..s {
        sched
            .spawn_detached(sender, (sink.pid(), m))
            .expect("spawn sender");
    }
    sched.run_until_idle();
    let ns = t0.elapsed().as_nanos() as u64;
    let got = sched.result(&sink).expect("sink ended").expect("sink ok");
    assert_eq!(got, s * m, "the sink received every message");
    ns
}

fn fanin<T>(
    s: u64,
    m: u64,
    sink: impl Fn(usize) -> T,
    sender: &impl Spawnable<Msg, Msg, (Pid, u64), ()>,
) where
    T: Spawnable<Msg, Msg, u64, u64>,
{
    // BEAM's mailboxes are unbounded: the sink's inbox holds everything, so that
    // the senders never wait, as in bench.erl.
    let ns = fanin_run(s, m, &sink((s * m) as usize), sender);
    report("fanin", s, s * m, ns);
    // The default inbox (1024) with back-pressure: senders wait for room.
    let cap = chronoflow::DEFAULT_CAPACITY;
    let ns = fanin_run(s, m, &sink(cap), sender);
    println!(
        "# fanin param={s} with the default inbox capacity {cap} (senders back off): ns_per_op={:.2}",
        ns as f64 / (s * m) as f64
    );
}

// ---- OTP suite (bench.erl's `otp`) ----
//
// Each workload's driving process times its own loop, as bench.erl's process
// does, and ends with the nanoseconds; setting up (spawning a server,
// registering a name) and stopping are outside the timing, as there.

/// Spawns `driver` with `args` in `sched` and runs it to its end: the
/// nanoseconds it reports.
fn driven<A: 'static>(
    sched: &mut SimpleScheduler<otp::Msg>,
    driver: &impl Spawnable<otp::Msg, otp::Msg, A, u64>,
    args: A,
) -> u64 {
    let h = sched.spawn(driver, args).expect("spawn the driver");
    sched.run_until_idle();
    sched
        .result(&h)
        .expect("the driver ended")
        .expect("the driver ran to its end")
}

/// One run of `call`: `n` calls with `timeout` to a fresh server.
fn call_run(
    n: u64,
    timeout: Option<Duration>,
    server: &impl Spawnable<otp::Msg, otp::Msg, (), ()>,
    client: &impl Spawnable<otp::Msg, otp::Msg, (Pid, u64, Option<Duration>), u64>,
) -> u64 {
    let mut sched = SimpleScheduler::new();
    let server = sched.spawn(server, ()).expect("spawn the server");
    sched.run_until_idle();
    let ns = driven(&mut sched, client, (server.pid(), n, timeout));
    sched
        .send(server.pid(), otp::Msg::Stop)
        .expect("the server is alive");
    sched.run_until_idle();
    ns
}

/// call: one op = one call (gen_server:call: monitor, request, reply), with
/// gen_server:call's default timeout; the same with no timeout on a `#` line.
fn call(
    n: u64,
    server: &impl Spawnable<otp::Msg, otp::Msg, (), ()>,
    client: &impl Spawnable<otp::Msg, otp::Msg, (Pid, u64, Option<Duration>), u64>,
    (main, variant): (bool, bool),
) {
    if main {
        let ns = call_run(n, Some(otp::CALL_TIMEOUT), server, client);
        report("call", n, n, ns);
    }
    if variant {
        let ns = call_run(n, None, server, client);
        println!(
            "# call param={n} with no timeout: ns_per_op={:.2}",
            ns as f64 / n as f64
        );
    }
}

/// named: one op = one round trip to a process sent to by its registered
/// name.
fn named(
    n: u64,
    pong: &impl Spawnable<otp::Msg, otp::Msg, (), ()>,
    ping: &impl Spawnable<otp::Msg, otp::Msg, u64, u64>,
) {
    let mut sched = SimpleScheduler::new();
    let pong = sched.spawn(pong, ()).expect("spawn pong");
    sched
        .register(otp::PONG_NAME, pong.pid())
        .expect("the name is free");
    sched.run_until_idle();
    let ns = driven(&mut sched, ping, n);
    sched
        .send(pong.pid(), otp::Msg::Stop)
        .expect("pong is alive");
    sched.run_until_idle();
    report("named", n, n, ns);
}

/// A workload that is its driver alone (monitor, link, timer, timer_fire): `n`
/// ops on a fresh scheduler; the nanoseconds they took.
fn alone_ns(n: u64, driver: &impl Spawnable<otp::Msg, otp::Msg, u64, u64>) -> u64 {
    let mut sched = SimpleScheduler::new();
    driven(&mut sched, driver, n)
}

fn alone(name: &str, n: u64, driver: &impl Spawnable<otp::Msg, otp::Msg, u64, u64>) {
    report(name, n, n, alone_ns(n, driver));
}

/// link: one op = spawn_link, the linked process's `exit(boom)` (its last
/// word, `Step::Exit`), and its EXIT received by the trapping driver; on a
/// `#` line, the same with `Ctx::exit` (what an unwinding costs is the
/// difference).
fn link(n: u64, (main, variant): (bool, bool)) {
    if main {
        report("link", n, n, alone_ns(n, &otp::link(false)));
    }
    if variant {
        println!(
            "# link param={n} with Ctx::exit (the linked process's stack unwound): ns_per_op={:.2}",
            alone_ns(n, &otp::link(true)) as f64 / n as f64
        );
    }
}

/// restart: `n / RESTART_BATCH` batches of `RESTART_BATCH` restarts, each
/// batch with a fresh supervisor; one op = a crash, the restart, and the new
/// worker's `Started` received.
fn restart(n: u64, driver: &impl Spawnable<otp::Msg, otp::Msg, u64, u64>) {
    let ops = n / otp::RESTART_BATCH * otp::RESTART_BATCH;
    report("restart", n, ops, alone_ns(n, driver));
}

/// link with stackless processes: the linked process's coroutine returns its
/// reason (`StacklessTemplate::exiting`); on a `#` line, the same with
/// `StacklessCtx::exit`, which unwinds the coroutine (what an unwinding costs
/// is the difference).
fn link_stackless(n: u64, (main, variant): (bool, bool)) {
    use otp::stackless as sl;
    if main {
        report("link", n, n, alone_ns(n, &sl::link(sl::failing())));
    }
    if variant {
        println!(
            "# link param={n} with StacklessCtx::exit (the linked coroutine unwound): ns_per_op={:.2}",
            alone_ns(n, &sl::link(sl::failing_unwound())) as f64 / n as f64
        );
    }
}

/// The OTP suite, in bench.erl's order, with its sizes; only the workloads
/// named in `only`, if given (a workload's `#` line is named by its name and
/// `#`: `call#`, `link#`, `timer_fire#`).
fn otp_suite(scale: u64, engine: &str, only: Option<&str>) {
    let run = |name: &str| only.is_none_or(|only| only.split(',').any(|o| o == name));
    // A workload's line and its `#` line.
    let lines = |name: &str| (run(name), run(&format!("{name}#")));
    let (big, small) = (1_000_000 / scale, 100_000 / scale);
    if engine == "stackful" {
        if lines("call") != (false, false) {
            call(big, &otp::server(), &otp::client(), lines("call"));
        }
        if run("server_call#") {
            let ns = call_run(
                big,
                Some(otp::CALL_TIMEOUT),
                &otp::counter(),
                &otp::counter_client(),
            );
            println!(
                "# server_call param={big} through otp::server (a Server's handle_call, \
                 gen_server:call's default timeout): ns_per_op={:.2}",
                ns as f64 / big as f64
            );
        }
        if run("named") {
            named(big, &otp::pong(), &otp::named_ping());
        }
        if run("monitor") {
            alone("monitor", small, &otp::monitor());
        }
        if lines("link") != (false, false) {
            link(small, lines("link"));
        }
        if run("restart") {
            restart(small, &otp::restart());
        }
        if run("timer") {
            alone("timer", big, &otp::timer());
        }
        if run("timer_fire") {
            alone("timer_fire", small, &otp::timer_fire());
        }
    } else {
        use otp::stackless as sl;
        if lines("call") != (false, false) {
            call(big, &sl::server(), &sl::client(), lines("call"));
        }
        if run("named") {
            named(big, &sl::pong(), &sl::named_ping());
        }
        if run("monitor") {
            alone("monitor", small, &sl::monitor());
        }
        if lines("link") != (false, false) {
            link_stackless(small, lines("link"));
        }
        if run("restart") {
            // The supervisor is stackful (the toolkit's are); its workers
            // and the driver are stackless.
            restart(small, &sl::restart());
        }
        if run("timer") {
            alone("timer", big, &sl::timer());
        }
        if run("timer_fire") {
            alone("timer_fire", small, &sl::timer_fire(false));
        }
        if run("timer_fire#") {
            println!(
                "# timer_fire param={small} with cx.send_after, which never yields the turn \
                 (send_after! yields once the budget is spent): ns_per_op={:.2}",
                alone_ns(small, &sl::timer_fire(true)) as f64 / small as f64
            );
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    let size = args.next().unwrap_or_else(|| "full".to_string());
    // The engine may be left out (`bench full otp`, as `compare.sh` runs it):
    // then it comes from the environment.
    let engine = args
        .next_if(|a| a == "stackful" || a == "stackless")
        .or_else(|| std::env::var("CHRONOFLOW_BENCH_ENGINE").ok())
        .unwrap_or_else(|| "stackful".to_string());
    let suite = args.next().unwrap_or_else(|| "core".to_string());
    let only = args.next();
    let usage =
        "usage: bench [quick|full] [stackful|stackless] [core|otp [WORKLOAD,...]|multi|tokio]";
    let scale = match size.as_str() {
        "quick" => 10,
        "full" => 1,
        other => {
            eprintln!("{usage} (got {other:?})");
            std::process::exit(2);
        }
    };
    if suite == "multi" {
        println!(
            "# chronoflow {}, a Runtime of {} cores, size {size}, {engine} processes, bench.erl's multi suite",
            env!("CARGO_PKG_VERSION"),
            chronoflow::runtime::default_cores()
        );
        if only.as_deref() == Some("balance") {
            // Not one of bench.erl's: only when asked for by name.
            if engine != "stackless" {
                eprintln!(
                    "balance runs stackless processes: bench [quick|full] stackless multi balance"
                );
                std::process::exit(2);
            }
            balance::suite(scale);
            return;
        }
        multi::suite(scale, &engine, only.as_deref());
        return;
    }
    if suite == "tokio" {
        let threads = tokio_multi::worker_threads();
        println!(
            "# tokio multi-thread runtime, {threads} worker threads, size {size}, bench.erl's multi suite"
        );
        tokio_multi::suite(scale);
        return;
    }
    for (what, ok) in [
        (&engine, ["stackful", "stackless"]),
        (&suite, ["core", "otp"]),
    ] {
        if !ok.contains(&what.as_str()) {
            eprintln!("{usage} (got {what:?})");
            std::process::exit(2);
        }
    }
    println!(
        "# chronoflow {}, one SimpleScheduler on one thread, size {size}, {engine} processes, {suite} suite",
        env!("CARGO_PKG_VERSION")
    );
    if suite == "otp" {
        otp_suite(scale, &engine, only.as_deref());
        return;
    }
    let (pp, ring_hops, ring_small) = (1_000_000 / scale, 2_000_000 / scale, 1_000);
    let (spawn_small, spawn_big) = (100_000 / scale as usize, 1_000_000 / scale as usize);
    let (sel_rounds, fan_m) = (100_000 / scale, 1_000 / scale);
    if engine == "stackful" {
        pingpong(pp, &workloads::pong(), &workloads::ping());
        let node = workloads::ring_node();
        ring(ring_small, ring_hops, &node);
        ring(100_000, ring_hops, &node);
        spawn_many(spawn_small, &workloads::idle());
        spawn_many(spawn_big, &workloads::idle());
        selective(1_000, sel_rounds, &workloads::selective(1_000));
        fanin(1_000, fan_m, workloads::sink, &workloads::sender());
    } else {
        use workloads::stackless as sl;
        pingpong(pp, &sl::pong(), &sl::ping());
        let node = sl::ring_node();
        ring(ring_small, ring_hops, &node);
        ring(100_000, ring_hops, &node);
        spawn_many(spawn_small, &sl::idle());
        spawn_many(spawn_big, &sl::idle());
        selective(1_000, sel_rounds, &sl::selective(1_000));
        fanin(1_000, fan_m, sl::sink, &sl::sender());
    }
}
