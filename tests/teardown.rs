#![cfg_attr(feature = "stackless", feature(coroutines))]
//! Tearing processes down: killing a child with its parent, dropping a scheduler.
//! What a user relies on: a process killed (its parent ended with it unjoined) or
//! dropped with its scheduler is unwound cleanly whatever its destructors do, and
//! whatever the shape of its tree; nothing aborts, overflows the thread's stack,
//! reads freed memory or panics inside `Drop for SimpleScheduler`.
//!
//! Abort-prone scenarios run in a child process (`support::isolated`).

mod support;

use std::panic::{AssertUnwindSafe, catch_unwind};
#[cfg(feature = "stackless")]
use std::sync::Arc;
#[cfg(feature = "stackless")]
use std::sync::atomic::{AtomicI64, AtomicU8, Ordering};

#[cfg(feature = "stackless")]
use chronoflow::stackless::{join, receive, select, yield_now};
use chronoflow::{
    Child, Ctx, Exit, ExitError, JoinError, Pid, Signal, SignalData, SimpleScheduler, Status,
    Template, Wait,
};
#[cfg(feature = "stackless")]
use chronoflow::{StacklessCtx, StacklessTemplate};
use support::{isolated, isolated_aborting, on_2mib_thread, panic_text};

#[cfg(feature = "stackless")]
type Sl<A, R> = StacklessTemplate<u64, u64, A, R>;

/// How `pid` ended, from its STOP signal.
fn stop_exit(signals: &[Signal<u64>], pid: Pid) -> Option<Exit> {
    signals.iter().find_map(|s| match &s.data {
        SignalData::Stop { exit } if s.pid == pid => Some(exit.clone()),
        _ => None,
    })
}

// ---------------------------------------------------------------------------------
// Dropping a scheduler with released records in its ready queue.

/// A message that counts itself: made or cloned, minus dropped.
#[cfg(feature = "stackless")]
#[derive(Debug)]
struct Counted(Arc<AtomicI64>);
#[cfg(feature = "stackless")]
impl Counted {
    fn new(live: &Arc<AtomicI64>) -> Counted {
        live.fetch_add(1, Ordering::SeqCst);
        Counted(live.clone())
    }
}
#[cfg(feature = "stackless")]
impl Clone for Counted {
    fn clone(&self) -> Counted {
        Counted::new(&self.0)
    }
}
#[cfg(feature = "stackless")]
impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// `Kernel::destroy` (`src/kernel/lifecycle.rs`) used to free every live record,
/// then walk the ready queue through `next_ready` and `released` of records it had
/// just freed (`Slab::free` drops the record and writes the free-list link over its first
/// word). Here the queue holds, at drop time, live records and a child that was
/// killed with its parent while it was queued (released, freed only when it leaves
/// the queue).
///
/// With the default field order the word overwritten is `parent`, so the walk happens
/// to read intact stale fields and this passes: the bug shows only when the layout
/// puts `next_ready` or `released` first (`RUSTFLAGS=-Zrandomize-layout`, some
/// `-Zlayout-seed`s: the walk then follows the free list, leaking the released
/// record or freeing a record twice, which the message count below catches) or
/// under a checker that treats a dropped record as dead (Miri). AddressSanitizer
/// does not see it: the slab's chunk stays allocated.
#[cfg(feature = "stackless")]
#[test]
fn dropping_a_scheduler_with_released_records_in_the_ready_queue_frees_each_once() {
    isolated(
        "dropping_a_scheduler_with_released_records_in_the_ready_queue_frees_each_once",
        || {
            let live = Arc::new(AtomicI64::new(0));
            {
                type S<A, R> = StacklessTemplate<Counted, Counted, A, R>;
                let spinner: S<(), ()> =
                    StacklessTemplate::new("spinner", |_cx: StacklessCtx<Counted>, _: ()| {
                        #[coroutine]
                        move || loop {
                            yield_now!();
                        }
                    });
                let idle: S<(), u64> =
                    StacklessTemplate::new("idle", |cx: StacklessCtx<Counted>, _: ()| {
                        #[coroutine]
                        move || {
                            let _m = receive!(cx);
                            0
                        }
                    });
                // Spawns a child (queued, with a copy of the inbox) and returns at
                // once: the child is killed while queued, and released.
                let quitter: S<(), u64> = {
                    let idle = idle.clone();
                    StacklessTemplate::new("quitter", move |cx: StacklessCtx<Counted>, _: ()| {
                        let idle = idle.clone();
                        #[coroutine]
                        move || {
                            let _unjoined = cx.spawn(&idle, ()).unwrap();
                            let _unjoined = cx.spawn(&idle, ()).unwrap();
                            0
                        }
                    })
                };
                let mut sched = SimpleScheduler::new();
                let s1 = sched.spawn(&spinner, ()).unwrap();
                let mut quitters = Vec::new();
                for _ in 0..3 {
                    let q = sched.create(&quitter, ()).unwrap();
                    // Messages in the quitter's inbox: its children get copies,
                    // which live in the released records until they are freed.
                    for _ in 0..3 {
                        sched.send(q.pid(), Counted::new(&live)).unwrap();
                    }
                    sched.start(q.pid()).unwrap();
                    quitters.push(q);
                }
                let s2 = sched.spawn(&spinner, ()).unwrap();
                let _ = sched.update();
                // The quitters ended (their children unjoined, killed while queued);
                // the spinners are queued again, live.
                for q in quitters {
                    assert!(matches!(sched.result(&q), Some(Err(ExitError::Failed(_)))));
                }
                assert_eq!(sched.status(s1.pid()), Some(Status::Ready));
                assert_eq!(sched.status(s2.pid()), Some(Status::Ready));
                assert_eq!(sched.live(), 2);
                drop(sched);
            }
            assert_eq!(
                live.load(Ordering::SeqCst),
                0,
                "every message dropped exactly once (negative: a record freed twice; positive: one leaked)"
            );
        },
    );
}

