//! [`Joiner`]: the result of a process spawned on a runtime, for a thread
//! outside it.

use std::fmt;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::error::ExitError;
use crate::signal::Pid;

/// What a joined process gave: its result, or why it had none.
type Outcome<R> = Result<R, ExitError>;

struct Slot<R> {
    value: Mutex<Option<Option<Outcome<R>>>>,
    cond: Condvar,
}

/// The result of a process that a [`Runtime`](crate::runtime::Runtime) made
/// for a thread outside it
/// ([`RuntimeHandle::spawn_joinable`](crate::runtime::RuntimeHandle::spawn_joinable)).
/// `Send`: wait for it on any thread.
pub struct Joiner<R> {
    pid: Pid,
    slot: Arc<Slot<R>>,
}

/// The core's end of a [`Joiner`]: gives the result; dropped without giving
/// one (the spawn failed, or the runtime stopped before the process ended),
/// it tells the joiner that none will come.
pub(crate) struct Fill<R> {
    slot: Arc<Slot<R>>,
}

pub(crate) fn pair<R>(pid: Pid) -> (Joiner<R>, Fill<R>) {
    let slot = Arc::new(Slot {
        value: Mutex::new(None),
        cond: Condvar::new(),
    });
    (
        Joiner {
            pid,
            slot: slot.clone(),
        },
        Fill { slot },
    )
}

impl<R> Fill<R> {
    pub(crate) fn give(self, outcome: Outcome<R>) {
        self.set(Some(outcome));
    }

    fn set(&self, outcome: Option<Outcome<R>>) {
        let mut value = self.slot.value.lock().unwrap_or_else(|e| e.into_inner());
        if value.is_none() {
            *value = Some(outcome);
        }
        drop(value);
        self.slot.cond.notify_all();
    }
}

impl<R> Drop for Fill<R> {
    fn drop(&mut self) {
        // (No-op once given.)
        self.set(None);
    }
}

/// Why a [`Joiner`] has no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinFailed {
    /// The process ended without a result.
    #[error(transparent)]
    Exited(#[from] ExitError),
    /// The process was never made (its spawn failed on its core: see the
    /// runtime's incidents), or the runtime stopped and dropped it unended.
    #[error("the process was not made, or the runtime dropped it")]
    Lost,
    /// [`Joiner::join_timeout`]: not yet ended.
    #[error("the process has not ended yet")]
    Timeout,
}

impl<R> Joiner<R> {
    /// The process's pid.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Blocks the thread until the process ends; its result.
    pub fn join(self) -> Result<R, JoinFailed> {
        let mut value = self.slot.value.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(outcome) = value.take() {
                return Self::outcome(outcome);
            }
            value = self
                .slot
                .cond
                .wait(value)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// [`join`](Self::join), waiting at most `timeout`
    /// ([`JoinFailed::Timeout`]: try again later).
    pub fn join_timeout(&mut self, timeout: Duration) -> Result<R, JoinFailed> {
        let deadline = Instant::now() + timeout;
        let mut value = self.slot.value.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(outcome) = value.take() {
                // (A second call after this one says `Lost`.)
                *value = Some(None);
                return Self::outcome(outcome);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(JoinFailed::Timeout);
            }
            value = self
                .slot
                .cond
                .wait_timeout(value, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn outcome(outcome: Option<Outcome<R>>) -> Result<R, JoinFailed> {
        match outcome {
            Some(Ok(r)) => Ok(r),
            Some(Err(e)) => Err(JoinFailed::Exited(e)),
            None => Err(JoinFailed::Lost),
        }
    }
}

impl<R> fmt::Debug for Joiner<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Joiner({})", self.pid)
    }
}
