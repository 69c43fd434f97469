//! Moving a process between kernels of one pid space (a runtime's cores):
//! the process is taken out of one kernel whole ([`Kernel::extract`]) and put
//! into another under the same pid ([`Kernel::insert`]).
//!
//! Only a process that nothing else in its kernel refers to may move: a
//! top-level one (no parent, no children), not running, ready or waiting for
//! a message, with nothing of the rarely used part of its record but a count
//! of dropped messages (no timer, no senders waiting for room in its inbox,
//! no system messages, no result), not watched by a layer above (links,
//! monitors, a name), with no timed send armed (its ids are this kernel's)
//! and no exit signal pending. Which engines may cross threads is the layer
//! above's to say (by the engine's kind); the kernel only moves the record's
//! state.

use std::rc::Rc;
use std::sync::Arc;

use crate::kernel::inbox::Inbox;
use crate::kernel::options::Route;
use crate::kernel::proc::Proc;
use crate::kernel::{BoxedEngine, Kernel, PPtr, Status, Wait};
use crate::signal::Pid;

/// A process taken out of its kernel, to be inserted into another of the same
/// space: what its record held that matters.
pub(crate) struct Extracted<I, O> {
    pub(crate) pid: Pid,
    /// Its template's name.
    name: Arc<str>,
    /// Its messages in order, capacity, overflow policy and head count.
    inbox: Inbox<I>,
    /// `Ready` or waiting for a message.
    status: Status,
    pub(crate) engine: BoxedEngine,
    /// The engine layer's tag of `engine`.
    pub(crate) engine_kind: u8,
    route: Option<Route<O>>,
    seq: u64,
    detached: bool,
    /// Messages its overflow policy dropped so far.
    dropped: u64,
}

impl<I, O> Extracted<I, O> {
    /// Its messages, in order; its engine is dropped here, outside any turn
    /// (its destructors' use of its context panics, and that panic ends
    /// here): a process that could not be inserted anywhere.
    pub(crate) fn into_messages(self) -> Vec<I> {
        crate::kernel::pass::drop_quietly(self.engine);
        self.inbox.queue.into()
    }
}

impl<I: 'static, O: 'static> Kernel<I, O> {
    /// Whether the process `p` may leave this kernel now (see the module).
    fn movable(&self, p: PPtr<I, O>) -> bool {
        if self.hooks.is_some() || self.resuming.is_some() {
            return false;
        }
        // SAFETY: p is live; a read.
        let proc = unsafe { p.as_ref() };
        matches!(proc.status, Status::Ready | Status::Waiting(Wait::Message))
            && proc.engine.is_some()
            && proc.parent.is_none()
            && !proc.released
            && !proc.killing
            && !proc.in_call
            && !proc.watched
            && !proc.timed_sends
            && proc.extra_ref().is_none_or(|e| e.is_bare())
            && !self.exits.iter().any(|&(pid, _)| pid == proc.pid)
            && !self.holds_for(proc.pid)
    }

    /// Up to `max` pids of ready processes whose engine is of kind `kind`
    /// and that may move now, for which `also` says yes, among the last
    /// `scan` of the ready queue (those that would run last).
    pub(crate) fn movable_ready(
        &self,
        kind: u8,
        scan: usize,
        max: usize,
        mut also: impl FnMut(Pid) -> bool,
    ) -> Vec<Pid> {
        let skip = self.ready.len().saturating_sub(scan);
        let mut out: Vec<Pid> = self
            .ready
            .iter()
            .skip(skip)
            .filter(|&p| {
                // SAFETY: queued records are live or released; a read.
                let proc = unsafe { p.as_ref() };
                proc.engine_kind == kind && !proc.released && self.movable(p) && also(proc.pid)
            })
            // SAFETY: as above.
            .map(|p| unsafe { p.as_ref().pid })
            .collect();
        let extra = out.len().saturating_sub(max);
        out.drain(..extra);
        out
    }

    /// Takes the process `pid` out of this kernel, if it is here, its engine
    /// of kind `kind`, and it may move (see the module); its record is freed
    /// (or left to the ready queue to free). No user code runs.
    pub(crate) fn extract(&mut self, pid: Pid, kind: u8) -> Option<Extracted<I, O>> {
        let p = self.lookup(pid)?;
        // SAFETY: p is live; a read.
        if unsafe { p.as_ref().engine_kind } != kind || !self.movable(p) {
            return None;
        }
        self.procs.remove(pid);
        // SAFETY: p is live, out of the table now; nothing else borrows it.
        let proc = unsafe { &mut *p.as_ptr() };
        let inbox = std::mem::replace(&mut proc.inbox, Inbox::new(1, crate::Overflow::Backoff));
        let out = Extracted {
            pid,
            name: Arc::from(&*proc.name),
            inbox,
            status: proc.status,
            engine: proc.engine.take().expect("checked by `movable`"),
            engine_kind: proc.engine_kind,
            route: proc.route.take(),
            seq: proc.seq,
            detached: proc.detached,
            dropped: proc.dropped(),
        };
        proc.status = Status::Stopped;
        // (A queued one is freed when it leaves the queue.)
        self.free(p);
        Some(out)
    }

