//! Erlang-style message-passing processes on stackful coroutines, with signals you
//! can record and replay.
//!
//! A process is a plain Rust closure running on a coroutine of its own. Inside it,
//! [`Ctx::receive`], [`Ctx::select`], [`Ctx::filter`], [`Ctx::join`],
//! [`Ctx::effect_future`] and a [`Ctx::send`] to a full inbox are ordinary calls
//! that suspend the process until they can return: no `async`, no `yield`. A
//! [`SimpleScheduler`] driven from your own loop runs the processes, routes their
//! messages by pid and keeps inboxes bounded. Everything observable is a
//! [`Signal`] (START, SPAWN, JOIN, TRANSITION, USE, SEND, STOP, BACKOFF, DROP,
//! REJECT) that you can record.
//!
//! ```
//! use chronoflow::{Ctx, Pid, SimpleScheduler, Template};
//!
//! #[derive(Debug, Clone)]
//! enum Msg {
//!     Ping(Pid),
//!     Pong,
//! }
//!
//! // A template is a body (context and arguments in, result out) plus options.
//! let pong = Template::new("pong", |ctx: &mut Ctx<Msg>, rounds: u32| {
//!     for _ in 0..rounds {
//!         if let Msg::Ping(from) = ctx.receive() {
//!             ctx.send_to(from, Msg::Pong);
//!         }
//!     }
//! });
//! let ping = Template::new("ping", |ctx: &mut Ctx<Msg>, (peer, rounds): (Pid, u32)| {
//!     for _ in 0..rounds {
//!         let me = ctx.pid();
//!         ctx.send_to(peer, Msg::Ping(me));
//!         ctx.receive(); // suspends until the pong arrives
//!     }
//!     rounds
//! });
//!
//! let mut sched = SimpleScheduler::new();
//! sched.record(); // opt-in: keep every signal for `pull`
//! let b = sched.spawn(&pong, 2).unwrap();
//! let a = sched.spawn(&ping, (b.pid(), 2)).unwrap();
//! sched.run_until_idle();
//!
//! assert_eq!(sched.result(&a), Some(Ok(2)));
//! for signal in sched.pull() {
//!     println!("{signal}");
//! }
//! // <0> #0 START
//! // <1> #0 START
//! // <1> #1 SEND to <0>: Ping(<1>)
//! // <0> #1 SEND to <1>: Pong
//! // <1> #2 SEND to <0>: Ping(<1>)
//! // <0> #2 SEND to <1>: Pong
//! // <0> #3 STOP ()
//! // <1> #3 STOP 2
//! ```
//!
//! Other threads and async tasks send to a scheduler's processes through a
//! [`Sender`] (`Send + Sync + Clone`, with back-pressure), and
//! [`SimpleScheduler::run`] drives a scheduler inside an executor (tokio or any
//! other) without blocking its thread. A scheduler and its processes stay on
//! their thread; what is `Send` is listed in the README ("Threads, async and
//! tokio").
//!
#![cfg_attr(
    feature = "stackless",
    doc = "For millions of tiny processes, a [`StacklessTemplate`] makes stackless ones: \
           nightly coroutines of a few hundred bytes each, on the same scheduler (see the \
           [`stackless`] module)."
)]
#![cfg_attr(
    not(feature = "stackless"),
    doc = "For millions of tiny processes, stackless ones (nightly coroutines of a few \
           hundred bytes each) come with the cargo feature `stackless`, on by default, \
           which needs a nightly toolchain."
)]
//!
//! Failures are handled as in Erlang/OTP (the [`otp`] module): every process
//! ends with a [`Reason`]; [`Ctx::link`], [`Ctx::trap_exit`],
//! [`Ctx::exit_signal`] and [`Ctx::monitor`] spread or report ends, as
//! [`Mail`] (`Exit`, `Down`) beside the process's own messages;
//! [`Ctx::call`] waits for a reply with a timeout; [`Ctx::send_after`] and
//! [`Ctx::start_timer`] run on the scheduler's clock; [`Ctx::register`] and
//! [`Ctx::join_group`] name processes;
//! [`otp::supervisor`] restarts them; and [`otp::server`] (OTP's
//! `gen_server`) and [`otp::agent`] make a process of a state and its
//! handlers.
//!
//! A [`runtime::Runtime`] runs one scheduler per core, each on a thread of its
//! own, for processes that send to each other (with back-pressure), spawn,
//! link and monitor across cores (see the [`runtime`] module).
//!
//! A [`DurableScheduler`] journals every input of its processes (see the
//! [`durable`] module), the toolkit's included: after a crash of the program
//! it rebuilds every process, its links, monitors, names, timers and mail from
//! the journal and carries on, without repeating recorded side effects.
//!
//! The README is the guide: templates, receive/select/filter, effects, children,
//! the scheduler loop, signals and back-pressure. The `examples/` folder holds one
//! program per story (`cargo run --release --example tour` runs them all).
//!
//! # Layout
//!
//! Folders are layers and arrows run down: the multi-core `runtime` over the
//! user-facing schedulers (`scheduler`, `process`, `durable`) and the toolkit
//! (`otp`), over the engines (`engine::stackful`,
//! `engine::stackless`), over the kernel (`kernel`: records, the pass loop,
//! delivery, the process tree, time, recording). The kernel runs every process
//! through a narrow engine boundary and knows no engine; the durable layer reaches
//! it through a hooks trait that it implements, and the kernel knows nothing of
//! it. The README's "Architecture" section maps every file.
//!
//! # Where time and memory go
//!
//! Stacks come from a pool of slabs (many stacks per memory mapping, guard pages
//! between them), so a million idle processes fit in one program, and only the
//! pages a process touches cost memory. With no signal sink attached, the hot path
//! (resume, enqueue, route) does no signal work and allocates nothing per message.
//!
//! # Tracing
//!
//! With the cargo feature `tracing`, the crate emits [`tracing`] events (target
//! `chronoflow::…`, message as below, fields `pid`, `name` where the template's
//! name is at hand, and the details):
//!
//! - `spawn` (DEBUG): a process started (`parent` for a child);
//! - `stop` (DEBUG; WARN when it failed): `exit` is `normal`, `failed` or `killed`,
//!   with the `reason`;
//! - `backoff` (DEBUG): a sender waits for room in the inbox of `to`;
//! - `drop` (DEBUG): a message dropped by an overflow policy or a filter (`reason`);
//! - `exit signal` (DEBUG): `pid` sent an exit signal to `to` (its end along a
//!   link, or `exit_signal`), with its `reason`; `down` (DEBUG): `pid` ended and
//!   `to`'s monitor is told, with the `reason`; `timer dropped` (DEBUG): a timed
//!   message to `to`, a process that had ended;
//! - `undelivered` (DEBUG): a message kept undelivered (`to`, `reason`);
//! - `journal commit` (DEBUG): a durable scheduler committed records up to `lsn`
//!   (`records` of them, in `micros`); `journal commit failed` (ERROR);
//! - `recovery` (INFO): a durable scheduler was rebuilt (`records`, `replayed`,
//!   `fast_forwarded`, `truncated`), after `torn tail cut` (WARN: `file`,
//!   `offset`, `bytes`) when it cut one.
//!
//! They are at the cold points only, never once per message or per turn. Without
//! the feature no code at all is generated for them.
//!
//! [`tracing`]: https://docs.rs/tracing
#![warn(missing_docs)]
#![cfg_attr(feature = "stackless", feature(coroutine_trait))]
// (Unit tests write stackless bodies.)
#![cfg_attr(all(test, feature = "stackless"), feature(coroutines))]

