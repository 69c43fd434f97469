#![cfg_attr(feature = "stackless", feature(coroutines))]
//! Panics in user code that the library calls outside a process's own code: a
//! message's `Drop` or `Clone`, a result's `Debug` or `Serialize` (signals are
//! recorded), a signal sink. What a user relies on (README: "A process's panic is
//! that process's failure, never the scheduler's"): afterwards the process is
//! stopped, never left `Running` forever with its engine gone; the scheduler is
//! consistent; other processes still run to completion; a spawn that panics leaves
//! no orphan child behind.
//!
//! One test per path, for both engines (tests/panics.rs checks how each kind of
//! panic is reported). `run_until_idle` may propagate a panic the kernel reports to
//! its caller: the tests catch it and check the state afterwards.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use serde::{Deserialize, Serialize};

#[cfg(feature = "stackless")]
use chronoflow::stackless::{join, receive, select, yield_now};
use chronoflow::{
    Ctx, ExitError, Overflow, Pid, Signal, SignalData, SimpleScheduler, Spawnable, Status, Template,
};
#[cfg(feature = "stackless")]
use chronoflow::{StacklessCtx, StacklessTemplate};

/// A message that may explode when dropped or cloned.
#[derive(Debug)]
struct Msg {
    n: u64,
    /// Its `Drop` panics.
    drop_bomb: bool,
    /// Its `Clone` panics.
    clone_bomb: bool,
}

impl Msg {
    fn plain(n: u64) -> Msg {
        Msg {
            n,
            drop_bomb: false,
            clone_bomb: false,
        }
    }
    fn drop_bomb(n: u64) -> Msg {
        Msg {
            drop_bomb: true,
            ..Msg::plain(n)
        }
    }
    #[cfg(feature = "stackless")]
    fn clone_bomb(n: u64) -> Msg {
        Msg {
            clone_bomb: true,
            ..Msg::plain(n)
        }
    }
    /// Consumes it without a bang.
    fn defuse(mut self) -> u64 {
        self.drop_bomb = false;
        self.n
    }
}

impl Clone for Msg {
    fn clone(&self) -> Msg {
        if self.clone_bomb {
            panic!("message {} exploded in its clone", self.n);
        }
        Msg {
            n: self.n,
            drop_bomb: self.drop_bomb,
            clone_bomb: false,
        }
    }
}

impl Drop for Msg {
    fn drop(&mut self) {
        if self.drop_bomb && !std::thread::panicking() {
            panic!("message {} exploded in its drop", self.n);
        }
    }
}

#[cfg(feature = "stackless")]
type Sl<A, R> = StacklessTemplate<Msg, Msg, A, R>;

/// Returns the number of the first message it receives.
fn bystander() -> Template<Msg, Msg, (), u64> {
    Template::new("bystander", |ctx: &mut Ctx<Msg>, _: ()| {
        ctx.receive().defuse()
    })
}

/// Never takes a message.
fn hoarder() -> Template<Msg, Msg, (), u64> {
    Template::new("hoarder", |ctx: &mut Ctx<Msg>, _: ()| {
        ctx.select(|_| false).defuse()
    })
}

/// Runs the scheduler (twice: once to hit the panic, once more to settle),
/// catching what escapes.
fn run_catching(sched: &mut SimpleScheduler<Msg>) {
    for _ in 0..2 {
        let _ = catch_unwind(AssertUnwindSafe(|| sched.run_until_idle()));
    }
}

/// The user's view after the panic: `pid` is not left running, and the bystander
/// `b` (waiting since before) and a fresh process both run to completion.
fn assert_consistent(sched: &mut SimpleScheduler<Msg>, pid: Pid, b: Pid) {
    assert_ne!(
        sched.status(pid),
        Some(Status::Running),
        "{pid} is left Running forever"
    );
    sched.send(b, Msg::plain(41)).unwrap();
    run_catching(sched);
    assert_eq!(sched.status(b), Some(Status::Stopped), "the bystander ran");
    let fresh = sched.spawn(&bystander(), ()).unwrap();
    sched.send(fresh.pid(), Msg::plain(42)).unwrap();
    run_catching(sched);
    assert_eq!(sched.result(&fresh), Some(Ok(42)));
}

