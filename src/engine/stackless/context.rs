//! `StacklessCtx`: what a stackless body can do. The calls that may wait are
//! `poll_*` methods that return what to wait for instead of waiting.

use std::fmt;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::time::Duration;

use crate::clock::Time;
use crate::engine::stackful::context::Child;
use crate::engine::stackless::{Pending, RESUMING};
use crate::error::{JoinError, SendError, SpawnError};
use crate::kernel::{Kernel, PPtr, Proc, Sent, Wait};
use crate::signal::{DropReason, Payload, Pid, SignalData};
use crate::template::Spawnable;

/// The context of a stackless process: its pid, its inbox, what it sends and
/// spawns. It is `Copy`: the body's coroutine captures it.
///
/// It works only while its own process runs (inside the coroutine): a call from
/// anywhere else (the template's body function before it returns the coroutine,
/// another process, the scheduler's owner) panics. So does a call from inside
/// one of its own calls: from a `select!`/`filter!` predicate, a message's
/// `Clone` or `Drop`, the route, the clock or a signal sink that the call runs.
///
/// The calls that may wait are the macros of [the module](crate::stackless)
/// ([`receive!`](crate::stackless::receive) and the others), which loop over
/// hidden `poll_*` methods of this context that return what the process must
/// wait for instead of waiting, yielding it. Each counts against the turn's
/// budget, as for a stackful process, and yields to the other processes when it
/// is spent.
///
/// The OTP toolkit's calls are here too (links, exit signals, monitors, mail,
/// timed sends, calls), with the semantics of [`Ctx`](crate::Ctx)'s: those
/// that may wait are the macros
/// [`receive_mail!`](crate::stackless::receive_mail),
/// [`receive_mail_timeout!`](crate::stackless::receive_mail_timeout),
/// [`select_mail!`](crate::stackless::select_mail),
/// [`call!`](crate::stackless::call) and
/// [`exit_signal!`](crate::stackless::exit_signal).
///
/// It holds no pointer: only its process's identity (the pid, and the pid
/// space of the kernels that may run it). Each call finds the kernel and the
/// record through the turn that the running kernel set (a thread-local), once
/// it checked that the turn is its own process's. So it keeps working after
/// its process moved to another kernel of the same space (a runtime's
/// migration), and a stale or smuggled copy is refused, never dereferenced.
pub struct StacklessCtx<I, O = I> {
    /// The pid space of the kernels that may run the process (a kernel's own,
    /// or a runtime's, shared by its cores' kernels): every kernel of a space
    /// is a `Kernel<I, O>` (see `kernel::Space`).
    space: u64,
    pid: Pid,
    _types: PhantomData<fn(I) -> O>,
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
#[doc(hidden)]
#[derive(Debug, Default, Clone, Copy)]
pub struct Scan {
    next: usize,
    evicted: Option<u64>,
}

/// A sleep in progress ([`StacklessCtx::poll_sleep`]): its deadline, once armed.
#[doc(hidden)]
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
    /// The context of process `pid`, run by the kernels of pid space `space`
    /// (the kernel that makes it: its `space`, whose kernels are all
    /// `Kernel<I, O>`).
    pub(crate) fn new(space: u64, pid: Pid) -> Self {
        StacklessCtx {
            space,
            pid,
            _types: PhantomData,
        }
    }

    /// Starts a call of this context: checks that its process is the one running
    /// and that no other call of this context is in progress, and marks one in
    /// progress until the returned guard drops (when the call returns or unwinds).
    ///
    /// While a call runs, the library may call user code: a `select!`/`filter!`
    /// predicate, a message's `Clone` or `Drop`, the route, the clock, a signal
    /// sink, a template's function and its arguments. The context is `Copy`, so
    /// that code may hold it; if it used it, the nested call would make a second
    /// `&mut` to the kernel and to this record while the outer call holds (and
    /// iterates) them. It panics instead (the process fails), since its record
    /// says a call is in progress (`Proc::in_call`).
    #[inline(always)]
    pub(crate) fn enter(&self) -> Busy<I, O> {
        let mut b = self.admit();
        // SAFETY: as in `admit`; a write of one field.
        unsafe { (*b.me.as_ptr()).in_call = true };
        b.mark = true;
        b
    }