// ---------------------------------------------------------------------------------
// A destructor that suspends while its stackful process is killed.

/// Says goodbye when dropped, through the context it borrows: sends twice, which
/// with a budget of 1 suspends the process (`Ctx::tick` yields).
struct SendOnDrop<'a> {
    ctx: &'a mut Ctx<u64>,
    to: Pid,
}
impl Drop for SendOnDrop<'_> {
    fn drop(&mut self) {
        self.ctx.send_to(self.to, 98);
        self.ctx.send_to(self.to, 99);
    }
}

/// Waits for one more message when dropped (the inbox is empty: it suspends).
struct ReceiveOnDrop<'a> {
    ctx: &'a mut Ctx<u64>,
}
impl Drop for ReceiveOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.ctx.receive();
    }
}

/// A parent that spawns `child` and returns at once with it unjoined: the child is
/// killed (`Kernel::kill`: corosensei's `force_unwind`).
fn killing_parent<A: Clone + Send + Sync + 'static>(
    child: Template<u64, u64, A, u64>,
    args: A,
) -> Template<u64, u64, (), u64> {
    Template::new("parent", move |ctx: &mut Ctx<u64>, _: ()| {
        let _unjoined = ctx.spawn(&child, args.clone()).unwrap();
        // Let the child run to its wait first.
        ctx.yield_now();
        ctx.yield_now();
        0
    })
}

