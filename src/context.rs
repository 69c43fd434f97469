//! `Ctx`: everything a process body can do. Every call that must wait suspends the
//! process's coroutine and returns when what it waited for has happened.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::pin;
use std::ptr::NonNull;
use std::task::{Context, Poll};

use corosensei::Yielder;
use serde::{Deserialize, Serialize};

use crate::error::{JoinError, SendError, SpawnError};
use crate::kernel::{Kernel, PPtr, Sent, Status, Undelivered, UndeliveredReason, Wait};
use crate::signal::{DropReason, Payload, Pid, SignalKind, Value};
use crate::template::Template;

/// A handle on a child process, returned by [`Ctx::spawn`]; [`Ctx::join`] gives
/// back the child's result of type `R`. It is a pid with a type: copy it, keep it
/// in a transition's arguments (it is serde, as its pid), join it once.
#[derive(Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
#[must_use = "a child must be joined: a parent that returns with unjoined children fails"]
pub struct Child<R> {
    pid: Pid,
    #[serde(skip)]
    _result: PhantomData<fn() -> R>,
}

impl<R> Clone for Child<R> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<R> Copy for Child<R> {}

impl<R> Child<R> {
    /// The child's pid.
    pub fn pid(&self) -> Pid {
        self.pid
    }
}

/// The context of a running process: its pid, its inbox, its children, and the
/// effects and sends it performs. `I` is the inbound message type, `O` the
/// outbound one.
///
/// A body gets `&mut Ctx` and calls it like any other object; the calls that wait
/// (`receive`, `select`, `filter`, `join`, `effect_future`, and `send` to a full
/// inbox) suspend the process until they can return.
pub struct Ctx<I, O = I> {
    kernel: NonNull<Kernel<I, O>>,
    me: PPtr<I, O>,
    yielder: NonNull<Yielder<(), Wait>>,
}

impl<I: 'static, O: 'static> Ctx<I, O> {
    pub(crate) fn new(
        kernel: NonNull<Kernel<I, O>>,
        me: PPtr<I, O>,
        yielder: &Yielder<(), Wait>,
    ) -> Self {
        Ctx {
            kernel,
            me,
            yielder: NonNull::from(yielder),
        }
    }

    #[inline]
    fn k(&mut self) -> &mut Kernel<I, O> {
        // SAFETY: the kernel outlives every coroutine it runs, and only the running
        // coroutine touches it while it runs.
        unsafe { &mut *self.kernel.as_ptr() }
    }

    #[inline]
    fn p(&mut self) -> &mut crate::kernel::Proc<I, O> {
        // SAFETY: a process outlives its coroutine.
        unsafe { &mut *self.me.as_ptr() }
    }

    /// Suspends until the scheduler resumes this process.
    fn suspend(&mut self, wait: Wait) {
        if wait != Wait::Yield {
            if wait == Wait::Effect {
                self.k().effects_pending += 1;
            }
            self.p().status = Status::Waiting(wait);
        }
        // SAFETY: the yielder lives on this coroutine's stack for its whole life.
        unsafe { self.yielder.as_ref().suspend(wait) };
    }

    /// Spends one unit of the turn's budget; yields the turn when it is spent.
    #[inline]
    fn tick(&mut self) {
        if self.p().budget == 0 {
            self.suspend(Wait::Yield);
        }
        let p = self.p();
        p.budget = p.budget.saturating_sub(1);
    }

    /// After taking a message: a freed slot lets one waiting sender retry.
    #[inline]
    fn took(&mut self) {
        let p = self.p();
        if !p.waiting_senders.is_empty() && !p.inbox.is_full() {
            let me = self.me;
            self.k().wake_one_sender(me);
        }
    }

    /// This process's pid.
    pub fn pid(&self) -> Pid {
        // SAFETY: a process outlives its coroutine.
        unsafe { self.me.as_ref().pid }
    }

    /// The pid of this process's parent, if it was spawned by a process.
    pub fn parent(&self) -> Option<Pid> {
        // SAFETY: as above.
        unsafe { self.me.as_ref().parent }
    }

    /// How many messages wait in this process's inbox.
    pub fn inbox_len(&self) -> usize {
        // SAFETY: as above.
        unsafe { self.me.as_ref().inbox.queue.len() }
    }

    /// Whether signals are being recorded (a sink is attached).
    pub fn is_recording(&self) -> bool {
        // SAFETY: the kernel outlives its coroutines.
        unsafe { self.kernel.as_ref().is_recording() }
    }

    /// Takes the message at the head of the inbox, waiting for one if it is empty.
    pub fn receive(&mut self) -> I {
        self.tick();
        loop {
            if let Some(m) = self.p().inbox.pop_front() {
                self.took();
                return m;
            }
            self.suspend(Wait::Message);
        }
    }

