//! What one asks a supervisor (OTP's `supervisor:which_children/1`,
//! `count_children/1`, `start_child/2`, `terminate_child/2`,
//! `restart_child/2`, `delete_child/2`), as typed requests: send them with
//! [`Ctx::request`](crate::Ctx::request) from a process, or
//! [`SimpleScheduler::request`](crate::SimpleScheduler::request) from outside.
//! OTP's supervisor calls wait forever: pass `None` as the timeout to do the
//! same.

use std::fmt;
use thiserror::Error;

use crate::error::SpawnError;
use crate::otp::registry::RegisterError;
use crate::otp::request::RequestType;
use crate::otp::supervisor::spec::{ChildKind, ChildSpec};
use crate::reason::Reason;
use crate::signal::Pid;

/// Lists the children, in start order (OTP's `which_children/1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WhichChildren;

impl RequestType for WhichChildren {
    type Reply = Vec<ChildInfo>;
}

/// Counts the children (OTP's `count_children/1`, with the restarts made).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CountChildren;

impl RequestType for CountChildren {
    type Reply = ChildCounts;
}

/// Starts a child of a [`DynamicSupervisor`](super::DynamicSupervisor) with
/// these arguments (OTP's `start_child/2` on a `simple_one_for_one`
/// supervisor): its pid. `A` must be the supervisor's argument type: another
/// is refused ([`CallError::Unhandled`](crate::CallError::Unhandled)).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StartChild<A>(pub A);

impl<A: 'static> RequestType for StartChild<A> {
    type Reply = Result<Pid, ChildError>;
}

/// Adds a child to a static [`Supervisor`](super::Supervisor) and starts it,
/// after the others (OTP's `start_child/2` with a child spec). `M` must be the
/// scheduler's message type.
pub struct AddChild<M>(pub ChildSpec<M>);

impl<M: 'static> RequestType for AddChild<M> {
    type Reply = Result<Pid, ChildError>;
}

impl<M> fmt::Debug for AddChild<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AddChild").field(&self.0).finish()
    }
}

/// A child, by id (static supervisors) or by pid (dynamic ones, OTP's
/// `terminate_child/2` on `simple_one_for_one`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ChildRef {
    /// The id of its spec.
    Id(String),
    /// Its pid.
    Pid(Pid),
}

impl From<&str> for ChildRef {
    fn from(id: &str) -> ChildRef {
        ChildRef::Id(id.to_string())
    }
}

impl From<Pid> for ChildRef {
    fn from(pid: Pid) -> ChildRef {
        ChildRef::Pid(pid)
    }
}

/// Stops a child as its [`Shutdown`](super::Shutdown) says, and does not
/// restart it (OTP's `terminate_child/2`). A static child keeps its spec
/// (restart it with [`RestartChild`]) unless it is temporary; a dynamic one
/// is forgotten. A child waiting for its restart (backoff) is not restarted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TerminateChild(pub ChildRef);

impl RequestType for TerminateChild {
    type Reply = Result<(), ChildError>;
}

/// Starts again a static child that was terminated (OTP's `restart_child/2`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RestartChild(pub String);

impl RequestType for RestartChild {
    type Reply = Result<Pid, ChildError>;
}

/// Forgets the spec of a static child that was terminated (OTP's
/// `delete_child/2`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeleteChild(pub String);

impl RequestType for DeleteChild {
    type Reply = Result<(), ChildError>;
}

/// A child as [`WhichChildren`] lists it (OTP's `{Id, Child, Type, Modules}`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChildInfo {
    /// Its spec's id (`None` for the children of a dynamic supervisor, as
    /// OTP's `undefined`).
    pub id: Option<String>,
    /// Its process, or why there is none.
    pub child: ChildState,
    /// Worker or supervisor.
    pub kind: ChildKind,
}

/// Where a child is (OTP's `Child :: pid() | restarting | undefined`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ChildState {
    /// Running as this process.
    Running(Pid),
    /// Ended; its restart waits (a backoff, or a start that failed and is to
    /// be tried again).
    Restarting,
    /// Not running, and not to be restarted (terminated by request, or ended
    /// normally as a transient child).
    Undefined,
}

/// What [`CountChildren`] answers (OTP's `count_children/1`, plus the
/// restarts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct ChildCounts {
    /// Children, running or not (OTP's `specs`; for a dynamic supervisor, its
    /// children).
    pub specs: usize,
    /// Children running now (OTP's `active`).
    pub active: usize,
    /// Children that are supervisors, running or not.
    pub supervisors: usize,
    /// Children that are workers, running or not.
    pub workers: usize,
    /// Restarts since the supervisor started (each counted in its restart
    /// intensity, failed ones included).
    pub restarts: u64,
}

/// Why a request about a child failed (OTP's `{error, _}` answers).
#[derive(Debug, Error, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ChildError {
    /// No such child (OTP's `not_found`).
    #[error("no such child")]
    NotFound,
    /// The child is running (OTP's `running`): terminate it first.
    #[error("the child is running")]
    Running,
    /// The child waits for its restart (OTP's `restarting`).
    #[error("the child is restarting")]
    Restarting,
    /// A child with this id exists (OTP's `already_present`, or
    /// `already_started` when it runs).
    #[error("a child with id {0:?} exists")]
    AlreadyPresent(String),
    /// A dynamic supervisor has its most children already (Elixir's
    /// `{:error, :max_children}`).
    #[error("the supervisor has its most children already")]
    MaxChildren,
    /// Not for this kind of supervisor (OTP's `simple_one_for_one` error: ids
    /// on a dynamic supervisor, or a dynamic start on a static one).
    #[error("not for this kind of supervisor")]
    WrongKind,
    /// The spec is invalid for this supervisor.
    #[error("invalid child spec: {0}")]
    Spec(String),
    /// The child could not be spawned (its text).
    #[error("the child could not be spawned: {0}")]
    Spawn(String),
    /// Its stable name could not be registered.
    #[error("the child's name could not be registered: {0}")]
    Name(RegisterError),
    /// The child (a supervisor) ended before it had started its own
    /// children (OTP: its `start_link` returned an error), for this reason.
    #[error("the child ended as it started: {0}")]
    Failed(Reason),
}

impl From<SpawnError> for ChildError {
    fn from(e: SpawnError) -> ChildError {
        ChildError::Spawn(e.to_string())
    }
}
