//! The durable layer as the kernel's hooks: each event and each call of a
//! process becomes a journal record, and while a process is replayed its calls
//! are answered from its records.

use std::any::Any;

use crate::durable::otp::sys_of;
use crate::durable::policy::CommitPolicy;
use crate::durable::record::{Record, SendOutcome, SendStep, StopRecord};
use crate::durable::state::{DeterminismViolation, Durable, ProcJournal};
use crate::error::{ExitError, SpawnError};
use crate::journal::JournalError;
use crate::kernel::hooks::{Call, Codec, Expect, Hooks, Outcome, Replayed};
use crate::kernel::inbox::Overflow;
use crate::kernel::{Kernel, PPtr, Proc};
use crate::otp::record::{Answer, Ask, OtpCall};
use crate::signal::{Pid, Value};

impl From<Outcome> for SendOutcome {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Delivered => SendOutcome::Delivered,
            Outcome::Full => SendOutcome::Full,
            Outcome::NoRoute => SendOutcome::NoRoute,
            Outcome::UnknownPid => SendOutcome::UnknownPid,
        }
    }
}

impl From<SendOutcome> for Outcome {
    fn from(outcome: SendOutcome) -> Self {
        match outcome {
            SendOutcome::Delivered => Outcome::Delivered,
            SendOutcome::Full => Outcome::Full,
            SendOutcome::NoRoute => Outcome::NoRoute,
            SendOutcome::UnknownPid => Outcome::UnknownPid,
        }
    }
}

/// The durability state installed in `k` (a durable scheduler's kernel).
pub(crate) fn durable<I: 'static, O: 'static>(k: &Kernel<I, O>) -> Option<&Durable<I, O>> {
    k.hooks.as_ref()?.as_any().downcast_ref()
}

/// As [`durable`], mutable.
pub(crate) fn durable_mut<I: 'static, O: 'static>(
    k: &mut Kernel<I, O>,
) -> Option<&mut Durable<I, O>> {
    k.hooks.as_mut()?.as_any_mut().downcast_mut()
}

/// A replayed call did not match: reported, the process is held.
struct Held;

impl<I: 'static, O: 'static> Durable<I, O> {
    /// In replay, `p`'s next record if `matches` accepts it; `None` when `p` runs
    /// live (its records are exhausted: it goes live now). A record that does not
    /// match is a violation.
    fn next(
        &mut self,
        p: &mut Proc<I, O>,
        emitted: impl FnOnce() -> String,
        matches: impl FnOnce(&Record) -> bool,
    ) -> Result<Option<Record>, Held> {
        let journal = ProcJournal::of(p);
        let Some(log) = &mut journal.replay else {
            return Ok(None);
        };
        let Some(front) = log.front() else {
            journal.replay = None;
            // Live from here: its signals are its own again.
            p.extra().replaying = false;
            return Ok(None);
        };
        if matches(front) {
            journal.steps += 1;
            return Ok(log.pop_front());
        }
        let recorded = front.describe();
        self.violation(p, recorded, emitted());
        Err(Held)
    }

