#![cfg_attr(feature = "stackless", feature(coroutines))]
//! Adversarial tests of the OTP toolkit: what safe code can do to links,
//! monitors, exit signals, timers, calls, names and groups, and what must hold
//! whatever it does (no UB, no double drop, no panic of the scheduler, no lost
//! signal, OTP's semantics). A test that exposes a bug is `#[ignore = "bug: ..."]`
//! and fails when run with `--ignored`.
//!
//! Abort-prone scenarios run in a child process (`support::isolated`).

mod support;

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chronoflow::{
    CallError, Ctx, ExitError, Mail, ManualClock, Overflow, Pid, Reason, ReplyTo, SimpleScheduler,
    Status, Template, Time, Wait,
};

#[derive(Debug, Clone, PartialEq)]
enum Msg {
    Go,
    N(u64),
    Pid(Pid),
    /// Hold the request: the reply comes when `Release` does.
    Hold(ReplyTo<u64>),
    Release,
    Stop,
}

fn clocked() -> (SimpleScheduler<Msg>, ManualClock) {
    let mut s = SimpleScheduler::new();
    let clock = ManualClock::new(Time::from_nanos(0));
    s.set_clock(clock.clone());
    (s, clock)
}

/// Runs its closure on the context when dropped: a local whose destructor uses
/// the context (as the destructors of a killed or panicking process may).
struct Defer<'a, M: 'static> {
    ctx: &'a mut Ctx<M>,
    f: Option<OnDrop<'a, M>>,
}

type OnDrop<'a, M> = Box<dyn FnOnce(&mut Ctx<M>) + 'a>;

impl<M: 'static> Drop for Defer<'_, M> {
    fn drop(&mut self) {
        if let Some(f) = self.f.take() {
            f(self.ctx)
        }
    }
}

fn defer<'a, M: 'static>(ctx: &'a mut Ctx<M>, f: impl FnOnce(&mut Ctx<M>) + 'a) -> Defer<'a, M> {
    Defer {
        ctx,
        f: Some(Box::new(f)),
    }
}

/// Unwinds without the panic hook (no message): a body's failure that it
/// catches itself.
fn quiet_unwind() -> ! {
    resume_unwind(Box::new("quiet"))
}

/// Waits on plain messages forever.
fn idle() -> Template<Msg, Msg, (), ()> {
    Template::new("idle", |ctx: &mut Ctx<Msg>, ()| {
        loop {
            ctx.receive();
        }
    })
}

/// Links to the pid given, then waits on plain messages forever.
fn linked_idle() -> Template<Msg, Msg, Pid, ()> {
    Template::new("linked", |ctx: &mut Ctx<Msg>, peer: Pid| {
        ctx.link(peer);
        loop {
            ctx.receive();
        }
    })
}

/// Traps exits, links to the pid given, returns its first mail.
fn trapper() -> Template<Msg, Msg, Pid, Mail<Msg>> {
    Template::new("trapper", |ctx: &mut Ctx<Msg>, peer: Pid| {
        ctx.trap_exit(true);
        ctx.link(peer);
        ctx.receive_mail()
    })
}

/// Holds requests until `Release`, then answers each with 999; `Stop` ends it.
fn server() -> Template<Msg, Msg, (), ()> {
    Template::new("server", |ctx: &mut Ctx<Msg>, ()| {
        let mut held = Vec::new();
        loop {
            match ctx.receive() {
                Msg::Hold(from) => held.push(from),
                Msg::Release => {
                    for from in held.drain(..) {
                        let _ = ctx.reply(from, 999);
                    }
                }
                Msg::Stop => return,
                _ => {}
            }
        }
    })
}

/// `support::isolated` for an ignored test: the child runs it with
/// `--include-ignored` (else it would only report it ignored).
fn isolated_ignored(name: &str, scenario: impl FnOnce()) {
    const VAR: &str = "CHRONOFLOW_ISOLATED_SCENARIO";
    if std::env::var(VAR).as_deref() == Ok(name) {
        scenario();
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            name,
            "--exact",
            "--nocapture",
            "--test-threads=1",
            "--include-ignored",
        ])
        .env(VAR, name)
        .env("RUST_BACKTRACE", "0")
        .env("ASAN_OPTIONS", "detect_leaks=0")
        .output()
        .expect("re-invoke the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "scenario `{name}` failed in its child process: {:?}\n--- stderr ---\n{stderr}",
        out.status
    );
}

fn is_stopped(s: &SimpleScheduler<Msg>, pid: Pid) -> bool {
    matches!(s.status(pid), None | Some(Status::Stopped))
}

// ---------------------------------------------------------------------------
// Exit signals: semantics
// ---------------------------------------------------------------------------

/// OTP (`erlang:exit/2`) ends a process that sends `normal` to itself; here
/// a normal end carries the body's result, which only the body can give, so
/// the signal is ignored like any `normal` to a process that does not trap
/// (documented on `Reason::Normal`). A trapping sender gets it as mail.
#[test]
fn exit_signal_normal_to_oneself_is_ignored_unless_trapping() {
    let mut s = SimpleScheduler::new();
    let t = Template::new("t", |ctx: &mut Ctx<Msg>, ()| {
        let me = ctx.pid();
        ctx.exit_signal(me, Reason::Normal);
        ctx.trap_exit(true);
        ctx.exit_signal(me, Reason::Normal);
        ctx.try_receive_mail()
    });
    let h = s.spawn(&t, ()).unwrap();
    s.run_until_idle();
    let me = h.pid();
    assert_eq!(
        s.result(&h),
        Some(Ok(Some(Mail::Exit {
            from: me,
            reason: Reason::Normal
        })))
    );
}

/// A trapping process's exit signal to itself is mail from itself (OTP's
/// `{'EXIT', self(), Reason}`); `Kill` ends it all the same.
#[test]
fn exit_signal_to_oneself_while_trapping_is_mail_and_kill_still_ends_it() {
    let mut s = SimpleScheduler::new();
    let t = Template::new("t", |ctx: &mut Ctx<Msg>, ()| {
        ctx.trap_exit(true);
        let me = ctx.pid();
        ctx.exit_signal(me, Reason::Normal);
        ctx.exit_signal(me, Reason::custom("x"));
        let a = ctx.receive_mail();
        let b = ctx.receive_mail();
        assert_eq!(
            a,
            Mail::Exit {
                from: me,
                reason: Reason::Normal
            }
        );
        assert_eq!(
            b,
            Mail::Exit {
                from: me,
                reason: Reason::custom("x")
            }
        );
        ctx.exit_signal(me, Reason::Kill);
        unreachable!("Kill ends even a trapping process");
    });
    let h = s.spawn(&t, ()).unwrap();
    s.run_until_idle();
    assert_eq!(s.result(&h), Some(Err(ExitError::Killed("killed".into()))));
}

