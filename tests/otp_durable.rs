//! The OTP toolkit under a durable scheduler: links, exit signals, monitors,
//! mail, timers, names, groups and supervisors are journaled, so that a run
//! that crashes (at any pass, or at any byte of its journal) and is reopened
//! ends as the run that did not crash (`support/stories.rs`).

use std::path::Path;
use std::time::Duration;

use chronoflow::otp::ReplyTo;
use chronoflow::otp::supervisor::{
    ChildRef, ChildSpec, ChildState, CountChildren, DynamicSpec, DynamicSupervisor, StartChild,
    Supervisor, SupervisorTemplate, TerminateChild, WhichChildren, stop,
};
use chronoflow::{
    Ctx, DurableScheduler, Local, Mail, MailRef, ManualClock, Pid, Reason, Template, Time,
};
use serde::{Deserialize, Serialize};
use tempfile::TempDir;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Msg {
    Crash,
    Ping,
    Pong(Pid),
    N(u64),
    Ask(ReplyTo<u64>, u64),
}

#[path = "support/stories.rs"]
mod stories;
use stories::{Log, await_name, check_story_every};

/// A worker: fails on `Crash`; on `Ping`, answers `root` by name and ends.
fn worker() -> Template<Msg, Msg, (), ()> {
    Template::new("worker", |ctx: &mut Ctx<Msg>, ()| {
        loop {
            match ctx.receive() {
                Msg::Crash => panic!("crash"),
                Msg::Ping => {
                    let me = ctx.pid();
                    ctx.send_named("root", Msg::Pong(me)).unwrap();
                    return;
                }
                _ => {}
            }
        }
    })
}

/// A server: answers `Ask(to, n)` with `2n`, ends on `n == 0` (unanswered),
/// never answers `n == 1`.
fn server() -> Template<Msg, Msg, (), ()> {
    Template::new("server", |ctx: &mut Ctx<Msg>, ()| {
        loop {
            if let Msg::Ask(to, n) = ctx.receive() {
                match n {
                    0 => return,
                    1 => {}
                    n => ctx.reply(to, 2 * n).unwrap(),
                }
            }
        }
    })
}

/// The story: every call of the toolkit, each awaited by a selective receive,
/// so that the log is the same whatever the interleaving.
fn root() -> Template<Msg, Msg, (), Log> {
    let (worker, server) = (worker(), server());
    Template::new("root", move |ctx: &mut Ctx<Msg>, ()| {
        let mut log = Log::new();
        let me = ctx.pid();
        ctx.trap_exit(true);
        ctx.register("root", me).unwrap();
        log.push(format!("{:?}", ctx.register("root", me)));
        let w1 = ctx.spawn_link(&worker, ()).unwrap();
        let (w2, m2) = ctx.spawn_monitor(&worker, ()).unwrap();
        log.push(format!("links {:?}", ctx.links()));
        ctx.send_to(w1, Msg::Crash);
        let exit = ctx.select_mail(|m| matches!(m, MailRef::Exit { from, .. } if from == w1));
        log.push(format!("{exit:?}"));
        let m1 = ctx.monitor(w1);
        let down = ctx.select_mail(|m| matches!(m, MailRef::Down { monitor, .. } if monitor == m1));
        log.push(format!("{down:?}"));
        log.push(format!("alive {} {}", ctx.is_alive(w1), ctx.is_alive(w2)));
        ctx.join_group("g", w2);
        log.push(format!("members {:?}", ctx.members("g")));
        ctx.send_after(Duration::ZERO, w2, Msg::Ping);
        let pong = ctx.select_mail(|m| matches!(m, MailRef::Msg(Msg::Pong(_))));
        log.push(format!("{pong:?}"));
        let down = ctx.select_mail(|m| matches!(m, MailRef::Down { monitor, .. } if monitor == m2));
        log.push(format!("{down:?}"));
        log.push(format!("members {:?}", ctx.members("g")));
        let t = ctx.start_timer(Duration::ZERO);
        let fired = ctx.select_mail(|m| matches!(m, MailRef::Timeout(x) if x == t));
        log.push(format!("{fired:?}"));
        let later = ctx.start_timer(Duration::from_secs(3600));
        log.push(format!("cancelled {}", ctx.cancel_timer(later).is_some()));
        log.push(format!("none {:?}", ctx.try_receive_mail()));
        let n = ctx.monitor(Pid(999));
        let noproc =
            ctx.select_mail(|m| matches!(m, MailRef::Down { monitor, .. } if monitor == n));
        log.push(format!("{noproc:?}"));
        ctx.send_after(Duration::ZERO, me, Msg::N(7));
        log.push(format!(
            "{:?}",
            ctx.receive_mail_timeout(Duration::from_secs(1))
        ));
        log.push(format!("whereis {:?}", ctx.whereis("root") == Some(me)));
        ctx.unregister("root");
        let s = ctx.spawn_link(&server, ()).unwrap();
        let call = |ctx: &mut Ctx<Msg>, n, timeout| {
            ctx.durable_call::<u64>(s, |to| Msg::Ask(to, n), timeout)
        };
        log.push(format!("{:?}", call(ctx, 21, Some(Duration::from_secs(1)))));
        log.push(format!("{:?}", call(ctx, 1, Some(Duration::ZERO))));
        log.push(format!("{:?}", call(ctx, 2, None)));
        log.push(format!("{:?}", call(ctx, 0, None)));
        log.push(format!("{:?}", call(ctx, 3, None)));
        log
    })
}

