//! The OTP toolkit journaled: each of its calls by a durable process is one
//! record (what was asked and answered), and recovery folds those records,
//! in order, into the toolkit's tables, its timed sends, the exit signals not
//! yet applied and each process's system messages, through the same pure
//! table operations the live calls use (`otp/table.rs`). What a process's end
//! tells others (DOWN, EXIT, the end of linked processes) is not recorded: it
//! follows from its STOP record and the tables, in the fold as it did live,
//! so that a crash cannot keep an end without its notices.
//!
//! Segments may go once their records are older than every process's restart
//! point: the toolkit's state is then written whole (an OTP_STATE record)
//! whenever the oldest needed record passes the last one, as the next pid
//! is. The fold of the records before it may be off (their tables are
//! gone); the state replaces all of it.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::clock::Time;
use crate::durable::fold::Fold;
use crate::durable::record::{EntryRecord, OtpState, Record, StopRecord};
use crate::durable::recover::{RecoveryError, decode_caught};
use crate::error::ExitError;
use crate::kernel::Kernel;
use crate::kernel::hooks::Codec;
use crate::kernel::time::Timed;
use crate::otp::links::{Verdict, verdict};
use crate::otp::mail::TimerRef;
use crate::otp::record::{Answer, Ask, NoticeRecord, OtpCall, Took};
use crate::otp::{Entry, Table, table, timers};
use crate::reason::Reason;
use crate::signal::Pid;

/// The toolkit's state as the records folded so far tell it.
#[derive(Default)]
pub(crate) struct OtpFold {
    pub(crate) table: Table,
    /// Timed sends armed, by id: deadline, process, message (`None`: a
    /// timeout notice).
    pub(crate) timers: BTreeMap<u64, (Time, Pid, Option<Vec<u8>>)>,
    pub(crate) next_timer: u64,
    /// Exit signals not applied yet: each is cleared by its target's STOP.
    pub(crate) kills: Vec<(Pid, ExitError)>,
    /// A record of the toolkit was seen.
    pub(crate) used: bool,
}

/// A process's system messages as the fold keeps them: each with the number
/// of its inbox messages ahead of it.
pub(crate) type SysMirror = VecDeque<(u64, NoticeRecord)>;

/// The reason of an end, as its STOP record tells it.
pub(crate) fn reason_of(stop: &StopRecord) -> Reason {
    match stop {
        StopRecord::Normal(_) => Reason::Normal,
        StopRecord::Failed(m) => Reason::Failed(m.clone()),
        StopRecord::Killed(m) => Reason::Killed(m.clone()),
        StopRecord::Other(e) => Reason::from(e.clone()),
    }
}

/// `inbox`'s message at `i` left it: the system messages behind it have one
/// message less ahead of them (as `Proc::remove_message` does live).
pub(crate) fn took_at(inbox: &mut VecDeque<Vec<u8>>, sys: &mut SysMirror, i: usize) {
    if inbox.remove(i).is_some() {
        for (ahead, _) in sys.iter_mut() {
            if *ahead > i as u64 {
                *ahead -= 1;
            }
        }
    }
}

impl Fold {
    /// Whether `pid` is alive, as far as the records tell.
    fn alive(&self, pid: Pid) -> bool {
        self.sim_ref(pid).is_some_and(|s| s.stop.is_none())
    }

    /// A notice enters `to`'s system messages, behind its inbox as it is.
    fn notice(&mut self, to: Pid, notice: NoticeRecord) {
        if let Some(s) = self.sim_mut(to).filter(|s| s.stop.is_none()) {
            let ahead = s.inbox.len() as u64;
            s.sys.push_back((ahead, notice));
        }
    }

    /// An exit signal from `from` to `to` (see `otp/links.rs`); `caller`, the
    /// process that sent it, ends itself if it is the target (its own STOP
    /// follows, or its replay ends it).
    fn signal(&mut self, from: Pid, to: Pid, reason: Reason, caller: Option<Pid>) {
        if !self.alive(to) {
            return;
        }
        match verdict(reason, self.otp.table.traps(to)) {
            Verdict::Mail(reason) => self.notice(to, NoticeRecord::Exit { from, reason }),
            Verdict::Ignored => {}
            Verdict::Ends(_) if caller == Some(to) => {}
            Verdict::Ends(error) => self.otp.kills.push((to, error)),
        }
    }