/// A chain of links A-B-C-D (D traps): A's failure takes B and C with the same
/// reason, and D gets one EXIT from C; no link is left behind.
#[test]
fn a_chain_of_links_fails_together_with_one_reason() {
    let mut s = SimpleScheduler::new();
    let crasher = Template::new("a", |ctx: &mut Ctx<Msg>, ()| {
        ctx.receive();
        panic!("chain");
    });
    let a = s.spawn(&crasher, ()).unwrap();
    let b = s.spawn(&linked_idle(), a.pid()).unwrap();
    let c = s.spawn(&linked_idle(), b.pid()).unwrap();
    let d = s.spawn(&trapper(), c.pid()).unwrap();
    s.run_until_idle();
    s.send(a.pid(), Msg::Go).unwrap();
    s.run_until_idle();
    let boom = Err(ExitError::Failed("chain".into()));
    assert_eq!(s.result(&a), Some(boom.clone()));
    assert_eq!(s.result(&b), Some(boom.clone()));
    assert_eq!(s.result(&c), Some(boom));
    assert_eq!(
        s.result(&d),
        Some(Ok(Mail::Exit {
            from: c.pid(),
            reason: Reason::Failed("chain".into())
        }))
    );
    for pid in [a.pid(), b.pid(), c.pid(), d.pid()] {
        assert!(s.links(pid).is_empty(), "{pid} keeps no link");
    }
}

/// Two processes linked in a ring with a third: A-B, B-C, C-A. A fails: each
/// gets one signal, none is applied twice, nothing is left.
#[test]
fn a_ring_of_links_fails_once_each() {
    let mut s = SimpleScheduler::new();
    let t = Template::new("ring", |ctx: &mut Ctx<Msg>, ()| {
        loop {
            match ctx.receive() {
                Msg::Pid(p) => ctx.link(p),
                Msg::Go => panic!("ring"),
                _ => {}
            }
        }
    });
    let a = s.spawn(&t, ()).unwrap();
    let b = s.spawn(&t, ()).unwrap();
    let c = s.spawn(&t, ()).unwrap();
    s.send(a.pid(), Msg::Pid(b.pid())).unwrap();
    s.send(b.pid(), Msg::Pid(c.pid())).unwrap();
    s.send(c.pid(), Msg::Pid(a.pid())).unwrap();
    s.run_until_idle();
    s.send(a.pid(), Msg::Go).unwrap();
    s.run_until_idle();
    for h in [&a, &b, &c] {
        assert_eq!(s.result(h), Some(Err(ExitError::Failed("ring".into()))));
    }
}

/// A child that links to its parent, and a parent that joins a linked child
/// that fails: the parent (not trapping) ends with the child's reason, the
/// stopped child is freed with it, the scheduler goes on.
#[test]
fn a_parent_linked_to_its_failing_child_ends_with_its_reason_even_while_joining() {
    let mut s = SimpleScheduler::new();
    let child = Template::new("child", |ctx: &mut Ctx<Msg>, ()| {
        let parent = ctx.parent().unwrap();
        ctx.link(parent);
        ctx.receive();
        panic!("child failed");
    });
    let parent = Template::new("parent", move |ctx: &mut Ctx<Msg>, ()| {
        let c = ctx.spawn(&child, ()).unwrap();
        let joined = ctx.join(c);
        format!("joined {joined:?}")
    });
    let p = s.spawn(&parent, ()).unwrap();
    s.run_until_idle();
    // The parent's messages go to its child too.
    s.send(p.pid(), Msg::Go).unwrap();
    s.run_until_idle();
    assert_eq!(
        s.result(&p),
        Some(Err(ExitError::Failed("child failed".into())))
    );
    assert_eq!(s.live(), 0);
}

/// A child that sends `Kill` to its own parent: the parent is killed, the
/// child (suspended in its yield, in the ready queue) is killed with it.
#[test]
fn a_child_that_kills_its_parent_goes_down_with_it() {
    let mut s = SimpleScheduler::new();
    let child = Template::new("child", |ctx: &mut Ctx<Msg>, ()| {
        let parent = ctx.parent().unwrap();
        ctx.exit_signal(parent, Reason::Kill);
        unreachable!("killed with its parent before it goes on");
    });
    let parent = Template::new("parent", move |ctx: &mut Ctx<Msg>, ()| {
        let c = ctx.spawn(&child, ()).unwrap();
        let _ = ctx.join(c);
        "joined"
    });
    let p = s.spawn(&parent, ()).unwrap();
    s.run_until_idle();
    assert_eq!(s.result(&p), Some(Err(ExitError::Killed("killed".into()))));
    assert_eq!(s.live(), 0);
}

/// A sender linked to its target: the target's end, applied right after the
/// sender's yield, takes the sender (queued in the ready queue) with it.
#[test]
fn an_exit_signal_whose_target_is_linked_to_the_sender_ends_both() {
    let mut s = SimpleScheduler::new();
    let target = s.spawn(&idle(), ()).unwrap();
    let tp = target.pid();
    let sender = Template::new("sender", move |ctx: &mut Ctx<Msg>, ()| {
        ctx.link(tp);
        ctx.exit_signal(tp, Reason::custom("both"));
        // Its own end comes through the link before it goes on.
        loop {
            ctx.yield_now();
        }
    });
    let h = s.spawn(&sender, ()).unwrap();
    s.run_until_idle();
    let both = Err(ExitError::Custom(chronoflow::Value::text_of("both")));
    assert_eq!(s.result(&target), Some(both.clone()));
    assert_eq!(s.result(&h), Some(both));
    assert_eq!(s.live(), 0);
}

/// A process that yields in a loop (always in the ready queue) killed from
/// outside and by another process: its queued record is freed once.
#[test]
fn killing_processes_that_sit_in_the_ready_queue() {
    let mut s = SimpleScheduler::new();
    let spin = Template::new("spin", |ctx: &mut Ctx<Msg>, ()| {
        loop {
            ctx.yield_now();
        }
    });
    let a = s.spawn(&spin, ()).unwrap();
    let b = s.spawn(&spin, ()).unwrap();
    let bp = b.pid();
    let killer = Template::new("killer", move |ctx: &mut Ctx<Msg>, ()| {
        ctx.exit_signal(bp, Reason::Kill);
    });
    let _ = s.update();
    s.exit_signal(a.pid(), Reason::Kill);
    s.spawn(&killer, ()).unwrap();
    let _ = s.update();
    let _ = s.update();
    assert_eq!(s.result(&a), Some(Err(ExitError::Killed("killed".into()))));
    assert_eq!(s.result(&b), Some(Err(ExitError::Killed("killed".into()))));
    assert_eq!(s.live(), 0);
}

/// A sender woken with room in a full inbox (granted it) and killed by an
/// exit signal before it uses it: the room passes to the next waiting sender;
/// nothing waits forever.
#[test]
fn a_sender_granted_room_and_killed_by_an_exit_signal_passes_the_room_on() {
    let mut s = SimpleScheduler::new();
    let slow = Template::new("slow", |ctx: &mut Ctx<Msg>, ()| {
        ctx.select(|m| *m == Msg::Go);
        let mut got = Vec::new();
        while got.len() < 2 {
            if let Msg::N(n) = ctx.receive() {
                got.push(n);
            }
        }
        got
    })
    .capacity(1);
    let q = s.spawn(&slow, ()).unwrap();
    let qp = q.pid();
    let sender = Template::new("sender", move |ctx: &mut Ctx<Msg>, n: u64| {
        ctx.send_to(qp, Msg::N(n));
    });
    // Fill it, then two senders wait for room.
    s.send(qp, Msg::N(0)).unwrap();
    s.run_until_idle();
    let first = s.spawn(&sender, 1).unwrap();
    let second = s.spawn(&sender, 2).unwrap();
    s.run_until_idle();
    assert!(matches!(
        s.status(first.pid()),
        Some(Status::Waiting(Wait::Room(_)))
    ));
    // A timer puts Go past the capacity; in that one pass the receiver takes
    // Go and N(0), and wakes the first sender with the room.
    s.send_after(Duration::ZERO, qp, Msg::Go);
    let _ = s.update();
    assert_eq!(s.status(first.pid()), Some(Status::Ready));
    s.exit_signal(first.pid(), Reason::Kill);
    assert!(is_stopped(&s, first.pid()));
    s.run_until_idle();
    assert_eq!(s.result(&q), Some(Ok(vec![0, 2])));
    assert_eq!(s.result(&second), Some(Ok(())));
}

