//! Attacks on the OTP toolkit under a durable scheduler: each test is a
//! deterministic story, run once without a crash and once crashed (at pass
//! boundaries, at a byte of the journal, or after segments went), and expects
//! the same end.

use std::path::Path;
use std::time::Duration;

use chronoflow::journal::JournalOptions;
use chronoflow::otp::ReplyTo;
use chronoflow::{
    Ctx, DurableScheduler, Mail, MailRef, ManualClock, Overflow, Pid, Reason, Step, Template, Time,
    Transition,
};
use serde::{Deserialize, Serialize};
use tempfile::TempDir;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Msg {
    Go,
    Stop,
    N(u64),
    Timed,
    Crash,
    Tick,
    Ask(ReplyTo<u64>, u64),
}

#[path = "support/stories.rs"]
mod stories;
use stories::{Log, check_story_every, quiet, story_every};

type Open = stories::Open<Msg>;
type Start = stories::Start<Msg>;

/// Runs a story to its end, reopening the journal after every pass if
/// `crash`: its log.
fn story(dir: &Path, open: Open, start: Start, crash: bool) -> Log {
    story_every(dir, open, start, usize::from(crash))
}

/// Plain, crashed at every pass, and cut at every `step`-th byte: all the same.
fn check_story(open: Open, start: Start, step: usize) -> Log {
    check_story_every(open, start, step, 1)
}

/// Waits for `Go` from a timer armed now (a pass boundary at least).
fn next_pass(ctx: &mut Ctx<Msg>) {
    stories::next_pass(ctx, Msg::Go, |m| *m == Msg::Go);
}

// ---------------------------------------------------------------------------
// A link to oneself.

/// OTP: `link(self())` does nothing. Live, `links()` stays empty; the fold of
/// the journal must not make a link either.
fn self_linker() -> Template<Msg, Msg, (), Log> {
    Template::new("self_linker", |ctx: &mut Ctx<Msg>, ()| {
        let mut log = Log::new();
        let me = ctx.pid();
        ctx.link(me);
        log.push(format!("links {:?}", ctx.links()));
        next_pass(ctx);
        log.push(format!("links {:?}", ctx.links()));
        log
    })
}

fn open_self_linker(dir: &Path) -> DurableScheduler<Msg> {
    DurableScheduler::builder()
        .register(&self_linker())
        .clock(ManualClock::new(Time::default()))
        .open(dir)
        .unwrap()
        .0
}

#[test]
fn a_link_to_itself_is_no_link_after_a_crash() {
    let plain = check_story(
        open_self_linker,
        |s| {
            s.spawn(&self_linker(), ()).unwrap();
        },
        5,
    );
    assert_eq!(plain, ["links []", "links []"]);
}

// ---------------------------------------------------------------------------
// Timer ids: a wait with a timeout uses one too.

/// Sends `N(1)` to its argument for each `Go`, until `Stop`.
fn echo() -> Template<Msg, Msg, Pid, ()> {
    Template::new("echo", |ctx: &mut Ctx<Msg>, to: Pid| {
        loop {
            match ctx.receive() {
                Msg::Go => ctx.send_to(to, Msg::N(1)),
                Msg::Stop => return,
                _ => {}
            }
        }
    })
}

/// Waits for mail with a timeout (the wait's timer takes an id), then arms
/// timers: their references are what a run that did not crash gives.
fn timer_counter() -> Template<Msg, Msg, (), Log> {
    Template::new("timer_counter", |ctx: &mut Ctx<Msg>, ()| {
        let mut log = Log::new();
        let me = ctx.pid();
        let e = ctx.spawn_link(&echo(), me).unwrap();
        ctx.send_to(e, Msg::Go);
        // Nothing yet: it waits (its timer armed), and N(1) comes.
        log.push(format!(
            "{:?}",
            ctx.receive_mail_timeout(Duration::from_secs(10))
        ));
        for _ in 0..3 {
            ctx.send_to(e, Msg::Go);
            ctx.select_mail(|m| matches!(m, MailRef::Msg(Msg::N(_))));
        }
        let t = ctx.start_timer(Duration::from_secs(3600));
        log.push(format!("{t:?}"));
        ctx.unlink(e);
        ctx.send_to(e, Msg::Stop);
        log
    })
}