    /// `pid` ended for `reason`: what its end tells others, as `otp::on_end`
    /// did.
    pub(crate) fn otp_ended(&mut self, pid: Pid, reason: Reason) {
        self.otp.kills.retain(|(p, _)| *p != pid);
        let Some(entry) = self.otp.table.end(pid) else {
            return;
        };
        let Entry {
            watchers, links, ..
        } = entry;
        for (r, watcher) in watchers {
            if watcher != pid && self.alive(watcher) {
                let down = NoticeRecord::Down {
                    monitor: r,
                    pid,
                    reason: reason.clone(),
                };
                self.notice(watcher, down);
            }
        }
        for peer in links {
            self.signal(pid, peer, reason.clone(), None);
        }
    }

    /// Folds a call of the toolkit by `by` (`None`: the owner's).
    pub(crate) fn otp_call(&mut self, by: Option<Pid>, call: &OtpCall, msg: Option<&[u8]>) {
        self.otp.used = true;
        let t = &mut self.otp.table;
        match (&call.ask, &call.answer, by) {
            (Ask::TrapExit { on }, _, Some(me)) => {
                t.set_trap(me, *on);
            }
            (Ask::Link { pid }, Answer::Link { alive: true, .. }, Some(me)) => {
                // (A link to oneself is none.)
                if *pid != me {
                    t.link(me, *pid);
                }
            }
            (Ask::Link { pid }, Answer::Link { alive: false, .. }, Some(me)) => {
                self.signal(*pid, me, Reason::NoProc, Some(me));
            }
            (Ask::Unlink { pid }, _, Some(me)) => t.unlink(me, *pid),
            (Ask::ExitSignal { to, reason }, _, _) => {
                // (From outside, a signal names its target as its sender.)
                self.signal(by.unwrap_or(*to), *to, reason.clone(), by);
            }
            (Ask::Monitor { pid }, &Answer::Monitor { monitor, alive }, Some(me)) => {
                if alive {
                    t.add_monitor(monitor, me, *pid);
                } else {
                    t.next_ref = t.next_ref.max(monitor);
                    let down = NoticeRecord::Down {
                        monitor,
                        pid: *pid,
                        reason: Reason::NoProc,
                    };
                    self.notice(me, down);
                }
            }
            (&Ask::Demonitor { monitor, flush }, _, Some(me)) => {
                t.demonitor(me, monitor);
                if flush && let Some(s) = self.sim_mut(me) {
                    s.sys.retain(|(_, n)| !n.is_down_of(monitor));
                }
            }
            (Ask::Mail { .. }, Answer::Mail(took), Some(me)) => {
                if let Some(s) = self.sim_mut(me) {
                    // Replies of calls that are over are dropped where mail
                    // is read, before it is looked at.
                    s.sys.retain(|(_, n)| !n.is_reply());
                    let Some(took) = took else {
                        return;
                    };
                    match took {
                        Took::Msg { index } => took_at(&mut s.inbox, &mut s.sys, *index as usize),
                        Took::Notice { index, .. } => {
                            s.sys.remove(*index as usize);
                        }
                    }
                }
            }
            (
                Ask::SendAfter { to },
                &Answer::Timer {
                    timer,
                    deadline,
                    armed,
                },
                _,
            ) => {
                self.otp.next_timer = self.otp.next_timer.max(timer + 1);
                if armed {
                    let msg = msg.map(<[u8]>::to_vec);
                    self.otp.timers.insert(timer, (deadline, *to, msg));
                }
            }
            (
                Ask::StartTimer,
                &Answer::Timer {
                    timer, deadline, ..
                },
                Some(me),
            ) => {
                self.otp.next_timer = self.otp.next_timer.max(timer + 1);
                self.otp.timers.insert(timer, (deadline, me, None));
            }
            (&Ask::CancelTimer { timer }, _, _) => {
                self.otp.timers.remove(&timer);
            }
            (Ask::Register { name, pid }, Answer::Register(Ok(())), _) => {
                let _ = t.register(name, *pid);
            }
            (Ask::Unregister { name }, _, _) => {
                t.unregister(name);
            }
            (Ask::Join { group, pid }, Answer::Bool(true), _) => t.join(group, *pid),
            (Ask::Call { server }, &Answer::Called(Ok(tag)), Some(me)) => {
                t.add_monitor(tag, me, *server);
            }
            (&Ask::CallWait { tag }, Answer::Outcome(_), Some(me)) => {
                // The call is over: its monitor, its DOWN and every reply go.
                t.demonitor(me, tag);
                if let Some(s) = self.sim_mut(me) {
                    s.sys.retain(|(_, n)| !n.is_reply() && !n.is_down_of(tag));
                }
            }
            (
                Ask::Request {
                    server,
                    type_name,
                    body,
                },
                &Answer::Called(Ok(tag)),
                Some(me),
            ) => {
                t.add_monitor(tag, me, *server);
                let request = NoticeRecord::Request {
                    from: me,
                    tag,
                    type_name: type_name.clone(),
                    body: body.clone(),
                };
                self.notice(*server, request);
            }
            (
                Ask::Post {
                    to,
                    type_name,
                    body,
                },
                _,
                Some(me),
            ) => {
                let request = NoticeRecord::Request {
                    from: me,
                    tag: 0,
                    type_name: type_name.clone(),
                    body: body.clone(),
                };
                self.notice(*to, request);
            }
            (&Ask::Refuse { to, tag }, Answer::Bool(true), _) => {
                self.notice(to, NoticeRecord::Refused { tag });
            }
            (Ask::Reply { to, tag, value }, Answer::Bool(true), _) => {
                let reply = NoticeRecord::Reply {
                    tag: *tag,
                    value: value.clone(),
                };
                self.notice(*to, reply);
            }
            (Ask::Leave { group, pid }, _, _) => {
                t.leave(group, *pid);
            }
            // Reads, and answers that changed nothing.
            _ => {}
        }
    }