// ---------------------------------------------------------------------------
// Exit signals queued where nobody applies them
// ---------------------------------------------------------------------------

/// An exit signal sent from a destructor while the sender's stack unwinds
/// cannot yield (`yield_now` returns at once), so it stays queued. If the
/// sender catches its unwinding and then *waits* (not a yield, not an end),
/// nothing applies it: `exits_now` runs only after a yield or an end. The
/// target lives on until some other process happens to yield or end.
#[test]
fn an_exit_signal_sent_during_a_caught_unwinding_is_applied() {
    let mut s = SimpleScheduler::new();
    let victim = s.spawn(&idle(), ()).unwrap();
    let v = victim.pid();
    let sender = Template::new("sender", move |ctx: &mut Ctx<Msg>, ()| {
        let _ = catch_unwind(AssertUnwindSafe(|| {
            let _g = defer(&mut *ctx, move |ctx| {
                ctx.exit_signal(v, Reason::custom("bye"))
            });
            quiet_unwind();
        }));
        ctx.receive();
    });
    s.spawn(&sender, ()).unwrap();
    s.run_until_idle();
    assert_eq!(
        s.result(&victim),
        Some(Err(ExitError::Custom(chronoflow::Value::text_of("bye")))),
        "the exit signal was never applied"
    );
}

// ---------------------------------------------------------------------------
// Calls
// ---------------------------------------------------------------------------

/// `receive_timeout` (and `sleep`) called in a destructor while the stack
/// unwinds return at once and leave their timer armed ("its timer goes with
/// it": the process is taken to be ending). A body that catches the unwinding
/// lives on with that timer; when it fires, `timed_out` is set, and a later
/// `call(.., None)` (which never armed a timer) reads it as its own timeout.
#[test]
fn a_call_without_timeout_is_not_cut_short_by_a_stale_timer() {
    let (mut s, clock) = clocked();
    let srv = s.spawn(&server(), ()).unwrap();
    let sp = srv.pid();
    let client = Template::new("client", move |ctx: &mut Ctx<Msg>, ()| {
        let _ = catch_unwind(AssertUnwindSafe(|| {
            let _g = defer(&mut *ctx, |ctx| {
                ctx.receive_timeout(Duration::from_millis(10));
            });
            quiet_unwind();
        }));
        ctx.call(sp, Msg::Hold, None)
    });
    let c = s.spawn(&client, ()).unwrap();
    s.run_until_idle();
    clock.advance(Duration::from_millis(20));
    s.run_until_idle();
    assert_eq!(s.result(&c), None, "a call without a timeout waits");
    s.send(sp, Msg::Release).unwrap();
    s.run_until_idle();
    assert_eq!(s.result(&c), Some(Ok(Ok(999))));
}

/// The same stale timer with `sleep` cut short.
#[test]
fn a_call_without_timeout_is_not_cut_short_by_a_sleep_cut_short() {
    let (mut s, clock) = clocked();
    let srv = s.spawn(&server(), ()).unwrap();
    let sp = srv.pid();
    let client = Template::new("client", move |ctx: &mut Ctx<Msg>, ()| {
        let _ = catch_unwind(AssertUnwindSafe(|| {
            let _g = defer(&mut *ctx, |ctx| ctx.sleep(Duration::from_millis(10)));
            quiet_unwind();
        }));
        ctx.call(sp, Msg::Hold, None)
    });
    let c = s.spawn(&client, ()).unwrap();
    s.run_until_idle();
    clock.advance(Duration::from_millis(20));
    s.run_until_idle();
    assert_eq!(s.result(&c), None, "a call without a timeout waits");
}

/// `call` monitors the server before it runs the request builder: a builder
/// that panics (caught by the body) leaves the monitor in place, and the
/// server's end then puts a DOWN nobody asked for in the caller's mail. (OTP's
/// gen_server:call demonitors on every way out.)
#[test]
fn a_call_whose_request_builder_panics_leaves_no_monitor() {
    let mut s = SimpleScheduler::new();
    let srv = s.spawn(&server(), ()).unwrap();
    let sp = srv.pid();
    let client = Template::new("client", move |ctx: &mut Ctx<Msg>, ()| {
        let r = catch_unwind(AssertUnwindSafe(|| {
            ctx.call::<u64>(sp, |_| quiet_unwind(), None)
        }));
        assert!(r.is_err());
        ctx.receive_mail()
    });
    let c = s.spawn(&client, ()).unwrap();
    s.run_until_idle();
    s.send(sp, Msg::Stop).unwrap();
    s.run_until_idle();
    assert_eq!(
        s.result(&c),
        None,
        "the caller got mail from a monitor it never set"
    );
    s.send(c.pid(), Msg::Go).unwrap();
    s.run_until_idle();
    assert_eq!(s.result(&c), Some(Ok(Mail::Msg(Msg::Go))));
}

/// A `ReplyTo` is `Deserialize`: one made with tag 0 (no call has it) pushes
/// an untagged system message that is not a notice; the next mail read of its
/// target hits `unreachable!("only notices are untagged system messages")`
/// (or `expect("a notice")` in `select_mail`): the target fails for what
/// another sent it.
#[test]
fn a_forged_reply_with_tag_zero_does_not_crash_its_target() {
    let mut s = SimpleScheduler::new();
    let t = Template::new("t", |ctx: &mut Ctx<Msg>, ()| {
        let mut got = Vec::new();
        loop {
            match ctx.receive_mail() {
                Mail::Msg(Msg::Stop) => return got,
                m => got.push(m),
            }
        }
    });
    let h = s.spawn(&t, ()).unwrap();
    s.run_until_idle();
    let json = format!(
        "{{\"pid\":{},\"tag\":0}}",
        serde_json::to_string(&h.pid()).unwrap()
    );
    let forged: ReplyTo<u64> = serde_json::from_str(&json).unwrap();
    let _ = s.reply(forged, 5);
    s.send(h.pid(), Msg::Stop).unwrap();
    s.run_until_idle();
    assert_eq!(s.result(&h), Some(Ok(vec![])));
}

