//! The multi-core workloads of `bench/beam/bench.erl` (its `multi` suite:
//! pairs, skynet, fanin) on chronoflow's multi-core [`Runtime`], for the
//! `bench` example's `multi` suite (`examples/bench.rs`), with stackful or
//! stackless processes (the bench's engine argument). The runtime has
//! `CHRONOFLOW_CORES` cores (default: all), so that the same suite runs on
//! one core and on all; each workload gets a fresh runtime. The calling
//! thread plays bench.erl's calling process (spawns from outside, joins), and
//! times what bench.erl times between its T0 and T1.
//!
//! Placement, where BEAM balances by itself (work stealing, migration) and a
//! process here never moves: pairs puts each ping on its pong's core
//! (`Placement::Near`, pongs round-robin), and its `#` line puts every ping on
//! another core than its pong, so that every message crosses; skynet spreads
//! the top two levels of its tree round-robin and keeps the rest on their
//! parent's core (`Placement::Local`); fanin's senders go round-robin, so
//! that half (on two cores) send across.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use chronoflow::runtime::{Placement, Runtime, home};
use chronoflow::stackless::{receive, send_to};
use chronoflow::{Ctx, Pid, Spawnable, StacklessCtx, StacklessTemplate, Template};

use crate::report;
use crate::workloads::{self as w, DRIVER_STACK, IDLE_STACK, Msg, SMALL_STACK, stackless as sl};

fn runtime() -> Runtime<Msg> {
    Runtime::with_cores(chronoflow::runtime::default_cores()).expect("start the runtime")
}

/// Waits until every core has taken what was posted to it so far: a process
/// on each core that ends at once, joined.
fn settle(rt: &Runtime<Msg>) {
    let nop = Template::new("nop", |_: &mut Ctx<Msg>, ()| {}).stack_size(IDLE_STACK);
    let joiners: Vec<_> = (0..rt.cores())
        .map(|c| {
            rt.spawn_joinable(Placement::Core(c), &nop, ())
                .expect("spawn")
        })
        .collect();
    for j in joiners {
        j.join().expect("nop ends");
    }
}

/// pairs: `p` pongs (round-robin) made before T0; T0; `p` pings of `r` round
/// trips each, each placed by `place` from its pong's pid; T1 once every ping
/// ended. One op = one round trip.
fn pairs_run<P, Q>(
    p: u64,
    r: u64,
    pong: &P,
    ping: &Q,
    place: impl Fn(Pid, usize) -> Placement,
) -> u64
where
    P: Spawnable<Msg, Msg, (), ()> + Clone + Send + 'static,
    Q: Spawnable<Msg, Msg, (Pid, u64), ()> + Clone + Send + 'static,
{
    let rt = runtime();
    let cores = rt.cores();
    let pongs: Vec<Pid> = (0..p)
        .map(|_| {
            rt.spawn_at(Placement::RoundRobin, pong, ())
                .expect("spawn pong")
        })
        .collect();
    // (The pongs are made before T0, as bench.erl's are.)
    settle(&rt);
    let t0 = Instant::now();
    let joiners: Vec<_> = pongs
        .iter()
        .map(|&pong| {
            rt.spawn_joinable(place(pong, cores), ping, (pong, r))
                .expect("spawn ping")
        })
        .collect();
    for j in joiners {
        j.join().expect("a ping ends");
    }
    let ns = t0.elapsed().as_nanos() as u64;
    for pong in pongs {
        rt.send_blocking(pong, Msg::Stop).expect("pong alive");
    }
    let report = rt.shutdown(Duration::from_secs(5));
    assert!(report.killed().is_empty(), "every pong stopped: {report:?}");
    ns
}

/// pairs' ping: `r` round trips with `pong`.
fn ping() -> Template<Msg, Msg, (Pid, u64), ()> {
    Template::new("ping", |ctx: &mut Ctx<Msg>, (pong, r): (Pid, u64)| {
        let me = ctx.pid();
        for _ in 0..r {
            ctx.send_to(pong, Msg::Ping(me));
            ctx.receive();
        }
    })
    .stack_size(DRIVER_STACK)
}

