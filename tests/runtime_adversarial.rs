#![cfg_attr(feature = "stackless", feature(coroutines))]
//! Adversarial tests of the multi-core runtime: user code that panics or
//! re-enters (`Drop`, `Clone`, results), panics at every point of a process,
//! odd pids, shutdown races, back-pressure with many senders, trees across
//! cores, small and large core counts, several runtimes at once.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chronoflow::runtime::{JoinFailed, Placement, Runtime, RuntimeHandle, home};
use chronoflow::{Ctx, ExitError, Pid, SendError, SpawnError, Template, UndeliveredReason};

const SECOND: Duration = Duration::from_secs(1);
const PATIENCE: Duration = Duration::from_secs(10);

/// What a test's processes exchange.
#[derive(Debug, Clone)]
enum Msg {
    Seq(Pid, u64),
    Num(u64),
    To(Pid),
    Stop,
    /// Panics when dropped (unless the thread unwinds already) or cloned, as
    /// armed.
    Bomb(#[allow(dead_code)] Bomb),
    /// Tells `to`, through the runtime, when it is dropped.
    Notify(#[allow(dead_code)] Notify),
}

#[derive(Debug)]
struct Bomb {
    on_drop: bool,
    on_clone: bool,
}

impl Bomb {
    fn dropping() -> Msg {
        Msg::Bomb(Bomb {
            on_drop: true,
            on_clone: false,
        })
    }

    fn cloning() -> Msg {
        Msg::Bomb(Bomb {
            on_drop: false,
            on_clone: true,
        })
    }
}

impl Clone for Bomb {
    fn clone(&self) -> Self {
        assert!(!self.on_clone, "bomb cloned");
        Bomb {
            on_drop: self.on_drop,
            on_clone: self.on_clone,
        }
    }
}

impl Drop for Bomb {
    fn drop(&mut self) {
        if self.on_drop && !std::thread::panicking() {
            panic!("bomb dropped");
        }
    }
}

/// Re-enters the runtime from its `Drop`: a send to `to`, and a spawn.
#[derive(Clone)]
struct Notify {
    rt: RuntimeHandle<Msg>,
    to: Pid,
}

impl fmt::Debug for Notify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Notify({})", self.to)
    }
}

impl Drop for Notify {
    fn drop(&mut self) {
        let to = self.to;
        let _ = self.rt.try_send(to, Msg::Num(1));
        let tell = Template::new("tell", move |ctx: &mut Ctx<Msg>, ()| {
            ctx.send_to(to, Msg::Num(100));
        });
        let _ = self.rt.spawn_at(Placement::Near(to), &tell, ());
    }
}

/// Counts its drops.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl fmt::Debug for Counted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Counted")
    }
}

/// Panics when dropped (a process's result, say).
#[derive(Debug)]
struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("result dropped");
        }
    }
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn idle() -> Template<Msg, Msg, (), ()> {
    Template::new(
        "idle",
        |ctx: &mut Ctx<Msg>, ()| {
            while !matches!(ctx.receive(), Msg::Stop) {}
        },
    )
}

/// Records what it receives (`Seq` numbers by sender) until `n` came.
fn recorder(log: Arc<Mutex<Vec<(Pid, u64)>>>) -> Template<Msg, Msg, u64, ()> {
    Template::new("recorder", move |ctx: &mut Ctx<Msg>, n: u64| {
        for _ in 0..n {
            match ctx.receive() {
                Msg::Seq(from, i) => log.lock().unwrap().push((from, i)),
                other => panic!("recorder got {other:?}"),
            }
        }
    })
}

/// Each sender's numbers, in the order received.
fn by_sender(log: &[(Pid, u64)]) -> HashMap<Pid, Vec<u64>> {
    let mut by: HashMap<Pid, Vec<u64>> = HashMap::new();
    for &(from, i) in log {
        by.entry(from).or_default().push(i);
    }
    by
}

// ---------------------------------------------------------------------------
// Per-sender order and messages that wait for their process.
// ---------------------------------------------------------------------------

/// A process on core 0 sends to a pid reserved on core 0 whose spawn is still
/// in another core's batch: its first messages wait for the process (limbo);
/// when it is made with a small inbox, the rest of them wait for room there
/// (parked). Its later sends, on its own core, must not overtake them.
#[test]
fn a_local_senders_messages_to_a_late_process_keep_their_order() {
    let rt = Runtime::<Msg>::with_cores(2).unwrap();
    let n = 1500u64;
    let log = Arc::new(Mutex::new(Vec::new()));
    let target = recorder(log.clone()).capacity(1);
    // On core 0: waits for the target's pid, then sends steadily.
    let s0 = Template::new("s0", |ctx: &mut Ctx<Msg>, n: u64| {
        let Msg::To(to) = ctx.receive() else {
            panic!("no pid")
        };
        let me = ctx.pid();
        for i in 0..n {
            ctx.send_to(to, Msg::Seq(me, i));
            if i % 10 == 9 {
                ctx.sleep(Duration::from_millis(1));
            }
        }
    });
    let s0 = rt.spawn_at(Placement::Core(0), &s0, n).unwrap();
    // On core 1: reserves the target on core 0 and holds its core (the spawn
    // stays in its batch) while s0 sends.
    let slot = Arc::new(Mutex::new(None));
    let put = slot.clone();
    let p = Template::new("p", move |ctx: &mut Ctx<Msg>, ()| {
        let t = ctx.spawn_at(Placement::Core(0), &target, n).unwrap();
        *put.lock().unwrap() = Some(t);
        std::thread::sleep(Duration::from_millis(60));
    });
    rt.spawn_at(Placement::Core(1), &p, ()).unwrap();
    wait_until("the reserved pid", || slot.lock().unwrap().is_some());
    let t = slot.lock().unwrap().unwrap();
    assert_eq!(home(t), 0);
    rt.send_blocking(s0, Msg::To(t)).unwrap();
    wait_until("every message", || log.lock().unwrap().len() == n as usize);
    let got = by_sender(&log.lock().unwrap())[&s0].clone();
    let first_out_of_order = got.iter().enumerate().find(|&(i, &j)| i as u64 != j);
    assert_eq!(
        first_out_of_order, None,
        "s0's messages to a process made late came out of order"
    );
    let report = rt.shutdown(SECOND);
    assert!(report.undelivered.is_empty(), "{report:?}");
}

