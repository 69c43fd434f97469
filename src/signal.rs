//! Signals: the one record of what happened, with pids, sequence numbers and payloads.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use arcstr::ArcStr;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::ExitError;
use crate::reason::Reason;

/// A process identifier. Unique within its scheduler (or standalone process tree)
/// and never reused: every process, child or not, gets a fresh one.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Pid(pub u64);

impl Pid {
    /// The pid's number.
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Debug for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}>", self.0)
    }
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}>", self.0)
    }
}

/// What a value must be to be a process's result, an effect's result or a
/// transition's arguments: any `Debug + 'static` type (signals show it by its
/// `Debug` text). Blanket-implemented.
///
/// A [`DurableScheduler`](crate::DurableScheduler) journals these values, so
/// there they must also be serde types: see [`DurablePayload`].
pub trait Payload: fmt::Debug + 'static {}
impl<T: fmt::Debug + 'static> Payload for T {}

/// A [`Payload`] that can be journaled: serde serializable and deserializable.
/// What a [`DurableScheduler`](crate::DurableScheduler) asks of the arguments
/// and results of its templates and of the results of
/// [`Ctx::durable_effect`](crate::Ctx::durable_effect) and its kin.
/// Blanket-implemented.
pub trait DurablePayload: Payload + Serialize + DeserializeOwned {}
impl<T: Payload + Serialize + DeserializeOwned> DurablePayload for T {}

/// A recorded value, as a signal carries it: its `Debug` text, and its postcard
/// encoding when it is a [`DurablePayload`] that was encoded (a durable
/// scheduler's, or one made with [`Value::encode`]).
///
/// Two values are equal when their `Debug` texts are equal.
///
/// A value's text is shared, not copied, by its clones: a clone counts a
/// reference up and a drop counts it down (atomically), except for an
/// [atom](Value::atom), whose clones and drops cost nothing.
#[derive(Clone, Serialize, Deserialize)]
pub struct Value {
    /// (One pointer: its length and count are behind it. An atom's is
    /// static: no count.)
    #[serde(default)]
    text: ArcStr,
    /// (A boxed slice, not a `Vec`: a value is three words, not four, and so
    /// are the reasons and notices that carry one smaller.)
    #[serde(default)]
    bytes: Option<Box<[u8]>>,
}

/// Why [`Value::decode`] gave no value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The value was recorded by its `Debug` text only (a plain effect's or
    /// process's result, which need not be serde types): there is nothing to
    /// decode.
    #[error("the value was recorded as text only: {0}")]
    NotEncoded(String),
    /// The encoding is not a valid value of the type asked for.
    #[error("the value does not decode as the type asked for: {0}")]
    Invalid(String),
}

impl Value {
    /// Encodes `value`: its `Debug` text and its postcard encoding. If its
    /// `Serialize` implementation fails, the value has no encoding and its text
    /// says why.
    pub fn encode<T: Serialize + fmt::Debug + ?Sized>(value: &T) -> Value {
        match postcard::to_allocvec(value) {
            Ok(bytes) => Value {
                text: format!("{value:?}").into(),
                bytes: Some(bytes.into_boxed_slice()),
            },
            Err(e) => Value {
                text: format!("{value:?} (not encodable: {e})").into(),
                bytes: None,
            },
        }
    }

    /// Records `value` by its `Debug` text only.
    pub fn text_of<T: fmt::Debug + ?Sized>(value: &T) -> Value {
        Value {
            text: format!("{value:?}").into(),
            bytes: None,
        }
    }

    /// The atom `name`: a value whose text is `name` itself (not its `Debug`
    /// text: `Value::atom("boom")` shows as `boom`, as Erlang shows the atom
    /// `boom`), interned as Erlang's atoms are.
    ///
    /// Use it for the reasons and tags a program names in its code
    /// (`Reason::Custom(Value::atom("boom"))`, see [`Reason::atom`]): its
    /// clones and drops do no atomic operation (a [`text_of`](Self::text_of)
    /// value's do one each), so passing it from process to process, as
    /// links' and monitors' reasons are, costs nothing more than copying a
    /// pointer. Equal to any value with the same text.
    ///
    /// **Atoms are never freed,** as Erlang's are not: the first call for a
    /// name keeps one copy of it for the rest of the program (later calls
    /// find it, under a lock), so do not make atoms of unbounded input (a
    /// request's text, say): use [`text_of`](Self::text_of) for that.
    ///
    /// ```
    /// use chronoflow::{Reason, Value};
    ///
    /// let boom = Value::atom("boom");
    /// assert_eq!(boom.text(), "boom");
    /// assert_eq!(format!("{boom:?}"), "boom");
    /// assert_eq!(Reason::atom("boom"), Reason::Custom(boom));
    /// ```
    pub fn atom(name: &str) -> Value {
        /// The atoms made so far, each static (leaked).
        static ATOMS: LazyLock<Mutex<HashSet<ArcStr>>> = LazyLock::new(Default::default);
        // (A panic while the lock was held cannot have left the set half
        // changed: an insert of a leaked string is all that is done under it.)
        let mut atoms = ATOMS.lock().unwrap_or_else(PoisonError::into_inner);
        let text = match atoms.get(name) {
            Some(text) => text.clone(),
            None => {
                let text = ArcStr::from(name);
                // Static from now on: its clones and drops count nothing.
                ArcStr::leak(&text);
                atoms.insert(text.clone());
                text
            }
        };
        Value { text, bytes: None }
    }

