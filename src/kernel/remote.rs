//! Pids this kernel does not hold: the hook through which a layer above (the
//! multi-core runtime) takes a message addressed to a pid of another kernel,
//! or to one of its own not made yet, and the small calls it needs back (a
//! pid chosen for it, a sender woken when room came elsewhere).
//!
//! The kernel knows nothing of the layer: it calls the hook on the cold path
//! of a delivery, where it would otherwise say `Unknown`, and nowhere else.

use crate::kernel::{Kernel, Sent, Status, Wait};
use crate::signal::Pid;

/// Takes a message for a pid this kernel does not hold, sent by `from` (`None`:
/// from outside): `Sent::Delivered` once taken (queued for another kernel, or
/// held until its process is made), `Sent::Full` when `from` must wait for
/// room first, `Sent::Unknown` when no process has or will have the pid.
pub(crate) type RemoteFn<I, O> = fn(&mut Kernel<I, O>, Option<Pid>, Pid, I) -> Sent<I>;

/// Work for the kernel that holds a pid (a layer's bookkeeping of a link or
/// a monitor across kernels, say): run there, on that kernel's thread.
pub(crate) type Job<I, O> = Box<dyn FnOnce(&mut Kernel<I, O>) + Send>;

/// Runs a job on the kernel that holds a pid, behind the messages to it of
/// the process given (see [`Kernel::run_behind`]).
pub(crate) type RunAtFn<I, O> = fn(&mut Kernel<I, O>, Pid, Option<Pid>, Job<I, O>);

/// What a layer above with several kernels answers (the multi-core runtime).
pub(crate) struct Remote<I, O> {
    /// Takes messages for pids this kernel does not hold.
    pub(crate) route: RemoteFn<I, O>,
    /// Whether a pid belongs to another kernel of the layer.
    pub(crate) elsewhere: fn(&Kernel<I, O>, Pid) -> bool,
    /// Runs a job on the kernel that holds a pid (of another kernel), after
    /// the messages from the given process that wait there to go in (see
    /// [`Kernel::run_behind`]).
    pub(crate) run_at: RunAtFn<I, O>,
}

impl<I, O> Clone for Remote<I, O> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<I, O> Copy for Remote<I, O> {}

impl<I: 'static, O: 'static> Kernel<I, O> {
    /// Routes messages for pids this kernel does not hold, and jobs for
    /// them, through `remote`.
    pub(crate) fn set_remote(&mut self, remote: Remote<I, O>) {
        self.remote = Some(remote);
    }

    /// Whether this kernel is one of several (a runtime's).
    #[inline]
    pub(crate) fn has_remote(&self) -> bool {
        self.remote.is_some()
    }

    /// Whether `pid` belongs to another kernel (of a runtime of several).
    #[inline]
    pub(crate) fn elsewhere(&self, pid: Pid) -> bool {
        self.remote.is_some_and(|r| (r.elsewhere)(self, pid))
    }

    /// Runs `job` on the kernel that holds `pid`, which is
    /// [`elsewhere`](Self::elsewhere) (a job for no kernel is dropped),
    /// behind what the running process, if any, sent `pid` (see
    /// [`run_behind`](Self::run_behind)): its work comes after its messages,
    /// as on one kernel.
    pub(crate) fn run_at(&mut self, pid: Pid, job: Job<I, O>) {
        // SAFETY: the running process's record is live during its turn; a
        // read.
        let from = self.resuming.map(|p| unsafe { p.as_ref().pid });
        self.run_behind(pid, from, job);
    }

    /// Runs `job` on the kernel that holds `pid`, which is
    /// [`elsewhere`](Self::elsewhere), after every message from `from` to
    /// `pid` that is on its way there or waits there for room in `pid`'s
    /// inbox (or for `pid`'s process to be made): a job about `from` (its
    /// end, its reply) comes after what `from` sent, as it would on one
    /// kernel, where `from` could not have gone on before its messages went
    /// in.
    pub(crate) fn run_behind(&mut self, pid: Pid, from: Option<Pid>, job: Job<I, O>) {
        if let Some(remote) = self.remote {
            (remote.run_at)(self, pid, from, job);
        }
    }

    /// A delivery found no live process with pid `to`: the remote hook's, if
    /// any; else `Unknown`.
    #[cold]
    #[inline(never)]
    pub(crate) fn not_here(&mut self, from: Option<Pid>, to: Pid, msg: I) -> Sent<I> {
        match self.remote {
            Some(remote) => (remote.route)(self, from, to, msg),
            None => Sent::Unknown(to, msg),
        }
    }

    /// Hands out pids from `first` on, `step` apart: a runtime of several
    /// kernels gives each its own part of the pid space.
    pub(crate) fn set_pid_space(&mut self, first: u64, step: u64) {
        self.pid_step = step.max(1);
        self.set_next_pid(first);
    }

    /// Runs `make` with `pid` as the pid the next spawn gets (a pid that a
    /// layer above reserved for a process made here on another thread's
    /// behalf), then hands out pids as before.
    pub(crate) fn with_pid<T>(&mut self, pid: Pid, make: impl FnOnce(&mut Self) -> T) -> T {
        self.pid_override = Some(pid);
        self.regate();
        // (`make` runs user code, a template's function: whether it returns
        // or panics, the pid is not handed out again.)
        let made = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| make(self)));
        self.pid_override = None;
        self.regate();
        match made {
            Ok(made) => made,
            Err(payload) => std::panic::resume_unwind(payload),
        }
    }

    /// Makes `pid` runnable if it waits for room in an inbox (of another
    /// kernel, which said that room came): it tries its send again.
    pub(crate) fn room_came(&mut self, pid: Pid) {
        if let Some(p) = self.lookup(pid)
            // SAFETY: p is live.
            && let Status::Waiting(Wait::Room(_)) = unsafe { p.as_ref().status }
        {
            self.make_ready(p);
        }
    }
}
