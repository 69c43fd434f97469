//! Stackless processes: millions of tiny processes at a few hundred bytes each.
//!
//! A stackful process ([`Template`](crate::Template)) runs on a stack of its own,
//! and pays for it: at least one page of memory once it has run, and a stack
//! switch at every suspension. A stackless process is a nightly Rust coroutine
//! (a `#[coroutine]` closure): the compiler turns its body into a state machine
//! that holds only the locals live across its suspensions, kept on the heap. It
//! shares everything else with stackful processes: the scheduler, pids and
//! routing, bounded inboxes and back-pressure, children, signals.
//!
//! The price is syntax: a stackless body cannot suspend inside a plain call, so
//! every call that may wait is a macro that yields to the scheduler until it can
//! go on: [`receive!`], [`select!`], [`filter!`], [`send!`], [`send_to!`],
//! [`sleep!`], [`join!`] and [`yield_now!`], all in this module (import them
//! from `chronoflow::stackless`, not the crate root). The calls that never wait
//! are methods of [`StacklessCtx`].
//!
//! The OTP toolkit (links, exit signals, monitors, mail, timed sends, calls:
//! see [`Mail`](crate::Mail) and [`Reason`](crate::Reason)) works the same for
//! a stackless process as for a stackful one, through the same kind of
//! macros: [`receive_mail!`], [`receive_mail_timeout!`], [`select_mail!`],
//! [`call!`], [`request!`], [`exit_signal!`] (which lets the signal act
//! before going on, as [`Ctx::exit_signal`](crate::Ctx::exit_signal) does) and
//! [`send_after!`] (which yields the turn once its budget is spent); the
//! calls that never wait ([`link`](StacklessCtx::link),
//! [`monitor`](StacklessCtx::monitor),
//! [`register`](StacklessCtx::register), [`whereis`](StacklessCtx::whereis),
//! [`join_group`](StacklessCtx::join_group),
//! [`spawn_link`](StacklessCtx::spawn_link),
//! [`start_timer`](StacklessCtx::start_timer), [`reply`](StacklessCtx::reply),
//! [`exit`](StacklessCtx::exit), ...) are methods. Stackless and stackful
//! processes link, monitor and call each other alike.
//!
//! ```
//! #![feature(coroutines)]
//! use chronoflow::stackless::{call, receive, receive_mail};
//! use chronoflow::{Mail, Reason, ReplyTo, SimpleScheduler, StacklessCtx, StacklessTemplate};
//!
//! #[derive(Debug, Clone)]
//! enum Msg {
//!     Double(ReplyTo<u32>, u32),
//! }
//!
//! let server = StacklessTemplate::new("server", |cx: StacklessCtx<Msg>, ()| {
//!     #[coroutine]
//!     move || {
//!         let Msg::Double(to, n) = receive!(cx);
//!         let _ = cx.reply(to, 2 * n);
//!     }
//! });
//! let client = StacklessTemplate::new("client", move |cx: StacklessCtx<Msg>, ()| {
//!     let server = server.clone();
//!     #[coroutine]
//!     move || {
//!         cx.trap_exit(true);
//!         let pid = cx.spawn_link(&server, ()).unwrap();
//!         let doubled = call!(cx, pid, |to| Msg::Double(to, 21), None);
//!         // The server returned: its link says so.
//!         let exit = receive_mail!(cx);
//!         (doubled, matches!(exit, Mail::Exit { reason: Reason::Normal, .. }))
//!     }
//! });
//!
//! let mut sched = SimpleScheduler::new();
//! let c = sched.spawn(&client, ()).unwrap();
//! sched.run_until_idle();
//! assert_eq!(sched.result(&c), Some(Ok((Ok(42), true))));
//! ```
//!
//! This engine is the cargo feature `stackless` (on by default), and needs a
//! nightly toolchain: without it, the rest of the crate builds on stable. A crate
//! that writes stackless bodies needs `#![feature(coroutines)]`.
//!
//! ```
//! #![feature(coroutines)]
//! use chronoflow::stackless::{receive, send_to};
//! use chronoflow::{Pid, SimpleScheduler, StacklessCtx, StacklessTemplate};
//!
//! #[derive(Debug, Clone)]
//! enum Msg {
//!     Ping(Pid),
//!     Pong,
//! }
//!
//! // The body is a function of the context and the arguments that returns the
//! // coroutine; the context is `Copy`, so the coroutine just captures it.
//! let pong = StacklessTemplate::new("pong", |cx: StacklessCtx<Msg>, rounds: u32| {
//!     #[coroutine]
//!     move || {
//!         for _ in 0..rounds {
//!             if let Msg::Ping(from) = receive!(cx) {
//!                 send_to!(cx, from, Msg::Pong);
//!             }
//!         }
//!         rounds
//!     }
//! });
//! let ping = StacklessTemplate::new("ping", |cx: StacklessCtx<Msg>, peer: Pid| {
//!     #[coroutine]
//!     move || {
//!         send_to!(cx, peer, Msg::Ping(cx.pid()));
//!         matches!(receive!(cx), Msg::Pong)
//!     }
//! });
//!
//! let mut sched = SimpleScheduler::new();
//! let b = sched.spawn(&pong, 1).unwrap();
//! let a = sched.spawn(&ping, b.pid()).unwrap();
//! sched.run_until_idle();
//! assert_eq!(sched.result(&a), Some(Ok(true)));
//! assert_eq!(sched.result(&b), Some(Ok(1)));
//! ```
//!
//! What a stackless process cannot do (yet): run on a
//! [`DurableScheduler`](crate::DurableScheduler) (spawning one there is
//! [`SpawnError::NotDurable`]), transition, or wait on an effect's future. A
//! panic in its body is its failure, as for a stackful process.

