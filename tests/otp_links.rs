//! Links, exit signals and trapping, with OTP's semantics.

use chronoflow::{Ctx, ExitError, Mail, Pid, Reason, SimpleScheduler, Template};

#[derive(Debug, Clone, PartialEq)]
enum Msg {
    Go,
    Pid(Pid),
}

/// Waits for `Go`, then fails (panics).
fn crasher() -> Template<Msg, Msg, (), ()> {
    Template::new("crasher", |ctx: &mut Ctx<Msg>, ()| {
        ctx.receive();
        panic!("boom");
    })
}

/// Waits for `Go`, then returns.
fn quitter() -> Template<Msg, Msg, (), ()> {
    Template::new("quitter", |ctx: &mut Ctx<Msg>, ()| {
        ctx.receive();
    })
}

/// Links to the pid given, then waits forever on plain messages.
fn linked_idler() -> Template<Msg, Msg, Pid, ()> {
    Template::new("idler", |ctx: &mut Ctx<Msg>, peer: Pid| {
        ctx.link(peer);
        loop {
            ctx.receive();
        }
    })
}

/// Traps exits, links to the pid given, and returns the first mail.
fn trapper() -> Template<Msg, Msg, Pid, Mail<Msg>> {
    Template::new("trapper", |ctx: &mut Ctx<Msg>, peer: Pid| {
        ctx.trap_exit(true);
        ctx.link(peer);
        ctx.receive_mail()
    })
}

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
    assert_eq!(
        s.status(idler.pid()),
        Some(chronoflow::Status::Waiting(chronoflow::Wait::Message))
    );
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
    let idle = Template::new("idle", |ctx: &mut Ctx<Msg>, ()| {
        ctx.trap_exit(true);
        loop {
            ctx.receive_mail();
        }
    });
    let target = s.spawn(&idle, ()).unwrap();
    let watcher = s.spawn(&trapper(), target.pid()).unwrap();
    s.run_until_idle();
    // Other reasons arrive as mail at a trapping target: it lives on.
    s.exit_signal(target.pid(), Reason::Shutdown(None));
    s.run_until_idle();
    assert_eq!(s.result(&target), None);
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
    let idle = Template::new("idle", |ctx: &mut Ctx<Msg>, ()| {
        loop {
            ctx.receive();
        }
    });
    let a = s.spawn(&idle, ()).unwrap();
    s.run_until_idle();
    // Normal is ignored.
    s.exit_signal(a.pid(), Reason::Normal);
    s.run_until_idle();
    assert_eq!(s.result(&a), None);
    // Any other reason ends it with that reason.
    s.exit_signal(a.pid(), Reason::custom("enough"));
    assert_eq!(
        s.result(&a),
        Some(Err(ExitError::Custom(chronoflow::Value::text_of("enough"))))
    );
}