    /// A process made by `by`'s spawn that ties it (its creation is folded
    /// apart): the spawner's call, and the link or monitor.
    pub(crate) fn otp_spawned(&mut self, by: Pid, step: u64, call: OtpCall) {
        self.otp.used = true;
        if let Answer::Spawned { pid, monitor } = call.answer {
            match monitor {
                Some(r) => self.otp.table.add_monitor(r, by, pid),
                None => {
                    self.otp.table.link(by, pid);
                    self.otp.table.set_parent(pid, by);
                }
            }
        }
        if let Some(s) = self.sim_mut(by) {
            s.log.push_back(Record::Otp {
                pid: Some(by),
                step,
                call,
                msg: None,
            });
        }
    }

    /// Timed send `timer` fired (see [`Record::TimerFired`]).
    pub(crate) fn otp_fired(
        &mut self,
        timer: u64,
        to: Pid,
        msg: Option<Vec<u8>>,
        evicted: Option<Vec<u8>>,
        refused: bool,
    ) {
        self.otp.timers.remove(&timer);
        if !self.alive(to) {
            return;
        }
        match msg {
            Some(msg) => {
                let s = self.sim_mut(to).expect("alive");
                if let Some(gone) = evicted
                    && let Some(i) = s.inbox.iter().position(|m| *m == gone)
                {
                    took_at(&mut s.inbox, &mut s.sys, i);
                }
                if !refused {
                    s.inbox.push_back(msg);
                }
            }
            None => self.notice(to, NoticeRecord::Timeout(timer)),
        }
    }

    /// The toolkit's whole state, written when older records could go: it
    /// replaces what the fold made of the records before it.
    pub(crate) fn otp_state(&mut self, state: OtpState) {
        self.otp.used = true;
        let mut t = Table {
            next_ref: state.next_ref,
            ..Table::default()
        };
        for e in state.entries {
            let entry = t.entries.entry(e.pid).or_default();
            entry.links = e.links.into_iter().collect();
            entry.trap_exit = e.trap_exit;
            entry.monitors = e.monitors.into_iter().collect();
            entry.watchers = e.watchers.into_iter().collect();
            entry.parent = e.parent;
        }
        for (name, pid) in state.names {
            let _ = t.register(&name, pid);
        }
        for (group, members) in state.groups {
            for pid in members {
                t.join(&group, pid);
            }
        }
        self.otp.table = t;
        self.otp.timers = state
            .timers
            .into_iter()
            .map(|(id, deadline, pid, msg)| (id, (deadline, pid, msg)))
            .collect();
        self.otp.next_timer = state.next_timer;
        self.otp.kills = state.kills;
        let mut sys: BTreeMap<Pid, Vec<(u64, NoticeRecord)>> = state.sys.into_iter().collect();
        self.each_sim(|pid, s| s.sys = sys.remove(&pid).unwrap_or_default().into());
    }
}