pub(crate) mod context;
mod macros;

// The macros, under their own names here only (see `macros`).
#[doc(inline)]
pub use crate::{
    __chronoflow_call as call, __chronoflow_call_across as call_across,
    __chronoflow_exit_signal as exit_signal, __chronoflow_filter as filter,
    __chronoflow_join as join, __chronoflow_join_across as join_across,
    __chronoflow_receive as receive, __chronoflow_receive_mail as receive_mail,
    __chronoflow_receive_mail_timeout as receive_mail_timeout, __chronoflow_request as request,
    __chronoflow_request_across as request_across, __chronoflow_select as select,
    __chronoflow_select_mail as select_mail, __chronoflow_send as send,
    __chronoflow_send_after as send_after, __chronoflow_send_to as send_to,
    __chronoflow_sleep as sleep, __chronoflow_yield_now as yield_now,
};

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Coroutine, CoroutineState};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::sync::Arc;

use crate::error::{ExitError, SpawnError};
use crate::kernel::blocks::Blocks;
use crate::kernel::options::Options;
use crate::kernel::pass::forget_quietly;
use crate::kernel::{BoxedEngine, Ended, Engine, Kernel, PPtr, Turn, Wait};
use crate::signal::{Payload, Pid};
use crate::template::{Spawnable, option_builders, sealed};
use context::StacklessCtx;

thread_local! {
    /// The turn of the stackless process this thread is resuming (or
    /// stopping): its space and pid, and its kernel and record. A
    /// [`StacklessCtx`] works only while it is its own, and then uses its
    /// pointers (see `StacklessCtx::admit`).
    ///
    /// A pointer to the turn (one word to set and put back per turn, not
    /// four): always valid, to `NO_TURN` or to the turn given to a resume
    /// or a stop that is in progress on this thread (`Resuming` puts back
    /// the previous one before that call returns or unwinds, and the turn
    /// outlives the call).
    pub(crate) static RESUMING: Cell<*const Turn> = const { Cell::new(&NO_TURN.0) };
}

