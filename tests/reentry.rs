#![feature(coroutines)]
//! Re-entering a `StacklessCtx` from a callback that the library calls while it
//! holds references into the process's record or inbox: a `select!`/`filter!`
//! predicate, a message's `Clone` (children get clones at spawn) or `Drop`
//! (eviction, reaping), a template's route, the scheduler's clock, a spawn's
//! arguments.
//!
//! `StacklessCtx` is `Copy`, so any of those callbacks can reach it (captured, or
//! smuggled through a thread-local). What a user relies on: such a re-entry is
//! either refused with a clean panic that fails the process that made it
//! (`Err(ExitError::Failed(..))`, the scheduler runs on, other processes are
//! unharmed), or it is harmless. Never a use-after-free, a read of a moved-out
//! message, or an inbox over its capacity.
//!
//! Each scenario runs in a child process (see `support::isolated`): before the fix
//! several of them read freed memory and crashed (SIGSEGV, or an allocator abort), which would
//! take the whole test binary down (and would again, were the fix undone).

mod support;

use std::cell::Cell;
use std::time::Duration;

use chronoflow::stackless::{filter, join, receive, select, send};
use chronoflow::{
    Clock, ExitError, ManualClock, Overflow, Pid, SimpleScheduler, Sleep, StacklessCtx,
    StacklessTemplate, Time,
};
use support::isolated;

// ---------------------------------------------------------------------------------
// A message that notices being read from freed memory.

const MAGIC: u64 = 0x5eed_cafe_f00d_d00d;

/// A message with its payload on the heap and a check word: a `Tok` read from freed
/// or moved-out memory fails `check` (or crashes on its box), and a double drop
/// shows in `LIVE` (or aborts in the allocator).
#[derive(Debug)]
struct Tok {
    id: u64,
    data: Box<[u64; 2]>,
}

/// What the hooks of `Tok` do (per thread: each test's scheduler is on its own).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Hook {
    Off,
    /// `Clone` drains the inbox of the smuggled context's process.
    DrainOnClone,
    /// The first `Drop` sends a fresh `Tok` to the given pid through the smuggled
    /// context (then the hook turns itself off).
    SendOnDrop(Pid),
    /// The first `Drop` takes a message from the smuggled context's inbox (then the
    /// hook turns itself off).
    ReceiveOnDrop,
}

thread_local! {
    /// The context the hooks use (smuggled out of its coroutine).
    static CTX: Cell<Option<StacklessCtx<Tok>>> = const { Cell::new(None) };
    static HOOK: Cell<Hook> = const { Cell::new(Hook::Off) };
    /// Toks alive: made or cloned, minus dropped.
    static LIVE: Cell<i64> = const { Cell::new(0) };
    /// Toks seen with a bad check word.
    static CORRUPT: Cell<u64> = const { Cell::new(0) };
}

impl Tok {
    fn new(id: u64) -> Tok {
        LIVE.set(LIVE.get() + 1);
        Tok {
            id,
            data: Box::new([MAGIC, id]),
        }
    }

    /// Whether this is a sound `Tok`; counts it in `CORRUPT` if not.
    fn check(&self) -> bool {
        let ok = self.data[0] == MAGIC && self.data[1] == self.id;
        if !ok {
            CORRUPT.set(CORRUPT.get() + 1);
        }
        ok
    }
}

impl Clone for Tok {
    fn clone(&self) -> Tok {
        if HOOK.get() == Hook::DrainOnClone
            && let Some(cx) = CTX.get()
        {
            HOOK.set(Hook::Off);
            while let Some(t) = cx.try_receive() {
                drop(t);
            }
        }
        self.check();
        Tok::new(self.id)
    }
}

impl Drop for Tok {
    fn drop(&mut self) {
        LIVE.set(LIVE.get() - 1);
        match HOOK.get() {
            Hook::SendOnDrop(to) => {
                HOOK.set(Hook::Off);
                if let Some(cx) = CTX.get() {
                    let _ = cx.try_send_to(to, Tok::new(1000 + self.id));
                }
            }
            Hook::ReceiveOnDrop => {
                HOOK.set(Hook::Off);
                if let Some(cx) = CTX.get() {
                    drop(cx.try_receive());
                }
            }
            Hook::Off | Hook::DrainOnClone => {}
        }
    }
}