/// The toolkit's state in `k`, to write whole: `None` if it was never used.
pub(crate) fn snapshot<I: 'static, O: 'static>(
    k: &Kernel<I, O>,
    enc: &mut dyn FnMut(&I) -> Vec<u8>,
) -> Option<OtpState> {
    let t = k.extensions.get::<Table>();
    let sends = k.timed_sends();
    if t.is_none() && sends.is_empty() {
        // Nothing that older records made: the system messages waiting, if
        // any, were pushed after their processes' restart points (the
        // records that pushed them are kept).
        return None;
    }
    let mut sys = Vec::new();
    for pid in k.pids() {
        let p = k.lookup(pid).expect("listed");
        // SAFETY: p is live; read only, with no process running.
        let items = sys_of(unsafe { p.as_ref() });
        if !items.is_empty() {
            sys.push((pid, items));
        }
    }
    let mut state = OtpState {
        sys,
        next_timer: k.next_timer_id(),
        kills: k.pending_exits().cloned().collect(),
        ..OtpState::default()
    };
    for (id, deadline, pid) in sends {
        let msg = match &k.timed[&id].1 {
            Timed::Msg(m) => Some(enc(m)),
            Timed::Sys(_) => None,
        };
        state.timers.push((id, deadline, pid, msg));
    }
    if let Some(t) = t {
        state.next_ref = t.next_ref;
        let mut entries: Vec<EntryRecord> = t
            .entries
            .iter()
            .map(|(&pid, e)| EntryRecord {
                pid,
                links: e.links.to_vec(),
                trap_exit: e.trap_exit,
                monitors: e.monitors.to_vec(),
                watchers: e.watchers.to_vec(),
                parent: e.parent,
            })
            .collect();
        entries.sort_by_key(|e| e.pid);
        state.entries = entries;
        state.names = t.names.iter().map(|(n, p)| (n.to_string(), *p)).collect();
        state.groups = t
            .groups
            .iter()
            .map(|(g, m)| (g.to_string(), m.clone()))
            .collect();
    }
    Some(state)
}

/// `p`'s system messages, encoded, each with the number of inbox messages
/// ahead of it (for a snapshot).
pub(crate) fn sys_of<I, O>(p: &crate::kernel::Proc<I, O>) -> Vec<(u64, NoticeRecord)> {
    let Some(extra) = p.extra_ref() else {
        return Vec::new();
    };
    let head = p.inbox.head_removed;
    extra
        .sys
        .iter()
        .filter_map(|item| NoticeRecord::of_item(item, head))
        .collect()
}

/// The system messages a rebuilt process starts with (its inbox rebuilt
/// first: each is due once the messages ahead of it have left).
pub(crate) fn install_sys<I, O>(
    p: &mut crate::kernel::Proc<I, O>,
    sys: SysMirror,
    codecs: &BTreeMap<&'static str, Codec>,
) -> Result<(), RecoveryError> {
    let head = p.inbox.head_removed;
    let pid = p.pid;
    let queue = &mut p.extra().sys;
    for (ahead, notice) in sys {
        let codec = |name: &str| codecs.get(name).copied();
        let Some(item) = notice.into_item(head + ahead, &codec) else {
            return Err(RecoveryError::Decode {
                pid,
                what: "a typed request (its type is not registered with DurableBuilder::request)",
                why: "no codec for it".into(),
            });
        };
        queue.push_back(item);
    }
    Ok(())
}

/// Installs the toolkit's state, as the fold made it, in `k` (every process
/// rebuilt): its tables (each process they name is watched again), its timed
/// sends, and the exit signals to apply at the next pass.
pub(crate) fn install<M>(k: &mut Kernel<M, M>, otp: OtpFold) -> Result<(), RecoveryError>
where
    M: Serialize + DeserializeOwned + Clone + 'static,
{
    if !otp.used {
        return Ok(());
    }
    let OtpFold {
        table: t,
        timers: sends,
        next_timer,
        kills,
        ..
    } = otp;
    for &pid in t.entries.keys() {
        if let Some(p) = k.lookup(pid) {
            crate::otp::watch(p);
        }
    }
    *table(k) = t;
    k.timer_ids_from(next_timer);
    for (id, (deadline, pid, msg)) in sends {
        let msg = match msg {
            Some(bytes) => {
                Timed::Msg(decode_caught(&bytes).map_err(|why| RecoveryError::Decode {
                    pid,
                    what: "a timed message",
                    why,
                })?)
            }
            None => Timed::Sys(timers::timeout),
        };
        k.arm_send_as(id, pid, deadline, msg);
    }
    for (pid, error) in kills {
        k.queue_exit(pid, error);
    }
    Ok(())
}