    /// Checks that this context's process is the one running (the turn in
    /// [`RESUMING`] is its own) and that no call of its context is in
    /// progress; gives the running kernel and record, unmarked.
    #[inline(always)]
    pub(crate) fn admit(&self) -> Busy<I, O> {
        // SAFETY: `RESUMING` always points to a live turn (see there); a read.
        let turn = unsafe { &*RESUMING.get() };
        if turn.space != self.space || turn.pid != self.pid {
            outside(self.pid);
        }
        // The turn is this process's: it was set by the kernel that is
        // resuming (or stopping) it, on this thread, and is put back when
        // that resume or stop returns or unwinds (`Resuming`). So its
        // pointers are that kernel's root pointer (`Kernel::this`) and the
        // process's live record. Their types are this context's: the kernel
        // is of pid space `space`, and every kernel of a space is a
        // `Kernel<I, O>` of the same `I` and `O` (`kernel::Space` is typed),
        // as is the kernel that made this context. (A process is resumed on
        // one thread at a time: no other thread holds this turn now.)
        let kernel = turn.kernel.cast::<Kernel<I, O>>();
        let me = turn.me.cast::<Proc<I, O>>();
        // SAFETY: `me` is the running process's live record (above). One field
        // is read through the raw pointer; no reference to the record is made.
        if unsafe { (*me.as_ptr()).in_call } {
            reentered(self.pid);
        }
        Busy {
            kernel,
            me,
            mark: false,
        }
    }

    /// As [`enter`](Self::enter), for a call that runs no user code at all (it
    /// moves a message out of the inbox and wakes a sender): nothing can re-enter
    /// during it, so it does not mark the context busy. It is still refused when
    /// it is itself the re-entry (inside another call's callback), or outside the
    /// turn.
    #[inline(always)]
    fn enter_plain(&self) -> Busy<I, O> {
        self.admit()
    }

    /// The kernel, for one step of a call.
    ///
    /// Never held across a use of [`p`](Self::p) or across user code that may
    /// reach the kernel other than through this context (none can: the scheduler's
    /// owner is outside the turn, other processes' contexts refuse to work).
    #[inline(always)]
    #[allow(clippy::mut_from_ref)] // one call of one context at a time: see `enter`
    pub(crate) fn k(&self, b: &Busy<I, O>) -> &mut Kernel<I, O> {
        // SAFETY: a `Busy` exists only inside a call of this context, which
        // `admit` admitted, and holds the pointers of the turn it checked: the
        // kernel at `b.kernel` is resuming (or stopping) this process, so it is
        // alive and nothing else uses it (the pass loop holds no reference
        // across a resume or a stop). `b.kernel` is the kernel's own root
        // pointer (`Kernel::this`), so this reference does not invalidate the
        // one the scheduler re-derives its references from. No other call of
        // this context runs (the busy mark).
        unsafe { &mut *b.kernel.as_ptr() }
    }

    /// This process's record, for one step of a call: dropped before any kernel
    /// method is given `b.me` (which makes its own reference to the record).
    #[inline(always)]
    #[allow(clippy::mut_from_ref)] // one call of one context at a time: see `enter`
    pub(crate) fn p(&self, b: &Busy<I, O>) -> &mut Proc<I, O> {
        // SAFETY: as in `k`: the process is running, and `b.me` is its record
        // (records never move, and a running process is never freed). Records
        // live in the slab, apart from the `Kernel` struct, so this does not
        // overlap a reference from `k`.
        unsafe { &mut *b.me.as_ptr() }
    }

    /// Spends one unit of the turn's budget; `false` when it is spent.
    #[inline(always)]
    pub(crate) fn tick(p: &mut Proc<I, O>) -> bool {
        if p.budget == 0 {
            return false;
        }
        p.budget -= 1;
        true
    }

    /// After taking a message: a freed slot lets one waiting sender retry.
    #[inline]
    fn took(&self, b: &Busy<I, O>) {
        let p = self.p(b);
        if p.has_waiting_senders() && !p.inbox.is_full() {
            // (`p` is not used again: `wake_one_sender` reaches the record itself.)
            self.k(b).wake_one_sender(b.me);
        }
    }

