//! Typed errors. Every error that concerns a message gives the message back.

use std::io;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::signal::{Pid, Value};

/// A message that could not be sent; the message is inside.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SendError<M> {
    /// The destination's inbox is full (policy `Backoff` or `Reject`).
    #[error("the inbox is full")]
    Full(M),
    /// No live process has this pid.
    #[error("no live process has pid {0}")]
    UnknownPid(Pid, M),
    /// The route gave no destination.
    #[error("the message has no route")]
    NoRoute(M),
    /// The durable scheduler's run stopped on a journal error: nothing is
    /// delivered or journaled any more.
    #[error("the scheduler stopped on a journal error")]
    Stopped(M),
    /// A [`Sender`](crate::Sender)'s scheduler is gone (dropped).
    #[error("the scheduler is gone")]
    Closed(M),
    /// No process is registered under this name (see
    /// [`Ctx::register`](crate::Ctx::register)).
    #[error("no process is registered as {0:?}")]
    UnknownName(String, M),
}

impl<M> SendError<M> {
    /// The message that was not sent.
    pub fn into_inner(self) -> M {
        match self {
            SendError::Full(m)
            | SendError::UnknownPid(_, m)
            | SendError::NoRoute(m)
            | SendError::Stopped(m)
            | SendError::Closed(m)
            | SendError::UnknownName(_, m) => m,
        }
    }
}

/// A process could not be created.
#[derive(Debug, Error)]
pub enum SpawnError {
    /// No stack could be mapped for it.
    #[error("cannot allocate a process stack: {0}")]
    Stack(#[source] io::Error),
    /// Its template's stack size is too large to map (rounded up to whole pages,
    /// with its guard page, it does not fit the address space).
    #[error("stack size {0} is too large")]
    StackSize(usize),
    /// No pid is left: `u64::MAX` was handed out (to a standalone process's root,
    /// or one of its descendants).
    #[error("no pid is left: u64::MAX was handed out")]
    PidsExhausted,
    /// A durable scheduler cannot journal it: its template is not registered (or
    /// the arguments are not of the registered template's type).
    #[error("template {0:?} is not registered with this durable scheduler")]
    Unregistered(String),
    /// The durable scheduler's run stopped on a journal error.
    #[error("the scheduler stopped on a journal error")]
    Stopped,
    /// A durable scheduler cannot journal a stackless process (its template is
    /// named): stackless processes run on simple schedulers only.
    #[error("stackless process {0:?} cannot run on a durable scheduler")]
    NotDurable(String),
    /// The scheduler is shutting down
    /// ([`SimpleScheduler::shutdown`](crate::SimpleScheduler::shutdown)).
    #[error("the scheduler is shutting down")]
    ShuttingDown,
    /// A placed spawn ([`Ctx::spawn_at`](crate::Ctx::spawn_at)) could not be
    /// placed: a core that does not exist, or a scheduler that cannot take
    /// it (a durable one).
    #[error("cannot place the process: {0}")]
    Unplaceable(String),
}

/// A process could not be started: by a scheduler's `start`, or a standalone
/// [`Process::start`](crate::Process::start) (which gives only
/// [`AlreadyStarted`](Self::AlreadyStarted)).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum StartError {
    /// No process has this pid (or it ended and its result was taken).
    #[error("no process has pid {0}")]
    UnknownPid(Pid),
    /// The durable scheduler's run stopped on a journal error.
    #[error("the scheduler stopped on a journal error")]
    Stopped(Pid),
    /// The process was started before (it may have ended since).
    #[error("process {0} is already started")]
    AlreadyStarted(Pid),
}

/// Why a process ended without a result: the error of its result
/// (`Result<R, ExitError>`), and of the [`Exit`](crate::Exit) its STOP signal
/// records.
#[derive(Debug, Error, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExitError {
    /// It failed: the panic message, or why it was failed (unjoined children).
    #[error("process failed: {0}")]
    Failed(String),
    /// It was stopped from outside, for this reason (for example its parent
    /// ended, or it got the exit signal [`Reason::Kill`](crate::Reason::Kill):
    /// OTP's `killed`).
    #[error("process killed: {0}")]
    Killed(String),
    /// It was shut down (OTP's `shutdown` and `{shutdown, Term}`): an orderly
    /// stop asked of it, by a supervisor say. Transient children are not
    /// restarted after it.
    #[error("process shut down{}", .0.as_ref().map(|v| format!(": {v:?}")).unwrap_or_default())]
    Shutdown(Option<Value>),
    /// It ended with a reason of the user's own (an exit signal, or
    /// [`Ctx::exit`](crate::Ctx::exit)).
    #[error("process exited: {0:?}")]
    Custom(Value),
    /// It got an exit signal about a process that did not exist (OTP's
    /// `noproc`: a link to a pid that had already ended).
    #[error("no such process")]
    NoProc,
}

/// A join that gave no result.
#[derive(Debug, Error, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum JoinError {
    /// The child ended without a result.
    #[error(transparent)]
    Exited(#[from] ExitError),
    /// The pid is not an unjoined child of this process.
    #[error("{0} is not an unjoined child of this process")]
    NotAChild(Pid),
    /// The handle's result type is not the child's (a handle deserialized with the
    /// wrong type); the child stays unjoined.
    #[error("the handle's result type does not match child {0}'s")]
    ResultType(Pid),
}

/// A standalone process refused a message; the message is inside.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PushError<I> {
    /// The process has not been started.
    #[error("the process is not started")]
    NotStarted(I),
    /// The process has stopped.
    #[error("the process has stopped")]
    Stopped(I),
    /// The process's inbox (or a child's) is full.
    #[error("the inbox is full")]
    Full(I),
}

/// An at-most-once effect that may or may not have happened: the program stopped
/// after journaling its intent and before journaling its result. It is not run
/// again; what to do (check, compensate, retry) is the process's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error, Serialize, Deserialize)]
#[error("the effect was interrupted by a crash: it may or may not have happened")]
pub struct Interrupted;
