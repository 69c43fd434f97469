//! The OTP toolkit's state outlives the journal segments that recorded it:
//! links, monitors, names, groups and timers made at the start of a long run
//! are still there after its old segments went and the scheduler reopened.

use std::path::Path;
use std::time::Duration;

use chronoflow::journal::JournalOptions;
use chronoflow::{
    Ctx, DurableScheduler, Mail, ManualClock, MonitorRef, Pid, Reason, Step, Template, Time,
    TimerRef, Transition,
};

#[path = "support/segments.rs"]
mod segments;
use segments::segments;

const STOP: u64 = u64::MAX;

/// What the keeper holds across its transitions.
type Held = (Pid, Option<(MonitorRef, TimerRef)>);

/// Traps exits, links and monitors `peer`, takes a name, joins a group and
/// arms a timer; then takes one message per transition, until `STOP`: the
/// mail that came meanwhile.
fn keeper() -> Template<u64, u64, Held, Vec<String>> {
    Template::stepping("keeper", |ctx: &mut Ctx<u64>, (peer, held): Held| {
        let Some((monitor, timer)) = held else {
            let me = ctx.pid();
            ctx.trap_exit(true);
            ctx.link(peer);
            let monitor = ctx.monitor(peer);
            ctx.register("keeper", me).unwrap();
            ctx.join_group("keepers", me);
            let timer = ctx.start_timer(Duration::from_secs(3600));
            return Step::Transition(Transition::to(&keeper(), (peer, Some((monitor, timer)))));
        };
        if ctx.receive() != STOP {
            return Step::Transition(Transition::to(&keeper(), (peer, held)));
        }
        let mut log = Vec::new();
        for _ in 0..3 {
            let mail = ctx.receive_mail();
            log.push(match mail {
                Mail::Exit { from, reason } => format!("exit {} {reason}", from == peer),
                Mail::Down {
                    monitor: m, reason, ..
                } => format!("down {} {reason}", m == monitor),
                Mail::Timeout(t) => format!("timeout {}", t == timer),
                other => format!("{other:?}"),
            });
        }
        Step::Done(log)
    })
}

/// Takes one message per transition, forever.
fn peer() -> Template<u64, u64, (), ()> {
    Template::stepping("peer", |ctx: &mut Ctx<u64>, ()| {
        ctx.receive();
        Step::Transition(Transition::to(&peer(), ()))
    })
}

fn open(dir: &Path, clock: &ManualClock) -> DurableScheduler<u64> {
    DurableScheduler::builder()
        .register(&keeper())
        .register(&peer())
        .clock(clock.clone())
        .options(JournalOptions::default().segment_size(4096))
        .open(dir)
        .unwrap()
        .0
}

#[test]
fn the_toolkits_state_survives_the_release_of_the_segments_that_made_it() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Time::default());
    let mut sched = open(dir.path(), &clock);
    let p = sched.spawn(&peer(), ()).unwrap().pid();
    let k = sched.spawn(&keeper(), (p, None)).unwrap().pid();
    sched.run_until_idle().unwrap();
    for i in 0..1_000 {
        sched.send(k, i).unwrap();
        sched.send(p, i).unwrap();
        sched.run_until_idle().unwrap();
    }
    let first = segments(dir.path())[0].clone();
    assert!(
        !first.ends_with("00000000000000000000.cfj"),
        "the first segments went: {first:?}"
    );
    drop(sched);

    let mut sched = open(dir.path(), &clock);
    assert_eq!(sched.whereis("keeper"), Some(k));
    assert_eq!(sched.members("keepers"), [k]);
    assert_eq!(sched.links(k), [p]);
    assert_eq!(sched.links(p), [k]);
    sched.exit_signal(p, Reason::Kill);
    clock.advance(Duration::from_secs(3600));
    sched.send(k, STOP).unwrap();
    sched.run_until_idle().unwrap();
    assert!(sched.violations().is_empty(), "{:?}", sched.violations());
    assert_eq!(
        sched.result_of::<Vec<String>>(k),
        Some(Ok(vec![
            "down true killed: killed".to_string(),
            "exit true killed: killed".to_string(),
            "timeout true".to_string(),
        ]))
    );
}
