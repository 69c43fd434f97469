//! The process tree: a parent adopts the children it spawns, joins them (their
//! results), and takes them down with it when it ends or is killed. Trees are
//! walked iteratively: a chain of a million descendants costs heap, not stack.

use std::any::Any;
use std::ptr::NonNull;

use smallvec::SmallVec;

use crate::error::{ExitError, JoinError};
use crate::kernel::{Kernel, PPtr, Status};
use crate::reason::Reason;
use crate::signal::{Pid, SignalData};
use crate::trace::traced;

impl<I: 'static, O: 'static> Kernel<I, O> {
    /// `p` and its live descendants, parents before children (in spawn order).
    pub(super) fn collect_tree(&self, p: PPtr<I, O>, out: &mut SmallVec<[PPtr<I, O>; 8]>) {
        let mut todo: SmallVec<[PPtr<I, O>; 8]> = SmallVec::new();
        todo.push(p);
        while let Some(q) = todo.pop() {
            out.push(q);
            // SAFETY: q is live; children are looked up by pid.
            for &child in unsafe { q.as_ref().children() }.iter().rev() {
                if let Some(c) = self.lookup(child) {
                    // SAFETY: c is live.
                    if unsafe { c.as_ref().status } != Status::Stopped {
                        todo.push(c);
                    }
                }
            }
        }
    }

