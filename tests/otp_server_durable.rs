//! Servers under a durable scheduler: calls, casts, stops, stashed calls, the
//! server's own timers and its idle timeout are journaled, so that a story
//! that crashes (after any pass, or at any byte of its journal) and is
//! reopened ends as the one that did not (`support/stories.rs`).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chronoflow::otp::server::{self, Flow, From, Init, Reply, Server, ServerCtx, ServerRef, Timer};
use chronoflow::{Clock, Ctx, DurableScheduler, Local, Mail, Reason, Template, Time};
use serde::{Deserialize, Serialize};

#[path = "support/stories.rs"]
mod stories;
use stories::{Log, check_story_every};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Msg {
    Tick,
}

#[derive(Debug, Serialize, Deserialize)]
enum Q {
    Deposit(u64),
    /// Stashed while the vault is closed.
    Withdraw(u64),
    Ticks,
    Idle,
}

#[derive(Debug, Serialize, Deserialize)]
enum C {
    Open,
    Tick,
    StopTicking,
}

/// A vault: deposits at once, withdrawals once open (stashed before), a
/// tick counter fed by its own interval timer, an idle count. It moves to a
/// snapshot of itself every few messages.
#[derive(Serialize, Deserialize)]
struct Vault {
    balance: u64,
    open: bool,
    ticks: u32,
    idle: u32,
    ticker: Option<Timer>,
}

impl Server for Vault {
    type Engine = server::Stackful;
    type Msg = Msg;
    type Args = u64;
    type Call = Q;
    type Reply = u64;
    type Cast = C;
    type Continue = ();

    const SNAPSHOT_EVERY: usize = 3;

    fn init(_: &mut ServerCtx<Self>, balance: u64) -> Init<Self> {
        Init::Ok(Vault {
            balance,
            open: false,
            ticks: 0,
            idle: 0,
            ticker: None,
        })
    }

    fn handle_call(&mut self, ctx: &mut ServerCtx<Self>, q: Q, from: From<u64>) -> Reply<Self> {
        match q {
            Q::Deposit(n) => {
                self.balance += n;
                Reply::Reply(self.balance)
            }
            Q::Withdraw(n) if !self.open => {
                ctx.stash_call(Q::Withdraw(n), from).unwrap();
                Reply::NoReply
            }
            Q::Withdraw(n) => {
                self.balance -= n;
                Reply::Reply(self.balance)
            }
            Q::Ticks => Reply::Reply(u64::from(self.ticks)),
            Q::Idle => Reply::Reply(u64::from(self.idle)),
        }
    }

    fn handle_cast(&mut self, ctx: &mut ServerCtx<Self>, c: C) -> Flow<Self> {
        match c {
            C::Open => {
                self.open = true;
                ctx.unstash_all();
            }
            C::Tick => {
                self.ticker = Some(
                    ctx.timers()
                        .send_interval(Duration::from_millis(1), Msg::Tick),
                );
            }
            C::StopTicking => {
                if let Some(t) = self.ticker.take() {
                    ctx.timers().cancel(t);
                }
            }
        }
        Flow::Continue
    }

    fn handle_info(&mut self, _: &mut ServerCtx<Self>, mail: Mail<Msg>) -> Flow<Self> {
        if let Mail::Msg(Msg::Tick) = mail {
            self.ticks += 1;
        }
        Flow::Continue
    }

    fn idle_timeout(&self) -> Option<Duration> {
        (self.idle < 2).then_some(Duration::from_millis(1))
    }

    fn handle_timeout(&mut self, _: &mut ServerCtx<Self>) -> Flow<Self> {
        self.idle += 1;
        Flow::Continue
    }
}

fn vault() -> Template<Msg, Msg, u64, (), Local> {
    server::template::<Vault>("vault")
}

