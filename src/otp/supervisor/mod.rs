//! Supervisors, with OTP's semantics (`lib/stdlib/src/supervisor.erl`):
//! processes that start children, watch them, and restart them when they end.
//!
//! A supervisor is a stackful process that this module builds (a
//! [`SupervisorTemplate`] from a [`Supervisor`] or a [`DynamicSupervisor`]),
//! on the scheduler's own message type `M`, which need carry nothing for it.
//! It traps exits and starts each child with
//! [`Ctx::spawn_link`](crate::Ctx::spawn_link): a top-level process linked to
//! it. When a child's EXIT comes it acts on the child's [`Restart`] type and
//! its [`Strategy`], within its restart intensity (at most `max_restarts`
//! restarts within `within`, on the scheduler's clock); beyond it, it stops
//! every child and ends with [`Reason::Shutdown`], which its own supervisor
//! sees. It is asked things by typed requests (see [Requests](#requests)
//! below), never by messages of type `M`.
//!
//! - **Child specs** ([`ChildSpec`]): an id, a template and its arguments
//!   (cloned for each incarnation), [`Restart`] (permanent, transient,
//!   temporary), [`Shutdown`] (brutal kill, a timeout then a kill, infinity),
//!   [`ChildKind`], significance for [`AutoShutdown`], and a stable name that
//!   each incarnation is registered under. Children start in order and stop
//!   in reverse order; stopping one waits for its end.
//! - **Backoff** ([`Backoff`], not in OTP): a delay before each restart,
//!   growing, reset after a quiet run, with seeded jitter.
//! - **Trees**: a supervisor is a child like another
//!   ([`Supervisor::child_spec`]); stopping the root stops the leaves first.
//! - **Stopping**: from outside, `sched.exit_signal(sup,
//!   Reason::Shutdown(None))`; from a process, [`stop`] (or
//!   [`Ctx::exit_signal`](crate::Ctx::exit_signal) without waiting). Either
//!   way it stops its children in reverse start order, then ends with that
//!   reason. Stopping it twice is harmless.
//!
//! # Requests
//!
//! [`WhichChildren`], [`CountChildren`], [`TerminateChild`],
//! [`RestartChild`], [`DeleteChild`], [`AddChild`] and, for a dynamic
//! supervisor, [`StartChild`]: send them with
//! [`Ctx::request`](crate::Ctx::request) (OTP's supervisor calls wait forever:
//! pass `None`) or, from outside,
//! [`SimpleScheduler::request`](crate::SimpleScheduler::request).
//!
//! # Events
//!
//! With the feature `tracing`: `supervisor child started` (DEBUG),
//! `supervisor child ended` (WARN when abnormal), `supervisor restart`
//! (INFO, with the `restarts` so far), `supervisor backoff` (DEBUG,
//! `delay_ms`), `supervisor start failed` (WARN), `supervisor give-up`
//! (ERROR: the restart intensity was reached), `supervisor auto shutdown`
//! (INFO), `supervisor shutdown error` (WARN: a child stopped with another
//! reason than asked), `supervisor unexpected message` (WARN) and
//! `supervisor stop` (DEBUG); fields `supervisor` (its name), `child` (the
//! id), `pid`, `reason`. [`CountChildren`] answers the restarts made.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use chronoflow::otp::supervisor::{ChildSpec, ChildState, Restart, Supervisor, WhichChildren};
//! use chronoflow::{Ctx, Reason, SimpleScheduler, Template};
//!
//! // A worker that counts what it is sent, and fails on 0.
//! let counter = Template::<u32, u32, (), ()>::new("counter", |ctx: &mut Ctx<u32>, ()| {
//!     loop {
//!         if ctx.receive() == 0 {
//!             panic!("zero");
//!         }
//!     }
//! });
//! let sup = Supervisor::new("root")
//!     .intensity(3, Duration::from_secs(5))
//!     .child(ChildSpec::new("counter", &counter, ()).name("counter"))
//!     .template()
//!     .unwrap();
//!
//! let mut sched = SimpleScheduler::new();
//! let root = sched.spawn(&sup, ()).unwrap();
//! sched.run_until_idle();
//! let first = sched.whereis("counter").unwrap();
//!
//! // It fails; its supervisor starts it again, under the same name.
//! sched.send_named("counter", 0).unwrap();
//! sched.run_until_idle();
//! let second = sched.whereis("counter").unwrap();
//! assert_ne!(first, second);
//! let children = sched.request(root.pid(), WhichChildren).unwrap();
//! assert_eq!(children[0].child, ChildState::Running(second));
//!
//! // Stopped from outside: its children first, then itself.
//! sched.exit_signal(root.pid(), Reason::Shutdown(None));
//! sched.run_until_idle();
//! assert!(sched.result(&root).unwrap().is_err());
//! assert_eq!(sched.whereis("counter"), None);
//! ```

mod backoff;
mod flags;
mod intensity;
mod requests;
mod run;
pub(crate) mod shutdown;
pub(crate) mod spec;

pub use backoff::Backoff;
pub use flags::{
    AutoShutdown, DynamicSupervisor, SpecError, Strategy, Supervisor, SupervisorTemplate,
};
pub use requests::{
    AddChild, ChildCounts, ChildError, ChildInfo, ChildRef, ChildState, CountChildren, DeleteChild,
    RestartChild, StartChild, TerminateChild, WhichChildren,
};
pub use spec::{ChildKind, ChildSpec, DynamicSpec, Restart, Shutdown};

use crate::engine::stackful::context::Ctx;
use crate::otp::mail::{Mail, MailRef};
use crate::reason::Reason;
use crate::signal::Pid;

/// Stops supervisor `sup` with `reason` and waits for its end (OTP's
/// `gen_server:stop/3` with an infinite timeout): it stops its children in
/// reverse start order, then ends. Returns the reason it ended with
/// ([`Reason::NoProc`] if it was not alive).
///
/// A caller linked to it (its parent) gets its EXIT too, as in OTP: one that
/// does not trap exits ends with it unless the reason is `Normal`.
pub fn stop<M: 'static>(ctx: &mut Ctx<M>, sup: Pid, reason: Reason) -> Reason {
    let monitor = ctx.monitor(sup);
    ctx.exit_signal(sup, reason);
    match ctx.select_mail(|m| matches!(m, MailRef::Down { monitor: r, .. } if r == monitor)) {
        Mail::Down { reason, .. } => reason,
        _ => unreachable!("selected a DOWN"),
    }
}