type Sl<A, R> = StacklessTemplate<Tok, Tok, A, R>;

/// Returns the id of the first message it receives.
fn bystander() -> Sl<(), u64> {
    StacklessTemplate::new("bystander", |cx: StacklessCtx<Tok>, _: ()| {
        #[coroutine]
        move || receive!(cx).id
    })
}

/// What the user relies on after a re-entry: the process that made it failed with a
/// message that says so (the context refuses to be used from a callback inside one
/// of its own calls); no message was read from freed memory; the scheduler runs on
/// (a bystander that was waiting gets its message, a new process runs); `live`
/// processes are left; and dropping the scheduler drops every message exactly once.
fn assert_refused<R: std::fmt::Debug>(
    sched: SimpleScheduler<Tok>,
    result: Option<Result<R, ExitError>>,
    bystander_pid: Pid,
    live: usize,
) {
    HOOK.set(Hook::Off);
    CTX.set(None);
    match &result {
        Some(Err(ExitError::Failed(msg))) => assert!(
            msg.contains("re-entrant"),
            "the process failed, but not for its re-entry: {msg}"
        ),
        other => panic!("the re-entering process did not fail for it: {other:?}"),
    }
    assert_whole(sched, bystander_pid, live);
}

/// Runs `picky` (created, given the messages `0..messages`, then started) beside
/// a bystander, and expects its re-entry refused: see [`assert_refused`].
fn assert_refused_with(picky: &Sl<(), u64>, messages: u64) {
    let mut sched = SimpleScheduler::new();
    let b = sched.spawn(&bystander(), ()).unwrap();
    let h = sched.create(picky, ()).unwrap();
    for i in 0..messages {
        sched.send(h.pid(), Tok::new(i)).unwrap();
    }
    sched.start(h.pid()).unwrap();
    sched.run_until_idle();
    let result = sched.result(&h);
    assert_refused(sched, result, b.pid(), 0);
}

/// Runs `sched` until idle, expecting the refusal of a re-entry to reach the
/// caller of the run: the re-entry came from code the kernel ran outside the
/// process's own body (the owner's signal sink, or a destructor of messages the
/// kernel freed), whose panic the kernel reports to its caller once the run is
/// over instead of failing a process for it.
fn run_reported(sched: &mut SimpleScheduler<Tok>) {
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sched.run_until_idle()));
    HOOK.set(Hook::Off);
    CTX.set(None);
    let payload = run.expect_err("the refusal reaches the caller of the run");
    let msg = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("");
    assert!(
        msg.contains("re-entrant"),
        "another panic reached the caller: {msg}"
    );
}

/// After a refused re-entry: nothing was read from freed memory, the bystander
/// and a new process run to their ends, `live` processes are left, and every
/// message is dropped exactly once.
fn assert_whole(mut sched: SimpleScheduler<Tok>, bystander_pid: Pid, live: usize) {
    assert_eq!(CORRUPT.get(), 0, "messages were read from freed memory");
    sched.send(bystander_pid, Tok::new(77)).unwrap();
    sched.run_until_idle();
    let b = sched.status(bystander_pid).expect("the bystander is known");
    assert_eq!(
        b,
        chronoflow::Status::Stopped,
        "the bystander ran to its end"
    );
    // And a new process still runs.
    let fresh = sched.spawn(&bystander(), ()).unwrap();
    sched.send(fresh.pid(), Tok::new(78)).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&fresh), Some(Ok(78)));
    assert_eq!(sched.live(), live, "processes left");
    drop(sched);
    assert_eq!(
        LIVE.get(),
        0,
        "every message dropped exactly once (negative: a double drop; positive: a leak)"
    );
    assert_eq!(CORRUPT.get(), 0, "messages were read from freed memory");
}

// ---------------------------------------------------------------------------------
// Predicates.

