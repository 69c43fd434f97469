//! Panics of user code that the kernel runs (a result's `Debug`, a message's
//! `Drop` or `Clone`, a signal sink) fail the process concerned or are reported to
//! the caller; the scheduler stays consistent: no process is left `Running`, and
//! the others run on.

mod support;

use std::panic::{AssertUnwindSafe, catch_unwind};

use chronoflow::{Ctx, ExitError, SimpleScheduler, Status, Template};
use support::isolated;

/// A result whose `Debug` (how a signal shows it) panics.
struct BadResult;
impl std::fmt::Debug for BadResult {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        panic!("cannot show")
    }
}

/// A message whose `Drop` panics (once) when it holds `true`.
#[derive(Debug, Clone)]
struct Bomb(bool);
impl Drop for Bomb {
    fn drop(&mut self) {
        if self.0 && !std::thread::panicking() {
            self.0 = false;
            panic!("message drop");
        }
    }
}

fn echo() -> Template<Bomb, Bomb, (), u32> {
    Template::new("echo", |ctx: &mut Ctx<Bomb>, _: ()| {
        let Bomb(b) = ctx.select(|m| !m.0);
        b as u32 + 5
    })
}

/// A stackful result whose `Debug` panics while signals are recorded: the
/// panic ran in the coroutine's end, outside the body's catch, and escaped the
/// coroutine. Now the process fails and the scheduler runs on.
#[test]
fn a_result_that_cannot_be_recorded_fails_its_process() {
    isolated("a_result_that_cannot_be_recorded_fails_its_process", || {
        let bad = Template::new("bad", |_: &mut Ctx<Bomb>, _: ()| BadResult);
        let mut sched = SimpleScheduler::new();
        sched.record();
        let b = sched.spawn(&bad, ()).unwrap();
        let e = sched.spawn(&echo(), ()).unwrap();
        sched.send(e.pid(), Bomb(false)).unwrap();
        let run = catch_unwind(AssertUnwindSafe(|| sched.run_until_idle()));
        assert!(run.is_ok(), "the panic escaped the scheduler");
        match sched.result(&b) {
            Some(Err(ExitError::Failed(m))) => assert!(m.contains("cannot show"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(sched.result(&e), Some(Ok(5)));
        assert_eq!(sched.live(), 0);
    });
}

/// A message whose `Drop` panics, left in the inbox of a top-level process that
/// ends: freeing its record panicked inside the kernel's end of the process. Now
/// the panic is reported to the caller of `run_until_idle` once the pass is done;
/// the process is stopped, and the other one ran to completion.
#[test]
fn a_message_whose_drop_panics_in_a_freed_inbox_is_reported() {
    isolated(
        "a_message_whose_drop_panics_in_a_freed_inbox_is_reported",
        || {
            let mut sched = SimpleScheduler::new();
            let e = sched.spawn(&echo(), ()).unwrap();
            let other = sched.spawn(&echo(), ()).unwrap();
            sched.send(e.pid(), Bomb(true)).unwrap();
            sched.send(e.pid(), Bomb(false)).unwrap();
            sched.send(other.pid(), Bomb(false)).unwrap();
            let run = catch_unwind(AssertUnwindSafe(|| sched.run_until_idle()));
            let payload = run.expect_err("the destructor's panic is reported");
            assert_eq!(support::panic_text(&*payload), "message drop");
            assert_ne!(sched.status(e.pid()), Some(Status::Running));
            assert_eq!(sched.result(&e), Some(Ok(5)));
            assert_eq!(sched.result(&other), Some(Ok(5)));
            assert_eq!(sched.live(), 0);
            sched.run_until_idle();
        },
    );
}

/// A message whose `Drop` always panics, even while the thread unwinds.
#[derive(Debug)]
struct Grenade;
impl Drop for Grenade {
    fn drop(&mut self) {
        panic!("grenade");
    }
}

/// Two messages whose `Drop` panics, left in the inbox of a process that
/// ends: the inbox was dropped whole, so the second panicked while the first
/// unwound, and the program aborted. Now each is dropped on its own: the
/// first panic is reported, the process ends, the others run on.
#[test]
fn two_messages_whose_drops_panic_in_a_freed_inbox_are_reported_without_an_abort() {
    isolated(
        "two_messages_whose_drops_panic_in_a_freed_inbox_are_reported_without_an_abort",
        || {
            let ends = Template::new("ends", |_: &mut Ctx<Grenade>, _: ()| 1u32);
            let waits = Template::new("waits", |ctx: &mut Ctx<Grenade>, _: ()| {
                std::mem::forget(ctx.receive());
                2u32
            });
            let mut sched = SimpleScheduler::new();
            let e = sched.spawn(&ends, ()).unwrap();
            let w = sched.spawn(&waits, ()).unwrap();
            sched.send(e.pid(), Grenade).unwrap();
            sched.send(e.pid(), Grenade).unwrap();
            sched.send(e.pid(), Grenade).unwrap();
            sched.send(w.pid(), Grenade).unwrap();
            let run = catch_unwind(AssertUnwindSafe(|| sched.run_until_idle()));
            let payload = run.expect_err("the first destructor's panic is reported");
            assert_eq!(support::panic_text(&*payload), "grenade");
            assert_eq!(sched.result(&e), Some(Ok(1)));
            sched.run_until_idle();
            assert_eq!(sched.result(&w), Some(Ok(2)));
            assert_eq!(sched.live(), 0);
        },
    );
}

/// A signal sink that panics: the panic unwound through the kernel in the middle
/// of ending a process. Now it is reported after the pass, and the processes ended.
#[test]
fn a_panicking_sink_is_reported_and_the_scheduler_stays_consistent() {
    isolated(
        "a_panicking_sink_is_reported_and_the_scheduler_stays_consistent",
        || {
            let mut sched = SimpleScheduler::new();
            sched.set_sink(|s: chronoflow::Signal<Bomb>| {
                if matches!(s.data, chronoflow::SignalData::Stop { .. }) {
                    panic!("sink");
                }
            });
            let e = sched.spawn(&echo(), ()).unwrap();
            let other = sched.spawn(&echo(), ()).unwrap();
            sched.send(e.pid(), Bomb(false)).unwrap();
            sched.send(other.pid(), Bomb(false)).unwrap();
            let run = catch_unwind(AssertUnwindSafe(|| sched.run_until_idle()));
            assert!(run.is_err(), "the sink's panic is reported");
            assert_ne!(sched.status(e.pid()), Some(Status::Running));
            assert_eq!(sched.result(&e), Some(Ok(5)));
            assert_eq!(sched.result(&other), Some(Ok(5)));
            assert_eq!(sched.live(), 0);
        },
    );
}

/// A message whose `Clone` panics when a child copies its parent's inbox: the child
/// was installed before the copy, and stayed in the table, an orphan. Now the spawn
/// fails the parent and leaves nothing behind.
#[test]
fn a_clone_that_panics_mid_spawn_leaves_no_orphan() {
    #[derive(Debug)]
    struct NoClone;
    impl Clone for NoClone {
        fn clone(&self) -> Self {
            panic!("no clone")
        }
    }
    isolated("a_clone_that_panics_mid_spawn_leaves_no_orphan", || {
        let child = Template::new("child", |ctx: &mut Ctx<NoClone>, _: ()| {
            let _ = ctx.receive();
            1u32
        });
        let parent = Template::new("parent", move |ctx: &mut Ctx<NoClone>, _: ()| {
            let c = ctx.spawn(&child, ()).unwrap();
            ctx.join(c).unwrap()
        });
        let mut sched = SimpleScheduler::new();
        let p = sched.create(&parent, ()).unwrap();
        sched.send(p.pid(), NoClone).unwrap();
        sched.start(p.pid()).unwrap();
        sched.run_until_idle();
        match sched.result(&p) {
            Some(Err(ExitError::Failed(m))) => assert!(m.contains("no clone"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(sched.live(), 0);
    });
}
