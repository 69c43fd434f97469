#![cfg_attr(feature = "stackless", feature(coroutines))]
//! Adversarial tests of joins across cores (`spawn_joinable_at`,
//! `join_across`) and of the runtime's `Joiner` through its result sink.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chronoflow::runtime::{Joinable, Placement, Runtime};
use chronoflow::{Ctx, ExitError, JoinError, Pid, SimpleScheduler, Template};

#[cfg(feature = "stackless")]
#[path = "support/busy.rs"]
mod busy;
#[cfg(feature = "stackless")]
use busy::Stayers;

#[derive(Debug, Clone, PartialEq)]
enum Msg {
    Go,
    /// (Sent by the stackless tests only.)
    #[cfg_attr(not(feature = "stackless"), allow(dead_code))]
    Num(u64),
}

fn rt() -> Runtime<Msg> {
    Runtime::with_cores(2).unwrap()
}

fn wait_for(what: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !what() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    true
}

/// Counts its drops, and panics in its drop if asked.
#[derive(Debug)]
struct Loud {
    drops: Arc<AtomicUsize>,
    panics: bool,
}

impl Drop for Loud {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
        if self.panics && !std::thread::panicking() {
            panic!("a result's drop panics");
        }
    }
}

#[test]
fn a_panicking_drop_of_an_unjoined_result_is_an_incident_on_either_core() {
    let rt = rt();
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    let late = Template::new("late", move |ctx: &mut Ctx<Msg>, ()| {
        while ctx.receive() != Msg::Go {}
        Loud {
            drops: d.clone(),
            panics: true,
        }
    });
    let joiner = Template::new("joiner", move |ctx: &mut Ctx<Msg>, ()| {
        // One on the other core, one on this one: both end after their
        // joiner.
        let a = ctx
            .spawn_joinable_at(Placement::Core(1), &late, ())
            .unwrap();
        let b = ctx.spawn_joinable_at(Placement::Local, &late, ()).unwrap();
        (a.pid(), b.pid())
    });
    let (a, b) = rt
        .spawn_joinable(Placement::Core(0), &joiner, ())
        .unwrap()
        .join()
        .unwrap();
    rt.send_blocking(a, Msg::Go).unwrap();
    rt.send_blocking(b, Msg::Go).unwrap();
    assert!(wait_for(|| drops.load(Ordering::SeqCst) == 2));
    // The cores live on.
    let ok = Template::new("ok", |_: &mut Ctx<Msg>, ()| 1u64);
    for core in 0..2 {
        assert_eq!(
            rt.spawn_joinable(Placement::Core(core), &ok, ())
                .unwrap()
                .join(),
            Ok(1)
        );
    }
    let report = rt.shutdown(Duration::from_secs(5));
    assert_eq!(drops.load(Ordering::SeqCst), 2);
    // (Panics caught in one pass make one incident.)
    assert!(!report.incidents.is_empty(), "{report:?}");
    assert!(report.dead_cores().is_empty(), "{report:?}");
}

#[test]
fn results_held_for_an_ended_joiner_are_dropped_once_even_if_their_drop_panics() {
    let rt = rt();
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    let early = Template::new("early", move |_: &mut Ctx<Msg>, ()| Loud {
        drops: d.clone(),
        panics: true,
    });
    let joiner = Template::new("joiner", move |ctx: &mut Ctx<Msg>, ()| {
        let mut pending: Vec<Joinable<Loud>> = Vec::new();
        for i in 0..4 {
            let at = if i % 2 == 0 {
                Placement::Core(1)
            } else {
                Placement::Local
            };
            pending.push(ctx.spawn_joinable_at(at, &early, ()).unwrap());
        }
        ctx.sleep(Duration::from_millis(100));
        // Ends with its results unjoined: dropped with its record.
        pending.len()
    });
    let n = rt
        .spawn_joinable(Placement::Core(0), &joiner, ())
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(n, 4);
    assert!(wait_for(|| drops.load(Ordering::SeqCst) == 4));
    let report = rt.shutdown(Duration::from_secs(5));
    assert_eq!(drops.load(Ordering::SeqCst), 4);
    assert!(report.dead_cores().is_empty(), "{report:?}");
    assert!(!report.incidents.is_empty(), "{report:?}");
}