fn open_timer_counter(dir: &Path) -> DurableScheduler<Msg> {
    DurableScheduler::builder()
        .register(&timer_counter())
        .register(&echo())
        .clock(ManualClock::new(Time::default()))
        .open(dir)
        .unwrap()
        .0
}

#[test]
fn a_timer_armed_after_a_crash_has_the_id_it_had_without_the_crash() {
    let plain = check_story(
        open_timer_counter,
        |s| {
            s.spawn(&timer_counter(), ()).unwrap();
        },
        5,
    );
    assert_eq!(plain.len(), 2, "{plain:?}");
}

// ---------------------------------------------------------------------------
// A timed message that fires after the oldest process ended, when segments go.

/// Holds the oldest restart point until it is killed.
fn old() -> Template<Msg, Msg, (), ()> {
    Template::new("old", |ctx: &mut Ctx<Msg>, ()| {
        loop {
            if ctx.receive() == Msg::Stop {
                return;
            }
        }
    })
}

/// Arms `send_after(1h, self, Timed)` first; then takes every other message,
/// one per transition, until `Stop`: what is left in its inbox then.
fn keeper() -> Template<Msg, Msg, bool, Log> {
    Template::stepping("keeper", |ctx: &mut Ctx<Msg>, armed: bool| {
        if !armed {
            let me = ctx.pid();
            ctx.send_after(Duration::from_secs(3600), me, Msg::Timed);
            return Step::Transition(Transition::to(&keeper(), true));
        }
        let m = ctx.select(|m| *m != Msg::Timed);
        if m != Msg::Stop {
            return Step::Transition(Transition::to(&keeper(), true));
        }
        let mut left = Log::new();
        while let Some(m) = ctx.try_receive() {
            left.push(format!("{m:?}"));
        }
        Step::Done(left)
    })
}

fn open_keeper(dir: &Path, clock: &ManualClock) -> DurableScheduler<Msg> {
    DurableScheduler::builder()
        .register(&keeper())
        .register(&old())
        .clock(clock.clone())
        .options(JournalOptions::default().segment_size(4096))
        .open(dir)
        .unwrap()
        .0
}

/// The keeper's story: `kill` ends the old process by an exit signal (else it
/// returns, its result taken); the timer fires in the next pass, and that
/// pass's commit lets the old segments go. `crash`: reopened then.
fn keeper_story(kill: bool, crash: bool) -> Option<Result<Log, chronoflow::ExitError>> {
    let dir = TempDir::new().unwrap();
    let clock = ManualClock::new(Time::default());
    let mut sched = open_keeper(dir.path(), &clock);
    let o = sched.spawn(&old(), ()).unwrap().pid();
    let k = sched.spawn(&keeper(), false).unwrap().pid();
    sched.run_until_idle().unwrap();
    for i in 0..300 {
        sched.send(k, Msg::N(i)).unwrap();
        sched.run_until_idle().unwrap();
    }
    if kill {
        sched.exit_signal(o, Reason::Kill);
    } else {
        sched.send(o, Msg::Stop).unwrap();
        sched.run_until_idle().unwrap();
        assert_eq!(sched.result_of::<()>(o), Some(Ok(())));
    }
    clock.advance(Duration::from_secs(7200));
    sched.run_until_idle().unwrap();
    if crash {
        drop(sched);
        sched = open_keeper(dir.path(), &clock);
    }
    sched.send(k, Msg::Stop).unwrap();
    sched.run_until_idle().unwrap();
    assert!(sched.violations().is_empty(), "{:?}", sched.violations());
    sched.result_of::<Log>(k)
}

/// A process killed by an exit signal: its STOP is its only record left once
/// the segments before the next restart point go; the journal must open.
#[test]
fn a_process_killed_by_an_exit_signal_does_not_orphan_itself_when_its_segments_go() {
    let plain = keeper_story(true, false);
    assert_eq!(plain, Some(Ok(vec!["Timed".to_string()])));
    let crashed = keeper_story(true, true);
    assert_eq!(crashed, plain);
}

