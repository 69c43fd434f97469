//! The journal's records: one per input of a process, postcard-encoded.

use std::panic::{AssertUnwindSafe, catch_unwind};

use serde::{Deserialize, Serialize};

use crate::clock::Time;
use crate::kernel::pass::forget_quietly;
use crate::otp::record::{NoticeRecord, OtpCall};
use crate::signal::Pid;

/// One journal record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum Record {
    /// A process was made (and, with `started`, started in the same breath: a
    /// spawn, or any child).
    Create {
        pid: Pid,
        parent: Option<Pid>,
        template: String,
        args: Vec<u8>,
        started: bool,
        /// The inbox it starts with: a child gets a copy of its parent's
        /// unconsumed messages (kept here, since the parent's own records of them
        /// may be released before the child's).
        inbox: Vec<Vec<u8>>,
    },
    Start {
        pid: Pid,
    },
    /// A message entered `to`'s inbox (and its descendants'). When a process sent
    /// it, this one record is also the sender's SEND, so that a crash cannot keep
    /// one without the other. Messages the overflow policy dropped on the way are
    /// listed with it.
    Deliver {
        to: Pid,
        msg: Vec<u8>,
        from: Option<SendStep>,
        /// The oldest message each full `DropOldest` recipient dropped for it.
        evicted: Vec<(Pid, Vec<u8>)>,
        /// The full `DropNewest` recipients, which dropped it.
        refused: Vec<Pid>,
    },
    /// A message kept undelivered; also the sender's SEND.
    Undelivered {
        from: Option<SendStep>,
        to: Option<Pid>,
        reason: u8,
        msg: Vec<u8>,
    },
    /// The owner took the undelivered messages kept so far.
    UndeliveredTaken,
    /// Pids below this were handed out (kept when older records go).
    NextPid {
        next: u64,
    },
    Evict {
        pid: Pid,
        msg: Vec<u8>,
    },
    Take {
        pid: Pid,
        step: u64,
        msg: Option<Vec<u8>>,
    },
    Use {
        pid: Pid,
        step: u64,
        result: Vec<u8>,
    },
    /// A timer armed by `sleep` or `receive_timeout`, with its deadline.
    Timer {
        pid: Pid,
        step: u64,
        deadline: Time,
    },
    /// An at-most-once effect is about to run (synced before it runs).
    Intent {
        pid: Pid,
        step: u64,
    },
    /// Recovery found an intent without a result: the effect was interrupted.
    Interrupted {
        pid: Pid,
        step: u64,
    },
    Send {
        pid: Pid,
        step: u64,
        to: Option<Pid>,
        hash: u32,
        outcome: SendOutcome,
    },
    Join {
        pid: Pid,
        step: u64,
        child: Pid,
    },
    /// A snapshot point: the new entry and its arguments, the unconsumed inbox,
    /// the unjoined children, and the next pid: the process restarts from here, and
    /// its older records are not needed any more.
    Transition {
        pid: Pid,
        parent: Option<Pid>,
        step: u64,
        template: String,
        args: Vec<u8>,
        inbox: Vec<Vec<u8>>,
        children: Vec<Pid>,
        next_pid: u64,
    },
    Stop {
        pid: Pid,
        exit: StopRecord,
    },
    /// The owner took a top-level process's result: its records are not needed.
    Reaped {
        pid: Pid,
    },
    /// The fingerprint of the serde layout of the values of role `what` (see
    /// `layout.rs`) that the records after it hold.
    Layout {
        what: String,
        fingerprint: u32,
    },
    // The OTP toolkit's records (appended: the records above keep their
    // encoding).
    /// A call of the toolkit by `pid` (`None`: by the owner), with its
    /// answer, and the message it took or sent, encoded.
    Otp {
        pid: Option<Pid>,
        step: u64,
        call: OtpCall,
        msg: Option<Vec<u8>>,
    },
    /// A process made by `by`'s `spawn_link` or `spawn_monitor` (`call`, whose
    /// answer names it): its creation and that call in one record.
    SpawnTied {
        pid: Pid,
        template: String,
        args: Vec<u8>,
        by: Pid,
        step: u64,
        call: OtpCall,
    },
    /// A timed send fired: its message (`None`: a timeout notice) went to
    /// `to` (if alive), which dropped the oldest message of its full
    /// `DropOldest` inbox (`evicted`) or refused it (`refused`: a full
    /// `DropNewest` one). Whole in itself: the record that armed it may have
    /// gone with its segment.
    TimerFired {
        timer: u64,
        to: Pid,
        msg: Option<Vec<u8>>,
        evicted: Option<Vec<u8>>,
        refused: bool,
    },
    /// The toolkit's whole state: its tables, timed sends, exit signals to
    /// apply, and each process's system messages. The records of the toolkit
    /// before it are not needed.
    OtpState(Box<OtpState>),
    /// A [`Transition`](Record::Transition) of a process with system messages
    /// waiting: they are part of its snapshot.
    TransitionMail {
        transition: Box<Record>,
        sys: Vec<(u64, NoticeRecord)>,
    },
}