/// Many senders on every core of four (on a machine of two), and one outside
/// thread, to one inbox of capacity 1 on core 0: everything arrives, each
/// sender's in order.
#[test]
fn many_senders_on_four_cores_to_a_tiny_inbox_lose_nothing_and_keep_order() {
    let rt = Runtime::<Msg>::with_cores(4).unwrap();
    let (per_core, n) = (3usize, 400u64);
    let log = Arc::new(Mutex::new(Vec::new()));
    let senders = 4 * per_core;
    let total = senders as u64 * n + n;
    let sink = rt
        .spawn_joinable(
            Placement::Core(0),
            &recorder(log.clone()).capacity(1),
            total,
        )
        .unwrap();
    let sender = Template::new("sender", |ctx: &mut Ctx<Msg>, (to, n): (Pid, u64)| {
        let me = ctx.pid();
        for i in 0..n {
            ctx.send_to(to, Msg::Seq(me, i));
        }
    });
    for i in 0..senders {
        rt.spawn_at(Placement::Core(i % 4), &sender, (sink.pid(), n))
            .unwrap();
    }
    // From outside, as a pseudo-sender of its own.
    let outsider = Pid(u64::MAX - 1);
    for i in 0..n {
        rt.send_blocking(sink.pid(), Msg::Seq(outsider, i)).unwrap();
    }
    assert_eq!(sink.join(), Ok(()));
    let log = log.lock().unwrap();
    assert_eq!(log.len() as u64, total);
    let by = by_sender(&log);
    assert_eq!(by.len(), senders + 1);
    for (from, got) in by {
        assert_eq!(got, (0..n).collect::<Vec<_>>(), "{from}'s messages");
    }
    let report = rt.shutdown(SECOND);
    assert!(report.undelivered.is_empty());
    assert!(report.incidents.is_empty(), "{:?}", report.incidents);
}

/// Two destinations, both full, on another core: a sender whose messages
/// wait at both is told twice; the room of one must not lose or reorder the
/// other's.
#[test]
fn a_sender_held_by_two_full_inboxes_keeps_order_to_both() {
    let rt = Runtime::<Msg>::with_cores(2).unwrap();
    let n = 3000u64;
    let log_a = Arc::new(Mutex::new(Vec::new()));
    let log_b = Arc::new(Mutex::new(Vec::new()));
    let a = rt
        .spawn_joinable(Placement::Core(0), &recorder(log_a.clone()).capacity(1), n)
        .unwrap();
    let b = rt
        .spawn_joinable(Placement::Core(0), &recorder(log_b.clone()).capacity(2), n)
        .unwrap();
    let sender = Template::new("two", |ctx: &mut Ctx<Msg>, (a, b, n): (Pid, Pid, u64)| {
        let me = ctx.pid();
        for i in 0..n {
            ctx.send_to(a, Msg::Seq(me, i));
            ctx.send_to(b, Msg::Seq(me, i));
        }
    });
    for _ in 0..2 {
        rt.spawn_at(Placement::Core(1), &sender, (a.pid(), b.pid(), n / 2))
            .unwrap();
    }
    assert_eq!(a.join(), Ok(()));
    assert_eq!(b.join(), Ok(()));
    for log in [log_a, log_b] {
        for (from, got) in by_sender(&log.lock().unwrap()) {
            assert_eq!(got, (0..n / 2).collect::<Vec<_>>(), "{from}");
        }
    }
    let report = rt.shutdown(SECOND);
    assert!(report.undelivered.is_empty());
}

/// A message sent from a third core to a pid whose spawn is still on its way
/// waits for the process.
#[test]
fn a_message_from_a_third_core_overtaking_the_spawn_waits_for_it() {
    let rt = Runtime::<Msg>::with_cores(3).unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let put = got.clone();
    let target = Template::new("target", move |ctx: &mut Ctx<Msg>, ()| {
        for _ in 0..2 {
            put.lock().unwrap().push(ctx.receive());
        }
    });
    // On core 1: sends twice to the pid it is given (of core 2).
    let relay = Template::new("relay", |ctx: &mut Ctx<Msg>, ()| {
        let me = ctx.pid();
        let Msg::To(t) = ctx.receive() else { panic!() };
        ctx.send_to(t, Msg::Seq(me, 0));
        ctx.send_to(t, Msg::Seq(me, 1));
    });
    let relay = rt.spawn_joinable(Placement::Core(1), &relay, ()).unwrap();
    let relay_pid = relay.pid();
    // On core 0: reserves the target on core 2, tells the relay at once (a
    // batch of 256 goes without waiting for the end of the pass), and holds
    // its core: the spawn comes after the relay's messages.
    let p = Template::new("p", move |ctx: &mut Ctx<Msg>, ()| {
        let t = ctx.spawn_at(Placement::Core(2), &target, ()).unwrap();
        ctx.send_to(relay_pid, Msg::To(t));
        for i in 0..300 {
            ctx.send_to(Pid(relay_pid.0 + 2_000_000), Msg::Num(i));
        }
        std::thread::sleep(Duration::from_millis(50));
    });
    rt.spawn_at(Placement::Core(0), &p, ()).unwrap();
    relay.join().unwrap();
    wait_until("both messages", || got.lock().unwrap().len() == 2);
    let got = got.lock().unwrap();
    assert!(
        matches!(got[..], [Msg::Seq(_, 0), Msg::Seq(_, 1)]),
        "{got:?}"
    );
    let report = rt.shutdown(SECOND);
    // Only the 300 sent to a pid nobody has.
    assert_eq!(report.undelivered.len(), 300);
    assert!(
        report
            .undelivered
            .iter()
            .all(|u| u.reason == UndeliveredReason::UnknownPid)
    );
}

// ---------------------------------------------------------------------------
// Nothing dropped silently.
// ---------------------------------------------------------------------------