    /// Puts a process taken out of another kernel of this one's space into
    /// this one, under its pid, in the state it left: ready (queued) or
    /// waiting for a message. No user code runs.
    pub(crate) fn insert(&mut self, x: Extracted<I, O>) -> PPtr<I, O> {
        debug_assert!(
            self.lookup(x.pid).is_none(),
            "a pid is in one kernel at a time"
        );
        let name: Rc<str> = Rc::from(&*x.name);
        let mut proc = Proc::new(x.pid, name, None, x.inbox, x.route);
        proc.engine = Some(x.engine);
        proc.engine_kind = x.engine_kind;
        proc.seq = x.seq;
        proc.detached = x.detached;
        proc.moved_in = true;
        if x.dropped > 0 {
            proc.extra().dropped = x.dropped;
        }
        proc.status = x.status;
        let ready = x.status == Status::Ready;
        let p = self.records.alloc(proc);
        self.procs.insert_far(x.pid, p);
        if ready {
            self.make_ready(p);
        }
        p
    }
}

#[cfg(all(test, feature = "stackless"))]
mod tests {
    use std::time::Duration;

    use crate::engine::MIGRATABLE;
    use crate::kernel::Space;
    use crate::stackless::{receive, sleep};
    use crate::{Pid, SimpleScheduler, StacklessCtx, StacklessTemplate};

    /// Two schedulers of one space, their pids apart (as a runtime's cores).
    fn pair() -> (SimpleScheduler<u64>, SimpleScheduler<u64>) {
        let space = Space::<u64, u64>::new();
        let (mut a, mut b) = (SimpleScheduler::new(), SimpleScheduler::new());
        a.kernel_mut().join_space(space);
        b.kernel_mut().join_space(space);
        b.kernel_mut().set_pid_space(1 << 40, 1);
        (a, b)
    }

    /// Sums `n` messages; its context is used before and after the move.
    fn summer() -> StacklessTemplate<u64, u64, u64, (u64, Pid)> {
        StacklessTemplate::migratable("sum", |cx: StacklessCtx<u64>, n: u64| {
            #[coroutine]
            move || {
                let mut sum = 0;
                for _ in 0..n {
                    sum = sum * 10 + receive!(cx);
                }
                (sum, cx.pid())
            }
        })
    }

    #[test]
    fn a_stackless_process_goes_on_in_another_kernel_of_its_space() {
        let (mut a, mut b) = pair();
        let handle = a.spawn(&summer(), 4).unwrap();
        let pid = handle.pid();
        a.send(pid, 1).unwrap();
        a.run_until_idle();
        // Waiting for its second message, with it in its inbox: it moves so.
        a.send(pid, 2).unwrap();
        let x = a.kernel_mut().extract(pid, MIGRATABLE).expect("movable");
        assert!(a.kernel_mut().lookup(pid).is_none());
        assert!(
            a.kernel_mut().extract(pid, MIGRATABLE).is_none(),
            "gone from its old kernel"
        );
        b.kernel_mut().insert(x);
        b.send(pid, 3).unwrap();
        b.send(pid, 4).unwrap();
        b.run_until_idle();
        // Its messages in order, its context working in its new kernel.
        assert_eq!(
            b.kernel_mut().take_result::<(u64, Pid)>(pid),
            Some(Ok((1234, pid)))
        );
        drop(handle);
    }

    #[test]
    fn a_process_tied_to_its_kernel_does_not_move() {
        let (mut a, _b) = pair();
        // Another kind of engine.
        let plain = StacklessTemplate::new("plain", |cx: StacklessCtx<u64>, ()| {
            #[coroutine]
            move || receive!(cx)
        });
        let p = a.spawn(&plain, ()).unwrap();
        // A timer of its own.
        let sleeper = StacklessTemplate::migratable("sleeper", |_cx: StacklessCtx<u64>, ()| {
            #[coroutine]
            move || sleep!(_cx, Duration::from_secs(3600))
        });
        let s = a.spawn(&sleeper, ()).unwrap();
        let _ = a.update();
        assert!(a.kernel_mut().extract(p.pid(), MIGRATABLE).is_none());
        assert!(a.kernel_mut().extract(s.pid(), MIGRATABLE).is_none());
        // A movable one, for contrast.
        let m = a.spawn(&summer(), 1).unwrap();
        let _ = a.update();
        assert!(a.kernel_mut().extract(m.pid(), MIGRATABLE).is_some());
    }
}