// ---------------------------------------------------------------------------------
// A message's Drop.

/// A parent ends with an unjoined child whose inbox holds a message whose `Drop`
/// panics. The child is killed inside the parent's `finish` (after its coroutine
/// returned, outside any catch), its record freed, the message dropped. Before the
/// fix the panic escaped `run_until_idle` and the parent stayed `Running` forever,
/// its engine gone (`finish` -> `kill` -> `free` -> `Slab::free`, in
/// `src/kernel/`).
#[test]
fn a_message_drop_that_panics_while_a_child_is_killed_leaves_no_process_running() {
    let child = hoarder();
    let parent = Template::new("parent", move |ctx: &mut Ctx<Msg>, _: ()| {
        let _unjoined = ctx.spawn(&child, ()).unwrap();
        // Its own copy goes quietly; the child's copy stays in the child's inbox.
        let n = ctx.receive().defuse();
        // The child runs (scans its copy, waits again): it is not in the ready
        // queue when it is killed, so its record is freed at once.
        ctx.yield_now();
        n
    });
    let mut sched = SimpleScheduler::new();
    let b = sched.spawn(&bystander(), ()).unwrap();
    let p = sched.spawn(&parent, ()).unwrap();
    sched.run_until_idle();
    sched.send(p.pid(), Msg::drop_bomb(7)).unwrap();
    run_catching(&mut sched);
    assert_consistent(&mut sched, p.pid(), b.pid());
    assert!(
        matches!(sched.result(&p), Some(Err(ExitError::Failed(_)))),
        "the parent failed (it returned with an unjoined child)"
    );
}

/// The same, with a stackless parent.
#[cfg(feature = "stackless")]
#[test]
fn a_message_drop_that_panics_while_a_stackless_parents_child_is_killed_leaves_no_process_running()
{
    let child = hoarder();
    let parent: Sl<(), u64> = StacklessTemplate::new("parent", move |cx: StacklessCtx<Msg>, _| {
        let child = child.clone();
        #[coroutine]
        move || {
            let _unjoined = cx.spawn(&child, ()).unwrap();
            let n = receive!(cx).defuse();
            yield_now!();
            n
        }
    });
    let mut sched = SimpleScheduler::new();
    let b = sched.spawn(&bystander(), ()).unwrap();
    let p = sched.spawn(&parent, ()).unwrap();
    sched.run_until_idle();
    sched.send(p.pid(), Msg::drop_bomb(7)).unwrap();
    run_catching(&mut sched);
    assert_consistent(&mut sched, p.pid(), b.pid());
    assert!(matches!(sched.result(&p), Some(Err(ExitError::Failed(_)))));
}

/// A message whose `Drop` panics, evicted (`Overflow::DropOldest`) by a process's
/// send: the scheduler drops it, so its panic is the caller's, resumed by the run
/// (as for the destructor of any message the scheduler drops); the delivery
/// completes and the sender goes on.
#[test]
fn a_message_drop_that_panics_on_eviction_is_reported_and_the_send_completes() {
    let full = hoarder().capacity(1).overflow(Overflow::DropOldest);
    let mut sched = SimpleScheduler::new();
    let b = sched.spawn(&bystander(), ()).unwrap();
    let f = sched.spawn(&full, ()).unwrap();
    sched.send(f.pid(), Msg::drop_bomb(1)).unwrap();
    let to = f.pid();
    let sender = Template::new("sender", move |ctx: &mut Ctx<Msg>, _: ()| {
        ctx.send_to(to, Msg::plain(2));
        0u64
    });
    let s = sched.spawn(&sender, ()).unwrap();
    run_catching(&mut sched);
    assert_consistent(&mut sched, s.pid(), b.pid());
    assert_eq!(sched.result(&s), Some(Ok(0)), "the sender went on");
    assert_eq!(
        sched.inbox_len(f.pid()),
        Some(1),
        "the new message was delivered"
    );
}