fn open(dir: &Path) -> DurableScheduler<Msg> {
    let (sched, _) = DurableScheduler::builder()
        .register(&root())
        .register(&worker())
        .register(&server())
        .clock(ManualClock::new(Time::default()))
        .open(dir)
        .unwrap();
    sched
}

#[test]
fn the_toolkit_replays_after_a_crash_at_every_pass_and_at_any_byte() {
    let plain = check_story_every(
        open,
        |sched| {
            sched.spawn(&root(), ()).unwrap();
        },
        5,
        1,
    );
    assert_eq!(plain.len(), 20, "{plain:#?}");
    assert!(plain[2].contains("Failed(\"crash\")"), "{plain:#?}");
    assert_eq!(
        plain[15..],
        [
            "Ok(42)",
            "Err(Timeout)",
            "Ok(4)",
            "Err(Down(Normal))",
            "Err(NoProc)"
        ],
        "{plain:#?}"
    );
}

/// A counter that fails on `Crash` and ignores the rest.
fn counter() -> Template<Msg, Msg, (), ()> {
    Template::new("counter", |ctx: &mut Ctx<Msg>, ()| {
        loop {
            if ctx.receive() == Msg::Crash {
                panic!("crash");
            }
        }
    })
}

fn tree() -> SupervisorTemplate<Msg> {
    Supervisor::new("tree")
        .intensity(3, Duration::from_secs(5))
        .child(ChildSpec::new("counter", &counter(), ()).name("counter"))
        .template()
        .unwrap()
}

/// Starts the tree, fails its worker twice (each restarted under its name),
/// then stops the tree: what it saw.
fn driver() -> Template<Msg, Msg, (), Log, Local> {
    let tree = tree();
    Template::local("driver", move |ctx: &mut Ctx<Msg>, ()| {
        let mut log = Log::new();
        let (sup, _) = ctx.spawn_monitor(&tree, ()).unwrap();
        let mut old = None;
        for _ in 0..2 {
            let pid = await_name(ctx, "counter", old);
            log.push(format!("counter is {pid}"));
            let m = ctx.monitor(pid);
            ctx.send_named("counter", Msg::Crash).unwrap();
            let down =
                ctx.select_mail(|d| matches!(d, MailRef::Down { monitor, .. } if monitor == m));
            log.push(format!("{down:?}"));
            old = Some(pid);
        }
        let pid = await_name(ctx, "counter", old);
        log.push(format!("counter is {pid}"));
        let reason = stop(ctx, sup, Reason::Shutdown(None));
        log.push(format!("tree ended: {reason}"));
        log.push(format!("counter now {:?}", ctx.whereis("counter")));
        log
    })
}

fn open_tree(dir: &Path) -> DurableScheduler<Msg> {
    let (sched, _) = DurableScheduler::builder()
        .register(&driver())
        .register(&tree())
        .register(&counter())
        .clock(ManualClock::new(Time::default()))
        .open(dir)
        .unwrap();
    sched
}

#[test]
fn a_supervision_tree_replays_after_a_crash_at_every_pass_and_at_any_byte() {
    let plain = check_story_every(
        open_tree,
        |sched| {
            sched.spawn(&driver(), ()).unwrap();
        },
        5,
        1,
    );
    assert_eq!(plain.len(), 7, "{plain:#?}");
    assert_eq!(plain[5], "tree ended: shutdown", "{plain:#?}");
    assert_eq!(plain[6], "counter now None", "{plain:#?}");
}