/// A timed message that fired after the restart point that the release keeps,
/// but whose `send_after` (and the last toolkit state that knew of it) went:
/// it is in its process's inbox after a crash as it was before.
#[test]
fn a_timed_message_that_fired_before_the_segments_went_is_still_in_the_inbox() {
    let plain = keeper_story(false, false);
    assert_eq!(plain, Some(Ok(vec!["Timed".to_string()])));
    let crashed = keeper_story(false, true);
    assert_eq!(crashed, plain);
}

// ---------------------------------------------------------------------------
// An exit signal pending at the crash, and a timer due at the reopening.

/// Waits forever.
fn idler() -> Template<Msg, Msg, (), ()> {
    Template::new("idler", |ctx: &mut Ctx<Msg>, ()| {
        loop {
            if ctx.receive() == Msg::Stop {
                return;
            }
        }
    })
}

/// Links to `peer`, then on `Crash` arms a timer that sends `Tick` to `to`
/// now, and fails (its end ends `peer` through the link).
fn crasher() -> Template<Msg, Msg, (Pid, Pid), ()> {
    Template::new("crasher", |ctx: &mut Ctx<Msg>, (peer, to): (Pid, Pid)| {
        ctx.link(peer);
        loop {
            if ctx.receive() == Msg::Crash {
                ctx.send_after(Duration::ZERO, to, Msg::Tick);
                panic!("crash");
            }
        }
    })
}

/// Watches an idler and a crasher linked to it, makes the crasher fail, and
/// reads its mail in arrival order: the DOWNs and the crasher's `Tick`. The
/// idler ends in the crasher's turn (its exit signal is applied right after
/// it); the `Tick` comes in the next pass.
fn cascade_watcher() -> Template<Msg, Msg, (), Log> {
    Template::new("cascade_watcher", |ctx: &mut Ctx<Msg>, ()| {
        let mut log = Log::new();
        let me = ctx.pid();
        let (b, _) = ctx.spawn_monitor(&idler(), ()).unwrap();
        let (a, _) = ctx.spawn_monitor(&crasher(), (b, me)).unwrap();
        next_pass(ctx);
        next_pass(ctx);
        ctx.send_to(a, Msg::Crash);
        for _ in 0..3 {
            log.push(match ctx.receive_mail() {
                Mail::Down { pid, reason, .. } => {
                    format!("down {} {reason}", if pid == a { "a" } else { "b" })
                }
                other => format!("{other:?}"),
            });
        }
        log
    })
}

fn open_cascade(dir: &Path) -> DurableScheduler<Msg> {
    DurableScheduler::builder()
        .register(&cascade_watcher())
        .register(&idler())
        .register(&crasher())
        .clock(ManualClock::new(Time::default()))
        .open(dir)
        .unwrap()
        .0
}

/// The crash tore the journal between the crasher's STOP and the idler's
/// (killed by the link): the idler's end is applied at the reopening, and
/// must come before the `Tick` that came a pass after it.
#[test]
fn an_exit_signal_pending_at_the_crash_is_applied_before_timers_that_came_after_it() {
    let plain = check_story(
        open_cascade,
        |s| {
            s.spawn(&cascade_watcher(), ()).unwrap();
        },
        3,
    );
    assert_eq!(
        plain,
        ["down a failed: crash", "down b failed: crash", "Msg(Tick)"]
    );
}

// ---------------------------------------------------------------------------
// Mail order: a selective take, notices between messages, a flushed DOWN.

/// On `Go`, sends `N(1)`, `N(2)`, `N(3)` to its argument, then fails.
fn teller() -> Template<Msg, Msg, Pid, ()> {
    Template::new("teller", |ctx: &mut Ctx<Msg>, to: Pid| {
        loop {
            if ctx.receive() == Msg::Go {
                for n in 1..=3 {
                    ctx.send_to(to, Msg::N(n));
                }
                panic!("crash");
            }
        }
    })
}

