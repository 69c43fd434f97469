//! Durable processes: a scheduler whose every input is journaled, so that after a
//! crash it rebuilds every process and carries on where it was, without repeating
//! recorded side effects.
//!
//! # What is journaled
//!
//! One record per event, postcard-encoded in a [`Journal`](crate::journal::Journal) (the embedded
//! [`FileJournal`](crate::journal::FileJournal) by default), committed once per scheduler pass
//! (and before an effect, as the [`CommitPolicy`] says):
//!
//! - a process created (its template's name and its arguments), and started;
//! - a message delivered into an inbox: one record that is also its sender's SEND
//!   (target and a hash of the message) and lists what the overflow policies
//!   dropped for it, so that a crash keeps all of it or none of it;
//! - what each process took from its inbox, each effect's result (and an
//!   at-most-once effect's intent), each timer's deadline, each join;
//! - each transition, with a snapshot: the new entry and its arguments, the
//!   unconsumed inbox, the children;
//! - how each process ended, and when the owner took its result; the messages
//!   kept undelivered, and when the owner took them;
//! - a fingerprint of the serde layout of the message type and of each
//!   template's arguments and result, so that a journal is never read with
//!   types whose bytes mean something else;
//! - each call of the OTP toolkit by a process, with its answer (`otp.rs`): a
//!   `spawn_link` with its process's creation, a timed send's firing; and the
//!   toolkit's whole state, whenever older segments may go. What a process's
//!   end tells its links and monitors follows from its STOP record.
//!
//! # Recovery
//!
//! [`DurableBuilder::open`] streams the journal, folding each record into what its
//! process was and dropping it (memory grows with what is live, not with the
//! journal), refuses every kind of damage with a typed [`RecoveryError`] (a
//! missing segment, a corrupt or misplaced record with its file and offset, a
//! record that does not decode, records of a process whose beginning is missing,
//! a type whose layout changed), and rebuilds every process at once, parents
//! before children: its inbox as it was at the crash, its children, and
//! its replay. A process re-runs from its start, or from its last transition: each
//! call of its body is served from its records (a receive gets the message it got
//! then, an effect returns its recorded result without running, a timer that ended
//! does not wait again, a send is checked, not delivered again), and when its
//! records run out it continues live. A process whose records end in STOP is
//! fast-forwarded: its result is restored without running it.
//!
//! A call that does not match the record (another kind, another target, another
//! payload or arguments) is a determinism violation: the process is held, never
//! run on with wrong state, and [`DurableScheduler::violations`] names the pid,
//! the step, what was recorded and what was emitted. The other processes continue.
//!
//! # Guarantees
//!
//! Effects are at least once: an effect's result is journaled after it runs, so a
//! crash between the two runs it again on recovery;
//! [`Ctx::effect_at_most_once`](crate::Ctx::effect_at_most_once) trades that for
//! an [`Interrupted`] answer. Under the default [`CommitPolicy::BeforeEffects`],
//! an effect runs only once every record of its process before it is durable
//! (the process waits for the pass's group commit, shared by every process
//! waiting), so a crash re-runs at most one effect per process, the one in
//! flight, and never an effect whose inputs the crash lost;
//! [`CommitPolicy::PerPass`] widens that window to a whole pass, for throughput.
//! Messages are never lost nor delivered twice across a crash: a delivery that
//! is in the journal is in the rebuilt inbox, one that is not never happened (its
//! sender sends it again when it replays past that point live). With
//! [`SyncPolicy::EveryCommit`](crate::journal::SyncPolicy), a crash loses at most
//! the last pass, and no effect acted on it. Once a journal write or sync fails,
//! nothing more runs: every process is held at its next call (no effect, no send),
//! and every later call of the scheduler returns the error.
//! Segments holding only records older than every process's restart point (its
//! creation or its last transition) are deleted, unless they hold what the owner
//! has not taken: undelivered messages, results not read.
//!
//! [`inspect`] reads a journal without a scheduler, for tools.

mod depth;
mod fold;
mod hooks;
pub mod inspect;
mod layout;
mod otp;
mod policy;
mod record;
mod recover;
mod scheduler;
mod state;

pub use crate::error::Interrupted;
pub use policy::CommitPolicy;
pub use recover::{Recovery, RecoveryError};
pub use scheduler::{DurableBuilder, DurableScheduler};
pub use state::DeterminismViolation;