/// pairs' ping, stackless.
fn ping_stackless() -> StacklessTemplate<Msg, Msg, (Pid, u64), ()> {
    StacklessTemplate::new("ping", |cx: StacklessCtx<Msg>, (pong, r): (Pid, u64)| {
        #[coroutine]
        move || {
            let me = cx.pid();
            for _ in 0..r {
                send_to!(cx, pong, Msg::Ping(me));
                receive!(cx);
            }
        }
    })
}

fn pairs<P, Q>(p: u64, r: u64, pong: &P, ping: &Q, run: impl Fn(&str) -> bool)
where
    P: Spawnable<Msg, Msg, (), ()> + Clone + Send + 'static,
    Q: Spawnable<Msg, Msg, (Pid, u64), ()> + Clone + Send + 'static,
{
    if run("pairs") {
        let ns = pairs_run(p, r, pong, ping, |pong, _| Placement::Near(pong));
        report("pairs", p, p * r, ns);
    }
    if !run("pairs#") {
        return;
    }
    let ns = pairs_run(p, r, pong, ping, |pong, cores| {
        Placement::Core((home(pong) + 1) % cores)
    });
    println!(
        "# pairs param={p} with every ping on another core than its pong (every message crosses): ns_per_op={:.2}",
        ns as f64 / (p * r) as f64
    );
}

/// Subtrees at least this large spread their children round-robin over the
/// cores; smaller ones keep them on their own core.
const SPREAD_ABOVE: u64 = 10_000;

fn spread(size: u64) -> Placement {
    if size >= SPREAD_ABOVE {
        Placement::RoundRobin
    } else {
        Placement::Local
    }
}

type Node = Template<Msg, Msg, (Option<Pid>, u64, u64), u64>;
type StacklessNode = StacklessTemplate<Msg, Msg, (Option<Pid>, u64, u64), u64>;

/// skynet's node: `size` leaves under it, numbered from `num`; sends its sum
/// to `parent`, and returns it (the root's result).
fn skynet_node() -> Node {
    let node = Arc::new(OnceLock::<Node>::new());
    let inner = node.clone();
    let template = Template::new(
        "skynet",
        move |ctx: &mut Ctx<Msg>, (parent, num, size): (Option<Pid>, u64, u64)| {
            let sum = if size == 1 {
                num
            } else {
                let me = ctx.pid();
                let sub = size / 10;
                let node = inner.get().expect("set below");
                for i in 0..10 {
                    ctx.spawn_at(spread(size), node, (Some(me), num + i * sub, sub))
                        .expect("spawn a skynet node");
                }
                let mut sum = 0;
                for _ in 0..10 {
                    match ctx.receive() {
                        Msg::Data(s) => sum += s,
                        other => unreachable!("skynet got {other:?}"),
                    }
                }
                sum
            };
            if let Some(parent) = parent {
                ctx.send_to(parent, Msg::Data(sum));
            }
            sum
        },
    )
    .stack_size(SMALL_STACK);
    let _ = node.set(template.clone());
    template
}

/// skynet's node, stackless.
fn skynet_node_stackless() -> StacklessNode {
    let node = Arc::new(OnceLock::<StacklessNode>::new());
    let inner = node.clone();
    let template = StacklessTemplate::new(
        "skynet",
        move |cx: StacklessCtx<Msg>, (parent, num, size): (Option<Pid>, u64, u64)| {
            let inner = inner.clone();
            #[coroutine]
            move || {
                let sum = if size == 1 {
                    num
                } else {
                    let me = cx.pid();
                    let sub = size / 10;
                    let node = inner.get().expect("set below");
                    for i in 0..10 {
                        cx.spawn_at(spread(size), node, (Some(me), num + i * sub, sub))
                            .expect("spawn a skynet node");
                    }
                    let mut sum = 0;
                    for _ in 0..10 {
                        match receive!(cx) {
                            Msg::Data(s) => sum += s,
                            other => unreachable!("skynet got {other:?}"),
                        }
                    }
                    sum
                };
                if let Some(parent) = parent {
                    send_to!(cx, parent, Msg::Data(sum));
                }
                sum
            }
        },
    );
    let _ = node.set(template.clone());
    template
}

