//! A running supervisor: its children, and what it does with each piece of
//! mail (OTP's `supervisor` gen_server callbacks: `handle_info({'EXIT', ..})`,
//! `handle_call`, `terminate/2`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Time;
use crate::engine::stackful::context::Ctx;
use crate::error::ExitError;
use crate::kernel::IdMap;
use crate::otp::call::CallError;
use crate::otp::mail::{Mail, MailRef, TimerRef};
use crate::otp::request::Request;
use crate::otp::supervisor::backoff::Backoff;
use crate::otp::supervisor::flags::{AutoShutdown, Strategy, check_child};
use crate::otp::supervisor::intensity::Window;
use crate::otp::supervisor::requests::{
    AddChild, ChildCounts, ChildError, ChildInfo, ChildRef, ChildState, CountChildren, DeleteChild,
    RestartChild, TerminateChild, WhichChildren,
};
use crate::otp::supervisor::shutdown;
use crate::otp::supervisor::spec::{ChildKind, ChildOpts, Restart, StartFn};
use crate::reason::Reason;
use crate::signal::{Pid, SignalData, Value};
use crate::trace::{trace_event, traced};

/// A supervisor's settings (OTP's `sup_flags()`).
#[derive(Debug, Clone)]
pub(crate) struct Flags {
    pub(crate) strategy: Strategy,
    /// A dynamic supervisor (OTP's `simple_one_for_one`).
    pub(crate) dynamic: bool,
    pub(crate) max_restarts: u32,
    pub(crate) within: Duration,
    pub(crate) auto_shutdown: AutoShutdown,
    pub(crate) backoff: Option<Backoff>,
    /// A dynamic supervisor's most children at once (Elixir's
    /// `max_children`), if it has a bound.
    pub(crate) max_children: Option<usize>,
    /// A dynamic supervisor's restart intensity per child (libeam's
    /// `maxRestarts` and `periodMs`), if it has one: a child beyond it is
    /// stopped for good, and its restarts do not count in the supervisor's.
    pub(crate) child_intensity: Option<(u32, Duration)>,
}

/// One child.
struct Kid<M: 'static> {
    /// Its spec's id (`None`: a dynamic child).
    id: Option<Arc<str>>,
    start: StartFn<M>,
    opts: ChildOpts,
    /// Its running incarnation.
    pid: Option<Pid>,
    /// Its restart waits for `timer` (a backoff, or a start to try again).
    restarting: bool,
    timer: Option<TimerRef>,
    /// Restarts since it last ran quietly (for the backoff).
    attempts: u32,
    /// When its last incarnation started.
    started_at: Time,
    /// Its own restart intensity window (a dynamic supervisor's, with a
    /// restart intensity per child).
    window: Option<Window>,
}

/// What counting a restart came to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Spent {
    /// Within the budget: restart.
    Restart,
    /// Beyond the supervisor's: it gives up.
    GiveUp,
    /// Beyond the child's own: it is stopped for good.
    DropChild,
}

/// What to do after a piece of mail.
pub(crate) enum Flow {
    Go,
    Stop(Reason),
}

/// Requests that only some supervisors take (a dynamic one's `StartChild`).
pub(crate) type Extra<M> = dyn Fn(&mut Sup<M>, &mut Ctx<M>, &Request) -> bool;

/// A running supervisor.
pub(crate) struct Sup<M: 'static> {
    /// Its name, for its events.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    name: Arc<str>,
    flags: Flags,
    /// By start order (a sequence number that a restart keeps).
    kids: BTreeMap<u64, Kid<M>>,
    /// Looked up, never iterated.
    by_pid: IdMap<Pid, u64>,
    timers: BTreeMap<TimerRef, u64>,
    next_seq: u64,
    window: Window,
    restarts: u64,
    rng: fastrand::Rng,
}

