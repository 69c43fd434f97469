#![cfg_attr(feature = "stackless", feature(coroutines))]
//! The multi-core runtime: ordering, back-pressure, placement, spawns and
//! sends across cores, failures and shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chronoflow::runtime::{JoinFailed, Placement, Runtime, home};
use chronoflow::{Ctx, ExitError, Pid, SpawnError, Template, UndeliveredReason};

#[derive(Debug, Clone, PartialEq)]
enum Msg {
    /// A numbered message from a sender.
    Seq(Pid, u64),
    Num(u64),
    Stop,
}

const SECOND: Duration = Duration::from_secs(1);

/// Receives `n` `Seq` messages; checks each sender's come in order; returns
/// how many senders it heard.
fn collector() -> Template<Msg, Msg, u64, usize> {
    Template::new("collector", |ctx: &mut Ctx<Msg>, n: u64| {
        let mut next: std::collections::HashMap<Pid, u64> = Default::default();
        for _ in 0..n {
            match ctx.receive() {
                Msg::Seq(from, i) => {
                    let want = next.entry(from).or_insert(0);
                    assert_eq!(i, *want, "{from}'s messages in order");
                    *want += 1;
                }
                other => panic!("collector got {other:?}"),
            }
        }
        next.len()
    })
}

fn sender() -> Template<Msg, Msg, (Pid, u64), ()> {
    Template::new("sender", |ctx: &mut Ctx<Msg>, (to, n): (Pid, u64)| {
        let me = ctx.pid();
        for i in 0..n {
            ctx.send_to(to, Msg::Seq(me, i));
        }
    })
}

#[test]
fn pids_name_their_core_and_placements_pick_it() {
    let rt = Runtime::<Msg>::with_cores(3).unwrap();
    assert_eq!(rt.cores(), 3);
    let idle = Template::new("idle", |ctx: &mut Ctx<Msg>, ()| {
        ctx.receive();
    });
    for core in 0..3 {
        let pid = rt.spawn_at(Placement::Core(core), &idle, ()).unwrap();
        assert_eq!(home(pid), core);
        let near = rt.spawn_at(Placement::Near(pid), &idle, ()).unwrap();
        assert_eq!(home(near), core);
        assert_ne!(near, pid);
    }
    let spread: std::collections::BTreeSet<usize> = (0..3)
        .map(|_| home(rt.spawn_at(Placement::RoundRobin, &idle, ()).unwrap()))
        .collect();
    assert_eq!(spread.len(), 3, "round-robin visits every core");
    assert!(matches!(
        rt.spawn_at(Placement::Core(3), &idle, ()),
        Err(SpawnError::Unplaceable(why)) if why == "core 3 of a runtime of 3"
    ));
    let report = rt.shutdown(SECOND);
    assert!(report.killed().is_empty(), "{report:?}");
    let stopped: usize = report.cores.iter().flatten().map(|r| r.stopped).sum();
    assert_eq!(stopped, 9, "every idle process stopped at the shutdown");
}

#[test]
fn messages_between_cores_keep_each_senders_order() {
    let rt = Runtime::<Msg>::with_cores(3).unwrap();
    let (senders, n) = (12u64, 5_000u64);
    let sink = rt
        .spawn_joinable(Placement::Core(0), &collector(), senders * n)
        .unwrap();
    for i in 0..senders {
        rt.spawn_at(Placement::Core(i as usize % 3), &sender(), (sink.pid(), n))
            .unwrap();
    }
    assert_eq!(sink.join(), Ok(senders as usize));
    let report = rt.shutdown(SECOND);
    assert!(report.undelivered.is_empty());
}

#[test]
fn processes_spawn_on_other_cores_and_talk_back() {
    // A process spawns a child on every core; each reports its core to it.
    let rt = Runtime::<Msg>::with_cores(2).unwrap();
    let child = Template::new("child", |ctx: &mut Ctx<Msg>, parent: Pid| {
        ctx.send_to(parent, Msg::Num(home(ctx.pid()) as u64));
    });
    let parent = Template::new("parent", move |ctx: &mut Ctx<Msg>, ()| {
        let me = ctx.pid();
        let mut cores = Vec::new();
        for core in [0, 1, 1, 0] {
            let pid = ctx.spawn_at(Placement::Core(core), &child, me).unwrap();
            assert_eq!(home(pid), core);
        }
        for _ in 0..4 {
            match ctx.receive() {
                Msg::Num(core) => cores.push(core),
                other => panic!("{other:?}"),
            }
        }
        cores.sort();
        cores
    });
    let j = rt.spawn_joinable(Placement::Core(0), &parent, ()).unwrap();
    assert_eq!(j.join(), Ok(vec![0, 0, 1, 1]));
}