/// Runs `parent` and checks the user's view: no abort, the parent failed (unjoined
/// child), the child ended with STOP Killed, and the scheduler runs on.
fn run_killing(parent: Template<u64, u64, (), u64>) {
    let mut sched = SimpleScheduler::new();
    sched.record();
    sched.set_budget(1);
    let p = sched.spawn(&parent, ()).unwrap();
    sched.run_until_idle();
    match sched.result(&p) {
        Some(Err(ExitError::Failed(msg))) => assert!(msg.contains("unjoined"), "{msg}"),
        other => panic!("the parent should fail for its unjoined child: {other:?}"),
    }
    let signals = sched.pull();
    let child = Pid(p.pid().as_u64() + 1);
    assert_eq!(
        stop_exit(&signals, child),
        Some(Err(ExitError::Killed(format!("parent {} ended", p.pid()))))
    );
    assert_eq!(sched.live(), 0);
    let after = Template::new("after", |ctx: &mut Ctx<u64>, _: ()| ctx.receive());
    let a = sched.spawn(&after, ()).unwrap();
    sched.send(a.pid(), 5).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&a), Some(Ok(5)));
}

/// A killed stackful child whose local's destructor sends (and the budget is
/// spent, so the send yields). Before the fix the suspension inside corosensei's
/// forced unwind raised a second unwind inside a destructor: "panic in a destructor
/// during cleanup", SIGABRT.
#[test]
fn a_killed_stackful_child_whose_destructor_sends_past_its_budget_does_not_abort() {
    isolated(
        "a_killed_stackful_child_whose_destructor_sends_past_its_budget_does_not_abort",
        || {
            let sink = Template::new("sink", |ctx: &mut Ctx<u64>, _: ()| -> u64 {
                loop {
                    ctx.receive();
                }
            });
            let child = Template::new("child", |ctx: &mut Ctx<u64>, to: Pid| {
                let bye = SendOnDrop { ctx, to };
                bye.ctx.select(|_| false)
            });
            let parent = Template::new("parent", move |ctx: &mut Ctx<u64>, _: ()| {
                let s = ctx.spawn(&sink, ()).unwrap();
                let c = ctx.spawn(&child, s.pid()).unwrap();
                ctx.yield_now();
                ctx.yield_now();
                // Joins neither: both are killed, the child first... or the sink.
                let _ = (s, c);
                0u64
            });
            let mut sched = SimpleScheduler::new();
            sched.record();
            sched.set_budget(1);
            let p = sched.spawn(&parent, ()).unwrap();
            sched.run_until_idle();
            assert!(matches!(sched.result(&p), Some(Err(ExitError::Failed(_)))));
            let signals = sched.pull();
            for child in [Pid(1), Pid(2)] {
                assert!(
                    matches!(stop_exit(&signals, child), Some(Err(ExitError::Killed(_)))),
                    "{child} ends killed: {:?}",
                    stop_exit(&signals, child)
                );
            }
            assert_eq!(sched.live(), 0);
        },
    );
}

/// A killed stackful child whose local's destructor waits for a message that
/// cannot come: it can neither wait (its stack unwinds) nor panic (that would be
/// a panic during unwinding). The program aborts, saying which process and why,
/// rather than leave the thread unwinding under every other process. (Before the
/// fix: an abort from corosensei's forced unwind, "panic in a destructor during
/// cleanup", with no word of the process.)
#[test]
fn a_killed_stackful_child_whose_destructor_waits_aborts_and_says_why() {
    isolated_aborting(
        "a_killed_stackful_child_whose_destructor_waits_aborts_and_says_why",
        "process <1> waits (Message) in a destructor while its stack unwinds",
        || {
            let child = Template::new("child", |ctx: &mut Ctx<u64>, _: ()| {
                let last = ReceiveOnDrop { ctx };
                last.ctx.select(|_| false)
            });
            run_killing(killing_parent(child, ()));
        },
    );
}

/// The same destructor, run when the scheduler is dropped.
#[test]
fn dropping_a_scheduler_whose_process_destructor_waits_aborts_and_says_why() {
    isolated_aborting(
        "dropping_a_scheduler_whose_process_destructor_waits_aborts_and_says_why",
        "process <0> waits (Message) in a destructor while its stack unwinds",
        || {
            let waiter = Template::new("waiter", |ctx: &mut Ctx<u64>, _: ()| {
                let last = ReceiveOnDrop { ctx };
                last.ctx.select(|_| false)
            });
            let mut sched = SimpleScheduler::new();
            let w = sched.spawn(&waiter, ()).unwrap();
            sched.run_until_idle();
            assert_eq!(sched.status(w.pid()), Some(Status::Waiting(Wait::Message)));
            drop(sched);
        },
    );
}

