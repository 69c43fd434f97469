#![cfg_attr(feature = "stackless", feature(coroutines))]
//! Supervisors, with OTP's semantics: strategies, restart types, shutdowns,
//! restart intensity, backoff, names, trees, auto shutdown, requests.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use chronoflow::otp::supervisor::{
    AddChild, AutoShutdown, Backoff, ChildCounts, ChildError, ChildKind, ChildRef, ChildSpec,
    ChildState, CountChildren, DeleteChild, DynamicSpec, DynamicSupervisor, Restart, RestartChild,
    Shutdown, SpecError, StartChild, Strategy, Supervisor, SupervisorTemplate, TerminateChild,
    WhichChildren,
};
use chronoflow::{
    CallError, Ctx, ExitError, Local, Mail, ManualClock, Pid, Reason, SimpleScheduler, Template,
    Time,
};

#[derive(Debug, Clone, PartialEq)]
enum Msg {
    Crash,
    Quit,
    Ask(Pid),
    Tell(String, Pid),
}

type Log = Rc<RefCell<Vec<String>>>;

fn log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

fn entries(log: &Log, prefix: &str) -> Vec<String> {
    log.borrow()
        .iter()
        .filter(|e| e.starts_with(prefix))
        .cloned()
        .collect()
}

/// Logs `end <tag>` when the process ends, however it ends (its stack
/// unwinds when it is killed).
struct Guard(Log, String);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.borrow_mut().push(format!("end {}", self.1));
    }
}

type Worker = Template<Msg, Msg, (), (), Local>;

/// Logs `start <tag>`, then serves: `Crash` panics, `Quit` returns, `Ask`
/// answers with its tag and pid.
fn worker(tag: &str, log: &Log) -> Worker {
    let (tag, log) = (tag.to_string(), log.clone());
    Template::local(&tag.clone(), move |ctx: &mut Ctx<Msg>, ()| {
        log.borrow_mut().push(format!("start {tag}"));
        let _guard = Guard(log.clone(), tag.clone());
        loop {
            match ctx.receive() {
                Msg::Crash => panic!("{tag} crashes"),
                Msg::Quit => return,
                Msg::Ask(from) => {
                    let me = ctx.pid();
                    ctx.send_to(from, Msg::Tell(tag.clone(), me))
                }
                Msg::Tell(..) => {}
            }
        }
    })
}

fn clocked() -> (SimpleScheduler<Msg>, ManualClock) {
    let clock = ManualClock::new(Time::from_nanos(1_000_000_000_000));
    let mut s = SimpleScheduler::new();
    s.set_clock(clock.clone());
    (s, clock)
}

fn running(s: &mut SimpleScheduler<Msg>, sup: Pid) -> Vec<Option<Pid>> {
    s.request(sup, WhichChildren)
        .unwrap()
        .into_iter()
        .map(|c| match c.child {
            ChildState::Running(pid) => Some(pid),
            _ => None,
        })
        .collect()
}

fn counts(s: &mut SimpleScheduler<Msg>, sup: Pid) -> ChildCounts {
    s.request(sup, CountChildren).unwrap()
}

fn three(log: &Log, strategy: Strategy) -> SupervisorTemplate<Msg> {
    Supervisor::new("sup")
        .strategy(strategy)
        .intensity(10, Duration::from_secs(5))
        .child(ChildSpec::new("a", &worker("a", log), ()))
        .child(ChildSpec::new("b", &worker("b", log), ()))
        .child(ChildSpec::new("c", &worker("c", log), ()))
        .template()
        .unwrap()
}

#[test]
fn children_start_in_order_and_one_for_one_restarts_the_failed_child_alone() {
    let (mut s, _clock) = clocked();
    let log = log();
    let sup = s.spawn(&three(&log, Strategy::OneForOne), ()).unwrap();
    s.run_until_idle();
    assert_eq!(entries(&log, "start"), ["start a", "start b", "start c"]);
    let before = running(&mut s, sup.pid());
    s.send(before[1].unwrap(), Msg::Crash).unwrap();
    s.run_until_idle();
    let after = running(&mut s, sup.pid());
    assert_eq!(after[0], before[0]);
    assert_ne!(after[1], before[1]);
    assert_eq!(after[2], before[2]);
    assert_eq!(
        entries(&log, ""),
        ["start a", "start b", "start c", "end b", "start b"]
    );
    assert_eq!(
        counts(&mut s, sup.pid()),
        ChildCounts {
            specs: 3,
            active: 3,
            supervisors: 0,
            workers: 3,
            restarts: 1
        }
    );
}

#[test]
fn one_for_all_stops_the_others_in_reverse_order_and_restarts_all_in_order() {
    let (mut s, _clock) = clocked();
    let log = log();
    let sup = s.spawn(&three(&log, Strategy::OneForAll), ()).unwrap();
    s.run_until_idle();
    let before = running(&mut s, sup.pid());
    log.borrow_mut().clear();
    s.send(before[1].unwrap(), Msg::Crash).unwrap();
    s.run_until_idle();
    assert_eq!(
        entries(&log, ""),
        ["end b", "end c", "end a", "start a", "start b", "start c"]
    );
    let after = running(&mut s, sup.pid());
    for (a, b) in before.iter().zip(&after) {
        assert_ne!(a, b);
        assert!(b.is_some());
    }
}

