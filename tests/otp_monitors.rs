//! Monitors and DOWN, with OTP's semantics.

use chronoflow::{Ctx, ExitError, Mail, MailRef, Pid, Reason, SimpleScheduler, Template};

fn idle() -> Template<u32, u32, (), ()> {
    Template::new("idle", |ctx: &mut Ctx<u32>, ()| {
        if ctx.receive() == 1 {
            panic!("asked to fail");
        }
    })
}

/// Monitors the pid given (twice if asked), then returns every mail until
/// `downs` DOWNs came.
fn watcher(downs: usize) -> Template<u32, u32, (Pid, bool), Vec<Mail<u32>>> {
    Template::new(
        "watcher",
        move |ctx: &mut Ctx<u32>, (pid, twice): (Pid, bool)| {
            ctx.monitor(pid);
            if twice {
                ctx.monitor(pid);
            }
            let mut got = Vec::new();
            while got
                .iter()
                .filter(|m| matches!(m, Mail::Down { .. }))
                .count()
                < downs
            {
                got.push(ctx.receive_mail());
            }
            got
        },
    )
}

#[test]
fn one_down_per_monitor_with_the_reason_and_two_monitors_give_two() {
    let mut s = SimpleScheduler::new();
    let target = s.spawn(&idle(), ()).unwrap();
    let one = s.spawn(&watcher(1), (target.pid(), false)).unwrap();
    let two = s.spawn(&watcher(2), (target.pid(), true)).unwrap();
    s.run_until_idle();
    s.send(target.pid(), 1).unwrap();
    s.run_until_idle();
    let failed = Reason::Failed("asked to fail".into());
    let one = s.result(&one).unwrap().unwrap();
    assert!(
        matches!(&one[..], [Mail::Down { pid, reason, .. }] if *pid == target.pid() && *reason == failed)
    );
    let two = s.result(&two).unwrap().unwrap();
    let refs: Vec<_> = two
        .iter()
        .map(|m| match m {
            Mail::Down {
                monitor, reason, ..
            } => {
                assert_eq!(*reason, failed);
                *monitor
            }
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(refs.len(), 2);
    assert_ne!(refs[0], refs[1]);
    assert!(matches!(s.result(&target), Some(Err(ExitError::Failed(_)))));
}

#[test]
fn a_monitor_of_a_dead_or_unknown_pid_gives_noproc_at_once() {
    let mut s = SimpleScheduler::new();
    let target = s.spawn(&idle(), ()).unwrap();
    s.send(target.pid(), 0).unwrap();
    s.run_until_idle();
    let w = s.spawn(&watcher(1), (target.pid(), false)).unwrap();
    let u = s.spawn(&watcher(1), (Pid(12345), false)).unwrap();
    s.run_until_idle();
    for (h, pid) in [(w, target.pid()), (u, Pid(12345))] {
        let got = s.result(&h).unwrap().unwrap();
        assert!(
            matches!(&got[..], [Mail::Down { pid: p, reason: Reason::NoProc, .. }] if *p == pid),
            "{got:?}"
        );
    }
}

#[test]
fn demonitor_cancels_and_flush_removes_a_down_already_delivered() {
    let mut s = SimpleScheduler::new();
    let target = s.spawn(&idle(), ()).unwrap();
    let t = target.pid();
    let w = Template::new("w", move |ctx: &mut Ctx<u32>, ()| {
        // Cancelled before the end: no DOWN.
        let a = ctx.monitor(t);
        assert!(ctx.demonitor(a, false));
        assert!(!ctx.demonitor(a, false), "once");
        // Kept until after the end, then flushed: no DOWN read either.
        let b = ctx.monitor(t);
        let c = ctx.monitor(t);
        ctx.receive(); // the owner ends `t`, then tells us
        assert!(!ctx.demonitor(b, true), "it had fired");
        // Only c's DOWN is left.
        let m = ctx.try_receive_mail();
        let left = ctx.try_receive_mail();
        (c, m, left)
    });
    let w = s.spawn(&w, ()).unwrap();
    s.run_until_idle();
    s.send(t, 0).unwrap();
    s.run_until_idle();
    s.send(w.pid(), 0).unwrap();
    s.run_until_idle();
    let (c, m, left) = s.result(&w).unwrap().unwrap();
    assert_eq!(
        m,
        Some(Mail::Down {
            monitor: c,
            pid: t,
            reason: Reason::Normal
        })
    );
    assert_eq!(left, None);
}

#[test]
fn select_mail_waits_for_the_down_of_one_process_while_other_mail_stays_in_order() {
    let mut s = SimpleScheduler::new();
    let a = s.spawn(&idle(), ()).unwrap();
    let pa = a.pid();
    let w = Template::new("w", move |ctx: &mut Ctx<u32>, ()| {
        let r = ctx.monitor(pa);
        let down = ctx.select_mail(|m| matches!(m, MailRef::Down { monitor, .. } if monitor == r));
        let rest = [
            ctx.try_receive_mail(),
            ctx.try_receive_mail(),
            ctx.try_receive_mail(),
        ];
        (down, rest)
    });
    let w = s.spawn(&w, ()).unwrap();
    s.run_until_idle();
    s.send(w.pid(), 10).unwrap();
    s.send(w.pid(), 11).unwrap();
    s.run_until_idle();
    s.send(pa, 0).unwrap();
    s.run_until_idle();
    let (down, rest) = s.result(&w).unwrap().unwrap();
    assert!(matches!(down, Mail::Down { pid, reason: Reason::Normal, .. } if pid == pa));
    assert_eq!(rest, [Some(Mail::Msg(10)), Some(Mail::Msg(11)), None]);
}

#[test]
fn spawn_monitor_gives_the_down_of_a_process_that_ends_at_once() {
    let mut s = SimpleScheduler::new();
    let quick = Template::new("quick", |_: &mut Ctx<u32>, ()| 5u8);
    let w = Template::new("w", move |ctx: &mut Ctx<u32>, ()| {
        let (pid, r) = ctx.spawn_monitor(&quick, ()).unwrap();
        (pid, r, ctx.receive_mail())
    });
    let w = s.spawn(&w, ()).unwrap();
    s.run_until_idle();
    let (pid, r, mail) = s.result(&w).unwrap().unwrap();
    assert_eq!(
        mail,
        Mail::Down {
            monitor: r,
            pid,
            reason: Reason::Normal
        }
    );
    // The monitored process was detached: nothing is left behind.
    assert_eq!(s.live(), 0);
}

#[test]
fn a_process_that_monitors_itself_ends_cleanly() {
    let mut s = SimpleScheduler::new();
    let t = Template::new("t", |ctx: &mut Ctx<u32>, ()| {
        let me = ctx.pid();
        ctx.monitor(me);
        ctx.receive_mail()
    });
    let h = s.spawn(&t, ()).unwrap();
    s.run_until_idle();
    s.exit_signal(h.pid(), Reason::Kill);
    s.run_until_idle();
    assert_eq!(s.result(&h), Some(Err(ExitError::Killed("killed".into()))));
    assert_eq!(s.live(), 0);
}
