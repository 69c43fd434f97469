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
//! go on: [`receive!`](crate::receive), [`select!`](crate::select),
//! [`send!`](crate::send), [`send_to!`](crate::send_to),
//! [`sleep!`](crate::sleep), [`join!`](crate::join) and
//! [`yield_now!`](crate::yield_now). The calls that never wait are methods of
//! [`StacklessCtx`].
//!
//! A crate that writes stackless bodies needs `#![feature(coroutines)]` (the
//! toolchain is nightly).
//!
//! ```
//! #![feature(coroutines)]
//! use chronoflow::{receive, send_to, Pid, SimpleScheduler, StacklessCtx, StacklessTemplate};
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
//! assert_eq!(sched.result(a), Some(Ok(true)));
//! assert_eq!(sched.result(b), Some(Ok(1)));
//! ```
//!
//! What a stackless process cannot do (yet): run on a
//! [`DurableScheduler`](crate::DurableScheduler) (spawning one there is
//! [`SpawnError::NotDurable`]), transition, or wait on an effect's future. A
//! panic in its body is its failure, as for a stackful process.

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Coroutine, CoroutineState};
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Time;
use crate::context::Child;
use crate::error::{JoinError, SendError, SpawnError};
use crate::kernel::{Ended, Kernel, PPtr, Proc, RESUMING, Resume, Sent, Wait};
use crate::signal::{DropReason, Payload, Pid, SignalKind, Value};
use crate::template::{Options, Spawnable, option_builders, sealed};

/// What a stackless body yields: the process waits for something. Only the
/// context's `poll_*` methods make one; the macros yield it.
#[must_use = "a stackless body yields what it waits for"]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending(pub(crate) Wait);

impl Pending {
    /// Gives the rest of the turn to the other runnable processes (what
    /// [`yield_now!`](crate::yield_now) yields).
    pub const YIELD: Pending = Pending(Wait::Yield);

    /// What the process waits for.
    pub fn wait(&self) -> Wait {
        self.0
    }
}

type MakeEngine<I, O, A> = Arc<dyn Fn(StacklessCtx<I, O>, A) -> Pin<Box<dyn Resume>> + Send + Sync>;

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
    _marker: PhantomData<fn(A) -> R>,
}

impl<I, O, A, R> Clone for StacklessTemplate<I, O, A, R> {
    fn clone(&self) -> Self {
        StacklessTemplate {
            opts: self.opts.clone(),
            body: self.body.clone(),
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

/// A coroutine of a stackless body, behind the engine boundary.
impl<G, R> Resume for G
where
    G: Coroutine<(), Yield = Pending, Return = R>,
    R: Payload,
{
    #[inline]
    fn resume(self: Pin<&mut Self>, encode: bool, ended: &mut Option<Ended>) -> Option<Wait> {
        match Coroutine::resume(self, ()) {
            CoroutineState::Yielded(pending) => Some(pending.0),
            CoroutineState::Complete(r) => {
                *ended = Some(Ended {
                    value: encode.then(|| Value::encode(&r)),
                    result: Ok(Box::new(r)),
                });
                None
            }
        }
    }
}

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
            body: Arc::new(move |cx, args| Box::pin(body(cx, args))),
            _marker: PhantomData,
        }
    }
}

impl<I, O, A, R> StacklessTemplate<I, O, A, R> {
    option_builders!("[`send!`](crate::send)");
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
        kernel.create_stackless(self, args, parent)
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

/// The context of a stackless process: its pid, its inbox, what it sends and
/// spawns. It is `Copy`: the body's coroutine captures it.
///
/// It works only while its own process runs (inside the coroutine): a call from
/// anywhere else (the template's body function before it returns the coroutine,
/// another process, the scheduler's owner) panics.
///
/// The calls that may wait are `poll_*` methods, which return what the process
/// must wait for instead of waiting; the macros of [the module](crate::stackless)
/// loop over them, yielding. Each counts against the turn's budget, as for a
/// stackful process, and returns [`Pending::YIELD`] when it is spent.
pub struct StacklessCtx<I, O = I> {
    kernel: NonNull<Kernel<I, O>>,
    me: PPtr<I, O>,
    kernel_id: u64,
    pid: Pid,
}

impl<I, O> Clone for StacklessCtx<I, O> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<I, O> Copy for StacklessCtx<I, O> {}

impl<I, O> fmt::Debug for StacklessCtx<I, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StacklessCtx")
            .field("pid", &self.pid)
            .finish()
    }
}