/// The toolkit's state, as an [`OtpState`](Record::OtpState) record holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub(crate) struct OtpState {
    /// Each process's entry: links, trapping, monitors held, monitors on it.
    pub(crate) entries: Vec<EntryRecord>,
    /// Names, and groups with their members in the order they joined.
    pub(crate) names: Vec<(String, Pid)>,
    pub(crate) groups: Vec<(String, Vec<Pid>)>,
    pub(crate) next_ref: u64,
    /// Timed sends armed: id, deadline, process, message (`None`: a timeout
    /// notice).
    pub(crate) timers: Vec<(u64, Time, Pid, Option<Vec<u8>>)>,
    pub(crate) next_timer: u64,
    /// Exit signals waiting to be applied.
    pub(crate) kills: Vec<(Pid, crate::error::ExitError)>,
    /// System messages waiting, by process: each with the number of inbox
    /// messages ahead of it.
    pub(crate) sys: Vec<(Pid, Vec<(u64, NoticeRecord)>)>,
}

/// One process's entry in the toolkit's tables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct EntryRecord {
    pub(crate) pid: Pid,
    pub(crate) links: Vec<Pid>,
    pub(crate) trap_exit: bool,
    pub(crate) monitors: Vec<(u64, Pid)>,
    pub(crate) watchers: Vec<(u64, Pid)>,
    /// The process that started it linked.
    pub(crate) parent: Option<Pid>,
}

/// The sending side of a delivery: which process, at which step, and the hash of
/// the message as it checks it in replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SendStep {
    pub(crate) pid: Pid,
    pub(crate) step: u64,
    pub(crate) hash: u32,
}

/// How a send went, for `try_send` to give the same answer in replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum SendOutcome {
    Delivered,
    Full,
    NoRoute,
    UnknownPid,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum StopRecord {
    Normal(Vec<u8>),
    Failed(String),
    Killed(String),
    /// Any other end (a shutdown, a reason of the user's, noproc).
    Other(crate::error::ExitError),
}

impl Record {
    /// The process the record is about (the receiver, for a delivery).
    pub(crate) fn subject(&self) -> Option<Pid> {
        match self {
            Record::Create { pid, .. }
            | Record::Start { pid }
            | Record::Evict { pid, .. }
            | Record::Take { pid, .. }
            | Record::Use { pid, .. }
            | Record::Timer { pid, .. }
            | Record::Intent { pid, .. }
            | Record::Interrupted { pid, .. }
            | Record::Send { pid, .. }
            | Record::Join { pid, .. }
            | Record::Transition { pid, .. }
            | Record::Stop { pid, .. }
            | Record::Reaped { pid } => Some(*pid),
            Record::Deliver { to, .. } => Some(*to),
            Record::Otp { pid, .. } => *pid,
            Record::SpawnTied { pid, .. } => Some(*pid),
            Record::TransitionMail { transition, .. } => transition.subject(),
            Record::TimerFired { .. } | Record::OtpState(_) => None,
            Record::Undelivered { from, .. } => from.map(|f| f.pid),
            Record::UndeliveredTaken | Record::NextPid { .. } | Record::Layout { .. } => None,
        }
    }

