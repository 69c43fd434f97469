#![cfg_attr(feature = "stackless", feature(coroutines))]
//! A process whose stack unwinds (a panic of its body, its kill, its scheduler
//! dropped) runs user code on the way: destructors, the drop of a panic's payload,
//! of arguments it never used, of a result. What a user relies on: that code may
//! panic or try to wait, and the process still ends cleanly, as that process's
//! failure; the scheduler is never left with a process `Running` for good, a
//! panic escaping a run, an orphan, a hung drop, or the thread marked as
//! unwinding. What can neither go on nor panic (a destructor that waits for a
//! message while its stack unwinds) aborts the program, saying why.
//!
//! Found by an adversarial review; each scenario runs in a child process.

mod support;

use std::panic::{AssertUnwindSafe, catch_unwind};

use chronoflow::{Ctx, ExitError, Pid, SimpleScheduler, Status, Template};
#[cfg(feature = "stackless")]
use chronoflow::{StacklessCtx, StacklessTemplate};
use support::{
    isolated, isolated_aborting, isolated_dying, isolated_leaking, isolated_with_timeout,
};

/// A guard whose destructor waits for a message.
struct ReceiveOnDrop<'a>(&'a mut Ctx<u64>);

impl Drop for ReceiveOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.receive();
    }
}

/// A body that panics with such a guard alive: its destructor would wait while the
/// panic unwinds. (Before the fix the process suspended mid-unwind, leaving the
/// thread "panicking" under every other process, and its stop aborted with
/// "panic in a destructor during cleanup".)
#[test]
fn a_destructor_that_waits_during_its_bodys_panic_aborts_and_says_why() {
    isolated_aborting(
        "a_destructor_that_waits_during_its_bodys_panic_aborts_and_says_why",
        "process <0> waits (Message) in a destructor while its stack unwinds",
        || {
            let t = Template::new("t", |ctx: &mut Ctx<u64>, _: ()| -> u64 {
                let _guard = ReceiveOnDrop(ctx);
                panic!("boom");
            });
            let mut sched = SimpleScheduler::new();
            sched.spawn(&t, ()).unwrap();
            sched.run_until_idle();
        },
    );
}

/// A destructor that finds its message does not wait: the panic is the process's
/// failure, and the thread is not left unwinding.
#[test]
fn a_destructor_that_receives_a_waiting_message_during_a_panic_is_fine() {
    let t = Template::new("t", |ctx: &mut Ctx<u64>, _: ()| -> u64 {
        let _guard = ReceiveOnDrop(ctx);
        panic!("boom");
    });
    let mut sched = SimpleScheduler::new();
    let h = sched.create(&t, ()).unwrap();
    sched.send(h.pid(), 1).unwrap();
    sched.start(h.pid()).unwrap();
    sched.run_until_idle();
    assert_eq!(
        sched.result(&h),
        Some(Err(ExitError::Failed("boom".into())))
    );
    assert!(!std::thread::panicking());
}

/// A server that survives bad requests catches panics around each receive; its
/// kill's unwinding is caught too, and it waits again. It is not resumed: its
/// stack is abandoned, and dropping the scheduler returns. (Before the fix: the
/// kill was thrown again at every wait and caught again, forever: the drop hung.)
/// The thread is not left unwinding, and a later panic is a plain failure.
#[test]
fn a_body_that_catches_its_kill_and_waits_again_is_abandoned() {
    // Its stack, and the locals on it, are never freed: a leak by design.
    isolated_leaking(
        "a_body_that_catches_its_kill_and_waits_again_is_abandoned",
        || {
            let server = Template::new("server", |ctx: &mut Ctx<u64>, _: ()| -> u64 {
                let mut total = 0;
                loop {
                    let request = catch_unwind(AssertUnwindSafe(|| {
                        let m = ctx.receive();
                        assert!(m != 0, "bad request");
                        m
                    }));
                    if let Ok(m) = request {
                        total += m;
                    }
                    if total > 100 {
                        return total;
                    }
                }
            });
            let mut sched = SimpleScheduler::new();
            let h = sched.spawn(&server, ()).unwrap();
            sched.send(h.pid(), 0).unwrap(); // a bad request, survived
            sched.send(h.pid(), 5).unwrap();
            sched.run_until_idle();
            assert_eq!(
                sched.status(h.pid()),
                Some(Status::Waiting(chronoflow::Wait::Message))
            );
            drop(sched);
            assert!(!std::thread::panicking(), "the thread is left unwinding");
            let bomb = Template::new("bomb", |_: &mut Ctx<u64>, _: ()| -> u64 { panic!("later") });
            let mut sched = SimpleScheduler::new();
            let b = sched.spawn(&bomb, ()).unwrap();
            sched.run_until_idle();
            assert_eq!(
                sched.result(&b),
                Some(Err(ExitError::Failed("later".into())))
            );
        },
    );
}