/// Sets [`RESUMING`] for a turn (or a stop) of a stackless process, and puts
/// back what it held when dropped, even by a panic that unwinds out of the turn.
/// What [`RESUMING`] points to outside any turn: of no space.
static NO_TURN: NoTurn = NoTurn(Turn::NONE);

/// [`Turn::NONE`], in a static.
struct NoTurn(Turn);

// SAFETY: never written; its pointers are dangling and never used (its space,
// 0, is no kernel's, so no context accepts it).
unsafe impl Sync for NoTurn {}

struct Resuming(*const Turn);

impl Resuming {
    #[inline(always)]
    fn enter(turn: &Turn) -> Self {
        Resuming(RESUMING.replace(turn))
    }
}

impl Drop for Resuming {
    #[inline(always)]
    fn drop(&mut self) {
        RESUMING.set(self.0);
    }
}

/// What a stackless body yields: the process waits for something. Only the
/// context's `poll_*` methods make one; the macros yield it at once. Yield each
/// one right after the poll that returned it: a stale one parks the process
/// until what it names happens again, which may be never.
#[doc(hidden)]
#[must_use = "a stackless body yields what it waits for"]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending(pub(crate) Wait);

impl Pending {
    /// Gives the rest of the turn to the other runnable processes (what
    /// [`yield_now!`] yields).
    pub const YIELD: Pending = Pending(Wait::Yield);

    /// What the process waits for.
    pub fn wait(&self) -> Wait {
        self.0
    }
}

/// Makes a process's engine from its context and arguments, boxed in one of
/// the kernel's kept blocks if it can.
type MakeEngine<I, O, A> =
    Arc<dyn Fn(StacklessCtx<I, O>, A, &mut Blocks) -> BoxedEngine + Send + Sync>;

/// A stackless process definition: a function of the context and the arguments
/// that returns the process's coroutine, plus the same inbox and route options as
/// a stackful [`Template`](crate::Template) (a stackless process has no stack
/// size). Spawn it with [`SimpleScheduler::spawn`](crate::SimpleScheduler::spawn)
/// or [`Ctx::spawn`](crate::Ctx::spawn), like a stackful one.
///
/// The function runs when the process is created, and should only build the
/// coroutine: the context works inside the coroutine, while the process runs.
pub struct StacklessTemplate<I, O, A, R> {
    pub(crate) opts: Options<O>,
    pub(crate) body: MakeEngine<I, O, A>,
    /// The engine kind its processes are installed with: [`KIND`], or
    /// [`KIND_MIGRATABLE`] when its coroutine type is `Send` (only
    /// [`migratable`](StacklessTemplate::migratable) sets it).
    kind: u8,
    _marker: PhantomData<fn(A) -> R>,
}

impl<I, O, A, R> Clone for StacklessTemplate<I, O, A, R> {
    fn clone(&self) -> Self {
        StacklessTemplate {
            opts: self.opts.clone(),
            body: self.body.clone(),
            kind: self.kind,
            _marker: PhantomData,
        }
    }
}

impl<I, O, A, R> fmt::Debug for StacklessTemplate<I, O, A, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("StacklessTemplate");
        self.opts.debug_into(&mut d);
        d.finish()
    }
}

/// The engine layer's tag of a stackless engine (see
/// [`Dispatch`](crate::kernel::Dispatch)).
pub(crate) const KIND: u8 = 2;

/// The tag of a stackless engine whose coroutine is `Send`, installed only by
/// templates made with [`StacklessTemplate::migratable`]: a layer with several
/// threads (the runtime) may move such an engine to another thread.
pub(crate) const KIND_MIGRATABLE: u8 = crate::engine::MIGRATABLE;