/// The position of a selective receive ([`StacklessCtx::poll_select`]) in the
/// inbox, kept across its waits so that each message is checked once.
#[derive(Debug, Default, Clone, Copy)]
pub struct Scan {
    next: usize,
    evicted: Option<u64>,
}

/// A sleep in progress ([`StacklessCtx::poll_sleep`]): its deadline, once armed.
#[derive(Debug, Clone, Copy)]
pub struct Sleep {
    duration: Duration,
    armed: bool,
}

impl Sleep {
    /// A sleep of `duration` on the scheduler's clock, armed by its first poll.
    pub fn new(duration: Duration) -> Self {
        Sleep {
            duration,
            armed: false,
        }
    }
}

impl<I: 'static, O: 'static> StacklessCtx<I, O> {
    pub(crate) fn new(
        kernel: NonNull<Kernel<I, O>>,
        me: PPtr<I, O>,
        kernel_id: u64,
        pid: Pid,
    ) -> Self {
        StacklessCtx {
            kernel,
            me,
            kernel_id,
            pid,
        }
    }

    /// The kernel and this process, when this process is the one running.
    #[inline(always)]
    #[allow(clippy::mut_from_ref)] // one process runs at a time, and only it uses its context
    fn enter(&self) -> (&mut Kernel<I, O>, &mut Proc<I, O>) {
        if RESUMING.get() != (self.kernel_id, self.pid) {
            outside(self.pid);
        }
        // SAFETY: the kernel of this id is resuming the process of this pid (checked
        // above): both are alive, and only this process's code runs now. Kernel ids
        // are unique in the program and pids in a kernel, so that process is the
        // one at `me` (records never move). The references live for one call of
        // the context, which does not resume anything.
        unsafe { (&mut *self.kernel.as_ptr(), &mut *self.me.as_ptr()) }
    }

    /// Spends one unit of the turn's budget; `false` when it is spent.
    #[inline(always)]
    fn tick(p: &mut Proc<I, O>) -> bool {
        if p.budget == 0 {
            return false;
        }
        p.budget -= 1;
        true
    }

    /// After taking a message: a freed slot lets one waiting sender retry.
    #[inline]
    fn took(&self, k: &mut Kernel<I, O>, p: &mut Proc<I, O>) {
        if p.has_waiting_senders() && !p.inbox.is_full() {
            k.wake_one_sender(self.me);
        }
    }

    /// This process's pid. (Works anywhere: it is part of the context.)
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// The pid of this process's parent, if it was spawned by a process.
    pub fn parent(&self) -> Option<Pid> {
        self.enter().1.parent
    }

    /// How many messages wait in this process's inbox.
    pub fn inbox_len(&self) -> usize {
        self.enter().1.inbox.queue.len()
    }

    /// The current time, from the scheduler's [`Clock`](crate::Clock).
    pub fn now(&self) -> Time {
        self.enter().0.clock.now()
    }

    /// Takes the head of the inbox; with an empty inbox, or the turn's budget
    /// spent, returns what to wait for. [`receive!`](crate::receive) loops over it.
    #[inline(always)]
    pub fn poll_receive(&self) -> Result<I, Pending> {
        let (k, p) = self.enter();
        if !Self::tick(p) {
            return Err(Pending(Wait::Yield));
        }
        match p.inbox.pop_front() {
            Some(m) => {
                self.took(k, p);
                Ok(m)
            }
            None => Err(Pending(Wait::Message)),
        }
    }

