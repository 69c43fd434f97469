//! How a context reaches the kernel's hooks: it records its process's calls
//! with them, and while its process is replayed, asks them for the answers.

use crate::engine::stackful::context::Ctx;
use crate::kernel::hooks::{Call, Codec, Expect, Replayed};
use crate::kernel::{Hooks, Proc, Wait};

/// The kernel's hooks and a process's record, borrowed for one hook call.
pub(crate) type HooksAndRecord<'a, I, O> = (&'a mut dyn Hooks<I, O>, &'a mut Proc<I, O>);

impl<I: 'static, O: 'static> Ctx<I, O> {
    /// The kernel's hooks (a durable scheduler's journal) and this process's
    /// record; `None` on a plain scheduler, the one test the hot path pays.
    #[inline(always)]
    pub(crate) fn hooks(&mut self) -> Option<HooksAndRecord<'_, I, O>> {
        // SAFETY: the kernel outlives its coroutines and only the running one
        // touches it; the hooks live in a box of their own, apart from the
        // process's record. Both references end with the hook call they serve.
        let hooks = unsafe { (*self.kernel.as_ptr()).hooks.as_deref_mut() }?;
        // SAFETY: a process outlives its coroutine.
        Some((hooks, unsafe { &mut *self.me.as_ptr() }))
    }

    /// Whether the kernel has hooks (a durable scheduler's journal).
    #[inline(always)]
    pub(crate) fn hooked(&self) -> bool {
        // SAFETY: the kernel outlives its coroutines; a read of one field.
        unsafe { (*self.kernel.as_ptr()).hooks.is_some() }
    }

    /// How the kernel's hooks encode values of the type named `name` (a
    /// typed request), if they do.
    pub(crate) fn codec(&self, name: &str) -> Option<Codec> {
        // SAFETY: the kernel outlives its coroutines and only the running one
        // touches it; a shared read of its hooks, for the call only.
        unsafe { (*self.kernel.as_ptr()).hooks.as_deref() }.and_then(|h| h.codec(name))
    }

    /// Records a call of this process with the kernel's hooks, if any (the call
    /// is described only then). Once the hooks have halted (a journal error),
    /// this process is held here: a call resumed after the error (a receive that
    /// waited, say) does not act on what it could not record.
    #[inline(always)]
    pub(crate) fn record<'a>(&mut self, call: impl FnOnce() -> Call<'a, I, O>) {
        if let Some((hooks, p)) = self.hooks() {
            // Durable only: off the plain scheduler's path (see `replayed`).
            std::hint::cold_path();
            hooks.record(p, call());
            if hooks.halted() {
                self.hold();
            }
        }
    }

    /// In replay, the recorded answer to the call `expect` describes: `Live` on a
    /// plain scheduler or once the records are exhausted. A call that does not
    /// match its record holds the process for good.
    #[inline(always)]
    pub(crate) fn replayed<'a>(&mut self, expect: impl FnOnce() -> Expect<'a, O>) -> Replayed<I> {
        let Some((hooks, p)) = self.hooks() else {
            return Replayed::Live;
        };
        // A durable scheduler's path: marked cold so that the plain path of a
        // send or a receive, which every hot loop runs, is laid out and inlined
        // as the likely one (without it LLVM judged an inbox push in a stackful
        // send a cold call site and left it out of line: 16 instructions more
        // per message).
        std::hint::cold_path();
        match hooks.replay(p, expect()) {
            Replayed::Held => self.hold(),
            replayed => replayed,
        }
    }

    /// Holds this process for good: its calls did not match its records.
    #[cold]
    pub(crate) fn hold(&mut self) -> ! {
        loop {
            self.suspend(Wait::Held);
        }
    }

    /// Reports a call that its records cannot match, and holds this process.
    #[cold]
    pub(crate) fn violation(&mut self, recorded: String, emitted: String) -> ! {
        if let Some((hooks, p)) = self.hooks() {
            hooks.violation(p, recorded, emitted);
        }
        self.hold()
    }

    /// In replay, the message this process took then (`Some(None)`: it found
    /// none); `None` when live.
    #[inline]
    pub(super) fn replay_take(
        &mut self,
        what: &'static str,
        may_be_none: bool,
    ) -> Option<Option<I>> {
        match self.replayed(|| Expect::Take { what, may_be_none }) {
            Replayed::Took(m) => Some(m),
            _ => None,
        }
    }

    #[inline]
    pub(super) fn journal_take(&mut self, msg: Option<&I>) {
        self.record(|| Call::Take(msg));
    }
}