/// A coroutine of a stackless body, behind the engine boundary.
impl<I: 'static, O: 'static, A: 'static, R: Payload> StacklessTemplate<I, O, A, R> {
    /// A template whose `body` makes the process's coroutine from its context and
    /// arguments: `|cx, args| #[coroutine] move || { ... }`. The coroutine's
    /// return value is the process's result.
    pub fn new<F, G>(name: &str, body: F) -> Self
    where
        F: Fn(StacklessCtx<I, O>, A) -> G + Send + Sync + 'static,
        G: Coroutine<(), Yield = Pending, Return = R> + 'static,
    {
        StacklessTemplate {
            opts: Options::new(name),
            body: Arc::new(move |cx, args, blocks| blocks.boxed(body(cx, args))),
            kind: KIND,
            _marker: PhantomData,
        }
    }

    /// As [`new`](Self::new), for a process that a
    /// [`Runtime`](crate::runtime::Runtime) may move to another core to
    /// balance the load (see
    /// [`RuntimeHandle::set_migration`](crate::runtime::RuntimeHandle::set_migration)):
    /// its coroutine (the state it keeps across its waits, the arguments it
    /// captured) must be `Send`, which the compiler checks here. A process
    /// moves only while nothing ties it to its core: see the [runtime's
    /// docs](crate::runtime#migration). On a `SimpleScheduler` it is a
    /// process like any other.
    ///
    /// ```
    /// #![feature(coroutines)]
    /// use chronoflow::stackless::receive;
    /// use chronoflow::{StacklessCtx, StacklessTemplate};
    ///
    /// let worker = StacklessTemplate::migratable("worker", |cx: StacklessCtx<u64>, ()| {
    ///     #[coroutine]
    ///     move || {
    ///         let mut sum = 0;
    ///         while let n @ 1.. = receive!(cx) {
    ///             sum += n;
    ///         }
    ///         sum
    ///     }
    /// });
    /// # let _ = worker;
    /// ```
    pub fn migratable<F, G>(name: &str, body: F) -> Self
    where
        F: Fn(StacklessCtx<I, O>, A) -> G + Send + Sync + 'static,
        G: Coroutine<(), Yield = Pending, Return = R> + Send + 'static,
    {
        StacklessTemplate {
            opts: Options::new(name),
            body: Arc::new(move |cx, args, blocks| blocks.boxed(body(cx, args))),
            kind: KIND_MIGRATABLE,
            _marker: PhantomData,
        }
    }

    /// Whether its processes may move between a runtime's cores (made by
    /// [`migratable`](Self::migratable)).
    pub fn is_migratable(&self) -> bool {
        self.kind == KIND_MIGRATABLE
    }

    /// A template whose coroutine returns `Ok(result)`, or `Err(error)` to
    /// end the process with that reason (OTP's `exit(Reason)` as a body's last
    /// word): what [`StacklessCtx::exit`] does, without unwinding the
    /// coroutine (an unwinding costs some tens of thousands of instructions; a
    /// return, nothing). The stackless [`Step::Exit`](crate::Step::Exit).
    pub fn exiting<F, G>(name: &str, body: F) -> Self
    where
        F: Fn(StacklessCtx<I, O>, A) -> G + Send + Sync + 'static,
        G: Coroutine<(), Yield = Pending, Return = Result<R, ExitError>> + 'static,
    {
        StacklessTemplate {
            opts: Options::new(name),
            body: Arc::new(move |cx, args, blocks| blocks.boxed(Exiting(body(cx, args)))),
            kind: KIND,
            _marker: PhantomData,
        }
    }
}

/// The coroutine of an [`exiting`](StacklessTemplate::exiting) body: its
/// `Err` ends the process with that reason.
struct Exiting<G>(G);