/// A `select!` predicate that takes messages from the inbox it is scanning. Before the
/// fix the first call drained the inbox, which then gives its buffer back (it grew past
/// 64 slots), and the scan goes on over the freed buffer: use-after-free
/// (`find_from` holds `as_slices()` of the `VecDeque`, src/kernel/inbox.rs, while
/// `try_receive` pops and shrinks it).
#[test]
fn a_select_predicate_that_takes_from_the_inbox_is_refused() {
    isolated(
        "a_select_predicate_that_takes_from_the_inbox_is_refused",
        || {
            let picky: Sl<(), u64> = StacklessTemplate::new("picky", |cx: StacklessCtx<Tok>, _| {
                #[coroutine]
                move || {
                    let got = select!(cx, |m: &Tok| {
                        while let Some(t) = cx.try_receive() {
                            drop(t);
                        }
                        m.check() && m.id == 50
                    });
                    got.id
                }
            });
            assert_refused_with(&picky, 100);
        },
    );
}

/// A `select!` predicate that sends to its own process: the push reallocates the
/// inbox's buffer under the scan, which goes on reading the old one.
#[test]
fn a_select_predicate_that_sends_to_its_own_inbox_is_refused() {
    isolated(
        "a_select_predicate_that_sends_to_its_own_inbox_is_refused",
        || {
            let picky: Sl<(), u64> = StacklessTemplate::new("picky", |cx: StacklessCtx<Tok>, _| {
                #[coroutine]
                move || {
                    let mut junk: Vec<Box<[u64; 8]>> = Vec::new();
                    let got = select!(cx, |m: &Tok| {
                        for i in 0..40 {
                            let _ = cx.try_send_to(cx.pid(), Tok::new(500 + i));
                        }
                        // Ordinary allocations, which may reuse what was freed.
                        for _ in 0..8 {
                            junk.push(Box::new([u64::MAX; 8]));
                        }
                        m.check() && m.id == 3
                    });
                    got.id
                }
            });
            assert_refused_with(&picky, 4);
        },
    );
}

/// A `filter!` predicate that takes from the inbox `filter!` is draining. (The
/// predicate sees a message already taken out, so before the fix this was
/// harmless in practice, though it makes a second `&mut` to the record: guards the fix.)
#[test]
fn a_filter_predicate_that_takes_from_the_inbox_is_refused() {
    isolated(
        "a_filter_predicate_that_takes_from_the_inbox_is_refused",
        || {
            let picky: Sl<(), u64> = StacklessTemplate::new("picky", |cx: StacklessCtx<Tok>, _| {
                #[coroutine]
                move || {
                    let got = filter!(cx, |m: &Tok| {
                        drop(cx.try_receive());
                        m.check() && m.id >= 90
                    });
                    got.id
                }
            });
            assert_refused_with(&picky, 100);
        },
    );
}

// ---------------------------------------------------------------------------------
// Message Clone and Drop.

/// A message whose `Clone` takes from the parent's inbox while a spawn copies that
/// inbox into the child (`Kernel::adopt` iterates `p.inbox.queue` and clones each
/// message, src/kernel/tree.rs): the drained inbox frees its buffer under the iterator.
#[test]
fn a_message_clone_that_drains_the_parents_inbox_during_spawn_is_refused() {
    isolated(
        "a_message_clone_that_drains_the_parents_inbox_during_spawn_is_refused",
        || {
            let child: Sl<(), u64> = StacklessTemplate::new("child", |cx: StacklessCtx<Tok>, _| {
                #[coroutine]
                move || {
                    let mut n = 0;
                    while cx.try_receive().is_some() {
                        n += 1;
                    }
                    n
                }
            });
            let parent: Sl<(), u64> =
                StacklessTemplate::new("parent", move |cx: StacklessCtx<Tok>, _| {
                    let child = child.clone();
                    #[coroutine]
                    move || {
                        CTX.set(Some(cx));
                        HOOK.set(Hook::DrainOnClone);
                        let c = cx.spawn(&child, ()).unwrap();
                        HOOK.set(Hook::Off);
                        join!(cx, c).unwrap()
                    }
                });
            assert_refused_with(&parent, 100);
        },
    );
}