impl<M: 'static> Sup<M> {
    pub(crate) fn new(name: Arc<str>, flags: Flags) -> Sup<M> {
        let seed = flags.backoff.as_ref().map_or(0, |b| b.seed);
        Sup {
            name,
            window: Window::new(flags.max_restarts, flags.within),
            flags,
            kids: BTreeMap::new(),
            by_pid: IdMap::default(),
            timers: BTreeMap::new(),
            next_seq: 0,
            restarts: 0,
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// Adds a child (not started): its sequence number.
    pub(crate) fn push(&mut self, id: Option<Arc<str>>, start: StartFn<M>, opts: ChildOpts) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.kids.insert(
            seq,
            Kid {
                id,
                start,
                opts,
                pid: None,
                restarting: false,
                timer: None,
                attempts: 0,
                started_at: Time::default(),
                window: self
                    .flags
                    .child_intensity
                    .map(|(max, within)| Window::new(max, within)),
            },
        );
        seq
    }

    /// Forgets a child that does not run.
    pub(crate) fn remove(&mut self, seq: u64) {
        if let Some(kid) = self.kids.remove(&seq)
            && let Some(t) = kid.timer
        {
            self.timers.remove(&t);
        }
    }

    /// The time for the restart intensity window and the backoff's reset:
    /// [`Clock::now_or_later`](crate::Clock::now_or_later), a few ms coarse
    /// at most (OTP counts both in whole seconds: `erlang:monotonic_time(second)`),
    /// a few ns to read where the clock itself takes tens (twice per restart).
    /// Under a durable scheduler, the clock as `Ctx::now` reads it: journaled,
    /// so that a replay decides again as it decided then.
    fn now(ctx: &mut Ctx<M>) -> Time {
        if ctx.hooked() {
            return ctx.now();
        }
        ctx.k().clock.now_or_later()
    }

    /// Starts every child in order (OTP's `init_children`): the first that
    /// fails, with why.
    pub(crate) fn start_all(&mut self, ctx: &mut Ctx<M>) -> Result<(), (String, ChildError)> {
        let seqs: Vec<u64> = self.kids.keys().copied().collect();
        for seq in seqs {
            if let Err(e) = self.start(ctx, seq) {
                let id = self.kids[&seq].id.as_deref().unwrap_or("").to_string();
                return Err((id, e));
            }
        }
        Ok(())
    }

    /// Starts child `seq`: spawned linked, registered under its name.
    pub(crate) fn start(&mut self, ctx: &mut Ctx<M>, seq: u64) -> Result<Pid, ChildError> {
        let kid = self.kids.get(&seq).expect("a child");
        let (start, name) = (kid.start.clone(), kid.opts.name.clone());
        let pid = match start(ctx) {
            Ok(pid) => pid,
            Err(e) => {
                self.start_failed(seq, &e.to_string());
                return Err(e.into());
            }
        };
        if let Some(name) = name
            && let Err(e) = ctx.register(&name, pid)
        {
            // It has not run yet: killed, its EXIT taken.
            shutdown::stop_all(ctx, &[pid], super::Shutdown::BrutalKill);
            self.start_failed(seq, &e.to_string());
            return Err(ChildError::Name(e));
        }
        if self.kids[&seq].opts.ours
            && let Err(e @ (CallError::Down(_) | CallError::NoProc)) =
                ctx.request(pid, CountChildren, None)
        {
            // It ended as it started: its EXIT is taken.
            ctx.unlink(pid);
            let exit =
                ctx.find_mail(&mut |m| matches!(m, MailRef::Exit { from, .. } if from == pid));
            let reason = match (exit, e) {
                (Some(Mail::Exit { reason, .. }), _) => reason,
                (_, CallError::Down(reason)) => reason,
                _ => Reason::NoProc,
            };
            self.start_failed(seq, &reason.to_string());
            return Err(ChildError::Failed(reason));
        }
        let now = Self::now(ctx);
        let kid = self.kids.get_mut(&seq).expect("a child");
        kid.pid = Some(pid);
        kid.restarting = false;
        kid.started_at = now;
        self.by_pid.insert(pid, seq);
        trace_event!(
            tracing::Level::DEBUG,
            supervisor = &*self.name,
            child = kid.id.as_deref().unwrap_or(""),
            pid = pid.0,
            "supervisor child started"
        );
        Ok(pid)
    }

    #[allow(unused_variables)]
    fn start_failed(&self, seq: u64, why: &str) {
        trace_event!(
            tracing::Level::WARN,
            supervisor = &*self.name,
            child = self.kids[&seq].id.as_deref().unwrap_or(""),
            reason = why,
            "supervisor start failed"
        );
    }

    /// Reads and handles mail until the supervisor is to stop, then stops
    /// its children and ends (OTP's gen_server loop, then `terminate/2`).
    pub(crate) fn run(&mut self, ctx: &mut Ctx<M>, extra: &Extra<M>) {
        let reason = loop {
            let flow = match ctx.receive_mail() {
                Mail::Exit { from, reason } => match self.by_pid.get(&from) {
                    Some(&seq) => self.exited(ctx, seq, reason),
                    // Not a child: its parent, or someone stopping it (OTP:
                    // an EXIT from the parent ends a gen_server with that
                    // reason).
                    None => Flow::Stop(reason),
                },
                Mail::Timeout(t) => match self.timers.remove(&t) {
                    Some(seq) => self.due(ctx, seq),
                    None => Flow::Go,
                },
                Mail::Request(r) => self.request(ctx, &r, extra),
                Mail::Msg(_) => {
                    // OTP logs "Supervisor received unexpected message".
                    trace_event!(
                        tracing::Level::WARN,
                        supervisor = &*self.name,
                        "supervisor unexpected message"
                    );
                    Flow::Go
                }
                Mail::Down { .. } => Flow::Go,
            };
            if let Flow::Stop(reason) = flow {
                break reason;
            }
        };
        self.end(ctx, reason)
    }

    /// Stops every child and ends with `reason`.
    pub(crate) fn end(&mut self, ctx: &mut Ctx<M>, reason: Reason) {
        self.stop_children(ctx);
        trace_event!(
            tracing::Level::DEBUG,
            supervisor = &*self.name,
            reason = %reason,
            "supervisor stop"
        );
        if let Some(error) = reason.into_error() {
            ctx.exit(error);
        }
    }

    /// Ends at start: a child could not be started (OTP's
    /// `{shutdown, {failed_to_start_child, Id, Reason}}`).
    pub(crate) fn failed_start(&mut self, ctx: &mut Ctx<M>, id: &str, e: &ChildError) -> ! {
        self.stop_children(ctx);
        let why = Value::text_of(&("failed_to_start_child", id, e.to_string()));
        ctx.exit(ExitError::Shutdown(Some(why)))
    }

    /// Stops every child (OTP's `terminate/2`): in reverse start order, one
    /// at a time; a dynamic supervisor's all at once (OTP: "as a
    /// simple_one_for_one supervisor can have many children, it shuts them
    /// all down asynchronously").
    fn stop_children(&mut self, ctx: &mut Ctx<M>) {
        for (t, _) in std::mem::take(&mut self.timers) {
            ctx.cancel_timer(t);
        }
        if self.flags.dynamic {
            let pids: Vec<Pid> = self.kids.values().filter_map(|k| k.pid).collect();
            if let Some(how) = self.kids.values().next().map(|k| k.opts.shutdown()) {
                shutdown::stop_all(ctx, &pids, how);
            }
            self.kids.clear();
            self.by_pid.clear();
        } else {
            let seqs: Vec<u64> = self.kids.keys().rev().copied().collect();
            for seq in seqs {
                self.stop_child(ctx, seq);
            }
        }
    }

    /// Stops child `seq` if it runs, and cancels its restart if one waits.
    fn stop_child(&mut self, ctx: &mut Ctx<M>, seq: u64) {
        let Some(kid) = self.kids.get_mut(&seq) else {
            return;
        };
        kid.restarting = false;
        if let Some(t) = kid.timer.take() {
            self.timers.remove(&t);
            ctx.cancel_timer(t);
        }
        let Some(pid) = kid.pid.take() else {
            return;
        };
        let how = kid.opts.shutdown();
        let permanent = kid.opts.restart == Restart::Permanent;
        self.by_pid.remove(&pid);
        let reason = shutdown::stop_all(ctx, &[pid], how)
            .pop()
            .expect("one reason");
        if !shutdown::expected(&reason, how, permanent) {
            trace_event!(
                tracing::Level::WARN,
                supervisor = &*self.name,
                pid = pid.0,
                reason = %reason,
                "supervisor shutdown error"
            );
        }
    }

    /// Child `seq` ended for `reason` (OTP's `restart_child/3` and
    /// `do_restart/3`).
    fn exited(&mut self, ctx: &mut Ctx<M>, seq: u64, reason: Reason) -> Flow {
        let kid = self.kids.get_mut(&seq).expect("a child");
        let ended = kid.pid.take();
        if let Some(pid) = ended {
            self.by_pid.remove(&pid);
        }
        let restart = match kid.opts.restart {
            Restart::Permanent => true,
            Restart::Transient => !reason.is_normal_or_shutdown(),
            Restart::Temporary => false,
        };
        traced! {
            let (child, why) = (kid.id.as_deref().unwrap_or(""), &reason);
            if reason.is_normal_or_shutdown() {
                tracing::debug!(supervisor = &*self.name, child, reason = %why, "supervisor child ended");
            } else {
                tracing::warn!(supervisor = &*self.name, child, reason = %why, "supervisor child ended");
            }
        }
        if restart {
            return self.restart(ctx, seq, ended);
        }
        let significant = kid.opts.significant;
        if self.flags.dynamic || kid.opts.restart == Restart::Temporary {
            self.remove(seq);
        }
        self.auto_shutdown(significant)
    }

    /// Child `seq` went beyond its own restart intensity: stopped for good
    /// (libeam: "if a child exceeds maxRestarts within periodMs, it is stopped
    /// permanently").
    fn drop_child(&mut self, seq: u64) -> Flow {
        let significant = self.kids.get(&seq).is_some_and(|k| k.opts.significant);
        self.remove(seq);
        self.auto_shutdown(significant)
    }

    /// A significant child ended and is not restarted (OTP's
    /// `do_auto_shutdown/2`).
    fn auto_shutdown(&self, significant: bool) -> Flow {
        let stop = match self.flags.auto_shutdown {
            AutoShutdown::Never => false,
            _ if !significant => false,
            AutoShutdown::AnySignificant => true,
            AutoShutdown::AllSignificant => !self
                .kids
                .values()
                .any(|k| k.opts.significant && (k.pid.is_some() || k.restarting)),
        };
        if stop {
            trace_event!(
                tracing::Level::INFO,
                supervisor = &*self.name,
                "supervisor auto shutdown"
            );
            Flow::Stop(Reason::Shutdown(None))
        } else {
            Flow::Go
        }
    }

    /// Counts a restart of child `seq` in the intensity window (OTP's
    /// `add_restart/1`), or in the child's own if it has one.
    fn spend(&mut self, ctx: &mut Ctx<M>, seq: u64) -> Spent {
        let now = Self::now(ctx);
        if let Some(window) = self.kids.get_mut(&seq).and_then(|k| k.window.as_mut()) {
            if window.add(now) {
                self.restarts += 1;
                return Spent::Restart;
            }
            trace_event!(
                tracing::Level::WARN,
                supervisor = &*self.name,
                "supervisor child give-up"
            );
            return Spent::DropChild;
        }
        if self.window.add(now) {
            self.restarts += 1;
            return Spent::Restart;
        }
        trace_event!(
            tracing::Level::ERROR,
            supervisor = &*self.name,
            max_restarts = self.flags.max_restarts,
            within_ms = self.flags.within.as_millis() as u64,
            "supervisor give-up"
        );
        Spent::GiveUp
    }

    /// Child `seq` ended and is to be restarted (OTP's `restart/2`): counted;
    /// beyond the intensity, the supervisor gives up with reason `shutdown`
    /// (OTP: "the supervisor terminates all the child processes and then
    /// itself ... the termination reason for the supervisor itself in that
    /// case will be shutdown"). Else its group (per the strategy) is stopped,
    /// and started again now or after the backoff.
    fn restart(&mut self, ctx: &mut Ctx<M>, seq: u64, ended: Option<Pid>) -> Flow {
        let spent = self.spend(ctx, seq);
        if let Some(child) = ended {
            let me = ctx.me;
            ctx.k().emit(me, || match spent {
                Spent::Restart => SignalData::Restart { child },
                Spent::GiveUp | Spent::DropChild => SignalData::GiveUp { child },
            });
        }
        match spent {
            Spent::Restart => {}
            Spent::GiveUp => return Flow::Stop(Reason::Shutdown(None)),
            Spent::DropChild => return self.drop_child(seq),
        }
        trace_event!(
            tracing::Level::INFO,
            supervisor = &*self.name,
            child = self.kids[&seq].id.as_deref().unwrap_or(""),
            restarts = self.restarts,
            "supervisor restart"
        );
        let delay = self.backoff(ctx, seq);
        self.stop_group(ctx, seq);
        match delay {
            Some(d) if !d.is_zero() => {
                self.schedule(ctx, seq, d);
                Flow::Go
            }
            _ => self.start_group(ctx, seq),
        }
    }

    /// The backoff before restart `seq`, if the supervisor has one.
    fn backoff(&mut self, ctx: &mut Ctx<M>, seq: u64) -> Option<Duration> {
        let backoff = self.flags.backoff.as_ref()?;
        let now = Self::now(ctx);
        let kid = self.kids.get_mut(&seq)?;
        if kid.attempts > 0 && now.since(kid.started_at) >= backoff.reset_after {
            kid.attempts = 0;
        }
        let d = backoff.delay(kid.attempts, &mut self.rng);
        kid.attempts = kid.attempts.saturating_add(1);
        Some(d)
    }

    /// Restarts child `seq` after `delay` (its name is free meanwhile).
    fn schedule(&mut self, ctx: &mut Ctx<M>, seq: u64, delay: Duration) {
        let t = ctx.start_timer(delay);
        let kid = self.kids.get_mut(&seq).expect("a child");
        kid.restarting = true;
        kid.timer = Some(t);
        self.timers.insert(t, seq);
        trace_event!(
            tracing::Level::DEBUG,
            supervisor = &*self.name,
            child = kid.id.as_deref().unwrap_or(""),
            delay_ms = delay.as_millis() as u64,
            "supervisor backoff"
        );
    }

    /// The restart of child `seq` is due.
    fn due(&mut self, ctx: &mut Ctx<M>, seq: u64) -> Flow {
        if let Some(kid) = self.kids.get_mut(&seq) {
            kid.timer = None;
        }
        // (OTP's try_again_restart stops the group again: what was started
        // meanwhile is restarted with it.)
        self.stop_group(ctx, seq);
        self.start_group(ctx, seq)
    }

    /// The children that restart with child `seq`, in start order.
    fn group(&self, seq: u64) -> Vec<u64> {
        match self.flags.strategy {
            Strategy::OneForOne => vec![seq],
            Strategy::RestForOne => self.kids.range(seq..).map(|(s, _)| *s).collect(),
            Strategy::OneForAll => self.kids.keys().copied().collect(),
        }
    }

    /// Stops the others of `seq`'s group, in reverse start order (OTP's
    /// `terminate_children/2`); temporary ones are forgotten.
    fn stop_group(&mut self, ctx: &mut Ctx<M>, seq: u64) {
        for other in self.group(seq).into_iter().rev() {
            if other == seq {
                continue;
            }
            self.stop_child(ctx, other);
            if self.kids[&other].opts.restart == Restart::Temporary {
                self.remove(other);
            }
        }
    }

    /// Starts the children of `seq`'s group that do not run, in start order
    /// (OTP's `start_children/2`). One that fails is to be tried again, a
    /// restart more: after its backoff, or after the mail that came meanwhile
    /// (OTP's `try_again_restart`); the ones after it wait for it.
    fn start_group(&mut self, ctx: &mut Ctx<M>, seq: u64) -> Flow {
        for member in self.group(seq) {
            let Some(kid) = self.kids.get_mut(&member) else {
                continue;
            };
            if kid.pid.is_some() {
                continue;
            }
            if let Some(t) = kid.timer.take() {
                self.timers.remove(&t);
                ctx.cancel_timer(t);
            }
            if self.start(ctx, member).is_err() {
                match self.spend(ctx, member) {
                    Spent::Restart => {}
                    Spent::GiveUp => return Flow::Stop(Reason::Shutdown(None)),
                    Spent::DropChild => return self.drop_child(member),
                }
                let delay = self.backoff(ctx, member).unwrap_or(Duration::ZERO);
                self.schedule(ctx, member, delay);
                return Flow::Go;
            }
        }
        Flow::Go
    }

    /// The child that `r` names.
    fn find(&self, r: &ChildRef) -> Result<u64, ChildError> {
        match r {
            ChildRef::Id(_) if self.flags.dynamic => Err(ChildError::WrongKind),
            ChildRef::Id(id) => self.by_id(id),
            ChildRef::Pid(pid) => self.by_pid.get(pid).copied().ok_or(ChildError::NotFound),
        }
    }

    fn by_id(&self, id: &str) -> Result<u64, ChildError> {
        self.kids
            .iter()
            .find(|(_, k)| k.id.as_deref() == Some(id))
            .map(|(s, _)| *s)
            .ok_or(ChildError::NotFound)
    }

    /// Answers a request (OTP's `handle_call/3`); refuses what it does not
    /// know.
    fn request(&mut self, ctx: &mut Ctx<M>, r: &Request, extra: &Extra<M>) -> Flow {
        if let Some((WhichChildren, to)) = r.take::<WhichChildren>() {
            let _ = ctx.reply(to, self.which());
        } else if let Some((CountChildren, to)) = r.take::<CountChildren>() {
            let _ = ctx.reply(to, self.count());
        } else if let Some((TerminateChild(which), to)) = r.take::<TerminateChild>() {
            let answer = self.find(&which).map(|seq| {
                self.stop_child(ctx, seq);
                if self.flags.dynamic || self.kids[&seq].opts.restart == Restart::Temporary {
                    self.remove(seq);
                }
            });
            let _ = ctx.reply(to, answer);
        } else if let Some((RestartChild(id), to)) = r.take::<RestartChild>() {
            let answer = self.restart_child(ctx, &id);
            let _ = ctx.reply(to, answer);
        } else if let Some((DeleteChild(id), to)) = r.take::<DeleteChild>() {
            let answer = self.delete_child(&id);
            let _ = ctx.reply(to, answer);
        } else if let Some((AddChild(spec), to)) = r.take::<AddChild<M>>() {
            let answer = self.add_child(ctx, spec);
            let _ = ctx.reply(to, answer);
        } else if !extra(self, ctx, r) {
            ctx.refuse(r);
        }
        Flow::Go
    }

    /// Child `id` of a static supervisor, neither running nor waiting for its
    /// restart (what OTP's `restart_child/2` and `delete_child/2` ask).
    fn stopped_child(&self, id: &str) -> Result<u64, ChildError> {
        if self.flags.dynamic {
            return Err(ChildError::WrongKind);
        }
        let seq = self.by_id(id)?;
        let kid = &self.kids[&seq];
        if kid.pid.is_some() {
            return Err(ChildError::Running);
        }
        if kid.restarting {
            return Err(ChildError::Restarting);
        }
        Ok(seq)
    }

    fn restart_child(&mut self, ctx: &mut Ctx<M>, id: &str) -> Result<Pid, ChildError> {
        let seq = self.stopped_child(id)?;
        self.start(ctx, seq)
    }

    fn delete_child(&mut self, id: &str) -> Result<(), ChildError> {
        let seq = self.stopped_child(id)?;
        self.remove(seq);
        Ok(())
    }

    fn add_child(
        &mut self,
        ctx: &mut Ctx<M>,
        spec: super::ChildSpec<M>,
    ) -> Result<Pid, ChildError> {
        if self.flags.dynamic {
            return Err(ChildError::WrongKind);
        }
        check_child(&spec.id, &spec.opts, self.flags.auto_shutdown)
            .map_err(|e| ChildError::Spec(e.to_string()))?;
        if self.by_id(&spec.id).is_ok() {
            return Err(ChildError::AlreadyPresent(spec.id.to_string()));
        }
        let seq = self.push(Some(spec.id), spec.start, spec.opts);
        self.start(ctx, seq).inspect_err(|_| self.remove(seq))
    }

    /// Adds a dynamic child and starts it: its pid, or it is forgotten.
    pub(crate) fn start_dynamic(
        &mut self,
        ctx: &mut Ctx<M>,
        start: StartFn<M>,
        opts: ChildOpts,
    ) -> Result<Pid, ChildError> {
        if self
            .flags
            .max_children
            .is_some_and(|max| self.kids.len() >= max)
        {
            return Err(ChildError::MaxChildren);
        }
        let seq = self.push(None, start, opts);
        self.start(ctx, seq).inspect_err(|_| self.remove(seq))
    }

    fn which(&self) -> Vec<ChildInfo> {
        self.kids
            .values()
            .map(|k| ChildInfo {
                id: k.id.as_deref().map(str::to_string),
                child: match (k.pid, k.restarting) {
                    (Some(pid), _) => ChildState::Running(pid),
                    (None, true) => ChildState::Restarting,
                    (None, false) => ChildState::Undefined,
                },
                kind: k.opts.kind,
            })
            .collect()
    }

    fn count(&self) -> ChildCounts {
        let mut c = ChildCounts {
            restarts: self.restarts,
            ..ChildCounts::default()
        };
        for k in self.kids.values() {
            c.specs += 1;
            c.active += usize::from(k.pid.is_some());
            match k.opts.kind {
                ChildKind::Worker => c.workers += 1,
                ChildKind::Supervisor => c.supervisors += 1,
            }
        }
        c
    }
}
