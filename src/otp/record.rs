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

use crate::kernel::SysMsg;
use crate::kernel::hooks::Codec;
use crate::kernel::proc::SysItem;
use crate::otp::call::{CallError, EncodedReply, Refused};
use crate::otp::mail::{Mail, MonitorRef, Notice, TimerRef};
use crate::otp::registry::RegisterError;
use crate::otp::request::Request;
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
    /// A durable typed request to `server`: its type's name and its body,
    /// encoded.
    Request {
        server: Pid,
        type_name: String,
        body: Vec<u8>,
    },
    /// A refusal of the request `tag` of `to`.
    Refuse {
        to: Pid,
        tag: u64,
    },
    /// Its children, listed.
    Children,
    /// A durable typed request to `to` that is no call (a server's cast or
    /// stop): its type's name and its body, encoded.
    Post {
        to: Pid,
        type_name: String,
        body: Vec<u8>,
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
    /// The refusal of request `tag`.
    Refused {
        tag: u64,
    },
    /// A durable typed request: its type's name and its body, encoded.
    Request {
        from: Pid,
        tag: u64,
        type_name: String,
        body: Vec<u8>,
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
    /// that cannot be recorded (a typed request that is not durable).
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
            Notice::Request(r) => NoticeRecord::Request {
                from: r.from(),
                tag: r.tag(),
                type_name: r.type_name().to_string(),
                body: r.encoded()?.to_vec(),
            },
        })
    }

    /// The record of a notice taken as mail (`None`: a message, or a request
    /// that is not durable).
    pub(crate) fn of_mail<M>(mail: &Mail<M>) -> Option<NoticeRecord> {
        match mail {
            Mail::Msg(_) => None,
            Mail::Down {
                monitor,
                pid,
                reason,
            } => Some(NoticeRecord::Down {
                monitor: monitor.0,
                pid: *pid,
                reason: reason.clone(),
            }),
            Mail::Exit { from, reason } => Some(NoticeRecord::Exit {
                from: *from,
                reason: reason.clone(),
            }),
            Mail::Timeout(t) => Some(NoticeRecord::Timeout(t.0)),
            Mail::Request(r) => NoticeRecord::of(&Notice::Request(r.clone())),
        }
    }

    /// The record of an item of a system queue (`None`: one that cannot be
    /// recorded, a request or a reply that is not durable) and the number of
    /// inbox messages ahead of it.
    pub(crate) fn of_item(item: &SysItem, head: u64) -> Option<(u64, NoticeRecord)> {
        let record = if let Some(notice) = item.msg.downcast_ref::<Notice>() {
            NoticeRecord::of(notice)?
        } else if item.msg.is::<Refused>() {
            NoticeRecord::Refused { tag: item.tag }
        } else {
            NoticeRecord::Reply {
                tag: item.tag,
                value: item.msg.downcast_ref::<EncodedReply>()?.0.clone(),
            }
        };
        Some((item.due.saturating_sub(head), record))
    }

    /// The item again, due when the inbox's `head_removed` reaches `due`;
    /// `None` for a request whose type `codec` does not know (or whose body
    /// does not decode).
    pub(crate) fn into_item(
        self,
        due: u64,
        codec: &dyn Fn(&str) -> Option<Codec>,
    ) -> Option<SysItem> {
        let (tag, msg): (u64, SysMsg) = match self {
            NoticeRecord::Reply { tag, value } => (tag, SysMsg::new(EncodedReply(value))),
            NoticeRecord::Refused { tag } => (tag, SysMsg::new(Refused)),
            notice => (0, notice.into_notice(codec)?.boxed()),
        };
        Some(SysItem { due, tag, msg })
    }

    /// The notice again, as mail (see [`into_item`](Self::into_item)).
    pub(crate) fn into_mail<M>(self, codec: &dyn Fn(&str) -> Option<Codec>) -> Option<Mail<M>> {
        Some(self.into_notice(codec)?.into_mail())
    }

    /// The notice again (a reply or a refusal is no notice).
    fn into_notice(self, codec: &dyn Fn(&str) -> Option<Codec>) -> Option<Notice> {
        Some(match self {
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
            NoticeRecord::Request {
                from,
                tag,
                type_name,
                body,
            } => Notice::Request(Request::decoded(from, tag, codec(&type_name)?, &body)?),
            NoticeRecord::Reply { .. } | NoticeRecord::Refused { .. } => return None,
        })
    }

    /// Whether it is a reply or a refusal (dropped where mail is read: its
    /// call is over).
    pub(crate) fn is_reply(&self) -> bool {
        matches!(
            self,
            NoticeRecord::Reply { .. } | NoticeRecord::Refused { .. }
        )
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
