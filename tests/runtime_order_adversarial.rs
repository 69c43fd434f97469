#![cfg_attr(feature = "stackless", feature(coroutines))]
//! Adversarial tests of order across cores: a process's end, reply and
//! results after its messages (also those that wait for room), and the
//! toolkit's work for a process whose spawn is still on its way.

use std::time::{Duration, Instant};

use chronoflow::runtime::{Placement, Runtime};
use chronoflow::{Ctx, Mail, Pid, Reason, Template};

#[cfg(feature = "stackless")]
#[path = "support/busy.rs"]
mod busy;
#[cfg(feature = "stackless")]
use busy::{Stayers, core_index, work};

#[derive(Debug, Clone, PartialEq)]
enum Msg {
    Go,
    Num(u64),
    Pid(Pid),
}

/// Busy for `ms` milliseconds (the rest of the turn: what it sent to other
/// cores goes when it ends, unless a batch of 256 fills first).
fn spin(ms: u64) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(ms) {
        std::hint::spin_loop();
    }
}

/// Waits for `Go`, then ends: normally, or panicking with `boom`.
fn target() -> Template<Msg, Msg, bool, ()> {
    Template::new("target", |ctx: &mut Ctx<Msg>, fail: bool| {
        while ctx.receive() != Msg::Go {}
        if fail {
            panic!("boom");
        }
    })
}

/// Fails to start (its spawn fails on its core).
fn failing() -> Template<Msg, Msg, (), ()> {
    Template::new("failing", |_: &mut Ctx<Msg>, ()| {}).stack_size(usize::MAX / 2)
}

/// Forwards the first pid it gets to `to`, then ends once it has 300
/// numbers.
fn relay() -> Template<Msg, Msg, Pid, ()> {
    Template::new("relay", |ctx: &mut Ctx<Msg>, to: Pid| {
        let mut nums = 0;
        while nums < 300 {
            match ctx.receive() {
                Msg::Pid(p) => ctx.send_to(to, Msg::Pid(p)),
                Msg::Num(_) => nums += 1,
                Msg::Go => {}
            }
        }
    })
}

/// A on core 0 spawns P on core 1 and gives P's pid, with 300 numbers (a
/// batch of 256 goes at once), to a relay on core 2, which gives it to `b`
/// on core 1: `b` has P's pid before P's spawn, still in A's batch for
/// core 1 while A spins, reaches core 1.
fn pid_before_its_spawn<R: Send + std::fmt::Debug + 'static>(
    rt: &Runtime<Msg>,
    b: Template<Msg, Msg, (), R>,
    spawns: bool,
) -> R {
    let mut b = rt.spawn_joinable(Placement::Core(1), &b, ()).unwrap();
    let relay = rt.spawn_at(Placement::Core(2), &relay(), b.pid()).unwrap();
    let a = Template::new("a", move |ctx: &mut Ctx<Msg>, ()| {
        let p = if spawns {
            ctx.spawn_at(Placement::Core(1), &target(), true).unwrap()
        } else {
            ctx.spawn_at(Placement::Core(1), &failing(), ()).unwrap()
        };
        ctx.send_to(relay, Msg::Pid(p));
        for i in 0..300 {
            ctx.send_to(relay, Msg::Num(i));
        }
        spin(150);
    });
    rt.spawn_at(Placement::Core(0), &a, ()).unwrap();
    b.join_timeout(Duration::from_secs(10)).unwrap()
}

fn wait_pid(ctx: &mut Ctx<Msg>) -> Pid {
    loop {
        if let Msg::Pid(p) = ctx.receive() {
            return p;
        }
    }
}

#[test]
fn a_monitor_from_the_core_of_a_process_whose_spawn_is_on_its_way_waits_for_it() {
    let rt = Runtime::<Msg>::with_cores(3).unwrap();
    let b = Template::new("b", |ctx: &mut Ctx<Msg>, ()| {
        let p = wait_pid(ctx);
        let m = ctx.monitor(p);
        ctx.send_to(p, Msg::Go);
        let reason = loop {
            match ctx.receive_mail() {
                Mail::Down {
                    monitor, reason, ..
                } if monitor == m => break reason,
                Mail::Msg(_) => {}
                other => panic!("{other:?}"),
            }
        };
        // One DOWN, no second.
        let again = ctx.receive_mail_timeout(Duration::from_millis(100));
        assert!(again.is_none(), "{again:?}");
        reason
    });
    let reason = pid_before_its_spawn(&rt, b, true);
    assert!(
        matches!(&reason, Reason::Failed(why) if why.contains("boom")),
        "P's own end, not noproc: {reason:?}"
    );
}