#[test]
fn rest_for_one_restarts_the_failed_child_and_those_after_it_only() {
    let (mut s, _clock) = clocked();
    let log = log();
    let sup = s.spawn(&three(&log, Strategy::RestForOne), ()).unwrap();
    s.run_until_idle();
    let before = running(&mut s, sup.pid());
    log.borrow_mut().clear();
    s.send(before[1].unwrap(), Msg::Crash).unwrap();
    s.run_until_idle();
    assert_eq!(entries(&log, ""), ["end b", "end c", "start b", "start c"]);
    let after = running(&mut s, sup.pid());
    assert_eq!(after[0], before[0]);
    assert_ne!(after[1], before[1]);
    assert_ne!(after[2], before[2]);
}

#[test]
fn transient_children_restart_only_after_an_abnormal_end_and_temporary_ones_never() {
    let (mut s, _clock) = clocked();
    let log = log();
    let sup = Supervisor::new("sup")
        .intensity(10, Duration::from_secs(5))
        .child(ChildSpec::new("t1", &worker("t1", &log), ()).restart(Restart::Transient))
        .child(ChildSpec::new("t2", &worker("t2", &log), ()).restart(Restart::Transient))
        .child(ChildSpec::new("tmp", &worker("tmp", &log), ()).restart(Restart::Temporary))
        .child(ChildSpec::new("p", &worker("p", &log), ()))
        .template()
        .unwrap();
    let sup = s.spawn(&sup, ()).unwrap();
    s.run_until_idle();
    let pids = running(&mut s, sup.pid());
    // A normal end: not restarted, the spec stays.
    s.send(pids[0].unwrap(), Msg::Quit).unwrap();
    // An abnormal end: restarted.
    s.send(pids[1].unwrap(), Msg::Crash).unwrap();
    // A temporary child is never restarted, and is forgotten.
    s.send(pids[2].unwrap(), Msg::Crash).unwrap();
    s.run_until_idle();
    let which = s.request(sup.pid(), WhichChildren).unwrap();
    let ids: Vec<_> = which.iter().map(|c| c.id.clone().unwrap()).collect();
    assert_eq!(ids, ["t1", "t2", "p"]);
    assert_eq!(which[0].child, ChildState::Undefined);
    assert!(matches!(which[1].child, ChildState::Running(p) if Some(p) != pids[1]));
    assert_eq!(which[2].child, ChildState::Running(pids[3].unwrap()));
    // A shutdown is not abnormal either.
    let t2 = running(&mut s, sup.pid())[1].unwrap();
    s.exit_signal(
        t2,
        Reason::Shutdown(Some(chronoflow::Value::text_of("bye"))),
    );
    s.run_until_idle();
    assert_eq!(running(&mut s, sup.pid())[1], None);
    assert_eq!(counts(&mut s, sup.pid()).restarts, 1);
    assert_eq!(
        entries(&log, "start t"),
        ["start t1", "start t2", "start tmp", "start t2"]
    );
}

#[test]
fn a_stable_name_reaches_each_new_incarnation() {
    let (mut s, _clock) = clocked();
    let log = log();
    let sup = Supervisor::new("sup")
        .child(ChildSpec::new("w", &worker("w", &log), ()).name("worker"))
        .template()
        .unwrap();
    s.spawn(&sup, ()).unwrap();
    let asker = Template::<Msg, Msg, (), Vec<Pid>>::new("asker", |ctx: &mut Ctx<Msg>, ()| {
        let me = ctx.pid();
        let mut seen: Vec<Pid> = Vec::new();
        for _ in 0..2 {
            // Until the supervisor has registered the next incarnation.
            while ctx.whereis("worker").is_none() || ctx.whereis("worker") == seen.last().copied() {
                ctx.yield_now();
            }
            ctx.send_named("worker", Msg::Ask(me)).unwrap();
            match ctx.receive() {
                Msg::Tell(_, pid) => seen.push(pid),
                other => panic!("{other:?}"),
            }
            ctx.send_named("worker", Msg::Crash).unwrap();
        }
        seen
    });
    let a = s.spawn(&asker, ()).unwrap();
    s.run_until_idle();
    let seen = s.result(&a).unwrap().unwrap();
    assert_ne!(seen[0], seen[1]);
    // The second crash was the second restart within 5 s: beyond OTP's
    // default intensity (1), the supervisor gave up; the name is free.
    assert_eq!(s.whereis("worker"), None);
}

/// Crashes on `Crash`; on the scheduler's clock at `at`, so the test can
/// place crashes in time.
fn crash_at(s: &mut SimpleScheduler<Msg>, sup: Pid, clock: &ManualClock, at: Duration) {
    clock.set(Time::from_nanos(1_000_000_000_000 + at.as_nanos() as u64));
    s.run_until_idle();
    let pid = running(s, sup)[0].expect("running");
    s.send(pid, Msg::Crash).unwrap();
    s.run_until_idle();
}

#[test]
fn the_restart_window_includes_its_edge() {
    // OTP keeps restarts at `now - period` or later, and gives up when they
    // are more than MaxR.
    for (second, gives_up) in [
        (Duration::from_secs(5), true),
        (Duration::from_secs(5) + Duration::from_nanos(1), false),
    ] {
        let (mut s, clock) = clocked();
        let log = log();
        let sup = Supervisor::new("sup")
            .intensity(1, Duration::from_secs(5))
            .child(ChildSpec::new("w", &worker("w", &log), ()))
            .template()
            .unwrap();
        let h = s.spawn(&sup, ()).unwrap();
        crash_at(&mut s, h.pid(), &clock, Duration::ZERO);
        assert_eq!(s.result(&h), None);
        clock.set(Time::from_nanos(
            1_000_000_000_000 + second.as_nanos() as u64,
        ));
        let pid = running(&mut s, h.pid())[0].unwrap();
        s.send(pid, Msg::Crash).unwrap();
        s.run_until_idle();
        if gives_up {
            assert_eq!(s.result(&h), Some(Err(ExitError::Shutdown(None))));
            assert_eq!(s.live(), 0);
        } else {
            assert_eq!(s.result(&h), None);
            assert_eq!(counts(&mut s, h.pid()).restarts, 2);
        }
    }
}