/// A value (arguments, a result) whose `Drop` panics while armed (and not while
/// unwinding).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Armed(bool);

impl Drop for Armed {
    fn drop(&mut self) {
        if self.0 && !std::thread::panicking() {
            panic!("armed value dropped");
        }
    }
}

/// A child killed before it ever ran drops the arguments its body never took; their
/// `Drop` panics. (Before the fix the panic escaped the run and left the parent
/// and the child `Running` for good.)
#[test]
fn the_arguments_of_a_child_killed_before_it_ran_may_panic_in_their_drop() {
    isolated(
        "the_arguments_of_a_child_killed_before_it_ran_may_panic_in_their_drop",
        || {
            let child = Template::new("child", |ctx: &mut Ctx<u64>, mut b: Armed| -> u64 {
                b.0 = false;
                ctx.receive()
            });
            let parent = Template::new("parent", move |ctx: &mut Ctx<u64>, _: ()| -> u64 {
                let _unjoined = ctx.spawn(&child, Armed(true)).unwrap();
                0 // returns at once: the child, never run, is killed
            });
            let mut sched = SimpleScheduler::new();
            let p = sched.spawn(&parent, ()).unwrap();
            let run = catch_unwind(AssertUnwindSafe(|| sched.run_until_idle()));
            assert!(run.is_ok(), "a destructor's panic escaped the run");
            assert!(matches!(sched.result(&p), Some(Err(ExitError::Failed(_)))));
            assert_eq!(sched.status(Pid(1)), None, "the child is gone");
            assert_eq!(sched.live(), 0);
        },
    );
}

/// The same arguments, dropped with the scheduler before the process ran: the drop
/// of the scheduler does not panic, and frees everything (the test runs under
/// LeakSanitizer in CI).
#[test]
fn dropping_a_scheduler_with_arguments_whose_drop_panics_is_clean() {
    isolated(
        "dropping_a_scheduler_with_arguments_whose_drop_panics_is_clean",
        || {
            let t = Template::new("t", |ctx: &mut Ctx<u64>, mut b: Armed| -> u64 {
                b.0 = false;
                ctx.receive()
            });
            let mut sched = SimpleScheduler::new();
            sched.spawn(&t, Armed(true)).unwrap();
            let dropped = catch_unwind(AssertUnwindSafe(move || drop(sched)));
            assert!(dropped.is_ok(), "dropping the scheduler panicked");
        },
    );
}

/// A killed child that catches its kill and returns a result whose `Drop` panics:
/// the result is dropped by its engine's stop. The parent and the child end.
#[test]
fn a_killed_child_returning_a_result_whose_drop_panics_ends_cleanly() {
    isolated(
        "a_killed_child_returning_a_result_whose_drop_panics_ends_cleanly",
        || {
            let child = Template::new("child", |ctx: &mut Ctx<u64>, _: ()| -> Armed {
                let _ = catch_unwind(AssertUnwindSafe(|| ctx.receive()));
                Armed(true)
            });
            let parent = Template::new("parent", move |ctx: &mut Ctx<u64>, _: ()| -> u64 {
                let _unjoined = ctx.spawn(&child, ()).unwrap();
                ctx.yield_now();
                0
            });
            let mut sched = SimpleScheduler::new();
            let p = sched.spawn(&parent, ()).unwrap();
            let run = catch_unwind(AssertUnwindSafe(|| sched.run_until_idle()));
            assert!(run.is_ok(), "a destructor's panic escaped the run");
            assert!(matches!(sched.result(&p), Some(Err(ExitError::Failed(_)))));
            assert_eq!(sched.live(), 0);
        },
    );
}