    /// Takes the head of the inbox if there is one, without waiting (and without
    /// counting against the budget).
    pub fn try_receive(&self) -> Option<I> {
        let (k, p) = self.enter();
        let m = p.inbox.pop_front();
        if m.is_some() {
            self.took(k, p);
        }
        m
    }

    /// Selective receive: takes the first message, in arrival order, that matches
    /// `pred`; the others stay in the inbox in their order. `scan` keeps the
    /// position across waits (as BEAM's receive markers do), so that `pred` sees
    /// each message once: use a fresh [`Scan`] for each selective receive.
    /// [`select!`](crate::select) does.
    pub fn poll_select(
        &self,
        scan: &mut Scan,
        mut pred: impl FnMut(&I) -> bool,
    ) -> Result<I, Pending> {
        let (k, p) = self.enter();
        if scan.evicted.is_none() && !Self::tick(p) {
            return Err(Pending(Wait::Yield));
        }
        let inbox = &mut p.inbox;
        // Messages evicted from the head shift the ones already scanned.
        let evicted = *scan.evicted.get_or_insert(inbox.evicted);
        scan.next = scan.next.saturating_sub((inbox.evicted - evicted) as usize);
        scan.evicted = Some(inbox.evicted);
        if let Some(found) = inbox.find_from(scan.next, &mut pred) {
            let m = inbox.remove(found).expect("index within the inbox");
            self.took(k, p);
            *scan = Scan::default();
            return Ok(m);
        }
        scan.next = inbox.queue.len();
        Err(Pending(Wait::Message))
    }

    /// Takes the first message that matches `pred`, dropping every message before
    /// it (a DROP signal each); with none, returns what to wait for.
    pub fn poll_filter(&self, mut pred: impl FnMut(&I) -> bool) -> Result<I, Pending> {
        let (k, p) = self.enter();
        if !Self::tick(p) {
            return Err(Pending(Wait::Yield));
        }
        while let Some(m) = p.inbox.pop_front() {
            self.took(k, p);
            if pred(&m) {
                return Ok(m);
            }
            k.emit(self.me, || SignalKind::Drop {
                msg: m,
                reason: DropReason::Filtered,
            });
        }
        Err(Pending(Wait::Message))
    }

    /// Sends `msg` where the template's route says; as
    /// [`poll_send_to`](Self::poll_send_to) otherwise.
    pub fn poll_send(&self, msg: O) -> Result<(), (O, Pending)> {
        let to = self.enter().1.route.as_ref().and_then(|route| route(&msg));
        self.send_inner(to, msg)
    }

    /// Sends `msg` to `to`. A full inbox (policy `Backoff`) or a spent budget
    /// gives the message back with what to wait for (a BACKOFF signal for the
    /// full inbox); [`send_to!`](crate::send_to) retries after the wait. An
    /// unknown pid, a rejection or a missing route keeps the message with the
    /// undelivered ones, as for a stackful process.
    #[inline(always)]
    pub fn poll_send_to(&self, to: Pid, msg: O) -> Result<(), (O, Pending)> {
        self.send_inner(Some(to), msg)
    }

    #[inline(always)]
    fn send_inner(&self, to: Option<Pid>, msg: O) -> Result<(), (O, Pending)> {
        let (k, p) = self.enter();
        if !Self::tick(p) {
            return Err((msg, Pending(Wait::Yield)));
        }
        p.clear_room_grant();
        let (reason, msg) = match k.send_out(self.me, to, msg) {
            Sent::Delivered => return Ok(()),
            Sent::Full { msg, blocker } if blocker != self.pid => {
                k.emit(self.me, || SignalKind::Backoff { to: blocker });
                if let Some(b) = k.lookup(blocker) {
                    // SAFETY: b is live.
                    unsafe { (*b.as_ptr()).extra().waiting_senders.push_back(self.pid) };
                }
                return Err((msg, Pending(Wait::Room(blocker))));
            }
            Sent::Full { msg, .. } => (crate::UndeliveredReason::WouldDeadlock, msg),
            Sent::Rejected(msg) => (crate::UndeliveredReason::Rejected, msg),
            Sent::NoRoute(msg) => (crate::UndeliveredReason::NoRoute, msg),
            Sent::Unknown(_, msg) => (crate::UndeliveredReason::UnknownPid, msg),
        };
        k.keep_undelivered(self.me, to, reason, msg);
        Ok(())
    }

