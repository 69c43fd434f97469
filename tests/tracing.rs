//! Feature `tracing`: the events of a spawn, a stop (normal, failed, killed), a
//! back-off, a drop, an undelivered message, a journal commit and a recovery.
//! (`cargo test --features tracing --test tracing`.)
#![cfg(feature = "tracing")]

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use chronoflow::{Ctx, DurableScheduler, Overflow, Pid, SimpleScheduler, Template};
use tempfile::TempDir;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

#[path = "support/segments.rs"]
mod segments;

/// One event: its message and its other fields, as text.
#[derive(Debug, Clone, Default)]
struct Seen {
    message: String,
    fields: BTreeMap<String, String>,
}

impl Seen {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

impl Visit for Seen {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.fields
                .insert(field.name().to_string(), value.to_string());
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.record_str(field, &value.to_string());
    }
}

/// A subscriber that keeps every event.
#[derive(Clone, Default)]
struct Collect(Arc<Mutex<Vec<Seen>>>);

impl Subscriber for Collect {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut seen = Seen::default();
        event.record(&mut seen);
        self.0.lock().unwrap().push(seen);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// The events `f` emits on this thread.
fn events_of(f: impl FnOnce()) -> Vec<Seen> {
    let collect = Collect::default();
    tracing::subscriber::with_default(collect.clone(), f);
    collect.0.lock().unwrap().clone()
}

fn find<'a>(seen: &'a [Seen], message: &str, fields: &[(&str, &str)]) -> Option<&'a Seen> {
    seen.iter().find(|s| {
        s.message == message
            && fields
                .iter()
                .all(|(name, value)| s.field(name) == Some(value))
    })
}

#[track_caller]
fn expect(seen: &[Seen], message: &str, fields: &[(&str, &str)]) {
    assert!(
        find(seen, message, fields).is_some(),
        "no {message:?} event with {fields:?} among {seen:#?}"
    );
}

#[test]
fn spawns_stops_backoffs_drops_and_undelivered_messages_are_traced() {
    let seen = events_of(|| {
        let quitter = Template::new("quitter", |_: &mut Ctx<u64>, _: ()| -> u64 {
            panic!("gave up");
        });
        let consumer = Template::new("consumer", |ctx: &mut Ctx<u64>, n: u64| {
            (0..n).map(|_| ctx.receive()).sum::<u64>()
        })
        .capacity(1);
        let dropper = Template::new("dropper", |ctx: &mut Ctx<u64>, _: ()| ctx.receive())
            .capacity(1)
            .overflow(Overflow::DropNewest);
        let producer = Template::new("producer", |ctx: &mut Ctx<u64>, to: Pid| {
            for m in 0..3 {
                ctx.send_to(to, m);
            }
            ctx.send_to(Pid(999), 7); // nobody
        });
        let child = Template::new("child", |ctx: &mut Ctx<u64>, _: ()| ctx.receive());
        let orphaning = Template::new("orphaning", move |ctx: &mut Ctx<u64>, _: ()| {
            let _ = ctx.spawn(&child, ()).unwrap();
        });

        let mut sched = SimpleScheduler::new();
        sched.spawn(&quitter, ()).unwrap();
        let c = sched.spawn(&consumer, 3).unwrap();
        let d = sched.spawn(&dropper, ()).unwrap();
        sched.spawn(&producer, c.pid()).unwrap();
        sched.spawn(&producer, d.pid()).unwrap();
        sched.spawn(&orphaning, ()).unwrap();
        sched.run_until_idle();
        assert_eq!(sched.result(&c), Some(Ok(3)));
    });
    expect(&seen, "spawn", &[("pid", "0"), ("name", "quitter")]);
    expect(&seen, "spawn", &[("pid", "1"), ("name", "consumer")]);
    expect(
        &seen,
        "stop",
        &[("pid", "0"), ("exit", "failed"), ("reason", "gave up")],
    );
    expect(
        &seen,
        "stop",
        &[("pid", "1"), ("name", "consumer"), ("exit", "normal")],
    );
    expect(&seen, "backoff", &[("pid", "3"), ("to", "1")]);
    expect(&seen, "drop", &[("pid", "2"), ("reason", "Newest")]);
    expect(
        &seen,
        "undelivered",
        &[("pid", "3"), ("to", "999"), ("reason", "UnknownPid")],
    );
    // The orphaning parent fails, and its child is killed.
    expect(&seen, "stop", &[("name", "orphaning"), ("exit", "failed")]);
    expect(&seen, "stop", &[("name", "child"), ("exit", "killed")]);
}

#[test]
fn a_filter_drop_is_traced() {
    let seen = events_of(|| {
        let picky = Template::new("picky", |ctx: &mut Ctx<u64>, _: ()| ctx.filter(|m| *m == 2));
        let mut sched = SimpleScheduler::new();
        let p = sched.spawn(&picky, ()).unwrap();
        sched.send(p.pid(), 1).unwrap();
        sched.send(p.pid(), 2).unwrap();
        sched.run_until_idle();
        assert_eq!(sched.result(&p), Some(Ok(2)));
    });
    expect(&seen, "drop", &[("pid", "0"), ("reason", "filtered")]);
}

