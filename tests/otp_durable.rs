//! The OTP toolkit under a durable scheduler: links, exit signals, monitors,
//! mail, timers, names, groups and supervisors are journaled, so that a run
//! that crashes (at any pass, or at any byte of its journal) and is reopened
//! ends as the run that did not crash.

use std::path::Path;
use std::time::Duration;

use chronoflow::journal::HEADER_LEN;
use chronoflow::{Ctx, DurableScheduler, MailRef, ManualClock, Pid, Template, Time};
use serde::{Deserialize, Serialize};
use tempfile::TempDir;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Msg {
    Crash,
    Ping,
    Pong(Pid),
    N(u64),
}

type Log = Vec<String>;

/// A worker: fails on `Crash`; on `Ping`, answers `root` by name and ends.
fn worker() -> Template<Msg, Msg, (), ()> {
    Template::new("worker", |ctx: &mut Ctx<Msg>, ()| {
        loop {
            match ctx.receive() {
                Msg::Crash => panic!("crash"),
                Msg::Ping => {
                    let me = ctx.pid();
                    ctx.send_named("root", Msg::Pong(me)).unwrap();
                    return;
                }
                _ => {}
            }
        }
    })
}

/// The story: every call of the toolkit, each awaited by a selective receive,
/// so that the log is the same whatever the interleaving.
fn root() -> Template<Msg, Msg, (), Log> {
    let worker = worker();
    Template::new("root", move |ctx: &mut Ctx<Msg>, ()| {
        let mut log = Log::new();
        let me = ctx.pid();
        ctx.trap_exit(true);
        ctx.register("root", me).unwrap();
        log.push(format!("{:?}", ctx.register("root", me)));
        let w1 = ctx.spawn_link(&worker, ()).unwrap();
        let (w2, m2) = ctx.spawn_monitor(&worker, ()).unwrap();
        log.push(format!("links {:?}", ctx.links()));
        ctx.send_to(w1, Msg::Crash);
        let exit = ctx.select_mail(|m| matches!(m, MailRef::Exit { from, .. } if from == w1));
        log.push(format!("{exit:?}"));
        let m1 = ctx.monitor(w1);
        let down = ctx.select_mail(|m| matches!(m, MailRef::Down { monitor, .. } if monitor == m1));
        log.push(format!("{down:?}"));
        log.push(format!("alive {} {}", ctx.is_alive(w1), ctx.is_alive(w2)));
        ctx.join_group("g", w2);
        log.push(format!("members {:?}", ctx.members("g")));
        ctx.send_after(Duration::ZERO, w2, Msg::Ping);
        let pong = ctx.select_mail(|m| matches!(m, MailRef::Msg(Msg::Pong(_))));
        log.push(format!("{pong:?}"));
        let down = ctx.select_mail(|m| matches!(m, MailRef::Down { monitor, .. } if monitor == m2));
        log.push(format!("{down:?}"));
        log.push(format!("members {:?}", ctx.members("g")));
        let t = ctx.start_timer(Duration::ZERO);
        let fired = ctx.select_mail(|m| matches!(m, MailRef::Timeout(x) if x == t));
        log.push(format!("{fired:?}"));
        let later = ctx.start_timer(Duration::from_secs(3600));
        log.push(format!("cancelled {}", ctx.cancel_timer(later).is_some()));
        log.push(format!("none {:?}", ctx.try_receive_mail()));
        let n = ctx.monitor(Pid(999));
        let noproc =
            ctx.select_mail(|m| matches!(m, MailRef::Down { monitor, .. } if monitor == n));
        log.push(format!("{noproc:?}"));
        ctx.send_after(Duration::ZERO, me, Msg::N(7));
        log.push(format!(
            "{:?}",
            ctx.receive_mail_timeout(Duration::from_secs(1))
        ));
        log.push(format!("whereis {:?}", ctx.whereis("root") == Some(me)));
        ctx.unregister("root");
        log
    })
}

fn open(dir: &Path) -> DurableScheduler<Msg> {
    let (sched, _) = DurableScheduler::builder()
        .register(&root())
        .register(&worker())
        .clock(ManualClock::new(Time::default()))
        .open(dir)
        .unwrap();
    sched
}

/// Runs the story to its end, reopening the journal after every pass if
/// `crash`: the root's log.
fn story(dir: &Path, crash: bool) -> Log {
    let mut sched = open(dir);
    let h = sched.spawn(&root(), ()).unwrap().pid();
    for _ in 0..200 {
        let pass = sched.update().unwrap();
        if let Some(done) = sched.result_of::<Log>(h) {
            assert!(sched.violations().is_empty(), "{:?}", sched.violations());
            return done.unwrap();
        }
        if crash {
            drop(sched);
            sched = open(dir);
        } else if pass.is_idle() {
            panic!("idle before the end: {:?}", sched.status(h));
        }
    }
    panic!("no end: {:?} {:?}", sched.status(h), sched.violations());
}

#[test]
fn the_toolkit_replays_after_a_crash_at_every_pass() {
    let plain = story(TempDir::new().unwrap().path(), false);
    assert_eq!(plain.len(), 15, "{plain:#?}");
    assert!(plain[2].contains("Failed(\"crash\")"), "{plain:#?}");
    let crashed = story(TempDir::new().unwrap().path(), true);
    assert_eq!(crashed, plain);
}

/// Copies journal directory `from` into `to`, its last segment cut at `len`
/// bytes (a crash that tore the tail there).
fn copy_cut(from: &Path, to: &Path, len: u64) {
    let mut segments: Vec<_> = std::fs::read_dir(from)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    segments.sort();
    for path in &segments {
        std::fs::copy(path, to.join(path.file_name().unwrap())).unwrap();
    }
    let last = segments
        .iter()
        .rfind(|p| p.extension().is_some_and(|e| e == "cfj"))
        .unwrap();
    let cut = to.join(last.file_name().unwrap());
    let file = std::fs::OpenOptions::new().write(true).open(cut).unwrap();
    file.set_len(len).unwrap();
}

#[test]
fn the_toolkit_replays_after_a_crash_at_any_byte_of_its_journal() {
    let full = TempDir::new().unwrap();
    let plain = story(full.path(), false);
    let last = {
        let mut segments: Vec<_> = std::fs::read_dir(full.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "cfj"))
            .collect();
        segments.sort();
        segments.pop().unwrap()
    };
    let len = std::fs::metadata(&last).unwrap().len();
    let step = if cfg!(miri) { 997 } else { 5 };
    // (A segment's header is written whole before any record.)
    for cut in (HEADER_LEN..len).step_by(step) {
        let dir = TempDir::new().unwrap();
        copy_cut(full.path(), dir.path(), cut);
        let mut sched = open(dir.path());
        if sched.status(Pid(0)).is_none() && sched.result_of::<Log>(Pid(0)).is_none() {
            // Cut before the root's creation: the owner spawns it again.
            sched.spawn(&root(), ()).unwrap();
        }
        sched.run_until_idle().unwrap();
        assert!(
            sched.violations().is_empty(),
            "cut at {cut}: {:?}",
            sched.violations()
        );
        let log = sched.result_of::<Log>(Pid(0));
        assert_eq!(log, Some(Ok(plain.clone())), "cut at {cut} of {len}");
    }
}
