//! Adversarial tests of servers' timers and stash (`ServerCtx::timers`,
//! `ServerCtx::stash_*`), of `Ctx::children`/`Ctx::stop_child`, of
//! `SimpleScheduler::shutdown` and of durable servers: each names what should
//! hold and attacks it from safe code (ordering, lost or duplicated mail,
//! panics of user code at every re-entry point, leaks of the kernel's timers,
//! shutdowns that hang or kill wrongly).

mod support;

#[path = "support/stories.rs"]
mod stories;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use chronoflow::otp::server::{self, Flow, From, Init, Reply, Server, ServerCtx, ServerRef, Timer};
use chronoflow::otp::supervisor::{ChildSpec, Shutdown, Supervisor};
use chronoflow::{
    CallError, Ctx, ExitError, JoinError, Local, Mail, ManualClock, Pid, Reason, SimpleScheduler,
    Status, Template, Time,
};

type Log = Rc<RefCell<Vec<String>>>;

// ---------------------------------------------------------------------------
// A probe server: timers, stash, and user values that panic when dropped.
// ---------------------------------------------------------------------------

/// A value of user code: counted when dropped, and panics when dropped if
/// asked (not while the thread unwinds, as the other suites do, unless
/// `always`).
#[derive(Debug)]
struct Tick {
    name: &'static str,
    drops: Rc<Cell<u32>>,
    bad_drop: bool,
    always: bool,
}

impl Clone for Tick {
    fn clone(&self) -> Self {
        Tick {
            name: self.name,
            drops: self.drops.clone(),
            bad_drop: self.bad_drop,
            always: self.always,
        }
    }
}

impl Drop for Tick {
    fn drop(&mut self) {
        self.drops.set(self.drops.get() + 1);
        if self.bad_drop && (self.always || !std::thread::panicking()) {
            panic!("cannot drop {}", self.name);
        }
    }
}

