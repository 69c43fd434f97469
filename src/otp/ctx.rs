//! The toolkit's calls of a stackful process's [`Ctx`]: links, exit signals,
//! monitors, mail, timers and calls.

use std::time::Duration;

use crate::engine::stackful::context::Ctx;
use crate::error::SpawnError;
use crate::kernel::Wait;
use crate::kernel::time::Timed;
use crate::otp::call::{CallError, ReplyTo};
use crate::otp::links::Signalled;
use crate::otp::mail::{Mail, MailRef, MonitorRef, TimerRef};
use crate::otp::{call, links, mailbox, monitors, timers};
use crate::reason::Reason;
use crate::signal::{Payload, Pid};
use crate::template::Spawnable;

impl<I: 'static, O: 'static> Ctx<I, O> {
    /// The toolkit is not journaled yet: a durable process that uses it is held
    /// (reported in `violations()`), before it acts.
    #[inline]
    pub(crate) fn otp_call(&mut self, what: &str) {
        self.tick();
        if self.hooked() {
            self.not_durable(what);
        }
    }

    #[cold]
    fn not_durable(&mut self, what: &str) -> ! {
        self.violation(
            "no record of it: the OTP toolkit is not journaled by a durable scheduler yet".into(),
            what.to_string(),
        )
    }

    /// Ends this process now if an exit signal it sent itself says so;
    /// unless its stack unwinds already (a destructor of a process being
    /// stopped or failing): it is ending anyway, and could not unwind again.
    fn signalled(&mut self, s: Signalled) {
        if let Signalled::Ends(error) = s
            && !self.cannot_wait()
        {
            self.exit(error);
        }
    }

    /// Sets whether this process traps exits (OTP's
    /// `process_flag(trap_exit, Flag)`); returns the previous setting. A
    /// process that traps exits gets exit signals as [`Mail::Exit`] (except
    /// [`Reason::Kill`], which ends it all the same); one that does not is
    /// ended by any signal but `Normal`.
    pub fn trap_exit(&mut self, on: bool) -> bool {
        self.otp_call("trap_exit");
        let me = self.me;
        links::trap_exit(self.k(), me, on)
    }

    /// Links this process and `pid` (OTP's `link/1`): when either ends, the
    /// other gets an exit signal with its reason. Linking twice is one link.
    /// If `pid` is not alive, this process gets the exit signal
    /// [`Reason::NoProc`] at once (and ends, unless it traps exits).
    pub fn link(&mut self, pid: Pid) {
        self.otp_call("link");
        let me = self.me;
        let s = links::link(self.k(), me, pid);
        self.signalled(s);
    }

    /// Removes the link between this process and `pid`, if there is one (OTP's
    /// `unlink/1`).
    pub fn unlink(&mut self, pid: Pid) {
        self.otp_call("unlink");
        let me = self.pid();
        links::unlink(self.k(), me, pid);
    }

    /// The processes linked to this one, in the order the links were made.
    pub fn links(&mut self) -> Vec<Pid> {
        self.otp_call("links");
        let me = self.pid();
        links::links_of(self.k(), me)
    }

    /// Sends the exit signal `reason` to `pid` (OTP's `exit/2`): see
    /// [`Reason`] for what it does. A signal that ends this process itself
    /// ends it at once; one to another process is applied right after this
    /// process's turn, before anything else runs.
    pub fn exit_signal(&mut self, pid: Pid, reason: Reason) {
        self.otp_call("exit_signal");
        let (me, p) = (self.pid(), self.me);
        let s = links::exit_signal(self.k(), Some(p), me, pid, reason, Some(me));
        self.signalled(s);
        if self.k().exits_pending() {
            // Applied before this process goes on (an exit signal is
            // asynchronous in OTP too, but a process that sent one expects it
            // to have acted once it next waits).
            self.yield_now();
        }
    }

