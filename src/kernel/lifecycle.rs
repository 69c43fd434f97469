//! The life cycle of a process record: made (by an engine, through
//! [`Kernel::new_record`] and [`Kernel::install`]), started, ended (its result to
//! its parent or to the owner), reaped and freed.

use std::any::Any;
use std::sync::Arc;

use crate::durable::{Record, StopRecord};
use crate::error::ExitError;
use crate::kernel::inbox::{Inbox, Overflow};
use crate::kernel::options::Options;
use crate::kernel::{BoxedEngine, Ended, Kernel, PPtr, Proc, Status, Wait};
use crate::signal::{Exit, Pid, SignalKind, Value};

/// A top-level process that ended, with its result kept for the owner.
pub(crate) struct Finished {
    pub(crate) result: Result<Box<dyn Any>, ExitError>,
}

impl<I: 'static, O: 'static> Kernel<I, O> {
    /// A new process record (status `Created`, no engine yet) with the options of
    /// its template, and pid `pid` or the next one. It is not in the pid table
    /// until [`install`](Self::install)ed.
    pub(crate) fn new_record(
        &mut self,
        opts: &Options<O>,
        parent: Option<Pid>,
        pid: Option<Pid>,
    ) -> PPtr<I, O> {
        let pid = pid.unwrap_or_else(|| self.alloc_pid());
        self.records.alloc(Proc::new(
            pid,
            opts.name.clone(),
            parent,
            Inbox::new(opts.capacity, opts.overflow),
            opts.route.clone(),
        ))
    }

    /// Gives a new record its engine and puts it in the pid table.
    pub(crate) fn install(&mut self, p: PPtr<I, O>, engine: BoxedEngine) {
        // SAFETY: p was just made by `new_record` and is not shared yet.
        let pid = unsafe {
            (*p.as_ptr()).engine = Some(engine);
            p.as_ref().pid
        };
        self.procs.insert(pid, p);
    }

    /// Frees a record made by `new_record` that was never installed.
    ///
    /// # Safety
    /// `p` came from `new_record` of this kernel, was not installed, and is not
    /// used afterwards.
    pub(crate) unsafe fn discard(&mut self, p: PPtr<I, O>) {
        // SAFETY: per the contract.
        unsafe { self.records.free(p) };
    }

    /// Makes a child that already ended (rebuilt from the journal): no stack, no
    /// coroutine, its result kept for its parent's join.
    pub(crate) fn create_stopped(
        &mut self,
        name: Arc<str>,
        pid: Pid,
        parent: Pid,
        result: Result<Box<dyn Any>, ExitError>,
    ) -> PPtr<I, O> {
        let mut proc = Proc::new(
            pid,
            name,
            Some(parent),
            Inbox::new(1, Overflow::Backoff),
            None,
        );
        proc.status = Status::Stopped;
        proc.extra().result = Some(result);
        let p = self.records.alloc(proc);
        self.procs.insert(pid, p);
        p
    }

    /// Starts a created process: START, then it is runnable.
    pub(crate) fn start(&mut self, p: PPtr<I, O>) {
        // SAFETY: p is live.
        let (pid, parent) = unsafe { (p.as_ref().pid, p.as_ref().parent) };
        let spawning = self.durable.as_ref().is_some_and(|d| d.spawning);
        if parent.is_none() && !spawning {
            // (A spawn starts what it creates, and a child starts with its spawn:
            // their CREATE says so.)
            self.journal(|| Record::Start { pid });
        }
        self.emit(p, || SignalKind::Start);
        self.make_ready(p);
    }

    /// Frees a process that is out of the table and has no engine.
    pub(super) fn free(&mut self, p: PPtr<I, O>) {
        // SAFETY: p is live and no longer referenced by the table.
        let proc = unsafe { &mut *p.as_ptr() };
        if proc.queued {
            proc.released = true;
        } else {
            // SAFETY: p is a record of this kernel's, referenced nowhere.
            unsafe { self.records.free(p) };
        }
    }

    /// Removes a stopped child from the table after its parent took its result.
    pub(crate) fn reap(&mut self, p: PPtr<I, O>) {
        // SAFETY: p is live.
        let pid = unsafe { p.as_ref().pid };
        if let Some(d) = &mut self.durable {
            d.clear_restart(pid);
        }
        self.procs.remove(pid);
        self.free(p);
    }