/// Describes a piece of mail, pids named by role.
fn describe(mail: &Mail<Msg>, names: &[(Pid, &str)]) -> String {
    let name = |pid: &Pid| {
        names
            .iter()
            .find(|(p, _)| p == pid)
            .map_or("?", |(_, n)| *n)
    };
    match mail {
        Mail::Down { pid, reason, .. } => format!("down {} {reason}", name(pid)),
        Mail::Exit { from, reason } => format!("exit {} {reason}", name(from)),
        Mail::Timeout(_) => "timeout".to_string(),
        Mail::Msg(m) => format!("{m:?}"),
        _ => "other".to_string(),
    }
}

/// Traps exits; a linked teller and a monitored one tell three numbers each
/// and fail. Takes `N(2)` first (a take behind the head), flushes the second
/// teller's DOWN, then reads the rest in arrival order across passes.
fn mail_reader() -> Template<Msg, Msg, (), Log> {
    Template::new("mail_reader", |ctx: &mut Ctx<Msg>, ()| {
        let mut log = Log::new();
        let me = ctx.pid();
        ctx.trap_exit(true);
        let a = ctx.spawn_link(&teller(), me).unwrap();
        ctx.send_to(a, Msg::Go);
        ctx.select_mail(|m| matches!(m, MailRef::Exit { .. }));
        let (b, mb) = ctx.spawn_monitor(&teller(), me).unwrap();
        ctx.send_to(b, Msg::Go);
        // Its DOWN came (after its three numbers): flushed.
        let names = [(a, "a"), (b, "b"), (me, "me")];
        let got = ctx.select_mail(|m| matches!(m, MailRef::Msg(Msg::N(2))));
        log.push(describe(&got, &names));
        ctx.select_mail(|m| matches!(m, MailRef::Msg(Msg::N(3))));
        ctx.select_mail(|m| matches!(m, MailRef::Msg(Msg::N(3))));
        next_pass(ctx);
        log.push(format!("demonitor {}", ctx.demonitor(mb, true)));
        next_pass(ctx);
        let t = ctx.start_timer(Duration::ZERO);
        ctx.select_mail(|m| matches!(m, MailRef::Timeout(x) if x == t));
        while let Some(mail) = ctx.try_receive_mail() {
            log.push(describe(&mail, &names));
            next_pass(ctx);
        }
        log
    })
}

fn open_mail_reader(dir: &Path) -> DurableScheduler<Msg> {
    DurableScheduler::builder()
        .register(&mail_reader())
        .register(&teller())
        .clock(ManualClock::new(Time::default()))
        .open(dir)
        .unwrap()
        .0
}

#[test]
fn mail_order_selective_takes_and_a_flushed_down_survive_crashes() {
    let plain = check_story(
        open_mail_reader,
        |s| {
            s.spawn(&mail_reader(), ()).unwrap();
        },
        17,
    );
    assert_eq!(
        plain,
        ["N(2)", "demonitor false", "N(1)", "N(1)", "N(2)",],
        "{plain:?}"
    );
}

// ---------------------------------------------------------------------------
// Durable calls: a timeout, a late reply, a server that ends mid-call.

/// Answers `Ask(to, n)` with `2n`; holds the answer to `n == 1` until `Go`
/// (a late reply); ends on `n == 0`, unanswered.
fn late_server() -> Template<Msg, Msg, (), ()> {
    Template::new("late_server", |ctx: &mut Ctx<Msg>, ()| {
        let mut held = None;
        loop {
            match ctx.receive() {
                Msg::Ask(_, 0) => return,
                Msg::Ask(to, 1) => held = Some(to),
                Msg::Ask(to, n) => {
                    let _ = ctx.reply(to, 2 * n);
                }
                Msg::Go => {
                    if let Some(to) = held.take() {
                        let replied = ctx.reply(to, 2);
                        if replied.is_err() {
                            panic!("the caller is alive: the late reply is taken");
                        }
                    }
                }
                _ => {}
            }
        }
    })
}

