#![feature(coroutines)]
//! The OTP toolkit from stackless processes: links, exit signals and trapping,
//! monitors, mail in arrival order, timed sends, calls (to stackful and
//! stackless servers), with the semantics of the stackful `Ctx`'s
//! (`otp_links.rs`, `otp_mail.rs`), and stackless and stackful processes
//! linked to each other.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use chronoflow::stackless::{
    call, exit_signal, join, receive, receive_mail, receive_mail_timeout, select_mail, send_after,
    yield_now,
};
use chronoflow::{
    CallError, Ctx, ExitError, JoinError, Mail, MailRef, ManualClock, MonitorRef, Pid, Reason,
    ReplyTo, SimpleScheduler, StacklessCtx, StacklessTemplate, Status, Template, Time, Value, Wait,
};

const START: Time = Time(1_000_000_000_000);

#[derive(Debug, Clone, PartialEq)]
enum Msg {
    Go,
    N(u32),
    Pid(Pid),
    /// A request answered at once with the number.
    Get(ReplyTo<u32>, u32),
    /// A request held until the next `Get`, then answered (late) with the
    /// number.
    Hold(ReplyTo<u32>, u32),
}

/// A stackless template of this file's schedulers.
type Sl<A, R> = StacklessTemplate<Msg, Msg, A, R>;

/// Waits for a message, then fails (panics).
fn crasher() -> Sl<(), ()> {
    StacklessTemplate::new("crasher", |cx: StacklessCtx<Msg>, ()| {
        #[coroutine]
        move || {
            receive!(cx);
            panic!("boom");
        }
    })
}

/// Waits for a message, then returns.
fn quitter() -> Sl<(), ()> {
    StacklessTemplate::new("quitter", |cx: StacklessCtx<Msg>, ()| {
        #[coroutine]
        move || {
            receive!(cx);
        }
    })
}

/// Waits forever on plain messages.
fn idler() -> Sl<(), ()> {
    StacklessTemplate::new("idler", |cx: StacklessCtx<Msg>, ()| {
        #[coroutine]
        move || {
            loop {
                receive!(cx);
            }
        }
    })
}

/// Links to the pid given, then waits forever on plain messages.
fn linked_idler() -> Sl<Pid, ()> {
    StacklessTemplate::new("linked idler", |cx: StacklessCtx<Msg>, peer: Pid| {
        #[coroutine]
        move || {
            cx.link(peer);
            loop {
                receive!(cx);
            }
        }
    })
}

/// Traps exits, links to the pid given, and returns the first mail.
fn trapper() -> Sl<Pid, Mail<Msg>> {
    StacklessTemplate::new("trapper", |cx: StacklessCtx<Msg>, peer: Pid| {
        #[coroutine]
        move || {
            cx.trap_exit(true);
            cx.link(peer);
            receive_mail!(cx)
        }
    })
}

/// Answers `Get` at once; holds a `Hold` and answers it (late) just before the
/// next `Get`; fails on `Go`.
fn stackless_server() -> Sl<(), ()> {
    StacklessTemplate::new("stackless server", |cx: StacklessCtx<Msg>, ()| {
        #[coroutine]
        move || {
            let mut held = None;
            loop {
                match receive!(cx) {
                    Msg::Get(to, n) => {
                        if let Some((late, m)) = held.take() {
                            let _ = cx.reply(late, m);
                        }
                        let _ = cx.reply(to, n);
                    }
                    Msg::Hold(to, n) => held = Some((to, n)),
                    Msg::Go => panic!("server down"),
                    _ => {}
                }
            }
        }
    })
}

/// The same server, stackful.
fn stackful_server() -> Template<Msg, Msg, (), ()> {
    Template::new("stackful server", |ctx: &mut Ctx<Msg>, ()| {
        let mut held = None;
        loop {
            match ctx.receive() {
                Msg::Get(to, n) => {
                    if let Some((late, m)) = held.take() {
                        let _ = ctx.reply(late, m);
                    }
                    let _ = ctx.reply(to, n);
                }
                Msg::Hold(to, n) => held = Some((to, n)),
                Msg::Go => panic!("server down"),
                _ => {}
            }
        }
    })
}

/// The message of a caught panic.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic>".to_string()
    }
}

fn manual() -> (SimpleScheduler<Msg>, ManualClock) {
    let clock = ManualClock::new(START);
    let mut s = SimpleScheduler::new();
    s.set_clock(clock.clone());
    (s, clock)
}

// ---------------------------------------------------------------------------------
// Links and exit signals.

#[test]
fn a_failure_takes_non_trapping_linked_peers_with_it_and_trapping_ones_get_exit() {
    let mut s = SimpleScheduler::new();
    let c = s.spawn(&crasher(), ()).unwrap();
    let idler = s.spawn(&linked_idler(), c.pid()).unwrap();
    let trap = s.spawn(&trapper(), c.pid()).unwrap();
    s.run_until_idle();
    assert_eq!(s.links(c.pid()), vec![idler.pid(), trap.pid()]);
    s.send(c.pid(), Msg::Go).unwrap();
    s.run_until_idle();
    assert!(matches!(s.result(&c), Some(Err(ExitError::Failed(m))) if m == "boom"));
    // The same reason spreads along the link.
    assert!(matches!(s.result(&idler), Some(Err(ExitError::Failed(m))) if m == "boom"));
    assert_eq!(
        s.result(&trap),
        Some(Ok(Mail::Exit {
            from: c.pid(),
            reason: Reason::Failed("boom".into())
        }))
    );
}