    /// Takes the head of the inbox if there is one, without waiting.
    pub fn try_receive(&mut self) -> Option<I> {
        self.tick();
        let m = self.p().inbox.pop_front();
        if m.is_some() {
            self.took();
        }
        m
    }

    /// Selective receive: takes the first message, in arrival order, that matches
    /// `pred`; the others stay in the inbox in their order. With no match it waits,
    /// and checks only the messages that arrive (the scan position is kept, as
    /// BEAM's receive markers do), so `pred` sees each message at most once per
    /// call.
    pub fn select(&mut self, mut pred: impl FnMut(&I) -> bool) -> I {
        self.tick();
        let mut i = 0usize;
        let mut evicted = self.p().inbox.evicted;
        loop {
            let inbox = &mut self.p().inbox;
            // Messages evicted from the head shift the ones we already scanned.
            i = i.saturating_sub((inbox.evicted - evicted) as usize);
            evicted = inbox.evicted;
            let len = inbox.queue.len();
            while i < len {
                if pred(&inbox.queue[i]) {
                    let m = inbox.remove(i).expect("index within the inbox");
                    self.took();
                    return m;
                }
                i += 1;
            }
            self.suspend(Wait::Message);
        }
    }

    /// Takes the first message that matches `pred`, dropping every message before
    /// it (a DROP signal each); with none it waits, dropping each non-matching
    /// arrival.
    pub fn filter(&mut self, mut pred: impl FnMut(&I) -> bool) -> I {
        self.tick();
        loop {
            while let Some(m) = self.p().inbox.pop_front() {
                self.took();
                if pred(&m) {
                    return m;
                }
                let me = self.me;
                self.k().emit(me, || SignalKind::Drop {
                    msg: m,
                    reason: DropReason::Filtered,
                });
            }
            self.suspend(Wait::Message);
        }
    }

    /// Sends `msg` where the template's route says. With no route (or a route that
    /// gives none), or to a pid that no longer exists, the message is kept with the
    /// undelivered messages for the owner to read back. When the destination's
    /// inbox is full (policy `Backoff`), this process is suspended (BACKOFF) until
    /// there is room, then delivers.
    pub fn send(&mut self, msg: O) {
        let to = self.p().route.as_ref().and_then(|route| route(&msg));
        self.send_inner(to, msg);
    }

    /// Sends `msg` to `to`, ignoring the route; otherwise as [`Ctx::send`].
    pub fn send_to(&mut self, to: Pid, msg: O) {
        self.send_inner(Some(to), msg);
    }

    fn send_inner(&mut self, to: Option<Pid>, mut msg: O) {
        self.tick();
        let me = self.me;
        loop {
            let deliver = self.k().deliver_out;
            let reason = match deliver(self.k(), me, to, msg) {
                Sent::Delivered => return,
                Sent::Full { msg: m, blocker } if blocker != self.pid() => {
                    let k = self.k();
                    k.emit(me, || SignalKind::Backoff { to: blocker });
                    if let Some(b) = k.lookup(blocker) {
                        // SAFETY: b is live.
                        unsafe { (*b.as_ptr()).waiting_senders.push_back(self.pid()) };
                    }
                    msg = m;
                    self.suspend(Wait::Room(blocker));
                    self.p().room_grant = None;
                    continue;
                }
                Sent::Full { msg: m, .. } => (UndeliveredReason::WouldDeadlock, m),
                Sent::Rejected(m) => (UndeliveredReason::Rejected, m),
                Sent::NoRoute(m) => (UndeliveredReason::NoRoute, m),
                Sent::Unknown(_, m) => (UndeliveredReason::UnknownPid, m),
            };
            self.keep_undelivered(to, reason.0, reason.1);
            return;
        }
    }

    fn keep_undelivered(&mut self, to: Option<Pid>, reason: UndeliveredReason, msg: O) {
        let me = self.me;
        let from = Some(self.pid());
        let k = self.k();
        if let Some(clone) = k.clone_out {
            k.emit(me, || SignalKind::Send {
                to,
                msg: clone(&msg),
            });
        }
        k.undelivered.push(Undelivered {
            from,
            to,
            reason,
            msg,
        });
    }

    /// Sends `msg` where the route says without waiting: a full inbox, a missing
    /// route or an unknown pid gives the message back in the error.
    pub fn try_send(&mut self, msg: O) -> Result<(), SendError<O>> {
        let to = self.p().route.as_ref().and_then(|route| route(&msg));
        self.tick();
        let me = self.me;
        let deliver = self.k().deliver_out;
        match deliver(self.k(), me, to, msg) {
            Sent::Delivered => Ok(()),
            Sent::Full { msg, .. } | Sent::Rejected(msg) => Err(SendError::Full(msg)),
            Sent::NoRoute(msg) => Err(SendError::NoRoute(msg)),
            Sent::Unknown(pid, msg) => Err(SendError::UnknownPid(pid, msg)),
        }
    }

