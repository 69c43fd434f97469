//! Results of top-level processes: kept for their owner's handle until taken,
//! freed once the handle is dropped (nobody will read them), so that a
//! long-running program that spawns a process per request does not grow.
//!
//! A handle may be dropped on any thread: it records its pid with the kernel's
//! wake-ups (`WakeQueue::handle_dropped`), and the kernel's own thread frees
//! those results at the start of its next pass.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::error::{ExitError, JoinError};
use crate::kernel::proc::Outcome;
use crate::kernel::{Kernel, PPtr, Status, Wait};
use crate::signal::{Pid, SignalData};

/// Where the result of a top-level process goes when it ends, instead of
/// being kept for a handle: given the kernel, the process's pid and its
/// result, at its end (once its STOP is out and its record freed). A layer
/// above sets it before the process starts
/// ([`Kernel::sink_result`]), to send the result where its joiner is: to a
/// process of this kernel or another ([`Kernel::give_result`]), or to a
/// thread. `Send`: it moves with its process to another kernel of the same
/// space. Dropped unrun (the kernel is dropped first), it tells whoever
/// waits that no result will come, its own way.
pub(crate) type ResultSink<I, O> =
    Box<dyn FnOnce(&mut Kernel<I, O>, Pid, Result<Box<dyn Any>, ExitError>) + Send>;

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

impl<I: 'static, O: 'static> Kernel<I, O> {
    /// The result of `pid` (a top-level process of this kernel, not detached,
    /// not ended) goes to `sink` when it ends, not to `finished`.
    pub(crate) fn sink_result(&mut self, pid: Pid, sink: ResultSink<I, O>) {
        self.sinks.insert(pid, sink);
    }

    /// The sink of `pid`, if it has one (it leaves this kernel).
    pub(crate) fn take_sink(&mut self, pid: Pid) -> Option<ResultSink<I, O>> {
        self.sinks.remove(&pid)
    }

    /// Runs `sink` on the result of `pid`, which ended. What it runs of user
    /// code (a result's `Drop`, when nobody waits for it any more) may panic:
    /// reported to the caller of the run, as [`free_result`](Self::free_result)
    /// does.
    #[cold]
    #[inline(never)]
    pub(super) fn sink(
        &mut self,
        sink: ResultSink<I, O>,
        pid: Pid,
        result: Result<Box<dyn Any>, ExitError>,
    ) {
        let ran = catch_unwind(AssertUnwindSafe(|| sink(self, pid, result)));
        self.report(ran.err());
    }

    /// `from`, which ended, hands its result to `to`: kept in `to`'s record
    /// until it takes it ([`take_given`](Self::take_given)); `to`, if it waits
    /// to join `from`, runs again. `to` not alive here: the result is given
    /// back.
    pub(crate) fn give_result(
        &mut self,
        to: Pid,
        from: Pid,
        result: Result<Box<dyn Any>, ExitError>,
    ) -> Result<(), Outcome> {
        let Some(p) = self.lookup(to) else {
            return Err(result);
        };
        // SAFETY: p is live; the reference ends before `make_ready`.
        let proc = unsafe { &mut *p.as_ptr() };
        if proc.status == Status::Stopped {
            return Err(result);
        }
        proc.extra().given.push((from, result));
        if proc.status == Status::Waiting(Wait::Join(from)) {
            self.make_ready(p);
        }
        Ok(())
    }

    /// Takes the result that `from` handed to `me` (live), made a `T` by
    /// `cast` (a JOIN signal), if it came. One that `cast` refuses stays
    /// ([`JoinError::ResultType`]).
    pub(crate) fn take_given<T>(
        &mut self,
        me: PPtr<I, O>,
        from: Pid,
        cast: impl FnOnce(Box<dyn Any>) -> Result<T, Box<dyn Any>>,
    ) -> Option<Result<T, JoinError>> {
        // SAFETY: me is live; the reference ends before `emit`.
        let e = unsafe { (*me.as_ptr()).extra_mut() }?;
        let given = &mut e.given;
        let i = given.iter().position(|(pid, _)| *pid == from)?;
        let (_, result) = given.swap_remove(i);
        let result = match result {
            Ok(r) => match cast(r) {
                Ok(r) => Ok(r),
                Err(r) => {
                    given.push((from, Ok(r)));
                    return Some(Err(JoinError::ResultType(from)));
                }
            },
            Err(error) => Err(JoinError::Exited(error)),
        };
        self.emit(me, || SignalData::Join { child: from });
        Some(result)
    }
}