#[test]
fn a_joinable_of_another_joiner_on_one_core_is_refused_and_the_result_stays() {
    let mut sched = SimpleScheduler::<Msg>::new();
    let slot: Arc<Mutex<Option<Joinable<u64>>>> = Arc::default();
    let s = slot.clone();
    let leaf = Template::new("leaf", |_: &mut Ctx<Msg>, ()| 5u64);
    let thief = Template::new("thief", move |ctx: &mut Ctx<Msg>, ()| {
        let j = s.lock().unwrap().take().unwrap();
        let pid = j.pid();
        ctx.join_across(j) == Err(JoinError::NotAChild(pid))
    });
    let owner = Template::new("owner", move |ctx: &mut Ctx<Msg>, ()| {
        let j = ctx.spawn_joinable_at(Placement::Local, &leaf, ()).unwrap();
        let pid = j.pid();
        *slot.lock().unwrap() = Some(j);
        let t = ctx
            .spawn_joinable_at(Placement::RoundRobin, &thief, ())
            .unwrap();
        let refused = ctx.join_across(t);
        // (The handle is gone with the thief: the result stays unjoined,
        // dropped with this process.)
        (refused, pid)
    });
    let h = sched.spawn(&owner, ()).unwrap();
    sched.run_until_idle();
    let got = sched.result(&h).unwrap().unwrap();
    assert_eq!(got.0, Ok(true));
    assert_eq!(sched.live(), 0);
}

#[test]
fn a_killed_joiner_drops_what_it_waited_for_and_the_core_goes_on() {
    let rt = rt();
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    let late = Template::new("late", move |ctx: &mut Ctx<Msg>, ()| {
        while ctx.receive() != Msg::Go {}
        Loud {
            drops: d.clone(),
            panics: false,
        }
    });
    let pids: Arc<Mutex<Vec<Pid>>> = Arc::default();
    let p = pids.clone();
    let joiner = Template::new("joiner", move |ctx: &mut Ctx<Msg>, ()| {
        let a = ctx
            .spawn_joinable_at(Placement::Core(1), &late, ())
            .unwrap();
        let b = ctx.spawn_joinable_at(Placement::Local, &late, ()).unwrap();
        p.lock().unwrap().extend([ctx.pid(), a.pid(), b.pid()]);
        let _ = ctx.join_across(a);
        0u64
    });
    let j = rt.spawn_joinable(Placement::Core(0), &joiner, ()).unwrap();
    assert!(wait_for(|| pids.lock().unwrap().len() == 3));
    let (me, a, b) = {
        let p = pids.lock().unwrap();
        (p[0], p[1], p[2])
    };
    let killer = Template::new("killer", move |ctx: &mut Ctx<Msg>, ()| {
        ctx.exit_signal(me, chronoflow::Reason::Kill);
        0u64
    });
    rt.spawn_joinable(Placement::Core(1), &killer, ())
        .unwrap()
        .join()
        .unwrap();
    assert!(matches!(
        j.join(),
        Err(chronoflow::runtime::JoinFailed::Exited(ExitError::Killed(
            _
        )))
    ));
    rt.send_blocking(a, Msg::Go).unwrap();
    rt.send_blocking(b, Msg::Go).unwrap();
    assert!(wait_for(|| drops.load(Ordering::SeqCst) == 2));
    let report = rt.shutdown(Duration::from_secs(5));
    assert!(report.incidents.is_empty(), "{report:?}");
}

/// 30 microseconds of computation: a turn long enough for the balance checks
/// to move processes.
#[cfg(feature = "stackless")]
fn spin(mut x: u64) -> u64 {
    let start = Instant::now();
    while start.elapsed() < Duration::from_micros(30) {
        for _ in 0..100 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
    }
    std::hint::black_box(x)
}