/// A caller killed in the middle of a call with a timeout: its timer goes,
/// its monitor goes (the server's end tells it nothing), and the server's
/// reply comes back to the server.
#[test]
fn a_caller_killed_during_a_call_leaves_no_timer_no_monitor_and_gets_no_reply() {
    let (mut s, _clock) = clocked();
    let got = Arc::new(Mutex::new(None));
    let out = got.clone();
    let relay = Template::new("relay", move |ctx: &mut Ctx<Msg>, ()| {
        let Msg::Hold(from) = ctx.receive() else {
            unreachable!()
        };
        ctx.receive();
        *out.lock().unwrap() = Some(ctx.reply(from, 1));
    });
    let r = s.spawn(&relay, ()).unwrap();
    let rp = r.pid();
    let client = Template::new("client", move |ctx: &mut Ctx<Msg>, ()| {
        ctx.call(rp, Msg::Hold, Some(Duration::from_secs(60)))
    });
    let c = s.spawn(&client, ()).unwrap();
    s.run_until_idle();
    assert!(s.next_deadline().is_some());
    s.exit_signal(c.pid(), Reason::Kill);
    assert_eq!(s.next_deadline(), None, "the call's timer went with it");
    s.send(rp, Msg::Go).unwrap();
    s.run_until_idle();
    assert_eq!(*got.lock().unwrap(), Some(Err(1)));
    assert_eq!(s.result(&r), Some(Ok(())));
}

/// A call to a server whose inbox refuses the request (Reject, full): the
/// request is kept with the undelivered messages, and the caller is not told:
/// it waits for its whole timeout (forever with `None`). Documents the
/// behaviour (OTP's mailboxes never refuse).
#[test]
fn a_call_whose_request_is_refused_waits_for_its_whole_timeout() {
    let (mut s, clock) = clocked();
    let full = Template::new("full", |ctx: &mut Ctx<Msg>, ()| {
        ctx.select(|m| *m == Msg::Go);
    })
    .capacity(1)
    .overflow(Overflow::Reject);
    let srv = s.spawn(&full, ()).unwrap();
    s.send(srv.pid(), Msg::N(0)).unwrap();
    let sp = srv.pid();
    let client = Template::new("client", move |ctx: &mut Ctx<Msg>, ()| {
        ctx.call(sp, Msg::Hold, Some(Duration::from_secs(5)))
    });
    let c = s.spawn(&client, ()).unwrap();
    s.run_until_idle();
    assert_eq!(s.result(&c), None);
    assert_eq!(s.take_undelivered().len(), 1);
    clock.advance(Duration::from_secs(5));
    s.run_until_idle();
    assert_eq!(s.result(&c), Some(Ok(Err(CallError::Timeout))));
}

// ---------------------------------------------------------------------------
// Destructors of killed processes using the toolkit
// ---------------------------------------------------------------------------

/// A child killed with its parent whose destructor registers a name, joins a
/// group, monitors and links to a live process, traps exits, reads mail
/// without waiting, calls a server, and spawns a linked process: all of it
/// goes with it (the name is free, the group empty, the monitor gone), its
/// links get its exit signal (the live process and the one it spawned end
/// with its reason), and nothing aborts.
#[test]
fn a_killed_childs_destructor_using_the_toolkit_leaves_nothing_behind() {
    support::isolated(
        "a_killed_childs_destructor_using_the_toolkit_leaves_nothing_behind",
        || {
            let mut s = SimpleScheduler::new();
            let other = s.spawn(&idle(), ()).unwrap();
            let op = other.pid();
            let srv = s.spawn(&server(), ()).unwrap();
            let sp = srv.pid();
            let seen = Arc::new(Mutex::new(Vec::new()));
            let out = seen.clone();
            let child = Template::new("child", move |ctx: &mut Ctx<Msg>, ()| {
                let out = out.clone();
                let g = defer(ctx, move |ctx| {
                    let me = ctx.pid();
                    ctx.register("doomed", me).unwrap();
                    assert!(ctx.join_group("g", me));
                    ctx.monitor(op);
                    ctx.link(op);
                    ctx.trap_exit(true);
                    let mut o = out.lock().unwrap();
                    o.push(format!("{:?}", ctx.try_receive_mail()));
                    o.push(format!("{:?}", ctx.try_receive_mail()));
                    o.push(format!(
                        "{:?}",
                        ctx.receive_mail_timeout(Duration::from_secs(1))
                    ));
                    o.push(format!("{:?}", ctx.call(sp, Msg::Hold, None)));
                    let pid = ctx.spawn_link(&idle(), ()).unwrap();
                    o.push(format!("{pid}"));
                });
                // Never matches: what comes stays for the destructor.
                g.ctx.select(|m| *m == Msg::Stop);
            });
            let parent = Template::new("parent", move |ctx: &mut Ctx<Msg>, ()| {
                let _ = ctx.spawn(&child, ()).unwrap();
                ctx.select(|m| *m == Msg::Go);
                "left its child"
            });
            let p = s.spawn(&parent, ()).unwrap();
            s.run_until_idle();
            // Both go to the child too (children receive what their parent does).
            s.send(p.pid(), Msg::N(1)).unwrap();
            s.send(p.pid(), Msg::Go).unwrap();
            s.run_until_idle();
            assert!(matches!(s.result(&p), Some(Err(ExitError::Failed(_)))));
            let seen = seen.lock().unwrap().clone();
            assert_eq!(seen[0], "Some(Msg(N(1)))");
            assert_eq!(seen[1], "Some(Msg(Go))");
            assert_eq!(seen[2], "None");
            assert_eq!(seen[3], "Err(Timeout)");
            let spawned = Pid(seen[4]
                .trim_start_matches('<')
                .trim_end_matches('>')
                .parse()
                .unwrap_or(u64::MAX));
            assert_eq!(s.whereis("doomed"), None);
            assert!(s.members("g").is_empty());
            let child_pid = Pid(p.pid().0 + 1);
            let why = Err(ExitError::Killed(format!("parent {} ended", p.pid())));
            assert_eq!(
                s.result(&other),
                Some(why),
                "linked: it went with the child"
            );
            if spawned.0 != u64::MAX {
                assert!(
                    is_stopped(&s, spawned),
                    "the spawned linked process went too"
                );
            }
            let _ = child_pid;
            s.exit_signal(sp, Reason::Kill);
            s.run_until_idle();
            assert_eq!(s.live(), 0);
        },
    );
}

/// A link to a pid that is gone, made in a destructor while the stack
/// unwinds (a kill): the link's `NoProc` exit signal to the caller itself
/// calls `Ctx::exit`, a second unwinding inside a destructor: the program
/// aborts. `link` does not say so (only `Ctx::exit` does); the process is
/// ending already, so the signal could be dropped. Same with
/// `exit_signal(self, reason)` in a destructor.
#[test]
fn a_link_to_a_dead_pid_in_a_killed_processs_destructor_does_not_abort() {
    isolated_ignored(
        "a_link_to_a_dead_pid_in_a_killed_processs_destructor_does_not_abort",
        || {
            let mut s = SimpleScheduler::new();
            let child = Template::new("child", |ctx: &mut Ctx<Msg>, ()| {
                let g = defer(ctx, |ctx| ctx.link(Pid(4242)));
                loop {
                    g.ctx.receive();
                }
            });
            let parent = Template::new("parent", move |ctx: &mut Ctx<Msg>, ()| {
                let _ = ctx.spawn(&child, ()).unwrap();
                ctx.yield_now();
            });
            let p = s.spawn(&parent, ()).unwrap();
            s.run_until_idle();
            assert!(s.result(&p).is_some());
        },
    );
}

// ---------------------------------------------------------------------------
// Names, groups, monitors of descendants killed with their parent
// ---------------------------------------------------------------------------