fn caller() -> Template<Msg, Msg, (), Log> {
    Template::new("caller", |ctx: &mut Ctx<Msg>, ()| {
        let mut log = Log::new();
        let s = ctx.spawn_link(&late_server(), ()).unwrap();
        let call = |ctx: &mut Ctx<Msg>, n, timeout| {
            ctx.durable_call::<u64>(s, |to| Msg::Ask(to, n), timeout)
        };
        log.push(format!("{:?}", call(ctx, 1, Some(Duration::ZERO))));
        ctx.send_to(s, Msg::Go);
        next_pass(ctx);
        log.push(format!("{:?}", call(ctx, 5, Some(Duration::from_secs(60)))));
        next_pass(ctx);
        log.push(format!("none {:?}", ctx.try_receive_mail()));
        log.push(format!("{:?}", call(ctx, 7, None)));
        ctx.unlink(s);
        log.push(format!("{:?}", call(ctx, 0, None)));
        log.push(format!("{:?}", call(ctx, 3, None)));
        log
    })
}

fn open_caller(dir: &Path) -> DurableScheduler<Msg> {
    DurableScheduler::builder()
        .register(&caller())
        .register(&late_server())
        .clock(ManualClock::new(Time::default()))
        .open(dir)
        .unwrap()
        .0
}

#[test]
fn durable_calls_with_a_timeout_and_a_late_reply_survive_crashes() {
    // (Every other pass: a crash after every pass never lets a call's
    // timeout fire; see the test below.)
    let plain = check_story_every(
        open_caller,
        |s| {
            s.spawn(&caller(), ()).unwrap();
        },
        7,
        2,
    );
    assert_eq!(
        plain,
        [
            "Err(Timeout)",
            "Ok(10)",
            "none None",
            "Ok(14)",
            "Err(Down(Normal))",
            "Err(NoProc)"
        ],
        "{plain:?}"
    );
}

// ---------------------------------------------------------------------------
// A transition with notices pending, and a full DropOldest inbox fed by timers.

/// Step `false`: traps exits, spawns a linked teller and makes it tell and
/// fail, waits until its EXIT came, and transitions with its numbers and the
/// EXIT pending. Step `true`: reads all its mail.
fn transitioner() -> Template<Msg, Msg, bool, Log> {
    Template::stepping("transitioner", |ctx: &mut Ctx<Msg>, after: bool| {
        let me = ctx.pid();
        if !after {
            ctx.trap_exit(true);
            let a = ctx.spawn_link(&teller(), me).unwrap();
            ctx.send_to(a, Msg::Go);
            // (A wait that takes nothing from the inbox.)
            ctx.select_mail(|m| matches!(m, MailRef::Exit { .. }));
            ctx.send_after(Duration::ZERO, me, Msg::Tick);
            let (b, _) = ctx.spawn_monitor(&teller(), me).unwrap();
            ctx.send_to(b, Msg::Go);
            ctx.select(|m| *m == Msg::Tick);
            return Step::Transition(Transition::to(&transitioner(), true));
        }
        let mut log = Log::new();
        next_pass(ctx);
        while let Some(mail) = ctx.try_receive_mail() {
            log.push(describe(&mail, &[(me, "me")]));
        }
        Step::Done(log)
    })
}

fn open_transitioner(dir: &Path) -> DurableScheduler<Msg> {
    DurableScheduler::builder()
        .register(&transitioner())
        .register(&teller())
        .clock(ManualClock::new(Time::default()))
        .open(dir)
        .unwrap()
        .0
}

#[test]
fn notices_pending_at_a_transition_keep_their_place_after_crashes() {
    quiet();
    let plain = check_story(
        open_transitioner,
        |s| {
            s.spawn(&transitioner(), false).unwrap();
        },
        7,
    );
    assert_eq!(
        plain,
        [
            "N(1)",
            "N(2)",
            "N(3)",
            "N(1)",
            "N(2)",
            "N(3)",
            "down ? failed: crash"
        ],
        "{plain:?}"
    );
}

/// Waits for `Go`, then sends what is left in its inbox (capacity 2, the
/// oldest dropped) to its argument, and `Stop`.
fn sink() -> Template<Msg, Msg, Pid, ()> {
    Template::new("sink", |ctx: &mut Ctx<Msg>, to: Pid| {
        ctx.select(|m| *m == Msg::Go);
        while let Some(m) = ctx.try_receive() {
            ctx.send_to(to, m);
        }
        ctx.send_to(to, Msg::Stop);
    })
    .capacity(2)
    .overflow(Overflow::DropOldest)
}