/// Joiners and joinees that move between cores while joins are pending:
/// every result comes once, after the messages its process sent its joiner
/// (per-sender order), wherever either of them went.
#[cfg(feature = "stackless")]
#[test]
fn joins_hold_while_joiners_and_joinees_move() {
    use std::sync::atomic::AtomicBool;

    use chronoflow::stackless::{join_across, send_to, yield_now};
    use chronoflow::{StacklessCtx, StacklessTemplate};

    const SENT: u64 = 10;
    let rt: Runtime<Msg> = Runtime::with_cores(4).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    // Spins until `done`, sends its joiner SENT numbers, ends with their sum.
    let joinee = StacklessTemplate::migratable(
        "joinee",
        |cx: StacklessCtx<Msg>, (to, done, base): (Pid, Arc<AtomicBool>, u64)| {
            #[coroutine]
            move || {
                let mut x = 1;
                while !done.load(Ordering::Relaxed) {
                    x = spin(x);
                    yield_now!();
                }
                let mut sum = 0;
                for i in 0..SENT {
                    send_to!(cx, to, Msg::Num(base + i));
                    sum += base + i;
                }
                sum
            }
        },
    );
    let joiner = StacklessTemplate::migratable(
        "joiner",
        move |cx: StacklessCtx<Msg>, (done, n): (Arc<AtomicBool>, u64)| {
            let joinee = joinee.clone();
            #[coroutine]
            move || {
                let me = cx.pid();
                let base = n * 1000;
                let a = cx
                    .spawn_joinable_at(Placement::Local, &joinee, (me, done.clone(), base))
                    .unwrap();
                let b = cx
                    .spawn_joinable_at(Placement::Core(1), &joinee, (me, done.clone(), base + 100))
                    .unwrap();
                let mut x = 1;
                while !done.load(Ordering::Relaxed) {
                    x = spin(x);
                    yield_now!();
                }
                let ra = join_across!(cx, a);
                let rb = join_across!(cx, b);
                let mut got = Vec::new();
                while let Some(Msg::Num(i)) = cx.try_receive() {
                    got.push(i);
                }
                (ra, rb, got)
            }
        },
    );
    let joiners: Vec<_> = (0..24)
        .map(|n| {
            rt.spawn_joinable(Placement::Core(0), &joiner, (done.clone(), n))
                .unwrap()
        })
        .collect();
    let start = Instant::now();
    while rt.moved_in().iter().sum::<u64>() < 8 && start.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(20));
    done.store(true, Ordering::Relaxed);
    for (n, j) in joiners.into_iter().enumerate() {
        let n = n as u64;
        let (ra, rb, got) = j.join().unwrap();
        let base = n * 1000;
        let sum = |b: u64| (b..b + SENT).sum::<u64>();
        assert_eq!(ra, Ok(sum(base)));
        assert_eq!(rb, Ok(sum(base + 100)));
        let from_a: Vec<u64> = got.iter().copied().filter(|&i| i < base + 100).collect();
        let from_b: Vec<u64> = got.iter().copied().filter(|&i| i >= base + 100).collect();
        assert_eq!(
            from_a,
            (base..base + SENT).collect::<Vec<_>>(),
            "joiner {n}"
        );
        assert_eq!(
            from_b,
            (base + 100..base + 100 + SENT).collect::<Vec<_>>(),
            "joiner {n}"
        );
    }
    let report = rt.shutdown(Duration::from_secs(5));
    assert!(report.incidents.is_empty(), "{report:?}");
}

#[test]
fn on_one_core_shutdown_and_drop_end_pending_joins_and_drop_held_results() {
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    let waits = Template::new("waits", move |ctx: &mut Ctx<Msg>, panics: bool| {
        if panics {
            while ctx.receive() != Msg::Go {}
        }
        Loud {
            drops: d.clone(),
            panics,
        }
    });
    let joiner = Template::new("joiner", move |ctx: &mut Ctx<Msg>, ()| {
        // Two held (ended, unjoined; one's drop panics), one waited for
        // for ever.
        let held = ctx
            .spawn_joinable_at(Placement::Local, &waits, false)
            .unwrap();
        let go = ctx
            .spawn_joinable_at(Placement::RoundRobin, &waits, true)
            .unwrap();
        ctx.send_to(go.pid(), Msg::Go);
        ctx.yield_now();
        let forever = ctx
            .spawn_joinable_at(Placement::Local, &waits, true)
            .unwrap();
        let _keep = (held, go);
        let _ = ctx.join_across(forever);
        0u64
    });
    // Shut down.
    let mut sched = SimpleScheduler::<Msg>::new();
    let h = sched.spawn(&joiner, ()).unwrap();
    sched.run_until_idle();
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        sched.shutdown(Duration::from_millis(200), true)
    }));
    assert!(sched.result(&h).is_some());
    assert_eq!(drops.load(Ordering::SeqCst), 2);
    assert_eq!(sched.live(), 0);
    drop(sched);
    // Dropped.
    let mut sched = SimpleScheduler::<Msg>::new();
    let _h = sched.spawn(&joiner, ()).unwrap();
    sched.run_until_idle();
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(sched)));
    assert!(dropped.is_ok());
    assert_eq!(drops.load(Ordering::SeqCst), 4);
}