    fn answer(&mut self, p: &mut Proc<I, O>, expect: Expect<'_, O>) -> Result<Replayed<I>, Held> {
        let replayed = match expect {
            Expect::Take { what, may_be_none } => {
                let Some(record) = self.next(
                    p,
                    || what.to_string(),
                    |r| matches!(r, Record::Take { msg, .. } if may_be_none || msg.is_some()),
                )?
                else {
                    return Ok(Replayed::Live);
                };
                let Record::Take { msg, .. } = record else {
                    unreachable!("matched a take")
                };
                // A recorded "found nothing" is a replayed answer too.
                let Some(bytes) = msg else {
                    return Ok(Replayed::Took(None));
                };
                match (self.decode)(&bytes) {
                    Some(m) => Replayed::Took(Some(m)),
                    None => {
                        self.violation(p, "a message that does not decode".into(), what.into());
                        return Err(Held);
                    }
                }
            }
            Expect::Send { to, msg } => {
                let hash = self.hash_out(msg);
                let Some(record) = self.next(
                    p,
                    || format!("a send to {to:?} (hash {hash:08x})"),
                    |r| matches!(r, Record::Send { to: t, hash: h, .. } if *t == to && *h == hash),
                )?
                else {
                    return Ok(Replayed::Live);
                };
                let Record::Send { outcome, .. } = record else {
                    unreachable!("matched a send")
                };
                Replayed::Sent(outcome.into())
            }
            Expect::Effect => match self.next(
                p,
                || "an effect".into(),
                |r| matches!(r, Record::Use { .. }),
            )? {
                Some(Record::Use { result, .. }) => Replayed::Effect(result),
                _ => Replayed::Live,
            },
            Expect::Intent => match self.next(
                p,
                || "an at-most-once effect".into(),
                |r| matches!(r, Record::Intent { .. }),
            )? {
                Some(_) => Replayed::Done,
                None => Replayed::Live,
            },
            Expect::IntentEnd => match self.next(
                p,
                || "an at-most-once effect".into(),
                |r| matches!(r, Record::Use { .. } | Record::Interrupted { .. }),
            )? {
                Some(Record::Use { result, .. }) => Replayed::Effect(result),
                Some(_) => Replayed::Interrupted,
                None => Replayed::Live,
            },
            Expect::Timer { what } => {
                let Some(record) =
                    self.next(p, || what.into(), |r| matches!(r, Record::Timer { .. }))?
                else {
                    return Ok(Replayed::Live);
                };
                let Record::Timer { deadline, .. } = record else {
                    unreachable!("matched a timer")
                };
                let more = ProcJournal::of(p)
                    .replay
                    .as_ref()
                    .is_some_and(|log| !log.is_empty());
                Replayed::Timer { deadline, more }
            }
            Expect::Spawn { template, args } => {
                let Some(record) = self.next(
                    p,
                    || format!("a spawn of {template} with other arguments"),
                    |r| matches!(r, Record::Create { template: t, args: a, .. } if t == template && Some(a.as_slice()) == args),
                )?
                else {
                    return Ok(Replayed::Live);
                };
                let Record::Create { pid, .. } = record else {
                    unreachable!("matched a create")
                };
                Replayed::Spawned(pid)
            }
            Expect::Join(child) => match self.next(
                p,
                || format!("a join of {child}"),
                |r| matches!(r, Record::Join { child: c, .. } if *c == child),
            )? {
                Some(_) => Replayed::Done,
                None => Replayed::Live,
            },
            Expect::Layer { ask } => {
                let ask = ask
                    .downcast_ref::<Ask>()
                    .expect("the toolkit's calls are the only layer calls");
                let Some(record) = self.next(
                    p,
                    || ask.describe(),
                    |r| matches!(r, Record::Otp { call, .. } if call.ask == *ask),
                )?
                else {
                    return Ok(Replayed::Live);
                };
                let Record::Otp { call, msg, .. } = record else {
                    unreachable!("matched a call of the toolkit")
                };
                // A message taken then (one sent by a timer is the caller's
                // own: not decoded).
                let took = match (msg, ask) {
                    (Some(bytes), Ask::Mail { .. }) => match (self.decode)(&bytes) {
                        Some(m) => Some(m),
                        None => {
                            self.violation(
                                p,
                                "a message that does not decode".into(),
                                ask.describe(),
                            );
                            return Err(Held);
                        }
                    },
                    _ => None,
                };
                Replayed::Layer {
                    call: Box::new(call),
                    msg: took,
                }
            }
            Expect::Transition { template, args } => match self.next(
                p,
                || format!("a transition to {template} with other arguments"),
                |r| matches!(r, Record::Transition { template: t, args: a, .. } if t == template && a == args),
            )? {
                Some(_) => Replayed::Done,
                None => Replayed::Live,
            },
        };
        Ok(replayed)
    }
}