/// A message evicted by `Overflow::DropOldest` whose `Drop` sends, through the
/// sender's context, to the inbox being evicted from: the nested delivery filled
/// the slot the eviction made, and the outer one pushed anyway, so the inbox ended
/// over its capacity (src/kernel/deliver.rs `push_into_full`). Now refused.
#[test]
fn a_message_drop_that_sends_during_an_eviction_is_refused() {
    isolated(
        "a_message_drop_that_sends_during_an_eviction_is_refused",
        || {
            let hoarder: Sl<(), u64> =
                StacklessTemplate::new("hoarder", |cx: StacklessCtx<Tok>, _| {
                    #[coroutine]
                    move || select!(cx, |_: &Tok| false).id
                })
                .capacity(2)
                .overflow(Overflow::DropOldest);
            let mut sched = SimpleScheduler::new();
            let b = sched.spawn(&bystander(), ()).unwrap();
            let hd = sched.spawn(&hoarder, ()).unwrap();
            let target = hd.pid();
            let sender: Sl<(), u64> =
                StacklessTemplate::new("sender", move |cx: StacklessCtx<Tok>, _| {
                    #[coroutine]
                    move || {
                        CTX.set(Some(cx));
                        send!(cx, Tok::new(1));
                        send!(cx, Tok::new(2));
                        // The inbox is full: this evicts Tok 1, whose drop sends again.
                        HOOK.set(Hook::SendOnDrop(target));
                        send!(cx, Tok::new(3));
                        HOOK.set(Hook::Off);
                        3
                    }
                })
                .route(move |_: &Tok| Some(target));
            let s = sched.spawn(&sender, ()).unwrap();
            // The evicted message is dropped by the scheduler: the refusal of its
            // re-entry is reported to the caller of the run, and the send goes on.
            run_reported(&mut sched);
            sched.run_until_idle();
            let len = sched.inbox_len(target).expect("the hoarder lives");
            assert!(len <= 2, "an inbox of capacity 2 holds {len} messages");
            assert_eq!(sched.result(&s), Some(Ok(3)), "the sender went on");
            assert_whole(sched, b.pid(), 1);
        },
    );
}

/// A message left in a stopped child's inbox whose `Drop` takes from the parent's
/// inbox while the parent's join reaps the child (the record is dropped inside
/// `take_child`). Harmless in practice before the fix: guards it.
#[test]
fn a_message_drop_that_receives_while_a_child_is_reaped_is_refused() {
    isolated(
        "a_message_drop_that_receives_while_a_child_is_reaped_is_refused",
        || {
            // Ends at once, leaving its copy of the parent's inbox untouched.
            let child: Sl<(), u64> =
                StacklessTemplate::new("child", |_cx: StacklessCtx<Tok>, _| {
                    #[coroutine]
                    move || {
                        if false {
                            yield chronoflow::Pending::YIELD;
                        }
                        0
                    }
                });
            let parent: Sl<(), u64> =
                StacklessTemplate::new("parent", move |cx: StacklessCtx<Tok>, _| {
                    let child = child.clone();
                    #[coroutine]
                    move || {
                        CTX.set(Some(cx));
                        let c = cx.spawn(&child, ()).unwrap();
                        HOOK.set(Hook::ReceiveOnDrop);
                        let r = join!(cx, c).unwrap();
                        HOOK.set(Hook::Off);
                        r + cx.inbox_len() as u64
                    }
                });
            let mut sched = SimpleScheduler::new();
            let b = sched.spawn(&bystander(), ()).unwrap();
            let h = sched.create(&parent, ()).unwrap();
            for i in 0..3 {
                sched.send(h.pid(), Tok::new(i)).unwrap();
            }
            sched.start(h.pid()).unwrap();
            // The child's messages are dropped by the kernel as it reaps the
            // child: the refusal is reported to the caller, and the join goes on.
            run_reported(&mut sched);
            sched.run_until_idle();
            assert!(
                matches!(sched.result(&h), Some(Ok(_))),
                "the parent's join went on"
            );
            assert_whole(sched, b.pid(), 0);
        },
    );
}