#[test]
fn unlink_stops_the_signal_and_a_link_to_a_dead_pid_gives_noproc() {
    let mut s = SimpleScheduler::new();
    let c = s.spawn(&crasher(), ()).unwrap();
    let unlinking = Template::new("unlinking", |ctx: &mut Ctx<Msg>, peer: Pid| {
        ctx.link(peer);
        ctx.unlink(peer);
        ctx.receive();
        7
    });
    let u = s.spawn(&unlinking, c.pid()).unwrap();
    s.run_until_idle();
    s.send(c.pid(), Msg::Go).unwrap();
    s.run_until_idle();
    s.send(u.pid(), Msg::Go).unwrap();
    s.run_until_idle();
    assert_eq!(s.result(&u), Some(Ok(7)));
    // c is dead now: a link to it is an exit signal noproc.
    let late = s.spawn(&linked_idler(), c.pid()).unwrap();
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
fn spawn_link_links_before_the_child_runs_and_exit_ends_oneself_with_a_reason() {
    let mut s = SimpleScheduler::new();
    let quits = Template::new("quits", |ctx: &mut Ctx<Msg>, ()| -> () {
        ctx.exit(ExitError::Shutdown(None));
    });
    let parent = Template::new("parent", move |ctx: &mut Ctx<Msg>, ()| {
        ctx.trap_exit(true);
        let child = ctx.spawn_link(&quits, ()).unwrap();
        let mail = ctx.receive_mail();
        (child, mail)
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
}

#[test]
fn a_process_killed_by_a_signal_gives_its_reason_to_its_parents_join() {
    let mut s = SimpleScheduler::new();
    let idle = Template::new("idle", |ctx: &mut Ctx<Msg>, ()| {
        loop {
            ctx.receive();
        }
    });
    let parent = Template::new("parent", move |ctx: &mut Ctx<Msg>, ()| {
        let child = ctx.spawn(&idle, ()).unwrap();
        let me = child.pid();
        ctx.exit_signal(me, Reason::custom("stop"));
        ctx.join(child)
    });
    let p = s.spawn(&parent, ()).unwrap();
    s.run_until_idle();
    assert_eq!(
        s.result(&p),
        Some(Ok(Err(chronoflow::JoinError::Exited(ExitError::Custom(
            chronoflow::Value::text_of("stop")
        )))))
    );
    assert_eq!(s.live(), 0);
}

#[test]
fn mail_comes_in_arrival_order_messages_before_the_exit_that_followed_them() {
    let mut s = SimpleScheduler::new();
    let sender = Template::new("sender", |ctx: &mut Ctx<Msg>, to: Pid| {
        ctx.send_to(to, Msg::Go);
        ctx.send_to(to, Msg::Pid(ctx.pid()));
    });
    let reader = Template::new("reader", move |ctx: &mut Ctx<Msg>, ()| {
        ctx.trap_exit(true);
        let me = ctx.pid();
        let pid = ctx.spawn_link(&sender, me).unwrap();
        // Wait until all three are in.
        ctx.yield_now();
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(ctx.receive_mail());
        }
        (pid, got)
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

#[test]
fn exit_and_down_are_signals_of_the_process_that_ended() {
    use chronoflow::{SignalData, SignalKind};
    let mut s = SimpleScheduler::new();
    s.record();
    let c = s.spawn(&crasher(), ()).unwrap();
    let idler = s.spawn(&linked_idler(), c.pid()).unwrap();
    let watch = Template::new("watch", |ctx: &mut Ctx<Msg>, pid: Pid| {
        ctx.monitor(pid);
        ctx.receive_mail()
    });
    let w = s.spawn(&watch, c.pid()).unwrap();
    s.run_until_idle();
    s.pull();
    s.send(c.pid(), Msg::Go).unwrap();
    s.run_until_idle();
    let signals = s.pull();
    let of_c: Vec<_> = signals.iter().filter(|x| x.pid == c.pid()).collect();
    assert_eq!(
        of_c.iter().map(|x| x.kind()).collect::<Vec<_>>(),
        vec![SignalKind::Stop, SignalKind::Down, SignalKind::Exit]
    );
    assert!(matches!(
        &of_c[1].data,
        SignalData::Down { to, reason: Reason::Failed(_), .. } if *to == w.pid()
    ));
    assert!(matches!(
        &of_c[2].data,
        SignalData::Exit { to, reason: Reason::Failed(_) } if *to == idler.pid()
    ));
    // The idler's end follows, for the same reason.
    assert!(signals.iter().any(|x| x.pid == idler.pid()
        && matches!(&x.data, SignalData::Stop { exit: Err(ExitError::Failed(m)) } if m == "boom")));
    assert_eq!(
        of_c[2].to_string(),
        format!("{} #3 EXIT to {}: failed: boom", c.pid(), idler.pid())
    );
}

#[test]
fn a_stepping_body_ends_with_a_reason_by_returning_step_exit() {
    use chronoflow::Step;
    let mut s = SimpleScheduler::new();
    let quits = Template::stepping("quits", |ctx: &mut Ctx<Msg>, ()| -> Step<Msg, Msg, u8> {
        ctx.receive();
        Step::Exit(ExitError::Custom(chronoflow::Value::text_of("boom")))
    });
    let parent = Template::new("parent", move |ctx: &mut Ctx<Msg>, ()| {
        ctx.trap_exit(true);
        let child = ctx.spawn_link(&quits, ()).unwrap();
        ctx.send_to(child, Msg::Go);
        (child, ctx.receive_mail())
    });
    let p = s.spawn(&parent, ()).unwrap();
    s.run_until_idle();
    let (child, mail) = s.result(&p).unwrap().unwrap();
    assert_eq!(
        mail,
        Mail::Exit {
            from: child,
            reason: Reason::custom("boom")
        }
    );
}
