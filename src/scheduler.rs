//! The `SimpleScheduler`: runs processes of one message type, driven from the
//! user's loop.

use std::fmt;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::Arc;

use crate::error::{ExitError, SendError, SpawnError, StartError};
use crate::kernel::time::WakeQueue;
use crate::kernel::{Kernel, PPtr, Recording, Sent, Status, Undelivered, unrecorded};
use crate::sender::Sender;
use crate::signal::{Payload, Pid, Signal, SignalSink};
use crate::template::Spawnable;

/// A typed handle on a top-level process of a scheduler, for its pid and, once it
/// has ended, its result ([`SimpleScheduler::result`]).
///
/// On a [`SimpleScheduler`] the handle owns the result: dropping it says that
/// nobody will read it, and the scheduler frees it (at its next pass, or when
/// the process ends), so a program that spawns a process per request and drops
/// the handles does not grow. To keep the pid alone, copy it out with
/// [`pid`](Self::pid). (A [`DurableScheduler`](crate::DurableScheduler) keeps
/// results until taken, by handle or by pid, whatever becomes of the handle:
/// handles do not survive a crash, results do.) `Send` and `Sync`: a handle may
/// be dropped on any thread.
pub struct Handle<R> {
    pid: Pid,
    /// Where its drop is told; `None`: the result stays when it drops.
    dropped: Option<Arc<WakeQueue>>,
    _result: PhantomData<fn() -> R>,
}

impl<R> Handle<R> {
    pub(crate) fn new(pid: Pid, dropped: Arc<WakeQueue>) -> Handle<R> {
        Handle {
            pid,
            dropped: Some(dropped),
            _result: PhantomData,
        }
    }

    /// The same handle, whose drop leaves the result where it is.
    pub(crate) fn keeping(mut self) -> Handle<R> {
        self.dropped = None;
        self
    }

    /// The process's pid.
    pub fn pid(&self) -> Pid {
        self.pid
    }
}

impl<R> Drop for Handle<R> {
    fn drop(&mut self) {
        if let Some(wakes) = &self.dropped {
            wakes.handle_dropped(self.pid);
        }
    }
}

impl<R> fmt::Debug for Handle<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Handle({})", self.pid)
    }
}

/// What one [`SimpleScheduler::update`] pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Pass {
    /// Process turns run in the pass.
    pub ran: usize,
}

impl Pass {
    /// Nothing ran: every process waits (or has stopped). This is chronoflow's
    /// "done" condition; processes waiting on an effect's future may still wake.
    pub fn is_idle(&self) -> bool {
        self.ran == 0
    }
}

/// A single-threaded scheduler of processes that exchange messages of type `M`.
///
/// It never blocks and never spawns threads: the user's loop drives it with
/// [`update`](Self::update) (one fair pass) or a helper loop
/// ([`run_until_idle`](Self::run_until_idle), [`run_blocking`](Self::run_blocking)).
/// Processes run in a fixed order (the order they became runnable), each for at
/// most a budget of operations per turn, so that a busy process cannot starve the
/// others. Sends are routed by pid; what cannot be delivered is kept
/// ([`take_undelivered`](Self::take_undelivered)).
///
/// ```
/// use chronoflow::{Ctx, SimpleScheduler, Template};
///
/// let echo = Template::new("echo", |ctx: &mut Ctx<(u64, String)>, _: ()| {
///     let (from, text) = ctx.receive();
///     ctx.send_to(chronoflow::Pid(from), (ctx.pid().as_u64(), text.to_uppercase()));
/// });
/// let ask = Template::new("ask", |ctx: &mut Ctx<(u64, String)>, echo: chronoflow::Pid| {
///     ctx.send_to(echo, (ctx.pid().as_u64(), "hello".to_string()));
///     ctx.receive().1
/// });
/// let mut sched = SimpleScheduler::new();
/// let e = sched.spawn(&echo, ()).unwrap();
/// let a = sched.spawn(&ask, e.pid()).unwrap();
/// sched.run_until_idle();
/// assert_eq!(sched.result(&a), Some(Ok("HELLO".to_string())));
/// ```
pub struct SimpleScheduler<M: 'static> {
    kernel: NonNull<Kernel<M, M>>,
}

