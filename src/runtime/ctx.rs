//! Placed spawns from inside a process, of either engine.

use crate::engine::stackful::context::Ctx;
use crate::error::SpawnError;
use crate::kernel::Kernel;
use crate::runtime::envelope::Envelope;
use crate::runtime::local::{Local, local};
use crate::runtime::placement::Placement;
use crate::runtime::spawn;
use crate::signal::{Payload, Pid};
use crate::template::Spawnable;

impl<M: Send + 'static> Ctx<M, M> {
    /// Spawns a process from `template` with `args` on the core `at` picks
    /// (Erlang's `spawn/1`, with a placement): a top-level process, not a
    /// child (it gets none of this process's messages, need not be joined, and
    /// its result is not kept). Its pid is good at once, on any core: what is
    /// sent to it before it is made waits for it.
    ///
    /// Outside a [`Runtime`](crate::runtime::Runtime) (a `SimpleScheduler`
    /// is one core) every placement but [`Placement::Core`] of another core
    /// picks this scheduler. A durable scheduler refuses it
    /// ([`SpawnError::Unplaceable`]): it does not journal such spawns.
    pub fn spawn_at<A, R, T>(
        &mut self,
        at: Placement,
        template: &T,
        args: A,
    ) -> Result<Pid, SpawnError>
    where
        A: Send + 'static,
        R: Payload,
        T: Spawnable<M, M, A, R> + Clone + Send + 'static,
    {
        self.tick();
        if self.hooked() {
            return Err(SpawnError::Unplaceable(
                "a durable scheduler journals no placed spawn".to_string(),
            ));
        }
        place(self.k(), at, template, args)
    }
}

#[cfg(feature = "stackless")]
impl<M: Send + 'static> crate::StacklessCtx<M, M> {
    /// Spawns a process on the core `at` picks: as
    /// [`Ctx::spawn_at`](crate::Ctx::spawn_at).
    pub fn spawn_at<A, R, T>(&self, at: Placement, template: &T, args: A) -> Result<Pid, SpawnError>
    where
        A: Send + 'static,
        R: Payload,
        T: Spawnable<M, M, A, R> + Clone + Send + 'static,
    {
        // (The template's function, and its arguments' `Drop` if the spawn
        // fails, run inside: the busy mark refuses this context to them.)
        let b = self.enter();
        let p = self.p(&b);
        p.budget = p.budget.saturating_sub(1);
        place(self.k(&b), at, template, args)
    }
}

/// Makes the process here, or sends its spawn to the core `at` picks.
fn place<M, A, R, T>(
    k: &mut Kernel<M, M>,
    at: Placement,
    template: &T,
    args: A,
) -> Result<Pid, SpawnError>
where
    M: Send + 'static,
    A: Send + 'static,
    R: Payload,
    T: Spawnable<M, M, A, R> + Clone + Send + 'static,
{
    let Some(l) = k.extensions.get::<Local<M>>() else {
        return match at {
            Placement::Core(n) if n != 0 => Err(SpawnError::Unplaceable(format!(
                "core {n} of a scheduler of one"
            ))),
            _ => spawn::make_detached(k, None, template, args),
        };
    };
    let me = l.me;
    let core = at.pick(&l.shared, Some(me))?;
    if core == me {
        return spawn::make_detached(k, None, template, args);
    }
    let shared = l.shared.clone();
    if shared.stopping.load(std::sync::atomic::Ordering::Acquire) {
        return Err(SpawnError::ShuttingDown);
    }
    let pid = shared.cores[core].reserve();
    let make = spawn::detached(pid, template, args);
    local(k).push(core, Envelope::Spawn { pid, make });
    Ok(pid)
}
