#![cfg_attr(feature = "stackless", feature(coroutines))]
//! Joins across cores: a process spawns another on any core
//! (`spawn_joinable_at`) and later takes its result (`join_across`), as a
//! parent joins a child on one core.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chronoflow::runtime::{Joinable, Placement, Runtime, home};
use chronoflow::{
    Ctx, DurableScheduler, ExitError, JoinError, Mail, SimpleScheduler, SpawnError, Template,
};

#[derive(Debug, Clone, PartialEq)]
enum Msg {
    Go,
    Num(u64),
}

fn rt() -> Runtime<Msg> {
    Runtime::with_cores(2).unwrap()
}

/// Gives its argument squared, after waiting for `Go` if asked.
fn square() -> Template<Msg, Msg, (u64, bool), u64> {
    Template::new("square", |ctx: &mut Ctx<Msg>, (n, wait): (u64, bool)| {
        if wait {
            while ctx.receive() != Msg::Go {}
        }
        n * n
    })
}

/// Counts its drops: a result that nobody takes is dropped once.
#[derive(Debug)]
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_process_joins_processes_of_another_core() {
    let rt = rt();
    let crasher = Template::new("crasher", |_: &mut Ctx<Msg>, ()| -> u64 {
        panic!("crash on core 1");
    });
    let joiner = Template::new("joiner", move |ctx: &mut Ctx<Msg>, ()| {
        let a = ctx
            .spawn_joinable_at(Placement::Core(1), &square(), (3, false))
            .unwrap();
        let b = ctx
            .spawn_joinable_at(Placement::Core(1), &square(), (4, true))
            .unwrap();
        let c = ctx
            .spawn_joinable_at(Placement::Core(1), &crasher, ())
            .unwrap();
        let homes = (home(a.pid()), home(b.pid()), home(c.pid()));
        // `b` waits for its `Go`: a join waits for it, across cores.
        ctx.send_to(b.pid(), Msg::Go);
        // Joined in any order.
        let failed = matches!(
            ctx.join_across(c),
            Err(JoinError::Exited(ExitError::Failed(why))) if why.contains("crash on core 1")
        );
        (homes, ctx.join_across(b), ctx.join_across(a), failed)
    });
    let got = rt
        .spawn_joinable(Placement::Core(0), &joiner, ())
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(got, ((1, 1, 1), Ok(16), Ok(9), true));
    let report = rt.shutdown(Duration::from_secs(5));
    assert!(report.incidents.is_empty(), "{report:?}");
}

/// A process of core 1 sends its joiner on core 0 (of inbox `capacity`)
/// `n` numbers and ends; the joiner joins it (after a sleep: it has ended),
/// then takes what is in its inbox: its result and the numbers.
fn joined_after_sends(n: u64, capacity: usize) -> (u64, Vec<u64>) {
    let rt = rt();
    let sender = Template::new(
        "sender",
        |ctx: &mut Ctx<Msg>, (to, n): (chronoflow::Pid, u64)| {
            for i in 0..n {
                ctx.send_to(to, Msg::Num(i));
            }
            n
        },
    );
    let joiner = Template::new("joiner", move |ctx: &mut Ctx<Msg>, n: u64| {
        let me = ctx.pid();
        let j = ctx
            .spawn_joinable_at(Placement::Core(1), &sender, (me, n))
            .unwrap();
        ctx.sleep(Duration::from_millis(100));
        let n = ctx.join_across(j).unwrap();
        let mut got = Vec::new();
        while let Some(Msg::Num(i)) = ctx.try_receive() {
            got.push(i);
        }
        (n, got)
    })
    .capacity(capacity);
    rt.spawn_joinable(Placement::Core(0), &joiner, n)
        .unwrap()
        .join()
        .unwrap()
}

#[test]
fn a_result_comes_after_what_its_process_sent_to_the_joiner() {
    // Every message it sent is in already, in order.
    assert_eq!(joined_after_sends(50, 1024), (50, (0..50).collect()));
}

#[test]
fn a_result_comes_after_what_waits_for_room_in_the_joiners_inbox() {
    // Two fit; the others waited on core 0 for room: they go in first, past
    // the inbox's capacity (a joiner waiting for the result reads nothing
    // until it comes).
    assert_eq!(joined_after_sends(20, 2), (20, (0..20).collect()));
}