/// A message from outside for a pid whose spawn had not reached its core when
/// the core stopped: the spawn is reported; the message must be too.
#[test]
fn a_message_waiting_for_a_spawn_that_never_came_is_reported() {
    let rt = Runtime::<Msg>::with_cores(2).unwrap();
    let slot = Arc::new(Mutex::new(None));
    let put = slot.clone();
    let p = Template::new("p", move |ctx: &mut Ctx<Msg>, ()| {
        let t = ctx.spawn_at(Placement::Core(0), &idle(), ()).unwrap();
        *put.lock().unwrap() = Some(t);
        // Holds core 1 (and the spawn in its batch) past core 0's shutdown.
        std::thread::sleep(Duration::from_millis(300));
    });
    rt.spawn_at(Placement::Core(1), &p, ()).unwrap();
    wait_until("the reserved pid", || slot.lock().unwrap().is_some());
    let t = slot.lock().unwrap().unwrap();
    rt.try_send(t, Msg::Num(42)).unwrap();
    // Core 0 takes it (to wait for its process).
    std::thread::sleep(Duration::from_millis(50));
    let report = rt.shutdown(Duration::ZERO);
    assert!(report.dead_cores().is_empty(), "{report:?}");
    assert!(
        report
            .incidents
            .iter()
            .any(|i| i.what.contains(&format!("spawn of {t}"))),
        "{report:?}"
    );
    assert!(
        report
            .undelivered
            .iter()
            .any(|u| u.to == Some(t) && matches!(u.msg, Msg::Num(42))),
        "the message sent to {t} was accepted, then dropped unreported: {report:?}"
    );
}

/// Outside sends accepted while the runtime shuts down, to a pid that ended:
/// each is reported (undelivered), never dropped unseen.
#[test]
fn outside_sends_accepted_during_shutdown_are_reported() {
    for _ in 0..20 {
        let rt = Runtime::<Msg>::with_cores(1).unwrap();
        let quick = Template::new("quick", |_: &mut Ctx<Msg>, ()| {});
        let j = rt.spawn_joinable(Placement::Core(0), &quick, ()).unwrap();
        let pid = j.pid();
        j.join().unwrap();
        let h = rt.handle();
        let go = Arc::new(AtomicBool::new(true));
        let going = go.clone();
        let hammer = std::thread::spawn(move || {
            let mut ok = 0usize;
            while going.load(Ordering::SeqCst) {
                match h.try_send(pid, Msg::Num(1)) {
                    Ok(()) => ok += 1,
                    Err(SendError::Full(_)) => std::thread::yield_now(),
                    Err(_) => break,
                }
            }
            ok
        });
        std::thread::sleep(Duration::from_millis(5));
        let report = rt.shutdown(Duration::ZERO);
        go.store(false, Ordering::SeqCst);
        let ok = hammer.join().unwrap();
        assert_eq!(
            report.undelivered.len(),
            ok,
            "{ok} sends to an ended pid accepted, {} reported",
            report.undelivered.len()
        );
    }
}

/// A message from a process to a pid of another core that nobody has is kept
/// with its sender named (`from: None` means "from outside").
#[test]
fn a_message_kept_on_another_core_names_its_sender() {
    let rt = Runtime::<Msg>::with_cores(2).unwrap();
    let to = Pid((1 << 48) + 2 * 777_777);
    let send = Template::new("send", move |ctx: &mut Ctx<Msg>, ()| {
        ctx.send_to(to, Msg::Num(1));
        ctx.pid()
    });
    let sender = rt
        .spawn_joinable(Placement::Core(0), &send, ())
        .unwrap()
        .join()
        .unwrap();
    let report = rt.shutdown(SECOND);
    assert_eq!(report.undelivered.len(), 1);
    let u = &report.undelivered[0];
    assert_eq!(
        (u.from, u.to, u.reason),
        (Some(sender), Some(to), UndeliveredReason::UnknownPid)
    );
}

// ---------------------------------------------------------------------------
// User code that panics on a core, outside any process.
// ---------------------------------------------------------------------------

/// A joinable process's result whose `Drop` panics, its joiner dropped before
/// it ended: the core drops the result, and must survive it.
#[test]
fn a_result_that_panics_when_dropped_after_its_joiner_went_does_not_kill_the_core() {
    let rt = Runtime::<Msg>::with_cores(2).unwrap();
    let t = Template::new("r", |ctx: &mut Ctx<Msg>, ()| {
        ctx.receive();
        PanicOnDrop
    });
    let j = rt.spawn_joinable(Placement::Core(0), &t, ()).unwrap();
    let pid = j.pid();
    drop(j);
    rt.send_blocking(pid, Msg::Stop).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    // Core 0 still makes and runs processes.
    let quick = Template::new("quick", |_: &mut Ctx<Msg>, ()| 7u8);
    let mut j = rt.spawn_joinable(Placement::Core(0), &quick, ()).unwrap();
    let after = j.join_timeout(Duration::from_secs(3));
    let report = rt.shutdown(SECOND);
    assert_eq!(after, Ok(7), "core 0 after the result's drop: {report:?}");
    assert!(report.dead_cores().is_empty(), "{report:?}");
    assert!(has_incident(&report, 0, "result dropped"), "{report:?}");
}

/// A process that traps exits is killed at the deadline with a message in its
/// inbox whose `Drop` panics: its core must survive, and report.
#[test]
fn a_message_that_panics_when_its_killed_process_drops_it_does_not_kill_the_core() {
    let rt = Runtime::<Msg>::with_cores(2).unwrap();
    let stubborn = Template::new("stubborn", |ctx: &mut Ctx<Msg>, ()| {
        ctx.trap_exit(true);
        ctx.sleep(Duration::from_secs(3600));
    });
    let pid = rt.spawn_at(Placement::Core(0), &stubborn, ()).unwrap();
    rt.send_blocking(pid, Bomb::dropping()).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let report = rt.shutdown(Duration::from_millis(50));
    assert!(report.dead_cores().is_empty(), "{report:?}");
    assert_eq!(report.killed().len(), 1, "{report:?}");
    assert!(
        report
            .incidents
            .iter()
            .any(|i| i.what.contains("bomb dropped")),
        "{report:?}"
    );
}