impl<I: 'static, O: 'static> Hooks<I, O> for Durable<I, O> {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    /// What it refuses (a stackless process, an unregistered template, arguments
    /// of another type than it was registered with), it refuses with nothing
    /// journaled; what it takes, it journals when the process is made, with the
    /// arguments' encoding returned here. Rebuilding, it takes all.
    fn spawning(
        &mut self,
        template: &str,
        args: &dyn Any,
        stackless: bool,
    ) -> Result<Option<Vec<u8>>, SpawnError> {
        if self.quiet {
            return Ok(None);
        }
        if stackless {
            return Err(SpawnError::NotDurable(template.to_string()));
        }
        match Hooks::encode_args(self, template, args) {
            Some(bytes) => Ok(Some(bytes)),
            None => Err(SpawnError::Unregistered(template.to_string())),
        }
    }

    fn created(
        &mut self,
        p: &mut Proc<I, O>,
        parent: Option<&Proc<I, O>>,
        template: &str,
        args: Vec<u8>,
    ) {
        if let Some((by, step, mut call)) = self.tie.take() {
            // A spawn tied to its spawner: one record of both.
            if let Answer::Spawned { pid, .. } = &mut call.answer {
                *pid = p.pid;
            }
            let record = Record::SpawnTied {
                pid: p.pid,
                template: template.to_string(),
                args,
                by,
                step,
                call,
            };
            self.tied = Some(p.pid);
            if let Some(lsn) = self.append_for(p, record) {
                self.set_restart(p.pid, lsn);
            }
            return;
        }
        let started = self.spawning;
        let inbox = parent.map_or_else(Vec::new, |parent| {
            parent.inbox.queue.iter().map(|m| self.enc(m)).collect()
        });
        let record = Record::Create {
            pid: p.pid,
            parent: p.parent,
            template: template.to_string(),
            args,
            started,
            inbox,
        };
        if let Some(lsn) = self.append_for(p, record) {
            // Its restart point.
            self.set_restart(p.pid, lsn);
        }
    }

    fn started(&mut self, p: &mut Proc<I, O>) {
        if self.tied == Some(p.pid) {
            // Its tied spawn's record says it started.
            self.tied = None;
            return;
        }
        // A spawn starts what it creates, and a child starts with its spawn: their
        // CREATE says so.
        if p.parent.is_none() && !self.spawning {
            self.append_for(p, Record::Start { pid: p.pid });
        }
    }

    /// One record that is also the sender's SEND, so that a crash cannot keep one
    /// without the other, and lists what the overflow policies are about to drop:
    /// the oldest message of a full `DropOldest` inbox, or this one, for a full
    /// `DropNewest` inbox.
    fn delivered(
        &mut self,
        to: Pid,
        msg: &I,
        from: Option<&mut Proc<I, O>>,
        recipients: &[PPtr<I, O>],
    ) {
        let bytes = self.enc(msg);
        let (mut evicted, mut refused) = (Vec::new(), Vec::new());
        for &r in recipients {
            // SAFETY: recipients are live and not otherwise borrowed during the
            // hook (its contract).
            let r = unsafe { r.as_ref() };
            if r.inbox.is_full() {
                match r.inbox.overflow {
                    Overflow::DropOldest => {
                        if let Some(old) = r.inbox.queue.front() {
                            evicted.push((r.pid, self.enc(old)));
                        }
                    }
                    Overflow::DropNewest => refused.push(r.pid),
                    Overflow::Backoff | Overflow::Reject | Overflow::Unbounded => {}
                }
            }
        }
        let hash = crc32c::crc32c(&bytes);
        let record = |from| Record::Deliver {
            to,
            msg: bytes,
            from,
            evicted,
            refused,
        };
        match from {
            Some(f) => {
                let pid = f.pid;
                let journal = ProcJournal::of(f);
                journal.steps += 1;
                let from = SendStep {
                    pid,
                    step: journal.steps - 1,
                    hash,
                };
                self.append_for(f, record(Some(from)));
            }
            None => {
                self.append(record(None));
            }
        }
    }

    fn evicted(&mut self, pid: Pid, msg: &I) {
        let msg = self.enc(msg);
        self.append(Record::Evict { pid, msg });
    }

    fn ending(&mut self, p: &mut Proc<I, O>) -> bool {
        if self.halted() {
            // Its end could not be journaled: held, as every other process.
            return false;
        }
        let recorded = ProcJournal::of(p)
            .replay
            .as_ref()
            .and_then(|log| log.front())
            .map(Record::describe);
        match recorded {
            // It ended before its records did: held, neither ended nor journaled.
            Some(recorded) => {
                self.violation(p, recorded, "the process's end".into());
                false
            }
            None => true,
        }
    }

