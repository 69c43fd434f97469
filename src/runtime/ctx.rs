//! Placed spawns from inside a process, of either engine: plain, linked or
//! monitored.

use std::sync::Arc;

use crate::engine::stackful::context::Ctx;
use crate::error::SpawnError;
use crate::kernel::{Kernel, PPtr};
use crate::otp::MonitorRef;
use crate::reason::Reason;
use crate::runtime::envelope::{Envelope, Make};
use crate::runtime::local::{Local, local};
use crate::runtime::placement::Placement;
use crate::runtime::shared::Shared;
use crate::runtime::spawn;
use crate::signal::{Payload, Pid};
use crate::template::Spawnable;

/// What ties a placed spawn's process to its spawner from its start.
#[derive(Clone, Copy)]
enum Tie {
    None,
    Link,
    /// With the monitor's reference.
    Monitor(u64),
}

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
        self.placing()?;
        let me = self.me;
        place(self.k(), me, at, template, args, Tie::None)
    }

    /// [`spawn_at`](Self::spawn_at), linked to this process from its start
    /// (OTP's `spawn_link`, on the core `at` picks): its end reaches this
    /// process through the link, and this one's end reaches it. A spawn that
    /// fails on another core gives this process the exit signal `noproc`, as
    /// a link to a process that is not alive does.
    pub fn spawn_link_at<A, R, T>(
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
        self.placing()?;
        let me = self.me;
        place(self.k(), me, at, template, args, Tie::Link)
    }

    /// [`spawn_at`](Self::spawn_at), monitored by this process from its start
    /// (OTP's `spawn_monitor`, on the core `at` picks): one DOWN when it ends
    /// (`noproc` if its spawn fails on another core).
    pub fn spawn_monitor_at<A, R, T>(
        &mut self,
        at: Placement,
        template: &T,
        args: A,
    ) -> Result<(Pid, MonitorRef), SpawnError>
    where
        A: Send + 'static,
        R: Payload,
        T: Spawnable<M, M, A, R> + Clone + Send + 'static,
    {
        self.placing()?;
        let me = self.me;
        let k = self.k();
        let r = crate::otp::table(k).new_ref();
        place(k, me, at, template, args, Tie::Monitor(r)).map(|pid| (pid, MonitorRef(r)))
    }

    /// A placed spawn counts as an operation; a durable scheduler refuses it.
    pub(super) fn placing(&mut self) -> Result<(), SpawnError> {
        self.tick();
        if self.hooked() {
            return Err(SpawnError::Unplaceable(
                "a durable scheduler journals no placed spawn".to_string(),
            ));
        }
        Ok(())
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
        self.place_as(at, template, args, Tie::None)
    }

    /// Spawns a process on the core `at` picks, linked to this one: as
    /// [`Ctx::spawn_link_at`](crate::Ctx::spawn_link_at).
    pub fn spawn_link_at<A, R, T>(
        &self,
        at: Placement,
        template: &T,
        args: A,
    ) -> Result<Pid, SpawnError>
    where
        A: Send + 'static,
        R: Payload,
        T: Spawnable<M, M, A, R> + Clone + Send + 'static,
    {
        self.place_as(at, template, args, Tie::Link)
    }

    /// Spawns a process on the core `at` picks, monitored by this one: as
    /// [`Ctx::spawn_monitor_at`](crate::Ctx::spawn_monitor_at).
    pub fn spawn_monitor_at<A, R, T>(
        &self,
        at: Placement,
        template: &T,
        args: A,
    ) -> Result<(Pid, MonitorRef), SpawnError>
    where
        A: Send + 'static,
        R: Payload,
        T: Spawnable<M, M, A, R> + Clone + Send + 'static,
    {
        let b = self.enter();
        let r = crate::otp::table(self.k(&b)).new_ref();
        drop(b);
        self.place_as(at, template, args, Tie::Monitor(r))
            .map(|pid| (pid, MonitorRef(r)))
    }

    fn place_as<A, R, T>(
        &self,
        at: Placement,
        template: &T,
        args: A,
        tie: Tie,
    ) -> Result<Pid, SpawnError>
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
        place(self.k(&b), b.me, at, template, args, tie)
    }
}

