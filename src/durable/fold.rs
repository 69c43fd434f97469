//! Folding the journal's records, one at a time and in order, into what each
//! process was at the crash: its restart point, its records since, its inbox,
//! its children, how it ended; and the undelivered messages. Memory grows with
//! what is live, not with the records read: each record is folded and dropped,
//! a snapshot replaces what came before it, and a reaped process is forgotten.

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::durable::hooks::{durable, durable_mut};
use crate::durable::inspect::ProcessInfo;
use crate::durable::layout::Layouts;
use crate::durable::otp::{OtpFold, SysMirror, install, reason_of, took_at};
use crate::durable::record::{Record, SendOutcome, SendStep, StopRecord, UNDELIVERED_REJECTED};
use crate::durable::recover::{Recovery, RecoveryError, decode_caught, rebuild_process};
use crate::durable::state::Pending;
use crate::kernel::{Kernel, Undelivered, UndeliveredReason};
use crate::signal::Pid;

/// An undelivered message as the journal tells it: sender, destination, reason
/// code, encoding.
type KeptMessage = (Option<Pid>, Option<Pid>, u8, Vec<u8>);

/// The state of one process as the journal tells it.
pub(crate) struct Sim {
    parent: Option<Pid>,
    /// The template and arguments it restarts from (its last snapshot's, if any).
    template: String,
    args: Vec<u8>,
    steps: u64,
    restart: u64,
    started: bool,
    pub(crate) stop: Option<StopRecord>,
    /// Its records after its restart point.
    pub(crate) log: VecDeque<Record>,
    pub(crate) inbox: VecDeque<Vec<u8>>,
    /// Its system messages (the toolkit's notices).
    pub(crate) sys: SysMirror,
}

/// A pid that records name, but whose creation (or snapshot) the journal does
/// not hold: a process whose records before its end were released, which is
/// fine once it has ended, or records that lost their process's beginning.
struct Orphan {
    /// The first record naming it.
    lsn: u64,
    /// A record says it ended (STOP), or its result was taken or joined.
    ended: bool,
}

/// The records folded so far.
#[derive(Default)]
pub(crate) struct Fold {
    sims: BTreeMap<Pid, Sim>,
    orphans: BTreeMap<Pid, Orphan>,
    next_pid: u64,
    undelivered: Vec<KeptMessage>,
    /// The LSN of the first undelivered message not taken: the journal keeps it
    /// until they are taken.
    kept_from: Option<u64>,
    /// Each process's children since its restart point, as their records name
    /// them: those rebuilt with it (its replay joins some again), and those its
    /// messages are passed on to, even when its own beginning was released.
    kids: BTreeMap<Pid, Vec<Pid>>,
    /// Records folded.
    pub(crate) records: u64,
    /// The layouts the journal last recorded, by role.
    pub(crate) layouts: Layouts,
    /// The OTP toolkit's state (`otp.rs`).
    pub(crate) otp: OtpFold,
}

impl Fold {
    /// `pid`'s state, if the journal holds it.
    pub(crate) fn sim_ref(&self, pid: Pid) -> Option<&Sim> {
        self.sims.get(&pid)
    }

    /// As [`sim_ref`](Self::sim_ref), mutable.
    pub(crate) fn sim_mut(&mut self, pid: Pid) -> Option<&mut Sim> {
        self.sims.get_mut(&pid)
    }

    /// Calls `f` on each process's state.
    pub(crate) fn each_sim(&mut self, mut f: impl FnMut(Pid, &mut Sim)) {
        for (&pid, sim) in &mut self.sims {
            f(pid, sim);
        }
    }

    /// `pid`, which the record at `lsn` names: its state, or `None` for a pid
    /// the journal does not hold the beginning of (noted as an orphan).
    fn sim(&mut self, pid: Pid, lsn: u64) -> Option<&mut Sim> {
        if !self.sims.contains_key(&pid) {
            self.orphans
                .entry(pid)
                .or_insert(Orphan { lsn, ended: false });
        }
        self.sims.get_mut(&pid)
    }

    /// `pid` ended, or is gone for good.
    fn ended(&mut self, pid: Pid) {
        if let Some(orphan) = self.orphans.get_mut(&pid) {
            orphan.ended = true;
        }
    }

    /// A delivery (or a kept message) is also its sender's SEND: put that in the
    /// sender's records.
    fn note_send(
        &mut self,
        lsn: u64,
        from: Option<SendStep>,
        to: Option<Pid>,
        outcome: SendOutcome,
    ) {
        if let Some(from) = from
            && let Some(sender) = self.sim(from.pid, lsn)
        {
            sender.log.push_back(Record::Send {
                pid: from.pid,
                step: from.step,
                to,
                hash: from.hash,
                outcome,
            });
        }
    }