#[test]
fn a_message_sent_before_its_process_is_made_waits_for_it() {
    // The pid comes back to this thread (a join) before the spawn may have
    // reached its core; what is sent to it at once must not be lost.
    let rt = Runtime::<Msg>::with_cores(2).unwrap();
    for _ in 0..50 {
        let echo = Template::new("echo", |ctx: &mut Ctx<Msg>, to: Pid| {
            let m = ctx.receive();
            ctx.send_to(to, m);
        });
        let first = Template::new("first", |ctx: &mut Ctx<Msg>, ()| ctx.receive());
        let sink = rt.spawn_joinable(Placement::Core(0), &first, ()).unwrap();
        let spawner = Template::new("spawner", move |ctx: &mut Ctx<Msg>, to: Pid| {
            ctx.spawn_at(Placement::Core(1), &echo, to).unwrap()
        });
        let j = rt
            .spawn_joinable(Placement::Core(0), &spawner, sink.pid())
            .unwrap();
        let echo_pid = j.join().unwrap();
        rt.send_blocking(echo_pid, Msg::Num(7)).unwrap();
        assert_eq!(sink.join(), Ok(Msg::Num(7)));
    }
    // From outside too: spawn, then send at once.
    let first = Template::new("first", |ctx: &mut Ctx<Msg>, ()| ctx.receive());
    for core in 0..2 {
        let j = rt
            .spawn_joinable(Placement::Core(core), &first, ())
            .unwrap();
        rt.send_blocking(j.pid(), Msg::Num(core as u64)).unwrap();
        assert_eq!(j.join(), Ok(Msg::Num(core as u64)));
    }
    assert!(rt.take_undelivered().is_empty());
}

#[test]
fn a_message_for_an_ended_or_unknown_pid_is_kept() {
    let rt = Runtime::<Msg>::with_cores(2).unwrap();
    let quick = Template::new("quick", |_: &mut Ctx<Msg>, ()| {});
    let gone = rt.spawn_joinable(Placement::Core(1), &quick, ()).unwrap();
    let gone_pid = gone.pid();
    gone.join().unwrap();
    let to_gone = Template::new("to_gone", move |ctx: &mut Ctx<Msg>, ()| {
        ctx.send_to(gone_pid, Msg::Num(1));
        // An odd pid of core 1 never reserved: no process will have it.
        ctx.send_to(Pid(gone_pid.0 + 1_000_001), Msg::Num(2));
    });
    rt.spawn_joinable(Placement::Core(0), &to_gone, ())
        .unwrap()
        .join()
        .unwrap();
    let report = rt.shutdown(SECOND);
    let mut kept: Vec<_> = report
        .undelivered
        .iter()
        .map(|u| (u.msg.clone(), u.reason))
        .collect();
    kept.sort_by_key(|(m, _)| format!("{m:?}"));
    assert_eq!(
        kept,
        [
            (Msg::Num(1), UndeliveredReason::UnknownPid),
            (Msg::Num(2), UndeliveredReason::UnknownPid)
        ]
    );
}

/// Waits (sleeping, reading nothing) until the count of messages sent stops
/// rising for 50 ms (30 s at most): how many were sent by then.
fn when_sends_stop(ctx: &mut Ctx<Msg>, counted: &AtomicUsize) -> usize {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let before = counted.load(Ordering::SeqCst);
        ctx.sleep(Duration::from_millis(50));
        let after = counted.load(Ordering::SeqCst);
        if (after == before && after > 0) || std::time::Instant::now() > deadline {
            return after;
        }
    }
}

/// A process with an inbox of `capacity` that reads nothing until `counted`
/// (the messages sent to it) stops rising, then takes `n` numbered messages,
/// checking their order: how many had been sent when it began to read.
fn slow_reader(counted: Arc<AtomicUsize>, capacity: usize) -> Template<Msg, Msg, u64, usize> {
    Template::new("slow", move |ctx: &mut Ctx<Msg>, n: u64| {
        let seen = when_sends_stop(ctx, &counted);
        for i in 0..n {
            match ctx.receive() {
                Msg::Seq(_, j) => assert_eq!(j, i, "in order"),
                other => panic!("{other:?}"),
            }
        }
        seen
    })
    .capacity(capacity)
}

