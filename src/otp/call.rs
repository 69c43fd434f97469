//! Request/reply calls (OTP's `gen_server:call/3` and `gen_server:reply/2`,
//! phyxius's `ask`): the caller monitors the server, sends it a request that
//! carries a [`ReplyTo`], and waits for the reply, the server's DOWN or the
//! timeout, whichever comes first. The reply travels as a system message
//! tagged with the monitor's reference, so that the request's reply is never
//! confused with another: a reply that comes after its call timed out is
//! dropped, unread.

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::kernel::{Kernel, PPtr, SysMsg};
use crate::otp::mail::{MonitorRef, Notice};
use crate::otp::{alive, mailbox, monitors, table};
use crate::reason::Reason;
use crate::signal::Pid;

/// Where a reply goes: the caller and its call's tag, typed with the reply's
/// type `R`. A request message carries it; the server answers with
/// [`Ctx::reply`](crate::Ctx::reply) (OTP's `From` of `handle_call`). Once
/// answered, or once the call is over (replied, timed out), further replies
/// to it are dropped.
///
/// It travels inside messages, and a durable scheduler encodes those: it
/// deserializes for a reply type that serializes (a durable server's reply
/// is journaled, encoded).
#[derive(Serialize, Deserialize)]
#[serde(bound(serialize = "", deserialize = "R: Serialize + 'static"))]
pub struct ReplyTo<R> {
    pid: Pid,
    tag: u64,
    /// Encodes a reply (given as `&R`), for a durable server to journal it:
    /// set by a durable call, and by deserializing.
    #[serde(skip, default = "encoder::<R>")]
    encode: Option<EncodeReply>,
    /// Makes a reply (given boxed) `Send`, for a caller on another core: set
    /// by a call whose reply type is `Send` ([`Ctx::call_across`](crate::Ctx::call_across)).
    #[serde(skip)]
    ship: Option<ShipReply>,
    #[serde(skip)]
    _reply: PhantomData<fn(R)>,
}

/// Makes a reply given as `Box<dyn Any>` a `Send` one, as its caller on
/// another core takes it; gives it back if it is not of the call's reply
/// type.
pub(crate) type ShipReply = fn(Box<dyn Any>) -> Result<Box<dyn Any + Send>, Box<dyn Any>>;

/// The [`ShipReply`] of replies of type `R`.
pub(crate) fn ship_reply<R: Send + 'static>(
    value: Box<dyn Any>,
) -> Result<Box<dyn Any + Send>, Box<dyn Any>> {
    value.downcast::<R>().map(|r| r as Box<dyn Any + Send>)
}

/// Encodes a reply given as `&dyn Any`: `None` if it is not of the type, or
/// its `Serialize` fails or panics.
pub(crate) type EncodeReply = fn(&dyn Any) -> Option<Vec<u8>>;

/// The encoder of replies of type `R`.
fn encoder<R: Serialize + 'static>() -> Option<EncodeReply> {
    Some(encode_reply::<R>)
}

pub(crate) fn encode_reply<R: Serialize + 'static>(value: &dyn Any) -> Option<Vec<u8>> {
    let value = value.downcast_ref::<R>()?;
    match catch_unwind(AssertUnwindSafe(|| postcard::to_allocvec(value))) {
        Ok(encoded) => encoded.ok(),
        Err(payload) => {
            crate::kernel::pass::forget_quietly(payload);
            None
        }
    }
}

/// Decodes a reply that came encoded.
pub(crate) type DecodeReply<R> = fn(&[u8]) -> Option<R>;

/// A reply as a durable scheduler keeps it in its caller's system messages:
/// encoded (the caller's durable call decodes it).
pub(crate) struct EncodedReply(pub(crate) Vec<u8>);

impl<R> ReplyTo<R> {
    /// The call's tag (its monitor's reference).
    pub(crate) fn tag(&self) -> u64 {
        self.tag
    }