// ---------------------------------------------------------------------------------
// Deep trees.

/// A chain: each level spawns the next and joins it; the leaf (depth 0) returns the
/// first message it receives.
#[cfg(feature = "stackless")]
fn chain() -> Sl<u32, u64> {
    StacklessTemplate::new("chain", |cx: StacklessCtx<u64>, depth: u32| {
        #[coroutine]
        move || {
            if depth == 0 {
                return receive!(cx);
            }
            let c = cx.spawn(&chain(), depth - 1).unwrap();
            join!(cx, c).unwrap() + 1
        }
    })
}

/// Spawns a chain of `depth` below it, gives it `depth + 2` passes to grow, then
/// returns without joining it.
#[cfg(feature = "stackless")]
fn abandons_chain() -> Sl<u32, u64> {
    StacklessTemplate::new("root", |cx: StacklessCtx<u64>, depth: u32| {
        #[coroutine]
        move || {
            let _unjoined = cx.spawn(&chain(), depth).unwrap();
            for _ in 0..depth + 2 {
                yield_now!();
            }
            0
        }
    })
}

const DEEP: u32 = 5_000;

/// A root that ends with a chain of 5,000 nested children unjoined: they are all
/// killed. Before the fix `Kernel::kill` recursed once per level (it called itself
/// for each child, with its strings and vectors in each frame) and overflowed a
/// 2 MiB thread stack: SIGSEGV/abort ("has overflowed its stack").
#[cfg(feature = "stackless")]
#[test]
fn killing_a_chain_of_5000_nested_children_does_not_overflow_the_stack() {
    isolated(
        "killing_a_chain_of_5000_nested_children_does_not_overflow_the_stack",
        || {
            on_2mib_thread(|| {
                let mut sched = SimpleScheduler::new();
                let root = sched.spawn(&abandons_chain(), DEEP).unwrap();
                sched.run_until_idle();
                match sched.result(&root) {
                    Some(Err(ExitError::Failed(msg))) => assert!(msg.contains("unjoined")),
                    other => panic!("the root should fail for its unjoined child: {other:?}"),
                }
                assert_eq!(sched.live(), 0, "the whole chain was killed");
            });
        },
    );
}

/// Dropping a scheduler that holds a chain of 5,000 nested children. (`Kernel::destroy`
/// always walked the pids in a loop: this passed before; it guards the fix of
/// `kill`.)
#[cfg(feature = "stackless")]
#[test]
fn dropping_a_scheduler_with_a_chain_of_5000_nested_children_works() {
    isolated(
        "dropping_a_scheduler_with_a_chain_of_5000_nested_children_works",
        || {
            on_2mib_thread(|| {
                let mut sched = SimpleScheduler::new();
                let _root = sched.spawn(&chain(), DEEP).unwrap();
                sched.run_until_idle();
                assert_eq!(sched.live(), DEEP as usize + 1);
                drop(sched);
            });
        },
    );
}

/// A message to the root of a deep tree goes to every descendant. Before the fix
/// `Kernel::collect_tree` (now in `src/kernel/tree.rs`) recursed once per level
/// and overflowed a 2 MiB thread stack. The user relies on the message reaching the leaf, whose
/// result comes back up the chain.
#[cfg(feature = "stackless")]
#[test]
fn delivering_to_the_root_of_a_deep_tree_does_not_overflow_the_stack() {
    isolated(
        "delivering_to_the_root_of_a_deep_tree_does_not_overflow_the_stack",
        || {
            on_2mib_thread(|| {
                const DEPTH: u32 = 50_000;
                let mut sched = SimpleScheduler::new();
                let root = sched.spawn(&chain(), DEPTH).unwrap();
                sched.run_until_idle();
                assert_eq!(sched.live(), DEPTH as usize + 1);
                sched.send(root.pid(), 1).unwrap();
                sched.run_until_idle();
                assert_eq!(sched.result(&root), Some(Ok(1 + DEPTH as u64)));
                assert_eq!(sched.live(), 0);
            });
        },
    );
}