#[test]
fn a_sender_to_a_full_inbox_on_another_core_is_suspended_until_room() {
    let rt = Runtime::<Msg>::with_cores(2).unwrap();
    let n = 300_000u64;
    let sent = Arc::new(AtomicUsize::new(0));
    // It reads nothing until the sender has stopped sending for a while: its
    // inbox (4) is full, and the sender must be suspended (without
    // back-pressure it would send all, and this would see them all).
    let slow = slow_reader(sent.clone(), 4);
    let counting = sent.clone();
    let fast = Template::new("fast", move |ctx: &mut Ctx<Msg>, (to, n): (Pid, u64)| {
        let me = ctx.pid();
        for i in 0..n {
            ctx.send_to(to, Msg::Seq(me, i));
            counting.fetch_add(1, Ordering::SeqCst);
        }
    });
    let slow = rt.spawn_joinable(Placement::Core(0), &slow, n).unwrap();
    let fast = rt
        .spawn_joinable(Placement::Core(1), &fast, (slow.pid(), n))
        .unwrap();
    let seen = slow.join().unwrap();
    fast.join().unwrap();
    // Suspended while the inbox was full: it ran ahead of it only by what it
    // sent before the notice came back (some passes of its own).
    assert!(
        seen < n as usize / 2,
        "sent {seen} of {n} while the inbox was full"
    );
    assert_eq!(sent.load(Ordering::SeqCst), n as usize);
}

#[test]
fn a_panic_on_each_core_fails_only_its_process() {
    let rt = Runtime::<Msg>::with_cores(2).unwrap();
    let bad = Template::new("bad", |_: &mut Ctx<Msg>, core: usize| -> u64 {
        panic!("boom on core {core}")
    });
    for core in 0..2 {
        let j = rt
            .spawn_joinable(Placement::Core(core), &bad, core)
            .unwrap();
        match j.join() {
            Err(JoinFailed::Exited(ExitError::Failed(why))) => {
                assert!(why.contains(&format!("boom on core {core}")), "{why}")
            }
            other => panic!("{other:?}"),
        }
    }
    // Every core still works.
    let sink = rt
        .spawn_joinable(Placement::Core(0), &collector(), 2 * 100)
        .unwrap();
    for core in 0..2 {
        rt.spawn_at(Placement::Core(core), &sender(), (sink.pid(), 100))
            .unwrap();
    }
    assert_eq!(sink.join(), Ok(2));
    let report = rt.shutdown(SECOND);
    assert!(report.dead_cores().is_empty());
    assert!(report.incidents.is_empty(), "{:?}", report.incidents);
}

/// Counts its drops: a process's stack unwound at its end drops it.
struct Guard(Arc<AtomicUsize>);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn shutdown_unwinds_suspended_processes_on_every_core() {
    let rt = Runtime::<Msg>::with_cores(2).unwrap();
    let dropped = Arc::new(AtomicUsize::new(0));
    let d = dropped.clone();
    // Waiting in a receive.
    let waiter = Template::new("waiter", move |ctx: &mut Ctx<Msg>, ()| {
        let _guard = Guard(d.clone());
        loop {
            ctx.receive();
        }
    });
    let d = dropped.clone();
    // Waiting for room in a full inbox on the other core.
    let pusher = Template::new("pusher", move |ctx: &mut Ctx<Msg>, to: Pid| {
        let _guard = Guard(d.clone());
        let me = ctx.pid();
        for i in 0.. {
            ctx.send_to(to, Msg::Seq(me, i));
        }
    });
    let d = dropped.clone();
    // Traps exits, and takes its time to stop: killed at the deadline.
    let stubborn = Template::new("stubborn", move |ctx: &mut Ctx<Msg>, ()| {
        let _guard = Guard(d.clone());
        ctx.trap_exit(true);
        loop {
            ctx.receive_mail();
        }
    });
    let mut full = Vec::new();
    for core in 0..2 {
        rt.spawn_at(Placement::Core(core), &waiter, ()).unwrap();
        let sleeper = Template::new("sleeper", |ctx: &mut Ctx<Msg>, ()| {
            ctx.sleep(Duration::from_secs(3600));
        })
        .capacity(1);
        full.push(rt.spawn_at(Placement::Core(core), &sleeper, ()).unwrap());
        rt.spawn_at(Placement::Core(core), &stubborn, ()).unwrap();
    }
    for core in 0..2 {
        // Each pusher fills the sleeper on the other core.
        rt.spawn_at(Placement::Core(core), &pusher, full[1 - core])
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(100));
    let report = rt.shutdown(Duration::from_millis(200));
    let mut killed: Vec<String> = report.killed().into_iter().map(|(_, n)| n).collect();
    killed.sort();
    assert_eq!(killed, ["stubborn", "stubborn"], "{report:?}");
    let stopped: usize = report.cores.iter().flatten().map(|r| r.stopped).sum();
    assert_eq!(
        stopped, 6,
        "waiters, sleepers and pushers stopped: {report:?}"
    );
    assert_eq!(dropped.load(Ordering::SeqCst), 6, "every stack unwound");
    assert!(report.dead_cores().is_empty());
}

