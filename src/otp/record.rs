//! The toolkit's calls as a journaling layer (a durable scheduler) records
//! them: what a process asked ([`Ask`]) and what it got ([`Answer`]). A
//! replayed process gets the recorded answer instead of acting again, and a
//! recovery folds each record into the tables (`table.rs`) and the system
//! queues, through the same operations the live call made. The toolkit knows
//! nothing of who records: it hands these to the kernel's hooks.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::Time;
use crate::error::ExitError;
use crate::kernel::proc::SysItem;
use crate::otp::call::{CallError, EncodedReply};
use crate::otp::mail::{Mail, MonitorRef, Notice, TimerRef};
use crate::otp::registry::RegisterError;
use crate::reason::Reason;
use crate::signal::Pid;

/// What a process asked of the toolkit (what its replay must ask again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Ask {
    TrapExit {
        on: bool,
    },
    Link {
        pid: Pid,
    },
    Unlink {
        pid: Pid,
    },
    Links,
    ExitSignal {
        to: Pid,
        reason: Reason,
    },
    Monitor {
        pid: Pid,
    },
    Demonitor {
        monitor: u64,
        flush: bool,
    },
    /// A take of mail (any of the receives); `timeout`: one that may wait
    /// until a deadline (its first record may be the deadline).
    Mail {
        timeout: bool,
    },
    /// `send_after` to `to` (its message is recorded beside).
    SendAfter {
        to: Pid,
    },
    StartTimer,
    CancelTimer {
        timer: u64,
    },
    Register {
        name: String,
        pid: Pid,
    },
    Unregister {
        name: String,
    },
    Whereis {
        name: String,
    },
    Join {
        group: String,
        pid: Pid,
    },
    Leave {
        group: String,
        pid: Pid,
    },
    Members {
        group: String,
    },
    IsAlive {
        pid: Pid,
    },
    /// `spawn_link` (`monitor: false`) or `spawn_monitor` of `template`.
    Spawn {
        template: String,
        monitor: bool,
    },
    /// A durable call of `server` begins (its monitor is its tag).
    Call {
        server: Pid,
    },
    /// The call tagged `tag` waits for its outcome (its first record may be
    /// its deadline).
    CallWait {
        tag: u64,
    },
    /// A reply to the call `tag` of `to`, encoded.
    Reply {
        to: Pid,
        tag: u64,
        value: Vec<u8>,
    },
}

/// What a call answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Answer {
    Done,
    Bool(bool),
    Pids(Vec<Pid>),
    Pid(Option<Pid>),
    /// An exit signal (a link to a process that is not alive sends one too):
    /// the caller itself ends with this.
    Ends(Option<ExitError>),
    /// A link: whether the other process was alive, and if not, whether the
    /// caller ends of it.
    Link {
        alive: bool,
        ends: Option<ExitError>,
    },
    Monitor {
        monitor: u64,
        alive: bool,
    },
    /// The mail taken (`None`: none, or the wait timed out).
    Mail(Option<Took>),
    /// The deadline of a wait for mail.
    Deadline(Time),
    /// A timer: its id, its deadline, and whether it was armed (one to a pid
    /// no process has had is dropped at once).
    Timer {
        timer: u64,
        deadline: Time,
        armed: bool,
    },
    Left(Option<Duration>),
    Register(Result<(), RegisterError>),
    Spawned {
        pid: Pid,
        monitor: Option<u64>,
    },
    /// A call began (its tag), or could not.
    Called(Result<u64, CallError>),
    /// A call's outcome: the reply, encoded, or why none came.
    Outcome(Result<Vec<u8>, CallError>),
}

/// Which piece of mail was taken: the message at `index` of the inbox (its
/// encoding is recorded beside), or the notice at `index` of the system
/// queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Took {
    Msg { index: u32 },
    Notice { index: u32, notice: NoticeRecord },
}