#[test]
fn a_budget_of_zero_gives_up_at_the_first_crash_and_stops_the_others_in_reverse() {
    let (mut s, _clock) = clocked();
    let log = log();
    let sup = Supervisor::new("sup")
        .intensity(0, Duration::from_secs(5))
        .child(ChildSpec::new("a", &worker("a", &log), ()))
        .child(ChildSpec::new("b", &worker("b", &log), ()))
        .child(ChildSpec::new("c", &worker("c", &log), ()))
        .template()
        .unwrap();
    let h = s.spawn(&sup, ()).unwrap();
    s.run_until_idle();
    let a = running(&mut s, h.pid())[0].unwrap();
    log.borrow_mut().clear();
    s.send(a, Msg::Crash).unwrap();
    s.run_until_idle();
    assert_eq!(entries(&log, ""), ["end a", "end c", "end b"]);
    assert_eq!(s.result(&h), Some(Err(ExitError::Shutdown(None))));
}

#[test]
fn a_child_that_fails_again_at_once_spends_the_budget() {
    let (mut s, _clock) = clocked();
    let started = Rc::new(RefCell::new(0u32));
    let n = started.clone();
    let flaky = Template::<Msg, Msg, (), (), Local>::local("flaky", move |ctx, ()| {
        *n.borrow_mut() += 1;
        if *n.borrow() > 1 {
            panic!("fails at once");
        }
        ctx.receive();
        panic!("first crash");
    });
    let sup = Supervisor::new("sup")
        .intensity(3, Duration::from_secs(5))
        .child(ChildSpec::new("flaky", &flaky, ()))
        .template()
        .unwrap();
    let h = s.spawn(&sup, ()).unwrap();
    s.run_until_idle();
    let pid = running(&mut s, h.pid())[0].unwrap();
    s.send(pid, Msg::Quit).unwrap();
    s.run_until_idle();
    // Crash 1, then three restarts that fail at once: the fourth restart is
    // one too many.
    assert_eq!(*started.borrow(), 4);
    assert_eq!(s.result(&h), Some(Err(ExitError::Shutdown(None))));
}

#[test]
fn a_start_that_fails_is_tried_again_and_spends_the_budget() {
    let (mut s, _clock) = clocked();
    let log = log();
    let run = |s: &mut SimpleScheduler<Msg>, max: u32| {
        let sup = Supervisor::new("sup")
            .intensity(max, Duration::from_secs(5))
            .child(ChildSpec::new("w", &worker("w", &log), ()).name("w"))
            .template()
            .unwrap();
        let h = s.spawn(&sup, ()).unwrap();
        let squatter = s.spawn(&worker("squatter", &log), ()).unwrap();
        s.run_until_idle();
        // Another process takes the name: the restart cannot register it.
        let w = s.unregister("w").unwrap();
        s.register("w", squatter.pid()).unwrap();
        s.send(w, Msg::Crash).unwrap();
        (h, squatter)
    };
    // The crash (1), its restart failing (2), the try again failing (3 > 2).
    let (h, squatter) = run(&mut s, 2);
    s.run_until_idle();
    assert_eq!(s.result(&h), Some(Err(ExitError::Shutdown(None))));
    s.exit_signal(squatter.pid(), Reason::Kill);
    // With room in the budget, it is tried again until the name is free.
    let (h, squatter) = run(&mut s, 100);
    for _ in 0..6 {
        let _ = s.update();
    }
    s.exit_signal(squatter.pid(), Reason::Kill);
    s.run_until_idle();
    let restarts = counts(&mut s, h.pid()).restarts;
    assert!(restarts >= 3, "{restarts}");
    assert_eq!(s.whereis("w"), running(&mut s, h.pid())[0]);
}

#[test]
fn a_child_that_cannot_be_started_fails_the_supervisor_at_start() {
    let mut s = SimpleScheduler::new();
    let log = log();
    let huge = worker("huge", &log).stack_size(usize::MAX / 2);
    let sup = Supervisor::new("sup")
        .child(ChildSpec::new("a", &worker("a", &log), ()))
        .child(ChildSpec::new("huge", &huge, ()))
        .template()
        .unwrap();
    let h = s.spawn(&sup, ()).unwrap();
    s.run_until_idle();
    match s.result(&h) {
        Some(Err(ExitError::Shutdown(Some(why)))) => {
            assert!(
                format!("{why:?}").contains("failed_to_start_child"),
                "{why:?}"
            )
        }
        other => panic!("{other:?}"),
    }
    // The first child was stopped (before it ran).
    assert!(entries(&log, "").is_empty());
    assert_eq!(s.live(), 0);
}

/// Traps exits and ignores every exit signal but `Kill`.
fn stubborn(log: &Log) -> Worker {
    let log = log.clone();
    Template::local("stubborn", move |ctx: &mut Ctx<Msg>, ()| {
        ctx.trap_exit(true);
        let _guard = Guard(log.clone(), "stubborn".into());
        loop {
            ctx.receive_mail();
        }
    })
}