impl<G, R> Engine for Exiting<G>
where
    G: Coroutine<(), Yield = Pending, Return = Result<R, ExitError>>,
    R: Payload,
{
    #[inline]
    fn resume(self: Pin<&mut Self>, turn: &Turn, ended: &mut Option<Ended>) -> Option<Wait> {
        let _resuming = Resuming::enter(turn);
        // SAFETY: the coroutine is pinned structurally: `Exiting` never moves
        // it out, nor gives a `&mut` to it but pinned, here.
        let g = unsafe { self.map_unchecked_mut(|e| &mut e.0) };
        match Coroutine::resume(g, ()) {
            CoroutineState::Yielded(pending) => Some(pending.0),
            CoroutineState::Complete(r) => {
                *ended = Some(match r {
                    Ok(r) => Ended::returned(r),
                    Err(e) => Ended::failed(e),
                });
                None
            }
        }
    }

    fn stop(self: Pin<Box<Self>>, turn: &Turn) {
        let _resuming = Resuming::enter(turn);
        if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(self))) {
            forget_quietly(payload);
        }
    }
}

impl<I, O, A, R> StacklessTemplate<I, O, A, R> {
    option_builders!("[`send!`]");
}

// The kernel is private: so is this trait, sealed.
#[allow(private_interfaces)]
impl<I: 'static, O: 'static, A: 'static, R: Payload> sealed::Create<I, O, A>
    for StacklessTemplate<I, O, A, R>
{
    fn create_in(
        &self,
        kernel: &mut Kernel<I, O>,
        args: A,
        parent: Option<Pid>,
    ) -> Result<PPtr<I, O>, SpawnError> {
        create(kernel, self, args, parent)
    }

    fn template_name(&self) -> &Arc<str> {
        &self.opts.name
    }

    fn stackless(&self) -> bool {
        true
    }
}

impl<I: 'static, O: 'static, A: 'static, R: Payload> Spawnable<I, O, A, R>
    for StacklessTemplate<I, O, A, R>
{
}

/// A coroutine of a stackless body, behind the engine boundary.
impl<G, R> Engine for G
where
    G: Coroutine<(), Yield = Pending, Return = R>,
    R: Payload,
{
    #[inline]
    fn resume(self: Pin<&mut Self>, turn: &Turn, ended: &mut Option<Ended>) -> Option<Wait> {
        let _resuming = Resuming::enter(turn);
        match Coroutine::resume(self, ()) {
            CoroutineState::Yielded(pending) => Some(pending.0),
            CoroutineState::Complete(r) => {
                *ended = Some(Ended::returned(r));
                None
            }
        }
    }

    /// Drops the coroutine (its suspended locals) as if in its turn, so that their
    /// destructors may use its context, as a stackful process's may while its
    /// stack unwinds. A panic in those destructors ends them, and goes no further.
    fn stop(self: Pin<Box<Self>>, turn: &Turn) {
        let _resuming = Resuming::enter(turn);
        if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(self))) {
            // (Its payload's `Drop` may panic too.)
            forget_quietly(payload);
        }
    }
}

/// Creates a stackless process (status `Created`) running `template`'s body on
/// `args`. A durable scheduler refuses it: it cannot be journaled.
pub(crate) fn create<I: 'static, O: 'static, A: 'static, R: Payload>(
    kernel: &mut Kernel<I, O>,
    template: &StacklessTemplate<I, O, A, R>,
    args: A,
    parent: Option<Pid>,
) -> Result<PPtr<I, O>, SpawnError> {
    kernel.spawning(&template.opts.name, &args, true)?;
    let p = kernel.new_record(&template.opts, parent, None)?;
    // SAFETY: p was just made.
    let pid = unsafe { p.as_ref().pid };
    // (No pointer: each turn gives the context its kernel and record.)
    let ctx = StacklessCtx::new(kernel.space, pid);
    let blocks = &mut kernel.blocks;
    let engine = match catch_unwind(AssertUnwindSafe(|| (template.body)(ctx, args, blocks))) {
        Ok(engine) => engine,
        Err(payload) => {
            // SAFETY: p came from `new_record`, was not installed, and is not used
            // again.
            unsafe { kernel.discard(p) };
            resume_unwind(payload);
        }
    };
    kernel.install(p, engine, template.kind);
    Ok(p)
}