#[test]
fn a_monitor_from_the_core_of_a_process_whose_spawn_fails_gives_noproc() {
    let rt = Runtime::<Msg>::with_cores(3).unwrap();
    let b = Template::new("b", |ctx: &mut Ctx<Msg>, ()| {
        let p = wait_pid(ctx);
        let m = ctx.monitor(p);
        match ctx.receive_mail_timeout(Duration::from_secs(5)) {
            Some(Mail::Down {
                monitor, reason, ..
            }) if monitor == m => Some(reason),
            _ => None,
        }
    });
    assert_eq!(pid_before_its_spawn(&rt, b, false), Some(Reason::NoProc));
}

/// Reads `n` numbers after `ms` milliseconds asleep (an inbox of two: what
/// comes meanwhile from another core waits there for room): when it woke.
fn late_reader() -> Template<Msg, Msg, (u64, usize), Instant> {
    Template::new("late", |ctx: &mut Ctx<Msg>, (ms, n): (u64, usize)| {
        ctx.sleep(Duration::from_millis(ms));
        let woke = Instant::now();
        let mut got = 0;
        while got < n {
            if let Msg::Num(_) = ctx.receive() {
                got += 1;
            }
        }
        woke
    })
    .capacity(2)
}

#[test]
fn a_sender_waiting_for_room_in_two_inboxes_waits_for_both() {
    // S on core 0 fills the inboxes of X and Y on core 1: its messages wait
    // there for room in both, and S is told to wait (for each). X reads at
    // 50 ms, Y at 400 ms: room in X is not room in Y, where S's messages
    // still wait; S may not go on sending to Y (thousands, more than a
    // turn's run-ahead) before Y reads.
    const LOTS: usize = 5000;
    let rt = Runtime::<Msg>::with_cores(2).unwrap();
    let mut x = rt
        .spawn_joinable(Placement::Core(1), &late_reader(), (50, 3))
        .unwrap();
    let mut y = rt
        .spawn_joinable(Placement::Core(1), &late_reader(), (400, 3 + LOTS))
        .unwrap();
    let (xp, yp) = (x.pid(), y.pid());
    let s = Template::new("s", move |ctx: &mut Ctx<Msg>, ()| {
        for i in 0..3 {
            ctx.send_to(xp, Msg::Num(i));
            ctx.send_to(yp, Msg::Num(i));
        }
        // (Both notices to wait come meanwhile.)
        ctx.sleep(Duration::from_millis(20));
        for i in 0..LOTS as u64 {
            ctx.send_to(yp, Msg::Num(i));
        }
        Instant::now()
    });
    let mut s = rt.spawn_joinable(Placement::Core(0), &s, ()).unwrap();
    let sent = s.join_timeout(Duration::from_secs(10)).unwrap();
    x.join_timeout(Duration::from_secs(10)).unwrap();
    let y_woke = y.join_timeout(Duration::from_secs(10)).unwrap();
    assert!(
        sent >= y_woke,
        "S sent its {LOTS} while its messages waited for room in Y: done {:?} before Y read",
        y_woke - sent
    );
}

/// Sends `to` ten numbers, then ends (tied to nothing).
fn ten_to() -> Template<Msg, Msg, Pid, ()> {
    Template::new("ten", |ctx: &mut Ctx<Msg>, to: Pid| {
        for i in 0..10 {
            ctx.send_to(to, Msg::Num(i));
        }
    })
}

/// A reader of capacity 2 on core 0: a process on core 1 sends it ten
/// numbers and ends (eight wait for room on core 0); then the reader ties
/// itself to it with `tie` (it had ended: noproc), and reads its mail.
fn tie_after_the_end(tie: fn(&mut Ctx<Msg>, Pid)) -> Vec<String> {
    let rt = Runtime::<Msg>::with_cores(2).unwrap();
    let reader = Template::new("reader", move |ctx: &mut Ctx<Msg>, ()| {
        ctx.trap_exit(true);
        let me = ctx.pid();
        let ten = ctx.spawn_at(Placement::Core(1), &ten_to(), me).unwrap();
        ctx.sleep(Duration::from_millis(100));
        tie(ctx, ten);
        // (Its noproc comes meanwhile.)
        ctx.sleep(Duration::from_millis(100));
        let mut got = Vec::new();
        for _ in 0..11 {
            got.push(match ctx.receive_mail() {
                Mail::Msg(Msg::Num(i)) => format!("{i}"),
                Mail::Down { pid, reason, .. } if pid == ten => format!("DOWN {reason:?}"),
                Mail::Exit { from, reason } if from == ten => format!("EXIT {reason:?}"),
                other => format!("{other:?}"),
            });
        }
        got
    })
    .capacity(2);
    rt.spawn_joinable(Placement::Core(0), &reader, ())
        .unwrap()
        .join_timeout(Duration::from_secs(10))
        .unwrap()
}

