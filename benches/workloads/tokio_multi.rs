//! The multi-core workloads of `bench/beam/bench.erl` (its `multi` suite:
//! pairs, skynet, fanin) on a tokio multi-thread runtime, for the `bench`
//! example's `tokio` suite (`examples/bench.rs`): a peer to put beside BEAM and
//! chronoflow.
//!
//! Each Erlang process is a tokio task and each mailbox a bounded
//! `tokio::sync::mpsc` channel of capacity 1024 (chronoflow's default inbox
//! capacity), whose senders await room (back-pressure, as chronoflow's do).
//! Each workload gets a fresh runtime with [`worker_threads`] workers; its
//! driver (bench.erl's calling process) is itself a task on that runtime, and
//! times what bench.erl times between its T0 and T1.

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use tokio::sync::mpsc::{self, Receiver, Sender};

use crate::report;

/// A mailbox's capacity: chronoflow's default inbox capacity.
const CAPACITY: usize = 1024;

/// The worker threads: `CHRONOFLOW_CORES` if set (a positive integer), else
/// the available parallelism.
pub fn worker_threads() -> usize {
    match std::env::var("CHRONOFLOW_CORES") {
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => panic!("CHRONOFLOW_CORES must be a positive integer (got {v:?})"),
        },
        Err(_) => std::thread::available_parallelism().map_or(1, |n| n.get()),
    }
}

/// Runs `driver` as a task on a fresh multi-thread runtime and returns what it
/// returns (the driver times its own measured part, inside the runtime).
fn run<T: Send + 'static>(driver: impl Future<Output = T> + Send + 'static) -> T {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads())
        .build()
        .expect("tokio runtime");
    rt.block_on(async { tokio::spawn(driver).await.expect("driver task") })
}

/// A pong's mailbox.
enum PongMsg {
    Ping,
    Stop,
}

/// pairs: P independent ping-pong pairs, R round trips each, all at once; one
/// op = one round trip. The pongs (and each pair's reply mailbox) exist before
/// T0; the pings are spawned after it, and T1 is when the driver has all P
/// dones. Then the pongs are stopped.
pub fn pairs(p: u64, r: u64) {
    let ns = run(async move {
        let mut pongs = Vec::with_capacity(p as usize);
        let mut replies = Vec::with_capacity(p as usize);
        let mut handles = Vec::with_capacity(p as usize);
        for _ in 0..p {
            let (tx, mut rx) = mpsc::channel::<PongMsg>(CAPACITY);
            let (reply_tx, reply_rx) = mpsc::channel::<()>(CAPACITY);
            handles.push(tokio::spawn(async move {
                while let Some(PongMsg::Ping) = rx.recv().await {
                    reply_tx.send(()).await.expect("ping alive");
                }
            }));
            pongs.push(tx);
            replies.push(reply_rx);
        }
        let (done_tx, mut done_rx) = mpsc::channel::<()>(CAPACITY);
        let t0 = Instant::now();
        for (pong, mut reply) in pongs.iter().cloned().zip(replies) {
            let done = done_tx.clone();
            tokio::spawn(async move {
                for _ in 0..r {
                    pong.send(PongMsg::Ping).await.expect("pong alive");
                    reply.recv().await.expect("pong answers");
                }
                done.send(()).await.expect("driver alive");
            });
        }
        for _ in 0..p {
            done_rx.recv().await.expect("a ping's done");
        }
        let ns = t0.elapsed().as_nanos() as u64;
        for pong in &pongs {
            pong.send(PongMsg::Stop).await.expect("pong alive");
        }
        for h in handles {
            h.await.expect("pong ended");
        }
        ns
    });
    report("pairs", p, p * r, ns);
}

/// A skynet node: spawns its ten children (a leaf, none) and sends its sum to
/// its parent. Boxed: the task spawns tasks of its own type.
fn skynet_node(
    parent: Sender<u64>,
    num: u64,
    size: u64,
) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(async move {
        if size == 1 {
            parent.send(num).await.expect("parent alive");
            return;
        }
        let (tx, mut rx) = mpsc::channel::<u64>(CAPACITY);
        let sub = size / 10;
        for i in 0..10 {
            tokio::spawn(skynet_node(tx.clone(), num + i * sub, sub));
        }
        drop(tx);
        let mut sum = 0;
        for _ in 0..10 {
            sum += rx.recv().await.expect("a child's sum");
        }
        parent.send(sum).await.expect("parent alive");
    })
}

/// The tasks of a skynet of `size` leaves (bench.erl's skynet_procs).
fn skynet_procs(size: u64) -> u64 {
    if size <= 1 {
        1
    } else {
        1 + 10 * skynet_procs(size / 10)
    }
}

/// skynet: a 10-ary tree of tasks, `size` leaves, each leaf sends its number
/// to its parent, each node sums its ten children; one op = one task spawned
/// and reporting. All of it (the root's spawn to its sum received) is timed.
pub fn skynet(size: u64) {
    let (sum, ns) = run(async move {
        let (tx, mut rx) = mpsc::channel::<u64>(CAPACITY);
        let t0 = Instant::now();
        tokio::spawn(skynet_node(tx, 0, size));
        let sum = rx.recv().await.expect("the root's sum");
        (sum, t0.elapsed().as_nanos() as u64)
    });
    assert_eq!(sum, size * (size - 1) / 2, "skynet sum");
    report("skynet", size, skynet_procs(size), ns);
}

/// The sink of fanin: takes `n` messages, then tells the driver.
async fn sink(mut rx: Receiver<u64>, n: u64, done: Sender<()>) {
    for _ in 0..n {
        rx.recv().await.expect("a sender's message");
    }
    done.send(()).await.expect("driver alive");
}

/// fanin: S senders x M messages to one sink, the senders spread over every
/// worker; one op = one message. The sink exists before T0; the senders are
/// spawned after it, and T1 is the sink's done.
pub fn fanin(s: u64, m: u64) {
    let ns = run(async move {
        let (tx, rx) = mpsc::channel::<u64>(CAPACITY);
        let (done_tx, mut done_rx) = mpsc::channel::<()>(CAPACITY);
        tokio::spawn(sink(rx, s * m, done_tx));
        let t0 = Instant::now();
        for i in 0..s {
            let tx = tx.clone();
            tokio::spawn(async move {
                for _ in 0..m {
                    tx.send(i).await.expect("sink alive");
                }
            });
        }
        done_rx.recv().await.expect("the sink's done");
        t0.elapsed().as_nanos() as u64
    });
    report("fanin", s, s * m, ns);
}

/// bench.erl's `multi` suite, with its sizes (`scale` 10 for quick).
pub fn suite(scale: u64) {
    pairs(1_000, 10_000 / scale);
    skynet(1_000_000 / scale);
    fanin(1_000, 1_000 / scale);
}