    /// Sends `msg` where the route says without waiting: a full inbox, a missing
    /// route or an unknown pid gives the message back in the error.
    pub fn try_send(&self, msg: O) -> Result<(), SendError<O>> {
        let to = self.enter().1.route.as_ref().and_then(|route| route(&msg));
        match to {
            Some(to) => self.try_send_to(to, msg),
            None => Err(SendError::NoRoute(msg)),
        }
    }

    /// Sends `msg` to `to` without waiting: a full inbox or an unknown pid gives
    /// the message back in the error.
    pub fn try_send_to(&self, to: Pid, msg: O) -> Result<(), SendError<O>> {
        let (k, _) = self.enter();
        match k.send_out(self.me, Some(to), msg) {
            Sent::Delivered => Ok(()),
            Sent::Full { msg, .. } | Sent::Rejected(msg) => Err(SendError::Full(msg)),
            Sent::NoRoute(msg) => Err(SendError::NoRoute(msg)),
            Sent::Unknown(pid, msg) => Err(SendError::UnknownPid(pid, msg)),
        }
    }

    /// Sleeps: the first poll arms a timer on the scheduler's clock, and the
    /// process waits until it fires. [`sleep!`](crate::sleep) loops over it.
    pub fn poll_sleep(&self, sleep: &mut Sleep) -> Result<(), Pending> {
        let (k, p) = self.enter();
        if !sleep.armed {
            if !Self::tick(p) {
                return Err(Pending(Wait::Yield));
            }
            sleep.armed = true;
            let deadline = k.clock.now() + sleep.duration;
            k.arm_timer(self.me, deadline);
        }
        if p.timed_out() {
            p.clear_timed_out();
            return Ok(());
        }
        Err(Pending(Wait::Timer))
    }

    /// Spawns a child from `template` (stackful or stackless) with `args`: a SPAWN
    /// signal, then the child's START. As [`Ctx::spawn`](crate::Ctx::spawn): the
    /// child starts with a copy of this process's unconsumed inbox, receives what
    /// this process receives, and must be joined ([`join!`](crate::join)) before
    /// this process returns.
    pub fn spawn<A: 'static, R: Payload>(
        &self,
        template: &impl Spawnable<I, O, A, R>,
        args: A,
    ) -> Result<Child<R>, SpawnError>
    where
        I: Clone,
    {
        let (k, p) = self.enter();
        p.budget = p.budget.saturating_sub(1);
        k.clone_in = Some(I::clone);
        let child = template.create_in(k, args, Some(self.pid))?;
        Ok(Child::new(k.adopt(self.me, child)))
    }

    /// Takes `child`'s result if it stopped (a JOIN signal); otherwise returns what
    /// to wait for. [`join!`](crate::join) loops over it.
    pub fn poll_join<R: Payload>(&self, child: Child<R>) -> Result<Result<R, JoinError>, Pending> {
        let (k, p) = self.enter();
        if !Self::tick(p) {
            return Err(Pending(Wait::Yield));
        }
        if !p.children().contains(&child.pid()) {
            return Ok(Err(JoinError::NotAChild(child.pid())));
        }
        match k.take_child::<R>(self.me, child.pid()) {
            Some(result) => Ok(result),
            None => Err(Pending(Wait::Join(child.pid()))),
        }
    }
}