#[test]
fn a_normal_end_kills_no_one_and_trapping_peers_get_exit_normal() {
    let mut s = SimpleScheduler::new();
    let q = s.spawn(&quitter(), ()).unwrap();
    let idler = s.spawn(&linked_idler(), q.pid()).unwrap();
    let trap = s.spawn(&trapper(), q.pid()).unwrap();
    s.run_until_idle();
    s.send(q.pid(), Msg::Go).unwrap();
    s.run_until_idle();
    assert_eq!(s.result(&q), Some(Ok(())));
    assert_eq!(s.status(idler.pid()), Some(Status::Waiting(Wait::Message)));
    assert_eq!(
        s.result(&trap),
        Some(Ok(Mail::Exit {
            from: q.pid(),
            reason: Reason::Normal
        }))
    );
    assert!(s.links(idler.pid()).is_empty());
}

#[test]
fn kill_ends_even_a_trapping_process_and_its_links_see_killed() {
    let mut s = SimpleScheduler::new();
    let idle: Sl<(), ()> = StacklessTemplate::new("idle", |cx: StacklessCtx<Msg>, ()| {
        #[coroutine]
        move || {
            cx.trap_exit(true);
            let mut got = Vec::new();
            loop {
                let mail = receive_mail!(cx);
                got.push(mail);
            }
        }
    });
    let target = s.spawn(&idle, ()).unwrap();
    let watcher = s.spawn(&trapper(), target.pid()).unwrap();
    s.run_until_idle();
    // Other reasons arrive as mail at a trapping target: it lives on.
    s.exit_signal(target.pid(), Reason::Shutdown(None));
    s.run_until_idle();
    assert_eq!(s.result(&target), None);
    assert_eq!(s.status(target.pid()), Some(Status::Waiting(Wait::Mail)));
    s.exit_signal(target.pid(), Reason::Kill);
    s.run_until_idle();
    assert_eq!(
        s.result(&target),
        Some(Err(ExitError::Killed("killed".into())))
    );
    assert_eq!(
        s.result(&watcher),
        Some(Ok(Mail::Exit {
            from: target.pid(),
            reason: Reason::Killed("killed".into())
        }))
    );
}

#[test]
fn exit_signals_to_a_non_trapping_process() {
    let mut s = SimpleScheduler::new();
    let a = s.spawn(&idler(), ()).unwrap();
    s.run_until_idle();
    // Normal is ignored.
    s.exit_signal(a.pid(), Reason::Normal);
    s.run_until_idle();
    assert_eq!(s.result(&a), None);
    // Any other reason ends it with that reason.
    s.exit_signal(a.pid(), Reason::custom("enough"));
    assert_eq!(
        s.result(&a),
        Some(Err(ExitError::Custom(Value::text_of("enough"))))
    );
}

#[test]
fn unlink_stops_the_signal_and_a_link_to_a_dead_pid_gives_noproc_at_once() {
    let mut s = SimpleScheduler::new();
    let c = s.spawn(&crasher(), ()).unwrap();
    let unlinking = StacklessTemplate::new("unlinking", |cx: StacklessCtx<Msg>, peer: Pid| {
        #[coroutine]
        move || {
            cx.link(peer);
            assert_eq!(cx.links(), vec![peer]);
            cx.unlink(peer);
            assert!(cx.links().is_empty());
            receive!(cx);
            7
        }
    });
    let u = s.spawn(&unlinking, c.pid()).unwrap();
    s.run_until_idle();
    s.send(c.pid(), Msg::Go).unwrap();
    s.run_until_idle();
    s.send(u.pid(), Msg::Go).unwrap();
    s.run_until_idle();
    assert_eq!(s.result(&u), Some(Ok(7)));
    // c is dead now: a link to it is an exit signal noproc, which ends a
    // process that does not trap exits then and there.
    let late = StacklessTemplate::new("late", |cx: StacklessCtx<Msg>, peer: Pid| {
        #[coroutine]
        move || {
            cx.link(peer);
            "went on"
        }
    });
    let late = s.spawn(&late, c.pid()).unwrap();
    let late_trap = s.spawn(&trapper(), c.pid()).unwrap();
    s.run_until_idle();
    assert_eq!(s.result(&late), Some(Err(ExitError::NoProc)));
    assert_eq!(
        s.result(&late_trap),
        Some(Ok(Mail::Exit {
            from: c.pid(),
            reason: Reason::NoProc
        }))
    );
}

#[test]
fn an_exit_signal_to_oneself_ends_at_once_unless_trapped() {
    let mut s = SimpleScheduler::new();
    let own = StacklessTemplate::new("own", |cx: StacklessCtx<Msg>, trap: bool| {
        #[coroutine]
        move || {
            cx.trap_exit(trap);
            let me = cx.pid();
            cx.exit_signal(me, Reason::custom("self"));
            cx.try_receive_mail()
        }
    });
    let plain = s.spawn(&own, false).unwrap();
    let trapping = s.spawn(&own, true).unwrap();
    s.run_until_idle();
    assert_eq!(
        s.result(&plain),
        Some(Err(ExitError::Custom(Value::text_of("self"))))
    );
    assert_eq!(
        s.result(&trapping),
        Some(Ok(Some(Mail::Exit {
            from: trapping.pid(),
            reason: Reason::custom("self")
        })))
    );
}