/// Arms timers to a small DropOldest sink, across passes, then lets it go:
/// what the sink kept.
fn feeder() -> Template<Msg, Msg, (), Log> {
    Template::new("feeder", |ctx: &mut Ctx<Msg>, ()| {
        let me = ctx.pid();
        let s = ctx.spawn_monitor(&sink(), me).unwrap().0;
        for n in 0..4 {
            ctx.send_after(Duration::ZERO, s, Msg::N(n));
            ctx.send_after(Duration::ZERO, s, Msg::N(10 + n));
            next_pass(ctx);
        }
        ctx.send_to(s, Msg::N(9));
        next_pass(ctx);
        ctx.send_after(Duration::ZERO, s, Msg::Go);
        let mut log = Log::new();
        loop {
            match ctx.select_mail(|m| matches!(m, MailRef::Msg(Msg::N(_) | Msg::Stop))) {
                Mail::Msg(Msg::Stop) => break,
                mail => log.push(describe(&mail, &[])),
            }
        }
        let down = ctx.select_mail(|m| matches!(m, MailRef::Down { .. }));
        log.push(describe(&down, &[(s, "sink"), (me, "me")]));
        log
    })
}

fn open_feeder(dir: &Path) -> DurableScheduler<Msg> {
    DurableScheduler::builder()
        .register(&feeder())
        .register(&sink())
        .clock(ManualClock::new(Time::default()))
        .open(dir)
        .unwrap()
        .0
}

#[test]
fn timers_into_a_full_drop_oldest_inbox_drop_the_same_messages_after_crashes() {
    let plain = check_story(
        open_feeder,
        |s| {
            s.spawn(&feeder(), ()).unwrap();
        },
        7,
    );
    // (Go, a timer too, drops N(13) as it comes.)
    assert_eq!(plain, ["N(9)", "down sink normal"], "{plain:?}");
}

/// Calls a server that never answers, with a timeout of zero: it is due at
/// the next pass. Reopened after every pass, the replayed call arms its
/// deadline again during the pass, after that pass fired its timers: a
/// deadline long past never fires, and the run never ends.
fn impatient() -> Template<Msg, Msg, (), Log> {
    Template::new("impatient", |ctx: &mut Ctx<Msg>, ()| {
        let s = ctx.spawn_link(&late_server(), ()).unwrap();
        let got = ctx.durable_call::<u64>(s, |to| Msg::Ask(to, 1), Some(Duration::ZERO));
        let mail = ctx.receive_mail_timeout(Duration::ZERO);
        ctx.unlink(s);
        ctx.exit_signal(s, Reason::Kill);
        vec![format!("{got:?}"), format!("{mail:?}")]
    })
}

fn open_impatient(dir: &Path) -> DurableScheduler<Msg> {
    DurableScheduler::builder()
        .register(&impatient())
        .register(&late_server())
        .clock(ManualClock::new(Time::default()))
        .open(dir)
        .unwrap()
        .0
}

#[test]
fn a_deadline_due_at_the_reopening_fires_even_when_every_pass_crashes() {
    let start: Start = |s| {
        s.spawn(&impatient(), ()).unwrap();
    };
    let plain = story(TempDir::new().unwrap().path(), open_impatient, start, false);
    assert_eq!(plain, ["Err(Timeout)", "None"]);
    let crashed = story(TempDir::new().unwrap().path(), open_impatient, start, true);
    assert_eq!(crashed, plain);
}

// ---------------------------------------------------------------------------
// A supervisor that restarts with a jittered backoff, on a clock that moves.

use chronoflow::otp::supervisor::{Backoff, ChildSpec, Supervisor, SupervisorTemplate, stop};

/// Fails on `Crash`.
fn counter() -> Template<Msg, Msg, (), ()> {
    Template::new("counter", |ctx: &mut Ctx<Msg>, ()| {
        loop {
            if ctx.receive() == Msg::Crash {
                panic!("crash");
            }
        }
    })
}

fn backoff_tree() -> SupervisorTemplate<Msg> {
    Supervisor::new("backoff_tree")
        .intensity(1_000, Duration::from_secs(1))
        .backoff(Backoff::new(Duration::from_secs(1), 2.0, Duration::from_secs(8)).jitter(0.5, 42))
        .child(ChildSpec::new("counter", &counter(), ()).name("counter"))
        .template()
        .unwrap()
}

