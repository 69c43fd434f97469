//! The supervisor builders and their flags (OTP's `sup_flags()` and
//! `init/1`'s answer): a [`Supervisor`] of static children, a
//! [`DynamicSupervisor`] of children added at run time.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;

use crate::engine::stackful::context::Ctx;
use crate::engine::stackful::template::{Local, Template};
use crate::otp::request::Request;
use crate::otp::supervisor::backoff::Backoff;
use crate::otp::supervisor::requests::StartChild;
use crate::otp::supervisor::run::{Flags, Sup};
use crate::otp::supervisor::spec::{ChildOpts, ChildSpec, DynamicSpec, Restart, StartFn};

/// What a supervisor restarts when a child ends and is to be restarted
/// (OTP's `strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// That child alone (OTP's `one_for_one`, the default).
    #[default]
    OneForOne,
    /// Every child: the others are stopped in reverse start order, then all
    /// are started again in start order (OTP's `one_for_all`).
    OneForAll,
    /// That child and those started after it: these are stopped in reverse
    /// start order, then all of them started again in start order (OTP's
    /// `rest_for_one`).
    RestForOne,
}

/// When the end of significant children stops their supervisor (OTP 24's
/// `auto_shutdown`); it then ends with reason `Shutdown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AutoShutdown {
    /// Never (the default): no child may be significant.
    #[default]
    Never,
    /// When any significant child ends and is not restarted (a transient one
    /// that ended normally, a temporary one that ended at all).
    AnySignificant,
    /// When the last running significant child ends and is not restarted.
    AllSignificant,
}

/// A supervisor that cannot be built: OTP's `init/1` rejects the same.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SpecError {
    /// Two children have this id (OTP's `duplicate_child_name`).
    #[error("two children have the id {0:?}")]
    DuplicateId(String),
    /// A permanent child is marked significant (OTP's `bad_combination`).
    #[error("child {0:?} is permanent and significant")]
    SignificantPermanent(String),
    /// A child is significant, and the supervisor's auto shutdown is
    /// `Never` (OTP's `bad_combination`).
    #[error("child {0:?} is significant, and auto shutdown is Never")]
    SignificantNever(String),
    /// The restart period is zero (OTP's `invalid_period`: it must be
    /// positive).
    #[error("the restart period is zero")]
    ZeroPeriod,
    /// The backoff's factor is below 1, or its jitter outside `[0, 1]`.
    #[error("invalid backoff: {0}")]
    Backoff(String),
}

/// Checks a child's options against its supervisor's auto shutdown (OTP's
/// `validSignificant/3`).
pub(crate) fn check_child(id: &str, opts: &ChildOpts, auto: AutoShutdown) -> Result<(), SpecError> {
    if opts.significant {
        if auto == AutoShutdown::Never {
            return Err(SpecError::SignificantNever(id.to_string()));
        }
        if opts.restart == Restart::Permanent {
            return Err(SpecError::SignificantPermanent(id.to_string()));
        }
    }
    Ok(())
}

/// The template of a supervisor process: stackful, on the scheduler's
/// message type, no arguments, no result (it ends with a reason, normal or
/// not). Local: its children's factories need not be `Send`.
pub type SupervisorTemplate<M> = Template<M, M, (), (), Local>;

/// The flags every supervisor has.
#[derive(Debug, Clone)]
struct Common {
    name: String,
    max_restarts: u32,
    within: Duration,
    auto_shutdown: AutoShutdown,
    backoff: Option<Backoff>,
}

impl Common {
    fn new(name: &str) -> Common {
        Common {
            name: name.to_string(),
            max_restarts: 1,
            within: Duration::from_secs(5),
            auto_shutdown: AutoShutdown::Never,
            backoff: None,
        }
    }

    fn check(&self) -> Result<(), SpecError> {
        if self.within.is_zero() {
            return Err(SpecError::ZeroPeriod);
        }
        match &self.backoff {
            Some(b) if !b.is_valid() => Err(SpecError::Backoff(format!("{b:?}"))),
            _ => Ok(()),
        }
    }

    fn flags(&self, strategy: Strategy, dynamic: bool) -> Flags {
        Flags {
            strategy,
            dynamic,
            max_restarts: self.max_restarts,
            within: self.within,
            auto_shutdown: self.auto_shutdown,
            backoff: self.backoff.clone(),
            max_children: None,
            child_intensity: None,
        }
    }
}

