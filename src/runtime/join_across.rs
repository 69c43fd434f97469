//! Joins across cores: a process spawns another on any core of the runtime
//! and later waits for its result, as a parent joins a child.
//!
//! The spawned process is top-level (not a child: it gets none of its
//! joiner's messages, and outlives it if it must). Its kernel gives its
//! result, at its end, to its joiner ([`Kernel::give_result`]): at once on
//! one core, through the toolkit's jobs between cores (`run_at`) otherwise,
//! behind what it sent to its joiner's core before it ended. The joiner
//! keeps the result in its record until it joins; a spawn that fails on
//! its core gives it [`ExitError::NoProc`], as a monitor's DOWN would.

use std::any::Any;
use std::marker::PhantomData;

use crate::engine::stackful::context::Ctx;
use crate::error::{ExitError, JoinError, SpawnError};
use crate::kernel::results::ResultSink;
use crate::kernel::{Kernel, PPtr, Wait};
use crate::runtime::ctx::choose;
use crate::runtime::envelope::Envelope;
use crate::runtime::local::{before_job, local};
use crate::runtime::placement::Placement;
use crate::signal::{Payload, Pid};
use crate::template::Spawnable;

/// A process spawned by [`Ctx::spawn_joinable_at`] on any core, whose result
/// its spawner takes with [`Ctx::join_across`] (stackless:
/// [`join_across!`](crate::stackless::join_across)).
///
/// Only its spawner can join it (a join by another process gives
/// [`JoinError::NotAChild`]), once: the join takes the handle. Its result
/// waits in the spawner until it is joined, or until the spawner ends.
#[must_use = "its result waits in this process until it is joined"]
pub struct Joinable<R> {
    pid: Pid,
    joiner: Pid,
    _result: PhantomData<fn() -> R>,
}

impl<R> Joinable<R> {
    /// The spawned process's pid.
    pub fn pid(&self) -> Pid {
        self.pid
    }
}

impl<R> std::fmt::Debug for Joinable<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Joinable({} for {})", self.pid, self.joiner)
    }
}

impl<M: Send + 'static> Ctx<M, M> {
    /// Spawns a process from `template` with `args` on the core `at` picks,
    /// whose result this process takes with [`join_across`](Self::join_across):
    /// what [`spawn`](Self::spawn) and [`join`](Self::join) do for a child,
    /// for a process of any core of a [`Runtime`](crate::runtime::Runtime).
    ///
    /// Unlike a child it is a top-level process, as with
    /// [`spawn_at`](Self::spawn_at): it gets none of this process's messages,
    /// and neither ends with the other (link them for that:
    /// [`link`](Self::link)). Its result is `Send`, to cross cores.
    ///
    /// Outside a runtime (a `SimpleScheduler`) every placement but
    /// [`Placement::Core`] of another core picks this scheduler. A durable
    /// scheduler refuses it ([`SpawnError::Unplaceable`]).
    pub fn spawn_joinable_at<A, R, T>(
        &mut self,
        at: Placement,
        template: &T,
        args: A,
    ) -> Result<Joinable<R>, SpawnError>
    where
        A: Send + 'static,
        R: Payload + Send,
        T: Spawnable<M, M, A, R> + Clone + Send + 'static,
    {
        self.placing()?;
        let me = self.me;
        spawn_joinable(self.k(), me, at, template, args)
    }

    /// Waits for the process of `joinable` to end and gives its result (a
    /// JOIN signal), wherever it ran: the join of a process spawned by
    /// [`spawn_joinable_at`](Self::spawn_joinable_at). One that failed or
    /// was killed gives the reason as [`JoinError::Exited`]; one whose spawn
    /// failed on its core, [`ExitError::NoProc`].
    pub fn join_across<R: 'static>(&mut self, joinable: Joinable<R>) -> Result<R, JoinError> {
        self.tick();
        if joinable.joiner != self.pid() {
            return Err(JoinError::NotAChild(joinable.pid));
        }
        loop {
            let me = self.me;
            if let Some(result) = take::<M, R>(self.k(), me, joinable.pid) {
                return result;
            }
            if self.cannot_wait() {
                return Err(JoinError::Exited(ExitError::Killed(format!(
                    "joined while {} unwound",
                    self.pid()
                ))));
            }
            self.suspend(Wait::Join(joinable.pid));
        }
    }
}