impl<M: 'static> Default for SimpleScheduler<M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M: 'static> SimpleScheduler<M> {
    /// An empty scheduler; pids start at 0.
    pub fn new() -> Self {
        SimpleScheduler {
            kernel: Kernel::boxed_router(Recording::Off),
        }
    }

    pub(crate) fn kernel(&self) -> &Kernel<M, M> {
        self.k()
    }

    pub(crate) fn kernel_mut(&mut self) -> &mut Kernel<M, M> {
        self.k_mut()
    }

    /// The kernel's root pointer, for calls that may unwind processes (no
    /// reference to it may be held across them).
    pub(crate) fn kernel_ptr(&mut self) -> NonNull<Kernel<M, M>> {
        self.kernel
    }

    #[inline]
    fn k(&self) -> &Kernel<M, M> {
        // SAFETY: the kernel lives as long as the scheduler; no coroutine runs
        // while the scheduler is borrowed from outside.
        unsafe { self.kernel.as_ref() }
    }

    #[inline]
    fn k_mut(&mut self) -> &mut Kernel<M, M> {
        // SAFETY: as above.
        unsafe { &mut *self.kernel.as_ptr() }
    }

    /// Makes the scheduler read time from `clock` (the system clock by default):
    /// timers (`sleep`, `receive_timeout`) and `Ctx::now` follow it. With a
    /// [`ManualClock`](crate::ManualClock), advance it and call
    /// [`update`](Self::update): due timers fire at the start of each pass.
    pub fn set_clock(&mut self, clock: impl crate::Clock + 'static) {
        self.k_mut().clock = Box::new(clock);
    }

    /// The earliest deadline of an armed timer: when to call
    /// [`update`](Self::update) next if nothing else happens.
    pub fn next_deadline(&self) -> Option<crate::Time> {
        self.k().next_deadline()
    }

    /// Sets how many operations (receives, sends, effects, spawns, joins) a process
    /// may do in one turn before it yields to the others (default 2000, at least 1).
    pub fn set_budget(&mut self, budget: u32) {
        self.k_mut().budget = budget.max(1);
    }