/// A top-level process that ends with a message whose `Drop` panics still in its
/// inbox: the record is freed after its result is kept, the panic escapes
/// `run_until_idle` (tolerated here), and the process is not left running. Passed
/// before the fix too; guards it.
#[test]
fn a_message_drop_that_panics_in_an_ended_processs_inbox_leaves_no_process_running() {
    let quitter = Template::new("quitter", |ctx: &mut Ctx<Msg>, _: ()| {
        ctx.select(|m| m.n == 0).defuse()
    });
    let mut sched = SimpleScheduler::new();
    let b = sched.spawn(&bystander(), ()).unwrap();
    let q = sched.spawn(&quitter, ()).unwrap();
    sched.send(q.pid(), Msg::drop_bomb(9)).unwrap();
    sched.send(q.pid(), Msg::plain(0)).unwrap();
    run_catching(&mut sched);
    assert_consistent(&mut sched, q.pid(), b.pid());
    assert!(sched.result(&q).is_some(), "it ended");
}

// ---------------------------------------------------------------------------------
// A result's Debug and Serialize, encoded for the STOP signal.

/// A result whose `Debug` panics.
#[derive(Serialize, Deserialize)]
struct BadDebug(u64);
impl fmt::Debug for BadDebug {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        panic!("Debug of the result exploded")
    }
}

/// A result whose `Serialize` panics.
#[derive(Debug, Deserialize)]
struct BadSerialize(#[allow(dead_code)] u64);
impl Serialize for BadSerialize {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        panic!("Serialize of the result exploded")
    }
}

/// A stackful process's result is encoded (`Serialize`, then `Debug`) when it is
/// recorded. Before the fix that ran on its coroutine after the body's
/// `catch_unwind`: the panic escaped the coroutine and `run_until_idle`, and the
/// process stayed `Running` forever.
#[test]
fn a_stackful_result_whose_debug_panics_while_recording_fails_the_process() {
    let t = Template::new("t", |ctx: &mut Ctx<Msg>, _: ()| {
        BadDebug(ctx.receive().defuse())
    });
    let mut sched = SimpleScheduler::new();
    sched.record();
    let b = sched.spawn(&bystander(), ()).unwrap();
    let h = sched.spawn(&t, ()).unwrap();
    sched.send(h.pid(), Msg::plain(1)).unwrap();
    run_catching(&mut sched);
    assert_consistent(&mut sched, h.pid(), b.pid());
    assert!(
        matches!(sched.result(&h), Some(Err(ExitError::Failed(_)))),
        "the process failed"
    );
}

/// The same with a result whose `Serialize` panics, in a durable scheduler
/// (the one that encodes results: a plain scheduler shows them by `Debug`
/// only), with a sink too.
#[test]
fn a_stackful_result_whose_serialize_panics_in_a_durable_scheduler_fails_the_process() {
    let t = Template::new("t", |ctx: &mut Ctx<u64>, _: ()| BadSerialize(ctx.receive()));
    let b = Template::new("b", |ctx: &mut Ctx<u64>, _: ()| ctx.receive());
    let dir = tempfile::TempDir::new().unwrap();
    let (mut sched, _) = chronoflow::DurableScheduler::builder()
        .register(&t)
        .register(&b)
        .open(dir.path())
        .unwrap();
    sched.set_sink(|_: Signal<u64>| {});
    let bh = sched.spawn(&b, ()).unwrap();
    let h = sched.spawn(&t, ()).unwrap();
    sched.send(h.pid(), 1).unwrap();
    sched.run_until_idle().unwrap();
    match sched.result(&h) {
        Some(Err(ExitError::Failed(m))) => assert!(m.contains("exploded"), "{m}"),
        other => panic!("{other:?}"),
    }
    // The scheduler runs on.
    sched.send(bh.pid(), 7).unwrap();
    sched.run_until_idle().unwrap();
    assert_eq!(sched.result(&bh), Some(Ok(7)));
}

/// A stackless process's result is encoded in `Resume::resume`, inside the pass's
/// catch: it fails cleanly. Passed before
/// the fix too; guards the fix of the stackful case.
#[cfg(feature = "stackless")]
#[test]
fn a_stackless_result_whose_debug_panics_while_recording_fails_the_process() {
    let t: Sl<(), BadDebug> = StacklessTemplate::new("t", |cx: StacklessCtx<Msg>, _: ()| {
        #[coroutine]
        move || BadDebug(receive!(cx).defuse())
    });
    let mut sched = SimpleScheduler::new();
    sched.record();
    let b = sched.spawn(&bystander(), ()).unwrap();
    let h = sched.spawn(&t, ()).unwrap();
    sched.send(h.pid(), Msg::plain(1)).unwrap();
    run_catching(&mut sched);
    assert_consistent(&mut sched, h.pid(), b.pid());
    assert!(matches!(sched.result(&h), Some(Err(ExitError::Failed(_)))));
}