    /// A process's coroutine returned: settle its children, emit STOP, hand its
    /// result to its parent (or keep it for the owner), free what it held.
    pub(super) fn finish(&mut self, p: PPtr<I, O>, ended: Ended) {
        // SAFETY: p is live; its engine is done: dropping it gives back its stack.
        drop(unsafe { (*p.as_ptr()).engine.take() });
        // SAFETY: as above.
        let proc = unsafe { &mut *p.as_ptr() };
        if let Some(replay) = proc.replay()
            && let Some(recorded) = replay.log.front()
        {
            // It ended before its records did: held, neither ended nor journaled.
            let violation = crate::durable::DeterminismViolation {
                pid: proc.pid,
                step: proc.steps(),
                recorded: recorded.describe(),
                emitted: "the process's end".into(),
            };
            proc.status = Status::Waiting(Wait::Held);
            if let Some(d) = &mut self.durable {
                d.violations.push(violation);
            }
            return;
        }
        let mut result = ended.result;
        let mut value = ended.value;
        if !proc.children().is_empty() {
            let children = proc.take_children();
            if result.is_ok() {
                let list: Vec<String> = children.iter().map(|c| c.to_string()).collect();
                result = Err(ExitError::Failed(format!(
                    "returned with unjoined children: {}",
                    list.join(", ")
                )));
                value = None;
            }
            let reason = format!("parent {} ended", proc.pid);
            for child in children {
                if let Some(c) = self.lookup(child) {
                    self.kill(c, &reason);
                }
            }
        }
        // SAFETY: p is live.
        let pid = unsafe { p.as_ref().pid };
        self.journal(|| Record::Stop {
            pid,
            exit: match (&result, &value) {
                (Ok(_), Some(v)) => StopRecord::Normal(v.as_bytes().to_vec()),
                (Ok(_), None) => StopRecord::Normal(Vec::new()),
                (Err(ExitError::Failed(m)), _) => StopRecord::Failed(m.clone()),
                (Err(ExitError::Killed(m)), _) => StopRecord::Killed(m.clone()),
            },
        });
        self.emit(p, || {
            let exit = match (&result, value) {
                (Ok(_), Some(v)) => Exit::Normal(v),
                // Recording began after the body returned: the result was not encoded.
                (Ok(_), None) => {
                    Exit::Normal(Value::encode(&String::from("<result not recorded>")))
                }
                (Err(ExitError::Failed(m)), _) => Exit::Failed(m.clone()),
                (Err(ExitError::Killed(m)), _) => Exit::Killed(m.clone()),
            };
            SignalKind::Stop { exit }
        });
        self.stopped(p, result);
    }

    /// Common end of a process, after its STOP.
    pub(super) fn stopped(&mut self, p: PPtr<I, O>, result: Result<Box<dyn Any>, ExitError>) {
        self.wake_all_senders(p);
        // SAFETY: p is live.
        let proc = unsafe { &mut *p.as_ptr() };
        if let Status::Waiting(Wait::Effect) = proc.status {
            self.effects_pending -= 1;
        }
        proc.status = Status::Stopped;
        let pid = proc.pid;
        // Ended with a timer armed (a stackless body that polled a sleep and
        // returned): nobody waits on it.
        self.cancel_timer(p);
        // SAFETY: p is live; `cancel_timer` ended its borrow.
        let proc = unsafe { &mut *p.as_ptr() };
        let parent = proc.parent.and_then(|pp| self.lookup(pp));
        match parent {
            Some(parent) => {
                // Kept until the parent joins it.
                proc.extra().result = Some(result);
                // SAFETY: parent is live.
                if unsafe { parent.as_ref().status } == Status::Waiting(Wait::Join(pid)) {
                    self.make_ready(parent);
                }
            }
            None => {
                self.finished.insert(pid, Finished { result });
                self.procs.remove(pid);
                self.free(p);
            }
        }
    }

    /// Takes the result of an ended top-level process, typed.
    /// `None` when there is none, or it is not an `R` (then it stays).
    pub(crate) fn take_result<R: 'static>(&mut self, pid: Pid) -> Option<Result<R, ExitError>> {
        if let Ok(r) = &self.finished.get(&pid)?.result
            && !r.is::<R>()
        {
            return None;
        }
        let finished = self.finished.remove(&pid)?;
        Some(finished.result.map(|r| {
            *r.downcast::<R>()
                .expect("a handle has its template's result type")
        }))
    }
}
