//! Results of top-level processes: kept for their owner's handle until taken,
//! freed once the handle is dropped (nobody will read them), so that a
//! long-running program that spawns a process per request does not grow.
//!
//! A handle may be dropped on any thread: it records its pid here, and the
//! kernel's own thread forgets those results at the start of its next pass.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::kernel::Kernel;
use crate::signal::Pid;

/// Pids whose handles were dropped, until the kernel's thread forgets their
/// results.
#[derive(Default)]
pub(crate) struct DroppedHandles {
    pids: Mutex<Vec<Pid>>,
    /// Set with the first pid, so that a pass with none takes no lock.
    any: AtomicBool,
}

impl DroppedHandles {
    /// `pid`'s handle is gone.
    pub(crate) fn dropped(&self, pid: Pid) {
        self.pids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(pid);
        self.any.store(true, Ordering::Release);
    }
}

impl<I: 'static, O: 'static> Kernel<I, O> {
    /// Forgets the results of the processes whose handles were dropped: a
    /// result already kept is freed; a process still running is detached (its
    /// result is freed when it ends).
    #[inline]
    pub(crate) fn forget_dropped_results(&mut self) {
        if self.dropped.any.load(Ordering::Acquire) {
            self.forget_dropped_results_now();
        }
    }

    #[cold]
    fn forget_dropped_results_now(&mut self) {
        let pids = {
            let mut pids = self.dropped.pids.lock().unwrap_or_else(|e| e.into_inner());
            self.dropped.any.store(false, Ordering::Relaxed);
            std::mem::take(&mut *pids)
        };
        for pid in pids {
            self.detach(pid);
        }
    }

    /// Nobody will read `pid`'s result: freed now if it ended, or when it ends.
    pub(crate) fn detach(&mut self, pid: Pid) {
        if let Some(finished) = self.finished.remove(&pid) {
            self.free_result(pid, finished.result);
        } else if self.lookup(pid).is_some() {
            self.detached.insert(pid);
        }
    }

    /// Frees the result of a detached top-level process (its `Drop` is user
    /// code: a panic is reported to the caller of the run), and tells the layer
    /// above that nobody will take it.
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
