//! Stories for a durable scheduler: a deterministic program whose first
//! process (`Pid(0)`) returns a log, run without a crash, reopened after every
//! few passes, and cut at every few bytes of its journal (a torn tail); each
//! must end with the same log.

#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use chronoflow::journal::HEADER_LEN;
use chronoflow::{Ctx, DurableScheduler, ExitError, MailRef, Pid};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tempfile::TempDir;

#[path = "segments.rs"]
mod segments;
use segments::segments;

/// What a story's first process returns.
pub type Log = Vec<String>;

/// Opens a story's journal (registering its templates).
pub type Open<M> = fn(&Path) -> DurableScheduler<M>;

/// Starts a story: spawns its first process.
pub type Start<M> = fn(&mut DurableScheduler<M>);

/// Runs a story to its end, reopening the journal after every `every`-th
/// pass (never with 0): its log.
pub fn story_every<M>(dir: &Path, open: Open<M>, start: Start<M>, every: usize) -> Log
where
    M: Serialize + DeserializeOwned + Clone + 'static,
{
    let crash_after = |n: usize| every > 0 && n % every == every - 1;
    let mut sched = open(dir);
    start(&mut sched);
    let h = Pid(0);
    for n in 0..1000 {
        let pass = sched.update().unwrap();
        if let Some(done) = sched.result_of::<Log>(h) {
            assert!(sched.violations().is_empty(), "{:?}", sched.violations());
            return done.unwrap();
        }
        if crash_after(n) {
            drop(sched);
            sched = open(dir);
        } else if pass.is_idle() {
            panic!("idle before the end: {:?}", sched.status(h));
        }
    }
    panic!(
        "no end after 1000 passes: {:?} {:?}",
        sched.status(h),
        sched.violations()
    );
}

/// Copies journal directory `from` into `to`, its last segment cut at `len`
/// bytes (a crash that tore the tail there).
pub fn copy_cut(from: &Path, to: &Path, len: u64) {
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
    }
    let last = segments(from).pop().unwrap();
    let cut = to.join(last.file_name().unwrap());
    let file = std::fs::OpenOptions::new().write(true).open(cut).unwrap();
    file.set_len(len).unwrap();
}

/// Cuts the journal of a whole run in `full` (whose log was `plain`) at every
/// `step`-th byte of its last segment, reopens each (starting the story again
/// if the cut came before its first process), runs it to its end: each must
/// end with `plain`. A failure lists each distinct wrong end, with the first
/// cut that gave it.
pub fn every_cut<M>(full: &Path, plain: &Log, open: Open<M>, start: Start<M>, step: usize)
where
    M: Serialize + DeserializeOwned + Clone + 'static,
{
    let last = segments(full).pop().unwrap();
    let len = std::fs::metadata(&last).unwrap().len();
    let step = if cfg!(miri) { 997 } else { step };
    let mut wrong: Vec<(u64, Option<Result<Log, ExitError>>)> = Vec::new();
    // (A segment's header is written whole before any record.)
    for cut in (HEADER_LEN..len).step_by(step) {
        let dir = TempDir::new().unwrap();
        copy_cut(full, dir.path(), cut);
        let mut sched = open(dir.path());
        if sched.status(Pid(0)).is_none() && sched.result_of::<Log>(Pid(0)).is_none() {
            start(&mut sched);
        }
        sched.run_until_idle().unwrap();
        assert!(
            sched.violations().is_empty(),
            "cut at {cut}: {:?}",
            sched.violations()
        );
        let log = sched.result_of::<Log>(Pid(0));
        if log != Some(Ok(plain.clone())) && !wrong.iter().any(|(_, l)| *l == log) {
            wrong.push((cut, log));
        }
    }
    assert!(
        wrong.is_empty(),
        "cuts of {len} bytes end otherwise than {plain:?}: {wrong:?}"
    );
}

/// Runs a story plain, reopened after every `every`-th pass, and cut at
/// every `step`-th byte: all end alike. The plain run's log.
pub fn check_story_every<M>(open: Open<M>, start: Start<M>, step: usize, every: usize) -> Log
where
    M: Serialize + DeserializeOwned + Clone + 'static,
{
    quiet();
    let full = TempDir::new().unwrap();
    let plain = story_every(full.path(), open, start, 0);
    let crashed = story_every(TempDir::new().unwrap().path(), open, start, every);
    assert_eq!(crashed, plain, "crashed after every {every} passes");
    every_cut(full.path(), &plain, open, start, step);
    plain
}

/// Keeps the panics the stories make on purpose (`"crash"`) quiet.
pub fn quiet() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&"crash") {
                default(info);
            }
        }));
    });
}

/// The process registered as `name` once it is not `old`, waiting for it.
pub fn await_name<M: 'static>(ctx: &mut Ctx<M>, name: &str, old: Option<Pid>) -> Pid {
    loop {
        if let Some(pid) = ctx.whereis(name)
            && Some(pid) != old
        {
            return pid;
        }
        ctx.yield_now();
    }
}

/// Waits for `go` from a timer armed now (a pass boundary at least).
pub fn next_pass<M: Clone + 'static>(ctx: &mut Ctx<M>, go: M, is_go: fn(&M) -> bool) {
    let me = ctx.pid();
    ctx.send_after(Duration::ZERO, me, go);
    ctx.select_mail(|m| matches!(m, MailRef::Msg(m) if is_go(m)));
}