/// The same, for a process that stops when asked: its inbox dropped in the
/// graceful part of the shutdown.
#[test]
fn a_message_that_panics_when_a_stopped_process_drops_it_is_an_incident() {
    let rt = Runtime::<Msg>::with_cores(2).unwrap();
    let sleeper = Template::new("sleeper", |ctx: &mut Ctx<Msg>, ()| {
        ctx.sleep(Duration::from_secs(3600));
    });
    for core in 0..2 {
        let pid = rt.spawn_at(Placement::Core(core), &sleeper, ()).unwrap();
        rt.send_blocking(pid, Bomb::dropping()).unwrap();
    }
    std::thread::sleep(Duration::from_millis(20));
    let report = rt.shutdown(SECOND);
    assert!(report.dead_cores().is_empty(), "{report:?}");
    assert!(report.killed().is_empty(), "{report:?}");
    let cores: std::collections::BTreeSet<usize> = report
        .incidents
        .iter()
        .filter(|i| i.what.contains("bomb dropped"))
        .map(|i| i.core)
        .collect();
    assert_eq!(cores, [0, 1].into(), "{report:?}");
}

/// A message for a process with children comes from another core, and its
/// `Clone` (for the children's copies) panics: that message is lost and
/// reported; the core goes on, and the tree gets the next messages.
#[test]
fn a_tree_on_one_core_gets_copies_from_another_and_survives_a_panicking_clone() {
    let rt = Runtime::<Msg>::with_cores(2).unwrap();
    let copies = Arc::new(AtomicUsize::new(0));
    let seen = copies.clone();
    let child = Template::new("child", move |ctx: &mut Ctx<Msg>, ()| {
        loop {
            match ctx.receive() {
                Msg::Num(_) => {
                    seen.fetch_add(1, Ordering::SeqCst);
                }
                Msg::Stop => return,
                _ => {}
            }
        }
    });
    let parent = Template::new("parent", move |ctx: &mut Ctx<Msg>, n: u64| {
        let a = ctx.spawn(&child, ()).unwrap();
        let b = ctx.spawn(&child, ()).unwrap();
        let mut sum = 0;
        let mut got = 0;
        while got < n {
            match ctx.receive() {
                Msg::Num(i) => {
                    sum += i;
                    got += 1;
                }
                Msg::Bomb(_) => panic!("the bomb's clone panicked: not delivered"),
                _ => {}
            }
        }
        ctx.join(a).unwrap();
        ctx.join(b).unwrap();
        sum
    });
    let n = 50u64;
    let j = rt.spawn_joinable(Placement::Core(0), &parent, n).unwrap();
    let pid = j.pid();
    let sender = Template::new("sender", move |ctx: &mut Ctx<Msg>, n: u64| {
        ctx.send_to(pid, Bomb::cloning());
        for i in 0..n {
            ctx.send_to(pid, Msg::Num(i));
        }
        ctx.send_to(pid, Msg::Stop);
    });
    // (Spawned once the parent has its children: it waits for the first.)
    std::thread::sleep(Duration::from_millis(20));
    rt.spawn_at(Placement::Core(1), &sender, n).unwrap();
    assert_eq!(j.join(), Ok((0..n).sum::<u64>()));
    assert_eq!(copies.load(Ordering::SeqCst), 2 * n as usize);
    let report = rt.shutdown(SECOND);
    assert!(report.dead_cores().is_empty());
    assert!(has_incident(&report, 0, "bomb cloned"), "{report:?}");
}

/// A message whose `Drop` re-enters the runtime (sends, and spawns) is
/// dropped on a core (the inbox of a process that ended): both work.
#[test]
fn a_message_whose_drop_sends_and_spawns_through_the_runtime() {
    let rt = Runtime::<Msg>::with_cores(2).unwrap();
    let counter = Template::new("counter", |ctx: &mut Ctx<Msg>, want: u64| {
        let mut sum = 0;
        while sum < want {
            if let Msg::Num(i) = ctx.receive() {
                sum += i;
            }
        }
        sum
    });
    let k = 5u64;
    let j = rt
        .spawn_joinable(Placement::Core(1), &counter, k * 101)
        .unwrap();
    // Ends without reading: its core drops its inbox.
    let quitter = Template::new("quitter", |ctx: &mut Ctx<Msg>, ()| {
        ctx.sleep(Duration::from_millis(30));
    });
    let q = rt.spawn_at(Placement::Core(0), &quitter, ()).unwrap();
    for _ in 0..k {
        let notify = Notify {
            rt: rt.handle(),
            to: j.pid(),
        };
        rt.send_blocking(q, Msg::Notify(notify)).unwrap();
    }
    let mut j = j;
    let got = j.join_timeout(Duration::from_secs(5));
    // Those kept as undelivered are dropped here, and notify too late.
    let report = rt.shutdown(SECOND);
    let kept = report.undelivered.len() as u64;
    assert_eq!(got, Ok(k * 101), "kept {kept}: {report:?}");
    assert!(report.dead_cores().is_empty());
    assert!(report.incidents.is_empty(), "{:?}", report.incidents);
}

// ---------------------------------------------------------------------------
// send_blocking on a core's thread.
// ---------------------------------------------------------------------------