    /// This process's pid. (Works anywhere: it is part of the context.)
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// The pid of this process's parent, if it was spawned by a process.
    pub fn parent(&self) -> Option<Pid> {
        let b = self.enter();
        self.p(&b).parent
    }

    /// How many messages wait in this process's inbox.
    pub fn inbox_len(&self) -> usize {
        let b = self.enter();
        self.p(&b).inbox.queue.len()
    }

    /// The current time, from the scheduler's [`Clock`](crate::Clock).
    pub fn now(&self) -> Time {
        let b = self.enter();
        self.k(&b).clock.now()
    }

    /// Takes the head of the inbox; with an empty inbox, or the turn's budget
    /// spent, returns what to wait for. [`receive!`](crate::stackless::receive) loops over it.
    #[inline(always)]
    #[doc(hidden)]
    pub fn poll_receive(&self) -> Result<I, Pending> {
        let b = self.enter_plain();
        let p = self.p(&b);
        if !Self::tick(p) {
            return Err(Pending(Wait::Yield));
        }
        match p.inbox.pop_front() {
            Some(m) => {
                self.took(&b);
                Ok(m)
            }
            None => Err(Pending(Wait::Message)),
        }
    }

    /// Takes the head of the inbox if there is one, without waiting (and without
    /// counting against the budget).
    pub fn try_receive(&self) -> Option<I> {
        let b = self.enter_plain();
        let m = self.p(&b).inbox.pop_front();
        if m.is_some() {
            self.took(&b);
        }
        m
    }

    /// Selective receive: takes the first message, in arrival order, that matches
    /// `pred`; the others stay in the inbox in their order. `scan` keeps the
    /// position across waits (as BEAM's receive markers do), so that `pred` sees
    /// each message once: use a fresh [`Scan`] for each selective receive.
    /// [`select!`](crate::stackless::select) does.
    #[doc(hidden)]
    pub fn poll_select(
        &self,
        scan: &mut Scan,
        mut pred: impl FnMut(&I) -> bool,
    ) -> Result<I, Pending> {
        let b = self.enter();
        let p = self.p(&b);
        if scan.evicted.is_none() && !Self::tick(p) {
            return Err(Pending(Wait::Yield));
        }
        let inbox = &mut p.inbox;
        // Messages evicted from the head shift the ones already scanned.
        let evicted = *scan.evicted.get_or_insert(inbox.head_removed);
        scan.next = scan
            .next
            .saturating_sub((inbox.head_removed - evicted) as usize);
        scan.evicted = Some(inbox.head_removed);
        // `pred` (user code) runs while the scan holds the inbox: the busy mark
        // keeps it from reaching this inbox through the context.
        if let Some(found) = inbox.find_from(scan.next, &mut pred) {
            let m = p.remove_message(found).expect("index within the inbox");
            self.took(&b);
            *scan = Scan::default();
            return Ok(m);
        }
        scan.next = inbox.queue.len();
        Err(Pending(Wait::Message))
    }

    /// Takes the first message that matches `pred`, dropping every message before
    /// it (a DROP signal each); with none, returns what to wait for.
    #[doc(hidden)]
    pub fn poll_filter(&self, mut pred: impl FnMut(&I) -> bool) -> Result<I, Pending> {
        let b = self.enter();
        if !Self::tick(self.p(&b)) {
            return Err(Pending(Wait::Yield));
        }
        while let Some(m) = self.p(&b).inbox.pop_front() {
            self.took(&b);
            if pred(&m) {
                return Ok(m);
            }
            crate::trace::trace_event!(
                tracing::Level::DEBUG,
                pid = self.pid.0,
                reason = "filtered",
                "drop"
            );
            self.k(&b).emit(b.me, || SignalData::Drop {
                msg: m,
                reason: DropReason::Filtered,
            });
        }
        Err(Pending(Wait::Message))
    }

    /// Sends `msg` where the template's route says; as
    /// [`poll_send_to`](Self::poll_send_to) otherwise.
    #[doc(hidden)]
    pub fn poll_send(&self, msg: O) -> Result<(), (O, Pending)> {
        let b = self.enter();
        let to = self.p(&b).route.as_ref().and_then(|route| route(&msg));
        self.send_inner(&b, to, msg)
    }