#[test]
fn a_shutdown_timeout_escalates_to_a_kill_on_the_scheduler_clock() {
    let (mut s, clock) = clocked();
    let log = log();
    let sup = Supervisor::new("sup")
        .child(
            ChildSpec::new("s", &stubborn(&log), ())
                .shutdown(Shutdown::Timeout(Duration::from_secs(2))),
        )
        .template()
        .unwrap();
    let h = s.spawn(&sup, ()).unwrap();
    s.run_until_idle();
    let child = running(&mut s, h.pid())[0].unwrap();
    s.exit_signal(h.pid(), Reason::Shutdown(None));
    s.run_until_idle();
    // It ignores the shutdown: the supervisor waits.
    assert_eq!(s.result(&h), None);
    assert!(s.status(child).is_some());
    clock.advance(Duration::from_millis(1999));
    s.run_until_idle();
    assert_eq!(s.result(&h), None);
    clock.advance(Duration::from_millis(1));
    s.run_until_idle();
    assert_eq!(entries(&log, ""), ["end stubborn"]);
    assert_eq!(s.result(&h), Some(Err(ExitError::Shutdown(None))));
    assert_eq!(s.live(), 0);
}

#[test]
fn brutal_kill_and_infinity() {
    let (mut s, _clock) = clocked();
    let log = log();
    let sup = Supervisor::new("sup")
        .child(ChildSpec::new("k", &stubborn(&log), ()).shutdown(Shutdown::BrutalKill))
        .child(ChildSpec::new("i", &worker("i", &log), ()).shutdown(Shutdown::Infinity))
        .template()
        .unwrap();
    let h = s.spawn(&sup, ()).unwrap();
    s.run_until_idle();
    s.exit_signal(h.pid(), Reason::Shutdown(None));
    s.run_until_idle();
    assert_eq!(entries(&log, "end"), ["end i", "end stubborn"]);
    assert_eq!(s.result(&h), Some(Err(ExitError::Shutdown(None))));
}

/// Records the clock each time it starts, then fails at once.
fn failing_clocked(times: &Rc<RefCell<Vec<Duration>>>) -> Worker {
    let times = times.clone();
    Template::local("failing", move |ctx: &mut Ctx<Msg>, ()| {
        let now = ctx.now().since(Time::from_nanos(1_000_000_000_000));
        times.borrow_mut().push(now);
        panic!("fails");
    })
}

fn backoff_run(backoff: Backoff) -> Vec<Duration> {
    let (mut s, clock) = clocked();
    let times = Rc::new(RefCell::new(Vec::new()));
    let sup = Supervisor::new("sup")
        .intensity(100, Duration::from_secs(1000))
        .backoff(backoff)
        .child(ChildSpec::new("f", &failing_clocked(&times), ()))
        .template()
        .unwrap();
    s.spawn(&sup, ()).unwrap();
    for _ in 0..600 {
        s.run_until_idle();
        clock.advance(Duration::from_millis(50));
    }
    times.take()
}

#[test]
fn backoff_grows_to_its_maximum_and_its_jitter_follows_the_seed() {
    let plain = backoff_run(Backoff::new(
        Duration::from_secs(1),
        2.0,
        Duration::from_secs(8),
    ));
    let secs: Vec<u64> = plain.iter().map(|d| d.as_secs()).collect();
    // Delays 1, 2, 4, 8, 8, ...
    assert_eq!(secs[..6], [0, 1, 3, 7, 15, 23]);
    let jittered = |seed| {
        backoff_run(
            Backoff::new(Duration::from_secs(1), 2.0, Duration::from_secs(8)).jitter(0.5, seed),
        )
    };
    let a = jittered(42);
    assert_eq!(a, jittered(42));
    assert_ne!(a, jittered(43));
    assert_ne!(a[..5], plain[..5]);
}

#[test]
fn backoff_resets_after_a_quiet_run() {
    let (mut s, clock) = clocked();
    let log = log();
    let sup = Supervisor::new("sup")
        .intensity(100, Duration::from_secs(1000))
        .backoff(
            Backoff::new(Duration::from_secs(1), 2.0, Duration::from_secs(60))
                .reset_after(Duration::from_secs(10)),
        )
        .child(ChildSpec::new("w", &worker("w", &log), ()))
        .template()
        .unwrap();
    let h = s.spawn(&sup, ()).unwrap();
    s.run_until_idle();
    let crash = |s: &mut SimpleScheduler<Msg>| {
        let pid = running(s, h.pid())[0].expect("running");
        s.send(pid, Msg::Crash).unwrap();
        s.run_until_idle();
    };
    crash(&mut s); // waits 1 s
    clock.advance(Duration::from_secs(1));
    s.run_until_idle();
    crash(&mut s); // ran 0 s: waits 2 s
    clock.advance(Duration::from_millis(1999));
    s.run_until_idle();
    assert_eq!(running(&mut s, h.pid())[0], None);
    clock.advance(Duration::from_millis(1));
    s.run_until_idle();
    assert!(running(&mut s, h.pid())[0].is_some());
    // Quiet for 10 s: back to 1 s.
    clock.advance(Duration::from_secs(10));
    crash(&mut s);
    clock.advance(Duration::from_secs(1));
    s.run_until_idle();
    assert!(running(&mut s, h.pid())[0].is_some());
}

