//! Erlang-style message-passing processes on stackful coroutines.
#![warn(missing_docs)]

mod context;
mod error;
mod inbox;
mod kernel;
mod process;
mod scheduler;
mod signal;
mod stack;
mod template;

pub use context::{Child, Ctx};
pub use error::{ExitError, JoinError, ProcessError, PushError, SendError, SpawnError, StartError};
pub use inbox::{DEFAULT_CAPACITY, Overflow};
pub use kernel::{DEFAULT_BUDGET, Status, Undelivered, UndeliveredReason, Wait};
pub use process::Process;
pub use scheduler::{Handle, Pass, SimpleScheduler};
pub use signal::{
    DropReason, Exit, Payload, Pid, Signal, SignalKind, SignalSink, SignalType, Value,
};
pub use template::{DEFAULT_STACK_SIZE, Step, Template, Transition};
