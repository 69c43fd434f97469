//! The toolkit's calls of a stackful process's [`Ctx`]: links, exit signals,
//! monitors, mail, timers and calls.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::time::Duration;

use crate::engine::stackful::context::Ctx;
use crate::error::{ExitError, SpawnError};
use crate::kernel::Wait;
use crate::kernel::hooks::{Call, Expect, Replayed};
use crate::kernel::time::Timed;
use crate::otp::call::EncodedReply;
use crate::otp::call::{CallError, ReplyTo};
use crate::otp::links::Signalled;
use crate::otp::mail::{Mail, MailRef, MonitorRef, TimerRef};
use crate::otp::record::{Answer, Ask, NoticeRecord, OtpCall, Took};
use crate::otp::{call, links, mailbox, monitors, timers};
use crate::reason::Reason;
use crate::signal::{DurablePayload, Payload, Pid};
use crate::template::Spawnable;

impl<I: 'static, O: 'static> Ctx<I, O> {
    /// A call of the toolkit that a durable scheduler does not journal yet
    /// (calls, replies, requests): a durable process that makes it is held
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
            "no record of it: a durable scheduler journals calls made with `Ctx::durable_call`; plain calls and typed requests are not journaled".into(),
            what.to_string(),
        )
    }

    /// A call of the toolkit: `live` makes it. Under a durable scheduler it is
    /// journaled: `ask` is what it asks, `answer` what it answered (recorded
    /// after `live` ran); in replay, `from` gives it back from the recorded
    /// answer and `live` does not run. A plain scheduler pays one test.
    #[inline]
    pub(crate) fn journaled<T>(
        &mut self,
        ask: impl FnOnce() -> Ask,
        live: impl FnOnce(&mut Self) -> T,
        answer: impl FnOnce(&T) -> Answer,
        from: impl FnOnce(Answer) -> Option<T>,
    ) -> T {
        self.tick();
        if !self.hooked() {
            return live(self);
        }
        self.journaled_cold(ask(), live, answer, from)
    }

    #[cold]
    #[inline(never)]
    fn journaled_cold<T>(
        &mut self,
        ask: Ask,
        live: impl FnOnce(&mut Self) -> T,
        answer: impl FnOnce(&T) -> Answer,
        from: impl FnOnce(Answer) -> Option<T>,
    ) -> T {
        if let Some((recorded, _)) = self.otp_replayed(&ask) {
            return match from(recorded) {
                Some(t) => t,
                None => self.otp_mismatch(&ask),
            };
        }
        let t = live(self);
        let answer = answer(&t);
        self.otp_record(ask, answer, None);
        t
    }

    /// In replay, the recorded answer to `ask`, and the message it took.
    pub(crate) fn otp_replayed(&mut self, ask: &Ask) -> Option<(Answer, Option<I>)> {
        match self.replayed(|| Expect::Layer { ask }) {
            Replayed::Layer { call, msg } => {
                let call = call
                    .downcast::<OtpCall>()
                    .expect("the toolkit's own record");
                Some((call.answer, msg))
            }
            _ => None,
        }
    }

    /// Records a call of the toolkit (and the message it took or sent).
    pub(crate) fn otp_record(&mut self, ask: Ask, answer: Answer, msg: Option<&I>) {
        let call = OtpCall { ask, answer };
        self.record(|| Call::Layer { call: &call, msg });
    }

    /// A recorded answer of another kind than the call gives.
    #[cold]
    pub(crate) fn otp_mismatch(&mut self, ask: &Ask) -> ! {
        self.violation(
            format!("{} with an answer of another kind", ask.describe()),
            ask.describe(),
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
        let me = self.me;
        self.journaled(
            || Ask::TrapExit { on },
            |c| links::trap_exit(c.k(), me, on),
            |&was| Answer::Bool(was),
            |a| match a {
                Answer::Bool(was) => Some(was),
                _ => None,
            },
        )
    }

    /// Links this process and `pid` (OTP's `link/1`): when either ends, the
    /// other gets an exit signal with its reason. Linking twice is one link.
    /// If `pid` is not alive, this process gets the exit signal
    /// [`Reason::NoProc`] at once (and ends, unless it traps exits).
    pub fn link(&mut self, pid: Pid) {
        let (me, my_pid) = (self.me, self.pid());
        if !self.hooked() {
            self.tick();
            let s = links::link(self.k(), me, pid);
            self.signalled(s);
            return;
        }
        let (_, s) = self.journaled(
            || Ask::Link { pid },
            |c| {
                let alive = pid == my_pid || crate::otp::alive(c.k(), pid).is_some();
                (alive, links::link(c.k(), me, pid))
            },
            |(alive, s)| Answer::Link {
                alive: *alive,
                ends: ends(s),
            },
            |a| match a {
                Answer::Link { alive, ends } => Some((alive, signalled(ends))),
                _ => None,
            },
        );
        self.signalled(s);
    }

    /// Removes the link between this process and `pid`, if there is one (OTP's
    /// `unlink/1`).
    pub fn unlink(&mut self, pid: Pid) {
        let me = self.pid();
        self.journaled(
            || Ask::Unlink { pid },
            |c| links::unlink(c.k(), me, pid),
            |_| Answer::Done,
            |a| matches!(a, Answer::Done).then_some(()),
        );
    }

    /// The processes linked to this one, in the order the links were made.
    pub fn links(&mut self) -> Vec<Pid> {
        let me = self.pid();
        self.journaled(
            || Ask::Links,
            |c| links::links_of(c.k(), me),
            |pids| Answer::Pids(pids.clone()),
            pids_of,
        )
    }

    /// Sends the exit signal `reason` to `pid` (OTP's `exit/2`): see
    /// [`Reason`] for what it does. A signal that ends this process itself
    /// ends it at once; one to another process is applied right after this
    /// process's turn, before anything else runs.
    pub fn exit_signal(&mut self, pid: Pid, reason: Reason) {
        let (me, p) = (self.pid(), self.me);
        let s = if self.hooked() {
            let asked = reason.clone();
            self.journaled(
                || Ask::ExitSignal {
                    to: pid,
                    reason: asked,
                },
                |c| links::exit_signal(c.k(), Some(p), me, pid, reason, Some(me)),
                |s| Answer::Ends(ends(s)),
                |a| match a {
                    Answer::Ends(e) => Some(signalled(e)),
                    _ => None,
                },
            )
        } else {
            self.tick();
            links::exit_signal(self.k(), Some(p), me, pid, reason, Some(me))
        };
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
        self.tick();
        if self.hooked() {
            return self.spawn_tied(template, args, false).map(|(pid, _)| pid);
        }
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
        self.tick();
        if self.hooked() {
            return self
                .spawn_tied(template, args, true)
                .map(|(pid, r)| (pid, r.expect("a monitor")));
        }
        let me = self.me;
        monitors::spawn_monitor(self.k(), me, template, args)
    }

    /// `spawn_link` (or with `monitor`, `spawn_monitor`) under a durable
    /// scheduler: the new process's creation and this call are one record; in
    /// replay, the process rebuilt from it is the answer.
    #[cold]
    #[inline(never)]
    fn spawn_tied<A: 'static, R: Payload>(
        &mut self,
        template: &impl Spawnable<I, O, A, R>,
        args: A,
        monitor: bool,
    ) -> Result<(Pid, Option<MonitorRef>), SpawnError> {
        let name = template.template_name().clone();
        // What it refuses, it refuses live and in replay alike.
        self.k().spawning(&name, &args, template.stackless())?;
        let ask = Ask::Spawn {
            template: name.to_string(),
            monitor,
        };
        if let Some((answer, _)) = self.otp_replayed(&ask) {
            return match answer {
                Answer::Spawned { pid, monitor } => Ok((pid, monitor.map(MonitorRef))),
                _ => self.otp_mismatch(&ask),
            };
        }
        let me = self.me;
        let r = monitor.then(|| crate::otp::table(self.k()).new_ref());
        let call = OtpCall {
            ask,
            answer: Answer::Spawned {
                pid: Pid(0),
                monitor: r,
            },
        };
        if let Some((hooks, p)) = self.hooks() {
            hooks.tie(p, Some(&call));
        }
        // (A spawn that unwinds, from a destructor of its arguments, leaves
        // no tie behind for another process's spawn.)
        let spawned = catch_unwind(AssertUnwindSafe(|| match r {
            Some(r) => monitors::spawn_monitor_as(self.k(), me, template, args, r)
                .map(|(pid, r)| (pid, Some(r))),
            None => links::spawn_link(self.k(), me, template, args).map(|pid| (pid, None)),
        }));
        if let Some((hooks, p)) = self.hooks() {
            hooks.tie(p, None);
        }
        spawned.unwrap_or_else(|payload| resume_unwind(payload))
    }

    /// Monitors `pid` (OTP's `monitor(process, Pid)`): when it ends, this
    /// process gets one [`Mail::Down`] with this reference and the reason;
    /// at once, with [`Reason::NoProc`], if it is not alive. Each call is a
    /// monitor of its own.
    pub fn monitor(&mut self, pid: Pid) -> MonitorRef {
        let me = self.me;
        if !self.hooked() {
            self.tick();
            return monitors::monitor(self.k(), me, pid);
        }
        self.journaled(
            || Ask::Monitor { pid },
            |c| {
                let alive = crate::otp::alive(c.k(), pid).is_some();
                (monitors::monitor(c.k(), me, pid), alive)
            },
            |&(r, alive)| Answer::Monitor {
                monitor: r.0,
                alive,
            },
            |a| match a {
                Answer::Monitor { monitor, alive } => Some((MonitorRef(monitor), alive)),
                _ => None,
            },
        )
        .0
    }

    /// Cancels `monitor` (OTP's `demonitor/2`): whether it was active. With
    /// `flush`, its DOWN is removed too if it came already (OTP's `[flush]`):
    /// then no DOWN of it is ever read.
    pub fn demonitor(&mut self, monitor: MonitorRef, flush: bool) -> bool {
        let me = self.me;
        self.journaled(
            || Ask::Demonitor {
                monitor: monitor.0,
                flush,
            },
            |c| monitors::demonitor(c.k(), me, monitor, flush),
            |&b| Answer::Bool(b),
            bool_of,
        )
    }

    /// Takes the next mail in arrival order, a message or a system notice
    /// (DOWN, EXIT, timeout), waiting for one. A plain
    /// [`receive`](Self::receive) never sees notices: they wait for this.
    pub fn receive_mail(&mut self) -> Mail<I> {
        self.tick();
        if let Some(Some(mail)) = self.replay_mail(false) {
            return mail;
        }
        let me = self.me;
        loop {
            if let Some(mail) = mailbox::take_mail(self.k(), me) {
                self.journal_mail(&Some((&mail, 0)), false);
                return mail;
            }
            self.suspend(Wait::Mail);
        }
    }

    /// Takes the next mail if there is one, without waiting.
    pub fn try_receive_mail(&mut self) -> Option<Mail<I>> {
        self.tick();
        if let Some(mail) = self.replay_mail(false) {
            return mail;
        }
        let me = self.me;
        let mail = mailbox::take_mail(self.k(), me);
        self.journal_mail(&mail.as_ref().map(|m| (m, 0)), false);
        mail
    }

    /// Takes the next mail, waiting at most `timeout` on the scheduler's clock:
    /// `None` if none came in time.
    pub fn receive_mail_timeout(&mut self, timeout: Duration) -> Option<Mail<I>> {
        self.tick();
        let mut deadline = None;
        if self.hooked() {
            match self.replay_mail_timeout() {
                MailReplay::Mail(mail) => return mail,
                MailReplay::Deadline(d) => deadline = Some(d),
                MailReplay::Live => {}
            }
        }
        let me = self.me;
        if deadline.is_none()
            && let Some(mail) = mailbox::take_mail(self.k(), me)
        {
            self.journal_mail(&Some((&mail, 0)), true);
            return Some(mail);
        }
        self.arm_wait(Ask::Mail { timeout: true }, deadline, timeout);
        loop {
            if let Some(mail) = mailbox::take_mail(self.k(), me) {
                mailbox::disarm(self.k(), me);
                self.journal_mail(&Some((&mail, 0)), true);
                return Some(mail);
            }
            if mailbox::timed_out(me) || self.cannot_wait() {
                mailbox::disarm(self.k(), me);
                self.journal_mail(&None, true);
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
        self.tick();
        if let Some(Some(mail)) = self.replay_mail(false) {
            return mail;
        }
        let me = self.me;
        loop {
            if let Some((mail, at)) = mailbox::select_mail_at(self.k(), me, &mut pred) {
                self.journal_mail(&Some((&mail, at)), false);
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
        if let Some(mail) = self.replay_mail(false) {
            return mail;
        }
        let me = self.me;
        let found = mailbox::select_mail_at(self.k(), me, pred);
        self.journal_mail(&found.as_ref().map(|(m, at)| (m, *at)), false);
        found.map(|(mail, _)| mail)
    }

    /// Arms this process's wait for `timeout`. A durable process's deadline is
    /// journaled (as `ask`'s answer), known as it is armed: the one `recorded`
    /// in replay, or now plus `timeout`. A plain one's reads no clock in a
    /// turn (see `Kernel::arm_timer_after`).
    fn arm_wait(&mut self, ask: Ask, recorded: Option<crate::clock::Time>, timeout: Duration) {
        let me = self.me;
        if !self.hooked() {
            mailbox::arm(self.k(), me, timeout);
            return;
        }
        let now = self.k().clock.now();
        let deadline = recorded.unwrap_or_else(|| {
            let d = now + timeout;
            self.otp_record(ask, Answer::Deadline(d), None);
            d
        });
        mailbox::arm_at(self.k(), me, deadline, now);
    }

    /// In replay, the mail a take got then (`Some(None)`: none).
    #[inline]
    fn replay_mail(&mut self, timeout: bool) -> Option<Option<Mail<I>>> {
        if !self.hooked() {
            return None;
        }
        let ask = Ask::Mail { timeout };
        let (answer, msg) = self.otp_replayed(&ask)?;
        match answer {
            Answer::Mail(took) => Some(self.mail_of(took, msg, &ask)),
            _ => self.otp_mismatch(&ask),
        }
    }

    /// In replay, what a `receive_mail_timeout` got then: mail (or none), or
    /// the deadline of its wait, to wait for again.
    fn replay_mail_timeout(&mut self) -> MailReplay<I> {
        let ask = Ask::Mail { timeout: true };
        let Some((answer, msg)) = self.otp_replayed(&ask) else {
            return MailReplay::Live;
        };
        match answer {
            Answer::Mail(took) => MailReplay::Mail(self.mail_of(took, msg, &ask)),
            Answer::Deadline(d) => match self.otp_replayed(&ask) {
                None => MailReplay::Deadline(d),
                Some((Answer::Mail(took), msg)) => MailReplay::Mail(self.mail_of(took, msg, &ask)),
                Some(_) => self.otp_mismatch(&ask),
            },
            _ => self.otp_mismatch(&ask),
        }
    }

    /// The mail a recorded take got.
    fn mail_of(&mut self, took: Option<Took>, msg: Option<I>, ask: &Ask) -> Option<Mail<I>> {
        match (took, msg) {
            (None, _) => None,
            (Some(Took::Msg { .. }), Some(m)) => Some(Mail::Msg(m)),
            (Some(Took::Notice { notice, .. }), _) => {
                let codec = |name: &str| self.codec(name);
                match notice.into_mail(&codec) {
                    Some(mail) => Some(mail),
                    None => self.otp_mismatch(ask),
                }
            }
            (Some(Took::Msg { .. }), None) => self.otp_mismatch(ask),
        }
    }

    /// Journals a take of mail (`None`: none), under a durable scheduler: the
    /// piece and its index in its queue.
    #[inline]
    fn journal_mail(&mut self, took: &Option<(&Mail<I>, usize)>, timeout: bool) {
        if self.hooked() {
            self.journal_mail_cold(took, timeout);
        }
    }

    #[cold]
    fn journal_mail_cold(&mut self, took: &Option<(&Mail<I>, usize)>, timeout: bool) {
        let ask = Ask::Mail { timeout };
        let Some((mail, at)) = *took else {
            self.otp_record(ask, Answer::Mail(None), None);
            return;
        };
        let index = u32::try_from(at).unwrap_or(u32::MAX);
        match mail {
            Mail::Msg(m) => {
                self.otp_record(ask, Answer::Mail(Some(Took::Msg { index })), Some(m));
            }
            mail => match NoticeRecord::of_mail(mail) {
                Some(notice) => {
                    let took = Took::Notice { index, notice };
                    self.otp_record(ask, Answer::Mail(Some(took)), None);
                }
                None => self.not_durable("a typed request taken as mail"),
            },
        }
    }

    /// Arms a timer that delivers `msg` to `to` after `delay` on the
    /// scheduler's clock (OTP's `erlang:send_after/3`). It goes to `to`'s
    /// inbox alone (not to its children), past its capacity if it is full
    /// (a timer cannot wait); if `to` has ended by then, it is dropped and
    /// counted.
    pub fn send_after(&mut self, delay: Duration, to: Pid, msg: I) -> TimerRef {
        self.tick();
        if self.hooked() {
            return self.durable_send_after(delay, to, msg);
        }
        timers::send_after(self.k(), delay, to, msg)
    }

    /// `send_after` under a durable scheduler: recorded with its message
    /// (before it is armed: its id and deadline are known then).
    #[cold]
    #[inline(never)]
    fn durable_send_after(&mut self, delay: Duration, to: Pid, msg: I) -> TimerRef {
        let ask = Ask::SendAfter { to };
        if let Some((answer, _)) = self.otp_replayed(&ask) {
            return match answer {
                Answer::Timer { timer, .. } => TimerRef(timer),
                _ => self.otp_mismatch(&ask),
            };
        }
        let k = self.k();
        let (timer, deadline) = (k.next_timer_id(), k.clock.now() + delay);
        let armed = to.0 < k.next_pid();
        let answer = Answer::Timer {
            timer,
            deadline,
            armed,
        };
        self.otp_record(ask, answer, Some(&msg));
        timers::send_at(self.k(), deadline, to, msg)
    }

    /// Arms a timer that gives this process [`Mail::Timeout`] with its
    /// reference after `delay` (OTP's `erlang:start_timer/3`).
    pub fn start_timer(&mut self, delay: Duration) -> TimerRef {
        let me = self.pid();
        if !self.hooked() {
            // (From a turn, it reads no clock: see `Kernel::arm_send_after`.)
            self.tick();
            return timers::start_timer(self.k(), delay, me);
        }
        // A durable process's deadline is journaled: known as it is armed.
        self.journaled(
            || Ask::StartTimer,
            |c| {
                let deadline = c.k().clock.now() + delay;
                (timers::start_timer_at(c.k(), deadline, me), deadline)
            },
            |&(timer, deadline)| Answer::Timer {
                timer: timer.0,
                deadline,
                armed: true,
            },
            |a| match a {
                Answer::Timer {
                    timer, deadline, ..
                } => Some((TimerRef(timer), deadline)),
                _ => None,
            },
        )
        .0
    }

    /// [`start_timer`](Self::start_timer) at `deadline` on the scheduler's
    /// clock (a deadline past fires at the next pass): a server's interval
    /// timer, whose deadlines are set one period apart so that they do not
    /// drift.
    pub(crate) fn start_timer_at(&mut self, deadline: crate::clock::Time) -> TimerRef {
        let me = self.pid();
        self.journaled(
            || Ask::StartTimer,
            |c| timers::start_timer_at(c.k(), deadline, me),
            |&timer| Answer::Timer {
                timer: timer.0,
                deadline,
                armed: true,
            },
            |a| match a {
                Answer::Timer { timer, .. } => Some(TimerRef(timer)),
                _ => None,
            },
        )
    }

    /// Cancels `timer` (OTP's `erlang:cancel_timer/1`): the time it had left,
    /// or `None` if it fired or was cancelled before. Its message is dropped.
    pub fn cancel_timer(&mut self, timer: TimerRef) -> Option<Duration> {
        self.journaled(
            || Ask::CancelTimer { timer: timer.0 },
            |c| {
                let (left, msg) = timers::cancel(c.k(), timer)?;
                drop::<Timed<I>>(msg);
                Some(left)
            },
            |&left| Answer::Left(left),
            |a| match a {
                Answer::Left(left) => Some(left),
                _ => None,
            },
        )
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
    ///
    /// A durable process calls with [`durable_call`](Self::durable_call)
    /// instead (its reply is journaled): this one holds it.
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

    /// [`call`](Self::call), to a server that may be a process of another
    /// core of a [`Runtime`](crate::runtime::Runtime): the reply crosses
    /// cores, so its type is `Send`. The request is a message like any other
    /// (`O`, which a runtime's processes send across cores); the server
    /// answers it with [`reply`](Self::reply) as always. A server that is
    /// not alive, on its core, gives [`CallError::NoProc`] (through its
    /// monitor's DOWN). On one core it is [`call`](Self::call).
    pub fn call_across<R: Send + 'static>(
        &mut self,
        server: Pid,
        request: impl FnOnce(ReplyTo<R>) -> O,
        timeout: Option<Duration>,
    ) -> Result<R, CallError> {
        self.otp_call("call_across");
        let me = self.me;
        let (monitor, msg) = call::begin_across(self.k(), me, server, request)?;
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
    ///
    /// Under a durable scheduler the reply is journaled, encoded: it must
    /// answer a [`durable_call`](Self::durable_call) (whose `ReplyTo` knows
    /// how to encode it); a reply to another call holds this process
    /// (reported in `violations()`).
    pub fn reply<R: 'static>(&mut self, to: ReplyTo<R>, value: R) -> Result<(), R> {
        self.tick();
        if self.hooked() {
            return self.durable_reply(to, value);
        }
        call::reply(self.k(), to, value)
    }

    /// `reply` under a durable scheduler.
    #[cold]
    #[inline(never)]
    fn durable_reply<R: 'static>(&mut self, to: ReplyTo<R>, value: R) -> Result<(), R> {
        let Some(encode) = to.encoder() else {
            self.not_durable("a reply to a call not made with `durable_call`")
        };
        let Some(bytes) = encode(&value) else {
            self.otp_unencodable();
        };
        let ask = Ask::Reply {
            to: to.pid(),
            tag: to.tag(),
            value: bytes.clone(),
        };
        if let Some((answer, _)) = self.otp_replayed(&ask) {
            return match answer {
                Answer::Bool(true) => Ok(()),
                Answer::Bool(false) => Err(value),
                _ => self.otp_mismatch(&ask),
            };
        }
        let replied = call::reply_with(self.k(), to, value, |value| {
            drop(value);
            Box::new(EncodedReply(bytes))
        });
        self.otp_record(ask, Answer::Bool(replied.is_ok()), None);
        replied
    }

    /// A value this process must journal does not encode: the run stops
    /// (this process is held, as every other).
    #[cold]
    pub(crate) fn otp_unencodable(&mut self) -> ! {
        if let Some((hooks, _)) = self.hooks() {
            hooks.unencodable(postcard::Error::SerdeSerCustom);
        }
        self.hold()
    }

    /// [`call`](Self::call), journaled by a durable scheduler: a durable
    /// process calls with this (its reply type is a serde type, recorded when
    /// it comes), and the server answers with [`reply`](Self::reply) as
    /// ever. A replayed call sends its request again only as the journal
    /// checks it, and gets the outcome it got then; one that was waiting at
    /// the crash waits on, until the deadline it had. On a plain scheduler it
    /// is `call`.
    pub fn durable_call<R: DurablePayload>(
        &mut self,
        server: Pid,
        request: impl FnOnce(ReplyTo<R>) -> O,
        timeout: Option<Duration>,
    ) -> Result<R, CallError> {
        self.tick();
        let (me, my_pid) = (self.me, self.pid());
        let hooked = self.hooked();
        let ask = Ask::Call { server };
        let recorded = if hooked {
            self.otp_replayed(&ask)
        } else {
            None
        };
        let tag = match recorded {
            Some((Answer::Called(begun), _)) => begun?,
            Some(_) => self.otp_mismatch(&ask),
            None => {
                let begun = call::check(self.k(), my_pid, server);
                if let Err(e) = &begun {
                    if hooked {
                        self.otp_record(ask, Answer::Called(Err(e.clone())), None);
                    }
                    return Err(e.clone());
                }
                let tag = crate::otp::table(self.k()).new_ref();
                // The request first: one whose making panics leaves nothing.
                let msg = request(ReplyTo::durable(my_pid, tag));
                monitors::monitor_as(self.k(), me, server, tag);
                if hooked {
                    self.otp_record(ask, Answer::Called(Ok(tag)), None);
                }
                self.send_to(server, msg);
                return self.await_durable_reply(MonitorRef(tag), timeout);
            }
        };
        let msg = request(ReplyTo::durable(my_pid, tag));
        self.send_to(server, msg);
        self.await_durable_reply(MonitorRef(tag), timeout)
    }

    /// The rest of a durable call whose request was sent (see
    /// [`await_reply`](Self::await_reply)).
    pub(crate) fn await_durable_reply<R: DurablePayload>(
        &mut self,
        monitor: MonitorRef,
        timeout: Option<Duration>,
    ) -> Result<R, CallError> {
        let me = self.me;
        let hooked = self.hooked();
        let ask = Ask::CallWait { tag: monitor.0 };
        let mut deadline = None;
        if hooked {
            match self.otp_replayed(&ask) {
                Some((Answer::Outcome(outcome), _)) => return self.decode_outcome(outcome),
                Some((Answer::Deadline(d), _)) => {
                    deadline = Some(d);
                    match self.otp_replayed(&ask) {
                        Some((Answer::Outcome(outcome), _)) => {
                            return self.decode_outcome(outcome);
                        }
                        Some(_) => self.otp_mismatch(&ask),
                        None => {}
                    }
                }
                Some(_) => self.otp_mismatch(&ask),
                None => {}
            }
        }
        let timed = timeout.is_some();
        if let Some(timeout) = timeout {
            self.arm_wait(ask.clone(), deadline, timeout);
        }
        let decode: fn(&[u8]) -> Option<R> = |bytes| postcard::from_bytes(bytes).ok();
        let outcome = loop {
            if let Some(outcome) = call::poll_decoding::<I, O, R>(me, monitor, timed, Some(decode))
            {
                break outcome;
            }
            if self.cannot_wait() {
                break Err(CallError::Timeout);
            }
            self.suspend(Wait::Mail);
        };
        call::end(self.k(), me, monitor, timed, &outcome);
        if hooked {
            let recorded = match &outcome {
                Ok(r) => match postcard::to_allocvec(r) {
                    Ok(bytes) => Ok(bytes),
                    Err(_) => self.otp_unencodable(),
                },
                Err(e) => Err(e.clone()),
            };
            self.otp_record(ask, Answer::Outcome(recorded), None);
        }
        outcome
    }

    /// A recorded outcome of a call.
    fn decode_outcome<R: DurablePayload>(
        &mut self,
        outcome: Result<Vec<u8>, CallError>,
    ) -> Result<R, CallError> {
        match outcome {
            Ok(bytes) => match postcard::from_bytes(&bytes) {
                Ok(r) => Ok(r),
                Err(e) => self.violation(
                    format!("a reply that does not decode ({e})"),
                    "a durable call".into(),
                ),
            },
            Err(e) => Err(e),
        }
    }

    /// Whether `pid` is a live process (not ended) of this scheduler.
    pub fn is_alive(&mut self, pid: Pid) -> bool {
        self.journaled(
            || Ask::IsAlive { pid },
            |c| crate::otp::alive(c.k(), pid).is_some(),
            |&b| Answer::Bool(b),
            bool_of,
        )
    }
}

/// What a replayed `receive_mail_timeout` got.
enum MailReplay<I> {
    /// Mail (or none, timed out).
    Mail(Option<Mail<I>>),
    /// The deadline its wait had (the records end there).
    Deadline(crate::clock::Time),
    /// Not replaying.
    Live,
}

/// The error an exit signal ends its sender with, as recorded.
fn ends(s: &Signalled) -> Option<ExitError> {
    match s {
        Signalled::Ends(e) => Some(e.clone()),
        Signalled::Done => None,
    }
}

/// The effect of an exit signal on its sender, from its record.
fn signalled(ends: Option<ExitError>) -> Signalled {
    ends.map_or(Signalled::Done, Signalled::Ends)
}

/// A recorded yes or no.
pub(crate) fn bool_of(a: Answer) -> Option<bool> {
    match a {
        Answer::Bool(b) => Some(b),
        _ => None,
    }
}

/// A recorded list of pids.
pub(crate) fn pids_of(a: Answer) -> Option<Vec<Pid>> {
    match a {
        Answer::Pids(p) => Some(p),
        _ => None,
    }
}