/// The builder methods of the flags both builders have.
macro_rules! common_builders {
    () => {
        /// Sets the restart intensity (OTP's `intensity` and `period`,
        /// default 1 within 5 s): more than `max_restarts` restarts within
        /// `within` on the scheduler's clock, and the supervisor stops its
        /// children and ends with reason `Shutdown` (`max_restarts` 0: at the
        /// first). A restart is counted when a child ends and is to be
        /// restarted, and again for each start of it that fails.
        pub fn intensity(mut self, max_restarts: u32, within: Duration) -> Self {
            self.common.max_restarts = max_restarts;
            self.common.within = within;
            self
        }

        /// Sets when significant children's ends stop the supervisor (default
        /// [`AutoShutdown::Never`]).
        pub fn auto_shutdown(mut self, auto: AutoShutdown) -> Self {
            self.common.auto_shutdown = auto;
            self
        }

        /// Waits before each restart as `backoff` says (default: none, OTP's
        /// immediate restart). Meanwhile the supervisor answers its mail;
        /// stopping it, or the child, abandons the restart.
        pub fn backoff(mut self, backoff: Backoff) -> Self {
            self.common.backoff = Some(backoff);
            self
        }
    };
}

/// A supervisor of static children (OTP's `supervisor` with `one_for_one`,
/// `one_for_all` or `rest_for_one`), as a builder of its process's
/// [`template`](Self::template).
///
/// The process traps exits, starts its children in order, each with
/// [`Ctx::spawn_link`](crate::Ctx::spawn_link) (a top-level process linked to
/// it, not a kernel child), and restarts them per their [`Restart`] and the
/// [`Strategy`] when their EXIT comes. If a child cannot be started at first,
/// it stops those it started and ends with `Shutdown(failed_to_start_child,
/// id, why)` (OTP's `{shutdown, {failed_to_start_child, Id, Reason}}`). An
/// exit signal from any process but its children (its parent, or the owner's
/// [`SimpleScheduler::exit_signal`](crate::SimpleScheduler::exit_signal))
/// stops its children in reverse start order and ends it with that reason
/// (OTP: an EXIT from the parent). User messages sent to it are dropped (OTP
/// logs them as unexpected).
pub struct Supervisor<M> {
    common: Common,
    strategy: Strategy,
    children: Vec<ChildSpec<M>>,
}

impl<M: 'static> Supervisor<M> {
    /// A supervisor named `name` (its template's name), with OTP's defaults:
    /// one for one, intensity 1 within 5 s, no auto shutdown, no backoff, no
    /// children yet.
    pub fn new(name: &str) -> Supervisor<M> {
        Supervisor {
            common: Common::new(name),
            strategy: Strategy::OneForOne,
            children: Vec::new(),
        }
    }

    /// Sets the strategy (default [`Strategy::OneForOne`]).
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    common_builders!();

    /// Adds a child, started after those added before.
    pub fn child(mut self, spec: ChildSpec<M>) -> Self {
        self.children.push(spec);
        self
    }

    /// The supervisor's template, once its specs are checked.
    pub fn template(&self) -> Result<SupervisorTemplate<M>, SpecError> {
        self.common.check()?;
        for (i, c) in self.children.iter().enumerate() {
            check_child(&c.id, &c.opts, self.common.auto_shutdown)?;
            if self.children[..i].iter().any(|o| o.id == c.id) {
                return Err(SpecError::DuplicateId(c.id.to_string()));
            }
        }
        let name: Arc<str> = self.common.name.as_str().into();
        let flags = self.common.flags(self.strategy, false);
        let children = self.children.clone();
        Ok(Template::local(
            &self.common.name,
            move |ctx: &mut Ctx<M>, ()| {
                let mut sup = Sup::new(name.clone(), flags.clone());
                ctx.trap_exit(true);
                for c in &children {
                    sup.push(Some(c.id.clone()), c.start.clone(), c.opts.clone());
                }
                if let Err((id, e)) = sup.start_all(ctx) {
                    sup.failed_start(ctx, &id, &e);
                }
                sup.run(ctx, &|_, _, _| false);
            },
        ))
    }

    /// This supervisor as a child of another: a [`ChildKind::Supervisor`]
    /// spec (shutdown `Infinity` unless set) with id `id`.
    ///
    /// Its start is synchronous, as OTP's `start_link`: the parent goes on to
    /// its next child once this one has started its own children (or
    /// failed to, which fails the start with [`ChildError::Failed`]), so that
    /// a tree starts depth first, in order.
    ///
    /// [`ChildError::Failed`]: super::ChildError::Failed
    ///
    /// [`ChildKind::Supervisor`]: super::ChildKind::Supervisor
    pub fn child_spec(&self, id: &str) -> Result<ChildSpec<M>, SpecError> {
        let mut spec = ChildSpec::new(id, &self.template()?, ()).supervisor();
        spec.opts.ours = true;
        Ok(spec)
    }
}

