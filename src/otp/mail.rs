//! Mail: what a process reads when it asks for system notices too. A process's
//! message type knows nothing of DOWN, EXIT or timeouts; they wait in a queue
//! of their own beside its inbox, in arrival order with its messages, and only
//! the calls that ask for [`Mail`] see them (a plain `receive` never does).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::kernel::SysMsg;
use crate::otp::request::Request;
use crate::reason::Reason;
use crate::signal::Pid;

/// A monitor, as [`Ctx::monitor`](crate::Ctx::monitor) returns it: the DOWN it
/// gives carries it, and [`Ctx::demonitor`](crate::Ctx::demonitor) takes it.
/// Unique in its scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MonitorRef(pub(crate) u64);

/// A timer, as [`Ctx::send_after`](crate::Ctx::send_after) and
/// [`Ctx::start_timer`](crate::Ctx::start_timer) return it: cancel it with
/// [`Ctx::cancel_timer`](crate::Ctx::cancel_timer). Unique in its scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TimerRef(pub(crate) u64);

/// A message, or a system notice: what [`Ctx::receive_mail`] and its kin
/// return.
///
/// Mail is read in arrival order: a notice comes after the messages that
/// arrived before it (what a process sent before it ended comes before its
/// DOWN), as in OTP's one mailbox.
///
/// [`Ctx::receive_mail`]: crate::Ctx::receive_mail
#[derive(Debug, Clone, PartialEq)]
pub enum Mail<M> {
    /// A message of the process's own type.
    Msg(M),
    /// A monitored process ended (OTP's `{'DOWN', Ref, process, Pid, Reason}`):
    /// once per monitor, with its reason ([`Reason::NoProc`] if it had ended
    /// before the monitor was set).
    Down {
        /// The monitor that [`Ctx::monitor`](crate::Ctx::monitor) returned.
        monitor: MonitorRef,
        /// The process that ended.
        pid: Pid,
        /// Why.
        reason: Reason,
    },
    /// An exit signal to a process that traps exits (OTP's
    /// `{'EXIT', From, Reason}`): a linked process ended, or someone called
    /// [`Ctx::exit_signal`](crate::Ctx::exit_signal) on it.
    Exit {
        /// Who sent it: the linked process that ended, or the caller.
        from: Pid,
        /// Why.
        reason: Reason,
    },
    /// A timer started by [`Ctx::start_timer`](crate::Ctx::start_timer) fired
    /// (OTP's `{timeout, TRef, Msg}`).
    Timeout(TimerRef),
    /// A typed request from [`Ctx::request`](crate::Ctx::request) (OTP's
    /// `{'$gen_call', From, Request}` as a plain process sees it): take its body
    /// with [`Request::take`] and answer with [`Ctx::reply`](crate::Ctx::reply),
    /// or refuse it with [`Ctx::refuse`](crate::Ctx::refuse). One that is
    /// dropped unanswered leaves its caller waiting until its timeout or this
    /// process's end, as a `gen_server:call` to a process that never answers.
    Request(Request),
}

/// A look at mail without taking it: what the predicate of
/// [`Ctx::select_mail`](crate::Ctx::select_mail) sees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MailRef<'a, M> {
    /// A message (see [`Mail::Msg`]).
    Msg(&'a M),
    /// See [`Mail::Down`].
    Down {
        /// The monitor.
        monitor: MonitorRef,
        /// The process that ended.
        pid: Pid,
        /// Why.
        reason: &'a Reason,
    },
    /// See [`Mail::Exit`].
    Exit {
        /// Who sent it.
        from: Pid,
        /// Why.
        reason: &'a Reason,
    },
    /// See [`Mail::Timeout`].
    Timeout(TimerRef),
    /// See [`Mail::Request`].
    Request(&'a Request),
}

/// A system notice as it waits in a process's system queue (the kernel keeps
/// it opaque).
#[derive(Debug)]
pub(crate) enum Notice {
    Down {
        monitor: MonitorRef,
        pid: Pid,
        reason: Reason,
    },
    Exit {
        from: Pid,
        reason: Reason,
    },
    Timeout(TimerRef),
    Request(Request),
}

impl Notice {
    /// It, as the kernel's system queue holds it (inline: no allocation).
    pub(crate) fn boxed(self) -> SysMsg {
        SysMsg::new(self)
    }

    /// As mail.
    pub(crate) fn into_mail<M>(self) -> Mail<M> {
        match self {
            Notice::Down {
                monitor,
                pid,
                reason,
            } => Mail::Down {
                monitor,
                pid,
                reason,
            },
            Notice::Exit { from, reason } => Mail::Exit { from, reason },
            Notice::Timeout(t) => Mail::Timeout(t),
            Notice::Request(r) => Mail::Request(r),
        }
    }

    /// A look at it.
    pub(crate) fn as_mail_ref<M>(&self) -> MailRef<'_, M> {
        match self {
            Notice::Down {
                monitor,
                pid,
                reason,
            } => MailRef::Down {
                monitor: *monitor,
                pid: *pid,
                reason,
            },
            Notice::Exit { from, reason } => MailRef::Exit {
                from: *from,
                reason,
            },
            Notice::Timeout(t) => MailRef::Timeout(*t),
            Notice::Request(r) => MailRef::Request(r),
        }
    }
}

impl fmt::Display for MonitorRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#Ref<{}>", self.0)
    }
}

#[cfg(test)]
mod tests {
    /// A notice waits in a system queue inline (the kernel's `SysMsg` keeps
    /// values of up to 7 words without an allocation): it stays that small
    /// (a request is three words; a reason is the largest part).
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_notice_is_7_words_at_most() {
        assert!(std::mem::size_of::<super::Notice>() <= 56);
        assert!(crate::kernel::SysMsg::new(super::Notice::Timeout(super::TimerRef(1))).is_inline());
    }
}
