//! A `DurableScheduler` does what a `SimpleScheduler` does: it runs blocking
//! until timers and futures are done, takes a budget, and records signals; and
//! after a reopening, it can re-emit the signals of replayed processes, marked.

use std::time::Duration;

use chronoflow::{Ctx, DurableScheduler, Pid, SignalData, Template, Value};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Msg {
    Job(u64),
    Done(u64),
}

/// Sleeps, then acts, twice.
fn sleeper() -> Template<Msg, Msg, (), u64> {
    Template::new("sleeper", |ctx: &mut Ctx<Msg>, _: ()| {
        let mut total = 0;
        for i in 1..=2 {
            ctx.sleep(Duration::from_millis(5));
            total += ctx.durable_effect(move || i);
        }
        total
    })
}

#[test]
fn run_blocking_waits_for_timers_and_commits_every_pass() {
    let dir = tempfile::tempdir().unwrap();
    let t = sleeper();
    {
        let (mut sched, _) = DurableScheduler::builder()
            .register(&t)
            .open(dir.path())
            .unwrap();
        let h = sched.spawn(&t, ()).unwrap();
        sched.run_blocking().unwrap();
        assert_eq!(sched.result(&h), Some(Ok(3)));
    }
    // Every pass was committed: its result was taken, so nothing is left to run.
    let (sched, recovery) = DurableScheduler::<Msg>::builder()
        .register(&t)
        .open(dir.path())
        .unwrap();
    assert!(recovery.replayed.is_empty() && recovery.fast_forwarded.is_empty());
    assert_eq!(sched.live(), 0);
}

/// Tries to take a message three times.
fn prober() -> Template<Msg, Msg, (), u64> {
    Template::new("prober", |ctx: &mut Ctx<Msg>, _: ()| {
        (0..3).filter(|_| ctx.try_receive().is_some()).count() as u64
    })
}

#[test]
fn a_budget_bounds_the_calls_of_a_turn() {
    let dir = tempfile::tempdir().unwrap();
    let t = prober();
    let (mut sched, _) = DurableScheduler::builder()
        .register(&t)
        .open(dir.path())
        .unwrap();
    sched.set_budget(1);
    let h = sched.spawn(&t, ()).unwrap();
    let turns = sched.run_until_idle().unwrap();
    assert!(
        turns >= 3,
        "{turns} turns for three calls with a budget of one"
    );
    assert_eq!(sched.result(&h), Some(Ok(0)));
}

/// For each job: acts on it (doubles it), then reports to `to`.
fn doubler() -> Template<Msg, Msg, (Pid, u64), ()> {
    Template::new("doubler", |ctx: &mut Ctx<Msg>, (to, n): (Pid, u64)| {
        for _ in 0..n {
            let Msg::Job(x) = ctx.receive() else {
                continue;
            };
            let y = ctx.durable_effect(move || x * 2);
            ctx.send_to(to, Msg::Done(y));
        }
    })
}

/// Takes `n` reports.
fn tally() -> Template<Msg, Msg, u64, u64> {
    Template::new("tally", |ctx: &mut Ctx<Msg>, n: u64| {
        (0..n)
            .map(|_| match ctx.receive() {
                Msg::Done(y) => y,
                Msg::Job(_) => 0,
            })
            .sum()
    })
}

/// The doubler's signals, (kind, replayed).
fn doubler_signals(sched: &mut DurableScheduler<Msg>) -> Vec<(SignalData<Msg>, bool)> {
    sched
        .pull()
        .into_iter()
        .filter(|s| s.pid == Pid(1))
        .map(|s| (s.data, s.replayed))
        .collect()
}

/// The first run: the doubler does its first job, signals recorded.
fn first_run(dir: &std::path::Path) -> Vec<(SignalData<Msg>, bool)> {
    let (mut sched, _) = DurableScheduler::builder()
        .register(&doubler())
        .register(&tally())
        .open(dir)
        .unwrap();
    sched.record();
    let tally = sched.spawn(&tally(), 2).unwrap().pid();
    let doubler = sched.spawn(&doubler(), (tally, 2)).unwrap().pid();
    assert_eq!(doubler, Pid(1));
    sched.send(doubler, Msg::Job(5)).unwrap();
    sched.run_until_idle().unwrap();
    doubler_signals(&mut sched)
}

fn reopen(dir: &std::path::Path, replay_signals: bool) -> DurableScheduler<Msg> {
    let (mut sched, _) = DurableScheduler::builder()
        .register(&doubler())
        .register(&tally())
        .replay_signals(replay_signals)
        .open(dir)
        .unwrap();
    sched.record();
    sched
}

#[test]
fn replayed_processes_re_emit_their_signals_marked_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let before = first_run(dir.path());
    let use_10 = SignalData::Use {
        result: Value::encode(&10u64),
    };
    let send_10 = SignalData::Send {
        to: Some(Pid(0)),
        msg: Msg::Done(10),
    };
    assert_eq!(
        before,
        [
            (SignalData::Start, false),
            (use_10.clone(), false),
            (send_10.clone(), false)
        ]
    );

    let mut sched = reopen(dir.path(), true);
    sched.send(Pid(1), Msg::Job(7)).unwrap();
    sched.run_until_idle().unwrap();
    let after = doubler_signals(&mut sched);
    // What it did before the crash, again, marked; then the new job, live.
    assert_eq!(
        after,
        [
            (use_10, true),
            (send_10, true),
            (
                SignalData::Use {
                    result: Value::encode(&14u64)
                },
                false
            ),
            (
                SignalData::Send {
                    to: Some(Pid(0)),
                    msg: Msg::Done(14)
                },
                false
            ),
            (
                SignalData::Stop {
                    exit: Ok(Value::encode(&()))
                },
                false
            ),
        ]
    );
    assert_eq!(sched.result_of::<u64>(Pid(0)), Some(Ok(24)));
}

#[test]
fn replayed_signals_are_not_recorded_by_default() {
    let dir = tempfile::tempdir().unwrap();
    first_run(dir.path());
    let mut sched = reopen(dir.path(), false);
    sched.send(Pid(1), Msg::Job(7)).unwrap();
    sched.run_until_idle().unwrap();
    let after = doubler_signals(&mut sched);
    assert!(after.iter().all(|(_, replayed)| !replayed), "{after:?}");
    assert_eq!(
        after.first().map(|(kind, _)| kind),
        Some(&SignalData::Use {
            result: Value::encode(&14u64)
        })
    );
}