    /// The process that sent the message a delivery or a kept message carries.
    pub(crate) fn sender(&self) -> Option<Pid> {
        match self {
            Record::Deliver { from, .. } | Record::Undelivered { from, .. } => from.map(|f| f.pid),
            _ => None,
        }
    }

    /// What the record says, in a line (for a violation report, or a tool).
    pub(crate) fn describe(&self) -> String {
        match self {
            Record::Take { msg: Some(m), .. } => format!("a receive of {} bytes", m.len()),
            Record::Take { msg: None, .. } => "a try_receive that found nothing".into(),
            Record::Use { result, .. } => format!("an effect with a {}-byte result", result.len()),
            Record::Intent { .. } => "an at-most-once effect".into(),
            Record::Timer { deadline, .. } => format!("a timer until {deadline:?}"),
            Record::Interrupted { .. } => "an interrupted at-most-once effect".into(),
            Record::Send { to, hash, .. } => format!("a send to {to:?} (hash {hash:08x})"),
            Record::Join { child, .. } => format!("a join of {child}"),
            Record::Transition { template, .. } => format!("a transition to {template}"),
            Record::Create { pid, template, .. } => format!("a spawn of {pid} ({template})"),
            Record::Start { pid } => format!("{pid} started"),
            Record::Deliver { to, msg, from, .. } => match from {
                Some(f) => format!("a message of {} bytes from {} to {to}", msg.len(), f.pid),
                None => format!("a message of {} bytes from outside to {to}", msg.len()),
            },
            Record::Undelivered { to, msg, .. } => {
                format!(
                    "a message of {} bytes to {to:?} kept undelivered",
                    msg.len()
                )
            }
            Record::UndeliveredTaken => "the undelivered messages taken".into(),
            Record::NextPid { next } => format!("pids below {next} handed out"),
            Record::Evict { pid, msg } => {
                format!(
                    "a message of {} bytes dropped from {pid}'s inbox",
                    msg.len()
                )
            }
            Record::Stop { pid, exit } => match exit {
                StopRecord::Normal(r) => format!("{pid} returned a {}-byte result", r.len()),
                StopRecord::Failed(m) => format!("{pid} failed: {m}"),
                StopRecord::Killed(m) => format!("{pid} was killed: {m}"),
                StopRecord::Other(e) => format!("{pid} ended: {e}"),
            },
            Record::Reaped { pid } => format!("{pid}'s result taken"),
            Record::Layout { what, fingerprint } => {
                format!("the layout of the {what} is {fingerprint:08x}")
            }
            Record::Otp { call, .. } => call.ask.describe(),
            Record::SpawnTied { pid, template, .. } => {
                format!("a spawn of {pid} ({template}), tied to its spawner")
            }
            Record::TimerFired { timer, .. } => format!("timer {timer} fired"),
            Record::OtpState(_) => "the toolkit's state".into(),
            Record::TransitionMail { transition, .. } => transition.describe(),
        }
    }
}

/// The reason code of a message an inbox refused (REJECT).
pub(crate) const UNDELIVERED_REJECTED: u8 = crate::kernel::UndeliveredReason::Rejected.code();

/// The postcard encoding of a value of the user's type. A `Serialize` that
/// panics is an error like one that fails: the kernel is never unwound.
pub(crate) fn encode_caught<T: Serialize>(value: &T) -> Result<Vec<u8>, postcard::Error> {
    let encoded = catch_unwind(AssertUnwindSafe(|| postcard::to_allocvec(value)));
    encoded.unwrap_or_else(|payload| {
        forget_quietly(payload);
        Err(postcard::Error::SerdeSerCustom)
    })
}
