#![cfg_attr(feature = "stackless", feature(coroutines))]
//! The toolkit across cores: monitors, links, exit signals and timers between
//! processes of different cores of a `Runtime`, with OTP's semantics.

use std::time::Duration;

use chronoflow::runtime::{Placement, Runtime, home};
use chronoflow::{CallError, Ctx, Mail, Pid, Reason, ReplyTo, Template};

#[derive(Debug, Clone, PartialEq)]
enum Msg {
    Go,
    Num(u64),
    Pid(Pid),
    Add(u64, u64, ReplyTo<u64>),
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

fn rt() -> Runtime<Msg> {
    Runtime::with_cores(2).unwrap()
}

#[test]
fn a_monitor_across_cores_gives_one_down_with_the_reason() {
    let rt = rt();
    let t = rt.spawn_at(Placement::Core(1), &target(), true).unwrap();
    let watcher = Template::new("watcher", move |ctx: &mut Ctx<Msg>, t: Pid| {
        let m1 = ctx.monitor(t);
        let m2 = ctx.monitor(t);
        ctx.send_to(t, Msg::Go);
        let mut downs = Vec::new();
        for _ in 0..2 {
            match ctx.receive_mail() {
                Mail::Down {
                    monitor,
                    pid,
                    reason,
                } => {
                    assert_eq!(pid, t);
                    downs.push((monitor == m1, monitor == m2, reason));
                }
                other => panic!("{other:?}"),
            }
        }
        // No third.
        assert!(
            ctx.receive_mail_timeout(Duration::from_millis(50))
                .is_none()
        );
        downs
    });
    let downs = rt
        .spawn_joinable(Placement::Core(0), &watcher, t)
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(downs.len(), 2);
    assert!(downs[0].0 && downs[1].1, "in the order set: {downs:?}");
    for (_, _, reason) in downs {
        assert!(
            matches!(&reason, Reason::Failed(why) if why.contains("boom")),
            "{reason:?}"
        );
    }
}

#[test]
fn a_monitor_of_an_ended_process_on_another_core_gives_noproc() {
    let rt = rt();
    let quick = Template::new("quick", |_: &mut Ctx<Msg>, ()| {});
    let q = rt.spawn_joinable(Placement::Core(1), &quick, ()).unwrap();
    let gone = q.pid();
    q.join().unwrap();
    let watcher = Template::new("watcher", move |ctx: &mut Ctx<Msg>, ()| {
        let m = ctx.monitor(gone);
        match ctx.receive_mail() {
            Mail::Down {
                monitor,
                pid,
                reason,
            } => (monitor == m, pid == gone, reason),
            other => panic!("{other:?}"),
        }
    });
    let got = rt
        .spawn_joinable(Placement::Core(0), &watcher, ())
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(got, (true, true, Reason::NoProc));
}

#[test]
fn a_demonitor_across_cores_means_no_down() {
    let rt = rt();
    let t = rt.spawn_at(Placement::Core(1), &target(), false).unwrap();
    let watcher = Template::new("watcher", move |ctx: &mut Ctx<Msg>, t: Pid| {
        let m = ctx.monitor(t);
        let active = ctx.demonitor(m, true);
        let other = ctx.monitor(t);
        ctx.send_to(t, Msg::Go);
        // The second monitor's DOWN comes; the first's never does.
        let first = ctx.receive_mail();
        let first =
            matches!(first, Mail::Down { monitor, reason: Reason::Normal, .. } if monitor == other);
        let more = ctx.receive_mail_timeout(Duration::from_millis(50));
        (active, first, more.is_none())
    });
    let (active, first, none_more) = rt
        .spawn_joinable(Placement::Core(0), &watcher, t)
        .unwrap()
        .join()
        .unwrap();
    assert!(active);
    assert!(first, "the second monitor's DOWN, normal");
    assert!(none_more, "no DOWN of the cancelled monitor");
}

#[test]
fn a_link_across_cores_takes_the_peer_down_or_tells_a_trapping_one() {
    let rt = rt();
    // A non-trapping peer on core 0 dies with the target on core 1.
    let t = rt.spawn_at(Placement::Core(1), &target(), true).unwrap();
    let linked = Template::new("linked", |ctx: &mut Ctx<Msg>, t: Pid| -> u64 {
        ctx.link(t);
        ctx.send_to(t, Msg::Go);
        loop {
            ctx.receive();
        }
    });
    let j = rt.spawn_joinable(Placement::Core(0), &linked, t).unwrap();
    let err = j.join().unwrap_err();
    assert!(format!("{err}").contains("boom"), "{err}");

    // A trapping one gets the EXIT as mail.
    let t = rt.spawn_at(Placement::Core(1), &target(), true).unwrap();
    let trapping = Template::new("trapping", |ctx: &mut Ctx<Msg>, t: Pid| {
        ctx.trap_exit(true);
        ctx.link(t);
        ctx.send_to(t, Msg::Go);
        match ctx.receive_mail() {
            Mail::Exit { from, reason } => (from == t, reason),
            other => panic!("{other:?}"),
        }
    });
    let (from_t, reason) = rt
        .spawn_joinable(Placement::Core(0), &trapping, t)
        .unwrap()
        .join()
        .unwrap();
    assert!(from_t);
    assert!(matches!(reason, Reason::Failed(_)), "{reason:?}");

    // The other way round: the linker fails, its peer on the other core,
    // not trapping, dies too.
    let peer = Template::new("peer", |ctx: &mut Ctx<Msg>, ()| -> u64 {
        loop {
            ctx.receive();
        }
    });
    let p = rt.spawn_joinable(Placement::Core(1), &peer, ()).unwrap();
    let failing = Template::new("failing", |ctx: &mut Ctx<Msg>, p: Pid| {
        ctx.link(p);
        panic!("linker fails");
    });
    rt.spawn_at(Placement::Core(0), &failing, p.pid()).unwrap();
    let err = p.join().unwrap_err();
    assert!(format!("{err}").contains("linker fails"), "{err}");
}

#[test]
fn a_link_to_an_ended_process_on_another_core_gives_noproc() {
    let rt = rt();
    let quick = Template::new("quick", |_: &mut Ctx<Msg>, ()| {});
    let q = rt.spawn_joinable(Placement::Core(1), &quick, ()).unwrap();
    let gone = q.pid();
    q.join().unwrap();
    let trapping = Template::new("trapping", move |ctx: &mut Ctx<Msg>, ()| {
        ctx.trap_exit(true);
        ctx.link(gone);
        match ctx.receive_mail() {
            Mail::Exit { from, reason } => (from == gone, reason),
            other => panic!("{other:?}"),
        }
    });
    let got = rt
        .spawn_joinable(Placement::Core(0), &trapping, ())
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(got, (true, Reason::NoProc));
}

#[test]
fn an_unlink_across_cores_means_no_exit() {
    let rt = rt();
    let t = rt.spawn_at(Placement::Core(1), &target(), true).unwrap();
    let unlinking = Template::new("unlinking", |ctx: &mut Ctx<Msg>, t: Pid| {
        ctx.link(t);
        ctx.unlink(t);
        let m = ctx.monitor(t);
        ctx.send_to(t, Msg::Go);
        // Its DOWN comes (and it is still alive to read it).
        matches!(ctx.receive_mail(), Mail::Down { monitor, .. } if monitor == m)
    });
    let ok = rt
        .spawn_joinable(Placement::Core(0), &unlinking, t)
        .unwrap()
        .join()
        .unwrap();
    assert!(ok);
}

#[test]
fn an_exit_signal_reaches_a_process_on_another_core() {
    let rt = rt();
    let victim = Template::new("victim", |ctx: &mut Ctx<Msg>, ()| -> u64 {
        loop {
            ctx.receive();
        }
    });
    let v = rt.spawn_joinable(Placement::Core(1), &victim, ()).unwrap();
    let killer = Template::new("killer", |ctx: &mut Ctx<Msg>, v: Pid| {
        ctx.exit_signal(v, Reason::Kill);
    });
    rt.spawn_at(Placement::Core(0), &killer, v.pid()).unwrap();
    let err = v.join().unwrap_err();
    assert!(format!("{err}").contains("kill"), "{err}");
}

#[test]
fn a_timer_fires_a_message_to_a_process_on_another_core() {
    let rt = rt();
    let waiter = Template::new("waiter", |ctx: &mut Ctx<Msg>, ()| {
        let core = home(ctx.pid());
        (core, ctx.receive())
    });
    let w = rt.spawn_joinable(Placement::Core(1), &waiter, ()).unwrap();
    let timer = Template::new("timer", |ctx: &mut Ctx<Msg>, w: Pid| {
        ctx.send_after(Duration::from_millis(10), w, Msg::Num(42));
        // It may end before the timer fires: the timer is its core's.
    });
    rt.spawn_at(Placement::Core(0), &timer, w.pid()).unwrap();
    assert_eq!(w.join().unwrap(), (1, Msg::Num(42)));
    let _ = Msg::Pid(Pid(0));
}

#[test]
fn names_are_one_registry_for_every_core() {
    let rt = rt();
    // A process of core 1 takes the name.
    let adder = Template::new("adder", |ctx: &mut Ctx<Msg>, ()| {
        ctx.register("adder", ctx.pid()).unwrap();
        match ctx.receive() {
            Msg::Num(n) => n,
            other => panic!("{other:?}"),
        }
    });
    let a = rt.spawn_joinable(Placement::Core(1), &adder, ()).unwrap();
    let a_pid = a.pid();
    // One of core 0 finds it, and cannot take it; it sends by name.
    let client = Template::new("client", move |ctx: &mut Ctx<Msg>, ()| {
        while ctx.whereis("adder").is_none() {
            ctx.sleep(Duration::from_millis(1));
        }
        let taken = ctx.register("adder", ctx.pid()).unwrap_err();
        assert_eq!(
            taken,
            chronoflow::RegisterError::NameTaken("adder".into(), a_pid)
        );
        assert_eq!(ctx.whereis("adder"), Some(a_pid));
        ctx.send_named("adder", Msg::Num(5)).unwrap();
    });
    rt.spawn_joinable(Placement::Core(0), &client, ())
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(a.join(), Ok(5));
    // Freed at its end: a process of the other core takes it.
    assert_eq!(rt.whereis("adder"), None);
    let again = Template::new("again", |ctx: &mut Ctx<Msg>, ()| {
        ctx.register("adder", ctx.pid()).map(|()| home(ctx.pid()))
    });
    let got = rt
        .spawn_joinable(Placement::Core(0), &again, ())
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(got, Ok(0));
}

#[test]
fn groups_are_one_set_for_every_core() {
    let rt = rt();
    // A member on each core, each joining from its own core, in turn.
    let member = Template::new("member", |ctx: &mut Ctx<Msg>, ()| {
        ctx.join_group("workers", ctx.pid());
        match ctx.receive() {
            Msg::Num(n) => n + home(ctx.pid()) as u64,
            other => panic!("{other:?}"),
        }
    });
    let m0 = rt.spawn_joinable(Placement::Core(0), &member, ()).unwrap();
    while rt.members("workers").is_empty() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let m1 = rt.spawn_joinable(Placement::Core(1), &member, ()).unwrap();
    while rt.members("workers").len() < 2 {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(rt.members("workers"), [m0.pid(), m1.pid()], "in join order");
    // A process of core 0 sees both, and sends to both.
    let caster = Template::new("caster", |ctx: &mut Ctx<Msg>, ()| {
        let members = ctx.members("workers");
        (members.len(), ctx.send_group("workers", Msg::Num(10)))
    });
    let got = rt
        .spawn_joinable(Placement::Core(0), &caster, ())
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(got, (2, 2));
    assert_eq!(m0.join(), Ok(10));
    assert_eq!(m1.join(), Ok(11));
    // They left at their ends.
    assert_eq!(rt.members("workers"), []);
    // A leave from another core.
    let stay = Template::new("stay", |ctx: &mut Ctx<Msg>, ()| {
        ctx.join_group("g", ctx.pid());
        ctx.receive();
    });
    let s = rt.spawn_at(Placement::Core(1), &stay, ()).unwrap();
    while rt.members("g").is_empty() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let leaver = Template::new("leaver", move |ctx: &mut Ctx<Msg>, ()| {
        (ctx.leave_group("g", s), ctx.leave_group("g", s))
    });
    let left = rt
        .spawn_joinable(Placement::Core(0), &leaver, ())
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(left, (true, false));
    assert_eq!(rt.members("g"), []);
}

#[test]
fn placed_spawns_linked_or_monitored_from_their_start() {
    let rt = rt();
    let crasher = Template::new("crasher", |_: &mut Ctx<Msg>, ()| {
        panic!("crash on core 1");
    });
    let huge = Template::new("huge", |_: &mut Ctx<Msg>, ()| {}).stack_size(usize::MAX / 2);
    let watcher = Template::new("watcher", move |ctx: &mut Ctx<Msg>, ()| {
        ctx.trap_exit(true);
        // Linked: the EXIT, with the reason.
        let linked = ctx.spawn_link_at(Placement::Core(1), &crasher, ()).unwrap();
        assert_eq!(home(linked), 1);
        let exit = match ctx.receive_mail() {
            Mail::Exit { from, reason } => from == linked && format!("{reason}").contains("crash"),
            other => panic!("{other:?}"),
        };
        // Monitored: one DOWN.
        let (watched, m) = ctx
            .spawn_monitor_at(Placement::Core(1), &crasher, ())
            .unwrap();
        let down = match ctx.receive_mail() {
            Mail::Down {
                monitor,
                pid,
                reason,
            } => monitor == m && pid == watched && format!("{reason}").contains("crash"),
            other => panic!("{other:?}"),
        };
        // A spawn that fails on its core (its stack cannot be mapped): noproc.
        let (failed, m2) = ctx.spawn_monitor_at(Placement::Core(1), &huge, ()).unwrap();
        let noproc = match ctx.receive_mail() {
            Mail::Down {
                monitor,
                pid,
                reason,
            } => monitor == m2 && pid == failed && reason == Reason::NoProc,
            other => panic!("{other:?}"),
        };
        // On this core, the same calls tie as `spawn_link` does.
        let local = ctx.spawn_link_at(Placement::Local, &crasher, ()).unwrap();
        let local_exit = matches!(
            ctx.receive_mail(),
            Mail::Exit { from, .. } if from == local && home(local) == 0
        );
        (exit, down, noproc, local_exit)
    });
    let got = rt
        .spawn_joinable(Placement::Core(0), &watcher, ())
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(got, (true, true, true, true));
    let report = rt.shutdown(Duration::from_secs(1));
    assert_eq!(report.incidents.len(), 1, "the failed spawn: {report:?}");
}

#[test]
fn a_supervisor_restarts_a_child_placed_on_another_core_under_its_name() {
    use chronoflow::otp::supervisor::{ChildSpec, Supervisor};
    let rt = rt();
    let worker = Template::new("worker", |ctx: &mut Ctx<Msg>, ()| {
        if ctx.receive() == Msg::Go {
            panic!("worker crashes");
        }
    });
    let root = Template::new("root", move |ctx: &mut Ctx<Msg>, ()| {
        // (A supervisor's template is made on its core: it is not `Send`.)
        let sup = Supervisor::new("sup")
            .intensity(5, Duration::from_secs(5))
            .child(ChildSpec::placed("w", Placement::Core(1), &worker, ()).name("w"))
            .template()
            .unwrap();
        let s = ctx.spawn_link(&sup, ()).unwrap();
        let named = |ctx: &mut Ctx<Msg>, not: Option<Pid>| loop {
            match ctx.whereis("w") {
                Some(p) if Some(p) != not => return p,
                _ => ctx.sleep(Duration::from_millis(1)),
            }
        };
        let first = named(ctx, None);
        ctx.send_named("w", Msg::Go).unwrap();
        let second = named(ctx, Some(first));
        ctx.unlink(s);
        ctx.exit_signal(s, Reason::Shutdown(None));
        (home(s), home(first), home(second), first != second)
    });
    let got = rt
        .spawn_joinable(Placement::Core(0), &root, ())
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(got, (0, 1, 1, true));
    // The supervisor stopped its child on the other core: the name is free.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while rt.whereis("w").is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "the child was not stopped"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let report = rt.shutdown(Duration::from_secs(1));
    assert!(report.killed().is_empty(), "{report:?}");
}

#[test]
fn calls_across_cores_take_their_reply_from_there() {
    let rt = rt();
    // A server on core 1: adds; ends on Go.
    let server = Template::new("adder", |ctx: &mut Ctx<Msg>, ()| {
        loop {
            match ctx.receive() {
                Msg::Add(a, b, to) => ctx.reply(to, a + b).unwrap(),
                Msg::Go => return,
                other => panic!("{other:?}"),
            }
        }
    });
    let s = rt.spawn_at(Placement::Core(1), &server, ()).unwrap();
    let caller = Template::new("caller", |ctx: &mut Ctx<Msg>, s: Pid| {
        let sum = ctx.call_across(s, |r| Msg::Add(2, 3, r), Some(Duration::from_secs(5)));
        // A plain call cannot take a reply from another core: refused, typed.
        let plain: Result<u64, _> = ctx.call(s, |r| Msg::Add(1, 1, r), None);
        let again = ctx.call_across(s, |r| Msg::Add(40, 2, r), None);
        ctx.send_to(s, Msg::Go);
        // Once it has ended: its DOWN, through the call's monitor.
        let gone = ctx.call_across(s, |r| Msg::Add(1, 1, r), Some(Duration::from_secs(5)));
        (sum, plain, again, gone)
    });
    let (sum, plain, again, gone) = rt
        .spawn_joinable(Placement::Core(0), &caller, s)
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(sum, Ok(5));
    assert_eq!(plain, Err(CallError::OtherCore));
    assert_eq!(again, Ok(42));
    assert!(
        matches!(
            gone,
            Err(CallError::Down(Reason::Normal) | CallError::NoProc)
        ),
        "{gone:?}"
    );
}

#[cfg(feature = "stackless")]
#[test]
fn a_stackless_process_calls_across_cores() {
    use chronoflow::stackless::{call, call_across};
    use chronoflow::{StacklessCtx, StacklessTemplate};
    let rt = rt();
    let server = Template::new("adder", |ctx: &mut Ctx<Msg>, ()| {
        if let Msg::Add(a, b, to) = ctx.receive() {
            ctx.reply(to, a + b).unwrap();
        }
    });
    let s = rt.spawn_at(Placement::Core(1), &server, ()).unwrap();
    let caller = StacklessTemplate::new("caller", |cx: StacklessCtx<Msg>, s: Pid| {
        #[coroutine]
        move || {
            let plain: Result<u64, _> = call!(cx, s, |r| Msg::Add(1, 1, r), None);
            let sum: Result<u64, _> =
                call_across!(cx, s, |r| Msg::Add(20, 22, r), Some(Duration::from_secs(5)));
            (plain, sum)
        }
    });
    let got = rt
        .spawn_joinable(Placement::Core(0), &caller, s)
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(got, (Err(CallError::OtherCore), Ok(42)));
}

/// What the typed test server is asked.
#[derive(Debug)]
enum Ask {
    /// Its count.
    Get,
    /// Adds to its count, gives the new one.
    Add(u64),
    /// Not answered now: answered (with 999) before the next call's answer.
    Later,
    /// Refused.
    Refuse,
    /// Stops without answering.
    Die,
}

/// A typed server (OTP's `gen_server`): a count, added to by calls and casts.
struct Counter {
    count: u64,
    held: Option<server::From<u64>>,
}

impl Server for Counter {
    type Engine = server::Stackful;
    type Msg = Msg;
    type Args = u64;
    type Call = Ask;
    type Reply = u64;
    type Cast = u64;
    type Continue = ();

    fn init(_: &mut ServerCtx<Self>, count: u64) -> server::Init<Self> {
        server::Init::Ok(Counter { count, held: None })
    }

    fn handle_call(
        &mut self,
        ctx: &mut ServerCtx<Self>,
        ask: Ask,
        from: server::From<u64>,
    ) -> server::Reply<Self> {
        if let Some(late) = self.held.take() {
            // Its call timed out: this reply must be dropped, never taken
            // for the call being answered now.
            let _ = ctx.reply(late, 999);
        }
        match ask {
            Ask::Get => server::Reply::Reply(self.count),
            Ask::Add(n) => {
                self.count += n;
                server::Reply::Reply(self.count)
            }
            Ask::Later => {
                self.held = Some(from);
                server::Reply::NoReply
            }
            Ask::Refuse => server::Reply::Refuse,
            Ask::Die => server::Reply::Stop(Reason::custom("died"), None),
        }
    }

    fn handle_cast(&mut self, _: &mut ServerCtx<Self>, n: u64) -> server::Flow<Self> {
        self.count += n;
        server::Flow::Continue
    }
}

use chronoflow::otp::server::{self, Server, ServerCtx, ServerRef};

/// A `Counter` started with `count` on core 1 (a server's template is made
/// on its core: it is not `Send`).
fn counter_on_core_1(rt: &Runtime<Msg>, count: u64) -> ServerRef<Counter> {
    let host = Template::new("host", |ctx: &mut Ctx<Msg>, count: u64| {
        let (pid, _) = ctx
            .spawn_monitor(&server::template::<Counter>("counter"), count)
            .unwrap();
        pid
    });
    let pid = rt
        .spawn_joinable(Placement::Core(1), &host, count)
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(home(pid), 1);
    ServerRef::new(pid)
}

#[test]
fn typed_server_calls_and_casts_across_cores() {
    let rt = rt();
    let s = counter_on_core_1(&rt, 1);
    let caller = Template::new("caller", move |ctx: &mut Ctx<Msg>, ()| {
        let mut got = Vec::new();
        // A plain call cannot take a reply from another core: refused, typed.
        got.push(s.call(ctx, Ask::Get));
        got.push(s.call_across(ctx, Ask::Get));
        // The cast reaches it, before the next call (in order).
        s.cast_across(ctx, 10);
        got.push(s.call_across(ctx, Ask::Add(100)));
        got.push(s.call_across_timeout(ctx, Ask::Refuse, Some(Duration::from_secs(5))));
        // No answer in time; its late answer is dropped, not taken for the
        // next call's.
        got.push(s.call_across_timeout(ctx, Ask::Later, Some(Duration::from_millis(50))));
        got.push(s.call_across(ctx, Ask::Get));
        got
    });
    let got = rt
        .spawn_joinable(Placement::Core(0), &caller, ())
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(
        got,
        vec![
            Err(CallError::OtherCore),
            Ok(1),
            Ok(111),
            Err(CallError::Unhandled),
            Err(CallError::Timeout),
            Ok(111),
        ]
    );
    let report = rt.shutdown(Duration::from_secs(1));
    assert!(report.incidents.is_empty(), "{report:?}");
}

#[test]
fn a_typed_call_across_cores_to_a_server_that_ends_or_had_ended() {
    let rt = rt();
    let s = counter_on_core_1(&rt, 0);
    let caller = Template::new("caller", move |ctx: &mut Ctx<Msg>, ()| {
        // It stops without answering: its DOWN ends the call.
        let died = s.call_across(ctx, Ask::Die);
        // It has ended: noproc, through the call's monitor.
        let gone = s.call_across(ctx, Ask::Get);
        // A pid of the other core that no process has (nor will: a made
        // one, far ahead).
        let nobody = ServerRef::<Counter>::new(Pid(s.pid().0 + 2_000_000));
        assert_eq!(home(nobody.pid()), 1);
        let never = nobody.call_across_timeout(ctx, Ask::Get, Some(Duration::from_secs(5)));
        (died, gone, never)
    });
    let got = rt
        .spawn_joinable(Placement::Core(0), &caller, ())
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(
        got,
        (
            Err(CallError::Down(Reason::custom("died"))),
            Err(CallError::NoProc),
            Err(CallError::NoProc),
        )
    );
}

#[test]
fn a_typed_server_on_another_core_is_stopped_and_waited_for() {
    let rt = rt();
    let s = counter_on_core_1(&rt, 0);
    let caller = Template::new("caller", move |ctx: &mut Ctx<Msg>, ()| {
        let ended = s.stop(ctx, Reason::custom("enough"));
        (ended, ctx.is_alive(s.pid()), s.call_across(ctx, Ask::Get))
    });
    // (A stop that never reached it would wait for ever.)
    let got = rt
        .spawn_joinable(Placement::Core(0), &caller, ())
        .unwrap()
        .join_timeout(Duration::from_secs(10))
        .unwrap();
    assert_eq!(
        got,
        (Reason::custom("enough"), false, Err(CallError::NoProc))
    );
}

#[test]
fn a_plain_cast_to_another_core_fails_its_caster_rather_than_being_lost() {
    let rt = rt();
    let s = counter_on_core_1(&rt, 0);
    let caster = Template::new("caster", move |ctx: &mut Ctx<Msg>, ()| {
        s.cast(ctx, 1);
    });
    let got = rt
        .spawn_joinable(Placement::Core(0), &caster, ())
        .unwrap()
        .join();
    assert!(format!("{got:?}").contains("cast_across"), "{got:?}");
}

#[cfg(feature = "stackless")]
#[test]
fn a_stackless_process_calls_and_casts_a_typed_server_across_cores() {
    use chronoflow::stackless::{request, request_across};
    use chronoflow::{StacklessCtx, StacklessTemplate};
    let rt = rt();
    let s = counter_on_core_1(&rt, 1);
    let caller = StacklessTemplate::new("caller", move |cx: StacklessCtx<Msg>, ()| {
        #[coroutine]
        move || {
            let plain = request!(cx, s.pid(), s.call_of(Ask::Get), None);
            s.cast_across_stackless(&cx, 10);
            let got = request_across!(
                cx,
                s.pid(),
                s.call_of(Ask::Add(100)),
                Some(Duration::from_secs(5))
            );
            let refused = request_across!(
                cx,
                s.pid(),
                s.call_of(Ask::Refuse),
                Some(Duration::from_secs(5))
            );
            let died = request_across!(cx, s.pid(), s.call_of(Ask::Die), None);
            (plain, got, refused, died)
        }
    });
    let got = rt
        .spawn_joinable(Placement::Core(0), &caller, ())
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(
        got,
        (
            Err(CallError::OtherCore),
            Ok(111),
            Err(CallError::Unhandled),
            Err(CallError::Down(Reason::custom("died"))),
        )
    );
}

#[test]
fn an_agent_on_another_core_is_read_changed_cast_to_and_stopped() {
    use chronoflow::otp::agent::Agent;
    let rt = rt();
    let host = Template::new("host", |ctx: &mut Ctx<Msg>, ()| {
        let (pid, _) = ctx
            .spawn_monitor(&Agent::<u64, Msg>::template("counter"), 1)
            .unwrap();
        pid
    });
    let a = rt
        .spawn_joinable(Placement::Core(1), &host, ())
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(home(a), 1);
    let agent = Agent::<u64, Msg>::new(a);
    let caller = Template::new("caller", move |ctx: &mut Ctx<Msg>, ()| {
        let plain = agent.get(ctx, |n| *n);
        // The cast reaches it, before the next call (in order).
        agent.cast_across(ctx, |n| *n += 10);
        let updated = agent.update_across(ctx, |n| *n *= 2);
        let old = agent.get_and_update_across(ctx, |n| std::mem::replace(n, 5));
        let read = agent.get_across_timeout(ctx, |n| format!("n = {n}"), None);
        let stopped = agent.stop(ctx, Reason::Normal);
        let gone = agent.get_across(ctx, |n| *n);
        (plain, updated, old, read, stopped, gone)
    });
    let got = rt
        .spawn_joinable(Placement::Core(0), &caller, ())
        .unwrap()
        .join_timeout(Duration::from_secs(10))
        .unwrap();
    assert_eq!(
        got,
        (
            Err(CallError::OtherCore),
            Ok(22),
            Ok(22),
            Ok("n = 5".to_string()),
            Reason::Normal,
            Err(CallError::NoProc),
        )
    );
}

/// What `from` sent before it ended, then its end, as a reader of capacity 2
/// on core 0 takes its mail, from a sender on core 1 tied to it by `tie`
/// (the messages wait on core 0 for room, behind a full inbox).
fn mail_behind_a_full_inbox(tie: fn(&mut Ctx<Msg>, Pid) -> Pid) -> Vec<String> {
    let rt = rt();
    let reader = Template::new("reader", move |ctx: &mut Ctx<Msg>, ()| {
        ctx.trap_exit(true);
        let me = ctx.pid();
        let sender = tie(ctx, me);
        // (It sends ten and ends meanwhile: eight wait for room.)
        ctx.sleep(Duration::from_millis(200));
        let mut got = Vec::new();
        for _ in 0..11 {
            got.push(match ctx.receive_mail() {
                Mail::Msg(Msg::Num(i)) => format!("{i}"),
                Mail::Down { pid, .. } if pid == sender => "DOWN".to_string(),
                Mail::Exit { from, .. } if from == sender => "EXIT".to_string(),
                other => format!("{other:?}"),
            });
        }
        got
    })
    .capacity(2);
    let got = rt
        .spawn_joinable(Placement::Core(0), &reader, ())
        .unwrap()
        .join()
        .unwrap();
    let report = rt.shutdown(Duration::from_secs(1));
    assert!(report.incidents.is_empty(), "{report:?}");
    got
}

/// Sends `to` ten numbers, then ends.
fn ten_to() -> Template<Msg, Msg, Pid, ()> {
    Template::new("ten", |ctx: &mut Ctx<Msg>, to: Pid| {
        for i in 0..10 {
            ctx.send_to(to, Msg::Num(i));
        }
    })
}

#[test]
fn a_down_across_cores_comes_after_the_messages_waiting_for_room() {
    let got = mail_behind_a_full_inbox(|ctx, me| {
        ctx.spawn_monitor_at(Placement::Core(1), &ten_to(), me)
            .unwrap()
            .0
    });
    let mut want: Vec<String> = (0..10).map(|i| i.to_string()).collect();
    want.push("DOWN".to_string());
    assert_eq!(got, want, "OTP: what a process sent comes before its DOWN");
}

#[test]
fn an_exit_across_cores_comes_after_the_messages_waiting_for_room() {
    let got = mail_behind_a_full_inbox(|ctx, me| {
        ctx.spawn_link_at(Placement::Core(1), &ten_to(), me)
            .unwrap()
    });
    let mut want: Vec<String> = (0..10).map(|i| i.to_string()).collect();
    want.push("EXIT".to_string());
    assert_eq!(got, want, "OTP: what a process sent comes before its EXIT");
}

#[test]
fn a_reply_across_cores_comes_after_what_the_server_sent_before_it() {
    let rt = rt();
    // Sends its caller ten numbers, then replies.
    let server = Template::new("chatty", |ctx: &mut Ctx<Msg>, ()| {
        if let Msg::Add(a, b, to) = ctx.receive() {
            for i in 0..10 {
                ctx.send_to(to.pid(), Msg::Num(i));
            }
            ctx.reply(to, a + b).unwrap();
        }
    });
    let s = rt.spawn_at(Placement::Core(1), &server, ()).unwrap();
    let caller = Template::new("caller", |ctx: &mut Ctx<Msg>, s: Pid| {
        // (An inbox of two: eight of the ten wait for room on this core.)
        let sum = ctx.call_across(s, |r| Msg::Add(2, 3, r), Some(Duration::from_secs(5)));
        let mut got = Vec::new();
        while let Some(Msg::Num(i)) = ctx.try_receive() {
            got.push(i);
        }
        (sum, got)
    })
    .capacity(2);
    let (sum, got) = rt
        .spawn_joinable(Placement::Core(0), &caller, s)
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(sum, Ok(5));
    assert_eq!(got, (0..10).collect::<Vec<_>>(), "in before the reply");
}

#[test]
fn a_monitor_of_a_process_whose_spawn_is_on_its_way_waits_for_it() {
    // A on core 0 spawns P on core 2 (its spawn goes at the end of A's
    // turn), and at once gives P to B on core 1 in a batch that goes
    // before (256 messages fill one). B monitors P and sends it Go: both
    // reach core 2 before P's spawn does, and wait for it.
    let rt = Runtime::<Msg>::with_cores(3).unwrap();
    let b = Template::new("b", |ctx: &mut Ctx<Msg>, ()| {
        let p = loop {
            if let Msg::Pid(p) = ctx.receive() {
                break p;
            }
        };
        let m = ctx.monitor(p);
        ctx.send_to(p, Msg::Go);
        loop {
            match ctx.receive_mail() {
                Mail::Down {
                    monitor, reason, ..
                } if monitor == m => break reason,
                Mail::Msg(Msg::Num(_)) => {}
                other => panic!("{other:?}"),
            }
        }
    });
    let b = rt.spawn_joinable(Placement::Core(1), &b, ()).unwrap();
    let bp = b.pid();
    let a = Template::new("a", move |ctx: &mut Ctx<Msg>, ()| {
        let p = ctx.spawn_at(Placement::Core(2), &target(), true).unwrap();
        ctx.send_to(bp, Msg::Pid(p));
        for i in 0..300 {
            ctx.send_to(bp, Msg::Num(i));
        }
        // (The rest of A's turn: its spawn of P goes when the turn ends.)
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_millis(100) {
            std::hint::spin_loop();
        }
    });
    rt.spawn_at(Placement::Core(0), &a, ()).unwrap();
    let reason = b.join().unwrap();
    assert!(
        matches!(&reason, Reason::Failed(why) if why.contains("boom")),
        "P's own end, not noproc: {reason:?}"
    );
}