    fn encode_args(&mut self, template: &str, args: &dyn Any) -> Option<Vec<u8>> {
        self.registry
            .get(template)
            .and_then(|r| (r.encode_args)(args))
    }

    fn result_encoder(&self, template: &str) -> Option<fn(&dyn Any) -> Value> {
        self.registry.get(template).map(|r| r.encode_result)
    }

    fn stopped(
        &mut self,
        pid: Pid,
        result: &Result<Box<dyn Any>, ExitError>,
        value: Option<&Value>,
    ) {
        let exit = match (result, value) {
            (Ok(_), Some(v)) => {
                StopRecord::Normal(v.as_bytes().map(<[u8]>::to_vec).unwrap_or_default())
            }
            (Ok(_), None) => StopRecord::Normal(Vec::new()),
            (Err(ExitError::Failed(m)), _) => StopRecord::Failed(m.clone()),
            (Err(ExitError::Killed(m)), _) => StopRecord::Killed(m.clone()),
            (Err(e), _) => StopRecord::Other(e.clone()),
        };
        self.append(Record::Stop { pid, exit });
    }

    fn killed(&mut self, pid: Pid, error: &ExitError) {
        let exit = match error {
            ExitError::Killed(m) => StopRecord::Killed(m.clone()),
            e => StopRecord::Other(e.clone()),
        };
        self.append(Record::Stop { pid, exit });
        self.clear_restart(pid);
    }

    fn reaped(&mut self, pid: Pid) {
        self.clear_restart(pid);
    }

    fn discarded(&mut self, pid: Pid) {
        // As if taken: its records are not needed any more.
        self.append(Record::Reaped { pid });
        self.clear_restart(pid);
    }

    fn outside(&mut self, call: &dyn Any, msg: Option<&I>) {
        let call = call
            .downcast_ref::<OtpCall>()
            .expect("the toolkit's calls are the only layer calls")
            .clone();
        let msg = msg.map(|m| self.enc(m));
        self.append(Record::Otp {
            pid: None,
            step: 0,
            call,
            msg,
        });
    }

    fn fired(&mut self, timer: u64, pid: Pid, to: Option<&Proc<I, O>>, msg: Option<&I>) {
        let (mut evicted, mut refused) = (None, false);
        if let Some(p) = to
            && p.inbox.is_full()
        {
            match p.inbox.overflow {
                Overflow::DropOldest => evicted = p.inbox.queue.front().map(|m| self.enc(m)),
                Overflow::DropNewest => refused = true,
                Overflow::Backoff | Overflow::Reject | Overflow::Unbounded => {}
            }
        }
        let msg = msg.map(|m| self.enc(m));
        self.append(Record::TimerFired {
            timer,
            to: pid,
            msg,
            evicted,
            refused,
        });
    }

    fn codec(&self, name: &str) -> Option<Codec> {
        self.codecs.get(name).copied()
    }

    fn tie(&mut self, by: &mut Proc<I, O>, call: Option<&dyn Any>) {
        let pid = by.pid;
        let journal = ProcJournal::of(by);
        match call {
            Some(call) => {
                let call = call
                    .downcast_ref::<OtpCall>()
                    .expect("the toolkit's calls are the only layer calls")
                    .clone();
                journal.steps += 1;
                self.tie = Some((pid, journal.steps - 1, call));
            }
            None => {
                if self.tie.take().is_some() {
                    // Refused: nothing was made, nor recorded.
                    journal.steps -= 1;
                } else if let Some(lsn) = self.journal.next_lsn().0.checked_sub(1)
                    && !self.quiet
                {
                    // Its record, just appended, is an input of the spawner.
                    journal.last = Some(lsn);
                }
            }
        }
    }