    /// Makes a just-created `child` a child of `parent`: it gets a copy of the
    /// parent's unconsumed inbox, SPAWN, then the child's START. Returns its pid.
    pub(crate) fn adopt(&mut self, parent: PPtr<I, O>, child: PPtr<I, O>) -> Pid
    where
        I: Clone,
    {
        // SAFETY: child and parent are distinct live processes.
        let (c, p) = unsafe { (&mut *child.as_ptr(), &mut *parent.as_ptr()) };
        // `Clone` is user code: if it panics, the child (installed, never
        // started) is taken out again, and the panic goes on to the spawner.
        let copy = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            p.inbox.queue.iter().cloned().collect::<Vec<I>>()
        }));
        let copy = match copy {
            Ok(copy) => copy,
            Err(payload) => {
                let pid = c.pid;
                c.killing = true;
                // It never ran: the destructors its stop runs (of what its body
                // captured) may not use its context, which would reach the
                // kernel while this call holds it.
                c.in_call = true;
                let engine = c.engine.take();
                self.procs.remove(pid);
                if let Some(engine) = engine {
                    let turn = self.turn_of(child);
                    engine.stop(&turn);
                }
                self.free(child);
                std::panic::resume_unwind(payload);
            }
        };
        c.inbox.queue.extend(copy);
        p.extra().children.push(c.pid);
        let pid = c.pid;
        self.emit(parent, || SignalData::Spawn { child: pid });
        self.start(child);
        pid
    }

    /// The result of `parent`'s child `pid` if it stopped: JOIN, and the child is
    /// reaped. `None` while it runs. A result of another type than `R` leaves the
    /// child for a join with the right type.
    #[cfg_attr(not(feature = "stackless"), allow(dead_code))]
    pub(crate) fn take_child<R: 'static>(
        &mut self,
        parent: PPtr<I, O>,
        pid: Pid,
    ) -> Option<Result<R, JoinError>> {
        self.take_child_as(parent, pid, |r| r.downcast::<R>().map(|r| *r))
    }

    /// [`take_child`](Self::take_child), its result made a `T` by `cast`
    /// (which gives back what is not one).
    pub(crate) fn take_child_as<T>(
        &mut self,
        parent: PPtr<I, O>,
        pid: Pid,
        cast: impl FnOnce(Box<dyn Any>) -> Result<T, Box<dyn Any>>,
    ) -> Option<Result<T, JoinError>> {
        let Some(c) = self.lookup(pid) else {
            return Some(Err(JoinError::NotAChild(pid)));
        };
        // SAFETY: c is live.
        let cp = unsafe { &mut *c.as_ptr() };
        if cp.status != Status::Stopped {
            return None;
        }
        let result = cp
            .extra()
            .result
            .take()
            .expect("a stopped child keeps its result until joined");
        let result = match result {
            Ok(r) => match cast(r) {
                Ok(r) => Ok(r),
                Err(r) => {
                    // A handle of another type (made by deserializing): keep the
                    // child for a join with the right one.
                    cp.extra().result = Some(Ok(r));
                    return Some(Err(JoinError::ResultType(pid)));
                }
            },
            Err(e) => Err(JoinError::Exited(e)),
        };
        // SAFETY: parent is live.
        if let Some(e) = unsafe { (*parent.as_ptr()).extra_mut() } {
            e.children.retain(|x| *x != pid);
        }
        self.reap(c);
        self.emit(parent, || SignalData::Join { child: pid });
        Some(result)
    }

    /// Stops `p` and its descendants (deepest first, siblings in spawn order):
    /// each coroutine is unwound; `p` ends with STOP `error`, its descendants
    /// with `Killed("parent <pid> ended")`. `p`'s result (the error) is kept as
    /// if it had ended by itself: for its parent's join if its parent lives on
    /// (an exit signal killed it), for the owner if it has no parent.
    ///
    /// Takes the kernel's root pointer, as [`finish`](Self::finish) does: each
    /// stop runs destructors that may use their contexts.
    ///
    /// # Safety
    /// `k` is a live kernel (its `this`), no reference to it is held by the
    /// caller, and `p` is a live process of it.
    pub(crate) unsafe fn kill(k: NonNull<Self>, p: PPtr<I, O>, error: ExitError) {
        // SAFETY: p is live.
        let root = unsafe { p.as_ref().pid };
        // (pid, why (the root's is `error`), its children are on the stack
        // above it already)
        let mut todo: Vec<(Pid, Option<ExitError>, bool)> = vec![(root, None, false)];
        let mut error = Some(error);
        while let Some((pid, why, expanded)) = todo.pop() {
            // Looked up again: a destructor run by an earlier stop may have
            // changed the tree.
            // SAFETY: per the contract; a fresh reference for the lookup only.
            let Some(q) = (unsafe { (*k.as_ptr()).lookup(pid) }) else {
                continue;
            };
            // SAFETY: q is live.
            let children = unsafe { (*q.as_ptr()).take_children() };
            if !expanded || !children.is_empty() {
                todo.push((pid, why, true));
                let own = ExitError::Killed(format!("parent {pid} ended"));
                todo.extend(
                    children
                        .into_iter()
                        .rev()
                        .map(|child| (child, Some(own.clone()), false)),
                );
                continue;
            }
            // Its engine stops first. Its destructors may have spawned children:
            // they go before it, as the others did (no one could join them).
            // SAFETY: per the contract; q is live.
            if unsafe { Self::stop_engine(k, q) } {
                // SAFETY: q is live (a stopped engine does not free its record).
                let late = unsafe { (*q.as_ptr()).take_children() };
                if !late.is_empty() {
                    todo.push((pid, why, true));
                    let own = ExitError::Killed(format!("parent {pid} ended"));
                    todo.extend(
                        late.into_iter()
                            .rev()
                            .map(|child| (child, Some(own.clone()), false)),
                    );
                    continue;
                }
            }
            let (why, keep) = match why {
                Some(why) => (why, false),
                None => (error.take().expect("the root is ended once, last"), true),
            };
            // SAFETY: per the contract; q is live.
            unsafe { Self::kill_one(k, q, why, keep) };
        }
    }

    /// Stops `p`'s engine, if it has one and has not ended: it is marked
    /// `killing`, and its coroutine unwinds.
    /// Whether it stopped one.
    ///
    /// # Safety
    /// As [`kill`](Self::kill).
    unsafe fn stop_engine(k: NonNull<Self>, p: PPtr<I, O>) -> bool {
        // SAFETY: per the contract; not used after the stop below.
        let this = unsafe { &mut *k.as_ptr() };
        // SAFETY: p is live.
        let proc = unsafe { &mut *p.as_ptr() };
        if proc.status == Status::Stopped || proc.engine.is_none() {
            return false;
        }
        proc.killing = true;
        // (Room it was granted passes on when it ends: `settle_end`.)
        // SAFETY: p is live; its engine is out of the record before it stops, and
        // no reference into the kernel is held across the stop (user code).
        let engine = unsafe { (*p.as_ptr()).engine.take() };
        if let Some(engine) = engine {
            let turn = this.turn_of(p);
            engine.stop(&turn);
        }
        true
    }

    /// Ends `p`, whose children are gone and whose engine stopped: STOP
    /// `error`; then its result is kept (`keep`: the root of a kill, if its
    /// parent still lists it, or it has none) or it is freed. One that already
    /// ended (its parent is ending: exit signals skip ended processes) is just
    /// freed.
    ///
    /// # Safety
    /// As [`kill`](Self::kill).
    unsafe fn kill_one(k: NonNull<Self>, p: PPtr<I, O>, error: ExitError, keep: bool) {
        // SAFETY: per the contract; no user code runs below but the sink's (which
        // cannot reach the kernel) and destructors of freed messages.
        let this = unsafe { &mut *k.as_ptr() };
        // SAFETY: p is live.
        let proc = unsafe { &mut *p.as_ptr() };
        let pid = proc.pid;
        if proc.status == Status::Stopped {
            // Already ended, never joined, and its parent is ending (exit
            // signals skip ended processes): its result goes unread, as if
            // reaped.
            if let Some(hooks) = &mut this.hooks {
                hooks.reaped(pid);
            }
            this.procs.remove(pid);
            this.free(p);
            return;
        }
        // (Its engine, if it had one, was stopped by `stop_engine`.)
        proc.killing = true;
        if let Some(hooks) = &mut this.hooks {
            hooks.killed(pid, &error);
        }
        this.emit(p, || SignalData::Stop {
            exit: Err(error.clone()),
        });
        // SAFETY: p is live.
        traced!(crate::trace::stop::<()>(
            pid,
            unsafe { &p.as_ref().name },
            &Err(error.clone())
        ));
        this.notify_end(p, || Reason::from(error.clone()));
        // SAFETY: p is live.
        let parent = unsafe { p.as_ref().parent };
        // A parent that lives on still lists it (an ending one took its list).
        let kept_for = |pp: Pid| {
            this.lookup(pp)
                // SAFETY: a parent is live and distinct from p.
                .is_some_and(|pp| unsafe { pp.as_ref().children().contains(&pid) })
        };
        if keep && parent.is_none_or(kept_for) {
            // Its parent (or the owner) takes its result, as if it had ended
            // by itself.
            this.stopped(p, Err(error));
            return;
        }
        this.settle_end(p);
        // A killed child is not kept for a join: its parent is ending too.
        this.procs.remove(pid);
        this.free(p);
    }
}