/// A parent killed by an exit signal takes its children with it: each one's
/// end is told to the toolkit (its name freed, its groups left, its watchers
/// told with the reason it died of, its links signalled).
#[test]
fn descendants_killed_with_their_parent_free_their_names_groups_and_tell_their_watchers() {
    let mut s = SimpleScheduler::new();
    let grandchild = Template::new("gc", |ctx: &mut Ctx<Msg>, ()| {
        loop {
            ctx.receive();
        }
    });
    let child = Template::new("child", move |ctx: &mut Ctx<Msg>, ()| {
        let _ = ctx.spawn(&grandchild, ()).unwrap();
        loop {
            ctx.receive();
        }
    });
    let parent = Template::new("parent", move |ctx: &mut Ctx<Msg>, ()| {
        let c = ctx.spawn(&child, ()).unwrap();
        let _ = ctx.join(c);
    });
    let p = s.spawn(&parent, ()).unwrap();
    s.run_until_idle();
    let (c, gc) = (Pid(p.pid().0 + 1), Pid(p.pid().0 + 2));
    s.register("child", c).unwrap();
    s.register("grandchild", gc).unwrap();
    assert!(s.join_group("kids", c));
    assert!(s.join_group("kids", gc));
    let watch = Template::new("watch", move |ctx: &mut Ctx<Msg>, ()| {
        ctx.monitor(c);
        ctx.monitor(gc);
        (ctx.receive_mail(), ctx.receive_mail())
    });
    let w = s.spawn(&watch, ()).unwrap();
    let linked = s.spawn(&linked_idle(), gc).unwrap();
    s.run_until_idle();
    s.exit_signal(p.pid(), Reason::Kill);
    s.run_until_idle();
    assert_eq!(s.result(&p), Some(Err(ExitError::Killed("killed".into()))));
    assert_eq!(s.whereis("child"), None);
    assert_eq!(s.whereis("grandchild"), None);
    assert!(s.registered().is_empty());
    assert!(s.members("kids").is_empty());
    let Some(Ok((a, b))) = s.result(&w) else {
        panic!("the watcher got its two DOWNs")
    };
    let downs: Vec<(Pid, Reason)> = [a, b]
        .into_iter()
        .map(|m| match m {
            Mail::Down { pid, reason, .. } => (pid, reason),
            m => panic!("not a DOWN: {m:?}"),
        })
        .collect();
    // The grandchild goes first (deepest first), each with "parent X ended".
    assert_eq!(
        downs,
        vec![
            (gc, Reason::Killed(format!("parent {c} ended"))),
            (c, Reason::Killed(format!("parent {} ended", p.pid()))),
        ]
    );
    assert_eq!(
        s.result(&linked),
        Some(Err(ExitError::Killed(format!("parent {c} ended"))))
    );
    assert_eq!(s.live(), 0);
}

// ---------------------------------------------------------------------------
// Mail order
// ---------------------------------------------------------------------------

/// A DOWN stays after the messages its process sent before it ended, even
/// when a DropOldest inbox evicts some of them, and before the messages that
/// come after it.
#[test]
fn a_down_keeps_its_place_through_evictions() {
    let mut s = SimpleScheduler::new();
    let sender = Template::new("sender", |ctx: &mut Ctx<Msg>, to: Pid| {
        ctx.receive();
        for n in 1..=5 {
            ctx.send_to(to, Msg::N(n));
        }
    });
    let watcher = Template::new("watcher", |ctx: &mut Ctx<Msg>, ()| {
        let Msg::Pid(p) = ctx.receive() else {
            unreachable!()
        };
        ctx.monitor(p);
        ctx.send_to(p, Msg::Go);
        // Waits (plainly) for the owner's go, so that the mail piles up.
        ctx.select(|m| *m == Msg::Go);
        (0..4).map(|_| ctx.receive_mail()).collect::<Vec<_>>()
    })
    .capacity(4)
    .overflow(Overflow::DropOldest);
    let w = s.spawn(&watcher, ()).unwrap();
    let snd = s.spawn(&sender, w.pid()).unwrap();
    s.send(w.pid(), Msg::Pid(snd.pid())).unwrap();
    s.run_until_idle();
    assert_eq!(s.result(&snd), Some(Ok(())));
    // Inbox: N(2)..N(5) (N(1) evicted), then the DOWN; N(9) and Go evict
    // N(2) and N(3).
    s.send(w.pid(), Msg::N(9)).unwrap();
    s.send(w.pid(), Msg::Go).unwrap();
    s.run_until_idle();
    let Some(Ok(mail)) = s.result(&w) else {
        panic!("the watcher read its mail")
    };
    assert_eq!(mail[0], Mail::Msg(Msg::N(4)));
    assert_eq!(mail[1], Mail::Msg(Msg::N(5)));
    assert!(matches!(mail[2], Mail::Down { .. }), "{mail:?}");
    assert_eq!(mail[3], Mail::Msg(Msg::N(9)));
}

/// One process both linked to and monitoring another (trapping): one EXIT and
/// one DOWN, no more.
#[test]
fn a_link_and_a_monitor_give_one_exit_and_one_down() {
    let mut s = SimpleScheduler::new();
    let target = s.spawn(&idle(), ()).unwrap();
    let tp = target.pid();
    let t = Template::new("t", move |ctx: &mut Ctx<Msg>, ()| {
        ctx.trap_exit(true);
        ctx.link(tp);
        ctx.monitor(tp);
        let a = ctx.receive_mail();
        let b = ctx.receive_mail();
        let c = ctx.receive_mail_timeout(Duration::ZERO);
        (a, b, c)
    });
    let h = s.spawn(&t, ()).unwrap();
    s.run_until_idle();
    s.exit_signal(tp, Reason::custom("x"));
    s.run_until_idle();
    let Some(Ok((a, b, c))) = s.result(&h) else {
        panic!()
    };
    let kinds = [&a, &b]
        .iter()
        .map(|m| match m {
            Mail::Down { .. } => "down",
            Mail::Exit { .. } => "exit",
            _ => "other",
        })
        .collect::<Vec<_>>();
    let mut sorted = kinds.clone();
    sorted.sort();
    assert_eq!(sorted, vec!["down", "exit"], "{a:?} {b:?}");
    assert_eq!(c, None);
}

// ---------------------------------------------------------------------------
// Timers
// ---------------------------------------------------------------------------

/// Counts live values: made, cloned, dropped.
#[derive(Debug)]
struct Counted {
    live: Arc<AtomicI64>,
    panics: bool,
}

/// (A `ReplyTo` deserializes for a reply type that serializes: its server
/// may be durable.)
impl serde::Serialize for Counted {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit()
    }
}

impl Counted {
    fn new(live: &Arc<AtomicI64>) -> Self {
        live.fetch_add(1, Ordering::SeqCst);
        Counted {
            live: live.clone(),
            panics: false,
        }
    }
    fn panicking(live: &Arc<AtomicI64>) -> Self {
        let mut c = Counted::new(live);
        c.panics = true;
        c
    }
}

impl Clone for Counted {
    fn clone(&self) -> Self {
        Counted::new(&self.live)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let before = self.live.fetch_sub(1, Ordering::SeqCst);
        assert!(before > 0, "dropped twice");
        if self.panics && !std::thread::panicking() {
            panic!("a panicking Drop");
        }
    }
}