/// Makes the process here, or sends its spawn to the core `at` picks; ties
/// it to `me` (live, running) as `tie` says, before it starts.
fn place<M, A, R, T>(
    k: &mut Kernel<M, M>,
    me: PPtr<M, M>,
    at: Placement,
    template: &T,
    args: A,
    tie: Tie,
) -> Result<Pid, SpawnError>
where
    M: Send + 'static,
    A: Send + 'static,
    R: Payload,
    T: Spawnable<M, M, A, R> + Clone + Send + 'static,
{
    // SAFETY: me is live.
    let my_pid = unsafe { me.as_ref().pid };
    let Some((core, shared)) = choose(k, at)? else {
        return spawn::make_tied(k, None, template, args, |k, p| {
            tie_here(k, me, my_pid, p, tie)
        });
    };
    let pid = shared.cores[core].reserve();
    // This process's half of the tie, now; the new process's, when it is made.
    match tie {
        Tie::None => {}
        Tie::Link => {
            crate::otp::watch(me);
            crate::otp::table(k).link(my_pid, pid);
        }
        Tie::Monitor(r) => {
            crate::otp::watch(me);
            crate::otp::table(k).add_monitor(r, my_pid, pid);
        }
    }
    let make = tied(pid, template, args, my_pid, tie);
    local(k).push(core, Envelope::Spawn { pid, make });
    Ok(pid)
}

/// A core of the runtime other than the spawner's, and the runtime's shared
/// part.
pub(crate) type Chosen<M> = (usize, Arc<Shared<M>>);

/// The core `at` picks for a spawn from `k`'s core: `None` for this one
/// (a scheduler of one core is one), else the core and the runtime's shared
/// part (which is not stopping).
#[inline]
pub(crate) fn choose<M: Send + 'static>(
    k: &Kernel<M, M>,
    at: Placement,
) -> Result<Option<Chosen<M>>, SpawnError> {
    match k.extensions.get::<Local<M>>() {
        None => match at {
            Placement::Core(n) if n != 0 => Err(SpawnError::Unplaceable(format!(
                "core {n} of a scheduler of one"
            ))),
            _ => Ok(None),
        },
        Some(l) => {
            let core = at.pick(&l.shared, Some(l.me))?;
            if core == l.me {
                return Ok(None);
            }
            if l.shared.stopping.load(std::sync::atomic::Ordering::Acquire) {
                return Err(SpawnError::ShuttingDown);
            }
            Ok(Some((core, l.shared.clone())))
        }
    }
}

/// Ties `p` (just made here, not started) to `me` (live) as `tie` says.
fn tie_here<M: 'static>(
    k: &mut Kernel<M, M>,
    me: PPtr<M, M>,
    my_pid: Pid,
    p: PPtr<M, M>,
    tie: Tie,
) {
    // SAFETY: p is live.
    let pid = unsafe { p.as_ref().pid };
    match tie {
        Tie::None => {}
        Tie::Link => {
            crate::otp::watch(me);
            crate::otp::watch(p);
            crate::otp::table(k).link_child(my_pid, pid);
        }
        Tie::Monitor(r) => {
            crate::otp::watch(me);
            crate::otp::watch(p);
            crate::otp::table(k).add_monitor(r, my_pid, pid);
        }
    }
}

/// What the chosen core does with the spawn: makes the process with its
/// reserved pid, tied to `from` (of another core) as `tie` says; if it cannot
/// be made, `from`'s core hears that it has ended (`noproc`).
fn tied<M, A, R, T>(pid: Pid, template: &T, args: A, from: Pid, tie: Tie) -> Make<M>
where
    M: Send + 'static,
    A: Send + 'static,
    R: Payload,
    T: Spawnable<M, M, A, R> + Clone + Send + 'static,
{
    if let Tie::None = tie {
        return spawn::detached(pid, template, args);
    }
    let template = template.clone();
    Box::new(move |k| {
        let made = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            spawn::make_tied(k, Some(pid), &template, args, |k, p| {
                crate::otp::watch(p);
                match tie {
                    Tie::None => {}
                    Tie::Link => crate::otp::table(k).link(from, pid),
                    Tie::Monitor(r) => crate::otp::table(k).add_monitor(r, from, pid),
                }
            })
        }));
        if !matches!(made, Ok(Ok(_))) {
            k.run_at(
                from,
                Box::new(move |k| crate::otp::elsewhere::ended_elsewhere(k, pid, Reason::NoProc)),
            );
        }
        match made {
            Ok(made) => made.map(drop),
            Err(payload) => std::panic::resume_unwind(payload),
        }
    })
}