// ---------------------------------------------------------------------------------
// A sink.

/// A sink that panics on the STOP of `pid` (once).
fn sink_panicking_on_stop_of(pid: Pid) -> impl FnMut(Signal<Msg>) {
    let mut armed = true;
    move |s: Signal<Msg>| {
        if armed && s.pid == pid && matches!(s.data, SignalData::Stop { .. }) {
            armed = false;
            panic!("the sink exploded on {pid}'s STOP");
        }
    }
}

/// Runs `t` (which returns the message it receives) with a sink that panics on
/// its STOP: the scheduler stays consistent and the process ends, its result kept.
fn assert_a_sink_panicking_on_its_stop_leaves_it_ended(t: &impl Spawnable<Msg, Msg, (), u64>) {
    let mut sched = SimpleScheduler::new();
    let b = sched.spawn(&bystander(), ()).unwrap();
    let h = sched.spawn(t, ()).unwrap();
    sched.set_sink(sink_panicking_on_stop_of(h.pid()));
    sched.send(h.pid(), Msg::plain(1)).unwrap();
    run_catching(&mut sched);
    assert_consistent(&mut sched, h.pid(), b.pid());
    assert!(sched.result(&h).is_some(), "it ended, with a result kept");
}

/// A sink that panics on a STOP: emitted in `finish` after the coroutine returned,
/// outside any catch, so the panic escapes `run_until_idle` and the process stays
/// `Running` with no engine.
#[test]
fn a_sink_that_panics_on_a_stackful_stop_leaves_no_process_running() {
    let t = Template::new("t", |ctx: &mut Ctx<Msg>, _: ()| ctx.receive().defuse());
    assert_a_sink_panicking_on_its_stop_leaves_it_ended(&t);
}

/// The same with a stackless process.
#[cfg(feature = "stackless")]
#[test]
fn a_sink_that_panics_on_a_stackless_stop_leaves_no_process_running() {
    let t: Sl<(), u64> = StacklessTemplate::new("t", |cx: StacklessCtx<Msg>, _: ()| {
        #[coroutine]
        move || receive!(cx).defuse()
    });
    assert_a_sink_panicking_on_its_stop_leaves_it_ended(&t);
}

// ---------------------------------------------------------------------------------
// A message's Clone during a spawn (a stackful parent: tests/panics.rs).

/// A stackless parent whose message's `Clone` panics as the child gets a copy of
/// its inbox.
#[cfg(feature = "stackless")]
#[test]
fn a_message_clone_that_panics_during_a_stackless_spawn_leaves_no_orphan() {
    let child: Sl<(), u64> = StacklessTemplate::new("child", |cx: StacklessCtx<Msg>, _: ()| {
        #[coroutine]
        move || select!(cx, |_: &Msg| false).defuse()
    });
    let parent: Sl<(), u64> = StacklessTemplate::new("parent", move |cx: StacklessCtx<Msg>, _| {
        let child = child.clone();
        #[coroutine]
        move || {
            let c = cx.spawn(&child, ()).unwrap();
            join!(cx, c).unwrap_or(0)
        }
    });
    let mut sched = SimpleScheduler::new();
    let b = sched.spawn(&bystander(), ()).unwrap();
    let p = sched.create(&parent, ()).unwrap();
    sched.send(p.pid(), Msg::clone_bomb(3)).unwrap();
    sched.start(p.pid()).unwrap();
    run_catching(&mut sched);
    assert!(matches!(sched.result(&p), Some(Err(ExitError::Failed(_)))));
    assert_eq!(
        sched.live(),
        1,
        "only the bystander is left (an orphan child otherwise: {:?})",
        sched.status(Pid(p.pid().as_u64() + 1))
    );
    assert_consistent(&mut sched, p.pid(), b.pid());
}
