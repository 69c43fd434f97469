//! The toolkit's calls of a stackless process's [`StacklessCtx`]: links, exit
//! signals, monitors, mail, timers and calls, with the semantics of the
//! stackful [`Ctx`](crate::Ctx)'s (each says where it differs).
//!
//! The calls that never wait are methods; those that may wait are hidden
//! `poll_*` methods that the macros of [`stackless`](crate::stackless) loop
//! over ([`receive_mail!`](crate::stackless::receive_mail) and the others).
//! What a poll keeps across its waits (an armed timer, a call's monitor) is in
//! a small state value that its macro holds. A stackless process that ends in
//! the middle of a wait leaves nothing armed: its end cancels its timer, and
//! drops the monitors it holds.
//!
//! Every call holds the context's re-entry guard (`enter`) while it runs the
//! user code it may run: a `select_mail!` predicate, the request closure of a
//! `call!`, a template's function, the `Drop` of a message or of a reply.

use std::marker::PhantomData;
use std::time::Duration;

use crate::engine::stackless::Pending;
use crate::engine::stackless::context::StacklessCtx;
use crate::error::{ExitError, SpawnError};
use crate::kernel::engine::ExitWith;
use crate::kernel::time::Timed;
use crate::kernel::{Proc, Wait};
use crate::otp::call::{CallError, ReplyTo};
use crate::otp::links::Signalled;
use crate::otp::mail::Notice;
use crate::otp::mail::{Mail, MailRef, MonitorRef, TimerRef};
use crate::otp::request::{Request, RequestType};
use crate::otp::{alive, call, links, mailbox, monitors, timers};
use crate::reason::Reason;
use crate::signal::{Payload, Pid};
use crate::template::Spawnable;

/// A receive of mail with a timeout in progress
/// ([`StacklessCtx::poll_receive_mail_timeout`]): whether its timer is armed.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct TimedMail {
    timeout: Duration,
    armed: bool,
}

impl TimedMail {
    /// A receive that waits at most `timeout` on the scheduler's clock, armed
    /// by its first poll that finds no mail.
    pub fn new(timeout: Duration) -> Self {
        TimedMail {
            timeout,
            armed: false,
        }
    }
}

/// A call in progress ([`StacklessCtx::poll_call`]): its request, until it is
/// made; the request, until it is sent (it may wait for room in the server's
/// inbox); then its monitor, until the call has its outcome.
#[doc(hidden)]
pub struct Calling<R, O, F> {
    server: Pid,
    timeout: Option<Duration>,
    request: Option<F>,
    unsent: Option<O>,
    monitor: Option<MonitorRef>,
    _reply: PhantomData<fn() -> R>,
}

impl<R, O, F: FnOnce(ReplyTo<R>) -> O> Calling<R, O, F> {
    /// A call of `server` with the request that `request` makes, waiting at
    /// most `timeout` (`None`: forever) for the reply.
    pub fn new(server: Pid, request: F, timeout: Option<Duration>) -> Self {
        Calling {
            server,
            timeout,
            request: Some(request),
            unsent: None,
            monitor: None,
            _reply: PhantomData,
        }
    }
}

impl<R, O, F> std::fmt::Debug for Calling<R, O, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Calling")
            .field("server", &self.server)
            .field("timeout", &self.timeout)
            .field("made", &self.request.is_none())
            .field("sent", &self.unsent.is_none())
            .field("monitor", &self.monitor)
            .finish()
    }
}

/// A typed request in progress ([`StacklessCtx::poll_request`]): the request
/// until it is sent, then its monitor until it has its outcome.
#[doc(hidden)]
pub struct Requesting<Q> {
    server: Pid,
    timeout: Option<Duration>,
    request: Option<Q>,
    monitor: Option<MonitorRef>,
}

impl<Q: RequestType> Requesting<Q> {
    /// A request `request` to `server`, waiting at most `timeout` (`None`:
    /// forever) for the answer.
    pub fn new(server: Pid, request: Q, timeout: Option<Duration>) -> Self {
        Requesting {
            server,
            timeout,
            request: Some(request),
            monitor: None,
        }
    }
}

impl<Q> std::fmt::Debug for Requesting<Q> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Requesting")
            .field("server", &self.server)
            .field("timeout", &self.timeout)
            .field("sent", &self.request.is_none())
            .field("monitor", &self.monitor)
            .finish()
    }
}