mod clock;
mod driver;
pub mod durable;
mod engine;
mod error;
pub mod journal;
mod kernel;
pub mod otp;
mod process;
mod reason;
pub mod runtime;
mod scheduler;
mod sender;
mod signal;
mod template;
mod trace;

#[cfg(feature = "stackless")]
pub use engine::stackless;

pub use clock::{Clock, ManualClock, SystemClock, Time};
pub use durable::{
    DeterminismViolation, DurableBuilder, DurableScheduler, Interrupted, Recovery, RecoveryError,
};
pub use engine::stackful::context::{Child, Ctx};
pub use engine::stackful::template::{Local, Shared, Sharing, Step, Template, Transition};
pub use error::{ExitError, JoinError, PushError, SendError, SpawnError, StartError};
pub use kernel::inbox::{DEFAULT_CAPACITY, Overflow};
pub use kernel::{DEFAULT_BUDGET, Status, Undelivered, UndeliveredReason, Wait};
pub use otp::{
    CallError, Mail, MailRef, MonitorRef, RegisterError, ReplyTo, Request, RequestType,
    ShutdownReport, TimerRef,
};
pub use process::Process;
pub use reason::Reason;
pub use scheduler::{Handle, Pass, SimpleScheduler};
pub use sender::{SendFuture, Sender};
pub use signal::{
    DecodeError, DropReason, DurablePayload, Exit, Payload, Pid, Signal, SignalData, SignalKind,
    SignalSink, Value,
};
#[cfg(feature = "stackless")]
pub use stackless::StacklessTemplate;
#[cfg(feature = "stackless")]
pub use stackless::context::StacklessCtx;
// What the stackless macros expand to, in the user's crate: public, not
// documented.
#[cfg(feature = "stackless")]
#[doc(hidden)]
pub use otp::stackless::{Calling, Requesting, Signalling, TimedMail};
#[cfg(feature = "stackless")]
#[doc(hidden)]
pub use stackless::{
    Pending,
    context::{Scan, Sleep},
};
pub use template::{DEFAULT_STACK_SIZE, Spawnable};

/// The README's examples, compiled and run as doctests (with the `stackless`
/// feature only: one of them is a stackless process).
#[cfg(all(doctest, feature = "stackless"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
