//! Request/reply calls (OTP's `gen_server:call/3` and `gen_server:reply/2`,
//! phyxius's `ask`): the caller monitors the server, sends it a request that
//! carries a [`ReplyTo`], and waits for the reply, the server's DOWN or the
//! timeout, whichever comes first. The reply travels as a system message
//! tagged with the monitor's reference, so that the request's reply is never
//! confused with another: a reply that comes after its call timed out is
//! dropped, unread.

use std::fmt;
use std::marker::PhantomData;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::kernel::Kernel;
use crate::otp::alive;
use crate::reason::Reason;
use crate::signal::Pid;

/// Where a reply goes: the caller and its call's tag, typed with the reply's
/// type `R`. A request message carries it; the server answers with
/// [`Ctx::reply`](crate::Ctx::reply) (OTP's `From` of `handle_call`). Once
/// answered, or once the call is over (replied, timed out), further replies
/// to it are dropped.
#[derive(Serialize, Deserialize)]
pub struct ReplyTo<R> {
    pid: Pid,
    tag: u64,
    #[serde(skip)]
    _reply: PhantomData<fn(R)>,
}

impl<R> ReplyTo<R> {
    pub(crate) fn new(pid: Pid, tag: u64) -> Self {
        ReplyTo {
            pid,
            tag,
            _reply: PhantomData,
        }
    }

    /// The caller's pid.
    pub fn pid(&self) -> Pid {
        self.pid
    }
}

impl<R> Clone for ReplyTo<R> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<R> Copy for ReplyTo<R> {}

impl<R> PartialEq for ReplyTo<R> {
    fn eq(&self, other: &Self) -> bool {
        (self.pid, self.tag) == (other.pid, other.tag)
    }
}
impl<R> Eq for ReplyTo<R> {}

impl<R> fmt::Debug for ReplyTo<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReplyTo({}, #{})", self.pid, self.tag)
    }
}

/// A call that gave no reply.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CallError {
    /// No reply within the timeout. A reply that comes later is dropped.
    #[error("the call timed out")]
    Timeout,
    /// The server was not alive when the call was made (OTP's `noproc`).
    #[error("no such process")]
    NoProc,
    /// The server ended before it replied, for this reason.
    #[error("the server ended: {0}")]
    Down(Reason),
    /// The caller called itself (OTP exits with `calling_self`): it could
    /// never answer.
    #[error("a process cannot call itself")]
    CallingSelf,
    /// The reply was not of the type asked for (a `ReplyTo` deserialized with
    /// another type).
    #[error("the reply is not of the type asked for")]
    ReplyType,
    /// The server does not take requests of this type: it refused it with
    /// [`Ctx::refuse`](crate::Ctx::refuse) (OTP: a `gen_server` with no
    /// `handle_call` clause for it, which would crash it; here the caller alone
    /// is told).
    #[error("the server does not take this request")]
    Unhandled,
}

/// Sends `value` to the call that `to` names, if its caller is alive (it is
/// given back otherwise, and also for a `ReplyTo` that names no call; it is
/// dropped unread if the call is over).
pub(crate) fn reply<I: 'static, O: 'static, R: 'static>(
    k: &mut Kernel<I, O>,
    to: ReplyTo<R>,
    value: R,
) -> Result<(), R> {
    if to.tag == 0 {
        // Not a call's (tags start at 1): a forged or default `ReplyTo`.
        return Err(value);
    }
    match alive(k, to.pid) {
        Some(p) => {
            k.push_sys(p, to.tag, Box::new(value));
            Ok(())
        }
        None => Err(value),
    }
}
