//! The engines: how a process body runs, above the kernel's engine boundary
//! ([`crate::kernel::engine`]).
//!
//! - [`stackful`]: a body is a plain closure on a coroutine with a stack of its
//!   own; its [`Ctx`](crate::Ctx) suspends inside ordinary calls.
//! - [`stackless`]: a body is a nightly coroutine, a state machine of a few hundred
//!   bytes on the heap; its [`StacklessCtx`](crate::StacklessCtx) is polled by
//!   macros that yield.

pub(crate) mod stackful;
pub mod stackless;