/// The same delivery with 5,000 levels (the depth of the kill test above).
#[cfg(feature = "stackless")]
#[test]
fn delivering_to_the_root_of_a_5000_deep_tree_works() {
    isolated("delivering_to_the_root_of_a_5000_deep_tree_works", || {
        on_2mib_thread(|| {
            let mut sched = SimpleScheduler::new();
            let root = sched.spawn(&chain(), DEEP).unwrap();
            sched.run_until_idle();
            sched.send(root.pid(), 1).unwrap();
            sched.run_until_idle();
            assert_eq!(sched.result(&root), Some(Ok(1 + DEEP as u64)));
        });
    });
}

// ---------------------------------------------------------------------------------
// A destructor that joins while the scheduler is dropped.

/// Joins its child when dropped, and says what the join gave.
#[cfg(feature = "stackless")]
struct JoinOnDrop {
    cx: StacklessCtx<u64>,
    child: Child<u64>,
    /// 0: not run; 1: the join gave the child's result; 2: it gave something else.
    joined: Arc<AtomicU8>,
}
#[cfg(feature = "stackless")]
impl Drop for JoinOnDrop {
    fn drop(&mut self) {
        let got = self.cx.poll_join(self.child);
        self.joined.store(
            if matches!(got, Ok(Ok(7))) { 1 } else { 2 },
            Ordering::SeqCst,
        );
    }
}

/// A stackless parent whose local joins, in its destructor, a child that already
/// stopped. Dropping the scheduler drops that coroutine (`Kernel::destroy`), the
/// join reaps the child out of the pid table, and before the fix destroy's second
/// loop then panicked: "listed live".
#[cfg(feature = "stackless")]
#[test]
fn dropping_a_scheduler_whose_stackless_destructor_joins_a_stopped_child_does_not_panic() {
    let joined = Arc::new(AtomicU8::new(0));
    let quick: Sl<(), u64> = StacklessTemplate::new("quick", |_cx: StacklessCtx<u64>, _: ()| {
        #[coroutine]
        move || {
            if false {
                yield_now!();
            }
            7
        }
    });
    let j = joined.clone();
    let parent: Sl<(), u64> = StacklessTemplate::new("parent", move |cx: StacklessCtx<u64>, _| {
        let quick = quick.clone();
        let j = j.clone();
        #[coroutine]
        move || {
            let child = cx.spawn(&quick, ()).unwrap();
            let _join = JoinOnDrop {
                cx,
                child,
                joined: j,
            };
            select!(cx, |_: &u64| false)
        }
    });
    let mut sched = SimpleScheduler::new();
    let p = sched.spawn(&parent, ()).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.status(p.pid()), Some(Status::Waiting(Wait::Message)));
    assert_eq!(
        sched.status(Pid(1)),
        Some(Status::Stopped),
        "stopped, unjoined"
    );
    let dropped = catch_unwind(AssertUnwindSafe(move || drop(sched)));
    if let Err(payload) = &dropped {
        panic!(
            "dropping the scheduler panicked: {}",
            panic_text(&**payload)
        );
    }
    // The join in the destructor may be refused or may work; it ran.
    assert_ne!(joined.load(Ordering::SeqCst), 0, "the destructor ran");
}