    /// `pid` (if the journal holds it) and its live descendants, parents before
    /// children, siblings in spawn order: what a message to `pid` reaches. Found
    /// through the children each process's own records name, so that a parent
    /// whose beginning was released still passes its messages on. Iterative: a
    /// deep chain of children costs heap, not stack.
    fn live_tree(&self, pid: Pid) -> Vec<Pid> {
        let mut out = Vec::new();
        if self.sims.contains_key(&pid) {
            out.push(pid);
        }
        let mut todo = vec![pid];
        while let Some(pid) = todo.pop() {
            let Some(kids) = self.kids.get(&pid) else {
                continue;
            };
            for child in kids.iter().rev() {
                if self.sims.get(child).is_some_and(|c| c.stop.is_none()) {
                    out.push(*child);
                    todo.push(*child);
                }
            }
        }
        out
    }

    /// Folds the record at `lsn` (records come in LSN order).
    pub(crate) fn apply(&mut self, lsn: u64, record: Record) -> Result<(), RecoveryError> {
        self.records += 1;
        match record {
            Record::Create {
                pid,
                parent,
                template,
                args,
                started,
                inbox,
            } => {
                if self.sims.contains_key(&pid) || self.orphans.contains_key(&pid) {
                    return Err(RecoveryError::Inconsistent {
                        lsn,
                        what: format!("a second creation of {pid}, or records of it before it"),
                    });
                }
                self.next_pid = self.next_pid.max(pid.0 + 1);
                let sim = Sim {
                    parent,
                    template: template.clone(),
                    args: args.clone(),
                    steps: 0,
                    restart: lsn,
                    started: started || parent.is_some(),
                    stop: None,
                    log: VecDeque::new(),
                    inbox: inbox.into(),
                    sys: SysMirror::new(),
                };
                self.sims.insert(pid, sim);
                if let Some(parent) = parent {
                    self.kids.entry(parent).or_default().push(pid);
                    if let Some(sim) = self.sim(parent, lsn) {
                        // The parent's SPAWN step (its replay checks the template
                        // and the arguments).
                        sim.log.push_back(Record::Create {
                            pid,
                            parent: Some(parent),
                            template,
                            args,
                            started,
                            inbox: Vec::new(),
                        });
                    }
                }
            }
            Record::Start { pid } => {
                if let Some(s) = self.sim(pid, lsn) {
                    s.started = true;
                }
            }
            Record::Deliver {
                to,
                msg,
                from,
                evicted,
                refused,
            } => {
                self.note_send(lsn, from, Some(to), SendOutcome::Delivered);
                // (Noted as an orphan if its beginning is not held: it may still
                // pass the message on to children whose records are.)
                self.sim(to, lsn);
                for pid in self.live_tree(to) {
                    if !refused.contains(&pid) {
                        let sim = self.sims.get_mut(&pid).expect("in the tree");
                        sim.inbox.push_back(msg.clone());
                    }
                }
                for (pid, gone) in evicted {
                    if let Some(s) = self.sim(pid, lsn) {
                        remove_first(s, &gone);
                    }
                }
            }
            Record::Undelivered {
                from,
                to,
                reason,
                msg,
            } => {
                // A send that an inbox refused was a full one (try_send's answer).
                let outcome = if reason == UNDELIVERED_REJECTED {
                    SendOutcome::Full
                } else {
                    SendOutcome::Delivered
                };
                self.note_send(lsn, from, to, outcome);
                self.undelivered
                    .push((from.map(|f| f.pid), to, reason, msg));
                self.kept_from.get_or_insert(lsn);
            }
            Record::UndeliveredTaken => {
                self.undelivered.clear();
                self.kept_from = None;
            }
            Record::NextPid { next } => self.next_pid = self.next_pid.max(next),
            Record::Evict { pid, msg } => {
                if let Some(s) = self.sim(pid, lsn) {
                    remove_first(s, &msg);
                }
            }
            Record::Take { pid, ref msg, .. } => {
                if let Some(s) = self.sim(pid, lsn) {
                    if let Some(msg) = msg {
                        remove_first(s, msg);
                    }
                    s.log.push_back(record);
                }
            }
            Record::Transition {
                pid,
                parent,
                step,
                template,
                args,
                inbox,
                children,
                next_pid,
            } => {
                self.next_pid = self.next_pid.max(next_pid).max(pid.0 + 1);
                // A snapshot: the process restarts here, whatever came before (its
                // older records may have been released).
                self.orphans.remove(&pid);
                self.kids.insert(pid, children);
                if let Some(parent) = parent {
                    let siblings = self.kids.entry(parent).or_default();
                    if !siblings.contains(&pid) {
                        siblings.push(pid);
                    }
                }
                let sim = Sim {
                    parent,
                    template,
                    args,
                    steps: step + 1,
                    restart: lsn,
                    started: true,
                    stop: None,
                    log: VecDeque::new(),
                    inbox: inbox.into(),
                    sys: SysMirror::new(),
                };
                self.sims.insert(pid, sim);
            }
            Record::Join { pid, child, .. } => {
                self.ended(child);
                if let Some(s) = self.sim(pid, lsn) {
                    s.log.push_back(record);
                }
            }
            Record::Use { pid, .. }
            | Record::Intent { pid, .. }
            | Record::Timer { pid, .. }
            | Record::Interrupted { pid, .. }
            | Record::Send { pid, .. } => {
                if let Some(s) = self.sim(pid, lsn) {
                    s.log.push_back(record);
                }
            }
            Record::Stop { pid, exit } => {
                // Its children ended with it (or before): nothing to pass on.
                self.kids.remove(&pid);
                let reason = reason_of(&exit);
                if let Some(s) = self.sim(pid, lsn) {
                    s.stop = Some(exit);
                }
                // After `sim`, which notes a process whose beginning went as
                // an orphan: a STOP may be all that is left of one killed (its
                // restart point goes with its end).
                self.ended(pid);
                // What its end tells its links and monitors.
                self.otp_ended(pid, reason);
            }
            Record::Reaped { pid } => {
                self.ended(pid);
                self.sims.remove(&pid);
                self.kids.remove(&pid);
            }
            Record::Layout { what, fingerprint } => {
                self.layouts.insert(what, fingerprint);
            }
            Record::Otp {
                pid,
                step,
                call,
                msg,
            } => {
                self.otp_call(pid, &call, msg.as_deref());
                if let Some(pid) = pid
                    && let Some(s) = self.sim(pid, lsn)
                {
                    s.log.push_back(Record::Otp {
                        pid: Some(pid),
                        step,
                        call,
                        msg,
                    });
                }
            }
            Record::SpawnTied {
                pid,
                template,
                args,
                by,
                step,
                call,
            } => {
                let create = Record::Create {
                    pid,
                    parent: None,
                    template,
                    args,
                    started: true,
                    inbox: Vec::new(),
                };
                self.apply(lsn, create)?;
                self.records -= 1;
                self.sim(by, lsn);
                self.otp_spawned(by, step, call);
            }
            Record::TimerFired {
                timer,
                to,
                msg,
                evicted,
                refused,
            } => self.otp_fired(timer, to, msg, evicted, refused),
            Record::OtpState(state) => self.otp_state(*state),
            Record::TransitionMail { transition, sys } => {
                let &Record::Transition { pid, .. } = &*transition else {
                    return Err(RecoveryError::Inconsistent {
                        lsn,
                        what: "a snapshot with mail that is not a transition".into(),
                    });
                };
                self.apply(lsn, *transition)?;
                self.records -= 1;
                if let Some(s) = self.sims.get_mut(&pid) {
                    s.sys = sys.into();
                }
            }
        }
        Ok(())
    }