/// A supervisor whose children are added at run time from one
/// [`DynamicSpec`], each with its own arguments (OTP's `simple_one_for_one`;
/// Elixir's `DynamicSupervisor`). It starts with no children; a
/// [`StartChild`] request starts one. Its children restart one for one (with
/// their own arguments), have no ids (address them by pid), and are stopped
/// all at once when it stops.
pub struct DynamicSupervisor<M, A> {
    common: Common,
    spec: DynamicSpec<M, A>,
    max_children: Option<usize>,
    child_intensity: Option<(u32, Duration)>,
}

impl<M: 'static, A: Clone + 'static> DynamicSupervisor<M, A> {
    /// A dynamic supervisor named `name` of children made by `spec`, with
    /// OTP's default flags (intensity 1 within 5 s).
    pub fn new(name: &str, spec: DynamicSpec<M, A>) -> DynamicSupervisor<M, A> {
        DynamicSupervisor {
            common: Common::new(name),
            spec,
            max_children: None,
            child_intensity: None,
        }
    }

    common_builders!();

    /// At most `max` children at once (Elixir's `DynamicSupervisor`
    /// `max_children`; a child waiting for its restart counts): a
    /// [`StartChild`] beyond it is [`ChildError::MaxChildren`](super::ChildError::MaxChildren).
    /// No bound by default.
    pub fn max_children(mut self, max: usize) -> Self {
        self.max_children = Some(max);
        self
    }

    /// Gives each child a restart intensity of its own (libeam's
    /// `DynamicSupervisor` `maxRestarts` and `periodMs`): more than
    /// `max_restarts` restarts of one child within `within`, and that child
    /// is stopped for good (a GIVE-UP signal names it; it leaves
    /// `which_children`), while the supervisor and its other children go on.
    /// Its restarts then do not count in the supervisor's own intensity
    /// (OTP's dynamic supervisor has only that one). None by default.
    pub fn child_intensity(mut self, max_restarts: u32, within: Duration) -> Self {
        self.child_intensity = Some((max_restarts, within));
        self
    }

    /// The supervisor's template, once its spec is checked.
    pub fn template(&self) -> Result<SupervisorTemplate<M>, SpecError> {
        self.common.check()?;
        check_child(
            &self.common.name,
            &self.spec.opts,
            self.common.auto_shutdown,
        )?;
        let name: Arc<str> = self.common.name.as_str().into();
        let mut flags = self.common.flags(Strategy::OneForOne, true);
        flags.max_children = self.max_children;
        flags.child_intensity = self.child_intensity;
        let spec = self.spec.clone();
        Ok(Template::local(
            &self.common.name,
            move |ctx: &mut Ctx<M>, ()| {
                let mut sup = Sup::new(name.clone(), flags.clone());
                ctx.trap_exit(true);
                let spec = spec.clone();
                let start = move |sup: &mut Sup<M>, ctx: &mut Ctx<M>, r: &Request| -> bool {
                    let Some((StartChild(args), to)) = r.take::<StartChild<A>>() else {
                        return false;
                    };
                    let make = spec.start.clone();
                    let start: StartFn<M> =
                        Rc::new(move |ctx: &mut Ctx<M>| make(ctx, args.clone()));
                    let answer = sup.start_dynamic(ctx, start, spec.opts.clone());
                    let _ = ctx.reply(to, answer);
                    true
                };
                sup.run(ctx, &start);
            },
        ))
    }

    /// This supervisor as a child of another (see
    /// [`Supervisor::child_spec`]).
    pub fn child_spec(&self, id: &str) -> Result<ChildSpec<M>, SpecError> {
        let mut spec = ChildSpec::new(id, &self.template()?, ()).supervisor();
        spec.opts.ours = true;
        Ok(spec)
    }
}