    /// Sends `msg` to `to`. A full inbox (policy `Backoff`) or a spent budget
    /// gives the message back with what to wait for (a BACKOFF signal for the
    /// full inbox); [`send_to!`](crate::stackless::send_to) retries after the wait. An
    /// unknown pid, a rejection or a missing route keeps the message with the
    /// undelivered ones, as for a stackful process.
    #[inline(always)]
    #[doc(hidden)]
    pub fn poll_send_to(&self, to: Pid, msg: O) -> Result<(), (O, Pending)> {
        let b = self.enter();
        self.send_inner(&b, Some(to), msg)
    }

    #[inline(always)]
    pub(crate) fn send_inner(
        &self,
        b: &Busy<I, O>,
        to: Option<Pid>,
        msg: O,
    ) -> Result<(), (O, Pending)> {
        let p = self.p(b);
        if !Self::tick(p) {
            return Err((msg, Pending(Wait::Yield)));
        }
        let k = self.k(b);
        let sent = k.send_out(b.me, to, msg);
        // Room granted by a full inbox it waited on stays in the record until a
        // retry delivers (a retry that panics leaves it for the process's end to
        // pass on); one that does not passes it on to the next waiting sender.
        if let Some(grant) = self.p(b).take_room_grant()
            && !matches!(sent, Sent::Delivered)
        {
            k.pass_on_grant(Some(grant));
        }
        let (reason, msg) = match sent {
            Sent::Delivered => return Ok(()),
            Sent::Full { msg, blocker } if blocker != self.pid => {
                crate::trace::trace_event!(
                    tracing::Level::DEBUG,
                    pid = self.pid.0,
                    to = blocker.0,
                    "backoff"
                );
                k.emit(b.me, || SignalData::Backoff { to: blocker });
                if let Some(q) = k.lookup(blocker) {
                    // SAFETY: q is live, and not this process's record (its pid is
                    // not ours).
                    unsafe { (*q.as_ptr()).extra().waiting_senders.push_back(self.pid) };
                }
                return Err((msg, Pending(Wait::Room(blocker))));
            }
            Sent::Full { msg, .. } => (crate::UndeliveredReason::WouldDeadlock, msg),
            Sent::Rejected(msg) => (crate::UndeliveredReason::Rejected, msg),
            Sent::NoRoute(msg) => (crate::UndeliveredReason::NoRoute, msg),
            Sent::Unknown(_, msg) => (crate::UndeliveredReason::UnknownPid, msg),
        };
        k.keep_undelivered(b.me, to, reason, msg);
        Ok(())
    }

    /// Sends `msg` where the route says without waiting: a full inbox, a missing
    /// route or an unknown pid gives the message back in the error.
    pub fn try_send(&self, msg: O) -> Result<(), SendError<O>> {
        let b = self.enter();
        let to = self.p(&b).route.as_ref().and_then(|route| route(&msg));
        match to {
            Some(to) => self.try_send_inner(&b, to, msg),
            None => Err(SendError::NoRoute(msg)),
        }
    }

    /// Sends `msg` to `to` without waiting: a full inbox or an unknown pid gives
    /// the message back in the error.
    pub fn try_send_to(&self, to: Pid, msg: O) -> Result<(), SendError<O>> {
        let b = self.enter();
        self.try_send_inner(&b, to, msg)
    }

    fn try_send_inner(&self, b: &Busy<I, O>, to: Pid, msg: O) -> Result<(), SendError<O>> {
        match self.k(b).send_out(b.me, Some(to), msg) {
            Sent::Delivered => Ok(()),
            Sent::Full { msg, .. } => Err(SendError::Full(msg)),
            Sent::Rejected(msg) => {
                self.k(b).emit_reject(b.me, to, &msg);
                Err(SendError::Full(msg))
            }
            Sent::NoRoute(msg) => Err(SendError::NoRoute(msg)),
            Sent::Unknown(pid, msg) => Err(SendError::UnknownPid(pid, msg)),
        }
    }

