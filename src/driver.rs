//! The async driver: a scheduler's `run().await` runs passes, and between them
//! awaits the next wake-up (an effect's waker, mail from a
//! [`Sender`](crate::Sender)) or timer without blocking the thread, so that a
//! scheduler lives inside any executor (a tokio `LocalSet` or current-thread
//! runtime, `futures::executor::block_on`, ...).
//!
//! Timers need a clock that wakes the executor: the driver does not depend on any
//! executor's timer. One thread of the program (`chronoflow-timer`, started on
//! first use) sleeps until the earliest deadline of the schedulers awaiting one
//! and wakes them.

use std::collections::BTreeMap;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::{Condvar, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::kernel::pass::Idle;
use crate::kernel::time::WakeQueue;

/// What the driver drives: a scheduler, one pass at a time.
pub(crate) trait Drive {
    /// What stops a run (a durable scheduler's journal error).
    type Error;
    /// One pass: the number of turns it ran.
    fn pass(&mut self) -> Result<usize, Self::Error>;
    /// What the scheduler waits for when a pass ran nothing.
    fn idle(&self) -> Idle;
    /// Where its wake-ups come.
    fn wakes(&self) -> &WakeQueue;
}

/// Turns run before the driver yields to the executor, so that other tasks of
/// its thread (a socket's reader, say) run too.
const YIELD_AFTER_TURNS: usize = 4096;
/// Passes run before the driver yields, however few turns they ran.
const YIELD_AFTER_PASSES: usize = 64;

/// Runs `d` until nothing can come (see the schedulers' `run`). Returns the
/// number of turns run.
pub(crate) async fn run<D: Drive>(d: &mut D) -> Result<usize, D::Error> {
    let mut total = 0;
    let (mut turns, mut passes) = (0, 0);
    loop {
        let ran = d.pass()?;
        total += ran;
        if ran > 0 {
            turns += ran;
            passes += 1;
            if turns >= YIELD_AFTER_TURNS || passes >= YIELD_AFTER_PASSES {
                (turns, passes) = (0, 0);
                YieldNow(false).await;
            }
            continue;
        }
        (turns, passes) = (0, 0);
        match d.idle() {
            Idle::Done => return Ok(total),
            Idle::Wait(until) => {
                WakeUp {
                    wakes: d.wakes(),
                    deadline: until.map(|u| Instant::now() + u),
                    timer: None,
                }
                .await
            }
        }
    }
}

/// Yields once to the executor.
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Ready when something wakes the scheduler, or at `deadline`.
struct WakeUp<'a> {
    wakes: &'a WakeQueue,
    deadline: Option<Instant>,
    /// Its entry with the timer thread, while it has one.
    timer: Option<(Instant, u64)>,
}

impl Future for WakeUp<'_> {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.wakes.woken_or_register(cx.waker()) {
            return Poll::Ready(());
        }
        if let Some(deadline) = self.deadline {
            if Instant::now() >= deadline {
                return Poll::Ready(());
            }
            if let Some(key) = self.timer.take() {
                timers().cancel(key);
            }
            self.timer = Some(timers().arm(deadline, cx.waker().clone()));
        }
        Poll::Pending
    }
}

impl Drop for WakeUp<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.timer.take() {
            timers().cancel(key);
        }
    }
}

/// The program's timer thread: wakes each waker at its deadline.
struct Timers {
    state: Mutex<TimerState>,
    cond: Condvar,
}

#[derive(Default)]
struct TimerState {
    next_id: u64,
    /// By deadline, then arming order.
    due: BTreeMap<(Instant, u64), Waker>,
}

fn timers() -> &'static Timers {
    static TIMERS: OnceLock<&'static Timers> = OnceLock::new();
    TIMERS.get_or_init(|| {
        let timers: &'static Timers = Box::leak(Box::new(Timers {
            state: Mutex::default(),
            cond: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("chronoflow-timer".into())
            .spawn(move || timers.serve())
            .expect("cannot start chronoflow's timer thread");
        timers
    })
}

impl Timers {
    fn arm(&self, deadline: Instant, waker: Waker) -> (Instant, u64) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let key = (deadline, state.next_id);
        state.next_id += 1;
        state.due.insert(key, waker);
        drop(state);
        self.cond.notify_one();
        key
    }

    fn cancel(&self, key: (Instant, u64)) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.due.remove(&key);
    }

    fn serve(&self) -> ! {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let now = Instant::now();
            let wait = match state.due.first_key_value() {
                None => Duration::MAX,
                Some((&(deadline, _), _)) if deadline <= now => {
                    let (_, waker) = state.due.pop_first().expect("peeked");
                    drop(state);
                    // Outside the lock: the waker is the executor's code, whose
                    // panic must not end this thread (the other schedulers'
                    // timers would never fire).
                    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| waker.wake())) {
                        crate::kernel::pass::forget_quietly(payload);
                    }
                    state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                    continue;
                }
                Some((&(deadline, _), _)) => deadline - now,
            };
            state = if wait == Duration::MAX {
                self.cond.wait(state).unwrap_or_else(|e| e.into_inner())
            } else {
                self.cond
                    .wait_timeout(state, wait)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            };
        }
    }
}