/// A panic's payload whose `Drop` panics.
struct PayloadBomb;

impl Drop for PayloadBomb {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("payload drop");
        }
    }
}

/// A stackful body panics with such a payload: the process fails, and nothing
/// escapes the run. (Before the fix the payload's panic escaped the coroutine,
/// and left the stack-overflow handler's record of the running process pointing
/// into the freed engine.)
#[test]
fn a_stackful_panic_whose_payload_panics_on_drop_fails_the_process_alone() {
    isolated(
        "a_stackful_panic_whose_payload_panics_on_drop_fails_the_process_alone",
        || {
            let t = Template::new("t", |_: &mut Ctx<u64>, _: ()| -> u64 {
                std::panic::panic_any(PayloadBomb)
            });
            let mut sched = SimpleScheduler::new();
            let h = sched.spawn(&t, ()).unwrap();
            let run = catch_unwind(AssertUnwindSafe(|| sched.run_until_idle()));
            assert!(run.is_ok(), "a process's panic escaped the run");
            assert!(matches!(sched.result(&h), Some(Err(ExitError::Failed(_)))));
        },
    );
}

/// After such a panic, a stack overflow of the scheduler's own thread (not a
/// process's) is reported as what it is: the overflow handler's record of the
/// running process is not left pointing into the freed engine. Under
/// AddressSanitizer (CI) the stale record was a heap-use-after-free.
#[test]
fn after_a_panic_whose_payload_panics_the_overflow_handler_reads_no_freed_engine() {
    #[cfg(not(feature = "asan"))]
    let says = "has overflowed its stack";
    #[cfg(feature = "asan")]
    let says = "stack-overflow";
    isolated_dying(
        "after_a_panic_whose_payload_panics_the_overflow_handler_reads_no_freed_engine",
        says,
        "heap-use-after-free",
        || {
            let t = Template::new("t", |_: &mut Ctx<u64>, _: ()| -> u64 {
                std::panic::panic_any(PayloadBomb)
            });
            let mut sched = SimpleScheduler::new();
            sched.spawn(&t, ()).unwrap();
            let _ = catch_unwind(AssertUnwindSafe(|| sched.run_until_idle()));
            drop(sched);
            #[allow(unconditional_recursion)]
            fn recurse(n: u64) -> u64 {
                let a = std::hint::black_box([n; 512]);
                recurse(n + 1).wrapping_add(a[7])
            }
            std::hint::black_box(recurse(0));
        },
    );
}

/// The same for a stackless body.
#[cfg(feature = "stackless")]
#[test]
fn a_stackless_panic_whose_payload_panics_on_drop_fails_the_process_alone() {
    isolated(
        "a_stackless_panic_whose_payload_panics_on_drop_fails_the_process_alone",
        || {
            let t = StacklessTemplate::new("t", |_cx: StacklessCtx<u64>, _: ()| {
                #[coroutine]
                move || -> u64 {
                    if true {
                        std::panic::panic_any(PayloadBomb);
                    }
                    chronoflow::stackless::yield_now!();
                    0
                }
            });
            let mut sched = SimpleScheduler::new();
            let h = sched.spawn(&t, ()).unwrap();
            let run = catch_unwind(AssertUnwindSafe(|| sched.run_until_idle()));
            assert!(run.is_ok(), "a process's panic escaped the run");
            assert!(matches!(sched.result(&h), Some(Err(ExitError::Failed(_)))));
        },
    );
}

/// A message whose `Clone` panics for one value.
#[cfg(feature = "stackless")]
#[derive(Debug)]
struct CloneBomb(u64);

#[cfg(feature = "stackless")]
impl Clone for CloneBomb {
    fn clone(&self) -> Self {
        if self.0 == 666 {
            panic!("clone bomb");
        }
        CloneBomb(self.0)
    }
}

/// A stackless child's guard that spawns from its destructor.
#[cfg(feature = "stackless")]
struct SpawnOnDrop(
    StacklessCtx<CloneBomb>,
    StacklessTemplate<CloneBomb, CloneBomb, (), u64>,
);