    /// Every record folded: no process that had not ended lost its beginning.
    pub(crate) fn check(&self) -> Result<(), RecoveryError> {
        match self.orphans.iter().find(|(_, o)| !o.ended) {
            Some((&pid, orphan)) => Err(RecoveryError::Orphan {
                pid,
                lsn: orphan.lsn,
            }),
            None => Ok(()),
        }
    }

    /// What the records say of each process, by pid.
    pub(crate) fn processes(&self) -> Vec<ProcessInfo> {
        self.sims
            .iter()
            .map(|(&pid, sim)| ProcessInfo {
                pid,
                parent: sim.parent,
                template: sim.template.clone(),
                restart: sim.restart,
                started: sim.started,
                ended: sim.stop.is_some(),
                records: sim.log.len(),
                inbox: sim.inbox.len(),
            })
            .collect()
    }

    /// How many undelivered messages are kept, not yet taken.
    pub(crate) fn undelivered(&self) -> usize {
        self.undelivered.len()
    }

    /// Every record folded: checks that none lost its process's beginning, then
    /// rebuilds every process in `k`, parents before children, so that messages
    /// sent right after opening reach them all.
    pub(crate) fn finish<M>(
        mut self,
        k: &mut Kernel<M, M>,
        recovery: &mut Recovery,
    ) -> Result<(), RecoveryError>
    where
        M: Serialize + DeserializeOwned + Clone + 'static,
    {
        self.check()?;
        k.set_next_pid(self.next_pid);
        durable_mut(k).expect("durable").kept_from = self.kept_from;
        for (from, to, reason, msg) in self.undelivered {
            let what = "undelivered messages";
            let msg: M = decode_caught(&msg).map_err(|why| RecoveryError::Decode {
                pid: from.unwrap_or(Pid(u64::MAX)),
                what,
                why,
            })?;
            k.undelivered.push(Undelivered {
                from,
                to,
                reason: UndeliveredReason::from_code(reason),
                msg,
            });
        }
        let mut tops = Vec::new();
        for (pid, sim) in self.sims {
            if sim.parent.is_none() {
                tops.push(pid);
            }
            let inbox = sim
                .inbox
                .into_iter()
                .map(|m| {
                    decode_caught(&m).map_err(|why| RecoveryError::Decode {
                        pid,
                        what: "messages",
                        why,
                    })
                })
                .collect::<Result<VecDeque<M>, _>>()?;
            let pending = Pending {
                template: sim.template,
                args: sim.args,
                steps: sim.steps,
                started: sim.started,
                log: sim.log,
                inbox,
                stop: sim.stop,
                children: self.kids.remove(&pid).unwrap_or_default(),
                restart: sim.restart,
                sys: sim.sys,
            };
            durable_mut(k)
                .expect("durable")
                .pending
                .insert(pid, pending);
        }
        for pid in tops {
            let pending = &durable(k).expect("durable").pending[&pid];
            let (ended, started) = (pending.stop.is_some(), pending.started);
            rebuild_process(k, pid, None)?;
            if ended {
                recovery.fast_forwarded.push(pid);
            } else if started {
                recovery.replayed.push(pid);
            }
        }
        // Left over: children of processes that ended (killed with them).
        durable_mut(k).expect("durable").pending.clear();
        install(k, self.otp)
    }
}