    pub(crate) fn new(pid: Pid, tag: u64) -> Self {
        ReplyTo {
            pid,
            tag,
            encode: None,
            ship: None,
            _reply: PhantomData,
        }
    }

    /// One whose reply may go to a caller on another core.
    pub(crate) fn across(pid: Pid, tag: u64) -> Self
    where
        R: Send + 'static,
    {
        ReplyTo::shipping(pid, tag, ship_reply::<R>)
    }

    /// One whose reply goes to a caller on another core as `ship` makes it
    /// `Send` (a typed request from another core: [`Request`](crate::otp::Request)
    /// knows how its reply ships).
    pub(crate) fn shipping(pid: Pid, tag: u64, ship: ShipReply) -> Self {
        ReplyTo {
            ship: Some(ship),
            ..ReplyTo::new(pid, tag)
        }
    }

    /// One whose reply a durable server can journal.
    pub(crate) fn durable(pid: Pid, tag: u64) -> Self
    where
        R: Serialize + 'static,
    {
        ReplyTo {
            encode: encoder::<R>(),
            ..ReplyTo::new(pid, tag)
        }
    }

    /// One whose reply a durable server journals with `encode`.
    pub(crate) fn with_encoder(pid: Pid, tag: u64, encode: EncodeReply) -> Self {
        ReplyTo {
            encode: Some(encode),
            ..ReplyTo::new(pid, tag)
        }
    }

    /// Its reply encoder, if it has one.
    pub(crate) fn encoder(&self) -> Option<EncodeReply> {
        self.encode
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
#[derive(Debug, Error, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The server is a process of another core of the runtime, and this call
    /// cannot take its reply from there: call it with
    /// [`Ctx::call_across`](crate::Ctx::call_across), whose reply type is
    /// `Send` (a typed request with
    /// [`Ctx::request_across`](crate::Ctx::request_across), a typed server
    /// with [`ServerRef::call_across`](crate::otp::server::ServerRef::call_across),
    /// an agent with the `_across` forms).
    #[error("the server is on another core: call it with call_across (or request_across)")]
    OtherCore,
}

/// Sends `value` to the call that `to` names, if its caller is alive (it is
/// given back otherwise, and also for a `ReplyTo` that names no call; it is
/// dropped unread if the call is over).
pub(crate) fn reply<I: 'static, O: 'static, R: 'static>(
    k: &mut Kernel<I, O>,
    to: ReplyTo<R>,
    value: R,
) -> Result<(), R> {
    reply_as(k, to, value, SysMsg::new)
}

/// [`reply`], the reply put in the caller's system messages as `boxed` makes
/// it (encoded, under a durable scheduler).
pub(crate) fn reply_with<I: 'static, O: 'static, R: 'static>(
    k: &mut Kernel<I, O>,
    to: ReplyTo<R>,
    value: R,
    boxed: impl FnOnce(R) -> Box<dyn Any>,
) -> Result<(), R> {
    reply_as(k, to, value, |value| SysMsg::from(boxed(value)))
}

/// [`reply`], the reply put in the caller's system messages as `make` makes
/// it.
#[inline]
fn reply_as<I: 'static, O: 'static, R: 'static>(
    k: &mut Kernel<I, O>,
    to: ReplyTo<R>,
    value: R,
    make: impl FnOnce(R) -> SysMsg,
) -> Result<(), R> {
    if to.tag == 0 {
        // Not a call's (tags start at 1): a forged or default `ReplyTo`.
        return Err(value);
    }
    match alive(k, to.pid) {
        Some(p) => {
            if k.moved_here(p) {
                // (Held if both moved to this core: see `kernel::held`.)
                k.push_sys_moved_running(p, to.tag, make(value));
            } else {
                k.push_sys(p, to.tag, make(value));
            }
            Ok(())
        }
        None => match to.ship {
            // A caller on another core, whose call can take a reply from
            // there: the reply goes to its core.
            Some(ship) if k.elsewhere(to.pid) => {
                let reply = match ship(Box::new(value)) {
                    Ok(reply) => reply,
                    // (Not what the call takes: given back, as to a caller
                    // that ended.)
                    Err(value) => match value.downcast::<R>() {
                        Ok(value) => return Err(*value),
                        Err(_) => unreachable!("a ShipReply gives back what it was given"),
                    },
                };
                let (pid, tag) = (to.pid, to.tag);
                k.run_at(
                    pid,
                    Box::new(move |k| {
                        if let Some(p) = alive(k, pid) {
                            k.push_sys(p, tag, SysMsg::from(reply as Box<dyn Any>));
                        }
                    }),
                );
                Ok(())
            }
            _ => Err(value),
        },
    }
}

