//! What one core sends another: messages, spawns, and the two notices of
//! back-pressure across cores.

use crate::error::SpawnError;
use crate::kernel::Kernel;
use crate::kernel::remote::Job;
use crate::runtime::migrate::Moving;
use crate::signal::Pid;

/// Makes a process with the pid reserved for it, on its core's kernel.
pub(crate) type Make<M> = Box<dyn FnOnce(&mut Kernel<M, M>) -> Result<(), SpawnError> + Send>;

/// One item of a batch from one core (or from outside) to another.
pub(crate) enum Envelope<M> {
    /// A message for `to`, from process `from` (`None`: from outside).
    Msg { from: Option<Pid>, to: Pid, msg: M },
    /// Make a process with the reserved pid `pid`.
    Spawn { pid: Pid, make: Make<M> },
    /// To `sender`'s core: `sender`'s message found the inbox of `by` full,
    /// and waits there; `sender` waits for room before its next send to
    /// another core.
    Blocked { sender: Pid, by: Pid },
    /// To `sender`'s core: what `sender` had waiting for room in `by`'s
    /// inbox went in.
    Room { sender: Pid, by: Pid },
    /// A layer's work for the core of `pid` (the toolkit's half of a link
    /// or a monitor across cores, the end of a process they tie to): run
    /// here, or sent on after `pid` if it moved.
    Run { pid: Pid, job: Job<M, M> },
    /// Just before a `Run` in the same batch: that job comes behind the
    /// messages of `from` to its pid
    /// ([`Kernel::run_behind`](crate::kernel::Kernel::run_behind)). (A
    /// field of `Run` would make every envelope 8 bytes larger: 40, not 32,
    /// for a message of a word.)
    Behind { from: Pid },
    /// A process moved here (see `migrate.rs`).
    Migrate(Box<Moving<M>>),
    /// Down the line of a moving process's cores, back to where it waits.
    Fence { pid: Pid },
    /// Down the line of a moved process that ended: forget where it went.
    Forget { pid: Pid },
}

/// Envelopes travel in batches: one queue push, and at most one wake-up, for
/// many messages.
pub(crate) type Batch<M> = Vec<Envelope<M>>;
