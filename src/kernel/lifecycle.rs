//! The life cycle of a process record: made (by an engine, through
//! [`Kernel::new_record`] and [`Kernel::install`]), started, ended (its result to
//! its parent or to the owner), reaped and freed.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::NonNull;
use std::sync::Arc;

use crate::error::{ExitError, SpawnError};
use crate::kernel::inbox::{Inbox, Overflow};
use crate::kernel::options::Options;
use crate::kernel::pass::{forget_quietly, panic_message};
use crate::kernel::{BoxedEngine, Ended, Kernel, PPtr, Proc, Status, Wait};
use crate::reason::Reason;
use crate::signal::{Exit, Pid, SignalData, Value};
use crate::trace::traced;

/// A top-level process that ended, with its result kept for the owner.
pub(crate) struct Finished {
    pub(crate) result: Result<Box<dyn Any>, ExitError>,
}

impl<I: 'static, O: 'static> Kernel<I, O> {
    /// A new process record (status `Created`, no engine yet) with the options of
    /// its template, and pid `pid` or the next one. It is not in the pid table
    /// until [`install`](Self::install)ed. No pid is left after `u64::MAX`:
    /// [`SpawnError::PidsExhausted`].
    #[inline]
    pub(crate) fn new_record(
        &mut self,
        opts: &Options<O>,
        parent: Option<Pid>,
        pid: Option<Pid>,
    ) -> Result<PPtr<I, O>, SpawnError> {
        let pid = match pid {
            Some(pid) => pid,
            None => self.alloc_pid()?,
        };
        let name = self.names.get(&opts.name);
        Ok(self.records.alloc_with(|| {
            Proc::new(
                pid,
                name,
                parent,
                Inbox::new(opts.capacity, opts.overflow),
                opts.route.clone(),
            )
        }))
    }

    /// Gives a new record its engine, of the engine layer's `kind`, and puts it in
    /// the pid table.
    #[inline]
    pub(crate) fn install(&mut self, p: PPtr<I, O>, engine: BoxedEngine, kind: u8) {
        // SAFETY: p was just made by `new_record` and is not shared yet.
        let pid = unsafe {
            (*p.as_ptr()).engine = Some(engine);
            (*p.as_ptr()).engine_kind = kind;
            p.as_ref().pid
        };
        self.procs.insert(pid, p);
    }