// A call, step by step, for each engine to wait its own way between the steps:
// `begin`, send the request, `sent`, then `poll` until it gives an outcome,
// then `end`. `me` is the caller's live record, to which the caller holds no
// reference.

/// Begins `me`'s call of `server`: makes the request with `request` (user
/// code) of the [`ReplyTo`] its reply will come to, then monitors the server
/// (the monitor's reference tags the reply); gives the monitor and the request
/// to send. `CallingSelf` if the server is `me`, `NoProc` if it is not alive.
/// The request is made before the monitor is set: one whose making panics
/// leaves nothing behind.
pub(crate) fn begin<I: 'static, O: 'static, R, T>(
    k: &mut Kernel<I, O>,
    me: PPtr<I, O>,
    server: Pid,
    request: impl FnOnce(ReplyTo<R>) -> T,
) -> Result<(MonitorRef, T), CallError> {
    begin_with(k, me, server, request, ReplyTo::new, false)
}

/// [`begin`] of a call whose reply may cross cores: the server may be a
/// process of another core (the monitor tells if it is not alive there).
pub(crate) fn begin_across<I: 'static, O: 'static, R: Send + 'static, T>(
    k: &mut Kernel<I, O>,
    me: PPtr<I, O>,
    server: Pid,
    request: impl FnOnce(ReplyTo<R>) -> T,
) -> Result<(MonitorRef, T), CallError> {
    begin_with(k, me, server, request, ReplyTo::across, true)
}

/// [`begin`], the call's [`ReplyTo`] made by `reply_to`; a server of another
/// core is called (`across`) or refused ([`check`]).
fn begin_with<I: 'static, O: 'static, R, T>(
    k: &mut Kernel<I, O>,
    me: PPtr<I, O>,
    server: Pid,
    request: impl FnOnce(ReplyTo<R>) -> T,
    reply_to: fn(Pid, u64) -> ReplyTo<R>,
    across: bool,
) -> Result<(MonitorRef, T), CallError> {
    // SAFETY: me is live.
    let pid = unsafe { me.as_ref().pid };
    if !(across && k.elsewhere(server)) {
        check(k, pid, server)?;
    }
    let tag = table(k).new_ref();
    let msg = request(reply_to(pid, tag));
    Ok((monitors::monitor_as(k, me, server, tag), msg))
}

/// Whether `me` may call `server`: not itself, and only a live one.
pub(crate) fn check<I: 'static, O: 'static>(
    k: &Kernel<I, O>,
    me: Pid,
    server: Pid,
) -> Result<(), CallError> {
    if server == me {
        return Err(CallError::CallingSelf);
    }
    if alive(k, server).is_none() {
        if k.elsewhere(server) {
            return Err(CallError::OtherCore);
        }
        return Err(CallError::NoProc);
    }
    Ok(())
}

/// The request is sent: the timeout, if any, starts now.
pub(crate) fn sent<I: 'static, O: 'static>(
    k: &mut Kernel<I, O>,
    me: PPtr<I, O>,
    timeout: Option<std::time::Duration>,
) {
    if let Some(timeout) = timeout {
        mailbox::arm(k, me, timeout);
    }
}