    fn record(&mut self, p: &mut Proc<I, O>, call: Call<'_, I, O>) {
        let pid = p.pid;
        let journal = ProcJournal::of(p);
        let step = journal.steps;
        journal.steps += 1;
        let record = match call {
            // The child's CREATE record, just appended, is this step.
            Call::Spawn => {
                if let Some(lsn) = self.journal.next_lsn().0.checked_sub(1)
                    && !self.quiet
                {
                    journal.last = Some(lsn);
                }
                return;
            }
            Call::Take(msg) => Record::Take {
                pid,
                step,
                msg: msg.map(|m| self.enc(m)),
            },
            Call::Kept { to, reason, msg } => {
                let record = Record::Undelivered {
                    from: Some(SendStep {
                        pid,
                        step,
                        hash: self.hash_out(msg),
                    }),
                    to,
                    reason: reason.code(),
                    msg: self.enc_out(msg),
                };
                let lsn = self.append_for(p, record);
                // Kept for the owner: not released until taken.
                if self.kept_from.is_none() {
                    self.kept_from = lsn;
                }
                return;
            }
            Call::TrySend { to, msg, outcome } => Record::Send {
                pid,
                step,
                to,
                hash: self.hash_out(msg),
                outcome: outcome.into(),
            },
            Call::Effect(result) => Record::Use {
                pid,
                step,
                result: result.to_vec(),
            },
            Call::Intent => Record::Intent { pid, step },
            Call::Interrupted => Record::Interrupted { pid, step },
            Call::Timer(deadline) => Record::Timer {
                pid,
                step,
                deadline,
            },
            Call::Join(child) => Record::Join { pid, step, child },
            Call::Layer { call, msg } => {
                let call = call
                    .downcast_ref::<OtpCall>()
                    .expect("the toolkit's calls are the only layer calls")
                    .clone();
                Record::Otp {
                    pid: Some(pid),
                    step,
                    call,
                    msg: msg.map(|m| self.enc(m)),
                }
            }
            Call::Transition {
                template,
                args,
                next_pid,
            } => {
                assert!(
                    self.registry.contains_key(template),
                    "template {template:?} is not registered with this durable scheduler"
                );
                let mut record = Record::Transition {
                    pid,
                    parent: p.parent,
                    step,
                    template: template.to_string(),
                    args: args.to_vec(),
                    inbox: p.inbox.queue.iter().map(|m| self.enc(m)).collect(),
                    children: p.children().to_vec(),
                    next_pid,
                };
                let sys = sys_of(p);
                if !sys.is_empty() {
                    record = Record::TransitionMail {
                        transition: Box::new(record),
                        sys,
                    };
                }
                if let Some(lsn) = self.append_for(p, record) {
                    // A snapshot: older records of this process are not needed.
                    self.set_restart(pid, lsn);
                }
                return;
            }
        };
        self.append_for(p, record);
    }

    /// Answers from `p`'s records while it is replayed. Once a journal error has
    /// stopped the run, every call of every process is held here, before it
    /// does anything (no send, no effect, nothing journaled).
    #[inline]
    fn replay(&mut self, p: &mut Proc<I, O>, expect: Expect<'_, O>) -> Replayed<I> {
        if self.halted() {
            return Replayed::Held;
        }
        if ProcJournal::of(p).replay.is_none() {
            return Replayed::Live;
        }
        self.answer(p, expect).unwrap_or(Replayed::Held)
    }

    fn violation(&mut self, p: &mut Proc<I, O>, recorded: String, emitted: String) {
        let step = ProcJournal::of(p).steps;
        self.violations.push(DeterminismViolation {
            pid: p.pid,
            step,
            recorded,
            emitted,
        });
    }

    fn halted(&self) -> bool {
        Durable::halted(self)
    }

    fn unencodable(&mut self, error: postcard::Error) {
        self.error.get_or_insert(JournalError::Encode(error));
    }

    fn must_commit(&mut self, p: &mut Proc<I, O>, at_most_once: bool) -> bool {
        if !at_most_once && self.policy == CommitPolicy::PerPass {
            return false;
        }
        let halted = self.halted();
        let uncommitted = ProcJournal::of(p)
            .last
            .is_some_and(|lsn| lsn >= self.committed);
        if halted || uncommitted {
            // Released by the next commit; never, once halted.
            if !halted {
                self.committing.push(p.pid);
            }
            return true;
        }
        false
    }
}