enum Cmd {
    After(&'static str, u64),
    Every(&'static str, u64),
    AfterBadDrop(&'static str, u64),
    Cancel(&'static str),
    CancelAll,
    /// Cancels timer `.0` when its message `.0` comes.
    CancelOnTick(&'static str),
    /// From now on, stashes calls under 100, notes, items and messages.
    Hold,
    /// Stops holding, unstashes all.
    Release,
    /// Stops holding, continues; the continuation unstashes all.
    ReleaseInContinue,
    Clear,
    /// Unstashes the oldest, then clears the rest.
    UnstashOneThenClear,
    Note(&'static str),
    /// A cast that carries a user value (stashed while holding).
    Item(Tick),
    Stop,
    Fail,
    /// `terminate` arms a timer and an interval.
    ArmInTerminate,
    /// `terminate` panics.
    PanicInTerminate,
}

enum K {
    UnstashAll,
}

struct Probe {
    log: Log,
    drops: Rc<Cell<u32>>,
    holding: bool,
    timers: Vec<(&'static str, Timer)>,
    cancel_on: Option<&'static str>,
    arm_in_terminate: bool,
    panic_in_terminate: bool,
}

impl Probe {
    fn tick(&self, name: &'static str) -> Tick {
        Tick {
            name,
            drops: self.drops.clone(),
            bad_drop: false,
            always: false,
        }
    }

    fn note(&self, what: String) {
        self.log.borrow_mut().push(what);
    }
}

impl Server for Probe {
    type Engine = server::Stackful;
    type Msg = Tick;
    type Args = ProbeArgs;
    type Call = u32;
    type Reply = u32;
    type Cast = Cmd;
    type Continue = K;

    const STASH_CAPACITY: usize = 8;

    fn init(_: &mut ServerCtx<Self>, (log, drops): Self::Args) -> Init<Self> {
        Init::Ok(Probe {
            log,
            drops,
            holding: false,
            timers: Vec::new(),
            cancel_on: None,
            arm_in_terminate: false,
            panic_in_terminate: false,
        })
    }

    fn handle_call(&mut self, ctx: &mut ServerCtx<Self>, n: u32, from: From<u32>) -> Reply<Self> {
        if self.holding && n < 100 {
            ctx.stash_call(n, from).unwrap();
            return Reply::NoReply;
        }
        self.note(format!("call {n}"));
        Reply::Reply(n * 2)
    }

    fn handle_cast(&mut self, ctx: &mut ServerCtx<Self>, cmd: Cmd) -> Flow<Self> {
        match cmd {
            Cmd::After(name, ms) => {
                let t = ctx
                    .timers()
                    .send_after(Duration::from_millis(ms), self.tick(name));
                self.timers.push((name, t));
            }
            Cmd::Every(name, ms) => {
                let t = ctx
                    .timers()
                    .send_interval(Duration::from_millis(ms), self.tick(name));
                self.timers.push((name, t));
            }
            Cmd::AfterBadDrop(name, ms) => {
                let mut tick = self.tick(name);
                tick.bad_drop = true;
                let t = ctx.timers().send_after(Duration::from_millis(ms), tick);
                self.timers.push((name, t));
            }
            Cmd::Cancel(name) => {
                let i = self.timers.iter().position(|(n, _)| *n == name).unwrap();
                let (_, t) = self.timers.remove(i);
                let armed = ctx.timers().cancel(t);
                self.note(format!("cancel {name}: {armed}"));
            }
            Cmd::CancelAll => {
                let n = ctx.timers().cancel_all();
                self.note(format!("cancel all: {n}"));
            }
            Cmd::CancelOnTick(name) => self.cancel_on = Some(name),
            Cmd::Hold => self.holding = true,
            Cmd::Release => {
                self.holding = false;
                let n = ctx.unstash_all();
                self.note(format!("release {n}"));
            }
            Cmd::ReleaseInContinue => {
                self.holding = false;
                return Flow::ContinueWith(K::UnstashAll);
            }
            Cmd::Clear => {
                let n = ctx.clear_stash();
                self.note(format!("cleared {n}"));
            }
            Cmd::UnstashOneThenClear => {
                self.holding = false;
                let one = ctx.unstash();
                let n = ctx.clear_stash();
                self.note(format!("unstashed {one}, cleared {n}"));
            }
            Cmd::Note(name) if self.holding => {
                ctx.stash_cast(Cmd::Note(name)).unwrap();
            }
            Cmd::Note(name) => self.note(format!("note {name}")),
            Cmd::Item(tick) if self.holding => {
                ctx.stash_cast(Cmd::Item(tick)).unwrap();
            }
            Cmd::Item(tick) => self.note(format!("item {}", tick.name)),
            Cmd::Stop => return Flow::Stop(Reason::custom("stopped")),
            Cmd::Fail => panic!("asked to fail"),
            Cmd::ArmInTerminate => self.arm_in_terminate = true,
            Cmd::PanicInTerminate => self.panic_in_terminate = true,
        }
        Flow::Continue
    }

    fn handle_info(&mut self, ctx: &mut ServerCtx<Self>, mail: Mail<Tick>) -> Flow<Self> {
        if self.holding {
            ctx.stash_info(mail).unwrap();
            return Flow::Continue;
        }
        let at = ctx.now().as_nanos() / 1_000_000;
        match mail {
            Mail::Msg(tick) => {
                self.note(format!("{} at {at}", tick.name));
                if self.cancel_on == Some(tick.name) {
                    let i = self
                        .timers
                        .iter()
                        .position(|(n, _)| *n == tick.name)
                        .unwrap();
                    let (_, t) = self.timers.remove(i);
                    let armed = ctx.timers().cancel(t);
                    self.note(format!("cancel {}: {armed}", tick.name));
                }
            }
            other => self.note(format!("{other:?} at {at}")),
        }
        Flow::Continue
    }

    fn handle_continue(&mut self, ctx: &mut ServerCtx<Self>, k: K) -> Flow<Self> {
        match k {
            K::UnstashAll => {
                let n = ctx.unstash_all();
                self.note(format!("continue, unstashed {n}"));
            }
        }
        Flow::Continue
    }

    fn terminate(&mut self, ctx: &mut ServerCtx<Self>, reason: &Reason) {
        let armed = ctx.timers().len();
        let stashed = ctx.stashed();
        self.note(format!(
            "terminate {reason}, {armed} armed, {stashed} stashed"
        ));
        if self.arm_in_terminate {
            let once = self.tick("late");
            let every = self.tick("late every");
            ctx.timers().send_after(Duration::from_millis(10), once);
            ctx.timers().send_interval(Duration::from_millis(10), every);
        }
        if self.panic_in_terminate {
            panic!("terminate fails");
        }
    }
}

type ProbeArgs = (Log, Rc<Cell<u32>>);

fn probe() -> Template<Tick, Tick, ProbeArgs, (), Local> {
    server::template::<Probe>("probe")
}

struct Setup {
    sched: SimpleScheduler<Tick>,
    clock: ManualClock,
    server: ServerRef<Probe>,
    log: Log,
    drops: Rc<Cell<u32>>,
}

impl Setup {
    fn new() -> Setup {
        let clock = ManualClock::new(Time::from_nanos(0));
        let mut sched = SimpleScheduler::new();
        sched.set_clock(clock.clone());
        let (log, drops) = (Log::default(), Rc::new(Cell::new(0)));
        let pid = sched
            .spawn(&probe(), (log.clone(), drops.clone()))
            .unwrap()
            .pid();
        sched.run_until_idle();
        Setup {
            sched,
            clock,
            server: ServerRef::new(pid),
            log,
            drops,
        }
    }

    fn cast(&mut self, cmd: Cmd) {
        self.sched.cast_server(&self.server, cmd);
        self.sched.run_until_idle();
    }

    fn advance(&mut self, ms: u64) {
        self.clock.advance(Duration::from_millis(ms));
        self.sched.run_until_idle();
    }

    fn log(&self) -> Vec<String> {
        self.log.borrow().clone()
    }

    fn tick(&self, name: &'static str) -> Tick {
        Tick {
            name,
            drops: self.drops.clone(),
            bad_drop: false,
            always: false,
        }
    }

    fn ended(&self) -> bool {
        self.sched
            .status(self.server.pid())
            .is_none_or(|st| st == Status::Stopped)
    }

    /// A process that calls the server with `n` (waiting forever).
    fn caller(&mut self, n: u32) -> chronoflow::Handle<Result<u32, CallError>> {
        let server = self.server;
        let t = Template::local("caller", move |ctx: &mut Ctx<Tick>, ()| {
            server.call_timeout(ctx, n, None)
        });
        let h = self.sched.spawn(&t, ()).unwrap();
        self.sched.run_until_idle();
        h
    }
}

// ---------------------------------------------------------------------------
// Timers
// ---------------------------------------------------------------------------

#[test]
fn an_interval_cancelled_from_its_own_tick_never_ticks_again() {
    let mut s = Setup::new();
    s.cast(Cmd::Every("t", 10));
    s.cast(Cmd::CancelOnTick("t"));
    s.advance(10);
    s.advance(100);
    assert_eq!(s.log(), ["t at 10", "cancel t: true"]);
    assert_eq!(s.sched.next_deadline(), None, "no kernel timer is left");
    // The delivered copy and the armed original.
    assert_eq!(s.drops.get(), 2);
    assert_eq!(s.sched.timers_dropped(), 0);
}

#[test]
fn an_interval_cancelled_with_its_tick_fired_unread_delivers_nothing_more() {
    let mut s = Setup::new();
    s.cast(Cmd::Every("t", 10));
    // Late by several periods: the tick due at 10 has fired; the cancel was
    // queued ahead of its notice.
    s.clock.advance(Duration::from_millis(35));
    s.sched.cast_server(&s.server, Cmd::Cancel("t"));
    s.sched.run_until_idle();
    s.advance(1000);
    assert_eq!(s.log(), ["cancel t: true"]);
    assert_eq!(s.sched.next_deadline(), None);
    assert_eq!(s.drops.get(), 1, "the original only: no copy was made");
}

#[test]
fn an_interval_keeps_exact_count_over_irregular_steps() {
    let mut s = Setup::new();
    s.cast(Cmd::Every("t", 10));
    for _ in 0..100 {
        s.advance(7);
    }
    // At 700: due at 10, 20, ..., 700.
    let ticks = s.log().iter().filter(|l| l.starts_with("t at")).count();
    assert_eq!(ticks, 70);
    s.cast(Cmd::CancelAll);
    assert_eq!(s.sched.next_deadline(), None);
    // One copy per tick, and the original: nothing copied twice or kept.
    assert_eq!(s.drops.get(), 71);
}

#[test]
fn a_zero_period_interval_ticks_once_per_nanosecond_no_more() {
    let mut s = Setup::new();
    s.cast(Cmd::Every("z", 0));
    s.sched.run_until_idle();
    assert!(s.log().is_empty(), "nothing while the clock stands still");
    s.clock.advance(Duration::from_nanos(5));
    s.sched.run_until_idle();
    assert_eq!(s.log().len(), 5, "{:?}", s.log());
    s.cast(Cmd::Cancel("z"));
    s.advance(1);
    assert_eq!(s.log().len(), 6, "{:?}", s.log());
}

#[test]
fn timers_armed_in_terminate_do_not_outlive_the_server() {
    let mut s = Setup::new();
    s.cast(Cmd::Every("t", 10));
    s.cast(Cmd::ArmInTerminate);
    s.cast(Cmd::Stop);
    assert!(s.ended());
    assert_eq!(
        s.log(),
        ["terminate \"stopped\", 0 armed, 0 stashed"],
        "the loop's own timers were cancelled before terminate"
    );
    assert_eq!(
        s.sched.next_deadline(),
        None,
        "a kernel timer is left armed for an ended server"
    );
    s.advance(100);
    assert_eq!(s.sched.timers_dropped(), 0);
}

#[test]
fn timers_armed_in_terminate_after_a_panic_do_not_outlive_the_server() {
    let mut s = Setup::new();
    s.cast(Cmd::ArmInTerminate);
    s.cast(Cmd::Fail);
    assert!(s.ended());
    assert_eq!(s.sched.next_deadline(), None);
    s.advance(100);
    assert_eq!(s.sched.timers_dropped(), 0);
}

#[test]
fn cancelling_a_timer_whose_message_panics_on_drop_fails_the_server_cleanly() {
    let mut s = Setup::new();
    s.cast(Cmd::AfterBadDrop("bad", 10));
    s.cast(Cmd::Every("t", 10));
    s.cast(Cmd::Cancel("bad"));
    assert!(s.ended());
    let log = s.log();
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(
        log[0].starts_with("terminate failed") && log[0].contains("cannot drop bad"),
        "{log:?}"
    );
    assert!(log[0].contains("0 armed"), "{log:?}");
    assert_eq!(s.sched.next_deadline(), None);
    s.advance(100);
    assert_eq!(s.log().len(), 1, "the cancelled message never comes");
    assert_eq!(s.sched.timers_dropped(), 0);
    // "bad" once, the interval's original once.
    assert_eq!(s.drops.get(), 2);
}

#[test]
fn a_killed_server_drops_each_timer_message_exactly_once() {
    let mut s = Setup::new();
    s.cast(Cmd::After("a", 10));
    s.cast(Cmd::Every("b", 5));
    s.advance(5);
    assert_eq!(s.log(), ["b at 5"]);
    let drops_before = s.drops.get();
    s.sched.exit_signal(s.server.pid(), Reason::Kill);
    s.sched.run_until_idle();
    assert!(s.ended());
    s.advance(100);
    assert_eq!(s.log(), ["b at 5"], "no terminate on a kill");
    // "a" and the interval's original: each once.
    assert_eq!(s.drops.get() - drops_before, 2);
    assert_eq!(s.sched.next_deadline(), None);
}

#[test]
fn a_timer_message_stashed_then_cancelled_is_still_handled_once() {
    let mut s = Setup::new();
    s.cast(Cmd::After("a", 10));
    s.cast(Cmd::Hold);
    s.advance(10);
    // Delivered, so stashed: no longer armed.
    s.cast(Cmd::Cancel("a"));
    s.cast(Cmd::Release);
    assert_eq!(s.log(), ["cancel a: false", "release 1", "a at 10"]);
    assert_eq!(s.drops.get(), 1);
}

// ---------------------------------------------------------------------------
// Stash
// ---------------------------------------------------------------------------

#[test]
fn unstashed_mail_after_a_continuation_keeps_stash_order_ahead_of_the_inbox() {
    let mut s = Setup::new();
    s.cast(Cmd::Hold);
    s.cast(Cmd::Note("a"));
    s.sched.send(s.server.pid(), s.tick("m")).unwrap();
    s.sched.run_until_idle();
    let c = s.caller(1);
    s.cast(Cmd::Note("b"));
    assert!(s.log().is_empty());
    // The release and a note behind it, queued together.
    s.sched.cast_server(&s.server, Cmd::ReleaseInContinue);
    s.sched.cast_server(&s.server, Cmd::Note("c"));
    s.sched.run_until_idle();
    assert_eq!(
        s.log(),
        [
            "continue, unstashed 4",
            "note a",
            "m at 0",
            "call 1",
            "note b",
            "note c"
        ]
    );
    assert_eq!(s.sched.result(&c), Some(Ok(Ok(2))));
}

#[test]
fn a_late_answer_to_a_stashed_call_that_timed_out_does_not_reach_the_next_call() {
    let mut s = Setup::new();
    s.cast(Cmd::Hold);
    let server = s.server;
    let t = Template::local("caller", move |ctx: &mut Ctx<Tick>, ()| {
        let first = server.call_timeout(ctx, 7, Some(Duration::from_millis(10)));
        server.cast(ctx, Cmd::Release);
        let second = server.call_timeout(ctx, 300, None);
        let stray = ctx.receive_mail_timeout(Duration::ZERO).is_some();
        (first, second, stray)
    });
    let h = s.sched.spawn(&t, ()).unwrap();
    s.sched.run_until_idle();
    s.advance(10);
    assert_eq!(
        s.sched.result(&h),
        Some(Ok((Err(CallError::Timeout), Ok(600), false)))
    );
    assert_eq!(s.log(), ["release 1", "call 7", "call 300"]);
}

#[test]
fn clear_stash_leaves_mail_already_unstashed_to_be_handled() {
    let mut s = Setup::new();
    s.cast(Cmd::Hold);
    s.cast(Cmd::Note("a"));
    let c = s.caller(1);
    s.cast(Cmd::Note("b"));
    s.cast(Cmd::UnstashOneThenClear);
    assert_eq!(s.log(), ["unstashed true, cleared 2", "note a"]);
    assert_eq!(s.sched.result(&c), Some(Ok(Err(CallError::Unhandled))));
}

#[test]
fn clear_stash_whose_items_all_panic_when_dropped_refuses_every_call_without_abort() {
    support::isolated(
        "clear_stash_whose_items_all_panic_when_dropped_refuses_every_call_without_abort",
        || {
            std::panic::set_hook(Box::new(|_| {}));
            let mut s = Setup::new();
            s.cast(Cmd::Hold);
            let a = s.caller(1);
            for name in ["x", "y"] {
                let mut t = s.tick(name);
                t.bad_drop = true;
                t.always = true;
                s.cast(Cmd::Item(t));
            }
            let b = s.caller(2);
            s.cast(Cmd::Clear);
            assert!(s.ended());
            assert_eq!(s.drops.get(), 2, "each item dropped once");
            assert_eq!(s.sched.result(&a), Some(Ok(Err(CallError::Unhandled))));
            assert_eq!(s.sched.result(&b), Some(Ok(Err(CallError::Unhandled))));
            let log = s.log();
            assert_eq!(log.len(), 1, "{log:?}");
            assert!(
                log[0].starts_with("terminate failed") && log[0].contains("cannot drop x"),
                "{log:?}"
            );
            assert!(log[0].ends_with("0 stashed"), "{log:?}");
        },
    );
}

#[test]
fn a_stop_with_stashed_items_that_panic_on_drop_ends_callers_and_drops_each_once() {
    let mut s = Setup::new();
    s.cast(Cmd::Hold);
    let a = s.caller(1);
    for name in ["x", "y"] {
        let mut t = s.tick(name);
        t.bad_drop = true;
        s.cast(Cmd::Item(t));
    }
    s.cast(Cmd::Stop);
    assert!(s.ended());
    assert_eq!(s.log(), ["terminate \"stopped\", 0 armed, 3 stashed"]);
    assert_eq!(s.drops.get(), 2);
    match s.sched.result(&a) {
        Some(Ok(Err(CallError::Down(_)))) => {}
        other => panic!("the stashed caller is told of the end: {other:?}"),
    }
}

#[test]
fn a_panicking_handler_with_stashed_items_that_panic_on_drop_fails_once() {
    let mut s = Setup::new();
    s.cast(Cmd::Hold);
    let a = s.caller(1);
    let mut t = s.tick("x");
    t.bad_drop = true;
    s.cast(Cmd::Item(t));
    s.cast(Cmd::Fail);
    assert!(s.ended());
    let log = s.log();
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(log[0].contains("asked to fail"), "{log:?}");
    assert_eq!(s.drops.get(), 1);
    match s.sched.result(&a) {
        Some(Ok(Err(CallError::Down(Reason::Failed(m))))) => assert!(m.contains("asked to fail")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn terminate_that_panics_during_a_handler_failure_does_not_abort() {
    support::isolated(
        "terminate_that_panics_during_a_handler_failure_does_not_abort",
        || {
            std::panic::set_hook(Box::new(|_| {}));
            let mut s = Setup::new();
            s.cast(Cmd::Hold);
            let mut t = s.tick("x");
            t.bad_drop = true;
            s.cast(Cmd::Item(t));
            s.cast(Cmd::PanicInTerminate);
            s.cast(Cmd::Fail);
            assert!(s.ended());
            assert_eq!(s.log().len(), 1);
            assert_eq!(s.drops.get(), 1);
        },
    );
}

// ---------------------------------------------------------------------------
// stop_child on odd targets
// ---------------------------------------------------------------------------

fn waiter() -> Template<u32, u32, (), u32, Local> {
    Template::local("waiter", |ctx: &mut Ctx<u32>, ()| {
        let mut n = 0;
        while ctx.receive() != 0 {
            n += 1;
        }
        n
    })
}

fn run_parent<R: chronoflow::Payload + std::fmt::Debug>(
    body: impl Fn(&mut Ctx<u32>, ()) -> R + 'static,
) -> (SimpleScheduler<u32>, Option<Result<R, ExitError>>) {
    let mut sched = SimpleScheduler::new();
    let parent = Template::local("parent", body);
    let h = sched.spawn(&parent, ()).unwrap();
    sched.run_until_idle();
    let result = sched.result(&h);
    (sched, result)
}

#[test]
fn stop_child_of_itself_or_of_its_parent_is_refused_and_harmless() {
    let child = Template::local("child", |ctx: &mut Ctx<u32>, parent: Pid| {
        let me = ctx.pid();
        let itself = ctx.stop_child(me, Shutdown::BrutalKill);
        let of_parent = ctx.stop_child(parent, Shutdown::BrutalKill);
        (
            itself == Err(JoinError::NotAChild(me)),
            of_parent == Err(JoinError::NotAChild(parent)),
            ctx.is_alive(parent),
        )
    });
    // A spawned child (its result joined) and a linked one (its end seen
    // as an EXIT, the parent trapping exits): both refused, both harmless.
    let (_, result) = run_parent(move |ctx, ()| {
        let me = ctx.pid();
        let spawned = ctx.spawn(&child, me).unwrap();
        let spawned = ctx.join(spawned).unwrap();
        ctx.trap_exit(true);
        let linked = ctx.spawn_link(&child, me).unwrap();
        let exit = loop {
            if let Mail::Exit { from, reason } = ctx.receive_mail()
                && from == linked
            {
                break reason;
            }
        };
        (spawned, exit)
    });
    assert_eq!(result, Some(Ok(((true, true, true), Reason::Normal))));
    let (_, result) = run_parent(|ctx, ()| {
        let me = ctx.pid();
        (
            ctx.stop_child(me, Shutdown::BrutalKill) == Err(JoinError::NotAChild(me)),
            ctx.children().is_empty(),
        )
    });
    assert_eq!(result, Some(Ok((true, true))));
}

#[test]
fn stop_child_of_ended_children() {
    let failing = Template::local("failing", |_: &mut Ctx<u32>, ()| -> u32 {
        panic!("child fails");
    });
    let (_, result) = run_parent(move |ctx, ()| {
        let a = ctx.spawn(&failing, ()).unwrap().pid();
        let b = ctx.spawn(&waiter(), ()).unwrap().pid();
        ctx.send_to(b, 0);
        ctx.yield_now();
        ctx.yield_now();
        let ra = ctx.stop_child(a, Shutdown::Infinity);
        let rb = ctx.stop_child(b, Shutdown::Infinity);
        let again = ctx.stop_child(a, Shutdown::Infinity);
        (
            format!("{ra:?}"),
            rb,
            again == Err(JoinError::NotAChild(a)),
            ctx.children().is_empty(),
        )
    });
    let (ra, rb, again, empty) = result.unwrap().unwrap();
    assert!(
        ra.starts_with("Ok(Failed(") && ra.contains("child fails"),
        "{ra}"
    );
    assert_eq!(rb, Ok(Reason::Normal));
    assert!(again);
    assert!(empty);
}

#[test]
fn stop_child_of_a_linked_child_that_is_mid_call_to_its_parent() {
    let (_, result) = run_parent(|ctx, ()| {
        ctx.trap_exit(true);
        let me = ctx.pid();
        let caller = Template::local("caller", move |ctx: &mut Ctx<u32>, ()| {
            // The parent is no server: the call waits for ever.
            let r = ServerRef::<Quitter>::new(me).call_timeout(ctx, (), None);
            r.is_ok()
        });
        let c = ctx.spawn_link(&caller, ()).unwrap();
        ctx.yield_now();
        ctx.yield_now();
        let r = ctx.stop_child(c, Shutdown::Timeout(Duration::from_secs(1)));
        // Nothing of the child's end reaches the parent (unlinked first).
        let mut stray = Vec::new();
        while let Some(m) = ctx.receive_mail_timeout(Duration::ZERO) {
            stray.push(format!("{m:?}"));
        }
        let exits = stray.iter().filter(|m| m.starts_with("Exit")).count();
        (r, exits, ctx.children().is_empty())
    });
    assert_eq!(result, Some(Ok((Ok(Reason::Shutdown(None)), 0, true))));
}

#[test]
fn stop_child_takes_the_grandchildren_of_a_spawned_child_with_it() {
    let (_, result) = run_parent(|ctx, ()| {
        let mid = Template::local("mid", |ctx: &mut Ctx<u32>, parent: Pid| {
            let g = ctx.spawn(&waiter(), ()).unwrap().pid();
            ctx.send_to(parent, g.0 as u32);
            ctx.trap_exit(true);
            loop {
                let _ = ctx.receive_mail();
            }
        });
        let me = ctx.pid();
        let m = ctx.spawn(&mid, me).unwrap().pid();
        let g = Pid(u64::from(ctx.receive()));
        let r = ctx.stop_child(m, Shutdown::BrutalKill);
        (r, ctx.is_alive(g), ctx.is_alive(m))
    });
    let (r, g_alive, m_alive) = result.unwrap().unwrap();
    assert!(matches!(r, Ok(Reason::Killed(_))), "{r:?}");
    assert!(!g_alive && !m_alive);
}

/// A server whose call forwards to another server and waits for ever.
struct Forwarder(Log);

impl Server for Forwarder {
    type Engine = server::Stackful;
    type Msg = u32;
    type Args = Log;
    type Call = Pid;
    type Reply = ();
    type Cast = ();
    type Continue = ();

    fn init(ctx: &mut ServerCtx<Self>, log: Log) -> Init<Self> {
        ctx.trap_exit(true);
        Init::Ok(Forwarder(log))
    }

    fn handle_call(&mut self, ctx: &mut ServerCtx<Self>, to: Pid, _: From<()>) -> Reply<Self> {
        // `to` is no server: no answer ever comes.
        let r = ServerRef::<Forwarder>::new(to).call_timeout(ctx, to, None);
        self.0.borrow_mut().push(format!("forwarded {r:?}"));
        Reply::Reply(())
    }

    fn terminate(&mut self, _: &mut ServerCtx<Self>, reason: &Reason) {
        self.0.borrow_mut().push(format!("terminate {reason}"));
    }
}

#[test]
fn stop_child_of_a_server_child_stuck_mid_call_kills_it_after_the_timeout() {
    let clock = ManualClock::new(Time::from_nanos(0));
    let mut sched = SimpleScheduler::new();
    sched.set_clock(clock.clone());
    let log = Log::default();
    let log2 = log.clone();
    let parent = Template::local("parent", move |ctx: &mut Ctx<u32>, ()| {
        let s = ctx
            .spawn_link(&server::template::<Forwarder>("fwd"), log2.clone())
            .unwrap();
        let idle = ctx.spawn(&waiter(), ()).unwrap();
        let to = idle.pid();
        let caller = Template::local("caller", move |ctx: &mut Ctx<u32>, ()| {
            let r = ServerRef::<Forwarder>::new(s).call_timeout(ctx, to, None);
            format!("{r:?}")
        });
        let c = ctx.spawn(&caller, ()).unwrap();
        ctx.yield_now();
        ctx.yield_now();
        let r = ctx.stop_child(s, Shutdown::Timeout(Duration::from_secs(5)));
        ctx.send_to(to, 0);
        let _ = ctx.join(idle);
        (r, ctx.join(c).unwrap())
    });
    let h = sched.spawn(&parent, ()).unwrap();
    sched.run_until_idle();
    assert_eq!(sched.result(&h), None);
    clock.advance(Duration::from_secs(5));
    sched.run_until_idle();
    match sched.result(&h) {
        Some(Ok((Ok(Reason::Killed(_)), caller))) => {
            assert!(caller.starts_with("Err(Down(Killed"), "{caller}");
        }
        other => panic!("expected a kill, got {other:?}"),
    }
    assert!(log.borrow().is_empty(), "a kill runs no terminate");
}

// ---------------------------------------------------------------------------
// Shutdown
// ---------------------------------------------------------------------------

/// Traps exits and ignores every exit signal.
fn stubborn() -> Template<u32, u32, (), (), Local> {
    Template::local("stubborn", |ctx: &mut Ctx<u32>, ()| {
        ctx.trap_exit(true);
        loop {
            let _ = ctx.receive_mail();
        }
    })
}

fn manual() -> (SimpleScheduler<u32>, ManualClock) {
    let clock = ManualClock::new(Time::from_nanos(0));
    let mut sched = SimpleScheduler::new();
    sched.set_clock(clock.clone());
    (sched, clock)
}

/// A server for shutdowns: logs its `terminate`; a cast 1 stops it, 2 makes
/// its `terminate` panic, 3 makes it sleep in `terminate`.
struct Quitter {
    name: &'static str,
    log: Log,
    panic: bool,
    sleep: bool,
}

impl Server for Quitter {
    type Engine = server::Stackful;
    type Msg = u32;
    type Args = (&'static str, Log, bool);
    type Call = ();
    type Reply = ();
    type Cast = u32;
    type Continue = ();

    fn init(ctx: &mut ServerCtx<Self>, (name, log, trap): Self::Args) -> Init<Self> {
        ctx.trap_exit(trap);
        Init::Ok(Quitter {
            name,
            log,
            panic: false,
            sleep: false,
        })
    }

    fn handle_cast(&mut self, _: &mut ServerCtx<Self>, n: u32) -> Flow<Self> {
        match n {
            1 => return Flow::Stop(Reason::custom("quit")),
            2 => self.panic = true,
            3 => self.sleep = true,
            4 => std::panic::panic_any("crash"),
            _ => {}
        }
        Flow::Continue
    }

    fn terminate(&mut self, ctx: &mut ServerCtx<Self>, reason: &Reason) {
        if self.sleep {
            ctx.sleep(Duration::from_secs(1));
        }
        self.log
            .borrow_mut()
            .push(format!("{} terminate {reason}", self.name));
        if self.panic {
            panic!("{} terminate panics", self.name);
        }
    }
}

fn quitter() -> Template<u32, u32, (&'static str, Log, bool), (), Local> {
    server::template::<Quitter>("quitter")
}

#[test]
fn the_stopped_count_is_of_processes_alive_at_the_start() {
    let (mut sched, _) = manual();
    // Two processes at the start; during the drain, one of them starts a
    // stubborn child linked (it survives its parent's end).
    let spawner = Template::local("spawner", |ctx: &mut Ctx<u32>, ()| {
        let _ = ctx.receive();
        ctx.spawn_link(&stubborn(), ()).unwrap();
        ctx.spawn_link(&stubborn(), ()).unwrap();
        loop {
            let _ = ctx.receive();
        }
    });
    let log = Log::default();
    let sp = sched.spawn(&spawner, ()).unwrap();
    sched.spawn(&quitter(), ("q", log.clone(), false)).unwrap();
    sched.run_until_idle();
    sched.send(sp.pid(), 1).unwrap();
    let report = sched.shutdown(Duration::from_secs(5), true);
    let killed: Vec<&str> = report.killed.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(killed, ["stubborn", "stubborn"]);
    assert_eq!(*log.borrow(), ["q terminate shutdown"]);
    // Both processes alive at the start stopped as asked.
    assert_eq!(report.stopped, 2, "{report:?}");
}

#[test]
fn a_terminate_that_panics_during_shutdown_does_not_stop_the_others() {
    let (mut sched, _) = manual();
    let log = Log::default();
    let sup = Supervisor::new("sup")
        .child(ChildSpec::new("a", &quitter(), ("a", log.clone(), true)))
        .child(ChildSpec::new("b", &quitter(), ("b", log.clone(), true)).name("b"))
        .template()
        .unwrap();
    sched.spawn(&sup, ()).unwrap();
    let top = sched
        .spawn(&quitter(), ("top", log.clone(), false))
        .unwrap();
    sched.run_until_idle();
    // The top's terminate and a supervised child's panic.
    let b = sched.whereis("b").unwrap();
    sched.cast_server(&ServerRef::<Quitter>::new(top.pid()), 2);
    sched.cast_server(&ServerRef::<Quitter>::new(b), 2);
    sched.run_until_idle();
    let report = sched.shutdown(Duration::from_secs(5), true);
    assert!(report.killed.is_empty(), "{report:?}");
    assert_eq!(report.stopped, 4);
    assert_eq!(
        *log.borrow(),
        [
            "top terminate shutdown",
            "b terminate shutdown",
            "a terminate shutdown"
        ]
    );
    assert!(matches!(
        sched.result(&top),
        Some(Err(ExitError::Failed(_)))
    ));
    assert_eq!(sched.live(), 0);
}

#[test]
fn a_server_that_stops_itself_during_shutdown_terminates_once_with_its_own_reason() {
    let (mut sched, _) = manual();
    let log = Log::default();
    let q = sched.spawn(&quitter(), ("q", log.clone(), false)).unwrap();
    let other = sched.spawn(&quitter(), ("o", log.clone(), true)).unwrap();
    sched.run_until_idle();
    // Queued ahead of the shutdown's stop request; no drain.
    sched.cast_server(&ServerRef::<Quitter>::new(q.pid()), 1);
    let report = sched.shutdown(Duration::from_secs(5), false);
    assert!(report.killed.is_empty(), "{report:?}");
    assert_eq!(report.stopped, 2);
    // (Each runs as its turn comes: q had its cast queued first.)
    let mut log = log.borrow().clone();
    log.sort();
    assert_eq!(log, ["o terminate shutdown", "q terminate \"quit\""]);
    assert_eq!(
        sched.result(&q),
        Some(Err(Reason::custom("quit").into_error().unwrap()))
    );
    assert_eq!(sched.result(&other), Some(Err(ExitError::Shutdown(None))));
}

#[test]
fn a_server_with_timers_and_a_stashed_call_shuts_down_without_leaving_timers() {
    let mut s = Setup::new();
    s.cast(Cmd::Every("t", 10));
    s.cast(Cmd::After("a", 50));
    s.cast(Cmd::Hold);
    let c = s.caller(1);
    s.advance(10);
    let report = s.sched.shutdown(Duration::from_secs(5), true);
    assert!(report.killed.is_empty(), "{report:?}");
    assert_eq!(report.stopped, 2);
    let log = s.log();
    assert_eq!(
        log.last().unwrap(),
        "terminate shutdown, 0 armed, 2 stashed",
        "{log:?}"
    );
    assert_eq!(s.sched.next_deadline(), None);
    s.advance(1000);
    assert_eq!(s.sched.timers_dropped(), 0);
    // The caller (newer: stopped first) was a top of its own.
    assert_eq!(s.sched.result(&c), Some(Err(ExitError::Shutdown(None))));
    assert_eq!(s.sched.live(), 0);
}

#[test]
fn a_terminate_waiting_on_a_manual_clock_is_killed_at_once_and_reported() {
    let (mut sched, _) = manual();
    let log = Log::default();
    let slow = sched
        .spawn(&quitter(), ("slow", log.clone(), false))
        .unwrap();
    sched
        .spawn(&quitter(), ("fine", log.clone(), false))
        .unwrap();
    sched.run_until_idle();
    sched.cast_server(&ServerRef::<Quitter>::new(slow.pid()), 3);
    let started = std::time::Instant::now();
    let report = sched.shutdown(Duration::from_secs(3600), true);
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(report.killed, [(slow.pid(), "quitter".to_string())]);
    assert_eq!(report.stopped, 1);
    assert_eq!(*log.borrow(), ["fine terminate shutdown"]);
    assert!(matches!(
        sched.result(&slow),
        Some(Err(ExitError::Killed(_)))
    ));
    assert_eq!(sched.live(), 0);
}

#[test]
fn a_second_shutdown_finds_nothing_and_spawns_stay_refused() {
    let (mut sched, _) = manual();
    let log = Log::default();
    sched.spawn(&quitter(), ("q", log.clone(), false)).unwrap();
    sched.run_until_idle();
    let first = sched.shutdown(Duration::from_secs(5), true);
    assert_eq!(first.stopped, 1);
    let second = sched.shutdown(Duration::from_secs(5), true);
    assert_eq!(
        second,
        chronoflow::ShutdownReport {
            drained: true,
            stopped: 0,
            killed: vec![]
        }
    );
    assert!(matches!(
        sched.spawn(&quitter(), ("r", log.clone(), false)),
        Err(chronoflow::SpawnError::ShuttingDown)
    ));
    assert_eq!(*log.borrow(), ["q terminate shutdown"]);
}

#[test]
fn a_process_spawning_for_ever_during_the_drain_does_not_hang_the_shutdown() {
    for trap in [false, true] {
        let mut sched = SimpleScheduler::<u32>::new();
        let short = Template::local("short", |_: &mut Ctx<u32>, ()| 1u32);
        let spawner = Template::local("spawner", move |ctx: &mut Ctx<u32>, ()| {
            ctx.trap_exit(trap);
            let _ = ctx.receive();
            loop {
                match ctx.spawn(&short, ()) {
                    Ok(c) => {
                        let _ = ctx.join(c);
                    }
                    Err(_) => ctx.yield_now(),
                }
            }
        });
        let sp = sched.spawn(&spawner, ()).unwrap();
        sched.run_until_idle();
        sched.send(sp.pid(), 0).unwrap();
        let started = std::time::Instant::now();
        let report = sched.shutdown(Duration::from_millis(100), true);
        assert!(started.elapsed() < Duration::from_secs(30));
        assert!(!report.drained);
        if trap {
            // It ignores the signal: killed at the deadline (with its child,
            // if one was running).
            assert_eq!(report.killed[0], (sp.pid(), "spawner".to_string()));
            assert_eq!(report.stopped, 0, "{report:?}");
            assert!(matches!(sched.result(&sp), Some(Err(ExitError::Killed(_)))));
        } else {
            // Past the deadline, the exit signal still ends it: nothing to
            // kill.
            assert!(report.killed.is_empty(), "{report:?}");
            assert_eq!(report.stopped, 1);
            assert_eq!(sched.result(&sp), Some(Err(ExitError::Shutdown(None))));
        }
        assert_eq!(sched.live(), 0);
    }
}

#[test]
fn a_supervisor_restarts_during_the_drain_then_its_tree_stops() {
    let (mut sched, _) = manual();
    let log = Log::default();
    let sup = Supervisor::new("sup")
        .child(ChildSpec::new("a", &quitter(), ("a", log.clone(), true)).name("a"))
        .template()
        .unwrap();
    sched.spawn(&sup, ()).unwrap();
    sched.run_until_idle();
    stories::quiet();
    let a = sched.whereis("a").unwrap();
    sched.cast_server(&ServerRef::<Quitter>::new(a), 4);
    let report = sched.shutdown(Duration::from_secs(5), true);
    assert!(report.drained);
    assert!(report.killed.is_empty(), "{report:?}");
    let log = log.borrow().clone();
    assert_eq!(log.len(), 2, "{log:?}");
    assert!(log[0].starts_with("a terminate failed"), "{log:?}");
    assert_eq!(log[1], "a terminate shutdown");
    assert_eq!(sched.live(), 0);
}

#[test]
fn nested_trees_stop_leaves_first() {
    let (mut sched, _) = manual();
    let log = Log::default();
    let inner = Supervisor::new("inner")
        .child(ChildSpec::new("y", &quitter(), ("y", log.clone(), true)))
        .child(ChildSpec::new("z", &quitter(), ("z", log.clone(), true)))
        .template()
        .unwrap();
    let outer = Supervisor::new("outer")
        .child(ChildSpec::new("x", &quitter(), ("x", log.clone(), true)))
        .child(ChildSpec::new("inner", &inner, ()).supervisor())
        .child(ChildSpec::new("w", &quitter(), ("w", log.clone(), true)))
        .template()
        .unwrap();
    sched.spawn(&outer, ()).unwrap();
    // A plain top process that started a server linked: the server gets
    // its parent's EXIT (it traps exits: its terminate runs).
    let log2 = log.clone();
    let plain = Template::local("plain", move |ctx: &mut Ctx<u32>, ()| {
        ctx.spawn_link(&quitter(), ("v", log2.clone(), true))
            .unwrap();
        loop {
            let _ = ctx.receive();
        }
    });
    sched.spawn(&plain, ()).unwrap();
    sched.run_until_idle();
    let report = sched.shutdown(Duration::from_secs(5), true);
    assert!(report.killed.is_empty(), "{report:?}");
    assert_eq!(report.stopped, 8);
    let log = log.borrow().clone();
    let order: Vec<&str> = log.iter().map(|l| &l[..1]).collect();
    assert_eq!(order, ["v", "w", "z", "y", "x"], "{log:?}");
}

#[test]
fn stop_child_of_a_linked_supervisor_stops_its_tree() {
    let log = Log::default();
    let log2 = log.clone();
    let (_, result) = run_parent(move |ctx, ()| {
        let sup = Supervisor::new("sup")
            .child(ChildSpec::new("a", &quitter(), ("a", log2.clone(), true)))
            .template()
            .unwrap();
        let s = ctx.spawn_link(&sup, ()).unwrap();
        ctx.yield_now();
        let r = ctx.stop_child(s, Shutdown::Infinity);
        (r, ctx.children().is_empty())
    });
    assert_eq!(result, Some(Ok((Ok(Reason::Shutdown(None)), true))));
    assert_eq!(*log.borrow(), ["a terminate shutdown"]);
}

// ---------------------------------------------------------------------------
// Durable servers crashing mid-call
// ---------------------------------------------------------------------------

mod durable {
    use std::path::Path;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use chronoflow::otp::server::{self, Flow, From, Init, Reply, Server, ServerCtx, ServerRef};
    use chronoflow::{Clock, Ctx, DurableScheduler, Local, Mail, Reason, Template, Time};
    use serde::{Deserialize, Serialize};

    use super::stories::{Log, check_story_every};

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub enum Msg {
        Tick,
    }

    #[derive(Debug, Serialize, Deserialize)]
    pub enum Q {
        Get,
        /// Panics in the handler.
        Crash,
        /// Stashed until released.
        Held,
    }

    #[derive(Debug, Serialize, Deserialize)]
    pub enum C {
        Add(u64),
        Crash,
        Tick,
    }

    /// A server that crashes when asked, with a stash and an interval.
    #[derive(Serialize, Deserialize)]
    pub struct Fragile {
        total: u64,
        ticks: u64,
    }

    impl Server for Fragile {
        type Engine = server::Stackful;
        type Msg = Msg;
        type Args = u64;
        type Call = Q;
        type Reply = u64;
        type Cast = C;
        type Continue = ();

        const SNAPSHOT_EVERY: usize = 2;

        fn init(_: &mut ServerCtx<Self>, total: u64) -> Init<Self> {
            Init::Ok(Fragile { total, ticks: 0 })
        }

        fn handle_call(&mut self, ctx: &mut ServerCtx<Self>, q: Q, from: From<u64>) -> Reply<Self> {
            match q {
                Q::Get => Reply::Reply(self.total),
                Q::Crash => std::panic::panic_any("crash"),
                Q::Held => {
                    ctx.stash_call(Q::Held, from).unwrap();
                    Reply::NoReply
                }
            }
        }

        fn handle_cast(&mut self, ctx: &mut ServerCtx<Self>, c: C) -> Flow<Self> {
            match c {
                C::Add(n) => self.total += n,
                C::Crash => std::panic::panic_any("crash"),
                C::Tick => {
                    ctx.timers()
                        .send_interval(Duration::from_millis(1), Msg::Tick);
                }
            }
            Flow::Continue
        }

        fn handle_info(&mut self, _: &mut ServerCtx<Self>, mail: Mail<Msg>) -> Flow<Self> {
            if let Mail::Msg(Msg::Tick) = mail {
                self.ticks += 1;
            }
            Flow::Continue
        }
    }

    fn fragile() -> Template<Msg, Msg, u64, (), Local> {
        server::template::<Fragile>("fragile")
    }

    /// Makes a call that the server stashes, and waits for ever.
    fn held() -> Template<Msg, Msg, ServerRef<Fragile>, String, Local> {
        Template::local("held", |ctx: &mut Ctx<Msg>, v: ServerRef<Fragile>| {
            format!("{:?}", v.durable_call_timeout(ctx, Q::Held, None))
        })
    }

    fn call(ctx: &mut Ctx<Msg>, v: ServerRef<Fragile>, q: Q) -> String {
        format!("{:?}", v.durable_call_timeout(ctx, q, None))
    }

    fn story() -> Template<Msg, Msg, (), Log, Local> {
        Template::local("story", |ctx: &mut Ctx<Msg>, ()| {
            let mut log = Log::new();
            ctx.trap_exit(true);
            // 1. A crash in a call handler, with ticks and a stashed call.
            let v = ServerRef::<Fragile>::new(ctx.spawn_link(&fragile(), 1).unwrap());
            v.durable_cast(ctx, C::Add(4));
            v.durable_cast(ctx, C::Tick);
            let h = ctx.spawn(&held(), v).unwrap();
            log.push(format!("get: {}", call(ctx, v, Q::Get)));
            ctx.yield_now();
            log.push(format!("crash: {}", call(ctx, v, Q::Crash)));
            log.push(format!("held: {:?}", ctx.join(h)));
            match ctx.receive_mail() {
                Mail::Exit { from, reason } => {
                    log.push(format!("exit {}: {reason}", from == v.pid()))
                }
                other => log.push(format!("unexpected {other:?}")),
            }
            // 2. The dead server: a cast is lost, a call gets NoProc.
            v.durable_cast(ctx, C::Add(1));
            log.push(format!("dead get: {}", call(ctx, v, Q::Get)));
            // 3. A crash in a cast handler while a call is stashed, the
            //    caller waiting.
            let w = ServerRef::<Fragile>::new(ctx.spawn_link(&fragile(), 10).unwrap());
            let h = ctx.spawn(&held(), w).unwrap();
            log.push(format!("get: {}", call(ctx, w, Q::Get)));
            w.durable_cast(ctx, C::Crash);
            log.push(format!("held: {:?}", ctx.join(h)));
            match ctx.receive_mail() {
                Mail::Exit { reason, .. } => log.push(format!("exit: {reason}")),
                other => log.push(format!("unexpected {other:?}")),
            }
            // 4. A stop with a stashed call.
            let x = ServerRef::<Fragile>::new(ctx.spawn_link(&fragile(), 0).unwrap());
            let h = ctx.spawn(&held(), x).unwrap();
            log.push(format!("get: {}", call(ctx, x, Q::Get)));
            log.push(format!("stop: {}", x.stop(ctx, Reason::custom("bye"))));
            log.push(format!("held: {:?}", ctx.join(h)));
            log
        })
    }

    struct Ticking;

    static NOW: AtomicU64 = AtomicU64::new(0);

    impl Clock for Ticking {
        fn now(&self) -> Time {
            Time::from_nanos(NOW.fetch_add(1_000_000, Ordering::Relaxed))
        }
    }

    fn open(dir: &Path) -> DurableScheduler<Msg> {
        let (sched, _) = DurableScheduler::builder()
            .register(&story())
            .register(&held())
            .server::<Fragile>(&fragile())
            .clock(Ticking)
            .open(dir)
            .unwrap();
        sched
    }

    #[test]
    fn a_durable_server_that_crashes_mid_call_ends_alike_across_crashes() {
        let plain = check_story_every(
            open,
            |sched| {
                sched.spawn(&story(), ()).unwrap();
            },
            13,
            1,
        );
        let plain: Vec<&str> = plain.iter().map(String::as_str).collect();
        assert_eq!(
            plain,
            [
                "get: Ok(5)",
                "crash: Err(Down(Failed(\"crash\")))",
                "held: Ok(\"Err(Down(Failed(\\\"crash\\\")))\")",
                "exit true: failed: crash",
                "dead get: Err(NoProc)",
                "get: Ok(10)",
                "held: Ok(\"Err(Down(Failed(\\\"crash\\\")))\")",
                "exit: failed: crash",
                "get: Ok(0)",
                "stop: \"bye\"",
                "held: Ok(\"Err(Down(Custom(\\\"bye\\\")))\")",
            ]
        );
    }
}