fn skynet_procs(size: u64) -> u64 {
    if size == 1 {
        1
    } else {
        1 + 10 * skynet_procs(size / 10)
    }
}

/// skynet: T0; the root spawned; T1 once it returned the sum. One op = one
/// process spawned and reporting.
fn skynet<N>(size: u64, node: &N)
where
    N: Spawnable<Msg, Msg, (Option<Pid>, u64, u64), u64> + Clone + Send + 'static,
{
    let rt = runtime();
    settle(&rt);
    let t0 = Instant::now();
    let root = rt
        .spawn_joinable(Placement::Core(0), node, (None, 0, size))
        .expect("spawn the root");
    let sum = root.join().expect("the root ends");
    let ns = t0.elapsed().as_nanos() as u64;
    assert_eq!(sum, size * (size - 1) / 2);
    report("skynet", size, skynet_procs(size), ns);
}

/// fanin: the sink (inbox `capacity`) made before T0; T0; `s` senders of `m`
/// messages round-robin; T1 once the sink got them all.
fn fanin_run<K, S>(s: u64, m: u64, sink: &K, sender: &S) -> u64
where
    K: Spawnable<Msg, Msg, u64, u64> + Clone + Send + 'static,
    S: Spawnable<Msg, Msg, (Pid, u64), ()> + Clone + Send + 'static,
{
    let rt = runtime();
    let sink = rt
        .spawn_joinable(Placement::Core(0), sink, s * m)
        .expect("spawn the sink");
    settle(&rt);
    let t0 = Instant::now();
    for _ in 0..s {
        rt.spawn_at(Placement::RoundRobin, sender, (sink.pid(), m))
            .expect("spawn a sender");
    }
    let got = sink.join().expect("the sink ends");
    let ns = t0.elapsed().as_nanos() as u64;
    assert_eq!(got, s * m, "the sink received every message");
    ns
}

fn fanin<K, S>(s: u64, m: u64, sink: impl Fn(usize) -> K, sender: &S)
where
    K: Spawnable<Msg, Msg, u64, u64> + Clone + Send + 'static,
    S: Spawnable<Msg, Msg, (Pid, u64), ()> + Clone + Send + 'static,
{
    // BEAM's mailboxes are unbounded: the sink's inbox holds everything, as
    // in the core suite.
    let ns = fanin_run(s, m, &sink((s * m) as usize), sender);
    report("fanin", s, s * m, ns);
    let cap = chronoflow::DEFAULT_CAPACITY;
    let ns = fanin_run(s, m, &sink(cap), sender);
    println!(
        "# fanin param={s} with the default inbox capacity {cap} (senders back off, across cores too): ns_per_op={:.2}",
        ns as f64 / (s * m) as f64
    );
}

/// bench.erl's `multi(Scale)` with `engine`'s processes; `only`, a
/// comma-separated list of workloads, runs only those (`pairs#`: the `#`
/// line of pairs).
pub fn suite(scale: u64, engine: &str, only: Option<&str>) {
    let run = |name: &str| only.is_none_or(|o| o.split(',').any(|x| x == name));
    let (p, r, size, s, m) = (
        1_000,
        10_000 / scale,
        1_000_000 / scale,
        1_000,
        1_000 / scale,
    );
    let stackless = engine == "stackless";
    if run("pairs") || run("pairs#") {
        if stackless {
            pairs(p, r, &sl::pong(), &ping_stackless(), run);
        } else {
            pairs(p, r, &w::pong(), &ping(), run);
        }
    }
    if run("skynet") {
        if stackless {
            skynet(size, &skynet_node_stackless());
        } else {
            skynet(size, &skynet_node());
        }
    }
    if run("fanin") {
        if stackless {
            fanin(s, m, sl::sink, &sl::sender());
        } else {
            fanin(s, m, w::sink, &w::sender());
        }
    }
}