fn backoff_driver() -> Template<Msg, Msg, (), Log, chronoflow::Local> {
    let tree = backoff_tree();
    Template::local("backoff_driver", move |ctx: &mut Ctx<Msg>, ()| {
        let mut log = Log::new();
        let (sup, _) = ctx.spawn_monitor(&tree, ()).unwrap();
        let mut old = None;
        let mut at = Vec::new();
        for _ in 0..4 {
            let pid = stories::await_name(ctx, "counter", old);
            at.push(ctx.now());
            let m = ctx.monitor(pid);
            ctx.send_named("counter", Msg::Crash).unwrap();
            let down =
                ctx.select_mail(|d| matches!(d, MailRef::Down { monitor, .. } if monitor == m));
            log.push(format!("{pid}: {down:?}"));
            old = Some(pid);
        }
        // Each restart came after its backoff (1s, 2s, 4s, jittered by half).
        for (i, w) in at.windows(2).enumerate() {
            let waited = w[1].since(w[0]);
            let base = Duration::from_secs(1 << i);
            log.push(format!("waited enough {}", waited >= base / 2));
        }
        let reason = stop(ctx, sup, Reason::Shutdown(None));
        log.push(format!("tree ended: {reason}"));
        log
    })
}

fn open_backoff(dir: &Path, clock: &ManualClock) -> DurableScheduler<Msg> {
    DurableScheduler::builder()
        .register(&backoff_driver())
        .register(&backoff_tree())
        .register(&counter())
        .clock(clock.clone())
        .open(dir)
        .unwrap()
        .0
}

/// Runs the backoff story, the clock moving 250 ms a pass, reopening after
/// every pass if `crash`.
fn backoff_story(crash: bool) -> Log {
    let dir = TempDir::new().unwrap();
    let clock = ManualClock::new(Time::default());
    let mut sched = open_backoff(dir.path(), &clock);
    let h = sched.spawn(&backoff_driver(), ()).unwrap().pid();
    for _ in 0..2_000 {
        let _ = sched.update().unwrap();
        if let Some(done) = sched.result_of::<Log>(h) {
            assert!(sched.violations().is_empty(), "{:?}", sched.violations());
            return done.unwrap();
        }
        clock.advance(Duration::from_millis(250));
        if crash {
            drop(sched);
            sched = open_backoff(dir.path(), &clock);
        }
    }
    panic!("no end: {:?} {:?}", sched.status(h), sched.violations());
}

#[test]
fn a_supervisor_with_a_jittered_backoff_restarts_alike_across_crashes() {
    quiet();
    let plain = backoff_story(false);
    assert_eq!(plain.len(), 8, "{plain:?}");
    assert_eq!(plain[4..7], ["waited enough true"; 3], "{plain:?}");
    assert_eq!(plain[7], "tree ended: shutdown", "{plain:?}");
    let crashed = backoff_story(true);
    assert_eq!(crashed, plain);
}

// ---------------------------------------------------------------------------
// Exit signals from outside, then a crash.

/// Traps exits, links an idler and monitors it, says it is ready, then reads
/// three pieces of mail.
fn trapper() -> Template<Msg, Msg, (), Log> {
    Template::new("trapper", |ctx: &mut Ctx<Msg>, ()| {
        let me = ctx.pid();
        ctx.trap_exit(true);
        let w = ctx.spawn_link(&idler(), ()).unwrap();
        ctx.monitor(w);
        ctx.register("trapper", me).unwrap();
        ctx.register("idler", w).unwrap();
        let names = [(me, "me"), (w, "idler")];
        let mut log = Log::new();
        for _ in 0..3 {
            let mail = ctx.receive_mail();
            log.push(describe(&mail, &names));
        }
        log.push(format!("idler named {:?}", ctx.whereis("idler")));
        log
    })
}

fn open_trapper(dir: &Path) -> DurableScheduler<Msg> {
    DurableScheduler::builder()
        .register(&trapper())
        .register(&idler())
        .clock(ManualClock::new(Time::default()))
        .open(dir)
        .unwrap()
        .0
}