#[test]
fn exit_signal_macro_lets_the_signal_act_before_going_on() {
    let mut s = SimpleScheduler::new();
    let parent = StacklessTemplate::new("parent", move |cx: StacklessCtx<Msg>, ()| {
        let idle = idler();
        #[coroutine]
        move || {
            let a = cx.spawn(&idle, ()).unwrap();
            let b = cx.spawn(&idle, ()).unwrap();
            // The method does not wait: the signal acts at the next wait.
            cx.exit_signal(a.pid(), Reason::custom("stop"));
            let a_after_method = cx.is_alive(a.pid());
            exit_signal!(cx, b.pid(), Reason::custom("stop"));
            let b_after_macro = cx.is_alive(b.pid());
            (a_after_method, b_after_macro, join!(cx, a), join!(cx, b))
        }
    });
    let p = s.spawn(&parent, ()).unwrap();
    s.run_until_idle();
    let stop = || Err(JoinError::Exited(ExitError::Custom(Value::text_of("stop"))));
    assert_eq!(s.result(&p), Some(Ok((true, false, stop(), stop()))));
    assert_eq!(s.live(), 0);
}

#[test]
fn spawn_link_links_before_the_child_runs_and_exit_ends_oneself_with_a_reason() {
    let mut s = SimpleScheduler::new();
    let parent = StacklessTemplate::new("parent", move |cx: StacklessCtx<Msg>, ()| {
        let quits: Sl<(), ()> = StacklessTemplate::new("quits", |cx: StacklessCtx<Msg>, ()| {
            #[coroutine]
            move || {
                cx.exit(ExitError::Shutdown(None));
            }
        });
        #[coroutine]
        move || {
            cx.trap_exit(true);
            let child = cx.spawn_link(&quits, ()).unwrap();
            let mail = receive_mail!(cx);
            (child, mail)
        }
    });
    let p = s.spawn(&parent, ()).unwrap();
    s.run_until_idle();
    let (child, mail) = s.result(&p).unwrap().unwrap();
    assert_eq!(
        mail,
        Mail::Exit {
            from: child,
            reason: Reason::Shutdown(None)
        }
    );
    // Its result was not kept: a process of its own, not a child.
    assert_eq!(s.live(), 0);
}

#[test]
fn spawn_link_and_spawn_monitor_tie_before_the_new_process_runs_whatever_the_budget() {
    let mut s = SimpleScheduler::new();
    s.set_budget(1);
    let t = StacklessTemplate::new("t", |cx: StacklessCtx<Msg>, ()| {
        let crash: Sl<(), ()> = StacklessTemplate::new("crash", |_: StacklessCtx<Msg>, ()| {
            #[coroutine]
            || panic!("at once")
        });
        #[coroutine]
        move || {
            cx.trap_exit(true);
            let linked = cx.spawn_link(&crash, ()).unwrap();
            let (monitored, _) = cx.spawn_monitor(&crash, ()).unwrap();
            let a = receive_mail!(cx);
            let b = receive_mail!(cx);
            (linked, monitored, a, b)
        }
    });
    let h = s.spawn(&t, ()).unwrap();
    s.run_until_idle();
    let (linked, monitored, a, b) = s.result(&h).unwrap().unwrap();
    let at_once = Reason::Failed("at once".into());
    assert_eq!(
        a,
        Mail::Exit {
            from: linked,
            reason: at_once.clone()
        }
    );
    assert!(
        matches!(&b, Mail::Down { pid, reason, .. } if *pid == monitored && *reason == at_once),
        "{b:?}"
    );
}