/// From a process, `send_blocking` to its own core panics clearly (the
/// process fails) once it would wait.
#[test]
fn send_blocking_from_a_process_to_its_own_core_fails_the_process() {
    let rt = Runtime::<Msg>::with_cores(2).unwrap();
    let h = rt.handle();
    let target = rt.spawn_at(Placement::Core(0), &idle(), ()).unwrap();
    let flood = Template::new("flood", move |_: &mut Ctx<Msg>, to: Pid| {
        for i in 0..10_000 {
            h.send_blocking(to, Msg::Num(i)).unwrap();
        }
    });
    let j = rt
        .spawn_joinable(Placement::Core(0), &flood, target)
        .unwrap();
    match j.join() {
        Err(JoinFailed::Exited(ExitError::Failed(why))) => {
            assert!(why.contains("would wait"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    let report = rt.shutdown(SECOND);
    assert!(report.dead_cores().is_empty());
}

/// From processes on two cores, `send_blocking` to each other's core: each
/// core thread would wait for the other. It must fail the processes (as the
/// docs say: it panics on a core's thread), not hang both cores.
#[test]
fn send_blocking_between_two_cores_from_processes_does_not_hang_them() {
    let rt = Runtime::<Msg>::with_cores(2).unwrap();
    let h = rt.handle();
    let barrier = Arc::new(std::sync::Barrier::new(2));
    let targets: Vec<Pid> = (0..2)
        .map(|core| rt.spawn_at(Placement::Core(core), &idle(), ()).unwrap())
        .collect();
    let flood = Template::new("flood", move |_: &mut Ctx<Msg>, to: Pid| {
        // Both cores in their passes at once.
        barrier.wait();
        for i in 0..5_000 {
            h.send_blocking(to, Msg::Num(i)).unwrap();
        }
    });
    let mut joiners: Vec<_> = (0..2)
        .map(|core| {
            rt.spawn_joinable(Placement::Core(core), &flood, targets[1 - core])
                .unwrap()
        })
        .collect();
    let outcomes: Vec<_> = joiners
        .iter_mut()
        .map(|j| j.join_timeout(Duration::from_secs(3)))
        .collect();
    if outcomes.contains(&Err(JoinFailed::Timeout)) {
        // Both cores wait for each other for good: the runtime cannot be
        // shut down (its drop would wait too).
        std::mem::forget(rt);
        panic!("send_blocking from processes on two cores hung both: {outcomes:?}");
    }
    let report = rt.shutdown(SECOND);
    assert!(report.dead_cores().is_empty());
}

// ---------------------------------------------------------------------------
// Panics in processes at every point.
// ---------------------------------------------------------------------------

#[test]
fn what_a_process_sent_and_spawned_before_it_panicked_still_arrives() {
    let rt = Runtime::<Msg>::with_cores(3).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let n = 700u64; // more than a batch
    let sink = rt
        .spawn_joinable(Placement::Core(0), &recorder(log.clone()), 3 * n + 3)
        .unwrap();
    let sink_pid = sink.pid();
    let child = Template::new("child", move |ctx: &mut Ctx<Msg>, ()| {
        let me = ctx.pid();
        ctx.send_to(sink_pid, Msg::Seq(me, 0));
    });
    let bad = Template::new("bad", move |ctx: &mut Ctx<Msg>, core: usize| {
        let me = ctx.pid();
        ctx.spawn_at(Placement::Core((core + 1) % 3), &child, ())
            .unwrap();
        for i in 0..n {
            ctx.send_to(sink_pid, Msg::Seq(me, i));
        }
        panic!("after sending, on core {core}");
    });
    let joiners: Vec<_> = (0..3)
        .map(|core| {
            rt.spawn_joinable(Placement::Core(core), &bad, core)
                .unwrap()
        })
        .collect();
    for j in joiners {
        assert!(matches!(
            j.join(),
            Err(JoinFailed::Exited(ExitError::Failed(_)))
        ));
    }
    assert_eq!(sink.join(), Ok(()));
    let by = by_sender(&log.lock().unwrap());
    assert_eq!(by.len(), 6);
    assert_eq!(by.values().filter(|v| v.len() == n as usize).count(), 3);
    for got in by.values() {
        assert_eq!(*got, (0..got.len() as u64).collect::<Vec<_>>());
    }
    let report = rt.shutdown(SECOND);
    assert!(report.dead_cores().is_empty());
    assert!(report.incidents.is_empty(), "{:?}", report.incidents);
}

/// Processes that panic while the runtime shuts down (when asked to stop,
/// while unwinding at the kill, in a guard's `Drop`) fail alone.
#[test]
fn panics_during_shutdown_fail_only_their_processes() {
    struct PanicGuard;
    impl Drop for PanicGuard {
        fn drop(&mut self) {
            if !std::thread::panicking() {
                panic!("guard dropped");
            }
        }
    }
    let rt = Runtime::<Msg>::with_cores(3).unwrap();
    let asked = Template::new("asked", |ctx: &mut Ctx<Msg>, ()| {
        ctx.trap_exit(true);
        ctx.receive_mail();
        panic!("asked to stop");
    });
    let guarded = Template::new("guarded", |ctx: &mut Ctx<Msg>, ()| {
        let _g = PanicGuard;
        ctx.trap_exit(true);
        loop {
            ctx.receive_mail();
        }
    });
    let guarded_graceful = Template::new("guarded_graceful", |ctx: &mut Ctx<Msg>, ()| {
        let _g = PanicGuard;
        ctx.receive();
    });
    for core in 0..3 {
        rt.spawn_at(Placement::Core(core), &asked, ()).unwrap();
        rt.spawn_at(Placement::Core(core), &guarded, ()).unwrap();
        rt.spawn_at(Placement::Core(core), &guarded_graceful, ())
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(20));
    let report = rt.shutdown(Duration::from_millis(100));
    assert!(report.dead_cores().is_empty(), "{report:?}");
    let mut killed: Vec<String> = report.killed().into_iter().map(|(_, n)| n).collect();
    killed.sort();
    assert_eq!(killed, ["guarded", "guarded", "guarded"], "{report:?}");
}

// ---------------------------------------------------------------------------
// Odd pids and placements.
// ---------------------------------------------------------------------------

#[test]
fn sends_to_pids_of_no_process_are_kept_whatever_their_core_or_parity() {
    let rt = Runtime::<Msg>::with_cores(2).unwrap();
    let core1 = 1u64 << 48;
    let garbage = [
        Pid(core1 + 2 * 1_000_000),     // even, core 1, never made
        Pid(core1 + 2 * 1_000_000 + 1), // odd, core 1, never reserved
        Pid(2 * 1_000_000),             // even, core 0
        Pid(2 * 1_000_000 + 1),         // odd, core 0
        Pid(7 << 48),                   // core 7 of 2
        Pid(u64::MAX),                  // the last core there could be
    ];
    let send_all = Template::new("send_all", move |ctx: &mut Ctx<Msg>, ()| {
        for (i, &pid) in garbage.iter().enumerate() {
            ctx.send_to(pid, Msg::Num(i as u64));
        }
    });
    for core in 0..2 {
        rt.spawn_joinable(Placement::Core(core), &send_all, ())
            .unwrap()
            .join()
            .unwrap();
    }
    // From outside: the pids of a core go to it; those of no core are
    // refused at once.
    let mut refused = 0;
    for (i, &pid) in garbage.iter().enumerate() {
        match rt.try_send(pid, Msg::Num(100 + i as u64)) {
            Ok(()) => {}
            Err(SendError::UnknownPid(p, Msg::Num(_))) if p == pid && home(pid) >= 2 => {
                refused += 1
            }
            Err(e) => panic!("{pid}: {e:?}"),
        }
    }
    assert_eq!(refused, 2);
    std::thread::sleep(Duration::from_millis(20));
    let report = rt.shutdown(SECOND);
    assert_eq!(report.undelivered.len(), 2 * 6 + 4, "{report:?}");
    assert!(
        report
            .undelivered
            .iter()
            .all(|u| u.reason == UndeliveredReason::UnknownPid),
        "{report:?}"
    );
    for u in &report.undelivered {
        assert!(garbage.contains(&u.to.unwrap()));
    }
}

#[test]
fn placements_of_garbage_are_refused_inside_and_outside() {
    let rt = Runtime::<Msg>::with_cores(2).unwrap();
    for at in [
        Placement::Near(Pid(u64::MAX)),
        Placement::Near(Pid(2 << 48)),
        Placement::Core(2),
        Placement::Core(usize::MAX),
    ] {
        assert!(
            matches!(
                rt.spawn_at(at, &idle(), ()),
                Err(SpawnError::Unplaceable(_))
            ),
            "{at:?}"
        );
        let dropped = Arc::new(AtomicUsize::new(0));
        let args = Counted(dropped.clone());
        assert!(matches!(
            rt.spawn_joinable(
                at,
                &Template::new("x", |_: &mut Ctx<Msg>, _: Counted| {}),
                args
            ),
            Err(SpawnError::Unplaceable(_))
        ));
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            1,
            "the refused args dropped"
        );
        let inside = Template::new("inside", move |ctx: &mut Ctx<Msg>, ()| {
            matches!(
                ctx.spawn_at(at, &idle(), ()),
                Err(SpawnError::Unplaceable(_))
            )
        });
        for core in 0..2 {
            let j = rt
                .spawn_joinable(Placement::Core(core), &inside, ())
                .unwrap();
            assert_eq!(j.join(), Ok(true), "{at:?} from core {core}");
        }
    }
    // Near a pid that ended, or one reserved and not made yet: its core.
    let quick = Template::new("quick", |_: &mut Ctx<Msg>, ()| {});
    let gone = rt.spawn_joinable(Placement::Core(1), &quick, ()).unwrap();
    let gone_pid = gone.pid();
    gone.join().unwrap();
    let near = rt.spawn_at(Placement::Near(gone_pid), &idle(), ()).unwrap();
    assert_eq!(home(near), 1);
    let report = rt.shutdown(SECOND);
    assert!(report.killed().is_empty());
    assert!(report.incidents.is_empty(), "{:?}", report.incidents);
}

// ---------------------------------------------------------------------------
// Shutdown races.
// ---------------------------------------------------------------------------

/// Processes on every core keep spawning on other cores while the runtime
/// shuts down: each spawn is refused (its arguments dropped), or made, or
/// reported; the shutdown ends; nothing leaks.
#[test]
fn spawning_from_processes_while_the_runtime_shuts_down() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let tried = Arc::new(AtomicUsize::new(0));
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let rt = Runtime::<Msg>::with_cores(3).unwrap();
    let target = Template::new("target", |ctx: &mut Ctx<Msg>, _args: Counted| {
        ctx.receive();
    });
    let (d, t, a) = (dropped.clone(), tried.clone(), accepted.clone());
    let spawner = Template::new("spawner", move |ctx: &mut Ctx<Msg>, core: usize| {
        ctx.trap_exit(true);
        let mut i = 0usize;
        loop {
            t.fetch_add(1, Ordering::SeqCst);
            let at = Placement::Core((core + 1 + i % 2) % 3);
            i += 1;
            match ctx.spawn_at(at, &target, Counted(d.clone())) {
                Ok(pid) => a.lock().unwrap().push(pid),
                Err(SpawnError::ShuttingDown) => return i,
                Err(e) => panic!("{e:?}"),
            }
            if i.is_multiple_of(50) {
                ctx.yield_now();
            }
        }
    });
    let joiners: Vec<_> = (0..3)
        .map(|core| {
            rt.spawn_joinable(Placement::Core(core), &spawner, core)
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(30));
    let report = rt.shutdown(Duration::from_millis(500));
    assert!(report.dead_cores().is_empty(), "{report:?}");
    for j in joiners {
        assert!(matches!(j.join(), Ok(n) if n > 0));
    }
    let accepted = accepted.lock().unwrap();
    for i in &report.incidents {
        assert!(
            accepted
                .iter()
                .any(|p| i.what.contains(&format!("spawn of {p} "))),
            "an incident about no accepted spawn: {i:?}"
        );
    }
    drop(report);
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        tried.load(Ordering::SeqCst),
        "every spawn's arguments dropped once"
    );
}

/// Arguments whose `Drop` panics, of spawns refused on their core (spawns
/// closed) or left on the way at the shutdown: incidents, never a dead core.
#[test]
fn spawn_args_that_panic_when_dropped_at_shutdown_are_contained() {
    #[derive(Debug)]
    struct Args;
    impl Drop for Args {
        fn drop(&mut self) {
            if !std::thread::panicking() {
                panic!("args dropped");
            }
        }
    }
    let target = Template::new("t", |ctx: &mut Ctx<Msg>, args: Args| {
        ctx.receive();
        std::mem::forget(args);
    });
    for _ in 0..10 {
        let rt = Runtime::<Msg>::with_cores(2).unwrap();
        let h = rt.handle();
        let go = Arc::new(AtomicBool::new(true));
        let going = go.clone();
        let t = target.clone();
        let spammer = std::thread::spawn(move || {
            let mut ok = 0;
            while going.load(Ordering::SeqCst) {
                match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    h.spawn_at(Placement::RoundRobin, &t, Args)
                })) {
                    Ok(Ok(_)) => ok += 1,
                    // Refused here: the args dropped (and panicked) here.
                    Err(_) | Ok(Err(_)) => break,
                }
            }
            ok
        });
        std::thread::sleep(Duration::from_millis(3));
        let report = rt.shutdown(Duration::ZERO);
        go.store(false, Ordering::SeqCst);
        let _ = spammer.join();
        assert!(report.dead_cores().is_empty(), "{report:?}");
    }
}