#[cfg(feature = "stackless")]
impl Drop for SpawnOnDrop {
    fn drop(&mut self) {
        let _ = self.0.spawn(&self.1, ());
    }
}

/// A spawn whose copy of the parent's inbox panics stops the new stackless child
/// at once; the destructors of what its body captured may not use its context
/// then (it never ran, and the spawn holds the kernel). (Before the fix the guard's
/// spawn went through, and left an orphan nobody could join.)
#[cfg(feature = "stackless")]
#[test]
fn a_child_stopped_by_a_failed_spawn_leaves_no_orphan() {
    isolated("a_child_stopped_by_a_failed_spawn_leaves_no_orphan", || {
        let leaf = StacklessTemplate::new("leaf", |cx: StacklessCtx<CloneBomb>, _: ()| {
            #[coroutine]
            move || -> u64 { chronoflow::stackless::receive!(cx).0 }
        });
        let child = StacklessTemplate::new("child", move |cx: StacklessCtx<CloneBomb>, _: ()| {
            let guard = SpawnOnDrop(cx, leaf.clone());
            #[coroutine]
            move || -> u64 {
                let _guard = &guard;
                chronoflow::stackless::receive!(cx).0
            }
        });
        let parent = Template::new("parent", move |ctx: &mut Ctx<CloneBomb>, _: ()| -> u64 {
            let c = ctx.spawn(&child, ()).unwrap();
            ctx.join(c).unwrap()
        });
        let mut sched = SimpleScheduler::new();
        let p = sched.spawn(&parent, ()).unwrap();
        sched.send(p.pid(), CloneBomb(666)).unwrap();
        let run = catch_unwind(AssertUnwindSafe(|| sched.run_until_idle()));
        assert!(run.is_ok(), "the failed spawn escaped the run");
        assert!(matches!(sched.result(&p), Some(Err(ExitError::Failed(_)))));
        assert_eq!(sched.live(), 0, "an orphan is left");
    });
}

/// A message whose second `Clone` panics.
#[derive(Debug)]
struct SecondCloneBombs(u64, std::sync::Arc<std::sync::atomic::AtomicU32>);

impl Clone for SecondCloneBombs {
    fn clone(&self) -> Self {
        if self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed) == 1 {
            panic!("second clone");
        }
        SecondCloneBombs(self.0, self.1.clone())
    }
}

/// Delivery to a parent and its children is all or nothing, also when a copy's
/// `Clone` panics: no one holds the message, and the sender fails. (Before the
/// fix the parent held it already when the second copy panicked.)
#[test]
fn a_delivery_whose_clone_panics_reaches_no_one() {
    type M = SecondCloneBombs;
    let child = Template::new("child", |ctx: &mut Ctx<M>, _: ()| -> u64 {
        ctx.receive().0
    });
    let parent = Template::new("parent", move |ctx: &mut Ctx<M>, _: ()| -> u64 {
        let a = ctx.spawn(&child, ()).unwrap();
        let b = ctx.spawn(&child, ()).unwrap();
        let first = ctx.receive().0;
        (first, ctx.join(a).unwrap(), ctx.join(b).unwrap()).0
    });
    let sender = Template::new("sender", |ctx: &mut Ctx<M>, to: Pid| -> u64 {
        ctx.send_to(to, SecondCloneBombs(7, Default::default()));
        0
    });
    let mut sched = SimpleScheduler::new();
    let p = sched.spawn(&parent, ()).unwrap();
    sched.run_until_idle();
    let s = sched.spawn(&sender, p.pid()).unwrap();
    sched.run_until_idle();
    assert!(matches!(sched.result(&s), Some(Err(ExitError::Failed(_)))));
    assert_eq!(
        sched.status(p.pid()),
        Some(Status::Waiting(chronoflow::Wait::Message)),
        "the parent got the message"
    );
    for pid in [p.pid(), Pid(1), Pid(2)] {
        assert_eq!(sched.inbox_len(pid), Some(0), "{pid} holds the message");
    }
}

// ---------------------------------------------------------------------------------
// From a second review.

/// A scheduler that its owner drives from a destructor while the owner unwinds (a
/// drain-on-drop guard): the thread unwinds, not its processes, which wait, join
/// and yield as ever. (Before the fix each process took the owner's unwinding for
/// its own: a wait aborted the program, a join of a healthy child failed, a
/// `yield_now` loop never yielded.)
struct DrainOnDrop(SimpleScheduler<u64>);