/// The same with a stackful parent, whose destructor joins while its stack is
/// unwound by the scheduler's drop.
#[test]
fn dropping_a_scheduler_whose_stackful_destructor_joins_a_stopped_child_does_not_panic() {
    struct JoinOnDropFul<'a> {
        ctx: &'a mut Ctx<u64>,
        child: Child<u64>,
    }
    impl Drop for JoinOnDropFul<'_> {
        fn drop(&mut self) {
            let r: Result<u64, JoinError> = self.ctx.join(self.child);
            let _ = r;
        }
    }
    isolated(
        "dropping_a_scheduler_whose_stackful_destructor_joins_a_stopped_child_does_not_panic",
        || {
            let quick = Template::new("quick", |_: &mut Ctx<u64>, _: ()| 7u64);
            let parent = Template::new("parent", move |ctx: &mut Ctx<u64>, _: ()| {
                let child = ctx.spawn(&quick, ()).unwrap();
                let j = JoinOnDropFul { ctx, child };
                j.ctx.select(|_| false)
            });
            let mut sched = SimpleScheduler::new();
            let p = sched.spawn(&parent, ()).unwrap();
            sched.run_until_idle();
            assert_eq!(sched.status(p.pid()), Some(Status::Waiting(Wait::Message)));
            assert_eq!(sched.status(Pid(1)), Some(Status::Stopped));
            let dropped = catch_unwind(AssertUnwindSafe(move || drop(sched)));
            if let Err(payload) = &dropped {
                panic!(
                    "dropping the scheduler panicked: {}",
                    panic_text(&**payload)
                );
            }
        },
    );
}

// ---------------------------------------------------------------------------------
// A destructor that spawns while its process is torn down.

/// A killed stackless child whose local spawns, in its destructor, a grandchild
/// (its context works while its coroutine is dropped, `Kernel::drop_stackless`).
/// `Kernel::kill` took the child's list of children before dropping the coroutine,
/// so the grandchild is adopted into a list nobody reads, and survives its parent:
/// an orphan that `live()` still counts and that nobody can join.
#[cfg(feature = "stackless")]
#[test]
fn a_killed_stackless_child_whose_destructor_spawns_leaves_no_orphan() {
    struct SpawnOnDrop(StacklessCtx<u64>, Sl<(), u64>);
    impl Drop for SpawnOnDrop {
        fn drop(&mut self) {
            let _ = self.0.spawn(&self.1, ());
        }
    }
    let waiter: Sl<(), u64> = StacklessTemplate::new("waiter", |cx: StacklessCtx<u64>, _| {
        #[coroutine]
        move || select!(cx, |_: &u64| false)
    });
    let child: Sl<(), u64> = {
        let waiter = waiter.clone();
        StacklessTemplate::new("child", move |cx: StacklessCtx<u64>, _| {
            let waiter = waiter.clone();
            #[coroutine]
            move || {
                let _spawner = SpawnOnDrop(cx, waiter.clone());
                select!(cx, |_: &u64| false)
            }
        })
    };
    let parent: Sl<(), u64> = StacklessTemplate::new("parent", move |cx: StacklessCtx<u64>, _| {
        let child = child.clone();
        #[coroutine]
        move || {
            let _unjoined = cx.spawn(&child, ()).unwrap();
            yield_now!();
            0
        }
    });
    let mut sched = SimpleScheduler::new();
    let p = sched.spawn(&parent, ()).unwrap();
    let run = catch_unwind(AssertUnwindSafe(|| sched.run_until_idle()));
    assert!(run.is_ok(), "run_until_idle panicked");
    assert!(matches!(sched.result(&p), Some(Err(ExitError::Failed(_)))));
    assert_eq!(
        sched.live(),
        0,
        "the killed child's tree is gone (pids {:?} live)",
        (0..6)
            .map(Pid)
            .filter(|&q| sched.status(q).is_some())
            .collect::<Vec<_>>()
    );
}

// ---------------------------------------------------------------------------------
// What a killed stackful process's destructors can still do.

/// Sends one message when dropped.
struct SendOneOnDrop<'a> {
    ctx: &'a mut Ctx<u64>,
    to: Pid,
    msg: u64,
}
impl Drop for SendOneOnDrop<'_> {
    fn drop(&mut self) {
        self.ctx.send_to(self.to, self.msg);
    }
}