#[test]
fn a_noproc_down_across_cores_comes_after_what_the_process_sent() {
    let got = tie_after_the_end(|ctx, ten| {
        ctx.monitor(ten);
    });
    let mut want: Vec<String> = (0..10).map(|i| i.to_string()).collect();
    want.push("DOWN NoProc".to_string());
    assert_eq!(got, want, "what a process sent comes before its DOWN");
}

#[test]
fn a_noproc_exit_across_cores_comes_after_what_the_process_sent() {
    let got = tie_after_the_end(|ctx, ten| ctx.link(ten));
    let mut want: Vec<String> = (0..10).map(|i| i.to_string()).collect();
    want.push("EXIT NoProc".to_string());
    assert_eq!(got, want, "what a process sent comes before its EXIT");
}

#[test]
fn what_waited_for_room_in_a_childs_inbox_reaches_the_child_too() {
    // T on core 1 has a child C (an inbox of two, asleep): children get
    // what their parent gets, so the ten numbers from S on core 0 wait on
    // core 1 for room in C's inbox. S ends, monitored by T: its DOWN puts
    // them in first, past the full inbox; they go to C as well as to T.
    let rt = Runtime::<Msg>::with_cores(2).unwrap();
    let child = Template::new("c", |ctx: &mut Ctx<Msg>, ()| {
        ctx.sleep(Duration::from_millis(300));
        let mut got = Vec::new();
        while let Some(Msg::Num(i)) = ctx.receive_timeout(Duration::from_millis(300)) {
            got.push(i);
        }
        got
    })
    .capacity(2);
    let t = Template::new("t", move |ctx: &mut Ctx<Msg>, ()| {
        let c = ctx.spawn(&child, ()).unwrap();
        let me = ctx.pid();
        let (s, _) = ctx
            .spawn_monitor_at(Placement::Core(0), &ten_to(), me)
            .unwrap();
        let mut mine = Vec::new();
        loop {
            match ctx.receive_mail() {
                Mail::Msg(Msg::Num(i)) => mine.push(i),
                Mail::Down { pid, .. } if pid == s => break,
                other => panic!("{other:?}"),
            }
        }
        (mine, ctx.join(c).unwrap())
    });
    let (mine, childs) = rt
        .spawn_joinable(Placement::Core(1), &t, ())
        .unwrap()
        .join_timeout(Duration::from_secs(10))
        .unwrap();
    let all: Vec<u64> = (0..10).collect();
    assert_eq!(mine, all, "the parent's");
    assert_eq!(
        childs, all,
        "the child's: children get what their parent gets"
    );
}

/// Two processes that both moved to core 2: the watcher monitors the other,
/// which then sends it ten numbers and ends. Its DOWN may not overtake them
/// (between two moved processes they go through the watcher's home core
/// and down its line).
///
/// (It failed every run before the fix: the DOWN went into the watcher's
/// queue at once.)
#[cfg(feature = "stackless")]
#[test]
fn a_down_between_two_moved_processes_comes_after_the_messages() {
    between_two_moved_processes(Tie::Monitor);
}

/// As [`a_down_between_two_moved_processes_comes_after_the_messages`], the
/// watcher linked to the other and trapping exits: its EXIT (normal) comes
/// after the ten numbers.
#[cfg(feature = "stackless")]
#[test]
fn an_exit_between_two_moved_processes_comes_after_the_messages() {
    between_two_moved_processes(Tie::Link);
}

/// As [`a_down_between_two_moved_processes_comes_after_the_messages`], the
/// watcher cancelling its monitor with `flush` as soon as the other has
/// ended (its DOWN most often held on their core then, on its way): the ten
/// numbers come, and no DOWN.
#[cfg(feature = "stackless")]
#[test]
fn a_flush_between_two_moved_processes_removes_a_down_on_its_way() {
    between_two_moved_processes(Tie::Flush);
}

/// How the watcher of the tests above is tied to the other process.
#[cfg(feature = "stackless")]
#[derive(Clone, Copy, PartialEq)]
enum Tie {
    /// It monitors it.
    Monitor,
    /// It links to it and traps exits.
    Link,
    /// It monitors it, then cancels the monitor with `flush` once it ended.
    Flush,
}