#[test]
fn a_runtime_dropped_with_results_on_their_way_and_joins_pending_does_not_panic() {
    let drops = Arc::new(AtomicUsize::new(0));
    for _ in 0..20 {
        let rt = rt();
        let d = drops.clone();
        let leaf = Template::new("leaf", move |_: &mut Ctx<Msg>, ()| Loud {
            drops: d.clone(),
            panics: true,
        });
        let joiner = Template::new("joiner", move |ctx: &mut Ctx<Msg>, ()| {
            let js: Vec<_> = (0..8)
                .map(|_| {
                    ctx.spawn_joinable_at(Placement::RoundRobin, &leaf, ())
                        .unwrap()
                })
                .collect();
            for j in js {
                let _ = ctx.join_across(j);
            }
            while ctx.receive() != Msg::Go {}
            0u64
        });
        for core in 0..2 {
            rt.spawn_at(Placement::Core(core), &joiner, ()).unwrap();
        }
        drop(rt);
    }
}

/// A joinee that moves to the core its joiner moved to, and ends there: its
/// result does not overtake what it sent the joiner before its move (which
/// goes through the joiner's home and down its line).
#[cfg(feature = "stackless")]
#[test]
fn a_result_of_a_moved_joinee_given_to_a_moved_joiner_comes_after_its_messages() {
    use chronoflow::stackless::{join_across, send_to, yield_now};
    use chronoflow::{StacklessCtx, StacklessTemplate};

    fn core() -> String {
        std::thread::current().name().unwrap_or("?").to_string()
    }
    let rt: Runtime<Msg> = Runtime::with_cores(3).unwrap();
    rt.set_migration(false);
    // Sends its joiner a number each turn until it has moved (or for long
    // enough), then ends with how many it sent.
    let joinee = StacklessTemplate::migratable("joinee", |cx: StacklessCtx<Msg>, to: Pid| {
        #[coroutine]
        move || {
            let first = core();
            let mut x = 1;
            let mut sent = 0;
            while core() == first && sent < 3000 {
                send_to!(cx, to, Msg::Num(sent));
                sent += 1;
                x = spin(x);
                yield_now!();
            }
            std::hint::black_box(x);
            (sent, core())
        }
    });
    let joiner = StacklessTemplate::migratable("joiner", move |cx: StacklessCtx<Msg>, ()| {
        let joinee = joinee.clone();
        #[coroutine]
        move || {
            let first = core();
            let me = cx.pid();
            let j = cx
                .spawn_joinable_at(Placement::Core(1), &joinee, me)
                .unwrap();
            let mut x = 1;
            let mut turns = 0;
            while core() == first && turns < 3000 {
                // (Its inbox read meanwhile: never full.)
                x = spin(x);
                turns += 1;
                yield_now!();
            }
            std::hint::black_box(x);
            let (sent, joinee_at) = join_across!(cx, j).unwrap();
            let mut got = 0;
            let mut in_order = true;
            while let Some(Msg::Num(i)) = cx.try_receive() {
                in_order &= i == got;
                got += 1;
            }
            (sent, got, in_order, core() == joinee_at)
        }
    })
    .capacity(100_000);
    let stayers = Stayers::start(&rt);
    let joiners: Vec<_> = (0..12)
        .map(|_| rt.spawn_joinable(Placement::Core(0), &joiner, ()).unwrap())
        .collect();
    rt.set_migration(true);
    let mut bad = Vec::new();
    for j in joiners {
        let (sent, got, in_order, together) = j.join().unwrap();
        if sent != got || !in_order {
            bad.push((sent, got, in_order, together));
        }
    }
    stayers.stop();
    assert!(bad.is_empty(), "results before their messages: {bad:?}");
}
