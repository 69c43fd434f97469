//! Sending from other threads and tasks through a `Sender`, and the async
//! `run`: every message arrives, in order per sender; back-pressure refuses or
//! waits; what cannot be delivered is kept; a run waits without blocking or
//! busy polling, and ends when nothing can come.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::thread;
use std::time::Duration;

use chronoflow::{
    Ctx, ManualClock, Overflow, Pid, SendError, Sender, SimpleScheduler, Template, Time,
    UndeliveredReason,
};

/// Receives `n` messages and returns them.
fn collector() -> Template<u64, u64, usize, Vec<u64>> {
    Template::new("collector", |ctx: &mut Ctx<u64>, n: usize| {
        (0..n).map(|_| ctx.receive()).collect::<Vec<u64>>()
    })
}

#[test]
fn a_sender_is_send_sync_and_clone() {
    fn check<T: Send + Sync + Clone + 'static>() {}
    check::<Sender<u64>>();
    check::<Sender<String>>();
}

#[test]
fn messages_from_other_threads_all_arrive_in_order_per_sender() {
    let mut sched = SimpleScheduler::new();
    let h = sched.spawn(&collector(), 20_000).unwrap();
    let pid = h.pid();
    let threads: Vec<_> = (0..2u64)
        .map(|t| {
            let sender = sched.sender_with_capacity(16);
            thread::spawn(move || {
                for i in 0..10_000 {
                    sender.send_blocking(pid, t * 1_000_000 + i).unwrap();
                }
            })
        })
        .collect();
    // Ends once both senders are gone and everything is delivered.
    sched.run_blocking();
    for t in threads {
        t.join().unwrap();
    }
    let got = sched.result(&h).unwrap().unwrap();
    assert_eq!(got.len(), 20_000);
    for t in 0..2u64 {
        let mine: Vec<u64> = got.iter().copied().filter(|v| v / 1_000_000 == t).collect();
        let sent: Vec<u64> = (0..10_000).map(|i| t * 1_000_000 + i).collect();
        assert_eq!(mine, sent, "sender {t}'s messages in order");
    }
}

#[test]
fn a_full_mail_refuses_with_the_message_back_until_the_process_makes_room() {
    // A process that reads nothing for a second (of a manual clock), with an
    // inbox of 2; the mail has room for 4 in flight.
    let slow = Template::new("slow", |ctx: &mut Ctx<u64>, _: ()| {
        ctx.sleep(Duration::from_secs(1));
        (0..6).map(|_| ctx.receive()).collect::<Vec<u64>>()
    })
    .capacity(2);
    let clock = ManualClock::new(Time(0));
    let mut sched = SimpleScheduler::new();
    sched.set_clock(clock.clone());
    let h = sched.spawn(&slow, ()).unwrap();
    let _ = sched.update();
    let sender = sched.sender_with_capacity(4);
    for i in 1..=4 {
        sender.try_send(h.pid(), i).unwrap();
    }
    assert_eq!(sender.try_send(h.pid(), 5), Err(SendError::Full(5)));
    // A pass delivers two into the inbox, which is full then; the other two
    // stay in flight, so two more fit.
    let _ = sched.update();
    assert_eq!(sched.inbox_len(h.pid()), Some(2));
    sender.try_send(h.pid(), 5).unwrap();
    sender.try_send(h.pid(), 6).unwrap();
    assert_eq!(sender.try_send(h.pid(), 7), Err(SendError::Full(7)));
    drop(sender);
    // The process reads: everything accepted arrives, in order.
    clock.advance(Duration::from_secs(1));
    sched.run_until_idle();
    assert_eq!(sched.result(&h), Some(Ok(vec![1, 2, 3, 4, 5, 6])));
}

#[test]
fn mail_to_a_pid_with_no_process_is_kept_undelivered() {
    let mut sched: SimpleScheduler<u64> = SimpleScheduler::new();
    let sender = sched.sender();
    sender.try_send(Pid(42), 7).unwrap();
    let _ = sched.update();
    let kept = sched.take_undelivered();
    assert_eq!(kept.len(), 1);
    assert_eq!(
        (kept[0].from, kept[0].to, kept[0].reason, kept[0].msg),
        (None, Some(Pid(42)), UndeliveredReason::UnknownPid, 7)
    );
}