impl Drop for DrainOnDrop {
    fn drop(&mut self) {
        self.0.run_until_idle();
    }
}

static OUTCOME: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn note(s: String) {
    OUTCOME.lock().unwrap_or_else(|e| e.into_inner()).push(s);
}

#[test]
fn processes_run_as_ever_when_their_owner_unwinds() {
    isolated_with_timeout(
        "processes_run_as_ever_when_their_owner_unwinds",
        std::time::Duration::from_secs(20),
        || {
            let waiter = Template::new("waiter", |ctx: &mut Ctx<u64>, _: ()| -> u64 {
                let first = ctx.receive();
                note(format!("got {first}"));
                first + ctx.receive() // waits: there is no second message
            });
            let child = Template::new("child", |ctx: &mut Ctx<u64>, _: ()| -> u64 {
                ctx.yield_now();
                5
            });
            let parent = Template::new("parent", move |ctx: &mut Ctx<u64>, _: ()| -> u64 {
                let c = ctx.spawn(&child, ()).unwrap();
                let joined = ctx.join(c);
                note(format!("joined {joined:?}"));
                0
            });
            let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let f = flag.clone();
            let spinner = Template::new("spinner", move |ctx: &mut Ctx<u64>, _: ()| -> u64 {
                while !f.load(std::sync::atomic::Ordering::Relaxed) {
                    ctx.yield_now();
                }
                note("spun".into());
                0
            });
            let setter = Template::new("setter", move |_: &mut Ctx<u64>, _: ()| -> u64 {
                flag.store(true, std::sync::atomic::Ordering::Relaxed);
                0
            });
            let mut sched = SimpleScheduler::new();
            let w = sched.spawn(&waiter, ()).unwrap();
            sched.send(w.pid(), 1).unwrap();
            sched.spawn(&parent, ()).unwrap();
            sched.spawn(&spinner, ()).unwrap();
            sched.spawn(&setter, ()).unwrap();
            let owner = catch_unwind(AssertUnwindSafe(|| {
                let _drain = DrainOnDrop(sched);
                panic!("the owner fails");
            }));
            assert!(owner.is_err());
            let outcome = OUTCOME.lock().unwrap().clone();
            assert!(outcome.contains(&"got 1".to_string()), "{outcome:?}");
            assert!(outcome.contains(&"joined Ok(5)".to_string()), "{outcome:?}");
            assert!(outcome.contains(&"spun".to_string()), "{outcome:?}");
        },
    );
}

/// The server that catches its kill, with its scheduler dropped while the owner
/// unwinds (a failed assertion in a test): abandoned, not an abort.
#[test]
fn a_kill_catching_server_dropped_by_an_unwinding_owner_is_abandoned() {
    isolated_leaking(
        "a_kill_catching_server_dropped_by_an_unwinding_owner_is_abandoned",
        || {
            let server = Template::new("server", |ctx: &mut Ctx<u64>, _: ()| -> u64 {
                loop {
                    let _ = catch_unwind(AssertUnwindSafe(|| ctx.receive()));
                }
            });
            let owner = catch_unwind(AssertUnwindSafe(|| {
                let mut sched = SimpleScheduler::new();
                sched.spawn(&server, ()).unwrap();
                sched.run_until_idle();
                panic!("an unrelated assertion fails");
            }));
            assert!(owner.is_err());
        },
    );
}

/// Servers that catch their kill and go on with calls that would wait: a receive
/// with a timeout, a sleep, a yield. They are abandoned at their next wait.
/// (Before the fix these calls returned at once while the process was being
/// stopped, and the loop spun forever: the kill, or the drop, hung.)
fn spinning_server(kind: u32) -> Template<u64, u64, (), u64> {
    Template::new("server", move |ctx: &mut Ctx<u64>, _: ()| -> u64 {
        loop {
            let _ = catch_unwind(AssertUnwindSafe(|| match kind {
                0 => ctx.receive_timeout(std::time::Duration::from_millis(50)),
                1 => {
                    ctx.sleep(std::time::Duration::from_millis(50));
                    None
                }
                _ => {
                    ctx.yield_now();
                    ctx.try_receive()
                }
            }));
        }
    })
}