/// The call's outcome, if it has one: the reply to call `monitor`, or the
/// server's DOWN, if either came (the replies of calls that are over are
/// dropped on the way), or the timeout, if the call is `timed` and `me`'s
/// timer fired (only its own timer: a stale mark is not this call's).
pub(crate) fn poll<I, O, R: 'static>(
    me: PPtr<I, O>,
    monitor: MonitorRef,
    timed: bool,
) -> Option<Result<R, CallError>> {
    poll_decoding(me, monitor, timed, None)
}

/// [`poll`], decoding with `decode` a reply that came encoded (a durable
/// server's).
pub(crate) fn poll_decoding<I, O, R: 'static>(
    me: PPtr<I, O>,
    monitor: MonitorRef,
    timed: bool,
    decode: Option<DecodeReply<R>>,
) -> Option<Result<R, CallError>> {
    // SAFETY: me is live; no other reference to its record is held.
    let p = unsafe { &mut *me.as_ptr() };
    if let Some(outcome) = outcome(p, monitor, decode) {
        return Some(outcome);
    }
    (timed && p.timed_out()).then_some(Err(CallError::Timeout))
}

/// The answer of a refused request ([`Ctx::refuse`](crate::Ctx::refuse)), as
/// it travels back in the reply's place.
pub(crate) struct Refused;

/// The reply to call `monitor` (or its refusal), or the server's DOWN, if
/// either came.
fn outcome<I, O, R: 'static>(
    p: &mut crate::kernel::Proc<I, O>,
    monitor: MonitorRef,
    decode: Option<DecodeReply<R>>,
) -> Option<Result<R, CallError>> {
    let e = p.extra_mut()?;
    e.sys.retain(|item| item.tag == 0 || item.tag == monitor.0);
    let is = |item: &crate::kernel::proc::SysItem| {
        item.tag == monitor.0
            || matches!(
                item.msg.downcast_ref::<Notice>(),
                Some(Notice::Down { monitor: m, .. }) if *m == monitor
            )
    };
    // (The queue's two slices, searched as slices: what a ring's iterator
    // costs, LLVM does not always inline.)
    let (a, b) = e.sys.as_slices();
    let i = match a.iter().position(is) {
        Some(i) => i,
        None => a.len() + b.iter().position(is)?,
    };
    let item = e.sys.remove(i).expect("index within the queue");
    if item.tag == monitor.0 {
        if item.msg.is::<Refused>() {
            return Some(Err(CallError::Unhandled));
        }
        return Some(match item.msg.downcast::<R>() {
            Ok(r) => Ok(r),
            Err(msg) => match (msg.downcast::<EncodedReply>(), decode) {
                (Ok(bytes), Some(decode)) => decode(&bytes.0).ok_or(CallError::ReplyType),
                _ => Err(CallError::ReplyType),
            },
        });
    }
    match item.msg.downcast::<Notice>() {
        Ok(notice) => match notice {
            Notice::Down {
                reason: Reason::NoProc,
                ..
            } => Some(Err(CallError::NoProc)),
            Notice::Down { reason, .. } => Some(Err(CallError::Down(reason))),
            _ => unreachable!("matched a DOWN"),
        },
        Err(_) => unreachable!("matched a DOWN"),
    }
}

/// Ends call `monitor` with `outcome`: its timer (if `timed`) and its monitor
/// go (with the DOWN, if one came), and a reply that raced a failed outcome is
/// not read.
pub(crate) fn end<I: 'static, O: 'static, R>(
    k: &mut Kernel<I, O>,
    me: PPtr<I, O>,
    monitor: MonitorRef,
    timed: bool,
    outcome: &Result<R, CallError>,
) {
    if timed {
        mailbox::disarm(k, me);
    }
    monitors::demonitor(k, me, monitor, true);
    if outcome.is_err() {
        // SAFETY: me is live; `demonitor`'s reference to it has ended.
        if let Some(e) = unsafe { (*me.as_ptr()).extra_mut() } {
            e.sys.retain(|item| item.tag != monitor.0);
        }
    }
}
