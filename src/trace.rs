//! `tracing` events, with feature `tracing` only: without it the macros expand to
//! nothing, so that no code at all is generated for them (their arguments are not
//! even evaluated).
//!
//! The events are at cold points (a process's start and end, a sender's back-off,
//! a dropped or undelivered message, a journal commit, a recovery), never once per
//! message or per turn.

/// `tracing::event!` with feature `tracing`; nothing without it.
macro_rules! trace_event {
    ($($t:tt)*) => {
        #[cfg(feature = "tracing")]
        ::tracing::event!($($t)*);
    };
}
pub(crate) use trace_event;

/// The statements given, with feature `tracing`; nothing without it (for what an
/// event needs computed first).
#[allow(unused_macros)]
macro_rules! traced {
    ($($t:tt)*) => {
        #[cfg(feature = "tracing")]
        {
            $($t)*
        }
    };
}
#[allow(unused_imports)]
pub(crate) use traced;

#[cfg(feature = "tracing")]
use crate::error::ExitError;
#[cfg(feature = "tracing")]
use crate::signal::Pid;

/// A process ended: `stop`, with how (`normal`, `failed` with the message, or
/// `killed` with the reason). A failure is a warning.
#[cfg(feature = "tracing")]
#[cold]
pub(crate) fn stop<R>(pid: Pid, name: &str, result: &Result<R, ExitError>) {
    match result {
        Ok(_) => tracing::debug!(pid = pid.0, name, exit = "normal", "stop"),
        Err(ExitError::Failed(reason)) => {
            tracing::warn!(
                pid = pid.0,
                name,
                exit = "failed",
                reason = &**reason,
                "stop"
            )
        }
        Err(e @ (ExitError::Shutdown(_) | ExitError::Custom(_) | ExitError::NoProc)) => {
            tracing::debug!(
                pid = pid.0,
                name,
                exit = "exited",
                reason = %crate::Reason::from(e.clone()),
                "stop"
            )
        }
        Err(ExitError::Killed(reason)) => {
            tracing::debug!(
                pid = pid.0,
                name,
                exit = "killed",
                reason = &**reason,
                "stop"
            )
        }
    }
}