#[test]
fn kill_catching_servers_that_wait_in_other_ways_are_abandoned() {
    isolated_leaking(
        "kill_catching_servers_that_wait_in_other_ways_are_abandoned",
        || {
            for kind in 0..3 {
                // Killed with its parent.
                let server = spinning_server(kind);
                let parent = Template::new("parent", move |ctx: &mut Ctx<u64>, _: ()| -> u64 {
                    let _unjoined = ctx.spawn(&server, ()).unwrap();
                    ctx.yield_now();
                    0
                });
                let mut sched = SimpleScheduler::new();
                let p = sched.spawn(&parent, ()).unwrap();
                sched.run_until_idle();
                assert!(matches!(sched.result(&p), Some(Err(ExitError::Failed(_)))));
                assert_eq!(sched.live(), 0);
                // Dropped with its scheduler.
                let mut sched = SimpleScheduler::new();
                sched.spawn(&spinning_server(kind), ()).unwrap();
                let _ = sched.update();
                drop(sched);
            }
        },
    );
}

/// A guard whose `Drop` panics with a payload whose own `Drop` panics.
#[cfg(feature = "stackless")]
struct PanicsWithABomb;

#[cfg(feature = "stackless")]
impl Drop for PanicsWithABomb {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            std::panic::panic_any(PayloadBomb);
        }
    }
}

/// A stackless child holding such a guard, killed with its parent, and dropped
/// with its scheduler: its stop catches the panic and the payload's. (Before the
/// fix the payload's panic escaped the run and left the parent `Running`.)
#[cfg(feature = "stackless")]
#[test]
fn a_stackless_stop_whose_destructor_panics_with_a_panicking_payload_is_clean() {
    isolated(
        "a_stackless_stop_whose_destructor_panics_with_a_panicking_payload_is_clean",
        || {
            let child = StacklessTemplate::new("child", |cx: StacklessCtx<u64>, _: ()| {
                #[coroutine]
                move || -> u64 {
                    let _guard = PanicsWithABomb;
                    chronoflow::stackless::receive!(cx)
                }
            });
            let parent = Template::new("parent", {
                let child = child.clone();
                move |ctx: &mut Ctx<u64>, _: ()| -> u64 {
                    let _unjoined = ctx.spawn(&child, ()).unwrap();
                    ctx.yield_now();
                    7
                }
            });
            let mut sched = SimpleScheduler::new();
            let p = sched.spawn(&parent, ()).unwrap();
            let run = catch_unwind(AssertUnwindSafe(|| sched.run_until_idle()));
            assert!(run.is_ok(), "a destructor's panic escaped the run");
            assert!(matches!(sched.result(&p), Some(Err(ExitError::Failed(_)))));
            assert_eq!(sched.live(), 0);
            let mut sched = SimpleScheduler::new();
            sched.spawn(&child, ()).unwrap();
            sched.run_until_idle();
            let dropped = catch_unwind(AssertUnwindSafe(move || drop(sched)));
            assert!(dropped.is_ok(), "dropping the scheduler panicked");
        },
    );
}

/// A stackless process whose captured guard spawns the same kind of process when
/// dropped, 5,000 deep, killed with its parent: each stop's late child is killed
/// in the same loop, not by a recursive call (a 2 MiB stack overflowed at 2,000).
#[cfg(feature = "stackless")]
struct SpawnAgainOnDrop(StacklessCtx<u64>, u32);

#[cfg(feature = "stackless")]
impl Drop for SpawnAgainOnDrop {
    fn drop(&mut self) {
        if self.1 > 0 {
            let _ = self.0.spawn(&spawning_again(), self.1 - 1);
        }
    }
}

#[cfg(feature = "stackless")]
fn spawning_again() -> StacklessTemplate<u64, u64, u32, u64> {
    StacklessTemplate::new("again", |cx: StacklessCtx<u64>, n: u32| {
        let guard = SpawnAgainOnDrop(cx, n);
        #[coroutine]
        move || -> u64 {
            let _guard = &guard;
            chronoflow::stackless::receive!(cx)
        }
    })
}