/// An exit signal being sent ([`StacklessCtx::poll_exit_signal`]): its
/// target, and its reason until it is sent.
#[doc(hidden)]
#[derive(Debug)]
pub struct Signalling {
    to: Pid,
    reason: Option<Reason>,
}

impl Signalling {
    /// The exit signal `reason` to `to`.
    pub fn new(to: Pid, reason: Reason) -> Self {
        Signalling {
            to,
            reason: Some(reason),
        }
    }
}

impl<I: 'static, O: 'static> StacklessCtx<I, O> {
    /// A toolkit call that does not wait counts against the turn's budget (as
    /// [`spawn`](Self::spawn) does): the next call that may wait yields the
    /// turn if it is spent.
    #[inline(always)]
    pub(crate) fn spend(p: &mut Proc<I, O>) {
        p.budget = p.budget.saturating_sub(1);
    }

    /// Ends this process now if an exit signal it sent itself says so; unless
    /// the thread unwinds already (a destructor run by a panic of the body):
    /// the process is ending anyway, and could not unwind again, as with
    /// [`Ctx`](crate::Ctx). (No call of this context may be in progress:
    /// `exit` would refuse it.)
    fn signalled(&self, s: Signalled) {
        if let Signalled::Ends(error) = s
            && !std::thread::panicking()
        {
            self.exit(error);
        }
    }

    /// Ends this process at once with `error` (OTP's `exit(Reason)`), as
    /// [`Ctx::exit`](crate::Ctx::exit) does: its coroutine unwinds (the
    /// destructors of its locals run), and it ends as if it had been ended
    /// from outside for that reason: its result is `Err(error)`, its STOP says
    /// so, and its links and monitors get the [`Reason`]. Not a failure: no
    /// panic message is printed. (A process that ends normally returns.)
    ///
    /// Like the context's other calls, it panics (the process fails) when
    /// called outside its process's turn, or from inside one of the context's
    /// own calls (a predicate, a message's `Drop`). Called while the coroutine
    /// unwinds already (in a destructor run by a panic), it cannot unwind
    /// again: the program aborts, as for any panic there. In a destructor run
    /// while the process is being stopped (killed), it ends that destructor
    /// only: the process ends for the reason it was stopped with.
    pub fn exit(&self, error: ExitError) -> ! {
        // (No mark is made: nothing is left to clear when it unwinds.)
        self.admit();
        std::panic::resume_unwind(Box::new(ExitWith(error)))
    }

    /// Sets whether this process traps exits (OTP's
    /// `process_flag(trap_exit, Flag)`); returns the previous setting. See
    /// [`Ctx::trap_exit`](crate::Ctx::trap_exit).
    pub fn trap_exit(&self, on: bool) -> bool {
        let b = self.enter();
        Self::spend(self.p(&b));
        links::trap_exit(self.k(&b), b.me, on)
    }

    /// Links this process and `pid` (OTP's `link/1`): when either ends, the
    /// other gets an exit signal with its reason. Linking twice is one link.
    /// If `pid` is not alive, this process gets the exit signal
    /// [`Reason::NoProc`] at once (and ends then and there, unless it traps
    /// exits).
    pub fn link(&self, pid: Pid) {
        let b = self.enter();
        Self::spend(self.p(&b));
        let s = links::link(self.k(&b), b.me, pid);
        drop(b);
        self.signalled(s);
    }

    /// Removes the link between this process and `pid`, if there is one (OTP's
    /// `unlink/1`).
    pub fn unlink(&self, pid: Pid) {
        let b = self.enter();
        Self::spend(self.p(&b));
        links::unlink(self.k(&b), self.pid(), pid);
    }

    /// The processes linked to this one, in the order the links were made.
    pub fn links(&self) -> Vec<Pid> {
        let b = self.enter();
        links::links_of(self.k(&b), self.pid())
    }