    /// Performs a synchronous side effect (chronoflow's `use`): runs `f`, records
    /// its result in a USE signal, and returns it.
    pub fn effect<T: Payload>(&mut self, f: impl FnOnce() -> T) -> T {
        self.tick();
        let value = f();
        let me = self.me;
        self.k().emit(me, || SignalKind::Use {
            result: Value::encode(&value),
        });
        value
    }

    /// Performs an asynchronous side effect: polls `future` with a real waker,
    /// suspending this process while it is pending (the scheduler makes the process
    /// runnable again when the waker fires, from any thread), then records its
    /// output in a USE signal and returns it. An effect that can fail returns its
    /// error as a value: make `T` a `Result`.
    pub fn effect_future<T: Payload>(&mut self, future: impl Future<Output = T>) -> T {
        self.tick();
        let mut future = pin!(future);
        let pid = self.pid();
        let waker = self.k().waker(pid);
        let mut cx = Context::from_waker(&waker);
        loop {
            if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
                let me = self.me;
                self.k().emit(me, || SignalKind::Use {
                    result: Value::encode(&value),
                });
                return value;
            }
            self.suspend(Wait::Effect);
        }
    }

    /// Gives the rest of this turn to the other runnable processes.
    pub fn yield_now(&mut self) {
        self.suspend(Wait::Yield);
    }

    /// Spawns a child from `template` with `args`: a SPAWN signal, then the child's
    /// START. The child gets its own pid, starts with a copy of this process's
    /// unconsumed inbox, and from now on receives every message this process
    /// receives. It must be joined before this process returns.
    pub fn spawn<A: 'static, R: Payload>(
        &mut self,
        template: &Template<I, O, A, R>,
        args: A,
    ) -> Result<Child<R>, SpawnError>
    where
        I: Clone,
    {
        self.tick();
        let me = self.me;
        let my_pid = self.pid();
        let k = self.k();
        k.clone_in = Some(I::clone);
        let child = k.create(template, args, Some(my_pid), None)?;
        // SAFETY: child and me are distinct live processes.
        let (c, p) = unsafe { (&mut *child.as_ptr(), &mut *me.as_ptr()) };
        c.inbox.queue.extend(p.inbox.queue.iter().cloned());
        p.children.push(c.pid);
        let pid = c.pid;
        let k = self.k();
        k.emit(me, || SignalKind::Spawn { child: pid });
        k.start(child);
        Ok(Child {
            pid,
            _result: PhantomData,
        })
    }

    /// Waits for `child` to stop and returns its result (a JOIN signal). A child
    /// that failed or was killed gives the reason as an error.
    pub fn join<R: Payload>(&mut self, child: Child<R>) -> Result<R, JoinError> {
        self.tick();
        let pid = child.pid;
        if !self.p().children.contains(&pid) {
            return Err(JoinError::NotAChild(pid));
        }
        loop {
            let Some(c) = self.k().lookup(pid) else {
                return Err(JoinError::NotAChild(pid));
            };
            // SAFETY: c is live.
            let cp = unsafe { &mut *c.as_ptr() };
            if cp.status == Status::Stopped {
                let result = cp
                    .result
                    .take()
                    .expect("a stopped child keeps its result until joined");
                let result = match result {
                    Ok(r) => match r.downcast::<R>() {
                        Ok(r) => Ok(*r),
                        Err(r) => {
                            // A handle of another type (made by deserializing): keep
                            // the child for a join with the right one.
                            cp.result = Some(Ok(r));
                            return Err(JoinError::ResultType(pid));
                        }
                    },
                    Err(e) => Err(JoinError::Exited(e)),
                };
                self.p().children.retain(|x| *x != pid);
                let me = self.me;
                let k = self.k();
                k.reap(c);
                k.emit(me, || SignalKind::Join { child: pid });
                return result;
            }
            self.suspend(Wait::Join(pid));
        }
    }

    /// Called by a transition before the new entry runs: TRANSITION, and the new
    /// template's options.
    pub(crate) fn begin_transition<A: Payload, R>(
        &mut self,
        template: &Template<I, O, A, R>,
        args: &A,
    ) {
        self.tick();
        let p = self.p();
        p.route = template.route.clone();
        p.inbox.capacity = template.capacity;
        p.inbox.overflow = template.overflow;
        let me = self.me;
        let entry = template.name.clone();
        self.k().emit(me, || SignalKind::Transition {
            entry,
            args: Value::encode(args),
        });
    }
}