    /// Asks the hooks (if any) whether a process of `template` with `args` may be
    /// made, and what to record of its arguments.
    pub(crate) fn spawning<A: 'static>(
        &mut self,
        template: &str,
        args: &A,
        stackless: bool,
    ) -> Result<Option<Vec<u8>>, SpawnError> {
        match &mut self.hooks {
            Some(hooks) => hooks.spawning(template, args, stackless),
            None => Ok(None),
        }
    }

    /// Tells the hooks (if any) of a process made with the arguments that
    /// [`spawning`](Self::spawning) gave.
    pub(crate) fn created(&mut self, p: PPtr<I, O>, template: &str, args: Vec<u8>) {
        if let Some(hooks) = &mut self.hooks {
            // SAFETY: p is live, and nothing else borrows it during the hook.
            let proc = unsafe { &mut *p.as_ptr() };
            let parent = proc.parent.and_then(|pid| self.procs.get(pid));
            // SAFETY: a parent is live and distinct from its child; nothing
            // borrows it mutably during the hook.
            let parent = parent.map(|pp| unsafe { &*pp.as_ptr() });
            hooks.created(proc, parent, template, args);
        }
    }

    /// Frees a record made by `new_record` that was never installed.
    ///
    /// # Safety
    /// `p` came from `new_record` of this kernel, was not installed, and is not
    /// used afterwards.
    #[cfg_attr(not(feature = "stackless"), allow(dead_code))] // (stackless engines)
    pub(crate) unsafe fn discard(&mut self, p: PPtr<I, O>) {
        // SAFETY: per the contract.
        let panicked = unsafe { self.free_record(p) };
        self.report(panicked);
    }

    /// Makes a child that already ended (a layer rebuilding its state: durable
    /// recovery): no stack, no coroutine, its result kept for its parent's join.
    pub(crate) fn create_stopped(
        &mut self,
        name: Arc<str>,
        pid: Pid,
        parent: Pid,
        result: Result<Box<dyn Any>, ExitError>,
    ) -> PPtr<I, O> {
        let mut proc = Proc::new(
            pid,
            self.names.get(&name),
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
        if let Some(hooks) = &mut self.hooks {
            // SAFETY: p is live, and nothing else borrows it during the hook.
            hooks.started(unsafe { &mut *p.as_ptr() });
        }
        self.emit(p, || SignalData::Start);
        traced! {
            // SAFETY: p is live.
            let proc = unsafe { p.as_ref() };
            tracing::debug!(
                pid = proc.pid.0,
                name = &*proc.name,
                parent = proc.parent.map(|p| p.0),
                "spawn"
            );
        }
        self.make_ready(p);
    }

    /// Frees a process that is out of the table and has no engine.
    #[inline(always)]
    pub(super) fn free(&mut self, p: PPtr<I, O>) {
        // SAFETY: p is live and no longer referenced by the table.
        let proc = unsafe { &mut *p.as_ptr() };
        if proc.queued {
            proc.released = true;
        } else {
            // SAFETY: p is a record of this kernel's, referenced nowhere.
            let panicked = unsafe { self.free_record(p) };
            self.report(panicked);
        }
    }

    /// Frees the record `p` (see [`Slab::free`](crate::kernel::slab::Slab::free)):
    /// the first panic of a destructor, to report. Messages left in its
    /// queues are dropped one at a time first (see
    /// [`Proc::drop_queues_quietly`](crate::kernel::proc::Proc::drop_queues_quietly)).
    ///
    /// # Safety
    /// As `Slab::free`: `p` is a record of this kernel's, referenced nowhere
    /// else, not used after this.
    #[inline(always)]
    pub(crate) unsafe fn free_record(
        &mut self,
        p: PPtr<I, O>,
    ) -> Option<Box<dyn std::any::Any + Send>> {
        // SAFETY: per the contract; a read.
        if unsafe { p.as_ref() }.has_queued() {
            // SAFETY: per the contract.
            return unsafe { self.free_record_with_queues(p) };
        }
        // SAFETY: per the contract.
        unsafe { self.records.free(p) }
    }

    /// [`free_record`](Self::free_record) of a record with messages left.
    ///
    /// # Safety
    /// As `free_record`.
    #[cold]
    #[inline(never)]
    unsafe fn free_record_with_queues(
        &mut self,
        p: PPtr<I, O>,
    ) -> Option<Box<dyn std::any::Any + Send>> {
        // SAFETY: per the contract; no other reference to the record is held.
        let first = unsafe { &mut *p.as_ptr() }.drop_queues_quietly();
        // SAFETY: per the contract.
        let panicked = unsafe { self.records.free(p) };
        match (first, panicked) {
            (Some(first), later) => {
                if let Some(later) = later {
                    forget_quietly(later);
                }
                Some(first)
            }
            (None, panicked) => panicked,
        }
    }

    /// Removes a stopped child from the table after its parent took its result.
    pub(crate) fn reap(&mut self, p: PPtr<I, O>) {
        // SAFETY: p is live.
        let pid = unsafe { p.as_ref().pid };
        if let Some(hooks) = &mut self.hooks {
            hooks.reaped(pid);
        }
        self.procs.remove(pid);
        self.free(p);
    }

    /// A process's coroutine returned: settle its children, emit STOP, hand its
    /// result to its parent (or keep it for the owner), free what it held.
    ///
    /// Takes the kernel's root pointer, not `&mut self`: killing its children
    /// stops their engines, whose destructors may use their contexts, which make
    /// their own `&mut Kernel` from that root. No reference to the kernel is held
    /// across [`kill`](Self::kill).
    ///
    /// # Safety
    /// `k` is a live kernel (its `this`), no reference to it is held by the
    /// caller, and `p` is a live process of it.
    pub(super) unsafe fn finish(k: NonNull<Self>, p: PPtr<I, O>, ended: Ended) {
        // SAFETY: per the contract; not used after the kills below.
        let this = unsafe { &mut *k.as_ptr() };
        // SAFETY: p is live; its engine is done: dropping it gives back its
        // stack, and its block is kept for the next engine.
        if let Some(engine) = unsafe { (*p.as_ptr()).engine.take() } {
            this.blocks.recycle(engine);
        }
        // SAFETY: as above.
        let proc = unsafe { &mut *p.as_ptr() };
        if let Some(hooks) = &mut this.hooks
            && !hooks.ending(proc)
        {
            // Its layer expected more of it (a replay): held, not ended.
            proc.status = Status::Waiting(Wait::Held);
            return;
        }
        let mut result = ended.result;
        if !proc.children().is_empty() {
            let children = proc.take_children();
            if result.is_ok() {
                let list: Vec<String> = children.iter().map(|c| c.to_string()).collect();
                result = Err(ExitError::Failed(format!(
                    "returned with unjoined children: {}",
                    list.join(", ")
                )));
            }
            let reason = ExitError::Killed(format!("parent {} ended", proc.pid));
            for child in children {
                // SAFETY: per the contract; a fresh reference for the lookup only.
                if let Some(c) = unsafe { (*k.as_ptr()).lookup(child) } {
                    // SAFETY: per the contract; c is live.
                    unsafe { Self::kill(k, c, reason.clone()) };
                }
            }
        }
        // SAFETY: per the contract; the kills are over.
        let this = unsafe { &mut *k.as_ptr() };
        // A layer that journals results encodes them its own way.
        let encode = match &this.hooks {
            // SAFETY: p is live.
            Some(hooks) => hooks
                .result_encoder(unsafe { &p.as_ref().name })
                .or(ended.encode),
            None => ended.encode,
        };
        let value = this.encode_result(&mut result, encode);
        // SAFETY: p is live.
        let pid = unsafe { p.as_ref().pid };
        if let Some(hooks) = &mut this.hooks {
            hooks.stopped(pid, &result, value.as_ref());
        }
        // SAFETY: p is live.
        traced!(crate::trace::stop(
            pid,
            unsafe { &p.as_ref().name },
            &result
        ));
        this.emit(p, || {
            let exit: Exit = match (&result, value) {
                (Ok(_), Some(v)) => Ok(v),
                // Recording began after the body returned: the result was not encoded.
                (Ok(_), None) => Ok(Value::text_of("<result not recorded>")),
                (Err(e), _) => Err(e.clone()),
            };
            SignalData::Stop { exit }
        });
        // SAFETY: p is live; a read.
        if unsafe { p.as_ref().watched } && this.end_watched(p, &mut result) {
            this.stopped_unread(p);
            // (`Ok` of a box of `()`, which holds no allocation: nothing to
            // drop.)
            std::mem::forget(result);
            return;
        }
        this.stopped(p, result);
    }

    /// Tells the layer that watches `p` (links, monitors) that it ends with
    /// `result`. Nobody reads the result of a detached process without a
    /// parent (it is freed right after): its error is moved into the reason,
    /// not copied, and `true` is returned (`result` is then `Ok(())`, nothing
    /// to free).
    #[cold]
    #[inline(never)]
    fn end_watched(&mut self, p: PPtr<I, O>, result: &mut Result<Box<dyn Any>, ExitError>) -> bool {
        // SAFETY: p is live; a read.
        let unread = unsafe { p.as_ref().detached && p.as_ref().parent.is_none() };
        if unread && result.is_err() {
            if let Err(error) = std::mem::replace(result, Ok(Box::new(()))) {
                self.notify_end(p, move || Reason::from(error));
            }
            true
        } else {
            self.notify_end(p, || Reason::of(result));
            false
        }
    }

    /// [`stopped`](Self::stopped) for a detached process without a parent
    /// whose result was moved into its end's reason (see
    /// [`end_watched`](Self::end_watched)): its `Ok(())` left needs no drop.
    #[inline(always)]
    fn stopped_unread(&mut self, p: PPtr<I, O>) {
        self.settle_end(p);
        // SAFETY: p is live; `settle_end` ended its borrows; a read.
        let pid = unsafe { p.as_ref().pid };
        self.procs.remove(pid);
        self.free(p);
        if let Some(hooks) = &mut self.hooks {
            hooks.discarded(pid);
        }
    }

    /// What every end of a process does, after its STOP, whether it returned,
    /// failed or was killed: the senders waiting for room in its inbox try again,
    /// room it was granted and did not use passes on, an effect it waited for is
    /// no longer pending, and its timer (a stackless body that polled a sleep and
    /// returned, or one killed in a `sleep` or `receive_timeout`) is cancelled:
    /// nobody waits on them. Its status is `Stopped`.
    #[inline(always)]
    pub(super) fn settle_end(&mut self, p: PPtr<I, O>) {
        // SAFETY: p is live; a read.
        if unsafe { p.as_ref() }.has_waiting_senders() {
            self.wake_all_senders(p);
        }
        // SAFETY: p is live; the wake above ended its borrows.
        if let Some(grant) = unsafe { (*p.as_ptr()).take_room_grant() } {
            self.pass_on_grant(Some(grant));
        }
        // SAFETY: p is live; the wake above ended its borrows.
        let proc = unsafe { &mut *p.as_ptr() };
        if let Status::Waiting(Wait::Effect) = proc.status {
            self.effects_pending -= 1;
        }
        proc.status = Status::Stopped;
        if proc.moved_in {
            self.unhold(p);
        }
        self.cancel_timer(p);
    }

    /// Common end of a process that was not killed, after its STOP: it is kept
    /// for its parent's join, or its result for the owner.
    #[inline(always)]
    pub(super) fn stopped(&mut self, p: PPtr<I, O>, result: Result<Box<dyn Any>, ExitError>) {
        self.settle_end(p);
        // SAFETY: p is live; `settle_end` ended its borrows.
        let proc = unsafe { &mut *p.as_ptr() };
        let pid = proc.pid;
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
                let detached = proc.detached;
                self.procs.remove(pid);
                self.free(p);
                if detached {
                    self.free_result(pid, result);
                } else if let Some(sink) = self.sinks.remove(&pid) {
                    self.sink(sink, pid, result);
                } else {
                    self.finished.insert(pid, Finished { result });
                }
            }
        }
    }

    /// The encoding of a body's result, when signals or a layer record it. Its
    /// `Serialize` and `Debug` are user code: if they panic, the process fails
    /// instead ("its result could not be recorded"), and the result is dropped.
    fn encode_result(
        &self,
        result: &mut Result<Box<dyn Any>, ExitError>,
        encode: Option<fn(&dyn Any) -> Value>,
    ) -> Option<Value> {
        let (Ok(r), Some(encode)) = (&*result, encode) else {
            return None;
        };
        if !self.wants_values() {
            return None;
        }
        match catch_unwind(AssertUnwindSafe(|| encode(&**r))) {
            Ok(value) => Some(value),
            Err(payload) => {
                let message = panic_message(&*payload);
                forget_quietly(payload);
                let failed = Err(ExitError::Failed(format!(
                    "its result could not be recorded: {message}"
                )));
                let old = std::mem::replace(result, failed);
                if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(old))) {
                    forget_quietly(again);
                }
                None
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