    /// Sends the exit signal `reason` to `pid` (OTP's `exit/2`): see
    /// [`Reason`] for what it does. A signal that ends this process itself
    /// ends it at once.
    ///
    /// It does not wait: a signal to another process is applied when this
    /// process next waits (before anything else runs then).
    /// [`exit_signal!`](crate::stackless::exit_signal) yields the turn right
    /// after it instead, so that the signal has acted once it goes on (as
    /// [`Ctx::exit_signal`](crate::Ctx::exit_signal) does).
    pub fn exit_signal(&self, pid: Pid, reason: Reason) {
        let b = self.enter();
        Self::spend(self.p(&b));
        let me = self.pid();
        let s = links::exit_signal(self.k(&b), Some(b.me), me, pid, reason, Some(me));
        drop(b);
        self.signalled(s);
    }

    /// Sends an exit signal, then yields the turn once if it is to be applied
    /// (to another process), so that it has acted when the process goes on.
    /// [`exit_signal!`](crate::stackless::exit_signal) loops over it.
    #[doc(hidden)]
    pub fn poll_exit_signal(&self, signal: &mut Signalling) -> Result<(), Pending> {
        if let Some(reason) = signal.reason.take() {
            self.exit_signal(signal.to, reason);
            let b = self.enter();
            if self.k(&b).exits_pending() {
                return Err(Pending::YIELD);
            }
        }
        Ok(())
    }

