//! Results of top-level processes: kept for their owner's handle until taken,
//! freed once the handle is dropped (nobody will read them), so that a
//! long-running program that spawns a process per request does not grow.
//!
//! A handle may be dropped on any thread: it records its pid with the kernel's
//! wake-ups (`WakeQueue::handle_dropped`), and the kernel's own thread frees
//! those results at the start of its next pass.

use crate::kernel::Kernel;
use crate::signal::Pid;

impl<I: 'static, O: 'static> Kernel<I, O> {
    /// Nobody will read `pid`'s result: freed now if it ended, or when it ends.
    pub(crate) fn detach(&mut self, pid: Pid) {
        if let Some(finished) = self.finished.remove(&pid) {
            self.free_result(pid, finished.result);
        } else if let Some(p) = self.lookup(pid) {
            // SAFETY: p is live.
            unsafe { (*p.as_ptr()).detached = true };
        }
    }

    /// Frees the result of a detached top-level process (its `Drop` is user
    /// code: a panic is reported to the caller of the run), and tells the layer
    /// above that nobody will take it.
    #[inline(always)]
    pub(crate) fn free_result(
        &mut self,
        pid: Pid,
        result: Result<Box<dyn std::any::Any>, crate::error::ExitError>,
    ) {
        let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(result)));
        self.report(dropped.err());
        if let Some(hooks) = &mut self.hooks {
            hooks.discarded(pid);
        }
    }
}