/// The first message of `s`'s inbox equal to `msg` left it.
fn remove_first(s: &mut Sim, msg: &[u8]) {
    if let Some(i) = s.inbox.iter().position(|m| m == msg) {
        took_at(&mut s.inbox, &mut s.sys, i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(pid: u64) -> Record {
        Record::Create {
            pid: Pid(pid),
            parent: None,
            template: "t".into(),
            args: Vec::new(),
            started: true,
            inbox: Vec::new(),
        }
    }

    fn take(pid: u64) -> Record {
        Record::Take {
            pid: Pid(pid),
            step: 0,
            msg: None,
        }
    }

    fn fold(records: Vec<Record>) -> Fold {
        let mut fold = Fold::default();
        for (lsn, r) in records.into_iter().enumerate() {
            fold.apply(lsn as u64, r).unwrap();
        }
        fold
    }

    #[test]
    fn records_of_a_live_process_without_its_creation_are_orphans() {
        let f = fold(vec![create(0), take(0), take(1)]);
        let live: Vec<_> = f.orphans.iter().filter(|(_, o)| !o.ended).collect();
        assert_eq!(live.len(), 1);
        assert_eq!((*live[0].0, live[0].1.lsn), (Pid(1), 2));
    }

    #[test]
    fn records_of_an_ended_process_may_outlive_its_creation() {
        // Its beginning was released once its result was taken.
        let f = fold(vec![
            take(1),
            Record::Stop {
                pid: Pid(1),
                exit: StopRecord::Normal(Vec::new()),
            },
            Record::Reaped { pid: Pid(1) },
        ]);
        assert!(f.orphans.values().all(|o| o.ended));
    }

    #[test]
    fn a_snapshot_is_a_beginning() {
        let f = fold(vec![
            take(1),
            Record::Transition {
                pid: Pid(1),
                parent: None,
                step: 1,
                template: "t".into(),
                args: Vec::new(),
                inbox: Vec::new(),
                children: Vec::new(),
                next_pid: 2,
            },
            take(1),
        ]);
        assert!(f.orphans.is_empty());
    }

    #[test]
    fn a_second_creation_is_refused() {
        let mut f = Fold::default();
        f.apply(0, create(0)).unwrap();
        assert!(matches!(
            f.apply(1, create(0)),
            Err(RecoveryError::Inconsistent { lsn: 1, .. })
        ));
    }
}