#[test]
#[allow(unreachable_code)]
fn exit_is_refused_outside_the_turn_and_inside_a_predicate() {
    let mut s = SimpleScheduler::new();
    let early = StacklessTemplate::new("early", |cx: StacklessCtx<Msg>, ()| {
        cx.exit(ExitError::Shutdown(None));
        #[coroutine]
        move || {}
    });
    let refused = catch_unwind(AssertUnwindSafe(|| s.spawn(&early, ()))).unwrap_err();
    assert!(
        panic_text(&*refused).contains("outside that process's turn"),
        "{}",
        panic_text(&*refused)
    );
    let inside = StacklessTemplate::new("inside", |cx: StacklessCtx<Msg>, ()| {
        #[coroutine]
        move || {
            select_mail!(cx, |_: MailRef<'_, Msg>| cx.exit(ExitError::Shutdown(None)));
        }
    });
    let i = s.spawn(&inside, ()).unwrap();
    s.send(i.pid(), Msg::Go).unwrap();
    s.run_until_idle();
    assert!(
        matches!(s.result(&i), Some(Err(ExitError::Failed(m))) if m.contains("re-entrantly")),
        "a predicate may not use the context"
    );
}

#[test]
fn a_process_killed_by_a_signal_gives_its_reason_to_its_parents_join() {
    let mut s = SimpleScheduler::new();
    let parent = StacklessTemplate::new("parent", move |cx: StacklessCtx<Msg>, ()| {
        let idle = idler();
        #[coroutine]
        move || {
            let child = cx.spawn(&idle, ()).unwrap();
            exit_signal!(cx, child.pid(), Reason::custom("stop"));
            join!(cx, child)
        }
    });
    let p = s.spawn(&parent, ()).unwrap();
    s.run_until_idle();
    assert_eq!(
        s.result(&p),
        Some(Ok(Err(JoinError::Exited(ExitError::Custom(
            Value::text_of("stop")
        )))))
    );
    assert_eq!(s.live(), 0);
}

#[test]
fn mail_comes_in_arrival_order_messages_before_the_exit_that_followed_them() {
    let mut s = SimpleScheduler::new();
    let reader = StacklessTemplate::new("reader", move |cx: StacklessCtx<Msg>, ()| {
        let sender: Sl<Pid, ()> =
            StacklessTemplate::new("sender", |cx: StacklessCtx<Msg>, to: Pid| {
                #[coroutine]
                move || {
                    chronoflow::stackless::send_to!(cx, to, Msg::Go);
                    chronoflow::stackless::send_to!(cx, to, Msg::Pid(cx.pid()));
                }
            });
        #[coroutine]
        move || {
            cx.trap_exit(true);
            let pid = cx.spawn_link(&sender, cx.pid()).unwrap();
            // Wait until all three are in.
            yield_now!();
            let mut got = Vec::new();
            for _ in 0..3 {
                let mail = receive_mail!(cx);
                got.push(mail);
            }
            (pid, got)
        }
    });
    let r = s.spawn(&reader, ()).unwrap();
    s.run_until_idle();
    let (pid, got) = s.result(&r).unwrap().unwrap();
    assert_eq!(
        got,
        vec![
            Mail::Msg(Msg::Go),
            Mail::Msg(Msg::Pid(pid)),
            Mail::Exit {
                from: pid,
                reason: Reason::Normal
            }
        ]
    );
}

// ---------------------------------------------------------------------------------
// Stackless and stackful processes together.

#[test]
#[cfg_attr(miri, ignore = "stackful processes too: Miri cannot switch stacks")]
fn stackless_and_stackful_processes_link_both_ways() {
    let mut s = SimpleScheduler::new();
    // A stackful crasher takes a stackless peer with it.
    let stackful_crasher = Template::new("crasher", |ctx: &mut Ctx<Msg>, ()| {
        ctx.receive();
        panic!("stackful boom");
    });
    let c = s.spawn(&stackful_crasher, ()).unwrap();
    let idler = s.spawn(&linked_idler(), c.pid()).unwrap();
    // A stackful trapper hears of a stackless one's failure.
    let sc = s.spawn(&crasher(), ()).unwrap();
    let stackful_trapper = Template::new("trapper", |ctx: &mut Ctx<Msg>, peer: Pid| {
        ctx.trap_exit(true);
        ctx.link(peer);
        ctx.receive_mail()
    });
    let t = s.spawn(&stackful_trapper, sc.pid()).unwrap();
    s.run_until_idle();
    s.send(c.pid(), Msg::Go).unwrap();
    s.send(sc.pid(), Msg::Go).unwrap();
    s.run_until_idle();
    assert!(matches!(s.result(&idler), Some(Err(ExitError::Failed(m))) if m == "stackful boom"));
    assert_eq!(
        s.result(&t),
        Some(Ok(Mail::Exit {
            from: sc.pid(),
            reason: Reason::Failed("boom".into())
        }))
    );
}

// ---------------------------------------------------------------------------------
// Monitors.

#[test]
fn a_monitor_gives_one_down_with_the_reason_and_noproc_for_a_dead_pid() {
    let mut s = SimpleScheduler::new();
    let target = StacklessTemplate::new("target", |cx: StacklessCtx<Msg>, ()| {
        #[coroutine]
        move || {
            receive!(cx);
            cx.exit(ExitError::Shutdown(None));
        }
    });
    let t = s.spawn(&target, ()).unwrap();
    let watcher = StacklessTemplate::new("watcher", |cx: StacklessCtx<Msg>, t: Pid| {
        #[coroutine]
        move || {
            let a = cx.monitor(t);
            let b = cx.monitor(t);
            let first = receive_mail!(cx);
            let second = receive_mail!(cx);
            // Dead now: a monitor of it is a DOWN noproc at once.
            let c = cx.monitor(t);
            let third = cx.try_receive_mail();
            ((a, b, c), vec![Some(first), Some(second), third])
        }
    });
    let w = s.spawn(&watcher, t.pid()).unwrap();
    s.run_until_idle();
    s.send(t.pid(), Msg::Go).unwrap();
    s.run_until_idle();
    let ((a, b, c), got) = s.result(&w).unwrap().unwrap();
    let down = |monitor: MonitorRef, reason: Reason| {
        Some(Mail::Down {
            monitor,
            pid: t.pid(),
            reason,
        })
    };
    assert_eq!(
        got,
        vec![
            down(a, Reason::Shutdown(None)),
            down(b, Reason::Shutdown(None)),
            down(c, Reason::NoProc)
        ]
    );
}

#[test]
fn demonitor_with_flush_removes_a_down_that_came_and_without_it_keeps_it() {
    let mut s = SimpleScheduler::new();
    let watcher = StacklessTemplate::new("watcher", move |cx: StacklessCtx<Msg>, ()| {
        let quick: Sl<(), ()> = StacklessTemplate::new("quick", |_: StacklessCtx<Msg>, ()| {
            #[coroutine]
            || {}
        });
        #[coroutine]
        move || {
            let (_, m) = cx.spawn_monitor(&quick, ()).unwrap();
            let (_, n) = cx.spawn_monitor(&quick, ()).unwrap();
            // Let them end: their DOWNs come.
            yield_now!();
            let flushed = cx.demonitor(m, true);
            let kept = cx.demonitor(n, false);
            let mail = cx.try_receive_mail();
            (n, flushed, kept, mail, cx.try_receive_mail())
        }
    });
    let w = s.spawn(&watcher, ()).unwrap();
    s.run_until_idle();
    let (n, flushed, kept, mail, none) = s.result(&w).unwrap().unwrap();
    assert!(!flushed && !kept, "both had fired");
    assert!(matches!(mail, Some(Mail::Down { monitor, .. }) if monitor == n));
    assert_eq!(none, None);
}

#[test]
fn demonitor_of_an_active_monitor_means_no_down() {
    let (mut s, clock) = manual();
    let t = s.spawn(&quitter(), ()).unwrap();
    let watcher = StacklessTemplate::new("watcher", |cx: StacklessCtx<Msg>, t: Pid| {
        #[coroutine]
        move || {
            let m = cx.monitor(t);
            let active = cx.demonitor(m, false);
            cx.try_send_to(t, Msg::Go).unwrap();
            let mail = receive_mail_timeout!(cx, Duration::from_secs(1));
            (active, mail)
        }
    });
    let w = s.spawn(&watcher, t.pid()).unwrap();
    s.run_until_idle();
    assert_eq!(s.result(&t), Some(Ok(())));
    clock.advance(Duration::from_secs(1));
    s.run_until_idle();
    assert_eq!(s.result(&w), Some(Ok((true, None))));
}

#[test]
fn select_mail_takes_a_notice_from_behind_messages_and_keeps_the_order() {
    let mut s = SimpleScheduler::new();
    let reader = StacklessTemplate::new("reader", move |cx: StacklessCtx<Msg>, ()| {
        let quick: Sl<Pid, ()> =
            StacklessTemplate::new("quick", |cx: StacklessCtx<Msg>, to: Pid| {
                #[coroutine]
                move || {
                    chronoflow::stackless::send_to!(cx, to, Msg::N(1));
                }
            });
        #[coroutine]
        move || {
            let (pid, _) = cx.spawn_monitor(&quick, cx.pid()).unwrap();
            let mut seen = Vec::new();
            let down = select_mail!(cx, |m| {
                seen.push(format!("{m:?}").chars().take(6).collect::<String>());
                matches!(m, MailRef::Down { .. })
            });
            let rest = cx.try_receive_mail();
            (pid, down, rest, cx.try_receive_mail(), seen)
        }
    });
    let r = s.spawn(&reader, ()).unwrap();
    s.send(r.pid(), Msg::N(0)).unwrap();
    s.run_until_idle();
    let (pid, down, rest, next, seen) = s.result(&r).unwrap().unwrap();
    assert!(matches!(down, Mail::Down { pid: p, reason: Reason::Normal, .. } if p == pid));
    // The messages it passed stay, in their order.
    assert_eq!(rest, Some(Mail::Msg(Msg::N(0))));
    assert_eq!(next, Some(Mail::Msg(Msg::N(1))));
    // The predicate saw the messages before the DOWN, in arrival order.
    assert_eq!(seen.last().map(String::as_str), Some("Down {"));
    assert!(seen.iter().filter(|m| m.starts_with("Msg")).count() >= 2);
}

// ---------------------------------------------------------------------------------
// Calls.

/// Calls the server given: a `Get`, then the result.
fn caller() -> Sl<Pid, Result<u32, CallError>> {
    StacklessTemplate::new("caller", |cx: StacklessCtx<Msg>, srv: Pid| {
        #[coroutine]
        move || call!(cx, srv, |to| Msg::Get(to, 7), None)
    })
}

#[test]
#[cfg_attr(miri, ignore = "stackful processes too: Miri cannot switch stacks")]
fn a_call_is_answered_by_a_stackful_server() {
    let mut s = SimpleScheduler::new();
    let srv = s.spawn(&stackful_server(), ()).unwrap();
    let c = s.spawn(&caller(), srv.pid()).unwrap();
    s.run_until_idle();
    assert_eq!(s.result(&c), Some(Ok(Ok(7))));
}

#[test]
fn a_call_is_answered_by_a_stackless_server() {
    let mut s = SimpleScheduler::new();
    let srv = s.spawn(&stackless_server(), ()).unwrap();
    let c = s.spawn(&caller(), srv.pid()).unwrap();
    s.run_until_idle();
    assert_eq!(s.result(&c), Some(Ok(Ok(7))));
}

#[test]
#[cfg_attr(miri, ignore = "stackful processes too: Miri cannot switch stacks")]
fn a_stackful_caller_calls_a_stackless_server() {
    let mut s = SimpleScheduler::new();
    let srv = s.spawn(&stackless_server(), ()).unwrap();
    let caller = Template::new("caller", |ctx: &mut Ctx<Msg>, srv: Pid| {
        ctx.call(srv, |to| Msg::Get(to, 9), None)
    });
    let c = s.spawn(&caller, srv.pid()).unwrap();
    s.run_until_idle();
    assert_eq!(s.result(&c), Some(Ok(Ok(9))));
}

#[test]
fn a_call_to_a_server_that_dies_or_is_dead_fails() {
    let mut s = SimpleScheduler::new();
    let srv = s.spawn(&stackless_server(), ()).unwrap();
    let caller = StacklessTemplate::new("caller", |cx: StacklessCtx<Msg>, srv: Pid| {
        #[coroutine]
        move || {
            let first = call!(cx, srv, |_: ReplyTo<u32>| Msg::Go, None);
            let second = call!(cx, srv, |to| Msg::Get(to, 1), None);
            // The call's monitor went with it: no DOWN is left to read.
            (first, second, cx.try_receive_mail())
        }
    });
    let c = s.spawn(&caller, srv.pid()).unwrap();
    s.run_until_idle();
    assert_eq!(
        s.result(&c),
        Some(Ok((
            Err(CallError::Down(Reason::Failed("server down".into()))),
            Err(CallError::NoProc),
            None
        )))
    );
}

#[test]
fn a_call_that_is_answered_leaves_no_timer_nor_monitor_behind() {
    let (mut s, _clock) = manual();
    let srv = s.spawn(&stackless_server(), ()).unwrap();
    let caller = StacklessTemplate::new("caller", |cx: StacklessCtx<Msg>, srv: Pid| {
        #[coroutine]
        move || {
            let answer = call!(cx, srv, |to| Msg::Get(to, 5), Some(Duration::from_secs(5)));
            // (A plain wait, with no timer.)
            receive!(cx);
            // The server is dead now: no DOWN of the call's monitor comes.
            (answer, cx.try_receive_mail())
        }
    });
    let c = s.spawn(&caller, srv.pid()).unwrap();
    s.run_until_idle();
    assert_eq!(s.status(c.pid()), Some(Status::Waiting(Wait::Message)));
    assert_eq!(s.next_deadline(), None, "the reply disarmed the timer");
    s.exit_signal(srv.pid(), Reason::Kill);
    s.send(c.pid(), Msg::Go).unwrap();
    s.run_until_idle();
    assert_eq!(s.result(&c), Some(Ok((Ok(5), None))));
}

#[test]
fn a_process_cannot_call_itself() {
    let mut s = SimpleScheduler::new();
    let selfish = StacklessTemplate::new("selfish", |cx: StacklessCtx<Msg>, ()| {
        #[coroutine]
        move || call!(cx, cx.pid(), |to| Msg::Get(to, 1), None)
    });
    let h = s.spawn(&selfish, ()).unwrap();
    s.run_until_idle();
    assert_eq!(s.result(&h), Some(Ok(Err(CallError::CallingSelf))));
}

/// A `ReplyTo` of no call of `pid`'s: one made by deserializing.
fn dummy(pid: Pid) -> ReplyTo<u32> {
    serde_json::from_value(serde_json::json!({ "pid": pid, "tag": 999_999 })).unwrap()
}

#[test]
fn a_call_times_out_on_the_clock_and_its_late_reply_is_not_taken_for_the_next() {
    let (mut s, clock) = manual();
    let srv = s.spawn(&stackless_server(), ()).unwrap();
    let caller = StacklessTemplate::new("caller", |cx: StacklessCtx<Msg>, srv: Pid| {
        #[coroutine]
        move || {
            let five = Some(Duration::from_secs(5));
            let first = call!(cx, srv, |to| Msg::Hold(to, 1), five);
            let second = call!(cx, srv, |to| Msg::Get(to, 2), five);
            // Two replies that no call waits for (a late one, one to a tag of
            // no call), then mail: they are never read as mail.
            let third = call!(cx, srv, |to| Msg::Hold(to, 3), five);
            let me = cx.pid();
            chronoflow::stackless::send_to!(cx, srv, Msg::Get(dummy(me), 0));
            yield_now!();
            chronoflow::stackless::send_to!(cx, me, Msg::Go);
            let mail = receive_mail!(cx);
            (first, second, third, mail)
        }
    });
    let c = s.spawn(&caller, srv.pid()).unwrap();
    s.run_until_idle();
    clock.advance(Duration::from_secs(4));
    s.run_until_idle();
    assert_eq!(
        s.status(c.pid()),
        Some(Status::Waiting(Wait::Mail)),
        "not yet"
    );
    clock.advance(Duration::from_secs(1));
    s.run_until_idle();
    clock.advance(Duration::from_secs(5));
    s.run_until_idle();
    assert_eq!(
        s.result(&c),
        Some(Ok((
            Err(CallError::Timeout),
            Ok(2),
            Err(CallError::Timeout),
            Mail::Msg(Msg::Go)
        )))
    );
    assert_eq!(s.next_deadline(), None, "no timer is left armed");
}

#[test]
fn a_caller_killed_in_a_call_or_a_timed_receive_leaves_nothing_armed() {
    let (mut s, _clock) = manual();
    let srv = s.spawn(&stackless_server(), ()).unwrap();
    let caller = StacklessTemplate::new("caller", |cx: StacklessCtx<Msg>, srv: Pid| {
        #[coroutine]
        move || {
            call!(
                cx,
                srv,
                |to| Msg::Hold(to, 1),
                Some(Duration::from_secs(60))
            )
        }
    });
    let receiver = StacklessTemplate::new("receiver", |cx: StacklessCtx<Msg>, ()| {
        #[coroutine]
        move || receive_mail_timeout!(cx, Duration::from_secs(60))
    });
    let c = s.spawn(&caller, srv.pid()).unwrap();
    let r = s.spawn(&receiver, ()).unwrap();
    s.run_until_idle();
    assert_eq!(s.status(c.pid()), Some(Status::Waiting(Wait::Mail)));
    assert_eq!(s.status(r.pid()), Some(Status::Waiting(Wait::Mail)));
    assert_eq!(s.next_deadline(), Some(START + Duration::from_secs(60)));
    s.exit_signal(c.pid(), Reason::Kill);
    s.exit_signal(r.pid(), Reason::Kill);
    assert_eq!(s.result(&c), Some(Err(ExitError::Killed("killed".into()))));
    assert_eq!(s.result(&r), Some(Err(ExitError::Killed("killed".into()))));
    assert_eq!(s.next_deadline(), None, "their timers went with them");
    // The server goes on: its late reply to the dead caller comes back to it
    // (unread), and it answers the next call.
    let probe = StacklessTemplate::new("probe", |cx: StacklessCtx<Msg>, srv: Pid| {
        #[coroutine]
        move || {
            let m = cx.monitor(srv);
            let r = call!(cx, srv, |to| Msg::Get(to, 2), None);
            cx.demonitor(m, true);
            r
        }
    });
    let p = s.spawn(&probe, srv.pid()).unwrap();
    s.run_until_idle();
    assert_eq!(s.result(&p), Some(Ok(Ok(2))));
    assert_eq!(s.live(), 1, "the server alone");
}

#[test]
fn a_scheduler_dropped_with_a_stackless_process_in_a_call_is_fine() {
    let (mut s, _clock) = manual();
    let srv = s.spawn(&stackless_server(), ()).unwrap();
    let caller = StacklessTemplate::new("caller", |cx: StacklessCtx<Msg>, srv: Pid| {
        #[coroutine]
        move || {
            call!(
                cx,
                srv,
                |to| Msg::Hold(to, 1),
                Some(Duration::from_secs(60))
            )
        }
    });
    s.spawn(&caller, srv.pid()).unwrap();
    s.run_until_idle();
    drop(s);
}

// ---------------------------------------------------------------------------------
// Timers.

#[test]
fn timers_send_and_cancel_on_the_clock() {
    let (mut s, clock) = manual();
    let timing = StacklessTemplate::new("timing", |cx: StacklessCtx<Msg>, ()| {
        #[coroutine]
        move || {
            let me = cx.pid();
            let a = cx.send_after(Duration::from_secs(3), me, Msg::N(3));
            let b = cx.start_timer(Duration::from_secs(2));
            let c = cx.start_timer(Duration::from_secs(1));
            cx.send_after(Duration::from_secs(4), me, Msg::N(4));
            let left = cx.cancel_timer(c);
            let again = cx.cancel_timer(c);
            let got = [receive_mail!(cx), receive_mail!(cx), receive_mail!(cx)];
            (b, left, again, got, cx.cancel_timer(a))
        }
    });
    let t = s.spawn(&timing, ()).unwrap();
    s.run_until_idle();
    for _ in 0..3 {
        clock.advance(Duration::from_secs(1));
        s.run_until_idle();
        assert_eq!(s.result(&t), None, "not yet");
    }
    clock.advance(Duration::from_secs(1));
    s.run_until_idle();
    let (b, left, again, got, late) = s.result(&t).unwrap().unwrap();
    assert_eq!(left, Some(Duration::from_secs(1)));
    assert_eq!(again, None);
    assert_eq!(
        got,
        [Mail::Timeout(b), Mail::Msg(Msg::N(3)), Mail::Msg(Msg::N(4))]
    );
    assert_eq!(late, None, "it fired");
}

#[test]
fn receive_mail_timeout_gives_mail_or_none_on_the_clock() {
    let (mut s, clock) = manual();
    let waiter = StacklessTemplate::new("waiter", |cx: StacklessCtx<Msg>, ()| {
        #[coroutine]
        move || {
            let first = receive_mail_timeout!(cx, Duration::from_secs(5));
            // (A plain wait, with no timer.)
            receive!(cx);
            let second = receive_mail_timeout!(cx, Duration::from_secs(5));
            (first, second)
        }
    });
    let w = s.spawn(&waiter, ()).unwrap();
    s.run_until_idle();
    assert_eq!(s.next_deadline(), Some(START + Duration::from_secs(5)));
    s.send(w.pid(), Msg::N(1)).unwrap();
    s.run_until_idle();
    assert_eq!(s.status(w.pid()), Some(Status::Waiting(Wait::Message)));
    assert_eq!(s.next_deadline(), None, "the mail disarmed the timer");
    clock.advance(Duration::from_secs(1));
    s.send(w.pid(), Msg::Go).unwrap();
    s.run_until_idle();
    assert_eq!(s.next_deadline(), Some(START + Duration::from_secs(6)));
    clock.advance(Duration::from_secs(4));
    s.run_until_idle();
    assert_eq!(s.result(&w), None, "not yet");
    clock.advance(Duration::from_secs(1));
    s.run_until_idle();
    assert_eq!(s.result(&w), Some(Ok((Some(Mail::Msg(Msg::N(1))), None))));
    assert_eq!(s.next_deadline(), None);
}

/// A request of this file's own.
struct Double(u32);
impl chronoflow::RequestType for Double {
    type Reply = u32;
}
/// A request the stackless server refuses.
struct Other;
impl chronoflow::RequestType for Other {
    type Reply = ();
}

#[test]
fn typed_requests_names_and_groups_from_stackless_processes() {
    use chronoflow::stackless::request;
    let server: Sl<(), ()> = StacklessTemplate::new("server", |cx: StacklessCtx<Msg>, ()| {
        #[coroutine]
        move || {
            let me = cx.pid();
            cx.register("doubler", me).unwrap();
            assert!(cx.join_group("servers", me));
            for _ in 0..2 {
                if let Mail::Request(r) = receive_mail!(cx) {
                    match r.take::<Double>() {
                        Some((Double(n), to)) => cx.reply(to, 2 * n).unwrap(),
                        None => cx.refuse(&r),
                    }
                }
            }
        }
    });
    let client: Sl<(), _> = StacklessTemplate::new("client", |cx: StacklessCtx<Msg>, ()| {
        #[coroutine]
        move || {
            let server = cx.whereis("doubler").unwrap();
            let members = cx.members("servers");
            let a = request!(cx, server, Double(21), Some(Duration::from_secs(1)));
            let b = request!(cx, server, Other, None);
            let me = cx.pid();
            let c = request!(cx, me, Double(1), None);
            (members == vec![server], a, b, c)
        }
    });
    let mut s = SimpleScheduler::new();
    // (The request's timeout reads the clock: a manual one, which Miri can
    // read under isolation.)
    s.set_clock(ManualClock::new(START));
    s.spawn(&server, ()).unwrap();
    let c = s.spawn(&client, ()).unwrap();
    s.run_until_idle();
    assert_eq!(
        s.result(&c),
        Some(Ok((
            true,
            Ok(42),
            Err(CallError::Unhandled),
            Err(CallError::CallingSelf)
        )))
    );
    // The server ended: its name and group are gone.
    assert_eq!(s.whereis("doubler"), None);
    assert!(s.members("servers").is_empty());
}

#[test]
fn an_exiting_stackless_body_ends_with_its_err_as_the_reason() {
    let quits: StacklessTemplate<Msg, Msg, bool, u8> =
        StacklessTemplate::exiting("quits", |cx: StacklessCtx<Msg>, fail: bool| {
            #[coroutine]
            move || {
                receive!(cx);
                if fail {
                    Err(ExitError::Custom(Value::text_of("boom")))
                } else {
                    Ok(7)
                }
            }
        });
    let watch: Sl<(), _> = StacklessTemplate::new("watch", move |cx: StacklessCtx<Msg>, ()| {
        let quits = quits.clone();
        #[coroutine]
        move || {
            cx.trap_exit(true);
            let a = cx.spawn_link(&quits, true).unwrap();
            let b = cx.spawn_link(&quits, false).unwrap();
            cx.try_send_to(a, Msg::Go).unwrap();
            cx.try_send_to(b, Msg::Go).unwrap();
            let first = receive_mail!(cx);
            let second = receive_mail!(cx);
            (a, b, first, second)
        }
    });
    let mut s = SimpleScheduler::new();
    let w = s.spawn(&watch, ()).unwrap();
    s.run_until_idle();
    let (a, b, first, second) = s.result(&w).unwrap().unwrap();
    assert_eq!(
        first,
        Mail::Exit {
            from: a,
            reason: Reason::custom("boom")
        }
    );
    assert_eq!(
        second,
        Mail::Exit {
            from: b,
            reason: Reason::Normal
        }
    );
}

/// `send_after!` yields the turn once its budget is spent, as a stackful
/// `send_after` does: zero-delay timers armed in a long loop fire while it
/// runs (the method `cx.send_after` never yields: none fires before the loop
/// ends).
#[test]
fn send_after_yields_once_the_budget_is_spent() {
    let arming = |by_macro: bool| {
        Sl::<(), bool>::new("arming", move |cx: StacklessCtx<Msg>, ()| {
            #[coroutine]
            move || {
                let me = cx.pid();
                let mut fired_meanwhile = false;
                for n in 0..3 * chronoflow::DEFAULT_BUDGET {
                    if by_macro {
                        send_after!(cx, Duration::ZERO, me, Msg::N(n));
                    } else {
                        cx.send_after(Duration::ZERO, me, Msg::N(n));
                    }
                    fired_meanwhile |= cx.inbox_len() > 0;
                }
                fired_meanwhile
            }
        })
    };
    for by_macro in [true, false] {
        let mut s = SimpleScheduler::new();
        let h = s.spawn(&arming(by_macro), ()).unwrap();
        s.run_until_idle();
        assert_eq!(s.result(&h), Some(Ok(by_macro)), "by macro: {by_macro}");
    }
}