#[test]
fn a_reject_inbox_keeps_mail_it_refuses() {
    let t = Template::new("r", |ctx: &mut Ctx<u64>, _: ()| {
        ctx.select(|m| *m == 99);
    })
    .capacity(1)
    .overflow(Overflow::Reject);
    let mut sched = SimpleScheduler::new();
    let h = sched.spawn(&t, ()).unwrap();
    let sender = sched.sender();
    sender.try_send(h.pid(), 1).unwrap();
    sender.try_send(h.pid(), 2).unwrap();
    let _ = sched.update();
    let kept = sched.take_undelivered();
    assert_eq!(kept.len(), 1);
    assert_eq!(
        (kept[0].reason, kept[0].msg),
        (UndeliveredReason::Rejected, 2)
    );
}

#[test]
fn sends_after_the_scheduler_is_dropped_fail_with_the_message() {
    let mut sched: SimpleScheduler<String> = SimpleScheduler::new();
    let sender = sched.sender();
    assert!(!sender.is_closed());
    drop(sched);
    assert!(sender.is_closed());
    assert_eq!(
        sender.try_send(Pid(0), "late".to_string()),
        Err(SendError::Closed("late".to_string()))
    );
    assert_eq!(
        sender.send_blocking(Pid(0), "late".to_string()),
        Err(SendError::Closed("late".to_string()))
    );
}

/// Counts the polls of a future.
struct Counted<F> {
    inner: Pin<Box<F>>,
    polls: Arc<AtomicUsize>,
}

impl<F: Future> Future for Counted<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.polls.fetch_add(1, Ordering::SeqCst);
        self.inner.as_mut().poll(cx)
    }
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn run_awaits_timers_without_busy_polling() {
    let sleeper = Template::new("sleeper", |ctx: &mut Ctx<u64>, _: ()| {
        for _ in 0..3 {
            ctx.sleep(Duration::from_millis(20));
        }
        3u32
    });
    let mut sched = SimpleScheduler::new();
    let h = sched.spawn(&sleeper, ()).unwrap();
    let polls = Arc::new(AtomicUsize::new(0));
    let turns = current_thread().block_on(Counted {
        inner: Box::pin(sched.run()),
        polls: polls.clone(),
    });
    assert_eq!(turns, 4);
    assert_eq!(sched.result(&h), Some(Ok(3)));
    // One poll to start, one per timer (a spurious wake or two at most): not
    // a poll per pass of a busy loop.
    let polls = polls.load(Ordering::SeqCst);
    assert!((4..=8).contains(&polls), "{polls} polls");
}

#[test]
fn async_senders_wait_for_room_and_the_run_ends_when_they_are_gone() {
    let rt = current_thread();
    let local = tokio::task::LocalSet::new();
    let got = local.block_on(&rt, async {
        let summer = Template::new("summer", |ctx: &mut Ctx<u64>, n: u64| {
            (0..n).map(|_| ctx.receive()).sum::<u64>()
        })
        .capacity(4);
        let mut sched = SimpleScheduler::new();
        let h = sched.spawn(&summer, 3_000).unwrap();
        let pid = h.pid();
        let feeders: Vec<_> = (0..3u64)
            .map(|_| {
                let sender = sched.sender_with_capacity(8);
                tokio::task::spawn_local(async move {
                    for i in 1..=1_000 {
                        sender.send(pid, i).await.unwrap();
                    }
                })
            })
            .collect();
        sched.run().await;
        for f in feeders {
            f.await.unwrap();
        }
        sched.result(&h)
    });
    assert_eq!(got, Some(Ok(3 * 500_500)));
}

#[test]
fn effect_futures_of_tokio_run_inside_the_async_run() {
    let rt = current_thread();
    let t = Template::new("io", |ctx: &mut Ctx<u64>, _: ()| {
        let (tx, rx) = tokio::sync::oneshot::channel::<u64>();
        ctx.effect(|| {
            // Detached: the task runs on, and the process awaits its answer.
            drop(tokio::task::spawn_local(async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                tx.send(5).unwrap();
            }));
        });
        let n: Result<u64, tokio::sync::oneshot::error::RecvError> = ctx.effect_future(rx);
        n.unwrap() + 1
    });
    let local = tokio::task::LocalSet::new();
    let result = local.block_on(&rt, async {
        let mut sched = SimpleScheduler::new();
        let h = sched.spawn(&t, ()).unwrap();
        sched.run().await;
        sched.result(&h)
    });
    assert_eq!(result, Some(Ok(6)));
}

#[test]
fn run_is_cancel_safe_between_passes() {
    let rt = current_thread();
    let mut sched = SimpleScheduler::new();
    let h = sched.spawn(&collector(), 2).unwrap();
    let sender = sched.sender();
    rt.block_on(async {
        // Nothing to do yet: the run waits for mail; a timeout drops it.
        let waited = tokio::time::timeout(Duration::from_millis(20), sched.run()).await;
        assert!(waited.is_err());
    });
    sender.try_send(h.pid(), 1).unwrap();
    sender.try_send(h.pid(), 2).unwrap();
    drop(sender);
    rt.block_on(sched.run());
    assert_eq!(sched.result(&h), Some(Ok(vec![1, 2])));
}

