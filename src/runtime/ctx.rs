//! Placed spawns from inside a process.

use crate::engine::stackful::context::Ctx;
use crate::error::SpawnError;
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
        let k = self.k();
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
}