#[test]
fn during_a_backoff_the_supervisor_answers_and_stopping_it_abandons_the_restart() {
    let (mut s, clock) = clocked();
    let log = log();
    let sup = Supervisor::new("sup")
        .backoff(Backoff::new(
            Duration::from_secs(5),
            2.0,
            Duration::from_secs(60),
        ))
        .child(ChildSpec::new("w", &worker("w", &log), ()))
        .template()
        .unwrap();
    let h = s.spawn(&sup, ()).unwrap();
    s.run_until_idle();
    let pid = running(&mut s, h.pid())[0].unwrap();
    s.send(pid, Msg::Crash).unwrap();
    s.run_until_idle();
    let which = s.request(h.pid(), WhichChildren).unwrap();
    assert_eq!(which[0].child, ChildState::Restarting);
    // Stopped twice: harmless.
    s.exit_signal(h.pid(), Reason::Shutdown(None));
    s.exit_signal(h.pid(), Reason::Shutdown(None));
    s.run_until_idle();
    assert_eq!(s.result(&h), Some(Err(ExitError::Shutdown(None))));
    clock.advance(Duration::from_secs(10));
    s.run_until_idle();
    assert_eq!(entries(&log, "start"), ["start w"]);
    assert_eq!(s.live(), 0);
    assert_eq!(s.timers_dropped(), 0);
}

#[test]
fn terminating_a_child_during_its_backoff_abandons_its_restart() {
    let (mut s, clock) = clocked();
    let log = log();
    let sup = Supervisor::new("sup")
        .backoff(Backoff::new(
            Duration::from_secs(5),
            2.0,
            Duration::from_secs(60),
        ))
        .child(ChildSpec::new("w", &worker("w", &log), ()))
        .template()
        .unwrap();
    let h = s.spawn(&sup, ()).unwrap();
    s.run_until_idle();
    let pid = running(&mut s, h.pid())[0].unwrap();
    s.send(pid, Msg::Crash).unwrap();
    s.run_until_idle();
    assert_eq!(
        s.request(h.pid(), TerminateChild("w".into())).unwrap(),
        Ok(())
    );
    clock.advance(Duration::from_secs(10));
    s.run_until_idle();
    assert_eq!(entries(&log, "start"), ["start w"]);
    assert_eq!(
        s.request(h.pid(), WhichChildren).unwrap()[0].child,
        ChildState::Undefined
    );
}

#[test]
fn a_three_level_tree_stops_leaves_first() {
    let (mut s, _clock) = clocked();
    let log = log();
    let leaf = Supervisor::new("leaf")
        .child(ChildSpec::new("l1", &worker("l1", &log), ()))
        .child(ChildSpec::new("l2", &worker("l2", &log), ()));
    let mid = Supervisor::new("mid")
        .child(ChildSpec::new("m1", &worker("m1", &log), ()))
        .child(leaf.child_spec("leaf").unwrap())
        .child(ChildSpec::new("m2", &worker("m2", &log), ()));
    let root = Supervisor::new("root")
        .child(ChildSpec::new("r1", &worker("r1", &log), ()))
        .child(mid.child_spec("mid").unwrap())
        .template()
        .unwrap();
    let h = s.spawn(&root, ()).unwrap();
    s.run_until_idle();
    assert_eq!(
        entries(&log, "start"),
        ["start r1", "start m1", "start l1", "start l2", "start m2"]
    );
    let kinds: Vec<ChildKind> = s
        .request(h.pid(), WhichChildren)
        .unwrap()
        .iter()
        .map(|c| c.kind)
        .collect();
    assert_eq!(kinds, [ChildKind::Worker, ChildKind::Supervisor]);
    // A watcher of every process sees their ends in order.
    let top = running(&mut s, h.pid());
    let mid_kids = running(&mut s, top[1].unwrap());
    let leaf_kids = running(&mut s, mid_kids[1].unwrap());
    let named = [
        ("root", h.pid()),
        ("r1", top[0].unwrap()),
        ("mid", top[1].unwrap()),
        ("m1", mid_kids[0].unwrap()),
        ("leaf", mid_kids[1].unwrap()),
        ("m2", mid_kids[2].unwrap()),
        ("l1", leaf_kids[0].unwrap()),
        ("l2", leaf_kids[1].unwrap()),
    ];
    let watcher =
        Template::<Msg, Msg, (), Vec<&'static str>, Local>::local("watcher", move |ctx, ()| {
            for (_, pid) in named {
                ctx.monitor(pid);
            }
            (0..named.len())
                .map(|_| match ctx.receive_mail() {
                    Mail::Down { pid, .. } => named.iter().find(|(_, p)| *p == pid).unwrap().0,
                    other => panic!("{other:?}"),
                })
                .collect()
        });
    let w = s.spawn(&watcher, ()).unwrap();
    s.run_until_idle();
    s.exit_signal(h.pid(), Reason::Shutdown(None));
    s.run_until_idle();
    assert_eq!(
        s.result(&w).unwrap().unwrap(),
        ["m2", "l2", "l1", "leaf", "m1", "mid", "r1", "root"]
    );
    assert_eq!(
        entries(&log, "end"),
        ["end m2", "end l2", "end l1", "end m1", "end r1"]
    );
    assert_eq!(s.live(), 0);
}

#[test]
fn a_supervisor_that_gives_up_is_restarted_by_its_own_supervisor() {
    let (mut s, _clock) = clocked();
    let log = log();
    let inner = Supervisor::new("inner")
        .intensity(0, Duration::from_secs(5))
        .child(ChildSpec::new("w", &worker("w", &log), ()));
    let outer = Supervisor::new("outer")
        .child(inner.child_spec("inner").unwrap())
        .template()
        .unwrap();
    let h = s.spawn(&outer, ()).unwrap();
    s.run_until_idle();
    let inner_pid = running(&mut s, h.pid())[0].unwrap();
    let w = running(&mut s, inner_pid)[0].unwrap();
    s.send(w, Msg::Crash).unwrap();
    s.run_until_idle();
    let new_inner = running(&mut s, h.pid())[0].unwrap();
    assert_ne!(new_inner, inner_pid);
    assert_eq!(counts(&mut s, h.pid()).restarts, 1);
    assert_eq!(entries(&log, "start"), ["start w", "start w"]);

    // A plain process that traps exits sees the give-up as an EXIT shutdown.
    let inner_t = inner.template().unwrap();
    let parent = Template::<Msg, Msg, (), Mail<Msg>, Local>::local("parent", move |ctx, ()| {
        ctx.trap_exit(true);
        let sup = ctx.spawn_link(&inner_t, ()).unwrap();
        let w = ctx.request(sup, WhichChildren, None).unwrap()[0].child;
        let ChildState::Running(w) = w else { panic!() };
        ctx.send_to(w, Msg::Crash);
        ctx.receive_mail()
    });
    let p = s.spawn(&parent, ()).unwrap();
    s.run_until_idle();
    assert!(matches!(
        s.result(&p),
        Some(Ok(Mail::Exit {
            reason: Reason::Shutdown(None),
            ..
        }))
    ));
}