    /// Sleeps: the first poll arms a timer on the scheduler's clock, and the
    /// process waits until it fires. [`sleep!`](crate::stackless::sleep) loops over it.
    #[doc(hidden)]
    pub fn poll_sleep(&self, sleep: &mut Sleep) -> Result<(), Pending> {
        let b = self.enter();
        if !sleep.armed {
            if !Self::tick(self.p(&b)) {
                return Err(Pending(Wait::Yield));
            }
            let k = self.k(&b);
            let deadline = k.clock.now() + sleep.duration;
            k.arm_timer(b.me, deadline);
            sleep.armed = true;
        }
        let p = self.p(&b);
        if p.timed_out() {
            p.clear_timed_out();
            // Done: polled again, the same `Sleep` sleeps again.
            sleep.armed = false;
            return Ok(());
        }
        Err(Pending(Wait::Timer))
    }

    /// Spawns a child from `template` (stackful or stackless) with `args`: a SPAWN
    /// signal, then the child's START. As [`Ctx::spawn`](crate::Ctx::spawn): the
    /// child starts with a copy of this process's unconsumed inbox, receives what
    /// this process receives, and must be joined ([`join!`](crate::stackless::join)) before
    /// this process returns.
    pub fn spawn<A: 'static, R: Payload>(
        &self,
        template: &impl Spawnable<I, O, A, R>,
        args: A,
    ) -> Result<Child<R>, SpawnError>
    where
        I: Clone,
    {
        let b = self.enter();
        let p = self.p(&b);
        p.budget = p.budget.saturating_sub(1);
        let k = self.k(&b);
        // The template's function (and its arguments' Clone and Drop) and the
        // messages' Clone (copying this inbox into the child's) run inside this
        // call: the busy mark refuses this context to them.
        k.clone_in = Some(I::clone);
        let child = template.create_in(k, args, Some(self.pid))?;
        Ok(Child::new(k.adopt(b.me, child)))
    }

    /// Takes `child`'s result if it stopped (a JOIN signal); otherwise returns what
    /// to wait for. [`join!`](crate::stackless::join) loops over it.
    #[doc(hidden)]
    pub fn poll_join<R: Payload>(&self, child: Child<R>) -> Result<Result<R, JoinError>, Pending> {
        let b = self.enter();
        let p = self.p(&b);
        if !Self::tick(p) {
            return Err(Pending(Wait::Yield));
        }
        if !p.children().contains(&child.pid()) {
            return Ok(Err(JoinError::NotAChild(child.pid())));
        }
        // (Reaping the child drops what its inbox held: user code, busy mark.)
        match self.k(&b).take_child::<R>(b.me, child.pid()) {
            Some(result) => Ok(result),
            None => Err(Pending(Wait::Join(child.pid()))),
        }
    }
}

/// A call of a context in progress: clears its record's in-call mark when
/// dropped, by a return or by an unwind (then the process fails, or a `stop`
/// ends; either way its next call starts clean). `None`: a call that made no mark.
/// It carries the running kernel and the process's record, as the turn gave
/// them (see [`StacklessCtx::admit`]).
pub(crate) struct Busy<I, O> {
    kernel: NonNull<Kernel<I, O>>,
    /// The process's record.
    pub(crate) me: PPtr<I, O>,
    /// The call marked the record (`in_call`): cleared when dropped.
    mark: bool,
}

impl<I, O> Drop for Busy<I, O> {
    #[inline(always)]
    fn drop(&mut self) {
        if self.mark {
            // SAFETY: the call that made this mark runs in its process's turn (or
            // stop), whose record is alive until the call returns or unwinds.
            unsafe { (*self.me.as_ptr()).in_call = false };
        }
    }
}

/// A call of a context inside one of its own calls' callbacks.
#[cold]
#[inline(never)]
fn reentered(pid: Pid) -> ! {
    panic!(
        "the StacklessCtx of process {pid} was used re-entrantly, from a callback \
         inside one of its own calls (a select/filter predicate, a message's Clone \
         or Drop, a route, a clock, a signal sink, a spawn's template function or \
         arguments, ...)"
    )
}

/// A call of a context outside its process's turn.
#[cold]
#[inline(never)]
fn outside(pid: Pid) -> ! {
    panic!("the StacklessCtx of process {pid} was used outside that process's turn")
}