/// Timers to a process killed before they fire (its pid gone for good): each
/// message dropped once, counted; a start_timer's notice too.
#[test]
fn timers_to_a_killed_process_are_dropped_once_each() {
    let live = Arc::new(AtomicI64::new(0));
    let mut s: SimpleScheduler<Counted> = SimpleScheduler::new();
    let clock = ManualClock::new(Time::from_nanos(0));
    s.set_clock(clock.clone());
    let t = Template::new("t", |ctx: &mut Ctx<Counted>, ()| {
        ctx.start_timer(Duration::from_millis(5));
        loop {
            ctx.receive();
        }
    });
    let h = s.spawn(&t, ()).unwrap();
    s.run_until_idle();
    s.send_after(Duration::from_millis(5), h.pid(), Counted::new(&live));
    s.send_after(Duration::from_millis(1), h.pid(), Counted::new(&live));
    s.exit_signal(h.pid(), Reason::Kill);
    clock.advance(Duration::from_millis(10));
    s.run_until_idle();
    assert_eq!(s.timers_dropped(), 3);
    assert_eq!(live.load(Ordering::SeqCst), 0);
    assert_eq!(s.next_deadline(), None);
}

/// Cancelling from outside a timer whose message's `Drop` panics: the panic
/// is the owner's, and the scheduler stays consistent (no timer left, runs on).
#[test]
fn cancelling_a_timer_whose_message_panics_on_drop_leaves_the_scheduler_whole() {
    let live = Arc::new(AtomicI64::new(0));
    let mut s: SimpleScheduler<Counted> = SimpleScheduler::new();
    let clock = ManualClock::new(Time::from_nanos(0));
    s.set_clock(clock.clone());
    let h = s
        .spawn(
            &Template::new("t", |ctx: &mut Ctx<Counted>, ()| {
                ctx.receive();
            }),
            (),
        )
        .unwrap();
    let t = s.send_after(Duration::from_millis(5), h.pid(), Counted::panicking(&live));
    let r = catch_unwind(AssertUnwindSafe(|| s.cancel_timer(t)));
    assert!(r.is_err(), "the Drop's panic is the owner's");
    assert_eq!(s.next_deadline(), None);
    assert_eq!(s.cancel_timer(t), None);
    s.send(h.pid(), Counted::new(&live)).unwrap();
    s.run_until_idle();
    assert_eq!(s.result(&h), Some(Ok(())));
    assert_eq!(live.load(Ordering::SeqCst), 0);
}

/// A process cancelling a timer whose message panics on drop: its own
/// failure, nothing else's.
#[test]
fn a_process_cancelling_a_timer_whose_message_panics_fails_alone() {
    let live = Arc::new(AtomicI64::new(0));
    let mut s: SimpleScheduler<Counted> = SimpleScheduler::new();
    let l = live.clone();
    let t = Template::new("t", move |ctx: &mut Ctx<Counted>, ()| {
        let me = ctx.pid();
        let t = ctx.send_after(Duration::from_secs(1), me, Counted::panicking(&l));
        ctx.cancel_timer(t);
    });
    let h = s.spawn(&t, ()).unwrap();
    s.run_until_idle();
    assert!(matches!(s.result(&h), Some(Err(ExitError::Failed(_)))));
    assert_eq!(s.next_deadline(), None);
    assert_eq!(live.load(Ordering::SeqCst), 0);
}

// ---------------------------------------------------------------------------
// Dropping the scheduler with toolkit state pending
// ---------------------------------------------------------------------------

/// A scheduler dropped with timed messages pending, replies waiting in a
/// process's system queue and in a stale call's, notices, links, monitors and
/// names: every value is dropped exactly once.
#[test]
fn dropping_a_scheduler_with_timers_replies_and_notices_pending_drops_each_value_once() {
    let live = Arc::new(AtomicI64::new(0));
    {
        let mut s: SimpleScheduler<Counted> = SimpleScheduler::new();
        let clock = ManualClock::new(Time::from_nanos(0));
        s.set_clock(clock.clone());
        // A "server" that hands every request to the owner.
        let relay = Template::new("relay", move |ctx: &mut Ctx<Counted>, ()| {
            loop {
                let m = ctx.receive();
                drop(m);
            }
        });
        let r = s.spawn(&relay, ()).unwrap();
        let rp = r.pid();
        let l = live.clone();
        let client = Template::new("client", move |ctx: &mut Ctx<Counted>, ()| {
            ctx.trap_exit(true);
            ctx.link(rp);
            ctx.monitor(rp);
            let me = ctx.pid();
            ctx.register("client", me).unwrap();
            ctx.start_timer(Duration::from_secs(1));
            ctx.send_after(Duration::from_secs(1), me, Counted::new(&l));
            // A call that times out; its reply comes late and waits, unread.
            let l2 = l.clone();
            let _ = ctx.call::<Counted>(
                rp,
                |to| {
                    let _ = to;
                    Counted::new(&l2)
                },
                Some(Duration::from_millis(1)),
            );
            ctx.receive();
        });
        let c = s.spawn(&client, ()).unwrap();
        s.run_until_idle();
        clock.advance(Duration::from_millis(1));
        s.run_until_idle();
        // A reply to a call that is over, and one forged for a live caller:
        // both wait in its system queue.
        let late: ReplyTo<Counted> = serde_json::from_str(&format!(
            "{{\"pid\":{},\"tag\":1000}}",
            serde_json::to_string(&c.pid()).unwrap()
        ))
        .unwrap();
        assert!(s.reply(late, Counted::new(&live)).is_ok());
        s.send_after(Duration::from_secs(5), rp, Counted::new(&live));
        s.send_after(Duration::from_secs(5), Pid(9999), Counted::new(&live));
        assert!(live.load(Ordering::SeqCst) > 0);
        drop(s);
    }
    assert_eq!(live.load(Ordering::SeqCst), 0);
}

/// `Drop for SimpleScheduler` catches the panics of the destructors it runs
/// (messages in inboxes: see teardown.rs, "nothing ... panics inside `Drop for
/// SimpleScheduler`"); a pending timed message is dropped with the kernel's
/// box instead, outside any catch: its panic escapes the scheduler's drop
/// (and aborts if the owner's thread was unwinding already).
#[test]
fn dropping_a_scheduler_with_a_pending_timed_message_that_panics_on_drop_does_not_panic() {
    let live = Arc::new(AtomicI64::new(0));
    let mut s: SimpleScheduler<Counted> = SimpleScheduler::new();
    let h = s
        .spawn(
            &Template::new("t", |ctx: &mut Ctx<Counted>, ()| {
                ctx.receive();
            }),
            (),
        )
        .unwrap();
    s.send_after(Duration::from_secs(60), h.pid(), Counted::panicking(&live));
    let dropped = catch_unwind(AssertUnwindSafe(move || drop(s)));
    assert!(dropped.is_ok(), "Drop for SimpleScheduler panicked");
    assert_eq!(live.load(Ordering::SeqCst), 0);
}