    /// Spawns a process from `template` with `args`, linked to this one (OTP's
    /// `spawn_link`), before it runs. It is a process of its own, not a child
    /// (it gets none of this process's messages and need not be joined): its
    /// result is not kept, and its end reaches this process through the link.
    pub fn spawn_link<A: 'static, R: Payload>(
        &mut self,
        template: &impl Spawnable<I, O, A, R>,
        args: A,
    ) -> Result<Pid, SpawnError> {
        self.otp_call("spawn_link");
        let me = self.me;
        links::spawn_link(self.k(), me, template, args)
    }

    /// Spawns a process from `template` with `args`, monitored by this one
    /// (OTP's `spawn_monitor`): as [`spawn_link`](Self::spawn_link), with a
    /// monitor instead of a link.
    pub fn spawn_monitor<A: 'static, R: Payload>(
        &mut self,
        template: &impl Spawnable<I, O, A, R>,
        args: A,
    ) -> Result<(Pid, MonitorRef), SpawnError> {
        self.otp_call("spawn_monitor");
        let me = self.me;
        monitors::spawn_monitor(self.k(), me, template, args)
    }

    /// Monitors `pid` (OTP's `monitor(process, Pid)`): when it ends, this
    /// process gets one [`Mail::Down`] with this reference and the reason;
    /// at once, with [`Reason::NoProc`], if it is not alive. Each call is a
    /// monitor of its own.
    pub fn monitor(&mut self, pid: Pid) -> MonitorRef {
        self.otp_call("monitor");
        let me = self.me;
        monitors::monitor(self.k(), me, pid)
    }

    /// Cancels `monitor` (OTP's `demonitor/2`): whether it was active. With
    /// `flush`, its DOWN is removed too if it came already (OTP's `[flush]`):
    /// then no DOWN of it is ever read.
    pub fn demonitor(&mut self, monitor: MonitorRef, flush: bool) -> bool {
        self.otp_call("demonitor");
        let me = self.me;
        monitors::demonitor(self.k(), me, monitor, flush)
    }

    /// Takes the next mail in arrival order, a message or a system notice
    /// (DOWN, EXIT, timeout), waiting for one. A plain
    /// [`receive`](Self::receive) never sees notices: they wait for this.
    pub fn receive_mail(&mut self) -> Mail<I> {
        self.otp_call("receive_mail");
        let me = self.me;
        loop {
            if let Some(mail) = mailbox::take_mail(self.k(), me) {
                return mail;
            }
            self.suspend(Wait::Mail);
        }
    }

    /// Takes the next mail if there is one, without waiting.
    pub fn try_receive_mail(&mut self) -> Option<Mail<I>> {
        self.otp_call("try_receive_mail");
        let me = self.me;
        mailbox::take_mail(self.k(), me)
    }

    /// Takes the next mail, waiting at most `timeout` on the scheduler's clock:
    /// `None` if none came in time.
    pub fn receive_mail_timeout(&mut self, timeout: Duration) -> Option<Mail<I>> {
        self.otp_call("receive_mail_timeout");
        let me = self.me;
        if let Some(mail) = mailbox::take_mail(self.k(), me) {
            return Some(mail);
        }
        mailbox::arm(self.k(), me, timeout);
        loop {
            if let Some(mail) = mailbox::take_mail(self.k(), me) {
                mailbox::disarm(self.k(), me);
                return Some(mail);
            }
            if mailbox::timed_out(me) || self.cannot_wait() {
                mailbox::disarm(self.k(), me);
                return None;
            }
            self.suspend(Wait::Mail);
        }
    }

    /// Selective receive over mail: takes the first piece, in arrival order,
    /// that `pred` matches (messages and notices alike); the rest stay in
    /// order. With no match it waits (OTP's `receive` with patterns: "my
    /// message, or the DOWN of the process I wait on", in one call). `pred`
    /// may see a piece of mail more than once across waits.
    pub fn select_mail(&mut self, mut pred: impl FnMut(MailRef<'_, I>) -> bool) -> Mail<I> {
        self.otp_call("select_mail");
        let me = self.me;
        loop {
            if let Some(mail) = mailbox::select_mail(self.k(), me, &mut pred) {
                return mail;
            }
            self.suspend(Wait::Mail);
        }
    }

    /// The first piece of mail that `pred` matches, taken (a selective take
    /// that does not wait).
    pub(crate) fn find_mail(
        &mut self,
        pred: &mut impl FnMut(MailRef<'_, I>) -> bool,
    ) -> Option<Mail<I>> {
        let me = self.me;
        mailbox::select_mail(self.k(), me, pred)
    }

    /// Arms a timer that delivers `msg` to `to` after `delay` on the
    /// scheduler's clock (OTP's `erlang:send_after/3`). It goes to `to`'s
    /// inbox alone (not to its children), past its capacity if it is full
    /// (a timer cannot wait); if `to` has ended by then, it is dropped and
    /// counted.
    pub fn send_after(&mut self, delay: Duration, to: Pid, msg: I) -> TimerRef {
        self.otp_call("send_after");
        timers::send_after(self.k(), delay, to, msg)
    }

    /// Arms a timer that gives this process [`Mail::Timeout`] with its
    /// reference after `delay` (OTP's `erlang:start_timer/3`).
    pub fn start_timer(&mut self, delay: Duration) -> TimerRef {
        self.otp_call("start_timer");
        let me = self.pid();
        timers::start_timer(self.k(), delay, me)
    }

    /// Cancels `timer` (OTP's `erlang:cancel_timer/1`): the time it had left,
    /// or `None` if it fired or was cancelled before. Its message is dropped.
    pub fn cancel_timer(&mut self, timer: TimerRef) -> Option<Duration> {
        self.otp_call("cancel_timer");
        let (left, msg) = timers::cancel(self.k(), timer)?;
        drop::<Timed<I>>(msg);
        Some(left)
    }

    /// Calls `server`: sends it the request that `request` makes of a
    /// [`ReplyTo`], and waits for the reply (OTP's `gen_server:call/3`), at
    /// most `timeout` on the scheduler's clock (`None`: forever).
    ///
    /// The server is monitored during the call: if it is not alive, or ends
    /// before it replies, the call ends at once with [`CallError::NoProc`] or
    /// [`CallError::Down`]. A reply that comes after the timeout is dropped,
    /// never taken for another call's. The request is sent as
    /// [`send_to`](Self::send_to) sends: into a full `Backoff` inbox it waits
    /// for room first, and the timeout counts from when it is sent; one that
    /// a `Reject` inbox refuses (or a drop policy drops) is not told to the
    /// caller, which then waits for its timeout (with `None`, for the
    /// server's end). Other mail waits meanwhile, in its order.
    pub fn call<R: 'static>(
        &mut self,
        server: Pid,
        request: impl FnOnce(ReplyTo<R>) -> O,
        timeout: Option<Duration>,
    ) -> Result<R, CallError> {
        self.otp_call("call");
        let me = self.me;
        let (monitor, msg) = call::begin(self.k(), me, server, request)?;
        self.send_to(server, msg);
        self.await_reply(monitor, timeout)
    }

    /// The rest of a call whose request was sent: waits for the reply tagged
    /// `monitor`, the server's DOWN or the timeout (from now), and ends the
    /// call.
    pub(crate) fn await_reply<R: 'static>(
        &mut self,
        monitor: MonitorRef,
        timeout: Option<Duration>,
    ) -> Result<R, CallError> {
        let me = self.me;
        call::sent(self.k(), me, timeout);
        let timed = timeout.is_some();
        let outcome = loop {
            if let Some(outcome) = call::poll::<I, O, R>(me, monitor, timed) {
                break outcome;
            }
            if self.cannot_wait() {
                break Err(CallError::Timeout);
            }
            self.suspend(Wait::Mail);
        };
        call::end(self.k(), me, monitor, timed, &outcome);
        outcome
    }

    /// Answers the call that `to` names with `value` (OTP's
    /// `gen_server:reply/2`). If the caller has ended, the value is given
    /// back; if its call is over (it timed out), the reply is dropped unread.
    pub fn reply<R: 'static>(&mut self, to: ReplyTo<R>, value: R) -> Result<(), R> {
        self.otp_call("reply");
        call::reply(self.k(), to, value)
    }

    /// Whether `pid` is a live process (not ended) of this scheduler.
    pub fn is_alive(&mut self, pid: Pid) -> bool {
        self.otp_call("is_alive");
        crate::otp::alive(self.k(), pid).is_some()
    }
}