#[cfg(feature = "stackless")]
#[test]
fn children_spawned_by_stopping_processes_are_killed_without_recursion() {
    isolated(
        "children_spawned_by_stopping_processes_are_killed_without_recursion",
        || {
            support::on_2mib_thread(|| {
                let parent = Template::new("parent", |ctx: &mut Ctx<u64>, _: ()| -> u64 {
                    let _unjoined = ctx.spawn(&spawning_again(), 5_000).unwrap();
                    0
                });
                let mut sched = SimpleScheduler::new();
                sched.spawn(&parent, ()).unwrap();
                sched.run_until_idle();
                assert_eq!(sched.live(), 0);
            });
        },
    );
}

/// A message whose `Drop` panics, for one value.
#[derive(Debug, Clone)]
struct DropBomb(u64);

impl Drop for DropBomb {
    fn drop(&mut self) {
        if self.0 == 666 && !std::thread::panicking() {
            panic!("evicted drop");
        }
    }
}

/// Delivery to a parent and its child, one of which evicts (DropOldest) a
/// message whose `Drop` panics: both get the new message; the panic is resumed
/// by the next run. (Before the fix the delivery stopped half-way.)
#[test]
fn an_eviction_whose_drop_panics_does_not_cut_a_delivery_short() {
    type M = DropBomb;
    for evicting_child in [false, true] {
        let (parent_cap, child_cap) = if evicting_child { (8, 1) } else { (1, 8) };
        let child = Template::new("child", |ctx: &mut Ctx<M>, _: ()| -> u64 {
            ctx.select(|_| false);
            0
        })
        .capacity(child_cap)
        .overflow(chronoflow::Overflow::DropOldest);
        let parent = Template::new("parent", move |ctx: &mut Ctx<M>, _: ()| -> u64 {
            let _c = ctx.spawn(&child, ()).unwrap();
            ctx.select(|_| false);
            0
        })
        .capacity(parent_cap)
        .overflow(chronoflow::Overflow::DropOldest);
        let mut sched = SimpleScheduler::new();
        let p = sched.spawn(&parent, ()).unwrap();
        sched.run_until_idle();
        sched.send(p.pid(), DropBomb(666)).unwrap();
        sched.run_until_idle();
        let sent = catch_unwind(AssertUnwindSafe(|| sched.send(p.pid(), DropBomb(1))));
        assert!(matches!(sent, Ok(Ok(()))), "the send was cut short");
        let (parent_holds, child_holds) = if evicting_child { (2, 1) } else { (1, 2) };
        assert_eq!(sched.inbox_len(p.pid()), Some(parent_holds));
        assert_eq!(sched.inbox_len(Pid(1)), Some(child_holds));
        let run = catch_unwind(AssertUnwindSafe(|| sched.run_until_idle()));
        assert!(run.is_err(), "the destructor's panic is resumed by the run");
        let run = catch_unwind(AssertUnwindSafe(|| sched.run_until_idle()));
        assert!(run.is_ok(), "and only once");
    }
}

/// A sink that panics while the owner drains the scheduler from a destructor,
/// unwinding: the panic cannot go to a caller that unwinds already (a second
/// panic there aborts), so it goes no further; the process runs to its end.
#[test]
fn a_sinks_panic_while_the_owner_unwinds_goes_no_further() {
    isolated(
        "a_sinks_panic_while_the_owner_unwinds_goes_no_further",
        || {
            let t = Template::new("t", |ctx: &mut Ctx<u64>, _: ()| -> u64 {
                let n = ctx.receive();
                note(format!("took {n}"));
                n
            });
            let mut sched = SimpleScheduler::new();
            sched.set_sink(|_: chronoflow::Signal<u64>| panic!("the sink fails"));
            let h = sched.spawn(&t, ()).unwrap();
            sched.send(h.pid(), 3).unwrap();
            let owner = catch_unwind(AssertUnwindSafe(|| {
                let _drain = DrainOnDrop(sched);
                panic!("the owner fails");
            }));
            assert!(owner.is_err());
            let outcome = OUTCOME.lock().unwrap().clone();
            assert!(outcome.contains(&"took 3".to_string()), "{outcome:?}");
        },
    );
}