/// The runtime dropped by one of its own processes: it stops (no hang), and
/// its handles see it closed.
#[test]
fn a_runtime_dropped_from_inside_one_of_its_processes_stops() {
    for core in 0..2 {
        let rt = Runtime::<Msg>::with_cores(2).unwrap();
        let h = rt.handle();
        let slot: Arc<Mutex<Option<Runtime<Msg>>>> = Arc::new(Mutex::new(None));
        let take = slot.clone();
        let dropper = Template::new("dropper", move |ctx: &mut Ctx<Msg>, ()| {
            ctx.receive();
            let rt = take.lock().unwrap().take();
            drop(rt);
        });
        let others: Vec<Pid> = (0..2)
            .map(|c| rt.spawn_at(Placement::Core(c), &idle(), ()).unwrap())
            .collect();
        let pid = rt.spawn_at(Placement::Core(core), &dropper, ()).unwrap();
        *slot.lock().unwrap() = Some(rt);
        h.send_blocking(pid, Msg::Stop).unwrap();
        wait_until("the runtime to stop", || {
            others
                .iter()
                .all(|&p| matches!(h.try_send(p, Msg::Num(0)), Err(SendError::Closed(_))))
        });
        assert!(matches!(
            h.spawn(&idle(), ()),
            Err(SpawnError::ShuttingDown)
        ));
    }
}