    /// Creates a process from `template` with `args`, not yet started. Messages
    /// sent to it queue in its inbox until it starts.
    pub fn create<A: 'static, R: Payload>(
        &mut self,
        template: &impl Spawnable<M, M, A, R>,
        args: A,
    ) -> Result<Handle<R>, SpawnError> {
        let (_, pid) = self.create_top(template, args)?;
        Ok(Handle::new(pid, self.k().wakes.clone()))
    }

    /// Creates a top-level process: its record and its pid.
    fn create_top<A: 'static, R: Payload>(
        &mut self,
        template: &impl Spawnable<M, M, A, R>,
        args: A,
    ) -> Result<(PPtr<M, M>, Pid), SpawnError> {
        let p = template.create_in(self.k_mut(), args, None)?;
        // SAFETY: p is live.
        Ok((p, unsafe { p.as_ref().pid }))
    }

    /// Starts a created process: START, then it runs at the next pass.
    pub fn start(&mut self, pid: Pid) -> Result<(), StartError> {
        let k = self.k_mut();
        let Some(p) = k.lookup(pid) else {
            return Err(if k.finished.contains_key(&pid) {
                StartError::AlreadyStarted(pid)
            } else {
                StartError::UnknownPid(pid)
            });
        };
        // SAFETY: p is live.
        if unsafe { p.as_ref().status } != Status::Created {
            return Err(StartError::AlreadyStarted(pid));
        }
        k.start(p);
        Ok(())
    }

    /// Creates and starts a process.
    pub fn spawn<A: 'static, R: Payload>(
        &mut self,
        template: &impl Spawnable<M, M, A, R>,
        args: A,
    ) -> Result<Handle<R>, SpawnError> {
        let (p, pid) = self.create_top(template, args)?;
        self.k_mut().start(p);
        Ok(Handle::new(pid, self.k().wakes.clone()))
    }

    /// Creates and starts a process whose result nobody will read: it is freed
    /// when the process ends (as when its [`Handle`] is dropped).
    pub fn spawn_detached<A: 'static, R: Payload>(
        &mut self,
        template: &impl Spawnable<M, M, A, R>,
        args: A,
    ) -> Result<Pid, SpawnError> {
        let (p, pid) = self.create_top(template, args)?;
        self.k_mut().start(p);
        self.k_mut().detach(pid);
        Ok(pid)
    }

    /// Sends `msg` to `to` from outside. A full inbox (or a full inbox of one of
    /// its descendants, which receive what it receives) or an unknown pid gives the
    /// message back in the error.
    pub fn send(&mut self, to: Pid, msg: M) -> Result<(), SendError<M>> {
        match self.k_mut().deliver(None, to, msg, unrecorded::<M>) {
            Sent::Delivered => Ok(()),
            Sent::Full { msg, .. } | Sent::Rejected(msg) => Err(SendError::Full(msg)),
            Sent::NoRoute(msg) => Err(SendError::NoRoute(msg)),
            Sent::Unknown(pid, msg) => Err(SendError::UnknownPid(pid, msg)),
        }
    }

    /// One fair pass: every process runnable when the pass begins runs one turn (up
    /// to the budget), in order; processes made runnable during the pass run in the
    /// next one.
    ///
    /// # Panics
    /// A panic of the signal sink, or of the destructor of a message the scheduler
    /// drops (in the inbox of a process that ended, say), is caught where it
    /// happens and resumed here, once the run is over and the scheduler
    /// consistent: the first one (later ones in the same run are dropped). One
    /// caught during a call from outside (`send`, `spawn`) is resumed by the next
    /// run.
    pub fn update(&mut self) -> Pass {
        // SAFETY: no reference to the kernel is held across the call.
        Pass {
            ran: unsafe { Kernel::update::<crate::engine::Engines>(self.kernel) },
        }
    }

    /// Runs passes until one runs nothing. Returns the number of turns run.
    ///
    /// # Panics
    /// A panic of the signal sink, or of the destructor of a message the scheduler
    /// drops (in the inbox of a process that ended, say), is caught where it
    /// happens and resumed here, once the run is over and the scheduler
    /// consistent: the first one (later ones in the same run are dropped). One
    /// caught during a call from outside (`send`, `spawn`) is resumed by the next
    /// run.
    pub fn run_until_idle(&mut self) -> usize {
        // SAFETY: as in `update`.
        unsafe { Kernel::run_until_idle::<crate::engine::Engines>(self.kernel) }
    }

    /// Runs until no process can run and nothing can wake one: no process waits
    /// on an effect's future or a timer, and no [`Sender`] of this scheduler is
    /// alive (nor is its mail waiting). Between idle passes it blocks the thread
    /// until a future's waker fires, mail comes or the next timer is due.
    pub fn run_blocking(&mut self) -> usize {
        // SAFETY: as in `update`.
        unsafe { Kernel::run_blocking::<crate::engine::Engines>(self.kernel) }
    }

    /// The async [`run_blocking`](Self::run_blocking): runs passes, and between
    /// them awaits the next wake-up (an effect's waker, mail from a [`Sender`])
    /// or timer without blocking the thread, so that the scheduler lives inside
    /// an executor: a tokio current-thread runtime or `LocalSet`, or any other.
    /// It yields to the executor every few thousand turns, so that the other
    /// tasks of its thread run too. Returns the number of turns run, once no
    /// process can run and nothing can wake one (as for `run_blocking`: while a
    /// `Sender` lives, it waits for its mail).
    ///
    /// The future borrows the scheduler and is not `Send` (processes stay on
    /// their thread): spawn it with `spawn_local`, or await it in `block_on`.
    /// Timers are served by one thread of the program (`chronoflow-timer`),
    /// started on first need, so that no executor's timer is required.
    ///
    /// # Panics
    /// As [`run_until_idle`](Self::run_until_idle).
    pub async fn run(&mut self) -> usize {
        match crate::driver::run(self).await {
            Ok(turns) => turns,
            Err(never) => match never {},
        }
    }

    /// A handle through which other threads and tasks send to this scheduler's
    /// processes, with at most [`DEFAULT_CAPACITY`](crate::DEFAULT_CAPACITY)
    /// messages in flight (see [`Sender`]). All senders of a scheduler share its
    /// mail: the first call sets the capacity.
    pub fn sender(&mut self) -> Sender<M>
    where
        M: Send,
    {
        self.sender_with_capacity(crate::DEFAULT_CAPACITY)
    }

    /// A [`Sender`] whose scheduler lets at most `capacity` messages be in
    /// flight from other threads (at least one), if this is the first sender
    /// made; otherwise the capacity set by the first.
    pub fn sender_with_capacity(&mut self, capacity: usize) -> Sender<M>
    where
        M: Send,
    {
        Sender::new(self.k_mut().mail(capacity))
    }

    /// Where process `pid` stands; `None` for a pid that never existed, or whose
    /// process ended and whose result was taken (or joined).
    pub fn status(&self, pid: Pid) -> Option<Status> {
        let k = self.k();
        match k.lookup(pid) {
            // SAFETY: p is live.
            Some(p) => Some(unsafe { p.as_ref().status }),
            None => k.finished.contains_key(&pid).then_some(Status::Stopped),
        }
    }

    /// The name of the template `pid` was started from.
    pub fn name(&self, pid: Pid) -> Option<&str> {
        // SAFETY: p is live; the name lives as long as the process.
        self.k()
            .lookup(pid)
            .map(|p| unsafe { &*p.as_ptr() }.name.as_ref())
    }

    /// How many messages wait in `pid`'s inbox.
    pub fn inbox_len(&self, pid: Pid) -> Option<usize> {
        // SAFETY: p is live.
        self.k()
            .lookup(pid)
            .map(|p| unsafe { p.as_ref().inbox.queue.len() })
    }

    /// How many messages `pid`'s inbox dropped under a drop policy.
    pub fn dropped(&self, pid: Pid) -> Option<u64> {
        // SAFETY: p is live.
        self.k()
            .lookup(pid)
            .map(|p| unsafe { p.as_ref().dropped() })
    }

    /// How many processes exist (created, running, waiting, or stopped and waiting
    /// for their parent's join).
    pub fn live(&self) -> usize {
        self.k().live()
    }

    /// Takes the result of an ended top-level process: `None` while it runs (or once
    /// taken).
    pub fn result<R: Payload>(&mut self, handle: &Handle<R>) -> Option<Result<R, ExitError>> {
        self.k_mut().take_result(handle.pid)
    }

    /// Takes the messages kept because they could not be delivered, oldest first.
    pub fn take_undelivered(&mut self) -> Vec<Undelivered<M>> {
        std::mem::take(&mut self.k_mut().undelivered)
    }

    /// Starts recording signals into a buffer that [`pull`](Self::pull) drains.
    pub fn record(&mut self)
    where
        M: Clone,
    {
        let k = self.k_mut();
        k.clone_out = Some(M::clone);
        k.recording = Recording::Buffer;
    }

    /// Sends every signal, in emission order, to `sink`. A panic of the sink does
    /// not fail the process whose signal it was: it is resumed by the run
    /// ([`update`](Self::update)) once the scheduler is consistent.
    pub fn set_sink(&mut self, sink: impl SignalSink<M> + 'static)
    where
        M: Clone,
    {
        let k = self.k_mut();
        k.clone_out = Some(M::clone);
        k.recording = Recording::Sink(Box::new(sink));
    }

    /// Stops recording signals: the hot path does no signal work again. Signals
    /// recorded before stay for [`pull`](Self::pull).
    pub fn stop_recording(&mut self) {
        self.k_mut().recording = Recording::Off;
    }

    /// Drains the signals recorded (with [`record`](Self::record)) since the last
    /// pull, in emission order.
    pub fn pull(&mut self) -> Vec<Signal<M>> {
        self.k_mut().take_signals()
    }
}

impl<M: 'static> Drop for SimpleScheduler<M> {
    fn drop(&mut self) {
        // SAFETY: the kernel came from `Kernel::boxed` and is not used again.
        unsafe { Kernel::destroy(self.kernel) }
    }
}

impl<M: 'static> crate::driver::Drive for SimpleScheduler<M> {
    type Error = std::convert::Infallible;

    fn pass(&mut self) -> Result<usize, Self::Error> {
        Ok(self.update().ran)
    }

    fn idle(&self) -> crate::kernel::pass::Idle {
        self.k().idle()
    }

    fn wakes(&self) -> &crate::kernel::time::WakeQueue {
        &self.k().wakes
    }
}