/// What a durable scheduler cannot journal yet holds the process that does it,
/// before it acts, and says what to use instead.
#[test]
fn a_plain_call_and_a_typed_request_are_held_under_a_durable_scheduler() {
    use chronoflow::{Status, Wait};
    let dir = TempDir::new().unwrap();
    let caller = Template::new("caller", |ctx: &mut Ctx<Msg>, server: Pid| {
        ctx.call::<u64>(server, |to| Msg::Ask(to, 2), None).ok()
    });
    struct Double;
    impl chronoflow::otp::RequestType for Double {
        type Reply = u64;
    }
    let asker = Template::new("asker", |ctx: &mut Ctx<Msg>, server: Pid| {
        ctx.request(server, Double, None).ok()
    });
    let (mut sched, _) = DurableScheduler::builder()
        .register(&server())
        .register(&caller)
        .register(&asker)
        .open(dir.path())
        .unwrap();
    let s = sched.spawn(&server(), ()).unwrap().pid();
    let c = sched.spawn(&caller, s).unwrap().pid();
    let a = sched.spawn(&asker, s).unwrap().pid();
    sched.run_until_idle().unwrap();
    assert_eq!(sched.status(c), Some(Status::Waiting(Wait::Held)));
    assert_eq!(sched.status(a), Some(Status::Waiting(Wait::Held)));
    let v = sched.violations();
    assert_eq!(v.len(), 2, "{v:?}");
    assert_eq!((v[0].pid, v[0].emitted.as_str()), (c, "call"));
    assert!(v[0].recorded.contains("not journaled"), "{v:?}");
    assert_eq!((v[1].pid, v[1].emitted.as_str()), (a, "request"));
}

/// A pool worker: fails on `Crash`.
fn pooled() -> Template<Msg, Msg, u64, ()> {
    Template::new("pooled", |ctx: &mut Ctx<Msg>, _n: u64| {
        loop {
            if ctx.receive() == Msg::Crash {
                panic!("crash");
            }
        }
    })
}

fn pool() -> SupervisorTemplate<Msg> {
    DynamicSupervisor::new("pool", DynamicSpec::new(&pooled()))
        .intensity(10, Duration::from_secs(5))
        .template()
        .unwrap()
}

/// Asks a dynamic supervisor, by durable requests: starts children, lists
/// and counts them, fails one (restarted), terminates one, stops the pool.
fn asker() -> Template<Msg, Msg, (), Log, Local> {
    let pool = pool();
    Template::local("asker", move |ctx: &mut Ctx<Msg>, ()| {
        let mut log = Log::new();
        let (sup, _) = ctx.spawn_monitor(&pool, ()).unwrap();
        let mut kids = Vec::new();
        for n in 0..3u64 {
            let kid = ctx.durable_request(sup, StartChild(n), None).unwrap();
            kids.push(kid.unwrap());
        }
        let running = |ctx: &mut Ctx<Msg>| -> Vec<ChildState> {
            let which = ctx.durable_request(sup, WhichChildren, None).unwrap();
            which.into_iter().map(|c| c.child).collect()
        };
        log.push(format!("{:?}", running(ctx)));
        let m = ctx.monitor(kids[1]);
        ctx.send_to(kids[1], Msg::Crash);
        let down = ctx.select_mail(|d| matches!(d, MailRef::Down { monitor, .. } if monitor == m));
        log.push(format!("{down:?}"));
        let restarted = loop {
            let now = running(ctx);
            if !now.contains(&ChildState::Running(kids[1])) && now.len() == 3 {
                break now;
            }
            ctx.yield_now();
        };
        log.push(format!("{restarted:?}"));
        let gone = ctx.durable_request(sup, TerminateChild(ChildRef::Pid(kids[0])), None);
        log.push(format!("{gone:?}"));
        let counts = ctx.durable_request(sup, CountChildren, None).unwrap();
        log.push(format!("{counts:?}"));
        let wrong = ctx.durable_request(sup, StartChild("not a u64".to_string()), None);
        log.push(format!("{wrong:?}"));
        let reason = stop(ctx, sup, Reason::Shutdown(None));
        log.push(format!("pool ended: {reason}"));
        log
    })
}

fn open_pool(dir: &Path) -> DurableScheduler<Msg> {
    let (sched, _) = DurableScheduler::builder()
        .register(&asker())
        .register(&pool())
        .register(&pooled())
        .request::<StartChild<u64>>()
        .request::<StartChild<String>>()
        .request::<WhichChildren>()
        .request::<CountChildren>()
        .request::<TerminateChild>()
        .clock(ManualClock::new(Time::default()))
        .open(dir)
        .unwrap();
    sched
}