#[test]
fn auto_shutdown_any_and_all_significant() {
    let (mut s, _clock) = clocked();
    let log = log();
    let any = Supervisor::new("any")
        .auto_shutdown(AutoShutdown::AnySignificant)
        .child(ChildSpec::new("p", &worker("p", &log), ()))
        .child(
            ChildSpec::new("sig", &worker("sig", &log), ())
                .restart(Restart::Transient)
                .significant(true),
        )
        .template()
        .unwrap();
    let h = s.spawn(&any, ()).unwrap();
    s.run_until_idle();
    let sig = running(&mut s, h.pid())[1].unwrap();
    // An abnormal end restarts a transient child: no shutdown.
    s.send(sig, Msg::Crash).unwrap();
    s.run_until_idle();
    assert_eq!(s.result(&h), None);
    let sig = running(&mut s, h.pid())[1].unwrap();
    s.send(sig, Msg::Quit).unwrap();
    s.run_until_idle();
    assert_eq!(s.result(&h), Some(Err(ExitError::Shutdown(None))));

    let all = Supervisor::new("all")
        .auto_shutdown(AutoShutdown::AllSignificant)
        .child(
            ChildSpec::new("s1", &worker("s1", &log), ())
                .restart(Restart::Temporary)
                .significant(true),
        )
        .child(
            ChildSpec::new("s2", &worker("s2", &log), ())
                .restart(Restart::Temporary)
                .significant(true),
        )
        .template()
        .unwrap();
    let h = s.spawn(&all, ()).unwrap();
    s.run_until_idle();
    let pids = running(&mut s, h.pid());
    s.send(pids[0].unwrap(), Msg::Crash).unwrap();
    s.run_until_idle();
    assert_eq!(s.result(&h), None);
    s.send(pids[1].unwrap(), Msg::Quit).unwrap();
    s.run_until_idle();
    assert_eq!(s.result(&h), Some(Err(ExitError::Shutdown(None))));
}

#[test]
fn invalid_specs_are_refused_as_otp_refuses_them() {
    let log = log();
    let w = worker("w", &log);
    let dup = Supervisor::<Msg>::new("s")
        .child(ChildSpec::new("a", &w, ()))
        .child(ChildSpec::new("a", &w, ()));
    assert_eq!(
        dup.template().err(),
        Some(SpecError::DuplicateId("a".into()))
    );
    let never = Supervisor::<Msg>::new("s").child(
        ChildSpec::new("a", &w, ())
            .restart(Restart::Transient)
            .significant(true),
    );
    assert_eq!(
        never.template().err(),
        Some(SpecError::SignificantNever("a".into()))
    );
    let permanent = Supervisor::<Msg>::new("s")
        .auto_shutdown(AutoShutdown::AnySignificant)
        .child(ChildSpec::new("a", &w, ()).significant(true));
    assert_eq!(
        permanent.template().err(),
        Some(SpecError::SignificantPermanent("a".into()))
    );
    let zero = Supervisor::<Msg>::new("s").intensity(1, Duration::ZERO);
    assert_eq!(zero.template().err(), Some(SpecError::ZeroPeriod));
}

#[test]
fn terminate_restart_delete_and_add_children() {
    let (mut s, _clock) = clocked();
    let log = log();
    let sup = Supervisor::new("sup")
        .child(ChildSpec::new("a", &worker("a", &log), ()))
        .template()
        .unwrap();
    let h = s.spawn(&sup, ()).unwrap();
    s.run_until_idle();
    let sup = h.pid();
    assert_eq!(
        s.request(sup, DeleteChild("a".into())).unwrap(),
        Err(ChildError::Running)
    );
    assert_eq!(s.request(sup, TerminateChild("a".into())).unwrap(), Ok(()));
    assert_eq!(running(&mut s, sup), [None]);
    let a = s.request(sup, RestartChild("a".into())).unwrap().unwrap();
    assert_eq!(running(&mut s, sup), [Some(a)]);
    let b = s
        .request(sup, AddChild(ChildSpec::new("b", &worker("b", &log), ())))
        .unwrap()
        .unwrap();
    assert_eq!(running(&mut s, sup), [Some(a), Some(b)]);
    assert_eq!(
        s.request(sup, AddChild(ChildSpec::new("b", &worker("b", &log), ())))
            .unwrap(),
        Err(ChildError::AlreadyPresent("b".into()))
    );
    assert_eq!(s.request(sup, TerminateChild(b.into())).unwrap(), Ok(()));
    assert_eq!(s.request(sup, DeleteChild("b".into())).unwrap(), Ok(()));
    assert_eq!(
        s.request(sup, TerminateChild("b".into())).unwrap(),
        Err(ChildError::NotFound)
    );
    assert_eq!(
        s.request(sup, StartChild(())).unwrap_err(),
        CallError::Unhandled
    );
    assert_eq!(
        entries(&log, ""),
        ["start a", "end a", "start a", "start b", "end b"]
    );
}