#[test]
fn mail_to_a_durable_scheduler_is_journaled_and_survives_a_crash() {
    let dir = tempfile::TempDir::new().unwrap();
    let open = || {
        chronoflow::DurableScheduler::builder()
            .register(&collector())
            .open(dir.path())
            .unwrap()
            .0
    };
    {
        let mut sched = open();
        let h = sched.spawn(&collector(), 3).unwrap();
        let sender = sched.sender();
        let t = thread::spawn(move || {
            sender.send_blocking(h.pid(), 1).unwrap();
            sender.send_blocking(h.pid(), 2).unwrap();
        });
        t.join().unwrap();
        // The async run delivers (and journals) the mail, then ends: the
        // sender is gone.
        current_thread().block_on(sched.run()).unwrap();
    } // crash
    let mut sched = open();
    let sender = sched.sender();
    sender.try_send(Pid(0), 3).unwrap();
    drop(sender);
    current_thread().block_on(sched.run()).unwrap();
    assert_eq!(sched.result_of::<Vec<u64>>(Pid(0)), Some(Ok(vec![1, 2, 3])));
}

/// A message whose `Clone` panics when `Clone` is asked for a 13.
#[derive(Debug, PartialEq)]
struct Touchy(u64);
impl Clone for Touchy {
    fn clone(&self) -> Self {
        assert!(self.0 != 13, "Touchy(13) cannot be cloned");
        Touchy(self.0)
    }
}

#[test]
fn a_panicking_clone_during_mail_delivery_loses_that_message_alone() {
    // Mail to a parent is cloned for its child: the clone of 13 panics. Before
    // the fix the postbox was dropped while unwinding: the mail closed, the
    // parked messages were dropped, and the panic left `update` as the
    // scheduler's own.
    let child = Template::new("child", |ctx: &mut Ctx<Touchy>, _: ()| ctx.receive().0);
    let parent = Template::new("parent", move |ctx: &mut Ctx<Touchy>, _: ()| {
        let c = ctx.spawn(&child, ()).unwrap();
        ctx.receive().0 + ctx.join(c).unwrap()
    });
    let slow = Template::new("slow", |ctx: &mut Ctx<Touchy>, _: ()| {
        ctx.sleep(Duration::from_secs(1));
        ctx.receive().0 + ctx.receive().0
    })
    .capacity(1);
    let clock = ManualClock::new(Time(0));
    let mut sched = SimpleScheduler::new();
    sched.set_clock(clock.clone());
    let p = sched.spawn(&parent, ()).unwrap();
    let s = sched.spawn(&slow, ()).unwrap();
    sched.run_until_idle();
    let sender = sched.sender_with_capacity(8);
    sender.try_send(s.pid(), Touchy(1)).unwrap();
    sender.try_send(s.pid(), Touchy(2)).unwrap(); // parked: the inbox holds one
    let _ = sched.update();
    sender.try_send(p.pid(), Touchy(13)).unwrap();
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sched.update()));
    let payload = run.expect_err("the Clone's panic is reported to the run's caller");
    let message = (payload.downcast_ref::<&str>().copied())
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
    assert_eq!(message, Some("Touchy(13) cannot be cloned"));
    // The mail goes on: nothing else lost, nothing closed, room given back.
    assert!(!sender.is_closed());
    sender.try_send(p.pid(), Touchy(5)).unwrap();
    drop(sender);
    clock.advance(Duration::from_secs(1));
    sched.run_until_idle();
    assert_eq!(sched.result(&s), Some(Ok(3)));
    assert_eq!(sched.result(&p), Some(Ok(10)));
}

