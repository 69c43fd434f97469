//! The panic hook of a panic in a process runs on the scheduler's stack, not on the
//! process's: std's default hook with `RUST_BACKTRACE` set captures and prints a
//! backtrace, which takes tens of kilobytes of stack, more than a small process
//! stack has (its guard page would end the program).
//!
//! Installed once per program, when the first stackful process is created: a hook
//! that wraps the one in place then (std's default or the program's own). While a
//! process runs, [`overflow`]'s thread-local already records its stack (for the
//! stack overflow report), and the process's coroutine records its yielder there
//! when it starts ([`record_yielder`]): nothing is added to a resume. A panic on
//! that stack runs the wrapped hook through the yielder's `on_parent_stack`; any
//! other panic (on a thread's own stack, or on the scheduler's stack while the
//! hook runs there) calls it directly.
//!
//! A hook the program sets *after* the first stackful process was created
//! replaces this one: it then runs on the process's stack, and must fit there.

use std::panic::PanicHookInfo;
use std::sync::Once;

use corosensei::Yielder;

use super::overflow;
use crate::kernel::Wait;

/// The hook in place before ours.
type Previous = dyn Fn(&PanicHookInfo<'_>) + Send + Sync + 'static;

static INSTALL: Once = Once::new();

/// Installs the hook, once per program. (Not while this thread panics, when
/// `set_hook` may not be called: a later creation installs it.)
pub(crate) fn install() {
    if std::thread::panicking() {
        return;
    }
    INSTALL.call_once(|| {
        let previous: Box<Previous> = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| hook(&*previous, info)));
    });
}

/// Records `yielder` as the one of the process that runs on this thread (called by
/// its coroutine when it starts, while [`overflow`] records the process).
#[inline]
pub(crate) fn record_yielder(yielder: &Yielder<bool, Wait>) {
    overflow::with_running(|running| running.yielder.set(yielder));
}

fn hook(previous: &Previous, info: &PanicHookInfo<'_>) {
    let here = std::hint::black_box(0u8);
    let here = &raw const here as usize;
    // The yielder of the process whose stack this is, if this runs on one.
    let mut yielder = std::ptr::null();
    overflow::with_running(|running| {
        if (running.guard_end()..running.stack_base()).contains(&here) {
            yielder = running.yielder.get();
        }
    });
    // SAFETY: a yielder recorded in the running process's record lives as long
    // as its coroutine, which is running (this runs on its stack).
    let Some(yielder) = (unsafe { yielder.as_ref() }) else {
        return previous(info);
    };
    let call = OnParent { previous, info };
    yielder.on_parent_stack(move || call.run());
}

/// The wrapped hook and its argument, to run on the parent stack.
struct OnParent<'a, 'b> {
    previous: &'a Previous,
    info: *const PanicHookInfo<'b>,
}

// SAFETY: `on_parent_stack` asks for `Send` so that its closure cannot take the
// yielder (or anything else meant for the coroutine's side) to the parent's side.
// This one holds only the hook (which is `Send + Sync`) and a pointer to the hook's
// argument, used on this same thread while the caller, suspended on the
// coroutine's stack until the closure returns, keeps it alive; neither is the
// yielder.
unsafe impl Send for OnParent<'_, '_> {}

impl OnParent<'_, '_> {
    fn run(self) {
        // SAFETY: see the `Send` impl: `info` points to the hook's argument, alive
        // until `on_parent_stack` returns.
        (self.previous)(unsafe { &*self.info });
    }
}