#[test]
fn a_dynamic_supervisor_answers_durable_requests_across_crashes() {
    let plain = check_story_every(
        open_pool,
        |sched| {
            sched.spawn(&asker(), ()).unwrap();
        },
        5,
        1,
    );
    assert_eq!(plain.len(), 7, "{plain:#?}");
    assert!(plain[4].contains("active: 2"), "{plain:#?}");
    assert_eq!(plain[5], "Err(Unhandled)", "{plain:#?}");
    assert_eq!(plain[6], "pool ended: shutdown", "{plain:#?}");
}

/// Timers armed and cancelled from outside are journaled: after a crash, each
/// fires once, at its deadline, and a cancelled one never.
#[test]
fn timers_from_outside_fire_once_across_crashes() {
    let dir = TempDir::new().unwrap();
    let clock = ManualClock::new(Time::default());
    let two = Template::new("two", |ctx: &mut Ctx<Msg>, ()| {
        vec![ctx.receive(), ctx.receive()]
    });
    let open = || {
        DurableScheduler::builder()
            .register(&two)
            .clock(clock.clone())
            .open(dir.path())
            .unwrap()
            .0
    };
    let mut sched = open();
    let p = sched.spawn(&two, ()).unwrap().pid();
    sched
        .send_after(Duration::from_secs(10), p, Msg::N(1))
        .unwrap();
    sched
        .send_after(Duration::from_secs(20), p, Msg::N(2))
        .unwrap();
    let t3 = sched
        .send_after(Duration::from_secs(15), p, Msg::N(3))
        .unwrap();
    assert_eq!(sched.cancel_timer(t3), Some(Duration::from_secs(15)));
    sched.run_until_idle().unwrap();
    for _ in 0..2 {
        drop(sched);
        sched = open();
        clock.advance(Duration::from_secs(10));
        sched.run_until_idle().unwrap();
    }
    drop(sched);
    let mut sched = open();
    sched.run_until_idle().unwrap();
    assert_eq!(
        sched.result_of::<Vec<Msg>>(p),
        Some(Ok(vec![Msg::N(1), Msg::N(2)]))
    );
}

/// Exits with the atom `boom`, given as its argument's text.
fn boomer() -> Template<Msg, Msg, String, ()> {
    Template::stepping("boomer", |_: &mut Ctx<Msg>, why: String| {
        chronoflow::Step::Exit(chronoflow::ExitError::Custom(chronoflow::Value::atom(&why)))
    })
}

/// Traps exits, spawns a linked `boomer` and a monitored one, and logs their
/// EXIT and DOWN, and whether each reason equals the atom.
fn atoms() -> Template<Msg, Msg, (), Log> {
    let boomer = boomer();
    Template::new("atoms", move |ctx: &mut Ctx<Msg>, ()| {
        let mut log = Log::new();
        let boom = Reason::atom("boom");
        ctx.trap_exit(true);
        let linked = ctx.spawn_link(&boomer, "boom".to_string()).unwrap();
        let exit = ctx.select_mail(|m| matches!(m, MailRef::Exit { from, .. } if from == linked));
        log.push(format!("{exit:?}"));
        log.push(format!(
            "{}",
            matches!(exit, Mail::Exit { reason, .. } if reason == boom)
        ));
        let (_, m) = ctx.spawn_monitor(&boomer, "boom".to_string()).unwrap();
        let down = ctx.select_mail(|x| matches!(x, MailRef::Down { monitor, .. } if monitor == m));
        log.push(format!(
            "{}",
            matches!(down, Mail::Down { reason, .. } if reason == boom)
        ));
        log
    })
}

fn open_atoms(dir: &Path) -> DurableScheduler<Msg> {
    let (sched, _) = DurableScheduler::builder()
        .register(&atoms())
        .register(&boomer())
        .clock(ManualClock::new(Time::default()))
        .open(dir)
        .unwrap();
    sched
}

/// An atom reason is journaled as its text: replayed, it is equal to the atom
/// (and shows as its name, not quoted).
#[test]
fn an_atom_reason_replays_equal_to_the_atom() {
    let plain = check_story_every(
        open_atoms,
        |sched| {
            sched.spawn(&atoms(), ()).unwrap();
        },
        3,
        1,
    );
    assert_eq!(plain.len(), 3, "{plain:#?}");
    assert!(plain[0].ends_with("reason: Custom(boom) }"), "{plain:#?}");
    assert_eq!(plain[1..], ["true", "true"], "{plain:#?}");
}
