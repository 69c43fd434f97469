//! A server's own timers (`ServerCtx::timers`, libeam's `sendAfter`,
//! `sendInterval`, `cancelTimer`, `cancelAllTimers`): on a manual clock,
//! messages arrive when due, intervals do not drift, a cancelled timer's
//! message never arrives (even one that fired and waits unread), and every
//! timer goes when the server stops.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use chronoflow::otp::server::{self, Flow, Init, Server, ServerCtx, ServerRef, Timer};
use chronoflow::{Mail, ManualClock, Pid, Reason, SimpleScheduler, Status, Time};

type Log = Rc<RefCell<Vec<String>>>;

/// The server's message: a tick, counted when dropped (to see that a
/// cancelled timer's message is let go).
#[derive(Debug)]
struct Tick {
    name: &'static str,
    drops: Rc<RefCell<u32>>,
    /// Panics when cloned (an interval copies its message).
    bad_clone: bool,
    /// Panics when dropped.
    bad_drop: bool,
}

impl Clone for Tick {
    fn clone(&self) -> Self {
        assert!(!self.bad_clone, "cannot clone {}", self.name);
        Tick {
            name: self.name,
            drops: self.drops.clone(),
            bad_clone: false,
            bad_drop: self.bad_drop,
        }
    }
}

impl Drop for Tick {
    fn drop(&mut self) {
        *self.drops.borrow_mut() += 1;
        if self.bad_drop && !std::thread::panicking() {
            panic!("cannot drop {}", self.name);
        }
    }
}

