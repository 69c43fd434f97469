#![cfg_attr(feature = "stackless", feature(coroutines))]
//! Adversarial tests of the system messages held between two processes that
//! both moved to one core (`kernel::held`): what a `demonitor` or an
//! `unlink` promises of what comes after it, while a DOWN or an EXIT is
//! still held on its way behind the messages.
//!
//! Each test gets processes to move to core 2 as
//! `tests/runtime_order_adversarial.rs` does (busy processes on cores 0 and
//! 1 that never move, migration turned on once they run), and tries again
//! when no two moved together.
#![cfg(feature = "stackless")]

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use chronoflow::runtime::{Placement, Runtime};
use chronoflow::stackless::{receive, send_to, yield_now};
use chronoflow::{Mail, MonitorRef, Pid, Reason, StacklessCtx, StacklessTemplate};

#[path = "support/busy.rs"]
mod busy;
use busy::{Stayers, core_index, work};

#[derive(Debug, Clone, PartialEq)]
enum Msg {
    Go,
    Num(u64),
}

/// What the watcher does once it and the other process are on one core.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Story {
    /// Monitors it; once it ended, cancels the monitor without `flush`.
    Demonitor,
    /// Links to it, trapping exits; once it ended, unlinks.
    Unlink,
    /// As `Unlink`, the other sending the watcher the exit signal `bye`
    /// after its ten numbers (not the link's: an unlink keeps it).
    UnlinkAfterSignal,
}

/// What a watcher saw: `Mail` read in the turn of its `demonitor` or
/// `unlink` (before `|`), then what came after, and what `demonitor` said.
type Seen = (Vec<String>, bool);

fn show(mail: Mail<Msg>, monitor: Option<MonitorRef>) -> String {
    match mail {
        Mail::Msg(Msg::Num(i)) => i.to_string(),
        Mail::Exit { reason, .. } if reason == Reason::atom("bye") => "EXIT bye".to_string(),
        Mail::Exit { reason, .. } => format!("EXIT {reason}"),
        Mail::Down {
            monitor: m, reason, ..
        } if Some(m) == monitor => format!("DOWN {reason}"),
        other => format!("{other:?}"),
    }
}

/// Spawns watchers on core 0 (each spawns its other process on core 1)
/// until some pairs moved to one core together; gives what each such
/// watcher saw.
fn story(story: Story) -> Vec<Seen> {
    // One at a time: each needs the balance to move two processes to one
    // core, which a machine loaded by the others makes rarer.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);

    let rt: Runtime<Msg> = Runtime::with_cores(3).unwrap();
    rt.set_migration(false);
    // Moves, tells its watcher where it is, waits for Go, sends ten (and
    // the exit signal `bye`, in `UnlinkAfterSignal`), ends.
    let sender = StacklessTemplate::migratable("sender", move |cx: StacklessCtx<Msg>, to: Pid| {
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
            if story == Story::UnlinkAfterSignal {
                cx.exit_signal(to, Reason::atom("bye"));
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
            let Msg::Num(there) = receive!(cx) else {
                return None;
            };
            if there != core_index() {
                // (Not together: it goes on, unwatched.)
                send_to!(cx, s, Msg::Go);
                return None;
            }
            let m = if story == Story::Demonitor {
                Some(cx.monitor(s))
            } else {
                cx.trap_exit(true);
                cx.link(s);
                None
            };
            send_to!(cx, s, Msg::Go);
            while cx.is_alive(s) {
                yield_now!();
            }
            // It ended: its DOWN or EXIT is held here most often now.
            let active = match m {
                Some(m) => cx.demonitor(m, false),
                None => {
                    cx.unlink(s);
                    false
                }
            };
            let mut got = Vec::new();
            // What came before (read in this same turn: nothing comes in
            // meanwhile)...
            while let Some(mail) = cx.try_receive_mail() {
                got.push(show(mail, m));
            }
            got.push("|".to_string());
            // ...and after.
            let until = Instant::now() + Duration::from_millis(50);
            while Instant::now() < until {
                // (The mail shown before the yield: a mail is not `Send`,
                // and a migratable process's state must be.)
                let seen = cx.try_receive_mail().map(|mail| show(mail, m));
                match seen {
                    Some(seen) => got.push(seen),
                    None => yield_now!(),
                }
            }
            Some((got, active))
        }
    });
    let mut seen = Vec::new();
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
                seen.push(got);
            }
        }
        stayers.stop();
        if !seen.is_empty() {
            break;
        }
    }
    assert!(!seen.is_empty(), "no two moved together");
    seen
}

/// What came after the `|` (the `demonitor` or `unlink`).
fn after(got: &[String]) -> &[String] {
    let bar = got.iter().position(|s| s == "|").expect("a bar");
    &got[bar + 1..]
}

/// OTP's `demonitor/1`: once it returned, no DOWN of the monitor is placed
/// in the caller's queue. (Across cores, the DOWN that comes after it finds
/// no monitor and is dropped.) A DOWN held for the watcher on their core
/// must go with the monitor, flush or no flush.
///
/// (It failed before the fix: the DOWN held came after the `demonitor`.)
#[test]
fn no_down_comes_after_a_demonitor_without_flush() {
    let seen = story(Story::Demonitor);
    let late: Vec<_> = seen
        .iter()
        .filter(|(got, _)| after(got).iter().any(|s| s.starts_with("DOWN")))
        .collect();
    assert!(late.is_empty(), "DOWNs after the demonitor: {late:?}");
    // `true`: the monitor was active, and no DOWN of it came nor comes.
    let lied: Vec<_> = seen
        .iter()
        .filter(|(got, active)| *active && got.iter().any(|s| s.starts_with("DOWN")))
        .collect();
    assert!(lied.is_empty(), "active, yet a DOWN: {lied:?}");
    let want: Vec<String> = (0..10).map(|i| i.to_string()).collect();
    for (got, _) in &seen {
        let nums: Vec<String> = got
            .iter()
            .filter(|s| s.parse::<u64>().is_ok())
            .cloned()
            .collect();
        assert_eq!(nums, want, "{got:?}");
    }
}

/// OTP's `unlink/1`: once it returned, the link has no effect on the
/// caller (across cores, the EXIT that comes after it finds no link and is
/// dropped). An EXIT of the link held for the watcher must go with it.
///
/// (It failed before the fix: the EXIT held came after the `unlink`.)
#[test]
fn no_link_exit_comes_after_an_unlink() {
    let seen = story(Story::Unlink);
    let late: Vec<_> = seen
        .iter()
        .filter(|(got, _)| after(got).iter().any(|s| s.starts_with("EXIT")))
        .collect();
    assert!(late.is_empty(), "EXITs after the unlink: {late:?}");
}

/// An unlink removes the link's EXIT, not an exit signal sent with
/// `exit_signal` (OTP's `exit/2`, which no link carries): `bye` comes,
/// after the ten numbers.
#[test]
fn an_unlink_keeps_an_exit_signal_held() {
    let seen = story(Story::UnlinkAfterSignal);
    for (got, _) in &seen {
        let got: Vec<_> = got.iter().filter(|s| *s != "|").cloned().collect();
        let mut want: Vec<String> = (0..10).map(|i| i.to_string()).collect();
        want.push("EXIT bye".to_string());
        assert_eq!(
            got.iter()
                .filter(|s| *s != "EXIT normal")
                .cloned()
                .collect::<Vec<_>>(),
            want,
            "{got:?}"
        );
    }
}