    /// Decodes the value back into `T`: only a value that was encoded (see
    /// [`Value::encode`]) decodes.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, DecodeError> {
        let Some(bytes) = &self.bytes else {
            return Err(DecodeError::NotEncoded(self.text.to_string()));
        };
        postcard::from_bytes(bytes).map_err(|e| DecodeError::Invalid(e.to_string()))
    }

    /// The encoded bytes, if the value was encoded.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        self.bytes.as_deref()
    }

    /// The value's `Debug` text.
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}
impl Eq for Value {}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// How a process ended, as its STOP signal records it: the same `Result` as the
/// process's result (what [`SimpleScheduler::result`](crate::SimpleScheduler::result)
/// gives), with the value recorded as a [`Value`]. `Ok` when the body returned
/// (the recorded result), `Err` with the [`ExitError`] when it failed or was
/// killed.
pub type Exit = Result<Value, ExitError>;

/// The kind of a signal, without its data (see [`Signal::kind`]), as
/// [`std::io::ErrorKind`] is to an I/O error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SignalKind {
    /// The process started.
    Start,
    /// The process spawned a child.
    Spawn,
    /// The process joined a child.
    Join,
    /// The process returned a transition to a new entry.
    Transition,
    /// The process performed an effect.
    Use,
    /// The process sent a message.
    Send,
    /// The process ended.
    Stop,
    /// The process tried to send to a full inbox and waits for room.
    Backoff,
    /// A message was dropped from the process's inbox.
    Drop,
    /// The process's message was refused by a full inbox with the
    /// [`Reject`](crate::Overflow::Reject) policy.
    Reject,
    /// The process sent an exit signal (its end, along a link; or
    /// `exit_signal`).
    Exit,
    /// The process's end was told to a monitor.
    Down,
    /// A supervisor restarted a child.
    Restart,
    /// A supervisor's restart intensity was exceeded: it gives up.
    GiveUp,
}

/// Why a message was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DropReason {
    /// `filter` discarded it.
    Filtered,
    /// The inbox was full and its policy dropped the oldest message.
    Oldest,
    /// The inbox was full and its policy dropped the newest message.
    Newest,
}

/// What a signal records: its kind and its data (the payload), in [`Signal::data`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(
    serialize = "I: Serialize, O: Serialize",
    deserialize = "I: Deserialize<'de>, O: Deserialize<'de>"
))]
pub enum SignalData<I, O = I> {
    /// The process started.
    Start,
    /// The process spawned `child`.
    Spawn {
        /// The new child's pid.
        child: Pid,
    },
    /// The process joined `child` and took its result.
    Join {
        /// The joined child.
        child: Pid,
    },
    /// The process moved to a new entry (template `entry`, with `args`), keeping its
    /// inbox and children.
    Transition {
        /// The new template's name.
        entry: Arc<str>,
        /// The new entry's arguments.
        args: Value,
    },
    /// The process performed an effect that returned `result`.
    Use {
        /// The effect's result.
        result: Value,
    },
    /// The process sent `msg`, addressed to `to` (`None`: no route).
    Send {
        /// The destination, if the message had one.
        to: Option<Pid>,
        /// The message.
        msg: O,
    },
    /// The process ended.
    Stop {
        /// How it ended.
        exit: Exit,
    },
    /// The process found the inbox of `to` full and waits for room.
    Backoff {
        /// The process whose inbox is full.
        to: Pid,
    },
    /// A message was dropped from the process's inbox.
    Drop {
        /// The dropped message.
        msg: I,
        /// Why.
        reason: DropReason,
    },
    /// The process sent `msg` to `to`, whose inbox (or that of one of its
    /// descendants, which receive what it receives) is full with the
    /// [`Reject`](crate::Overflow::Reject) policy: the message was refused, not
    /// delivered. Emitted instead of SEND, by `send`, `send_to` and `try_send`
    /// alike; the message is kept with the undelivered ones (reason
    /// [`Rejected`](crate::UndeliveredReason::Rejected)), or handed back by
    /// `try_send` in [`SendError::Full`](crate::SendError::Full).
    Reject {
        /// The process whose inbox refused the message.
        to: Pid,
        /// The refused message.
        msg: O,
    },
    /// The process sent an exit signal to `to` (OTP's exit signal): at its
    /// end, to each linked process; or by
    /// [`Ctx::exit_signal`](crate::Ctx::exit_signal). (Signals sent from
    /// outside have no process to record them.)
    Exit {
        /// The process signalled.
        to: Pid,
        /// Its reason.
        reason: Reason,
    },
    /// The process ended, and process `to`'s monitor `monitor` was told (a
    /// DOWN).
    Down {
        /// The watcher.
        to: Pid,
        /// The monitor.
        monitor: crate::MonitorRef,
        /// Why the process ended.
        reason: Reason,
    },
    /// The process, a supervisor, restarts its child `child`, which ended
    /// (with its group, per the strategy; now, or after its backoff). The new
    /// incarnation's START follows when it starts.
    Restart {
        /// The child that ended.
        child: Pid,
    },
    /// The process, a supervisor, exceeded its restart intensity when `child`
    /// ended: it stops its children and ends.
    GiveUp {
        /// The child whose end was one restart too many.
        child: Pid,
    },
}