#[test]
fn journal_commits_and_recovery_are_traced() {
    let tmp = TempDir::new().unwrap();
    let waiter = Template::new("waiter", |ctx: &mut Ctx<u64>, _: ()| ctx.receive());
    let open = || {
        DurableScheduler::<u64>::builder()
            .register(&waiter)
            .open(tmp.path())
            .unwrap()
            .0
    };
    let seen = events_of(|| {
        let mut sched = open();
        sched.spawn(&waiter, ()).unwrap();
        sched.run_until_idle().unwrap();
    });
    let commit = find(&seen, "journal commit", &[]).expect("a commit event");
    assert!(commit.field("lsn").is_some() && commit.field("records").is_some());
    assert!(commit.field("micros").is_some());
    let seen = events_of(|| {
        let mut sched = open();
        sched.send(Pid(0), 5).unwrap();
        sched.run_until_idle().unwrap();
        assert_eq!(sched.result_of::<u64>(Pid(0)), Some(Ok(5)));
    });
    expect(
        &seen,
        "recovery",
        &[
            ("replayed", "1"),
            ("fast_forwarded", "0"),
            ("truncated", "false"),
        ],
    );
    expect(&seen, "stop", &[("pid", "0"), ("exit", "normal")]);
}

#[test]
fn a_torn_tail_cut_at_recovery_is_traced() {
    let tmp = TempDir::new().unwrap();
    let waiter = Template::new("waiter", |ctx: &mut Ctx<u64>, _: ()| ctx.receive());
    let open = || {
        DurableScheduler::<u64>::builder()
            .register(&waiter)
            .open(tmp.path())
            .unwrap()
            .0
    };
    {
        let mut sched = open();
        sched.spawn(&waiter, ()).unwrap();
        sched.run_until_idle().unwrap();
    }
    let segment = segments::segments(tmp.path()).pop().unwrap();
    let len = std::fs::metadata(&segment).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let seen = events_of(|| drop(open()));
    let cut = find(&seen, "torn tail cut", &[]).expect("a torn tail event");
    assert!(cut.field("offset").is_some() && cut.field("bytes").is_some());
    expect(&seen, "recovery", &[("truncated", "true")]);
}

#[test]
fn exit_signals_downs_and_dropped_timers_are_traced() {
    use std::time::Duration;
    let seen = events_of(|| {
        let crasher = Template::new("crasher", |ctx: &mut Ctx<u64>, _: ()| -> () {
            ctx.receive();
            panic!("boom");
        });
        let watcher = Template::new("watcher", |ctx: &mut Ctx<u64>, pid: Pid| {
            ctx.trap_exit(true);
            ctx.link(pid);
            ctx.monitor(pid);
            ctx.receive_mail();
        });
        let mut sched = SimpleScheduler::new();
        sched.set_clock(chronoflow::ManualClock::new(chronoflow::Time::from_nanos(
            0,
        )));
        let c = sched.spawn(&crasher, ()).unwrap();
        sched.spawn(&watcher, c.pid()).unwrap();
        sched.run_until_idle();
        sched.send(c.pid(), 1).unwrap();
        sched.run_until_idle();
        sched.send_after(Duration::ZERO, c.pid(), 2);
        sched.run_until_idle();
        assert_eq!(sched.timers_dropped(), 1);
    });
    expect(
        &seen,
        "exit signal",
        &[("pid", "0"), ("to", "1"), ("reason", "failed: boom")],
    );
    expect(
        &seen,
        "down",
        &[("pid", "0"), ("to", "1"), ("reason", "failed: boom")],
    );
    expect(&seen, "timer dropped", &[("to", "0")]);
}

#[test]
fn supervisor_restarts_and_give_up_are_traced() {
    use chronoflow::otp::supervisor::{ChildSpec, Supervisor};
    let seen = events_of(|| {
        let crasher = Template::<u64, u64, (), ()>::new("crasher", |ctx: &mut Ctx<u64>, ()| {
            ctx.receive();
            panic!("crash");
        });
        let sup = Supervisor::new("sup")
            .child(ChildSpec::new("c", &crasher, ()).name("c"))
            .template()
            .unwrap();
        let mut sched = SimpleScheduler::new();
        sched.spawn(&sup, ()).unwrap();
        for _ in 0..2 {
            sched.run_until_idle();
            sched.send_named("c", 0).unwrap();
        }
        sched.run_until_idle();
    });
    expect(
        &seen,
        "supervisor restart",
        &[("supervisor", "sup"), ("child", "c")],
    );
    expect(&seen, "supervisor give-up", &[("supervisor", "sup")]);
    expect(
        &seen,
        "supervisor stop",
        &[("supervisor", "sup"), ("reason", "shutdown")],
    );
}