#[test]
fn a_dynamic_supervisor_starts_children_with_their_arguments_and_restarts_them_with_the_same() {
    let (mut s, _clock) = clocked();
    let log = log();
    let l = log.clone();
    let conn = Template::<Msg, Msg, u32, (), Local>::local("conn", move |ctx, n: u32| {
        l.borrow_mut().push(format!("start {n}"));
        let _guard = Guard(l.clone(), n.to_string());
        loop {
            if ctx.receive() == Msg::Crash {
                panic!("conn {n}");
            }
        }
    });
    let pool = DynamicSupervisor::new("pool", DynamicSpec::new(&conn))
        .intensity(5, Duration::from_secs(5))
        .template()
        .unwrap();
    let h = s.spawn(&pool, ()).unwrap();
    s.run_until_idle();
    let pool = h.pid();
    assert_eq!(running(&mut s, pool), []);
    let one = s.request(pool, StartChild(1u32)).unwrap().unwrap();
    // From a process too.
    let starter =
        Template::<Msg, Msg, (), Result<Pid, ChildError>>::new("starter", move |ctx, ()| {
            ctx.request(pool, StartChild(2u32), None).unwrap()
        });
    let st = s.spawn(&starter, ()).unwrap();
    s.run_until_idle();
    let two = s.result(&st).unwrap().unwrap().unwrap();
    let which = s.request(pool, WhichChildren).unwrap();
    assert_eq!(which.len(), 2);
    assert!(which.iter().all(|c| c.id.is_none()));
    // A wrong argument type is refused.
    assert_eq!(s.request(pool, StartChild("x")), Err(CallError::Unhandled));
    // Ids are for static supervisors.
    assert_eq!(
        s.request(pool, TerminateChild(ChildRef::Id("x".into())))
            .unwrap(),
        Err(ChildError::WrongKind)
    );
    s.send(one, Msg::Crash).unwrap();
    s.run_until_idle();
    assert_eq!(entries(&log, "start"), ["start 1", "start 2", "start 1"]);
    assert_eq!(s.request(pool, TerminateChild(two.into())).unwrap(), Ok(()));
    assert_eq!(
        counts(&mut s, pool),
        ChildCounts {
            specs: 1,
            active: 1,
            supervisors: 0,
            workers: 1,
            restarts: 1
        }
    );
    s.request(pool, StartChild(3u32)).unwrap().unwrap();
    s.exit_signal(pool, Reason::Shutdown(None));
    s.run_until_idle();
    assert_eq!(s.result(&h), Some(Err(ExitError::Shutdown(None))));
    assert_eq!(s.live(), 0);
    assert_eq!(entries(&log, "end"), ["end 1", "end 2", "end 1", "end 3"]);
}

#[test]
fn stop_from_a_process_waits_for_the_supervisor_and_its_children() {
    let (mut s, _clock) = clocked();
    let log = log();
    let sup = Supervisor::new("sup")
        .child(ChildSpec::new("a", &worker("a", &log), ()))
        .template()
        .unwrap();
    let l = log.clone();
    let owner = Template::<Msg, Msg, (), Reason, Local>::local("owner", move |ctx, ()| {
        let sup = ctx.spawn_monitor(&sup, ()).unwrap().0;
        ctx.yield_now();
        let reason = chronoflow::otp::supervisor::stop(ctx, sup, Reason::Shutdown(None));
        l.borrow_mut().push("stopped".into());
        reason
    });
    let o = s.spawn(&owner, ()).unwrap();
    s.run_until_idle();
    assert_eq!(s.result(&o), Some(Ok(Reason::Shutdown(None))));
    assert_eq!(entries(&log, ""), ["start a", "end a", "stopped"]);
}

#[test]
fn user_messages_to_a_supervisor_are_dropped() {
    let (mut s, _clock) = clocked();
    let log = log();
    let sup = Supervisor::new("sup")
        .child(ChildSpec::new("a", &worker("a", &log), ()))
        .template()
        .unwrap();
    let h = s.spawn(&sup, ()).unwrap();
    s.send(h.pid(), Msg::Crash).unwrap();
    s.run_until_idle();
    assert_eq!(s.result(&h), None);
    assert_eq!(counts(&mut s, h.pid()).active, 1);
}

#[cfg(feature = "stackless")]
#[test]
fn a_stackless_child_is_supervised_like_another() {
    use chronoflow::StacklessCtx;
    use chronoflow::stackless::receive;
    let (mut s, _clock) = clocked();
    let sl = chronoflow::StacklessTemplate::new("sl", |cx: StacklessCtx<Msg>, ()| {
        #[coroutine]
        move || {
            loop {
                if receive!(cx) == Msg::Crash {
                    panic!("stackless crash");
                }
            }
        }
    });
    let sup = Supervisor::new("sup")
        .child(ChildSpec::new("sl", &sl, ()).name("sl"))
        .template()
        .unwrap();
    let h = s.spawn(&sup, ()).unwrap();
    s.run_until_idle();
    let first = s.whereis("sl").unwrap();
    s.send_named("sl", Msg::Crash).unwrap();
    s.run_until_idle();
    let second = s.whereis("sl").unwrap();
    assert_ne!(first, second);
    assert_eq!(counts(&mut s, h.pid()).restarts, 1);
    s.exit_signal(h.pid(), Reason::Shutdown(None));
    s.run_until_idle();
    assert_eq!(s.live(), 0);
}