/// A killed child (its parent returns with it unjoined) whose destructor sends to
/// a process that outlives it, after the budget is spent (`set_budget(1)`: the
/// send would yield the turn). Before the fix: SIGABRT ("panic in a destructor
/// during cleanup"). Now the send does not yield: the message is delivered, and
/// the child ends Killed.
#[test]
fn a_killed_stackful_childs_destructor_delivers_past_its_budget() {
    isolated(
        "a_killed_stackful_childs_destructor_delivers_past_its_budget",
        || {
            let sink = Template::new("sink", |ctx: &mut Ctx<u64>, _: ()| ctx.receive());
            let child = Template::new("child", |ctx: &mut Ctx<u64>, to: Pid| {
                let bye = SendOneOnDrop { ctx, to, msg: 42 };
                bye.ctx.select(|_| false)
            });
            let mut sched = SimpleScheduler::new();
            sched.record();
            sched.set_budget(1);
            let s = sched.spawn(&sink, ()).unwrap();
            let p = sched.spawn(&killing_parent(child, s.pid()), ()).unwrap();
            sched.run_until_idle();
            assert!(matches!(sched.result(&p), Some(Err(ExitError::Failed(_)))));
            let child = Pid(p.pid().as_u64() + 1);
            assert!(matches!(
                stop_exit(&sched.pull(), child),
                Some(Err(ExitError::Killed(_)))
            ));
            assert_eq!(sched.result(&s), Some(Ok(42)), "the goodbye was delivered");
            assert!(sched.take_undelivered().is_empty());
            assert_eq!(sched.live(), 0);
        },
    );
}

/// A killed child whose destructor sends to a full inbox (capacity 1, Backoff):
/// it cannot wait for room. Before the fix: SIGABRT. Now the message is kept with
/// the undelivered ones, reason `Stopping`, and the child ends Killed.
#[test]
fn a_killed_stackful_childs_destructor_sending_to_a_full_inbox_keeps_the_message() {
    isolated(
        "a_killed_stackful_childs_destructor_sending_to_a_full_inbox_keeps_the_message",
        || {
            let full = Template::new("full", |ctx: &mut Ctx<u64>, _: ()| ctx.select(|m| *m == 0))
                .capacity(1);
            let child = Template::new("child", |ctx: &mut Ctx<u64>, to: Pid| {
                let bye = SendOneOnDrop { ctx, to, msg: 43 };
                bye.ctx.select(|_| false)
            });
            let mut sched = SimpleScheduler::new();
            sched.record();
            let f = sched.spawn(&full, ()).unwrap();
            sched.send(f.pid(), 1).unwrap();
            let p = sched.spawn(&killing_parent(child, f.pid()), ()).unwrap();
            sched.run_until_idle();
            assert!(matches!(sched.result(&p), Some(Err(ExitError::Failed(_)))));
            let child = Pid(p.pid().as_u64() + 1);
            assert!(matches!(
                stop_exit(&sched.pull(), child),
                Some(Err(ExitError::Killed(_)))
            ));
            let kept = sched.take_undelivered();
            assert_eq!(kept.len(), 1, "{kept:?}");
            assert_eq!(kept[0].msg, 43);
            assert_eq!(kept[0].from, Some(child));
            assert_eq!(kept[0].to, Some(f.pid()));
            assert_eq!(kept[0].reason, chronoflow::UndeliveredReason::Stopping);
            assert_eq!(sched.status(f.pid()), Some(Status::Waiting(Wait::Message)));
            assert_eq!(sched.live(), 1);
        },
    );
}