/// What the test asks of the server (casts).
enum Do {
    After(&'static str, u64),
    Every(&'static str, u64),
    EveryBadClone(&'static str, u64),
    AfterBadDrop(&'static str, u64),
    Cancel(&'static str),
    CancelAll,
    StartTimer(u64),
    Stop,
    Fail,
}

struct Clocked {
    log: Log,
    drops: Rc<RefCell<u32>>,
    timers: Vec<(&'static str, Timer)>,
}

impl Clocked {
    fn tick(&self, name: &'static str) -> Tick {
        Tick {
            name,
            drops: self.drops.clone(),
            bad_clone: false,
            bad_drop: false,
        }
    }
}

impl Server for Clocked {
    type Engine = server::Stackful;
    type Msg = Tick;
    type Args = (Log, Rc<RefCell<u32>>);
    type Call = ();
    type Reply = ();
    type Cast = Do;
    type Continue = ();

    fn init(_: &mut ServerCtx<Self>, (log, drops): Self::Args) -> Init<Self> {
        Init::Ok(Clocked {
            log,
            drops,
            timers: Vec::new(),
        })
    }

    fn handle_cast(&mut self, ctx: &mut ServerCtx<Self>, cast: Do) -> Flow<Self> {
        match cast {
            Do::After(name, ms) => {
                let t = ctx
                    .timers()
                    .send_after(Duration::from_millis(ms), self.tick(name));
                self.timers.push((name, t));
            }
            Do::Every(name, ms) => {
                let t = ctx
                    .timers()
                    .send_interval(Duration::from_millis(ms), self.tick(name));
                self.timers.push((name, t));
            }
            Do::EveryBadClone(name, ms) => {
                let mut tick = self.tick(name);
                tick.bad_clone = true;
                ctx.timers().send_interval(Duration::from_millis(ms), tick);
            }
            Do::AfterBadDrop(name, ms) => {
                let mut tick = self.tick(name);
                tick.bad_drop = true;
                ctx.timers().send_after(Duration::from_millis(ms), tick);
            }
            Do::Cancel(name) => {
                let i = self.timers.iter().position(|(n, _)| *n == name).unwrap();
                let (_, t) = self.timers.remove(i);
                let armed = ctx.timers().cancel(t);
                self.log
                    .borrow_mut()
                    .push(format!("cancel {name}: {armed}"));
            }
            Do::CancelAll => {
                let n = ctx.timers().cancel_all();
                self.log.borrow_mut().push(format!("cancel all: {n}"));
            }
            Do::StartTimer(ms) => {
                ctx.start_timer(Duration::from_millis(ms));
            }
            Do::Stop => return Flow::Stop(Reason::Normal),
            Do::Fail => panic!("asked to fail"),
        }
        Flow::Continue
    }

    fn handle_info(&mut self, ctx: &mut ServerCtx<Self>, mail: Mail<Tick>) -> Flow<Self> {
        let at = ctx.now().as_nanos() / 1_000_000;
        let what = match mail {
            Mail::Msg(tick) => tick.name.to_string(),
            Mail::Timeout(_) => "own timeout".to_string(),
            other => format!("{other:?}"),
        };
        self.log.borrow_mut().push(format!("{what} at {at}"));
        Flow::Continue
    }

    fn terminate(&mut self, ctx: &mut ServerCtx<Self>, reason: &Reason) {
        let armed = ctx.timers().len();
        self.log
            .borrow_mut()
            .push(format!("terminate {reason}, {armed} armed"));
    }
}

struct Setup {
    sched: SimpleScheduler<Tick>,
    clock: ManualClock,
    server: ServerRef<Clocked>,
    log: Log,
    drops: Rc<RefCell<u32>>,
}

impl Setup {
    fn new() -> Setup {
        let clock = ManualClock::new(Time::from_nanos(0));
        let mut sched = SimpleScheduler::new();
        sched.set_clock(clock.clone());
        let (log, drops) = (Log::default(), Rc::new(RefCell::new(0)));
        let pid = sched
            .spawn(
                &server::template::<Clocked>("clocked"),
                (log.clone(), drops.clone()),
            )
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

    fn cast(&mut self, what: Do) {
        self.sched.cast_server(&self.server, what);
        self.sched.run_until_idle();
    }

    /// Moves the clock `ms` on, and runs until idle.
    fn advance(&mut self, ms: u64) {
        self.clock.advance(Duration::from_millis(ms));
        self.sched.run_until_idle();
    }

    fn log(&self) -> Vec<String> {
        self.log.borrow().clone()
    }

    fn pid(&self) -> Pid {
        self.server.pid()
    }
}

#[test]
fn a_timer_sends_the_server_its_message_when_due() {
    let mut s = Setup::new();
    s.cast(Do::After("a", 10));
    s.advance(9);
    assert!(s.log().is_empty());
    s.advance(1);
    assert_eq!(s.log(), ["a at 10"]);
    s.advance(100);
    assert_eq!(s.log(), ["a at 10"], "a one-shot timer fires once");
}

#[test]
fn an_interval_keeps_to_its_deadlines_however_late_the_server_reads() {
    let mut s = Setup::new();
    s.cast(Do::Every("tick", 10));
    // The clock moves in steps that are not multiples of the period: the
    // ticks stay due at 10, 20, 30, ... (a timer re-armed from when each tick
    // was read would be due at 10, 25, 40, ...).
    for _ in 0..4 {
        s.advance(15);
    }
    // At 60: six ticks due (10..=60), read when the clock had passed each.
    assert_eq!(
        s.log(),
        [
            "tick at 15",
            "tick at 30",
            "tick at 30",
            "tick at 45",
            "tick at 60",
            "tick at 60"
        ]
    );
    // A jump of several periods: the missed ticks come, then it is on time.
    s.advance(35);
    assert_eq!(s.log().len(), 9, "ticks due at 70, 80 and 90");
    s.advance(4);
    assert_eq!(s.log().len(), 9);
    s.advance(1);
    assert_eq!(s.log().len(), 10, "the tick due at 100");
}

#[test]
fn a_cancelled_timer_never_sends_even_if_it_fired_unread() {
    let mut s = Setup::new();
    s.cast(Do::After("early", 10));
    s.cast(Do::After("late", 20));
    s.cast(Do::After("fired", 30));
    s.cast(Do::Cancel("late"));
    // The cancel cast is sent before the pass that fires "early" and
    // "fired": it waits in the inbox ahead of their notices. Its handler
    // cancels a timer whose notice waits unread.
    s.clock.advance(Duration::from_millis(30));
    s.sched.cast_server(&s.server, Do::Cancel("fired"));
    s.sched.run_until_idle();
    s.advance(100);
    assert_eq!(
        s.log(),
        ["cancel late: true", "cancel fired: true", "early at 30"]
    );
    // Cancelling again: no longer armed.
    s.cast(Do::Cancel("early"));
    assert_eq!(s.log().last().unwrap(), "cancel early: false");
    // Each cancelled message was dropped, and the one delivered too.
    assert_eq!(*s.drops.borrow(), 3);
    assert_eq!(s.sched.timers_dropped(), 0);
}

#[test]
fn cancel_all_cancels_one_shot_timers_and_intervals() {
    let mut s = Setup::new();
    s.cast(Do::After("a", 10));
    s.cast(Do::Every("b", 5));
    s.cast(Do::After("c", 50));
    s.advance(5);
    s.cast(Do::CancelAll);
    s.advance(100);
    assert_eq!(s.log(), ["b at 5", "cancel all: 3"]);
    s.cast(Do::CancelAll);
    assert_eq!(s.log().last().unwrap(), "cancel all: 0");
}

#[test]
fn the_servers_own_start_timer_still_reaches_handle_info() {
    let mut s = Setup::new();
    s.cast(Do::StartTimer(10));
    s.cast(Do::After("mine", 10));
    s.advance(10);
    assert_eq!(s.log(), ["own timeout at 10", "mine at 10"]);
}

#[test]
fn a_stop_cancels_every_timer_before_terminate() {
    let mut s = Setup::new();
    s.cast(Do::Every("tick", 10));
    s.cast(Do::After("once", 20));
    s.advance(10);
    let reason = s.sched.call_server(&s.server, ()).err();
    assert!(reason.is_some(), "calls are refused by default");
    s.cast(Do::Stop);
    assert!(
        s.sched
            .status(s.pid())
            .is_none_or(|st| st == Status::Stopped)
    );
    s.advance(100);
    assert_eq!(s.log(), ["tick at 10", "terminate normal, 0 armed"]);
    // Nothing fired to the ended server: nothing was dropped for it.
    assert_eq!(s.sched.timers_dropped(), 0);
    // The interval's message, its one copy delivered, and the one-shot's.
    assert_eq!(*s.drops.borrow(), 3);
}

#[test]
fn a_failing_handler_cancels_every_timer_before_terminate() {
    let mut s = Setup::new();
    s.cast(Do::Every("tick", 10));
    s.cast(Do::Fail);
    s.advance(100);
    let log = s.log();
    assert_eq!(log.len(), 1);
    assert!(log[0].starts_with("terminate failed"), "{log:?}");
    assert!(log[0].ends_with(", 0 armed"), "{log:?}");
    assert_eq!(s.sched.timers_dropped(), 0);
}

#[test]
fn an_interval_whose_message_panics_as_it_is_copied_fails_the_server_through_terminate() {
    let mut s = Setup::new();
    s.cast(Do::Every("bad", 10));
    s.cast(Do::EveryBadClone("bad clone", 10));
    s.advance(10);
    let log = s.log();
    assert!(
        s.sched
            .status(s.pid())
            .is_none_or(|st| st == Status::Stopped)
    );
    assert!(
        log.last().unwrap().contains("cannot clone bad clone"),
        "{log:?}"
    );
    s.advance(100);
    assert_eq!(s.sched.timers_dropped(), 0);
}

#[test]
fn a_timer_message_that_panics_when_dropped_at_stop_fails_the_server_after_terminate() {
    let mut s = Setup::new();
    s.cast(Do::AfterBadDrop("bad drop", 10));
    s.cast(Do::After("fine", 10));
    s.cast(Do::Stop);
    assert!(
        s.sched
            .status(s.pid())
            .is_none_or(|st| st == Status::Stopped)
    );
    // Both messages were dropped, the panicking one and the other.
    assert_eq!(*s.drops.borrow(), 2);
    assert_eq!(s.log(), ["terminate normal, 0 armed"]);
    s.advance(100);
    assert_eq!(s.sched.timers_dropped(), 0);
}