// ---------------------------------------------------------------------------------
// Route, clock, arguments.

/// A route closure that re-enters its process's context: it is called while the
/// context holds the record (`self.enter().1.route.as_ref()`, src/engine/stackless/context.rs
/// `poll_send`). Harmless in practice before the fix: guards it.
#[test]
fn a_route_that_re_enters_the_context_is_refused() {
    isolated("a_route_that_re_enters_the_context_is_refused", || {
        let mut sched = SimpleScheduler::new();
        let b = sched.spawn(&bystander(), ()).unwrap();
        let sink = sched.spawn(&bystander(), ()).unwrap();
        let to = sink.pid();
        let sender: Sl<(), u64> = StacklessTemplate::new("sender", |cx: StacklessCtx<Tok>, _| {
            #[coroutine]
            move || {
                CTX.set(Some(cx));
                send!(cx, Tok::new(5));
                5
            }
        })
        .route(move |_: &Tok| {
            if let Some(cx) = CTX.get() {
                drop(cx.try_receive());
                let _ = cx.inbox_len();
            }
            Some(to)
        });
        let s = sched.create(&sender, ()).unwrap();
        sched.send(s.pid(), Tok::new(6)).unwrap();
        sched.start(s.pid()).unwrap();
        sched.run_until_idle();
        let result = sched.result(&s);
        assert_refused(sched, result, b.pid(), 1);
    });
}

/// A clock that re-enters the context of the process that reads it (`cx.now()`,
/// and `sleep!`, which arms its timer with the clock while it holds the kernel and
/// the record). Harmless in practice before the fix: guards it.
#[test]
fn a_clock_that_re_enters_the_context_is_refused() {
    thread_local! {
        static IN_TURN: Cell<bool> = const { Cell::new(false) };
    }
    struct Reentrant(ManualClock);
    impl Clock for Reentrant {
        fn now(&self) -> Time {
            if IN_TURN.get()
                && let Some(cx) = CTX.get()
            {
                drop(cx.try_receive());
                let _ = cx.inbox_len();
            }
            self.0.now()
        }
    }
    isolated("a_clock_that_re_enters_the_context_is_refused", || {
        let clock = ManualClock::new(Time(1_000_000_000));
        let sleeper: Sl<(), u64> = StacklessTemplate::new("sleeper", |cx: StacklessCtx<Tok>, _| {
            #[coroutine]
            move || {
                CTX.set(Some(cx));
                // The clock re-enters only inside this process's own calls
                // (the scheduler also reads it between turns).
                IN_TURN.set(true);
                let t = cx.now();
                let mut nap = Sleep::new(Duration::from_secs(1));
                let first = cx.poll_sleep(&mut nap); // arms the timer
                IN_TURN.set(false);
                if let Err(pending) = first {
                    yield pending;
                    while let Err(pending) = cx.poll_sleep(&mut nap) {
                        yield pending;
                    }
                }
                t.as_nanos()
            }
        });
        let mut sched = SimpleScheduler::new();
        sched.set_clock(Reentrant(clock.clone()));
        let b = sched.spawn(&bystander(), ()).unwrap();
        let s = sched.create(&sleeper, ()).unwrap();
        for i in 0..3 {
            sched.send(s.pid(), Tok::new(i)).unwrap();
        }
        sched.start(s.pid()).unwrap();
        sched.run_until_idle();
        clock.advance(Duration::from_secs(2));
        sched.run_until_idle();
        let result = sched.result(&s);
        assert_refused(sched, result, b.pid(), 0);
    });
}

thread_local! {
    /// Which hook of `Args` re-enters the smuggled context: its `Clone` (true) or
    /// its `Drop` (false). One at a time: a destructor that panics while a panic
    /// unwinds aborts the program, as anywhere in Rust.
    static ARGS_CLONE_REENTERS: Cell<bool> = const { Cell::new(false) };
}

/// Spawn arguments whose `Clone` or `Drop` re-enters the smuggled context.
struct Args;