    /// Spawns a process from `template` (stackful or stackless) with `args`,
    /// linked to this one (OTP's `spawn_link`), before it runs. It is a
    /// process of its own, not a child (it gets none of this process's
    /// messages and need not be joined): its result is not kept, and its end
    /// reaches this process through the link.
    pub fn spawn_link<A: 'static, R: Payload>(
        &self,
        template: &impl Spawnable<I, O, A, R>,
        args: A,
    ) -> Result<Pid, SpawnError> {
        // (The template's function, user code, runs inside the call: the
        // guard refuses it this context.)
        let b = self.enter();
        Self::spend(self.p(&b));
        links::spawn_link(self.k(&b), b.me, template, args)
    }

    /// Spawns a process from `template` with `args`, monitored by this one
    /// (OTP's `spawn_monitor`): as [`spawn_link`](Self::spawn_link), with a
    /// monitor instead of a link.
    pub fn spawn_monitor<A: 'static, R: Payload>(
        &self,
        template: &impl Spawnable<I, O, A, R>,
        args: A,
    ) -> Result<(Pid, MonitorRef), SpawnError> {
        // (The template's function, user code, runs inside the call: the
        // guard refuses it this context.)
        let b = self.enter();
        Self::spend(self.p(&b));
        monitors::spawn_monitor(self.k(&b), b.me, template, args)
    }

    /// Monitors `pid` (OTP's `monitor(process, Pid)`): when it ends, this
    /// process gets one [`Mail::Down`] with this reference and the reason; at
    /// once, with [`Reason::NoProc`], if it is not alive. Each call is a
    /// monitor of its own.
    pub fn monitor(&self, pid: Pid) -> MonitorRef {
        let b = self.enter();
        Self::spend(self.p(&b));
        monitors::monitor(self.k(&b), b.me, pid)
    }

    /// Cancels `monitor` (OTP's `demonitor/2`): whether it was active. With
    /// `flush`, its DOWN is removed too if it came already (OTP's `[flush]`):
    /// then no DOWN of it is ever read.
    pub fn demonitor(&self, monitor: MonitorRef, flush: bool) -> bool {
        let b = self.enter();
        Self::spend(self.p(&b));
        monitors::demonitor(self.k(&b), b.me, monitor, flush)
    }

    /// Takes the next mail in arrival order (a message or a system notice:
    /// DOWN, EXIT, timeout) if there is one, without waiting.
    pub fn try_receive_mail(&self) -> Option<Mail<I>> {
        let b = self.enter();
        Self::spend(self.p(&b));
        mailbox::take_mail(self.k(&b), b.me)
    }

    /// Takes the next mail in arrival order; with none, or the turn's budget
    /// spent, returns what to wait for.
    /// [`receive_mail!`](crate::stackless::receive_mail) loops over it.
    #[doc(hidden)]
    pub fn poll_receive_mail(&self) -> Result<Mail<I>, Pending> {
        let b = self.enter();
        if !Self::tick(self.p(&b)) {
            return Err(Pending(Wait::Yield));
        }
        mailbox::take_mail(self.k(&b), b.me).ok_or(Pending(Wait::Mail))
    }

    /// Takes the next mail, or `None` once `wait`'s timeout has passed; until
    /// then, returns what to wait for. The first poll that finds no mail arms
    /// the process's timer; the poll that ends the wait disarms it.
    /// [`receive_mail_timeout!`](crate::stackless::receive_mail_timeout) loops
    /// over it.
    #[doc(hidden)]
    pub fn poll_receive_mail_timeout(
        &self,
        wait: &mut TimedMail,
    ) -> Result<Option<Mail<I>>, Pending> {
        let b = self.enter();
        if !wait.armed {
            if !Self::tick(self.p(&b)) {
                return Err(Pending(Wait::Yield));
            }
            if let Some(mail) = mailbox::take_mail(self.k(&b), b.me) {
                return Ok(Some(mail));
            }
            mailbox::arm(self.k(&b), b.me, wait.timeout);
            wait.armed = true;
        }
        if let Some(mail) = mailbox::take_mail(self.k(&b), b.me) {
            mailbox::disarm(self.k(&b), b.me);
            wait.armed = false;
            return Ok(Some(mail));
        }
        if mailbox::timed_out(b.me) {
            mailbox::disarm(self.k(&b), b.me);
            wait.armed = false;
            return Ok(None);
        }
        Err(Pending(Wait::Mail))
    }

    /// Selective receive over mail: takes the first piece, in arrival order,
    /// that `pred` matches (messages and notices alike); with none, or the
    /// turn's budget spent, returns what to wait for. `pred` may see a piece
    /// of mail more than once across waits, as with
    /// [`Ctx::select_mail`](crate::Ctx::select_mail).
    /// [`select_mail!`](crate::stackless::select_mail) loops over it.
    #[doc(hidden)]
    pub fn poll_select_mail(
        &self,
        mut pred: impl FnMut(MailRef<'_, I>) -> bool,
    ) -> Result<Mail<I>, Pending> {
        let b = self.enter();
        if !Self::tick(self.p(&b)) {
            return Err(Pending(Wait::Yield));
        }
        // `pred` (user code) runs while the scan holds the record: the busy
        // mark keeps it from reaching it through the context.
        mailbox::select_mail(self.k(&b), b.me, &mut pred).ok_or(Pending(Wait::Mail))
    }

    /// Arms a timer that delivers `msg` to `to` after `delay` on the
    /// scheduler's clock (OTP's `erlang:send_after/3`); see
    /// [`Ctx::send_after`](crate::Ctx::send_after).
    pub fn send_after(&self, delay: Duration, to: Pid, msg: I) -> TimerRef {
        let b = self.enter();
        Self::spend(self.p(&b));
        timers::send_after(self.k(&b), delay, to, msg)
    }

    /// [`send_after`](Self::send_after), unless this turn's budget is spent:
    /// then the message back, with what to wait for (the turn's end);
    /// [`send_after!`](crate::stackless::send_after) arms it after the wait.
    #[doc(hidden)]
    pub fn poll_send_after(
        &self,
        delay: Duration,
        to: Pid,
        msg: I,
    ) -> Result<TimerRef, (I, Pending)> {
        let b = self.enter();
        if !Self::tick(self.p(&b)) {
            return Err((msg, Pending(Wait::Yield)));
        }
        Ok(timers::send_after(self.k(&b), delay, to, msg))
    }

    /// Arms a timer that gives this process [`Mail::Timeout`] with its
    /// reference after `delay` (OTP's `erlang:start_timer/3`).
    pub fn start_timer(&self, delay: Duration) -> TimerRef {
        let b = self.enter();
        Self::spend(self.p(&b));
        timers::start_timer(self.k(&b), delay, self.pid())
    }

    /// [`start_timer`](Self::start_timer) at `deadline` (a server's
    /// interval: deadlines a period apart, that do not drift).
    pub(crate) fn start_timer_at(&self, deadline: crate::clock::Time) -> TimerRef {
        let b = self.enter();
        Self::spend(self.p(&b));
        timers::start_timer_at(self.k(&b), deadline, self.pid())
    }

    /// Cancels `timer` (OTP's `erlang:cancel_timer/1`): the time it had left,
    /// or `None` if it fired or was cancelled before. Its message is dropped.
    pub fn cancel_timer(&self, timer: TimerRef) -> Option<Duration> {
        let b = self.enter();
        Self::spend(self.p(&b));
        let (left, msg) = timers::cancel(self.k(&b), timer)?;
        // (Its `Drop` is user code: the guard is held.)
        drop::<Timed<I>>(msg);
        Some(left)
    }

    /// Calls a server step by step (see [`call!`](crate::stackless::call),
    /// which loops over it, for what a call does): the first poll monitors
    /// the server and makes the request; the request is sent (waiting for
    /// room in a full inbox, as [`send_to!`](crate::stackless::send_to)
    /// does), the timeout armed, and then each poll gives the outcome if it
    /// came, or what to wait for. The poll that gives the outcome takes the
    /// monitor and the timer down. Use a fresh [`Calling`] for each call.
    #[doc(hidden)]
    pub fn poll_call<R: 'static, F: FnOnce(ReplyTo<R>) -> O>(
        &self,
        calling: &mut Calling<R, O, F>,
    ) -> Result<Result<R, CallError>, Pending> {
        self.poll_calling(calling, call::begin)
    }

    /// [`poll_call`](Self::poll_call) of a call whose reply may cross cores
    /// (see [`call_across!`](crate::stackless::call_across)).
    #[doc(hidden)]
    pub fn poll_call_across<R: Send + 'static, F: FnOnce(ReplyTo<R>) -> O>(
        &self,
        calling: &mut Calling<R, O, F>,
    ) -> Result<Result<R, CallError>, Pending> {
        self.poll_calling(calling, call::begin_across)
    }

    /// A call's step, begun by `begin`.
    #[allow(clippy::type_complexity)]
    fn poll_calling<R: 'static, F: FnOnce(ReplyTo<R>) -> O>(
        &self,
        calling: &mut Calling<R, O, F>,
        begin: fn(
            &mut crate::kernel::Kernel<I, O>,
            crate::kernel::PPtr<I, O>,
            Pid,
            F,
        ) -> Result<(MonitorRef, O), CallError>,
    ) -> Result<Result<R, CallError>, Pending> {
        let b = self.enter();
        if calling.request.is_some() {
            if !Self::tick(self.p(&b)) {
                return Err(Pending(Wait::Yield));
            }
            let request = calling.request.take().expect("checked above");
            // (The request's making is user code: the guard is held.)
            let (monitor, msg) = match begin(self.k(&b), b.me, calling.server, request) {
                Ok(begun) => begun,
                Err(e) => return Ok(Err(e)),
            };
            calling.monitor = Some(monitor);
            calling.unsent = Some(msg);
        }
        if let Some(msg) = calling.unsent.take() {
            if let Err((msg, pending)) = self.send_inner(&b, Some(calling.server), msg) {
                calling.unsent = Some(msg);
                return Err(pending);
            }
            call::sent(self.k(&b), b.me, calling.timeout);
        }
        self.poll_reply(&b, &mut calling.monitor, calling.timeout)
    }

    /// The rest of a call or request whose request was sent: its outcome if
    /// it came (and the call is ended: its monitor and timer go), or what to
    /// wait for.
    fn poll_reply<R: 'static>(
        &self,
        b: &crate::engine::stackless::context::Busy<I, O>,
        monitor: &mut Option<MonitorRef>,
        timeout: Option<Duration>,
    ) -> Result<Result<R, CallError>, Pending> {
        let m = monitor.expect("a call is polled again after its outcome");
        match call::poll::<I, O, R>(b.me, m, timeout.is_some()) {
            Some(outcome) => {
                call::end(self.k(b), b.me, m, timeout.is_some(), &outcome);
                *monitor = None;
                Ok(outcome)
            }
            None => Err(Pending(Wait::Mail)),
        }
    }

    /// Sends a typed request step by step (see
    /// [`request!`](crate::stackless::request), which loops over it, and
    /// [`Ctx::request`](crate::Ctx::request) for what a request does): the
    /// first poll puts it in the server's system queue and arms the timeout;
    /// each poll then gives the outcome if it came, or what to wait for. Use
    /// a fresh [`Requesting`] for each request.
    #[doc(hidden)]
    pub fn poll_request<Q: RequestType>(
        &self,
        requesting: &mut Requesting<Q>,
    ) -> Result<Result<Q::Reply, CallError>, Pending> {
        let b = self.enter();
        if let Some(request) = requesting.request.take() {
            if !Self::tick(self.p(&b)) {
                requesting.request = Some(request);
                return Err(Pending(Wait::Yield));
            }
            let server = requesting.server;
            let begun = call::begin(self.k(&b), b.me, server, |to: ReplyTo<Q::Reply>| {
                Request::new(to.pid(), to.tag(), request)
            });
            let (monitor, body) = match begun {
                Ok(begun) => begun,
                Err(e) => return Ok(Err(e)),
            };
            if let Some(s) = alive(self.k(&b), server) {
                self.k(&b)
                    .push_sys_running(s, 0, move || Notice::Request(body).boxed());
            }
            requesting.monitor = Some(monitor);
            call::sent(self.k(&b), b.me, requesting.timeout);
        }
        self.poll_reply(&b, &mut requesting.monitor, requesting.timeout)
    }

    /// [`poll_request`](Self::poll_request) of a request to a server of any
    /// core (see [`request_across!`](crate::stackless::request_across) and
    /// [`Ctx::request_across`](crate::Ctx::request_across)): the request and
    /// its reply `Send`.
    #[doc(hidden)]
    pub fn poll_request_across<Q>(
        &self,
        requesting: &mut Requesting<Q>,
    ) -> Result<Result<Q::Reply, CallError>, Pending>
    where
        Q: RequestType + Send,
        Q::Reply: Send,
    {
        let b = self.enter();
        if let Some(request) = requesting.request.take() {
            if !Self::tick(self.p(&b)) {
                requesting.request = Some(request);
                return Err(Pending(Wait::Yield));
            }
            let begun = crate::otp::request::begin_across(
                self.k(&b),
                b.me,
                requesting.server,
                move || request,
                call::ship_reply::<Q::Reply>,
            );
            match begun {
                Ok(monitor) => requesting.monitor = Some(monitor),
                Err(e) => return Ok(Err(e)),
            }
            call::sent(self.k(&b), b.me, requesting.timeout);
        }
        self.poll_reply(&b, &mut requesting.monitor, requesting.timeout)
    }

    /// Refuses `request` (see [`Ctx::refuse`](crate::Ctx::refuse)).
    pub fn refuse(&self, request: &Request) {
        let b = self.enter();
        Self::spend(self.p(&b));
        crate::otp::request::refuse(self.k(&b), request);
    }

    /// This process runs server loop: its parent (see
    /// [`server_started`](crate::otp::server::server_started)).
    pub(crate) fn server_started(&self) -> Option<Pid> {
        let b = self.enter();
        crate::otp::server::server_started(self.k(&b), b.me)
    }

    /// Puts `body` in `to`'s system queue as a request that is no call (a
    /// server's cast), if `to` is alive.
    pub(crate) fn post<Q: RequestType>(&self, to: Pid, body: Q) {
        let b = self.enter();
        Self::spend(self.p(&b));
        crate::otp::request::post(self.k(&b), self.pid(), to, body);
    }

    /// Puts the request that `make` makes in `to`'s system queue, `to` of
    /// any core, as a request that is no call (see `request::post_across`).
    pub(crate) fn post_across<Q: RequestType>(
        &self,
        to: Pid,
        make: impl FnOnce() -> Q + Send + 'static,
    ) {
        let b = self.enter();
        Self::spend(self.p(&b));
        crate::otp::request::post_across(self.k(&b), self.pid(), to, make);
    }

    /// Refuses the call that `to` answers (a server's stashed call).
    pub(crate) fn refuse_reply_to<R>(&self, to: ReplyTo<R>) {
        let b = self.enter();
        Self::spend(self.p(&b));
        crate::otp::request::refuse_tagged(self.k(&b), to.pid(), to.tag());
    }

    /// Answers the call that `to` names with `value` (OTP's
    /// `gen_server:reply/2`). If the caller has ended, the value is given
    /// back; if its call is over (it timed out), the reply is dropped unread.
    pub fn reply<R: 'static>(&self, to: ReplyTo<R>, value: R) -> Result<(), R> {
        let b = self.enter();
        Self::spend(self.p(&b));
        call::reply(self.k(&b), to, value)
    }

    /// Whether `pid` is a live process (not ended) of this scheduler.
    pub fn is_alive(&self, pid: Pid) -> bool {
        let b = self.enter();
        alive(self.k(&b), pid).is_some()
    }
}