/// The story of the tests above.
#[cfg(feature = "stackless")]
fn between_two_moved_processes(tie: Tie) {
    use std::sync::{Mutex, PoisonError};

    // One at a time: each needs the balance to move two processes to one
    // core, which a machine loaded by the others makes rarer.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);

    use chronoflow::stackless::{receive, send_to, yield_now};
    use chronoflow::{StacklessCtx, StacklessTemplate};

    let rt: Runtime<Msg> = Runtime::with_cores(3).unwrap();
    rt.set_migration(false);
    // Load on cores 0 and 1 that never moves.
    // Moves, tells its watcher where it is, waits for Go, sends ten, ends.
    let sender = StacklessTemplate::migratable("sender", |cx: StacklessCtx<Msg>, to: Pid| {
        #[coroutine]
        move || {
            let first = core_index();
            let mut x = 1;
            let mut turns = 0;
            while core_index() == first && turns < 3000 {
                x = work(x);
                turns += 1;
                yield_now!();
            }
            send_to!(cx, to, Msg::Num(core_index()));
            while receive!(cx) != Msg::Go {}
            for i in 0..10 {
                send_to!(cx, to, Msg::Num(i));
            }
            std::hint::black_box(x);
        }
    });
    let watcher = StacklessTemplate::migratable("watcher", move |cx: StacklessCtx<Msg>, ()| {
        let sender = sender.clone();
        #[coroutine]
        move || {
            let first = core_index();
            let me = cx.pid();
            let s = cx.spawn_at(Placement::Core(1), &sender, me).unwrap();
            let mut x = 1;
            let mut turns = 0;
            while core_index() == first && turns < 3000 {
                x = work(x);
                turns += 1;
                yield_now!();
            }
            std::hint::black_box(x);
            // Where the sender is.
            let Msg::Num(there) = receive!(cx) else {
                return None;
            };
            if there != core_index() {
                // (Not together: it goes on, unwatched.)
                send_to!(cx, s, Msg::Go);
                return None;
            }
            let link = tie == Tie::Link;
            let m = if link {
                cx.trap_exit(true);
                cx.link(s);
                None
            } else {
                Some(cx.monitor(s))
            };
            send_to!(cx, s, Msg::Go);
            let mut got = Vec::new();
            if let (Tie::Flush, Some(m)) = (tie, m) {
                while cx.is_alive(s) {
                    yield_now!();
                }
                cx.demonitor(m, true);
            }
            if tie != Tie::Flush {
                loop {
                    // (Polled, not awaited: a mail is not `Send`, and a migratable
                    // process's state must be.)
                    let seen = match cx.poll_receive_mail() {
                        Ok(Mail::Msg(Msg::Num(i))) => Some(i.to_string()),
                        Ok(Mail::Exit { from, reason }) if link && from == s => {
                            Some(if reason == Reason::Normal {
                                "END".to_string()
                            } else {
                                format!("EXIT {reason:?}")
                            })
                        }
                        Ok(Mail::Down {
                            monitor, reason, ..
                        }) if Some(monitor) == m => Some(if reason == Reason::Normal {
                            "END".to_string()
                        } else {
                            format!(
                                "DOWN {reason:?} {}",
                                std::thread::current().name().unwrap_or("?")
                            )
                        }),
                        Ok(other) => Some(format!("{other:?}")),
                        Err(_) => None,
                    };
                    match seen {
                        Some(seen) => {
                            let down = ["END", "DOWN", "EXIT"].iter().any(|e| seen.starts_with(e));
                            got.push(seen);
                            if down {
                                break;
                            }
                        }
                        None => yield_now!(),
                    }
                }
            }
            // (Whatever came after the DOWN.)
            let until = Instant::now() + Duration::from_millis(50);
            while Instant::now() < until {
                let seen = match cx.poll_receive_mail() {
                    Ok(Mail::Msg(Msg::Num(i))) => Some(i.to_string()),
                    Ok(other) => Some(format!("{other:?}")),
                    Err(_) => None,
                };
                match seen {
                    Some(seen) => got.push(seen),
                    None => yield_now!(),
                }
            }
            Some(got)
        }
    });
    let mut want: Vec<String> = (0..10).map(|i| i.to_string()).collect();
    if tie != Tie::Flush {
        want.push("END".to_string());
    }
    let mut together = 0;
    let mut bad = Vec::new();
    // (Up to four tries: on a loaded machine no two may move together.)
    for _ in 0..4 {
        rt.set_migration(false);
        let stayers = Stayers::start(&rt);
        let watchers: Vec<_> = (0..12)
            .map(|_| rt.spawn_joinable(Placement::Core(0), &watcher, ()).unwrap())
            .collect();
        rt.set_migration(true);
        for w in watchers {
            if let Some(got) = w.join().unwrap() {
                together += 1;
                if got != want {
                    bad.push(got);
                }
            }
        }
        stayers.stop();
        if together > 0 {
            break;
        }
    }
    assert!(together > 0, "no two moved together");
    assert!(bad.is_empty(), "ends before their messages: {bad:?}");
}