/// The same destructors when the scheduler is dropped, plus one that sleeps and one
/// that joins a child still running: none waits, nothing aborts.
#[test]
fn dropping_a_scheduler_whose_destructors_send_sleep_and_join_does_not_abort() {
    struct Many<'a> {
        ctx: &'a mut Ctx<u64>,
        to: Pid,
        child: Option<Child<u64>>,
    }
    impl Drop for Many<'_> {
        fn drop(&mut self) {
            self.ctx.send_to(self.to, 1);
            self.ctx.send_to(self.to, 2);
            self.ctx.yield_now();
            self.ctx.sleep(std::time::Duration::from_secs(3600));
            assert_eq!(
                self.ctx
                    .receive_timeout(std::time::Duration::from_secs(3600)),
                None
            );
            if let Some(c) = self.child.take() {
                assert!(matches!(
                    self.ctx.join(c),
                    Err(JoinError::Exited(ExitError::Killed(_)))
                ));
            }
        }
    }
    isolated(
        "dropping_a_scheduler_whose_destructors_send_sleep_and_join_does_not_abort",
        || {
            let full = Template::new("full", |ctx: &mut Ctx<u64>, _: ()| ctx.select(|m| *m == 0))
                .capacity(1);
            let waiter = Template::new("waiter", |ctx: &mut Ctx<u64>, _: ()| {
                ctx.select(|m| *m == 0)
            });
            let many = Template::new("many", move |ctx: &mut Ctx<u64>, to: Pid| {
                let child = ctx.spawn(&waiter, ()).unwrap();
                let m = Many {
                    ctx,
                    to,
                    child: Some(child),
                };
                m.ctx.select(|_| false)
            });
            let mut sched = SimpleScheduler::new();
            sched.set_budget(1);
            let f = sched.spawn(&full, ()).unwrap();
            sched.send(f.pid(), 1).unwrap();
            let _m = sched.spawn(&many, f.pid()).unwrap();
            sched.run_until_idle();
            assert_eq!(sched.live(), 3);
            let dropped = catch_unwind(AssertUnwindSafe(move || drop(sched)));
            assert!(dropped.is_ok(), "dropping the scheduler panicked");
        },
    );
}

// ---------------------------------------------------------------------------------
// Deep stackful trees.

/// A stackful chain: each level spawns the next and joins it; the leaf returns
/// the first message it receives.
fn stackful_chain() -> Template<u64, u64, u32, u64> {
    Template::new("chain", |ctx: &mut Ctx<u64>, depth: u32| {
        if depth == 0 {
            return ctx.receive();
        }
        let c = ctx.spawn(&stackful_chain(), depth - 1).unwrap();
        ctx.join(c).unwrap() + 1
    })
    .stack_size(16 * 1024)
}

/// Dropping a scheduler that holds a chain of 5,000 nested stackful children, on a
/// thread with a 2 MiB stack (`Kernel::destroy` and `kill` must not recurse per
/// level).
#[test]
fn dropping_a_scheduler_with_a_chain_of_5000_nested_stackful_children_works() {
    isolated(
        "dropping_a_scheduler_with_a_chain_of_5000_nested_stackful_children_works",
        || {
            on_2mib_thread(|| {
                let mut sched = SimpleScheduler::new();
                let _root = sched.spawn(&stackful_chain(), DEEP).unwrap();
                sched.run_until_idle();
                assert_eq!(sched.live(), DEEP as usize + 1);
                drop(sched);
            });
        },
    );
}

/// A message to the root of a 5,000-deep stackful tree reaches the leaf
/// (`collect_tree` must not recurse per level), and the chain unwinds its joins.
#[test]
fn delivering_to_the_root_of_a_5000_deep_stackful_tree_works() {
    isolated(
        "delivering_to_the_root_of_a_5000_deep_stackful_tree_works",
        || {
            on_2mib_thread(|| {
                let mut sched = SimpleScheduler::new();
                let root = sched.spawn(&stackful_chain(), DEEP).unwrap();
                sched.run_until_idle();
                sched.send(root.pid(), 1).unwrap();
                sched.run_until_idle();
                assert_eq!(sched.result(&root), Some(Ok(1 + DEEP as u64)));
                assert_eq!(sched.live(), 0);
            });
        },
    );
}