fn trapper_story(crash: bool) -> Option<Result<Log, chronoflow::ExitError>> {
    let dir = TempDir::new().unwrap();
    let mut sched = open_trapper(dir.path());
    let t = sched.spawn(&trapper(), ()).unwrap().pid();
    let reopen = |sched: DurableScheduler<Msg>| {
        if crash {
            drop(sched);
            open_trapper(dir.path())
        } else {
            sched
        }
    };
    sched.run_until_idle().unwrap();
    let mut sched = reopen(sched);
    sched.exit_signal(t, Reason::Shutdown(None));
    let mut sched = reopen(sched);
    let w = sched.whereis("idler").unwrap();
    sched.exit_signal(w, Reason::Kill);
    let mut sched = reopen(sched);
    sched.run_until_idle().unwrap();
    let sched = reopen(sched);
    assert!(sched.violations().is_empty(), "{:?}", sched.violations());
    let mut sched = sched;
    sched.run_until_idle().unwrap();
    sched.result_of::<Log>(t)
}

#[test]
fn exit_signals_from_outside_survive_a_crash_right_after_them() {
    let plain = trapper_story(false);
    assert_eq!(
        plain,
        Some(Ok(vec![
            "exit me shutdown".to_string(),
            "down idler killed: killed".to_string(),
            "exit idler killed: killed".to_string(),
            "idler named None".to_string(),
        ]))
    );
    let crashed = trapper_story(true);
    assert_eq!(crashed, plain);
}

// ---------------------------------------------------------------------------
// Many processes: a chain of links, its tail fails, the failure runs along.

/// Spawns and links the next link of the chain (`left` more), joins group
/// `chain`; the last one takes the name `tail` and fails on `Crash`.
fn chain_link() -> Template<Msg, Msg, u64, ()> {
    Template::new("chain_link", |ctx: &mut Ctx<Msg>, left: u64| {
        let me = ctx.pid();
        ctx.join_group("chain", me);
        if left > 0 {
            ctx.spawn_link(&chain_link(), left - 1).unwrap();
        } else {
            ctx.register("tail", me).unwrap();
        }
        loop {
            if ctx.receive() == Msg::Crash {
                panic!("crash");
            }
        }
    })
}

const CHAIN: u64 = 60;

fn chain_root() -> Template<Msg, Msg, (), Log> {
    Template::new("chain_root", |ctx: &mut Ctx<Msg>, ()| {
        let mut log = Log::new();
        ctx.trap_exit(true);
        let first = ctx.spawn_link(&chain_link(), CHAIN - 1).unwrap();
        let m = ctx.monitor(first);
        let tail = loop {
            if let Some(tail) = ctx.whereis("tail") {
                break tail;
            }
            next_pass(ctx);
        };
        log.push(format!("members {}", ctx.members("chain").len()));
        ctx.send_to(tail, Msg::Crash);
        let down = ctx.select_mail(|x| matches!(x, MailRef::Down { monitor, .. } if monitor == m));
        let exit = ctx.select_mail(|x| matches!(x, MailRef::Exit { .. }));
        log.push(describe(&down, &[(first, "first")]));
        log.push(describe(&exit, &[(first, "first")]));
        log.push(format!("members {}", ctx.members("chain").len()));
        log.push(format!("tail {:?}", ctx.whereis("tail")));
        log.push(format!("links {:?}", ctx.links()));
        log
    })
}

fn open_chain(dir: &Path) -> DurableScheduler<Msg> {
    DurableScheduler::builder()
        .register(&chain_root())
        .register(&chain_link())
        .clock(ManualClock::new(Time::default()))
        .open(dir)
        .unwrap()
        .0
}

#[test]
fn a_failure_along_a_long_chain_of_links_survives_crashes() {
    quiet();
    let plain = check_story(
        open_chain,
        |s| {
            s.spawn(&chain_root(), ()).unwrap();
        },
        97,
    );
    assert_eq!(
        plain,
        [
            format!("members {CHAIN}"),
            "down first failed: crash".to_string(),
            "exit first failed: crash".to_string(),
            "members 0".to_string(),
            "tail None".to_string(),
            "links []".to_string(),
        ]
    );
}