/// One observable event of a process: its pid, its sequence number (the count of
/// that process's recorded signals before this one) and what happened, its
/// [`data`](Self::data) (of a [`kind`](Self::kind)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(
    serialize = "I: Serialize, O: Serialize",
    deserialize = "I: Deserialize<'de>, O: Deserialize<'de>"
))]
pub struct Signal<I, O = I> {
    /// The process the signal is about.
    pub pid: Pid,
    /// The process's sequence number for this signal, from 0.
    pub seq: u64,
    /// What happened, with its data.
    pub data: SignalData<I, O>,
    /// Emitted again by a process re-running its recorded history after a
    /// durable scheduler reopened (see
    /// [`DurableBuilder::replay_signals`](crate::durable::DurableBuilder::replay_signals)):
    /// it happened before the crash, and its effect was not performed again.
    #[serde(default)]
    pub replayed: bool,
}

impl<I, O> Signal<I, O> {
    /// The signal's kind, without its data.
    pub fn kind(&self) -> SignalKind {
        match self.data {
            SignalData::Start => SignalKind::Start,
            SignalData::Spawn { .. } => SignalKind::Spawn,
            SignalData::Join { .. } => SignalKind::Join,
            SignalData::Transition { .. } => SignalKind::Transition,
            SignalData::Use { .. } => SignalKind::Use,
            SignalData::Send { .. } => SignalKind::Send,
            SignalData::Stop { .. } => SignalKind::Stop,
            SignalData::Backoff { .. } => SignalKind::Backoff,
            SignalData::Drop { .. } => SignalKind::Drop,
            SignalData::Reject { .. } => SignalKind::Reject,
            SignalData::Exit { .. } => SignalKind::Exit,
            SignalData::Down { .. } => SignalKind::Down,
            SignalData::Restart { .. } => SignalKind::Restart,
            SignalData::GiveUp { .. } => SignalKind::GiveUp,
        }
    }
}

impl<I: fmt::Debug, O: fmt::Debug> fmt::Display for Signal<I, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} #{} ", self.pid, self.seq)?;
        match &self.data {
            SignalData::Start => write!(f, "START"),
            SignalData::Spawn { child } => write!(f, "SPAWN {child}"),
            SignalData::Join { child } => write!(f, "JOIN {child}"),
            SignalData::Transition { entry, args } => write!(f, "TRANSITION {entry}({args:?})"),
            SignalData::Use { result } => write!(f, "USE {result:?}"),
            SignalData::Send { to: Some(to), msg } => write!(f, "SEND to {to}: {msg:?}"),
            SignalData::Send { to: None, msg } => write!(f, "SEND (no route): {msg:?}"),
            SignalData::Stop { exit: Ok(v) } => write!(f, "STOP {v:?}"),
            SignalData::Stop {
                exit: Err(ExitError::Failed(why)),
            } => write!(f, "STOP failed: {why}"),
            SignalData::Stop {
                exit: Err(ExitError::Killed(why)),
            } => write!(f, "STOP killed: {why}"),
            SignalData::Stop { exit: Err(e) } => {
                write!(f, "STOP {}", crate::Reason::from(e.clone()))
            }
            SignalData::Backoff { to } => write!(f, "BACKOFF waiting for {to}"),
            SignalData::Drop { msg, reason } => write!(f, "DROP {msg:?} ({reason:?})"),
            SignalData::Reject { to, msg } => write!(f, "REJECT by {to}: {msg:?}"),
            SignalData::Exit { to, reason } => write!(f, "EXIT to {to}: {reason}"),
            SignalData::Down {
                to,
                monitor,
                reason,
            } => write!(f, "DOWN to {to} ({monitor}): {reason}"),
            SignalData::Restart { child } => write!(f, "RESTART after {child}"),
            SignalData::GiveUp { child } => write!(f, "GIVE UP at the end of {child}"),
        }
    }
}

/// Where recorded signals go. Implemented for every `FnMut(Signal<I, O>)`.
pub trait SignalSink<I, O = I> {
    /// Takes one signal, in emission order.
    fn signal(&mut self, signal: Signal<I, O>);
}

impl<I, O, F: FnMut(Signal<I, O>)> SignalSink<I, O> for F {
    fn signal(&mut self, signal: Signal<I, O>) {
        self(signal)
    }
}