#[test]
fn a_spawn_that_fails_on_its_core_joins_as_noproc() {
    let rt = rt();
    let huge = Template::new("huge", |_: &mut Ctx<Msg>, ()| 1u64).stack_size(usize::MAX / 2);
    let joiner = Template::new("joiner", move |ctx: &mut Ctx<Msg>, ()| {
        let j = ctx
            .spawn_joinable_at(Placement::Core(1), &huge, ())
            .unwrap();
        ctx.join_across(j)
    });
    let got = rt
        .spawn_joinable(Placement::Core(0), &joiner, ())
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(got, Err(JoinError::Exited(ExitError::NoProc)));
    let report = rt.shutdown(Duration::from_secs(5));
    assert_eq!(report.incidents.len(), 1, "the failed spawn: {report:?}");
}

#[test]
fn only_the_spawner_joins_and_mail_read_before_the_join_leaves_the_result() {
    let rt = rt();
    let slot: Arc<Mutex<Option<Joinable<u64>>>> = Arc::default();
    let thief_slot = slot.clone();
    let thief = Template::new("thief", move |ctx: &mut Ctx<Msg>, ()| {
        let j = thief_slot.lock().unwrap().take().unwrap();
        let pid = j.pid();
        ctx.join_across(j) == Err(JoinError::NotAChild(pid))
    });
    let spawner = Template::new("spawner", move |ctx: &mut Ctx<Msg>, ()| {
        let j = ctx
            .spawn_joinable_at(Placement::Core(1), &square(), (5, false))
            .unwrap();
        *slot.lock().unwrap() = Some(j);
        let t = ctx
            .spawn_joinable_at(Placement::Core(1), &thief, ())
            .unwrap();
        let refused = ctx.join_across(t).unwrap();
        // Mail read meanwhile (a DOWN of a monitor, a timeout) leaves the
        // result of a joinable process alone.
        let mine = ctx
            .spawn_joinable_at(Placement::Core(1), &square(), (6, false))
            .unwrap();
        let (_, m) = ctx
            .spawn_monitor_at(Placement::Core(1), &square(), (0, false))
            .unwrap();
        let down = matches!(ctx.receive_mail(), Mail::Down { monitor, .. } if monitor == m);
        let quiet = ctx
            .receive_mail_timeout(Duration::from_millis(50))
            .is_none();
        (refused, down, quiet, ctx.join_across(mine))
    });
    let got = rt
        .spawn_joinable(Placement::Core(0), &spawner, ())
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(got, (true, true, true, Ok(36)));
}

#[test]
fn a_result_whose_joiner_ended_is_dropped_once() {
    let rt = rt();
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    let late = Template::new("late", move |ctx: &mut Ctx<Msg>, ()| {
        while ctx.receive() != Msg::Go {}
        Counted(d.clone())
    });
    let d = drops.clone();
    let early = Template::new("early", move |_: &mut Ctx<Msg>, ()| Counted(d.clone()));
    let joiner = Template::new("joiner", move |ctx: &mut Ctx<Msg>, ()| {
        // One that ends after its joiner, one that ends before, unjoined.
        let j = ctx
            .spawn_joinable_at(Placement::Core(1), &late, ())
            .unwrap();
        let e = ctx
            .spawn_joinable_at(Placement::Core(1), &early, ())
            .unwrap();
        ctx.receive_timeout(Duration::from_millis(50));
        drop(e);
        j.pid()
    });
    let pid = rt
        .spawn_joinable(Placement::Core(0), &joiner, ())
        .unwrap()
        .join()
        .unwrap();
    rt.send_blocking(pid, Msg::Go).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while drops.load(Ordering::SeqCst) < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let report = rt.shutdown(Duration::from_secs(5));
    assert_eq!(drops.load(Ordering::SeqCst), 2);
    assert!(report.incidents.is_empty(), "{report:?}");
}