#[test]
fn restart_and_give_up_are_signals_of_the_supervisor() {
    use chronoflow::otp::supervisor::{ChildSpec, Supervisor};
    use chronoflow::{SignalData, SimpleScheduler};
    let crasher = chronoflow::Template::<u64, u64, (), ()>::new("crasher", |ctx, ()| {
        ctx.receive();
        panic!("crash");
    });
    let sup = Supervisor::new("sup")
        .child(ChildSpec::new("c", &crasher, ()).name("c"))
        .template()
        .unwrap();
    let mut sched = SimpleScheduler::new();
    sched.record();
    let s = sched.spawn(&sup, ()).unwrap();
    sched.run_until_idle();
    let first = sched.whereis("c").unwrap();
    sched.send(first, 0).unwrap();
    sched.run_until_idle();
    let second = sched.whereis("c").unwrap();
    sched.send(second, 0).unwrap();
    sched.run_until_idle();
    let of_sup: Vec<_> = sched
        .pull()
        .into_iter()
        .filter(|x| x.pid == s.pid())
        .map(|x| x.data)
        .filter(|d| matches!(d, SignalData::Restart { .. } | SignalData::GiveUp { .. }))
        .collect();
    assert_eq!(
        of_sup,
        vec![
            SignalData::Restart { child: first },
            SignalData::GiveUp { child: second }
        ]
    );
}

/// A dynamic supervisor with `max_children` refuses a start beyond it
/// (Elixir's `{:error, :max_children}`), and takes one again once a child is
/// gone.
#[test]
fn a_dynamic_supervisor_starts_at_most_max_children() {
    let mut s = SimpleScheduler::<Msg>::new();
    let conn = Template::<Msg, Msg, u32, ()>::new("conn", |ctx, _n: u32| {
        ctx.receive();
    });
    let pool = DynamicSupervisor::new("pool", DynamicSpec::new(&conn))
        .max_children(2)
        .template()
        .unwrap();
    let pool = s.spawn(&pool, ()).unwrap().pid();
    s.run_until_idle();
    let one = s.request(pool, StartChild(1u32)).unwrap().unwrap();
    s.request(pool, StartChild(2u32)).unwrap().unwrap();
    assert_eq!(
        s.request(pool, StartChild(3u32)).unwrap(),
        Err(ChildError::MaxChildren)
    );
    assert_eq!(s.request(pool, WhichChildren).unwrap().len(), 2);
    s.request(pool, TerminateChild(ChildRef::Pid(one)))
        .unwrap()
        .unwrap();
    assert!(s.request(pool, StartChild(4u32)).unwrap().is_ok());
    assert_eq!(s.request(pool, CountChildren).unwrap().active, 2);
}

/// A dynamic supervisor with a restart intensity per child (libeam's
/// `maxRestarts` within `periodMs`): a child that crashes more often than
/// its own budget is stopped for good, while the supervisor (whose own
/// intensity, 1 within 5 s, these restarts do not spend) and its other
/// children go on; a child's window slides on its own.
#[test]
fn a_child_beyond_its_own_restart_intensity_is_stopped_for_good() {
    let (mut s, clock) = clocked();
    let conn = Template::<Msg, Msg, u32, ()>::new("conn", |ctx, _n: u32| {
        if ctx.receive() == Msg::Crash {
            panic!("crash");
        }
    });
    let pool = DynamicSupervisor::new("pool", DynamicSpec::new(&conn))
        .child_intensity(2, Duration::from_secs(10))
        .template()
        .unwrap();
    let pool = s.spawn(&pool, ()).unwrap().pid();
    s.run_until_idle();
    s.record();
    let flaky = s.request(pool, StartChild(1u32)).unwrap().unwrap();
    let steady = s.request(pool, StartChild(2u32)).unwrap().unwrap();
    let running = |s: &mut SimpleScheduler<Msg>| -> Vec<Pid> {
        s.request(pool, WhichChildren)
            .unwrap()
            .into_iter()
            .filter_map(|c| match c.child {
                ChildState::Running(pid) => Some(pid),
                _ => None,
            })
            .collect()
    };
    // Two restarts of `flaky` within 10 s: within its budget.
    let mut current = flaky;
    for _ in 0..2 {
        s.send(current, Msg::Crash).unwrap();
        s.run_until_idle();
        let now = running(&mut s);
        assert_eq!(now.len(), 2, "restarted: {now:?}");
        current = *now.iter().find(|&&p| p != steady).unwrap();
        clock.advance(Duration::from_secs(1));
    }
    // The third within 10 s: stopped for good; the pool and `steady` live on.
    s.send(current, Msg::Crash).unwrap();
    s.run_until_idle();
    assert_eq!(running(&mut s), [steady]);
    assert_eq!(s.request(pool, CountChildren).unwrap().active, 1);
    let gave_up: Vec<Pid> = s
        .pull()
        .into_iter()
        .filter_map(|sig| match sig.data {
            chronoflow::SignalData::GiveUp { child } if sig.pid == pool => Some(child),
            _ => None,
        })
        .collect();
    assert_eq!(gave_up, [current]);
    // `steady` has a budget of its own, its window sliding: a crash every
    // 6 s never has more than two within 10 s.
    let mut steady = steady;
    for _ in 0..4 {
        s.send(steady, Msg::Crash).unwrap();
        s.run_until_idle();
        let now = running(&mut s);
        assert_eq!(now.len(), 1, "restarted: {now:?}");
        steady = now[0];
        clock.advance(Duration::from_secs(6));
    }
    assert!(
        s.status(pool)
            .is_some_and(|st| st != chronoflow::Status::Stopped)
    );
}
