//! Child specifications (OTP's `child_spec()`): what a supervisor starts, when
//! it restarts it, and how it stops it.

use std::fmt;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::stackful::context::Ctx;
use crate::error::SpawnError;
use crate::signal::{Payload, Pid};
use crate::template::Spawnable;

/// When a child that ended is restarted (OTP's `restart`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Restart {
    /// Always (OTP's `permanent`, the default).
    #[default]
    Permanent,
    /// Only if it ended abnormally: not after [`Reason::Normal`] nor a
    /// [`Reason::Shutdown`] (OTP's `transient`; see
    /// [`Reason::is_normal_or_shutdown`]).
    ///
    /// [`Reason::Normal`]: crate::Reason::Normal
    /// [`Reason::Shutdown`]: crate::Reason::Shutdown
    /// [`Reason::is_normal_or_shutdown`]: crate::Reason::is_normal_or_shutdown
    Transient,
    /// Never, not even when a sibling's end stops it under
    /// [`OneForAll`](super::Strategy::OneForAll) or
    /// [`RestForOne`](super::Strategy::RestForOne) (OTP's `temporary`): it is
    /// forgotten once it ends.
    Temporary,
}

/// How a child is stopped (OTP's `shutdown`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// The exit signal [`Reason::Kill`](crate::Reason::Kill) at once (OTP's
    /// `brutal_kill`).
    BrutalKill,
    /// The exit signal `Shutdown`, then `Kill` if it has not ended after this
    /// long on the scheduler's clock (OTP's integer timeout; its default for a
    /// worker is 5 s).
    Timeout(Duration),
    /// The exit signal `Shutdown`, and as long a wait as it takes (OTP's
    /// `infinity`, the default for a supervisor: its subtree takes its time).
    Infinity,
}

/// What a child is (OTP's `type`): it counts in
/// [`ChildCounts`](super::ChildCounts) and sets the default [`Shutdown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum ChildKind {
    /// A worker (the default): shutdown `Timeout(5 s)` unless set.
    #[default]
    Worker,
    /// A supervisor: shutdown `Infinity` unless set.
    Supervisor,
}

/// Starts one incarnation of a child: the factory, built again on each
/// restart.
pub(crate) type StartFn<M> = Rc<dyn Fn(&mut Ctx<M>) -> Result<Pid, SpawnError>>;

/// A child's specification (OTP's `child_spec()`): an id, a factory (a
/// template and its arguments, spawned anew on each restart with a clone of
/// the arguments), a [`Restart`] type, a [`Shutdown`], a [`ChildKind`],
/// whether it is significant (for
/// [`AutoShutdown`](super::AutoShutdown)), and an optional stable name.
///
/// The template may be a stackful [`Template`](crate::Template) or a
/// stackless one: anything [`Spawnable`] on the scheduler's message type.
/// A child is spawned with [`Ctx::spawn_link`](crate::Ctx::spawn_link): a
/// top-level process linked to its supervisor.
pub struct ChildSpec<M> {
    pub(crate) id: Arc<str>,
    pub(crate) start: StartFn<M>,
    pub(crate) opts: ChildOpts,
}

/// What a static and a dynamic child spec share.
#[derive(Debug, Clone)]
pub(crate) struct ChildOpts {
    pub(crate) restart: Restart,
    pub(crate) shutdown: Option<Shutdown>,
    pub(crate) kind: ChildKind,
    pub(crate) significant: bool,
    pub(crate) name: Option<Arc<str>>,
    /// A supervisor of this module's: its start waits until it has started
    /// its own children.
    pub(crate) ours: bool,
}

impl ChildOpts {
    pub(crate) fn new() -> ChildOpts {
        ChildOpts {
            restart: Restart::Permanent,
            shutdown: None,
            kind: ChildKind::Worker,
            significant: false,
            name: None,
            ours: false,
        }
    }

    /// The shutdown set, or its kind's default (OTP: 5000 ms for a worker,
    /// `infinity` for a supervisor).
    pub(crate) fn shutdown(&self) -> Shutdown {
        self.shutdown.unwrap_or(match self.kind {
            ChildKind::Worker => Shutdown::Timeout(Duration::from_secs(5)),
            ChildKind::Supervisor => Shutdown::Infinity,
        })
    }
}

