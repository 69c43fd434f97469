//! The ready queue: the runnable processes, in the order they became runnable.

use crate::kernel::{Kernel, PPtr, Status, Wait};
use crate::signal::Pid;

/// The runnable processes, in order: a queue linked through the processes
/// themselves (`Proc::next_ready`), so that queueing touches only the process and
/// the queue's ends.
pub(crate) struct ReadyQueue<I, O> {
    head: Option<PPtr<I, O>>,
    tail: Option<PPtr<I, O>>,
    len: usize,
}

impl<I, O> Default for ReadyQueue<I, O> {
    fn default() -> Self {
        ReadyQueue {
            head: None,
            tail: None,
            len: 0,
        }
    }
}

impl<I, O> ReadyQueue<I, O> {
    /// Queues `p`, which is not queued.
    #[inline(always)]
    pub(super) fn push_back(&mut self, p: PPtr<I, O>) {
        // SAFETY: queued processes are live or released, never freed while queued.
        unsafe { (*p.as_ptr()).next_ready = None };
        match self.tail {
            // SAFETY: as above.
            Some(t) => unsafe { (*t.as_ptr()).next_ready = Some(p) },
            None => self.head = Some(p),
        }
        self.tail = Some(p);
        self.len += 1;
    }

    #[inline(always)]
    pub(super) fn pop_front(&mut self) -> Option<PPtr<I, O>> {
        let p = self.head?;
        // SAFETY: as in `push_back`.
        self.head = unsafe { (*p.as_ptr()).next_ready.take() };
        if self.head.is_none() {
            self.tail = None;
        }
        self.len -= 1;
        Some(p)
    }

    #[inline(always)]
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The queued records, in order (released ones included).
    pub(super) fn iter(&self) -> impl Iterator<Item = PPtr<I, O>> + '_ {
        std::iter::successors(self.head, |p| {
            // SAFETY: as in `push_back`; a read of the link.
            unsafe { p.as_ref().next_ready }
        })
    }
}

impl<I: 'static, O: 'static> Kernel<I, O> {
    #[inline]
    pub(crate) fn make_ready(&mut self, p: PPtr<I, O>) {
        // SAFETY: p is a live process of this kernel.
        let proc = unsafe { &mut *p.as_ptr() };
        if let Status::Waiting(Wait::Effect) = proc.status {
            self.effects_pending -= 1;
        }
        proc.status = Status::Ready;
        if !proc.queued {
            proc.queued = true;
            self.ready.push_back(p);
        }
    }

    /// Makes `pid` runnable if it still waits for `wait` (a layer above releasing
    /// what it holds back, such as processes waiting for a commit).
    pub(crate) fn release(&mut self, pid: Pid, wait: Wait) {
        if let Some(p) = self.lookup(pid)
            // SAFETY: p is live.
            && unsafe { p.as_ref().status } == Status::Waiting(wait)
        {
            self.make_ready(p);
        }
    }

    /// Wakes `p` if it waits for a message (or for mail, system messages
    /// included).
    #[inline]
    pub(super) fn notify_message(&mut self, p: PPtr<I, O>) {
        // SAFETY: p is a live process of this kernel.
        if matches!(
            unsafe { p.as_ref().status },
            Status::Waiting(Wait::Message | Wait::Mail)
        ) {
            self.make_ready(p);
        }
    }
}