#[cold]
#[inline(never)]
fn outside(pid: Pid) -> ! {
    panic!("the StacklessCtx of process {pid} was used outside that process's turn")
}

/// Takes the head of the inbox, waiting for a message (a stackless
/// [`Ctx::receive`](crate::Ctx::receive)): `receive!(cx)`.
#[macro_export]
macro_rules! receive {
    ($cx:expr) => {
        loop {
            match $cx.poll_receive() {
                ::core::result::Result::Ok(m) => break m,
                ::core::result::Result::Err(pending) => yield pending,
            }
        }
    };
}

/// Selective receive (a stackless [`Ctx::select`](crate::Ctx::select)):
/// `select!(cx, |m| pred)` takes the first message that matches, waiting for one,
/// and leaves the others in order.
#[macro_export]
macro_rules! select {
    ($cx:expr, $pred:expr) => {{
        let mut scan = $crate::Scan::default();
        loop {
            match $cx.poll_select(&mut scan, $pred) {
                ::core::result::Result::Ok(m) => break m,
                ::core::result::Result::Err(pending) => yield pending,
            }
        }
    }};
}

/// Takes the first message that matches, dropping those before it (a stackless
/// [`Ctx::filter`](crate::Ctx::filter)): `filter!(cx, |m| pred)`.
#[macro_export]
macro_rules! filter {
    ($cx:expr, $pred:expr) => {
        loop {
            match $cx.poll_filter($pred) {
                ::core::result::Result::Ok(m) => break m,
                ::core::result::Result::Err(pending) => yield pending,
            }
        }
    };
}

/// Sends where the route says, waiting for room in a full inbox (a stackless
/// [`Ctx::send`](crate::Ctx::send)): `send!(cx, msg)`.
#[macro_export]
macro_rules! send {
    ($cx:expr, $msg:expr) => {{
        let mut msg = $msg;
        loop {
            match $cx.poll_send(msg) {
                ::core::result::Result::Ok(()) => break,
                ::core::result::Result::Err((back, pending)) => {
                    msg = back;
                    yield pending
                }
            }
        }
    }};
}

/// Sends to a pid, waiting for room in a full inbox (a stackless
/// [`Ctx::send_to`](crate::Ctx::send_to)): `send_to!(cx, pid, msg)`.
#[macro_export]
macro_rules! send_to {
    ($cx:expr, $to:expr, $msg:expr) => {{
        let to = $to;
        let mut msg = $msg;
        loop {
            match $cx.poll_send_to(to, msg) {
                ::core::result::Result::Ok(()) => break,
                ::core::result::Result::Err((back, pending)) => {
                    msg = back;
                    yield pending
                }
            }
        }
    }};
}

/// Sleeps for a [`Duration`](std::time::Duration) of the scheduler's clock (a
/// stackless [`Ctx::sleep`](crate::Ctx::sleep)): `sleep!(cx, duration)`.
#[macro_export]
macro_rules! sleep {
    ($cx:expr, $duration:expr) => {{
        let mut sleep = $crate::Sleep::new($duration);
        loop {
            match $cx.poll_sleep(&mut sleep) {
                ::core::result::Result::Ok(()) => break,
                ::core::result::Result::Err(pending) => yield pending,
            }
        }
    }};
}

/// Waits for a child to stop and gives its result (a stackless
/// [`Ctx::join`](crate::Ctx::join)): `join!(cx, child)`.
#[macro_export]
macro_rules! join {
    ($cx:expr, $child:expr) => {{
        let child = $child;
        loop {
            match $cx.poll_join(child) {
                ::core::result::Result::Ok(result) => break result,
                ::core::result::Result::Err(pending) => yield pending,
            }
        }
    }};
}

/// Gives the rest of the turn to the other runnable processes (a stackless
/// [`Ctx::yield_now`](crate::Ctx::yield_now)): `yield_now!()`.
#[macro_export]
macro_rules! yield_now {
    () => {
        yield $crate::Pending::YIELD
    };
}