#[test]
fn a_panicking_waker_does_not_strand_the_other_senders() {
    use std::task::{RawWaker, RawWakerVTable, Waker};
    fn vtable() -> &'static RawWakerVTable {
        &RawWakerVTable::new(
            |p| RawWaker::new(p, vtable()),
            |_| panic!("waker"),
            |_| panic!("waker"),
            |_| {},
        )
    }
    // SAFETY: the vtable's functions ignore the data pointer.
    let bad = unsafe { Waker::from_raw(RawWaker::new(std::ptr::null(), vtable())) };
    let mut sched = SimpleScheduler::new();
    let h = sched.spawn(&collector(), 2).unwrap();
    let sender = sched.sender_with_capacity(1);
    sender.try_send(h.pid(), 1).unwrap();
    // One sender waits for room with a waker that panics...
    let mut send = Box::pin(sender.send(h.pid(), 2));
    assert!(
        send.as_mut()
            .poll(&mut Context::from_waker(&bad))
            .is_pending()
    );
    drop(send);
    // ... another in a thread, blocked.
    let blocked = sender.clone();
    let pid = h.pid();
    let t = thread::spawn(move || blocked.send_blocking(pid, 3));
    // Room comes with the first delivery, which wakes both: the panic of the
    // first waker must neither escape nor keep the thread asleep (before the
    // fix it did both).
    let start = std::time::Instant::now();
    while !t.is_finished() {
        let _ = sched.update();
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the blocked sender never woke"
        );
        thread::sleep(Duration::from_millis(1));
    }
    t.join().unwrap().unwrap();
    drop(sender);
    sched.run_blocking();
    assert_eq!(sched.result(&h), Some(Ok(vec![1, 3])));
}

/// A message that carries a sender of its own scheduler (a reply address).
#[derive(Debug)]
struct Carry(#[allow(dead_code)] Sender<Carry>, Arc<AtomicUsize>);
impl Drop for Carry {
    fn drop(&mut self) {
        self.1.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn mail_still_queued_is_dropped_with_the_scheduler() {
    // Before: the queue lived in the senders' shared state, so a queued
    // message holding a sender kept itself alive forever.
    let drops = Arc::new(AtomicUsize::new(0));
    let mut sched: SimpleScheduler<Carry> = SimpleScheduler::new();
    let sender = sched.sender();
    sender
        .try_send(Pid(1), Carry(sender.clone(), drops.clone()))
        .unwrap();
    drop(sched);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    assert!(sender.is_closed());
}

/// A message whose `Serialize` fails for 666: journaling it stops a durable run.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
struct Unjournalable(u64);
impl serde::Serialize for Unjournalable {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 == 666 {
            return Err(serde::ser::Error::custom("666 cannot be journaled"));
        }
        s.serialize_newtype_struct("Unjournalable", &self.0)
    }
}

#[test]
fn mail_to_a_stopped_durable_scheduler_is_refused_and_what_was_queued_is_kept() {
    // Before: once the run stopped on a journal error, mail was still taken,
    // never delivered nor returned, and `send_blocking` waited for good.
    let dir = tempfile::TempDir::new().unwrap();
    let t = Template::new("t", |ctx: &mut Ctx<Unjournalable>, _: ()| ctx.receive().0);
    let (mut sched, _) = chronoflow::DurableScheduler::builder()
        .register(&t)
        .open(dir.path())
        .unwrap();
    let h = sched.spawn(&t, ()).unwrap();
    let sender = sched.sender_with_capacity(4);
    sender.try_send(h.pid(), Unjournalable(666)).unwrap();
    sender.try_send(h.pid(), Unjournalable(5)).unwrap();
    assert!(sched.update().is_err());
    assert!(sched.is_stopped());
    assert!(sender.is_closed());
    assert_eq!(
        sender.try_send(h.pid(), Unjournalable(6)),
        Err(SendError::Stopped(Unjournalable(6)))
    );
    assert_eq!(
        sender.send_blocking(h.pid(), Unjournalable(7)),
        Err(SendError::Stopped(Unjournalable(7)))
    );
    let kept: Vec<_> = sched
        .take_undelivered()
        .into_iter()
        .map(|u| (u.to, u.reason, u.msg))
        .collect();
    assert_eq!(
        kept,
        [(Some(h.pid()), UndeliveredReason::Stopped, Unjournalable(5))]
    );
}

#[test]
fn send_blocking_that_would_wait_on_the_schedulers_thread_fails_the_process_instead_of_hanging() {
    let mut sched = SimpleScheduler::new();
    let idle = sched.spawn(&collector(), 10).unwrap();
    let sender = sched.sender_with_capacity(1);
    let idle_pid = idle.pid();
    let t = Template::new("blocker", move |_: &mut Ctx<u64>, _: ()| {
        sender.send_blocking(idle_pid, 1).unwrap();
        sender.send_blocking(idle_pid, 2).unwrap(); // the mail is full
    });
    let h = sched.spawn(&t, ()).unwrap();
    sched.run_until_idle();
    match sched.result(&h) {
        Some(Err(chronoflow::ExitError::Failed(m))) => assert!(m.contains("own thread"), "{m}"),
        other => panic!("{other:?}"),
    }
}
