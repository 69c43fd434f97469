//! The engine boundary: how the kernel runs a process without knowing what kind of
//! coroutine it is. The kernel resumes an engine and gets back what the process
//! waits for next, or how it ended; it stops a suspended one by dropping it.
//!
//! The engines themselves (stackful coroutines on pooled stacks, stackless
//! coroutines on the heap) live in `crate::engine`, above the kernel.

use std::any::Any;
use std::marker::PhantomData;
use std::pin::Pin;
use std::ptr::NonNull;

use crate::error::ExitError;
use crate::kernel::proc::Wait;
use crate::signal::{Payload, Pid, Value};

/// How a process's coroutine ended: the typed result (boxed), and how to show
/// it (its `Debug` text), which the kernel does only if signals record it (a
/// layer that journals results encodes them its own way: see
/// `Hooks::result_encoder`).
pub(crate) struct Ended {
    pub(crate) result: Result<Box<dyn Any>, ExitError>,
    /// Shows the result (given as `&dyn Any`); `None` for a failure.
    pub(crate) encode: Option<fn(&dyn Any) -> Value>,
}

impl Ended {
    /// A body that returned `r`.
    pub(crate) fn returned<R: Payload>(r: R) -> Ended {
        Ended {
            result: Ok(Box::new(r)),
            encode: Some(text_as::<R>),
        }
    }

    /// A process that failed or was stopped.
    pub(crate) fn failed(e: ExitError) -> Ended {
        Ended {
            result: Err(e),
            encode: None,
        }
    }
}

/// The payload with which a body ends itself for a reason of its own
/// ([`Ctx::exit`](crate::Ctx::exit)): it unwinds the body's stack (running its
/// destructors), and the process ends with the error inside, not as a failure.
pub(crate) struct ExitWith(pub(crate) ExitError);

impl Ended {
    /// How a body whose panic `payload` unwound out of it ended: with the error
    /// an [`ExitWith`] carries, or failed with the panic's message. The payload
    /// is dropped (its own `Drop` may panic: nothing escapes here).
    pub(crate) fn from_panic(payload: Box<dyn Any + Send>) -> Ended {
        let ended = match payload.downcast_ref::<ExitWith>() {
            Some(ExitWith(e)) => Ended::failed(e.clone()),
            None => Ended::failed(ExitError::Failed(crate::kernel::pass::panic_message(
                &*payload,
            ))),
        };
        crate::kernel::pass::forget_quietly(payload);
        ended
    }
}

/// Shows a result known to be an `R`.
fn text_as<R: Payload>(r: &dyn Any) -> Value {
    Value::text_of(r.downcast_ref::<R>().expect("shown as its own type"))
}

/// The turn an engine is resumed (or stopped) for: which process, of which
/// pid space, and where its kernel and record are (type-erased: an engine
/// that uses them knows their types from the space, see [`Space`]).
#[derive(Clone, Copy)]
#[cfg_attr(not(feature = "stackless"), allow(dead_code))] // (read by stackless engines)
pub(crate) struct Turn {
    /// The kernel's pid space (unique in the program; shared only by kernels
    /// of the same types, see [`Space`]).
    pub(crate) space: u64,
    /// The process's pid.
    pub(crate) pid: Pid,
    /// The kernel's root pointer (`Kernel::this`), as a `Kernel<I, O>`.
    pub(crate) kernel: NonNull<()>,
    /// The process's record, as a `Proc<I, O>`.
    pub(crate) me: NonNull<()>,
}

impl Turn {
    /// No turn: its space (0) is none of a kernel's.
    #[cfg_attr(not(feature = "stackless"), allow(dead_code))]
    pub(crate) const NONE: Turn = Turn {
        space: 0,
        pid: Pid(0),
        kernel: NonNull::dangling(),
        me: NonNull::dangling(),
    };
}

/// A pid space: the kernels that may run one another's processes (a
/// runtime's cores), whose pids are unique among them. Typed, so that every
/// kernel of a space is a `Kernel<I, O>` of the same `I` and `O`: a stackless
/// context made by one of them may be used with the kernel and record of
/// another (after its process moved), cast to its own types. A kernel is
/// alone in a space of its own until it joins one
/// ([`Kernel::join_space`](crate::kernel::Kernel::join_space)).
pub(crate) struct Space<I, O> {
    pub(crate) id: u64,
    _types: PhantomData<fn(I) -> O>,
}

impl<I, O> Clone for Space<I, O> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<I, O> Copy for Space<I, O> {}

impl<I, O> Space<I, O> {
    /// A new space, of an id that no kernel and no other space has.
    pub(crate) fn new() -> Self {
        Space {
            id: crate::kernel::fresh_id(),
            _types: PhantomData,
        }
    }
}

/// A process's coroutine, behind the engine boundary.
pub(crate) trait Engine {
    /// Runs the process until it waits: what it waits for, or `None` when it
    /// ended, with how in `ended`. (The end goes through `ended` so that a
    /// suspension, the hot path, returns in registers.) A panic of the body may
    /// unwind out of this call (stackless engines): the kernel catches it as the
    /// process's failure.
    fn resume(self: Pin<&mut Self>, turn: &Turn, ended: &mut Option<Ended>) -> Option<Wait>;

    /// Stops the process: a suspended coroutine is unwound (its locals dropped as
    /// in a turn of its own, so that their destructors may use its context), and
    /// what the engine holds (a stack) goes back where it came from. Called while
    /// nothing else runs, with the process's record alive and marked `killing`.
    /// Its destructors' panics end here.
    fn stop(self: Pin<Box<Self>>, turn: &Turn);
}

/// An engine as a process record holds it.
pub(crate) type BoxedEngine = Pin<Box<dyn Engine>>;

/// How the pass loop resumes an engine. The layer that knows the engines may
/// resume the one it knows best without the dynamic call (which would save and
/// restore every callee-saved register around a stack switch, once per turn):
/// each engine is installed with a `kind`, a tag of the engine layer's own that
/// the kernel keeps in the record without reading it.
pub(crate) trait Dispatch {
    /// Resumes `engine`, which was installed with `kind`, for the turn `turn`
    /// gives (asked only if the engine needs it).
    fn resume(
        engine: Pin<&mut dyn Engine>,
        kind: u8,
        turn: impl FnOnce() -> Turn,
        ended: &mut Option<Ended>,
    ) -> Option<Wait>;
}