impl<M: 'static> ChildSpec<M> {
    /// A permanent worker `id` that runs `template` with `args` (a clone of
    /// them for each incarnation).
    pub fn new<T, A, R>(id: &str, template: &T, args: A) -> ChildSpec<M>
    where
        T: Spawnable<M, M, A, R> + Clone + 'static,
        A: Clone + 'static,
        R: Payload,
    {
        let template = template.clone();
        ChildSpec {
            id: id.into(),
            start: Rc::new(move |ctx: &mut Ctx<M>| ctx.spawn_link(&template, args.clone())),
            opts: ChildOpts::new(),
        }
    }

    /// Sets when it is restarted (default [`Restart::Permanent`]).
    pub fn restart(mut self, restart: Restart) -> Self {
        self.opts.restart = restart;
        self
    }

    /// Sets how it is stopped (default by its kind: see [`ChildKind`]).
    pub fn shutdown(mut self, shutdown: Shutdown) -> Self {
        self.opts.shutdown = Some(shutdown);
        self
    }

    /// Marks it a supervisor (see [`ChildKind::Supervisor`]).
    pub fn supervisor(mut self) -> Self {
        self.opts.kind = ChildKind::Supervisor;
        self
    }

    /// Marks it significant (OTP 24's `significant`): its end may stop the
    /// supervisor, per the supervisor's [`AutoShutdown`](super::AutoShutdown).
    /// Only for a transient or temporary child of a supervisor whose auto
    /// shutdown is not `Never` (else building the supervisor fails, as OTP
    /// rejects the spec).
    pub fn significant(mut self, significant: bool) -> Self {
        self.opts.significant = significant;
        self
    }

    /// Registers each incarnation under `name` (see
    /// [`Ctx::register`](crate::Ctx::register)), so that what is sent to the
    /// name after a restart reaches the new one. While the child is down (a
    /// backoff, a failed start) the name is free. A name that cannot be
    /// registered fails the start (the incarnation is killed).
    pub fn name(mut self, name: &str) -> Self {
        self.opts.name = Some(name.into());
        self
    }

    /// Its id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl<M> Clone for ChildSpec<M> {
    fn clone(&self) -> Self {
        ChildSpec {
            id: self.id.clone(),
            start: self.start.clone(),
            opts: self.opts.clone(),
        }
    }
}

impl<M> fmt::Debug for ChildSpec<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildSpec")
            .field("id", &self.id)
            .field("restart", &self.opts.restart)
            .field("shutdown", &self.opts.shutdown())
            .field("kind", &self.opts.kind)
            .field("significant", &self.opts.significant)
            .field("name", &self.opts.name)
            .finish()
    }
}

/// Starts a dynamic child from its arguments.
pub(crate) type DynStartFn<M, A> = Rc<dyn Fn(&mut Ctx<M>, A) -> Result<Pid, SpawnError>>;

/// The one child spec of a [`DynamicSupervisor`](super::DynamicSupervisor)
/// (OTP's `simple_one_for_one` spec): a template whose arguments each
/// [`StartChild`](super::StartChild) request gives (OTP's extra arguments of
/// `start_child/2`; the template may capture what all children share). Its
/// children have no id nor name.
pub struct DynamicSpec<M, A> {
    pub(crate) start: DynStartFn<M, A>,
    pub(crate) opts: ChildOpts,
}

impl<M: 'static, A: Clone + 'static> DynamicSpec<M, A> {
    /// Permanent workers that run `template` with the arguments of each
    /// start request.
    pub fn new<T, R>(template: &T) -> DynamicSpec<M, A>
    where
        T: Spawnable<M, M, A, R> + Clone + 'static,
        R: Payload,
    {
        let template = template.clone();
        DynamicSpec {
            start: Rc::new(move |ctx: &mut Ctx<M>, args: A| ctx.spawn_link(&template, args)),
            opts: ChildOpts::new(),
        }
    }

    /// Sets when its children are restarted (default [`Restart::Permanent`];
    /// a restart reuses the child's arguments).
    pub fn restart(mut self, restart: Restart) -> Self {
        self.opts.restart = restart;
        self
    }

    /// Sets how its children are stopped (default by kind).
    pub fn shutdown(mut self, shutdown: Shutdown) -> Self {
        self.opts.shutdown = Some(shutdown);
        self
    }

    /// Marks its children supervisors.
    pub fn supervisor(mut self) -> Self {
        self.opts.kind = ChildKind::Supervisor;
        self
    }

    /// Marks its children significant (see [`ChildSpec::significant`]).
    pub fn significant(mut self, significant: bool) -> Self {
        self.opts.significant = significant;
        self
    }
}

impl<M, A> Clone for DynamicSpec<M, A> {
    fn clone(&self) -> Self {
        DynamicSpec {
            start: self.start.clone(),
            opts: self.opts.clone(),
        }
    }
}

impl<M, A> fmt::Debug for DynamicSpec<M, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamicSpec")
            .field("restart", &self.opts.restart)
            .field("shutdown", &self.opts.shutdown())
            .field("kind", &self.opts.kind)
            .field("significant", &self.opts.significant)
            .finish()
    }
}