/// The same for a message in an inbox: caught (what holds today).
#[test]
fn dropping_a_scheduler_with_a_queued_message_that_panics_on_drop_does_not_panic() {
    let live = Arc::new(AtomicI64::new(0));
    let mut s: SimpleScheduler<Counted> = SimpleScheduler::new();
    let h = s
        .spawn(
            &Template::new("t", |ctx: &mut Ctx<Counted>, ()| {
                ctx.receive();
            }),
            (),
        )
        .unwrap();
    s.send(h.pid(), Counted::panicking(&live)).unwrap();
    let dropped = catch_unwind(AssertUnwindSafe(move || drop(s)));
    assert!(dropped.is_ok());
    assert_eq!(live.load(Ordering::SeqCst), 0);
}

// ---------------------------------------------------------------------------
// spawn_link / spawn_monitor: atomic, as in OTP
// ---------------------------------------------------------------------------

/// Fails as soon as it runs.
fn crash_at_once() -> Template<Msg, Msg, (), ()> {
    Template::new("crash", |_: &mut Ctx<Msg>, ()| panic!("at once"))
}

/// `spawn_link` starts the new process, then calls `link`, whose budget tick
/// may yield the turn in between: the new process then runs (and may end)
/// before the link exists, and the caller gets `NoProc` instead of its
/// reason. OTP's `spawn_link` is atomic, and the docs say "linked to this
/// one ... before it runs".
#[test]
fn spawn_link_links_before_the_new_process_runs_whatever_the_budget() {
    let mut s = SimpleScheduler::new();
    s.set_budget(1);
    let t = Template::new("t", |ctx: &mut Ctx<Msg>, ()| {
        ctx.trap_exit(true);
        let pid = ctx.spawn_link(&crash_at_once(), ()).unwrap();
        (pid, ctx.receive_mail())
    });
    let h = s.spawn(&t, ()).unwrap();
    s.run_until_idle();
    let (pid, mail) = s.result(&h).unwrap().unwrap();
    assert_eq!(
        mail,
        Mail::Exit {
            from: pid,
            reason: Reason::Failed("at once".into())
        }
    );
}

/// The same for `spawn_monitor`: the DOWN should carry the reason, not
/// `NoProc`.
#[test]
fn spawn_monitor_monitors_before_the_new_process_runs_whatever_the_budget() {
    let mut s = SimpleScheduler::new();
    s.set_budget(1);
    let t = Template::new("t", |ctx: &mut Ctx<Msg>, ()| {
        ctx.yield_now();
        let (pid, _) = ctx.spawn_monitor(&crash_at_once(), ()).unwrap();
        (pid, ctx.receive_mail())
    });
    let h = s.spawn(&t, ()).unwrap();
    s.run_until_idle();
    let (pid, mail) = s.result(&h).unwrap().unwrap();
    assert!(
        matches!(&mail, Mail::Down { pid: p, reason: Reason::Failed(m), .. } if *p == pid && m == "at once"),
        "{mail:?}"
    );
}

/// With the default budget the same holds (what the tests of otp_links see).
#[test]
fn spawn_link_with_the_default_budget_gets_the_reason() {
    let mut s = SimpleScheduler::new();
    let t = Template::new("t", |ctx: &mut Ctx<Msg>, ()| {
        ctx.trap_exit(true);
        let pid = ctx.spawn_link(&crash_at_once(), ()).unwrap();
        (pid, ctx.receive_mail())
    });
    let h = s.spawn(&t, ()).unwrap();
    s.run_until_idle();
    let (pid, mail) = s.result(&h).unwrap().unwrap();
    assert_eq!(
        mail,
        Mail::Exit {
            from: pid,
            reason: Reason::Failed("at once".into())
        }
    );
}

// ---------------------------------------------------------------------------
// Scale: long chains, applied iteratively
// ---------------------------------------------------------------------------

/// A chain of 5000 linked processes: one failure ends them all (exit signals
/// applied in a loop, not by recursion), each with the same reason.
#[test]
fn a_chain_of_5000_links_fails_without_recursion() {
    let mut s = SimpleScheduler::new();
    let first = s.spawn(&idle(), ()).unwrap();
    let mut prev = first.pid();
    let mut all = Vec::new();
    for _ in 0..5000 {
        let h = s.spawn(&linked_idle(), prev).unwrap();
        prev = h.pid();
        all.push(h);
    }
    s.run_until_idle();
    s.exit_signal(first.pid(), Reason::custom("domino"));
    // Applied at once, all of them (not "at the next pass", as the docs of
    // `SimpleScheduler::exit_signal` say of the links' signals).
    assert_eq!(s.live(), 0);
    let domino = Err(ExitError::Custom(chronoflow::Value::text_of("domino")));
    for h in &all {
        assert_eq!(s.result(h), Some(domino.clone()));
    }
}

// ---------------------------------------------------------------------------
// Stackless processes as peers
// ---------------------------------------------------------------------------

#[cfg(feature = "stackless")]
mod stackless_peers {
    use super::*;
    use chronoflow::stackless::receive;
    use chronoflow::{StacklessCtx, StacklessTemplate};

    fn sl_crasher() -> StacklessTemplate<Msg, Msg, (), ()> {
        StacklessTemplate::new("sl", |cx: StacklessCtx<Msg>, ()| {
            #[coroutine]
            move || {
                let m = receive!(cx);
                if m == Msg::Go {
                    panic!("stackless failed");
                }
            }
        })
    }

    /// A stackless process (whose panic unwinds out of its resume, into the
    /// pass loop's catch) linked to stackful ones: its end's exit signals are
    /// applied there too; an exit signal kills a stackless process.
    #[test]
    fn a_stackless_failure_reaches_its_links_and_kill_ends_a_stackless_process() {
        let mut s = SimpleScheduler::new();
        let sl = s.spawn(&sl_crasher(), ()).unwrap();
        let linked = s.spawn(&linked_idle(), sl.pid()).unwrap();
        let trap = s.spawn(&trapper(), sl.pid()).unwrap();
        s.run_until_idle();
        s.send(sl.pid(), Msg::Go).unwrap();
        s.run_until_idle();
        let failed = Err(ExitError::Failed("stackless failed".into()));
        assert_eq!(s.result(&sl), Some(failed.clone()));
        assert_eq!(s.result(&linked), Some(failed));
        assert!(matches!(
            s.result(&trap),
            Some(Ok(Mail::Exit {
                reason: Reason::Failed(_),
                ..
            }))
        ));
        let sl2 = s.spawn(&sl_crasher(), ()).unwrap();
        let watch = s.spawn(&trapper(), sl2.pid()).unwrap();
        s.run_until_idle();
        s.exit_signal(sl2.pid(), Reason::Kill);
        s.run_until_idle();
        assert_eq!(
            s.result(&sl2),
            Some(Err(ExitError::Killed("killed".into())))
        );
        assert!(matches!(
            s.result(&watch),
            Some(Ok(Mail::Exit {
                reason: Reason::Killed(_),
                ..
            }))
        ));
        assert_eq!(s.live(), 0);
    }
}

// ---------------------------------------------------------------------------
// More timers
// ---------------------------------------------------------------------------