/// A system notice, encoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum NoticeRecord {
    Down {
        monitor: u64,
        pid: Pid,
        reason: Reason,
    },
    Exit {
        from: Pid,
        reason: Reason,
    },
    Timeout(u64),
    /// The reply to call `tag`, encoded.
    Reply {
        tag: u64,
        value: Vec<u8>,
    },
}

/// One call and its answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OtpCall {
    pub(crate) ask: Ask,
    pub(crate) answer: Answer,
}

impl NoticeRecord {
    /// The record of a notice as it waits in a system queue: `None` for one
    /// that cannot be recorded (a typed request: its body is a value of any
    /// type, in an `Rc`).
    pub(crate) fn of(notice: &Notice) -> Option<NoticeRecord> {
        Some(match notice {
            Notice::Down {
                monitor,
                pid,
                reason,
            } => NoticeRecord::Down {
                monitor: monitor.0,
                pid: *pid,
                reason: reason.clone(),
            },
            Notice::Exit { from, reason } => NoticeRecord::Exit {
                from: *from,
                reason: reason.clone(),
            },
            Notice::Timeout(t) => NoticeRecord::Timeout(t.0),
            Notice::Request(_) => return None,
        })
    }

    /// The record of a notice taken as mail (`None`: a message, or a request).
    pub(crate) fn of_mail<M>(mail: &Mail<M>) -> Option<NoticeRecord> {
        Some(match mail {
            Mail::Down {
                monitor,
                pid,
                reason,
            } => NoticeRecord::Down {
                monitor: monitor.0,
                pid: *pid,
                reason: reason.clone(),
            },
            Mail::Exit { from, reason } => NoticeRecord::Exit {
                from: *from,
                reason: reason.clone(),
            },
            Mail::Timeout(t) => NoticeRecord::Timeout(t.0),
            Mail::Msg(_) | Mail::Request(_) => return None,
        })
    }

    /// The record of an item of a system queue (`None`: one that cannot be
    /// recorded, a typed request or a reply that is not encoded) and the
    /// number of inbox messages ahead of it.
    pub(crate) fn of_item(item: &SysItem, head: u64) -> Option<(u64, NoticeRecord)> {
        let record = match item.msg.downcast_ref::<Notice>() {
            Some(notice) => NoticeRecord::of(notice)?,
            None => NoticeRecord::Reply {
                tag: item.tag,
                value: item.msg.downcast_ref::<EncodedReply>()?.0.clone(),
            },
        };
        Some((item.due.saturating_sub(head), record))
    }

    /// The item again, due when the inbox's `head_removed` reaches `due`.
    pub(crate) fn into_item(self, due: u64) -> SysItem {
        match self {
            NoticeRecord::Reply { tag, value } => SysItem {
                due,
                tag,
                msg: Box::new(EncodedReply(value)),
            },
            notice => SysItem {
                due,
                tag: 0,
                msg: notice.notice().boxed(),
            },
        }
    }

    /// Whether it is a reply (dropped where mail is read: its call is over).
    pub(crate) fn is_reply(&self) -> bool {
        matches!(self, NoticeRecord::Reply { .. })
    }

    /// The notice again (a reply is no notice: see [`into_item`](Self::into_item)).
    pub(crate) fn notice(self) -> Notice {
        match self {
            NoticeRecord::Down {
                monitor,
                pid,
                reason,
            } => Notice::Down {
                monitor: MonitorRef(monitor),
                pid,
                reason,
            },
            NoticeRecord::Exit { from, reason } => Notice::Exit { from, reason },
            NoticeRecord::Timeout(t) => Notice::Timeout(TimerRef(t)),
            NoticeRecord::Reply { tag, .. } => unreachable!("reply {tag} is not a notice"),
        }
    }

    /// Whether it is the DOWN of `monitor` (what a flushing `demonitor`
    /// removes).
    pub(crate) fn is_down_of(&self, monitor: u64) -> bool {
        matches!(self, NoticeRecord::Down { monitor: m, .. } if *m == monitor)
    }
}

impl Ask {
    /// What it is, in a few words (for a violation report).
    pub(crate) fn describe(&self) -> String {
        format!("the toolkit's {self:?}")
    }
}