#[cfg(feature = "stackless")]
impl<M: Send + 'static> crate::StacklessCtx<M, M> {
    /// Spawns a process on the core `at` picks, whose result this process
    /// takes with [`join_across!`](crate::stackless::join_across): as
    /// [`Ctx::spawn_joinable_at`].
    pub fn spawn_joinable_at<A, R, T>(
        &self,
        at: Placement,
        template: &T,
        args: A,
    ) -> Result<Joinable<R>, SpawnError>
    where
        A: Send + 'static,
        R: Payload + Send,
        T: Spawnable<M, M, A, R> + Clone + Send + 'static,
    {
        // (The template's function, and its arguments' `Drop` if the spawn
        // fails, run inside: the busy mark refuses this context to them.)
        let b = self.enter();
        let p = self.p(&b);
        p.budget = p.budget.saturating_sub(1);
        spawn_joinable(self.k(&b), b.me, at, template, args)
    }

    /// Takes the result of `joinable`'s process if it ended (a JOIN signal);
    /// otherwise returns what to wait for.
    /// [`join_across!`](crate::stackless::join_across) loops over it.
    #[doc(hidden)]
    pub fn poll_join_across<R: 'static>(
        &self,
        joinable: &Joinable<R>,
    ) -> Result<Result<R, JoinError>, crate::Pending> {
        let b = self.enter();
        let p = self.p(&b);
        if !Self::tick(p) {
            return Err(crate::Pending(Wait::Yield));
        }
        if joinable.joiner != p.pid {
            return Ok(Err(JoinError::NotAChild(joinable.pid)));
        }
        // (A result of another type left in place: its `Drop` does not run.)
        match take::<M, R>(self.k(&b), b.me, joinable.pid) {
            Some(result) => Ok(result),
            None => Err(crate::Pending(Wait::Join(joinable.pid))),
        }
    }
}

/// Takes the result that `pid` gave `me`, if it came.
fn take<M: 'static, R: 'static>(
    k: &mut Kernel<M, M>,
    me: PPtr<M, M>,
    pid: Pid,
) -> Option<Result<R, JoinError>> {
    k.take_given(me, pid, |r| r.downcast::<R>().map(|r| *r))
}

/// Makes the process here, or sends its spawn to the core `at` picks; its
/// result goes to `me` (live, running).
fn spawn_joinable<M, A, R, T>(
    k: &mut Kernel<M, M>,
    me: PPtr<M, M>,
    at: Placement,
    template: &T,
    args: A,
) -> Result<Joinable<R>, SpawnError>
where
    M: Send + 'static,
    A: Send + 'static,
    R: Payload + Send,
    T: Spawnable<M, M, A, R> + Clone + Send + 'static,
{
    // SAFETY: me is live; a read.
    let joiner = unsafe { me.as_ref().pid };
    let pid = match choose(k, at)? {
        None => {
            let p = template.create_in(k, args, None)?;
            // SAFETY: p was just made: live; a read.
            let pid = unsafe { p.as_ref().pid };
            k.sink_result(pid, to_joiner::<M, R>(joiner));
            k.start(p);
            pid
        }
        Some((core, shared)) => {
            let pid = shared.cores[core].reserve();
            let template = template.clone();
            let make = Box::new(move |k: &mut Kernel<M, M>| {
                let made = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let p = k.with_pid(pid, |k| template.create_in(k, args, None))?;
                    k.sink_result(pid, to_joiner::<M, R>(joiner));
                    k.start(p);
                    Ok(())
                }));
                if !matches!(made, Ok(Ok(()))) {
                    // Never made: its joiner hears it, as of a process
                    // that ended at once.
                    give::<M, R>(k, joiner, pid, Err(ExitError::NoProc));
                }
                match made {
                    Ok(made) => made,
                    Err(payload) => std::panic::resume_unwind(payload),
                }
            });
            local(k).push(core, Envelope::Spawn { pid, make });
            pid
        }
    };
    Ok(Joinable {
        pid,
        joiner,
        _result: PhantomData,
    })
}

/// The sink of a joinable process's result: its joiner's.
fn to_joiner<M: Send + 'static, R: Send + 'static>(joiner: Pid) -> ResultSink<M, M> {
    Box::new(move |k, pid, result| {
        let result = result.map(|r| {
            r.downcast::<R>()
                .expect("a joinable process has its template's result type")
        });
        give(k, joiner, pid, result);
    })
}

/// Gives `pid`'s result to `joiner`, on this core or another (one that
/// ended drops it, here or there: its `Drop` is user code, run where
/// panics outside processes are caught).
fn give<M: Send + 'static, R: Send + 'static>(
    k: &mut Kernel<M, M>,
    joiner: Pid,
    pid: Pid,
    result: Result<Box<R>, ExitError>,
) {
    // SAFETY: a live record of this kernel; a read.
    let moved_in = k
        .lookup(joiner)
        .is_some_and(|p| unsafe { p.as_ref().moved_in });
    if !k.elsewhere(joiner) && !moved_in {
        // (What `pid` sent before it moved here may wait for room.)
        before_job(k, joiner, Some(pid));
        let _ = k.give_result(joiner, pid, result.map(|r| r as Box<dyn Any>));
        return;
    }
    // A joiner that moved here: what `pid` sent it may be on its way
    // through its home and down its line (as between two processes that
    // moved here: see `Kernel::deliver`), so the result goes that way too.
    // (Behind what `pid` sent its joiner.)
    k.run_behind(
        joiner,
        Some(pid),
        Box::new(move |k| {
            let _ = k.give_result(joiner, pid, result.map(|r| r as Box<dyn Any>));
        }),
    );
}
