//! Hooks: how a layer above the kernel (durability) learns of what happens, and
//! answers a process's calls in its place (a replay), without the kernel or the
//! engines naming it.
//!
//! The kernel holds at most one [`Hooks`] object. A plain scheduler holds none,
//! and every hook point costs it one test of that `Option`, the same test the
//! kernel made before the layer moved out. (The hooks are not a type parameter
//! of the kernel: the contexts of both engines are compiled once per message type
//! and serve every kind of scheduler, since one template runs on a
//! `SimpleScheduler` and on a `DurableScheduler` alike.)

use std::any::Any;

use crate::clock::Time;
use crate::error::{ExitError, SpawnError};
use crate::kernel::{PPtr, Proc, UndeliveredReason};
use crate::signal::{Pid, Value};

/// How a send went, as a replay must answer it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Delivered,
    Full,
    NoRoute,
    UnknownPid,
}

/// A call of a process, to record.
pub(crate) enum Call<'a, I, O> {
    /// It took a message from its inbox (`None`: it looked and found none).
    Take(Option<&'a I>),
    /// Its send could not deliver: the message is kept with the undelivered ones.
    Kept {
        to: Option<Pid>,
        reason: UndeliveredReason,
        msg: &'a O,
    },
    /// Its `try_send` did not deliver (a delivery is recorded by
    /// [`Hooks::delivered`]).
    TrySend {
        to: Option<Pid>,
        msg: &'a O,
        outcome: Outcome,
    },
    /// An effect's result, encoded.
    Effect(&'a [u8]),
    /// An at-most-once effect is about to run.
    Intent,
    /// An at-most-once effect found interrupted by a crash.
    Interrupted,
    /// A timer armed for `deadline`.
    Timer(Time),
    /// It joined `child`.
    Join(Pid),
    /// It spawned a child (whose creation [`Hooks::created`] recorded).
    Spawn,
    /// It moves on to template `template` with `args` (encoded): a snapshot of
    /// it (its record holds its inbox and children), and `next_pid`.
    Transition {
        template: &'a str,
        args: &'a [u8],
        next_pid: u64,
    },
    /// A call of a layer above (the toolkit's, `crate::otp`), opaque to the
    /// kernel: what was asked and answered, and the message it took or sent,
    /// if any.
    Layer {
        call: &'a dyn Any,
        msg: Option<&'a I>,
    },
}

/// A call of a process about to happen, for a replay to answer.
pub(crate) enum Expect<'a, O> {
    /// A receive (`what` it is, for a report); `may_be_none`: one that may find
    /// nothing.
    Take {
        what: &'static str,
        may_be_none: bool,
    },
    /// A send of `msg` to `to`.
    Send { to: Option<Pid>, msg: &'a O },
    /// An effect.
    Effect,
    /// An at-most-once effect.
    Intent,
    /// The end of an at-most-once effect whose intent was replayed.
    IntentEnd,
    /// A timer (`sleep` or `receive_timeout`).
    Timer { what: &'static str },
    /// A spawn of `template` with `args` (encoded, if the layer takes them).
    Spawn {
        template: &'a str,
        args: Option<&'a [u8]>,
    },
    /// A join of `child`.
    Join(Pid),
    /// A transition to `template` with `args` (encoded).
    Transition { template: &'a str, args: &'a [u8] },
    /// A call of a layer above: what it asks (opaque to the kernel).
    Layer { ask: &'a dyn Any },
}

/// How a layer's value travels encoded (a typed request of the toolkit):
/// registered with the layer that journals by its type's name.
#[derive(Clone, Copy)]
pub(crate) struct Codec {
    /// The type's name (`std::any::type_name`).
    pub(crate) name: &'static str,
    /// Decodes a value of the type, boxed.
    pub(crate) decode: fn(&[u8]) -> Option<Box<dyn Any>>,
    /// Encodes its reply (given as `&dyn Any`).
    pub(crate) encode_reply: fn(&dyn Any) -> Option<Vec<u8>>,
}

/// A replay's answer to an [`Expect`].
pub(crate) enum Replayed<I> {
    /// Not replaying (any more): the call runs live.
    Live,
    /// The call does not match the records: the layer reported it, and the
    /// process is to be held for good.
    Held,
    /// The message taken then (`None`: nothing was found).
    Took(Option<I>),
    /// How the send went then (it is not done again).
    Sent(Outcome),
    /// The effect's recorded result, encoded.
    Effect(Vec<u8>),
    /// The at-most-once effect was interrupted.
    Interrupted,
    /// The timer's deadline then, and whether the records go on past it (no
    /// waiting again).
    Timer { deadline: Time, more: bool },
    /// The child spawned then.
    Spawned(Pid),
    /// The call happened then, as now.
    Done,
    /// A layer's call as it was recorded (opaque to the kernel), and the
    /// message it took then, if any.
    Layer { call: Box<dyn Any>, msg: Option<I> },
}

/// What a layer above the kernel is told of, and may answer. Every method runs
/// while no process code runs and no reference into the kernel is held but the
/// ones passed in.
pub(crate) trait Hooks<I, O> {
    /// The layer itself, for the scheduler that installed it.
    fn as_any(&self) -> &dyn Any;

    /// As [`as_any`](Self::as_any), mutable.
    fn as_any_mut(&mut self) -> &mut dyn Any;

    /// A process of template `template` is about to be made with `args` (given as
    /// `&A`): refuse it, or give what to record of its arguments (`None`: nothing).
    fn spawning(
        &mut self,
        template: &str,
        args: &dyn Any,
        stackless: bool,
    ) -> Result<Option<Vec<u8>>, SpawnError>;

    /// Process `p` was made, a child of `parent` if given (whose unconsumed
    /// messages it is about to get copies of), with the arguments `spawning`
    /// gave.
    fn created(
        &mut self,
        p: &mut Proc<I, O>,
        parent: Option<&Proc<I, O>>,
        template: &str,
        args: Vec<u8>,
    );

    /// Process `p` was started.
    fn started(&mut self, p: &mut Proc<I, O>);

    /// `msg` entered the inbox of `to` and of each of `recipients` (`to` first,
    /// then its live descendants; each live and not otherwise borrowed), sent by
    /// `from`. The inboxes are as they were before: full ones are about to apply
    /// their overflow policies.
    fn delivered(
        &mut self,
        to: Pid,
        msg: &I,
        from: Option<&mut Proc<I, O>>,
        recipients: &[PPtr<I, O>],
    );

    /// `msg` left `pid`'s inbox without being taken (a `filter` dropped it).
    fn evicted(&mut self, pid: Pid, msg: &I);

    /// `p`'s body returned: `false` holds it instead of ending it (its replay
    /// expected more, which the layer reported; or the layer has halted).
    fn ending(&mut self, p: &mut Proc<I, O>) -> bool;

    /// The encoding of `args`, arguments of a transition to template
    /// `template`, by the layer's registration of it: `None` if it has none,
    /// or they do not encode.
    fn encode_args(&mut self, template: &str, args: &dyn Any) -> Option<Vec<u8>>;

    /// How to encode the result of a process made from template `template`,
    /// if this layer journals results (`None`: by its `Debug` text, as
    /// signals show it).
    fn result_encoder(&self, template: &str) -> Option<fn(&dyn Any) -> Value>;

    /// `pid` ended with `result` (`value`: its encoding).
    fn stopped(
        &mut self,
        pid: Pid,
        result: &Result<Box<dyn Any>, ExitError>,
        value: Option<&Value>,
    );

    /// `pid` was killed (ended by its parent's end, or an exit signal), with
    /// `error`.
    fn killed(&mut self, pid: Pid, error: &ExitError);

    /// `pid` is gone with its result: taken by its parent's join, or freed
    /// unread with its ending parent.
    fn reaped(&mut self, pid: Pid);

    /// Nobody will take top-level process `pid`'s result (its handle was
    /// dropped): it was freed.
    fn discarded(&mut self, pid: Pid);

    /// A layer's call from the scheduler's owner (no process made it), to
    /// record (opaque to the kernel), with the message it sent, if any.
    fn outside(&mut self, call: &dyn Any, msg: Option<&I>);

    /// The timed send `timer` to `pid` fired: its message `msg` (`None`: a
    /// system message) is delivered now, to `pid`'s inbox alone (`to` as it
    /// is now: a full one applies its drop policy) or its system messages, or
    /// dropped if its process has ended (`to` is `None`), with no other
    /// record of it.
    fn fired(&mut self, timer: u64, pid: Pid, to: Option<&Proc<I, O>>, msg: Option<&I>);

    /// `by` is about to spawn a process tied to it (`call`, opaque to the
    /// kernel: a `spawn_link`'s): the process's creation is that call's record,
    /// so that a crash keeps both or neither. With `None`, the spawn is over
    /// (made, or refused).
    fn tie(&mut self, by: &mut Proc<I, O>, call: Option<&dyn Any>);

    /// How values of the type named `name` are encoded, if the layer knows it
    /// (a typed request registered with it).
    fn codec(&self, name: &str) -> Option<Codec>;

    /// Records a call of `p`.
    fn record(&mut self, p: &mut Proc<I, O>, call: Call<'_, I, O>);

    /// Answers a call of `p` from its records, while it is replayed.
    fn replay(&mut self, p: &mut Proc<I, O>, expect: Expect<'_, O>) -> Replayed<I>;

    /// `p` did something its records cannot match (`recorded`, `emitted`): report
    /// it; the process is held.
    fn violation(&mut self, p: &mut Proc<I, O>, recorded: String, emitted: String);

    /// A value to record (an effect's result, a transition's arguments) could not
    /// be encoded: the layer stops the run with `error`.
    fn unencodable(&mut self, error: postcard::Error);

    /// The layer stopped the run (a journal error): no process may act any more
    /// (each is held at its next call, or at the record of the call it was in).
    fn halted(&self) -> bool;

    /// `p` is about to perform an effect (`at_most_once`: one whose intent was
    /// just recorded): whether it must first wait, suspended with
    /// [`Wait::Commit`](crate::kernel::Wait::Commit), until what was recorded of
    /// it is durable. The layer then releases it with
    /// [`Kernel::release`](crate::kernel::Kernel::release) after its commit (or
    /// never, once it has stopped).
    fn must_commit(&mut self, p: &mut Proc<I, O>, at_most_once: bool) -> bool;
}