/// A timer armed for a pid that no process has yet: pids are never reused,
/// but they are handed out in order, so the process spawned later with that
/// pid gets a message sent "to" a pid that did not exist when it was sent.
/// (BEAM: a message to a pid that is not alive is dropped.) Minor.
#[test]
fn a_timer_armed_for_a_pid_not_yet_handed_out_is_dropped() {
    let (mut s, clock) = clocked();
    let first = s.spawn(&idle(), ()).unwrap();
    let future = Pid(first.pid().0 + 1);
    s.send_after(Duration::from_millis(1), future, Msg::N(7));
    let t = Template::new("t", move |ctx: &mut Ctx<Msg>, ()| {
        ctx.select(|m| *m == Msg::Go);
        ctx.try_receive()
    });
    let h = s.spawn(&t, ()).unwrap();
    assert_eq!(h.pid(), future);
    s.run_until_idle();
    clock.advance(Duration::from_millis(1));
    s.run_until_idle();
    s.send(h.pid(), Msg::Go).unwrap();
    s.run_until_idle();
    assert_eq!(
        s.result(&h),
        Some(Ok(None)),
        "a message to a pid that did not exist"
    );
    assert_eq!(s.timers_dropped(), 1);
}

/// Many timed sends, most cancelled (from outside and inside), mixed with a
/// process's own receive timeouts: the heap is compacted on the way, and
/// every timer left fires once, in deadline order; forged refs cancel
/// nothing that is not a timed send.
#[test]
fn many_cancelled_timers_and_forged_refs_leave_the_live_ones_firing_in_order() {
    let (mut s, clock) = clocked();
    let c = Template::new("c", |ctx: &mut Ctx<Msg>, ()| {
        let mut got = Vec::new();
        // Its own timer (a receive timeout) among the timed sends.
        assert_eq!(ctx.receive_timeout(Duration::from_millis(500)), None);
        got.push(u64::MAX);
        while let Some(Msg::N(n)) = ctx.receive_timeout(Duration::from_secs(10)) {
            got.push(n);
        }
        got
    });
    let h = s.spawn(&c, ()).unwrap();
    s.run_until_idle();
    let mut keep = Vec::new();
    let mut refs = Vec::new();
    for n in 0..1000u64 {
        let t = s.send_after(
            Duration::from_millis(1000 + (n * 7919) % 1000),
            h.pid(),
            Msg::N(n),
        );
        refs.push((n, t));
    }
    for (n, t) in refs {
        if n % 10 == 0 {
            keep.push((1000 + (n * 7919) % 1000, n));
        } else {
            assert!(s.cancel_timer(t).is_some());
        }
    }
    // A forged ref naming the process's own receive timeout (the first wait
    // timer's id, in a space of its own) or no timer at all: not a timed
    // send, nothing to cancel.
    for id in [0, (1u64 << 63) | 1] {
        let forged: chronoflow::TimerRef = serde_json::from_str(&id.to_string()).unwrap();
        assert_eq!(s.cancel_timer(forged), None);
    }
    clock.advance(Duration::from_millis(500));
    s.run_until_idle();
    clock.advance(Duration::from_millis(1500));
    s.run_until_idle();
    clock.advance(Duration::from_secs(20));
    s.run_until_idle();
    keep.sort();
    let mut want = vec![u64::MAX];
    want.extend(keep.into_iter().map(|(_, n)| n));
    assert_eq!(s.result(&h), Some(Ok(want)));
    assert_eq!(s.next_deadline(), None);
}

// ---------------------------------------------------------------------------
// Destructors that signal during a parent's end
// ---------------------------------------------------------------------------

/// A child killed by its parent's end (not by an exit signal) whose
/// destructor sends an exit signal to a process outside the tree: applied
/// after the parent's end, before anything else runs. And a sibling that
/// monitors the first child gets its DOWN while it is itself being killed
/// (made ready, then freed from the ready queue).
#[test]
fn a_destructor_run_by_a_parents_end_signals_outside_the_tree_and_downs_reach_dying_siblings() {
    let mut s = SimpleScheduler::new();
    let outsider = s.spawn(&idle(), ()).unwrap();
    let op = outsider.pid();
    let first = Template::new("first", move |ctx: &mut Ctx<Msg>, ()| {
        let g = defer(ctx, move |ctx| {
            ctx.exit_signal(op, Reason::custom("from a destructor"))
        });
        g.ctx.select(|m| *m == Msg::Stop);
    });
    let second = Template::new("second", |ctx: &mut Ctx<Msg>, first: Pid| {
        ctx.monitor(first);
        loop {
            ctx.receive_mail();
        }
    });
    let parent = Template::new("parent", move |ctx: &mut Ctx<Msg>, ()| {
        let f = ctx.spawn(&first, ()).unwrap();
        let _ = ctx.spawn(&second, f.pid()).unwrap();
        ctx.select(|m| *m == Msg::Go);
    });
    let p = s.spawn(&parent, ()).unwrap();
    s.run_until_idle();
    s.send(p.pid(), Msg::Go).unwrap();
    s.run_until_idle();
    assert!(matches!(s.result(&p), Some(Err(ExitError::Failed(_)))));
    assert_eq!(
        s.result(&outsider),
        Some(Err(ExitError::Custom(chronoflow::Value::text_of(
            "from a destructor"
        ))))
    );
    assert_eq!(s.live(), 0);
}

/// `receive_mail` in a destructor while the stack unwinds, with nothing to
/// take: it can neither wait nor return, and the program aborts saying why
/// (as documented for `receive`). With mail there, it takes it (see
/// `a_killed_childs_destructor_using_the_toolkit_leaves_nothing_behind`).
#[test]
fn receive_mail_with_nothing_in_a_killed_processs_destructor_aborts_and_says_why() {
    support::isolated_aborting(
        "receive_mail_with_nothing_in_a_killed_processs_destructor_aborts_and_says_why",
        "in a destructor while its stack unwinds",
        || {
            let mut s = SimpleScheduler::new();
            let t = Template::new("t", |ctx: &mut Ctx<Msg>, ()| {
                let g = defer(ctx, |ctx| {
                    ctx.receive_mail();
                });
                g.ctx.receive();
            });
            let h = s.spawn(&t, ()).unwrap();
            s.run_until_idle();
            s.exit_signal(h.pid(), Reason::Kill);
        },
    );
}

/// A scheduler dropped with an exit signal still queued (the stuck case of
/// `an_exit_signal_sent_during_a_caught_unwinding_is_applied`): nothing is
/// applied, nothing leaks or is dropped twice.
#[test]
fn dropping_a_scheduler_with_exit_signals_queued() {
    let live = Arc::new(AtomicI64::new(0));
    let mut s: SimpleScheduler<Counted> = SimpleScheduler::new();
    let idle = Template::new("idle", |ctx: &mut Ctx<Counted>, ()| {
        loop {
            ctx.receive();
        }
    });
    let victim = s.spawn(&idle, ()).unwrap();
    let v = victim.pid();
    let l = live.clone();
    let sender = Template::new("sender", move |ctx: &mut Ctx<Counted>, ()| {
        let _keep = Counted::new(&l);
        let _ = catch_unwind(AssertUnwindSafe(|| {
            let _g = defer(&mut *ctx, move |ctx| {
                ctx.exit_signal(v, Reason::custom("bye"))
            });
            quiet_unwind();
        }));
        ctx.receive();
    });
    s.spawn(&sender, ()).unwrap();
    s.send(v, Counted::new(&live)).unwrap();
    s.run_until_idle();
    drop(s);
    assert_eq!(live.load(Ordering::SeqCst), 0);
}