#[test]
fn a_killed_process_joins_as_killed_and_shutdown_ends_a_waiting_joiner() {
    let rt = rt();
    let killed = Arc::new(AtomicUsize::new(0));
    let k = killed.clone();
    let joiner = Template::new("joiner", move |ctx: &mut Ctx<Msg>, ()| {
        let j = ctx
            .spawn_joinable_at(Placement::Core(1), &square(), (2, true))
            .unwrap();
        ctx.exit_signal(j.pid(), chronoflow::Reason::Kill);
        if matches!(
            ctx.join_across(j),
            Err(JoinError::Exited(ExitError::Killed(_)))
        ) {
            k.fetch_add(1, Ordering::SeqCst);
        }
        // Waits for one that waits for ever: ended by the shutdown.
        let forever = ctx
            .spawn_joinable_at(Placement::Core(1), &square(), (2, true))
            .unwrap();
        ctx.join_across(forever)
    });
    let j = rt.spawn_joinable(Placement::Core(0), &joiner, ()).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while killed.load(Ordering::SeqCst) == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        killed.load(Ordering::SeqCst),
        1,
        "the kill joined as Killed"
    );
    let report = rt.shutdown(Duration::from_secs(5));
    assert!(report.incidents.is_empty(), "{report:?}");
    // The shutdown stops the joiner, or first the process it waits for
    // (whose end, shut down or killed, it then joins): either way the wait
    // ends.
    let ended = j.join();
    assert!(
        matches!(ended, Err(_) | Ok(Err(JoinError::Exited(_)))),
        "{ended:?}"
    );
}

#[test]
fn on_one_core_a_joinable_spawn_is_made_here() {
    let mut sched = SimpleScheduler::<Msg>::new();
    let joiner = Template::new("joiner", move |ctx: &mut Ctx<Msg>, ()| {
        let refused = matches!(
            ctx.spawn_joinable_at(Placement::Core(1), &square(), (2, false)),
            Err(SpawnError::Unplaceable(_))
        );
        let j = ctx
            .spawn_joinable_at(Placement::RoundRobin, &square(), (7, true))
            .unwrap();
        ctx.send_to(j.pid(), Msg::Go);
        (refused, ctx.join_across(j))
    });
    let h = sched.spawn(&joiner, ()).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&h), Some(Ok((true, Ok(49)))));
    assert_eq!(sched.live(), 0);
}

#[test]
fn a_durable_scheduler_refuses_joinable_spawns() {
    let tmp = tempfile::TempDir::new().unwrap();
    let refused = Template::new("refuses", |ctx: &mut Ctx<u64>, ()| {
        let leaf = Template::new("leaf", |_: &mut Ctx<u64>, ()| 1u64);
        matches!(
            ctx.spawn_joinable_at(Placement::Local, &leaf, ()),
            Err(SpawnError::Unplaceable(_))
        )
    });
    let (mut sched, _) = DurableScheduler::<u64>::builder()
        .register(&refused)
        .open(tmp.path())
        .unwrap();
    let h = sched.spawn(&refused, ()).unwrap();
    sched.run_until_idle().unwrap();
    assert_eq!(sched.result(&h), Some(Ok(true)));
}

#[cfg(feature = "stackless")]
#[test]
fn a_stackless_process_joins_across_cores() {
    use chronoflow::stackless::{join_across, receive, send_to};
    use chronoflow::{StacklessCtx, StacklessTemplate};
    let rt = rt();
    let leaf = StacklessTemplate::new("leaf", |cx: StacklessCtx<Msg>, n: u64| {
        #[coroutine]
        move || {
            if n == 0 {
                panic!("zero");
            }
            match receive!(cx) {
                Msg::Num(m) => n + m,
                Msg::Go => n,
            }
        }
    });
    let joiner = StacklessTemplate::new("joiner", move |cx: StacklessCtx<Msg>, ()| {
        let leaf = leaf.clone();
        #[coroutine]
        move || {
            let a = cx.spawn_joinable_at(Placement::Core(1), &leaf, 1).unwrap();
            let b = cx.spawn_joinable_at(Placement::Local, &leaf, 2).unwrap();
            let z = cx.spawn_joinable_at(Placement::Core(1), &leaf, 0).unwrap();
            let homes = (home(a.pid()), home(b.pid()));
            send_to!(cx, a.pid(), Msg::Num(10));
            send_to!(cx, b.pid(), Msg::Num(20));
            let zero = matches!(join_across!(cx, z), Err(JoinError::Exited(_)));
            (homes, join_across!(cx, a), join_across!(cx, b), zero)
        }
    });
    let got = rt
        .spawn_joinable(Placement::Core(0), &joiner, ())
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(got, ((1, 0), Ok(11), Ok(22), true));
}
