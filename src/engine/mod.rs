//! The engines: how a process body runs, above the kernel's engine boundary
//! ([`crate::kernel::engine`]).
//!
//! - [`stackful`]: a body is a plain closure on a coroutine with a stack of its
//!   own; its [`Ctx`](crate::Ctx) suspends inside ordinary calls.
//! - [`stackless`]: a body is a nightly coroutine, a state machine of a few hundred
//!   bytes on the heap; its [`StacklessCtx`](crate::StacklessCtx) is polled by
//!   macros that yield.

pub(crate) mod stackful;
#[cfg(feature = "stackless")]
pub mod stackless;

use std::pin::Pin;

/// The engine kind of a stackless engine whose coroutine is `Send`
/// (`StacklessTemplate::migratable`): the only kind a runtime moves between
/// threads. (Without the `stackless` feature no engine has it.)
pub(crate) const MIGRATABLE: u8 = 3;

use crate::kernel::{Dispatch, Ended, Engine, Turn, Wait};

/// Resumes the engines of this crate: a stackful one without the dynamic call
/// (inlined into the pass loop, whose registers its stack switch clobbers once
/// per pass instead of once per turn), the others through their trait object.
pub(crate) struct Engines;

impl Dispatch for Engines {
    #[inline(always)]
    fn resume(
        mut engine: Pin<&mut dyn Engine>,
        kind: u8,
        turn: impl FnOnce() -> Turn,
        ended: &mut Option<Ended>,
    ) -> Option<Wait> {
        if kind == stackful::KIND {
            // SAFETY: an engine installed with the stackful kind is a
            // `Stackful<F>` (only `stackful::create` installs that kind), which
            // is `repr(C)` with its `StackfulCore` first: a pointer to it is
            // one to its core. Nothing in it is pinned, so the core may be used
            // through `&mut`; that borrow ends before `engine` is used again.
            let core = unsafe {
                &mut *(Pin::get_unchecked_mut(engine.as_mut()) as *mut dyn Engine)
                    .cast::<stackful::StackfulCore>()
            };
            if let Some(wait) = core.run_started(ended) {
                return wait;
            }
            // Its first resume (it takes its stack): through the trait object.
        }
        engine.resume(&turn(), ended)
    }
}