/// The toolkit from a durable scheduler's owner: names and exit signals (an
/// exit signal is journaled; names are read from the tables).
impl<M> crate::durable::DurableScheduler<M>
where
    M: Serialize + DeserializeOwned + Clone + 'static,
{
    /// Sends the exit signal `reason` to `pid` from outside (see
    /// [`SimpleScheduler::exit_signal`](crate::SimpleScheduler::exit_signal)),
    /// journaled: a crash keeps it, and what it did, or neither. Nothing
    /// happens once a journal error stopped the run.
    pub fn exit_signal(&mut self, pid: Pid, reason: Reason) {
        if self.is_stopped() {
            return;
        }
        let call = OtpCall {
            ask: Ask::ExitSignal {
                to: pid,
                reason: reason.clone(),
            },
            answer: Answer::Ends(None),
        };
        if let Some(hooks) = &mut self.inner.kernel_mut().hooks {
            hooks.outside(&call, None);
        }
        self.inner.exit_signal(pid, reason);
    }

    /// Arms a timer that delivers `msg` to `to` after `delay` on the
    /// scheduler's clock (see [`Ctx::send_after`](crate::Ctx::send_after)),
    /// journaled with its message: it fires after a crash as it would have.
    /// Once a journal error stopped the run, the message is given back.
    pub fn send_after(&mut self, delay: Duration, to: Pid, msg: M) -> Result<TimerRef, M> {
        if self.is_stopped() {
            return Err(msg);
        }
        let k = self.inner.kernel_mut();
        let (timer, deadline) = (k.next_timer_id(), k.clock.now() + delay);
        let call = OtpCall {
            ask: Ask::SendAfter { to },
            answer: Answer::Timer {
                timer,
                deadline,
                armed: to.0 < k.next_pid(),
            },
        };
        if let Some(hooks) = &mut k.hooks {
            hooks.outside(&call, Some(&msg));
        }
        Ok(timers::send_at(k, deadline, to, msg))
    }

    /// Cancels `timer` (journaled): the time it had left, or `None` if it
    /// fired or was cancelled before. Its message is dropped.
    pub fn cancel_timer(&mut self, timer: TimerRef) -> Option<Duration> {
        if self.is_stopped() {
            return None;
        }
        let call = OtpCall {
            ask: Ask::CancelTimer { timer: timer.0 },
            answer: Answer::Done,
        };
        if let Some(hooks) = &mut self.inner.kernel_mut().hooks {
            hooks.outside(&call, None);
        }
        self.inner.cancel_timer(timer)
    }

    /// How many timers' messages were dropped because their process had
    /// ended when they fired (since this scheduler was opened).
    pub fn timers_dropped(&self) -> u64 {
        self.inner.timers_dropped()
    }

    /// The process registered as `name` (see [`Ctx::register`](crate::Ctx::register)).
    pub fn whereis(&mut self, name: &str) -> Option<Pid> {
        self.inner.whereis(name)
    }

    /// Every registered name and its process, by name.
    pub fn registered(&mut self) -> Vec<(String, Pid)> {
        self.inner.registered()
    }

    /// The members of `group`, in the order they joined.
    pub fn members(&mut self, group: &str) -> Vec<Pid> {
        self.inner.members(group)
    }

    /// The processes linked to `pid`, in the order the links were made.
    pub fn links(&mut self, pid: Pid) -> Vec<Pid> {
        self.inner.links(pid)
    }

    /// Sends `msg` to the process registered as `name`, as
    /// [`send`](Self::send) does; no such name gives the message back in
    /// [`SendError::UnknownName`](crate::SendError::UnknownName).
    pub fn send_named(&mut self, name: &str, msg: M) -> Result<(), crate::SendError<M>> {
        match self.whereis(name) {
            Some(pid) => self.send(pid, msg),
            None => Err(crate::SendError::UnknownName(name.to_string(), msg)),
        }
    }
}