impl Clone for Args {
    fn clone(&self) -> Args {
        if ARGS_CLONE_REENTERS.get()
            && let Some(cx) = CTX.get()
        {
            drop(cx.try_receive());
        }
        Args
    }
}

impl Drop for Args {
    fn drop(&mut self) {
        // Once (it takes the context): the copy dropped while the refusal unwinds
        // must not panic again.
        if !ARGS_CLONE_REENTERS.get()
            && let Some(cx) = CTX.take()
        {
            let _ = cx.try_send_to(cx.pid(), Tok::new(900));
        }
    }
}

/// Arguments whose `Clone` (or `Drop`) re-enters the spawning parent's context
/// while the child is being made (`create` in src/engine/stackless/mod.rs runs the
/// template's function, which clones and drops them, inside the parent's
/// `cx.spawn`, between allocating the child's record and adopting it).
fn spawn_arguments_scenario(clone_reenters: bool) {
    ARGS_CLONE_REENTERS.set(clone_reenters);
    let child: Sl<Args, u64> = StacklessTemplate::new("child", |cx: StacklessCtx<Tok>, a: Args| {
        let copy = a.clone();
        drop(a);
        #[coroutine]
        move || {
            let _keep = &copy;
            receive!(cx).id
        }
    });
    let parent: Sl<(), u64> = StacklessTemplate::new("parent", move |cx: StacklessCtx<Tok>, _| {
        let child = child.clone();
        #[coroutine]
        move || {
            CTX.set(Some(cx));
            let c = cx.spawn(&child, Args).unwrap();
            CTX.set(None);
            let mine = receive!(cx).id;
            mine + join!(cx, c).unwrap()
        }
    });
    assert_refused_with(&parent, 3);
}

#[test]
fn spawn_arguments_whose_clone_re_enters_the_parents_context_are_refused() {
    isolated(
        "spawn_arguments_whose_clone_re_enters_the_parents_context_are_refused",
        || spawn_arguments_scenario(true),
    );
}

#[test]
fn spawn_arguments_whose_drop_re_enters_the_parents_context_are_refused() {
    isolated(
        "spawn_arguments_whose_drop_re_enters_the_parents_context_are_refused",
        || spawn_arguments_scenario(false),
    );
}

// ---------------------------------------------------------------------------------
// Signal sink.

/// A signal sink that re-enters the context of the process whose signal it takes:
/// the SEND signal is emitted inside `send_to!` (`emit` holds the sender's record
/// while it calls the sink, src/kernel/record.rs). It re-enters once (it takes
/// the smuggled context), so that the signals emitted between turns do not use it.
#[test]
fn a_signal_sink_that_re_enters_the_context_is_refused() {
    isolated(
        "a_signal_sink_that_re_enters_the_context_is_refused",
        || {
            let mut sched = SimpleScheduler::new();
            sched.set_sink(|_signal: chronoflow::Signal<Tok>| {
                if let Some(cx) = CTX.take() {
                    drop(cx.try_receive());
                    let _ = cx.try_send_to(cx.pid(), Tok::new(600));
                }
            });
            let b = sched.spawn(&bystander(), ()).unwrap();
            let sink = sched.spawn(&bystander(), ()).unwrap();
            let to = sink.pid();
            let sender: Sl<(), u64> =
                StacklessTemplate::new("sender", move |cx: StacklessCtx<Tok>, _| {
                    #[coroutine]
                    move || {
                        CTX.set(Some(cx));
                        chronoflow::stackless::send_to!(cx, to, Tok::new(7));
                        7
                    }
                });
            let s = sched.create(&sender, ()).unwrap();
            for i in 0..3 {
                sched.send(s.pid(), Tok::new(i)).unwrap();
            }
            sched.start(s.pid()).unwrap();
            // The sink is the owner's code: its refused re-entry is reported to
            // the caller of the run, and the send it watched goes on.
            run_reported(&mut sched);
            sched.run_until_idle();
            assert_eq!(sched.result(&s), Some(Ok(7)));
            assert_whole(sched, b.pid(), 0);
        },
    );
}