#[test]
fn outside_sends_and_joins_across_cores() {
    let rt = Runtime::<Msg>::with_cores(2).unwrap();
    let handle = rt.handle();
    let adder = Template::new("adder", |ctx: &mut Ctx<Msg>, ()| {
        let mut sum = 0;
        loop {
            match ctx.receive() {
                Msg::Num(n) => sum += n,
                Msg::Stop => return sum,
                other => panic!("{other:?}"),
            }
        }
    });
    let j = rt.spawn_joinable(Placement::Core(1), &adder, ()).unwrap();
    let pid = j.pid();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let h = handle.clone();
            std::thread::spawn(move || {
                for i in 0..1000 {
                    h.send_blocking(pid, Msg::Num(t * 1000 + i)).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    rt.send_blocking(pid, Msg::Stop).unwrap();
    assert_eq!(j.join(), Ok((0..4000).sum()));
    // A pid of no core.
    assert!(matches!(
        rt.try_send(Pid(u64::MAX), Msg::Num(1)),
        Err(chronoflow::SendError::UnknownPid(_, Msg::Num(1)))
    ));
    drop(rt);
    assert!(matches!(
        handle.try_send(pid, Msg::Num(1)),
        Err(chronoflow::SendError::Closed(_))
    ));
    assert!(matches!(
        handle.spawn(&Template::new("late", |_: &mut Ctx<Msg>, ()| {}), ()),
        Err(SpawnError::ShuttingDown)
    ));
}

#[test]
fn a_joiner_of_a_process_the_runtime_dropped_is_told() {
    let rt = Runtime::<Msg>::with_cores(1).unwrap();
    let forever = Template::new("forever", |ctx: &mut Ctx<Msg>, ()| -> u64 {
        ctx.trap_exit(true);
        loop {
            ctx.receive_mail();
        }
    });
    let j = rt.spawn_joinable(Placement::Core(0), &forever, ()).unwrap();
    let report = rt.shutdown(Duration::from_millis(50));
    assert_eq!(report.killed().len(), 1);
    assert!(matches!(
        j.join(),
        Err(JoinFailed::Exited(ExitError::Killed(_)))
    ));
}

#[cfg(feature = "stackless")]
mod stackless {
    use super::*;
    use chronoflow::stackless::{receive, send_to, sleep};
    use chronoflow::{StacklessCtx, StacklessTemplate};

    #[test]
    fn stackless_processes_spawn_and_send_across_cores() {
        let rt = Runtime::<Msg>::with_cores(2).unwrap();
        let leaf = StacklessTemplate::new("leaf", |cx: StacklessCtx<Msg>, parent: Pid| {
            #[coroutine]
            move || {
                let core = home(cx.pid()) as u64;
                send_to!(cx, parent, Msg::Num(core));
            }
        });
        let root = StacklessTemplate::new("root", move |cx: StacklessCtx<Msg>, n: u64| {
            let leaf = leaf.clone();
            #[coroutine]
            move || {
                let me = cx.pid();
                for _ in 0..n {
                    cx.spawn_at(Placement::RoundRobin, &leaf, me).unwrap();
                }
                let mut on = [0u64; 2];
                for _ in 0..n {
                    match receive!(cx) {
                        Msg::Num(core) => on[core as usize] += 1,
                        other => panic!("{other:?}"),
                    }
                }
                on
            }
        });
        let j = rt.spawn_joinable(Placement::Core(0), &root, 1000).unwrap();
        assert_eq!(j.join(), Ok([500, 500]));
    }

    #[test]
    fn a_million_processes_spread_over_the_cores() {
        // (Under AddressSanitizer, whose shadow memory makes each a few
        // times larger, a tenth.)
        let per_core: u64 = if cfg!(feature = "asan") {
            50_000
        } else {
            500_000
        };
        let rt = Runtime::<Msg>::with_cores(2).unwrap();
        let idle = StacklessTemplate::new("idle", |cx: StacklessCtx<Msg>, ()| {
            #[coroutine]
            move || while receive!(cx) != Msg::Stop {}
        });
        let spawner = StacklessTemplate::new("spawner", move |cx: StacklessCtx<Msg>, n: u64| {
            let idle = idle.clone();
            #[coroutine]
            move || {
                for _ in 0..n {
                    cx.spawn_at(Placement::Local, &idle, ()).unwrap();
                }
                n
            }
        });
        let joiners: Vec<_> = (0..2)
            .map(|core| {
                rt.spawn_joinable(Placement::Core(core), &spawner, per_core)
                    .unwrap()
            })
            .collect();
        for j in joiners {
            assert_eq!(j.join(), Ok(per_core));
        }
        // Each core counts after its passes.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while rt.loads().iter().sum::<usize>() < 2 * per_core as usize {
            assert!(std::time::Instant::now() < deadline, "{:?}", rt.loads());
            std::thread::sleep(Duration::from_millis(10));
        }
        let loads = rt.loads();
        assert!(loads.iter().all(|&l| l == per_core as usize), "{loads:?}");
        let report = rt.shutdown(Duration::from_secs(60));
        let stopped: usize = report.cores.iter().flatten().map(|r| r.stopped).sum();
        assert_eq!(stopped, 2 * per_core as usize);
        assert!(report.killed().is_empty());
    }

    #[test]
    fn a_stackless_sender_is_suspended_by_a_full_inbox_on_another_core() {
        let rt = Runtime::<Msg>::with_cores(2).unwrap();
        let n = 300_000u64;
        let sent = Arc::new(AtomicUsize::new(0));
        // As for a stackful sender: reads nothing until sends stop.
        let slow = slow_reader(sent.clone(), 2);
        let counting = sent.clone();
        let fast =
            StacklessTemplate::new("fast", move |cx: StacklessCtx<Msg>, (to, n): (Pid, u64)| {
                let counting = counting.clone();
                #[coroutine]
                move || {
                    let me = cx.pid();
                    for i in 0..n {
                        send_to!(cx, to, Msg::Seq(me, i));
                        counting.fetch_add(1, Ordering::SeqCst);
                        if i % 10_000 == 9_999 {
                            // (A pause now and then: on a loaded machine the
                            // reader's core may not run for the few
                            // milliseconds all the sends take, and the notice
                            // to wait could come only after the last.)
                            sleep!(cx, Duration::from_millis(1));
                        }
                    }
                }
            });
        let slow = rt.spawn_joinable(Placement::Core(0), &slow, n).unwrap();
        rt.spawn_at(Placement::Core(1), &fast, (slow.pid(), n))
            .unwrap();
        let seen = slow.join().unwrap();
        assert!(
            seen < n as usize / 2,
            "sent {seen} of {n} while the inbox was full"
        );
        assert_eq!(sent.load(Ordering::SeqCst), n as usize);
    }
}

#[test]
fn cores_run_on_the_callers_threads() {
    let mut threads = Vec::new();
    let rt = Runtime::<Msg>::with_cores_run_by(2, |me, run| {
        threads.push(
            std::thread::Builder::new()
                .name(format!("mine-{me}"))
                .spawn(run)?,
        );
        Ok(())
    })
    .unwrap();
    let name = Template::new("name", |_: &mut Ctx<Msg>, ()| {
        std::thread::current().name().map(str::to_string)
    });
    for core in 0..2 {
        let j = rt.spawn_joinable(Placement::Core(core), &name, ()).unwrap();
        assert_eq!(j.join(), Ok(Some(format!("mine-{core}"))));
    }
    let report = rt.shutdown(SECOND);
    assert!(report.dead_cores().is_empty(), "{report:?}");
    for t in threads {
        t.join().unwrap();
    }
    // A core that cannot be started: the others stop, and the error comes
    // back.
    let mut started = Vec::new();
    let err = Runtime::<Msg>::with_cores_run_by(3, |me, run| {
        if me == 2 {
            return Err(std::io::Error::other("no thread for core 2"));
        }
        started.push(std::thread::spawn(run));
        Ok(())
    })
    .unwrap_err();
    assert_eq!(err.to_string(), "no thread for core 2");
    for t in started {
        t.join().unwrap();
    }
}