/// Withdraws from the vault (stashed until it opens).
fn withdrawer() -> Template<Msg, Msg, ServerRef<Vault>, u64, Local> {
    Template::local("withdrawer", |ctx: &mut Ctx<Msg>, v: ServerRef<Vault>| {
        v.durable_call_timeout(ctx, Q::Withdraw(30), None).unwrap()
    })
}

/// Calls the vault, waiting as long as it takes (the clock runs on while
/// the story is down: a deadline would pass at a reopening).
fn call(ctx: &mut Ctx<Msg>, v: ServerRef<Vault>, q: Q) -> Result<u64, chronoflow::CallError> {
    v.durable_call_timeout(ctx, q, None)
}

/// The story: every kind of use of a durable server.
fn story() -> Template<Msg, Msg, (), Log, Local> {
    Template::local("story", |ctx: &mut Ctx<Msg>, ()| {
        let mut log = Log::new();
        let pid = ctx.spawn_link(&vault(), 100).unwrap();
        let v = ServerRef::<Vault>::new(pid);
        log.push(format!("deposit: {:?}", call(ctx, v, Q::Deposit(5))));
        let w = ctx.spawn(&withdrawer(), v).unwrap();
        // The withdrawal is stashed: a deposit overtakes it.
        log.push(format!("deposit: {:?}", call(ctx, v, Q::Deposit(1))));
        v.durable_cast(ctx, C::Open);
        log.push(format!("withdrawn: {:?}", ctx.join(w)));
        v.durable_cast(ctx, C::Tick);
        while call(ctx, v, Q::Ticks).unwrap() < 3 {
            ctx.yield_now();
        }
        v.durable_cast(ctx, C::StopTicking);
        let stopped = call(ctx, v, Q::Ticks).unwrap();
        for _ in 0..5 {
            ctx.yield_now();
        }
        log.push(format!(
            "ticks stopped: {}",
            call(ctx, v, Q::Ticks).unwrap() == stopped
        ));
        // Between calls, the vault times out idle (twice, then no more).
        while call(ctx, v, Q::Idle).unwrap() < 2 {
            ctx.yield_now();
        }
        log.push("idle twice".into());
        ctx.trap_exit(true);
        log.push(format!(
            "stopped: {}",
            v.stop(ctx, Reason::custom("closing"))
        ));
        log
    })
}

/// A clock that moves a millisecond at every read (timers come due as the
/// story runs; what a process saw of it is journaled).
struct Ticking;

static NOW: AtomicU64 = AtomicU64::new(0);

impl Clock for Ticking {
    fn now(&self) -> Time {
        Time::from_nanos(NOW.fetch_add(1_000_000, Ordering::Relaxed))
    }
}

fn open(dir: &Path) -> DurableScheduler<Msg> {
    let (sched, _) = DurableScheduler::builder()
        .register(&story())
        .register(&withdrawer())
        .server::<Vault>(&vault())
        .clock(Ticking)
        .open(dir)
        .unwrap();
    sched
}

#[test]
fn a_durable_server_ends_alike_across_crashes() {
    let plain = check_story_every(
        open,
        |sched| {
            sched.spawn(&story(), ()).unwrap();
        },
        29,
        1,
    );
    assert_eq!(
        plain,
        [
            "deposit: Ok(105)",
            "deposit: Ok(106)",
            "withdrawn: Ok(76)",
            "ticks stopped: true",
            "idle twice",
            "stopped: \"closing\""
        ]
    );
}

#[test]
fn a_durable_server_moves_to_snapshots_of_itself() {
    let dir = tempfile::TempDir::new().unwrap();
    let mut sched = open(dir.path());
    sched.record();
    let h = sched.spawn(&story(), ()).unwrap();
    while sched.result(&h).is_none() {
        let _ = sched.update().unwrap();
    }
    let snapshots = sched
        .pull()
        .into_iter()
        .filter(|s| {
            matches!(&s.data, chronoflow::SignalData::Transition { entry, .. } if &**entry == "vault/snapshot")
        })
        .count();
    assert!(snapshots >= 3, "{snapshots} snapshots");
}