/// A runtime dropped (not shut down) while other threads join its processes
/// and send to them: the joins end, the sends are refused.
#[test]
fn dropping_the_runtime_while_joiners_wait_on_other_threads() {
    let rt = Runtime::<Msg>::with_cores(2).unwrap();
    let forever = Template::new("forever", |ctx: &mut Ctx<Msg>, ()| -> u64 {
        loop {
            ctx.receive();
        }
    });
    let waiting: Vec<_> = (0..4)
        .map(|i| {
            let j = rt
                .spawn_joinable(Placement::Core(i % 2), &forever, ())
                .unwrap();
            std::thread::spawn(move || j.join())
        })
        .collect();
    // And joiners dropped early.
    for i in 0..4 {
        drop(rt.spawn_joinable(Placement::Core(i % 2), &forever, ()));
    }
    std::thread::sleep(Duration::from_millis(20));
    drop(rt);
    for w in waiting {
        let got = w.join().unwrap();
        // (Asked to stop with no time to do it, or killed.)
        assert!(
            matches!(
                got,
                Err(JoinFailed::Exited(
                    ExitError::Killed(_) | ExitError::Shutdown(_)
                ))
            ),
            "{got:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// Core counts, several runtimes, budgets.
// ---------------------------------------------------------------------------

fn ping_pong(rt: &Runtime<Msg>, rounds: u64, a: Placement, b: Placement) -> u64 {
    let pong = Template::new("pong", |ctx: &mut Ctx<Msg>, rounds: u64| {
        for _ in 0..rounds {
            if let Msg::To(from) = ctx.receive() {
                ctx.send_to(from, Msg::Num(1));
            }
        }
    });
    let ping = Template::new("ping", |ctx: &mut Ctx<Msg>, (to, rounds): (Pid, u64)| {
        let mut n = 0;
        for _ in 0..rounds {
            ctx.send_to(to, Msg::To(ctx.pid()));
            if let Msg::Num(i) = ctx.receive() {
                n += i;
            }
        }
        n
    });
    let p = rt.spawn_at(a, &pong, rounds).unwrap();
    let j = rt.spawn_joinable(b, &ping, (p, rounds)).unwrap();
    j.join().unwrap()
}

#[test]
fn a_runtime_of_one_core_places_everything_there() {
    let rt = Runtime::<Msg>::with_cores(0).unwrap();
    assert_eq!(rt.cores(), 1, "0 cores is 1");
    assert_eq!(
        ping_pong(&rt, 200, Placement::LeastLoaded, Placement::RoundRobin),
        200
    );
    let places = Template::new("places", |ctx: &mut Ctx<Msg>, ()| {
        let me = ctx.pid();
        let mut homes = Vec::new();
        for at in [
            Placement::Local,
            Placement::RoundRobin,
            Placement::LeastLoaded,
            Placement::Core(0),
            Placement::Near(me),
        ] {
            homes.push(home(ctx.spawn_at(at, &idle(), ()).unwrap()));
        }
        let refused = matches!(
            ctx.spawn_at(Placement::Core(1), &idle(), ()),
            Err(SpawnError::Unplaceable(_))
        );
        (homes, refused)
    });
    let j = rt.spawn_joinable(Placement::Local, &places, ()).unwrap();
    assert_eq!(j.join(), Ok((vec![0; 5], true)));
    // A reserved pid of the only core, sent to before its spawn is taken.
    let first = Template::new("first", |ctx: &mut Ctx<Msg>, ()| match ctx.receive() {
        Msg::Num(n) => n,
        _ => 0,
    });
    for i in 0..20 {
        let j = rt.spawn_joinable(Placement::Local, &first, ()).unwrap();
        rt.try_send(j.pid(), Msg::Num(i)).unwrap();
        assert_eq!(j.join(), Ok(i));
    }
    let report = rt.shutdown(SECOND);
    assert!(report.killed().is_empty());
    let stopped: usize = report.cores.iter().flatten().map(|r| r.stopped).sum();
    assert_eq!(stopped, 5, "the idle ones");
}

#[test]
fn many_runtimes_at_once() {
    let threads: Vec<_> = (0..6)
        .map(|i| {
            std::thread::spawn(move || {
                let cores = 1 + i % 4;
                let rt = Runtime::<Msg>::with_cores(cores).unwrap();
                let n = ping_pong(&rt, 300, Placement::Core(0), Placement::Core(cores - 1));
                let report = rt.shutdown(SECOND);
                (n, report.killed().len(), report.dead_cores().len())
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), (300, 0, 0));
    }
}

/// Processes that send forever (never waiting for anything) on a core: their
/// budget lets the others of their core run; they stop at the shutdown.
#[test]
fn processes_that_never_wait_share_their_core_and_stop_at_shutdown() {
    let rt = Runtime::<Msg>::with_cores(2).unwrap();
    let drain = rt.spawn_at(Placement::Core(1), &idle(), ()).unwrap();
    let local_drain = rt.spawn_at(Placement::Core(0), &idle(), ()).unwrap();
    let hog = Template::new("hog", |ctx: &mut Ctx<Msg>, (far, near): (Pid, Pid)| {
        let mut i = 0u64;
        loop {
            ctx.send_to(far, Msg::Num(i));
            ctx.send_to(near, Msg::Num(i));
            i += 1;
        }
    });
    for _ in 0..2 {
        rt.spawn_at(Placement::Core(0), &hog, (drain, local_drain))
            .unwrap();
    }
    assert_eq!(
        ping_pong(&rt, 200, Placement::Core(1), Placement::Core(0)),
        200
    );
    let report = rt.shutdown(SECOND);
    assert!(report.killed().is_empty(), "{report:?}");
    assert!(report.dead_cores().is_empty());
}

// ---------------------------------------------------------------------------
// A message type whose `Debug` panics: the runtime never formats messages.
// ---------------------------------------------------------------------------

#[test]
fn the_runtime_never_formats_a_message() {
    struct Opaque(u64);
    impl fmt::Debug for Opaque {
        fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
            panic!("formatted a message")
        }
    }
    let rt = Runtime::<Opaque>::with_cores(2).unwrap();
    let sink = Template::new("sink", |ctx: &mut Ctx<Opaque>, n: u64| {
        let mut sum = 0;
        for _ in 0..n {
            sum += ctx.receive().0;
        }
        sum
    })
    .capacity(1);
    let j = rt.spawn_joinable(Placement::Core(0), &sink, 100).unwrap();
    let to = j.pid();
    let src = Template::new("src", move |ctx: &mut Ctx<Opaque>, ()| {
        for i in 0..100 {
            ctx.send_to(to, Opaque(i));
        }
        ctx.send_to(Pid(5 << 48), Opaque(0));
        ctx.send_to(Pid((1 << 48) + 999_999), Opaque(0));
    });
    rt.spawn_at(Placement::Core(1), &src, ()).unwrap();
    assert_eq!(j.join(), Ok((0..100).sum()));
    let stuck = rt.spawn_at(Placement::Core(1), &sink, 1000).unwrap();
    rt.try_send(stuck, Opaque(1)).unwrap();
    let report = rt.shutdown(SECOND);
    assert_eq!(report.undelivered.len(), 2);
    assert!(report.incidents.is_empty(), "{:?}", report.incidents);
    assert!(format!("{report:?}").contains("undelivered: 2"));
}

// ---------------------------------------------------------------------------
// Stackless processes.
// ---------------------------------------------------------------------------

#[cfg(feature = "stackless")]
mod stackless {
    use super::*;
    use chronoflow::stackless::{receive, send_to, yield_now};
    use chronoflow::{StacklessCtx, StacklessTemplate};

    /// Stackless senders on three cores to a tiny stackful inbox, and one
    /// that panics after sending: all arrive, in order per sender.
    #[test]
    fn stackless_senders_to_a_tiny_inbox_and_one_that_panics() {
        let rt = Runtime::<Msg>::with_cores(3).unwrap();
        let n = 500u64;
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = rt
            .spawn_joinable(
                Placement::Core(0),
                &recorder(log.clone()).capacity(1),
                4 * n,
            )
            .unwrap();
        let sender = StacklessTemplate::new(
            "sender",
            |cx: StacklessCtx<Msg>, (to, n, fail): (Pid, u64, bool)| {
                #[coroutine]
                move || {
                    let me = cx.pid();
                    for i in 0..n {
                        send_to!(cx, to, Msg::Seq(me, i));
                    }
                    assert!(!fail, "stackless sender fails after sending");
                }
            },
        );
        for core in 0..3 {
            rt.spawn_at(Placement::Core(core), &sender, (sink.pid(), n, false))
                .unwrap();
        }
        let bad = rt
            .spawn_joinable(Placement::Core(1), &sender, (sink.pid(), n, true))
            .unwrap();
        assert!(matches!(
            bad.join(),
            Err(JoinFailed::Exited(ExitError::Failed(_)))
        ));
        assert_eq!(sink.join(), Ok(()));
        for (from, got) in by_sender(&log.lock().unwrap()) {
            assert_eq!(got, (0..n).collect::<Vec<_>>(), "{from}");
        }
        let report = rt.shutdown(SECOND);
        assert!(report.undelivered.is_empty());
        assert!(report.dead_cores().is_empty());
    }

    /// Stackless processes spawning on other cores while the runtime shuts
    /// down: refused cleanly, never a dead core, arguments all dropped.
    #[test]
    fn stackless_spawners_during_shutdown() {
        let dropped = Arc::new(AtomicUsize::new(0));
        let tried = Arc::new(AtomicUsize::new(0));
        let rt = Runtime::<Msg>::with_cores(2).unwrap();
        let leaf = StacklessTemplate::new("leaf", |cx: StacklessCtx<Msg>, args: Counted| {
            #[coroutine]
            move || {
                let _args = args;
                receive!(cx);
            }
        });
        let (d, t) = (dropped.clone(), tried.clone());
        let spawner = StacklessTemplate::new("spawner", move |cx: StacklessCtx<Msg>, ()| {
            let (leaf, d, t) = (leaf.clone(), d.clone(), t.clone());
            #[coroutine]
            move || {
                cx.trap_exit(true);
                let mut i = 0u64;
                loop {
                    t.fetch_add(1, Ordering::SeqCst);
                    i += 1;
                    match cx.spawn_at(Placement::RoundRobin, &leaf, Counted(d.clone())) {
                        Ok(_) => {}
                        Err(SpawnError::ShuttingDown) => return i,
                        Err(e) => panic!("{e:?}"),
                    }
                    if i.is_multiple_of(50) {
                        yield_now!();
                    }
                }
            }
        });
        let joiners: Vec<_> = (0..2)
            .map(|core| {
                rt.spawn_joinable(Placement::Core(core), &spawner, ())
                    .unwrap()
            })
            .collect();
        std::thread::sleep(Duration::from_millis(30));
        let report = rt.shutdown(Duration::from_millis(500));
        assert!(report.dead_cores().is_empty(), "{report:?}");
        for j in joiners {
            assert!(matches!(j.join(), Ok(n) if n > 0));
        }
        drop(report);
        assert_eq!(dropped.load(Ordering::SeqCst), tried.load(Ordering::SeqCst));
    }
}

/// Whether `report` has an incident on `core` whose text contains `what`.
fn has_incident<M>(
    report: &chronoflow::runtime::RuntimeReport<M>,
    core: usize,
    what: &str,
) -> bool {
    report
        .incidents
        .iter()
        .any(|i| i.core == core && i.what.contains(what))
}
