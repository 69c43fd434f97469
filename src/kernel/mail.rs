//! Mail from other threads: messages that [`Sender`](crate::Sender)s, on any
//! thread, address to pids of a kernel. They queue lock-free (a `crossbeam-queue`
//! `SegQueue`), and the kernel's own thread delivers them at the start of each
//! pass, as a send from outside.
//!
//! Back-pressure: at most `capacity` messages are in flight (sent and not yet
//! delivered). A message whose inbox is full stays in flight, parked in order
//! behind the others to the same pid, until a later pass finds room: so a slow
//! process fills its inbox, then the mail's capacity, and then senders are
//! refused (they get the message back) or wait for room, as they choose.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Waker;

use crossbeam_queue::SegQueue;

use crate::kernel::time::WakeQueue;
use crate::kernel::{Kernel, Sent, Undelivered, UndeliveredReason, unrecorded};
use crate::signal::Pid;

/// The cross-thread side of a kernel's mail, shared by its senders.
pub(crate) struct Mail<M> {
    queue: SegQueue<(Pid, M)>,
    /// Messages sent and not yet delivered (queued or parked).
    in_flight: AtomicUsize,
    capacity: usize,
    /// Senders waiting for room (`room_wanted`: there are some).
    room: Mutex<Vec<Waker>>,
    room_wanted: AtomicBool,
    /// The kernel is gone: nothing is delivered any more.
    closed: AtomicBool,
    /// Live `Sender` handles.
    senders: AtomicUsize,
    /// Wakes the kernel's thread.
    wakes: Arc<WakeQueue>,
}

/// Why mail was not taken.
pub(crate) enum Refused<M> {
    /// `capacity` messages are in flight.
    Full(M),
    /// The kernel is gone.
    Closed(M),
}

impl<M> Mail<M> {
    pub(crate) fn new(capacity: usize, wakes: Arc<WakeQueue>) -> Mail<M> {
        Mail {
            queue: SegQueue::new(),
            in_flight: AtomicUsize::new(0),
            capacity: capacity.max(1),
            room: Mutex::new(Vec::new()),
            room_wanted: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            senders: AtomicUsize::new(0),
            wakes,
        }
    }

    /// Queues `msg` for `to` if there is room, and wakes the kernel's thread.
    pub(crate) fn try_send(&self, to: Pid, msg: M) -> Result<(), Refused<M>> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Refused::Closed(msg));
        }
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err(Refused::Full(msg));
        }
        self.queue.push((to, msg));
        self.wakes.poke();
        Ok(())
    }

    /// Leaves `waker` to be woken when room may have come (or the kernel went).
    /// `true`: there may be room already (try again now).
    pub(crate) fn wait_room(&self, waker: &Waker) -> bool {
        let mut room = self.room.lock().unwrap_or_else(|e| e.into_inner());
        self.room_wanted.store(true, Ordering::SeqCst);
        if self.in_flight.load(Ordering::SeqCst) < self.capacity
            || self.closed.load(Ordering::SeqCst)
        {
            return true;
        }
        if !room.iter().any(|w| w.will_wake(waker)) {
            room.push(waker.clone());
        }
        false
    }

    /// `n` messages left flight: wakes the senders waiting for room.
    fn released(&self, n: usize) {
        self.in_flight.fetch_sub(n, Ordering::SeqCst);
        self.wake_room();
    }

    fn wake_room(&self) {
        if self.room_wanted.load(Ordering::SeqCst) {
            let waiting = {
                let mut room = self.room.lock().unwrap_or_else(|e| e.into_inner());
                self.room_wanted.store(false, Ordering::SeqCst);
                std::mem::take(&mut *room)
            };
            for waker in waiting {
                waker.wake();
            }
        }
    }

    /// A sender handle was made.
    pub(crate) fn sender_made(&self) {
        self.senders.fetch_add(1, Ordering::AcqRel);
    }

    /// A sender handle went: the last one wakes the kernel's thread, whose run
    /// may be over (nothing can come any more).
    pub(crate) fn sender_gone(&self) {
        if self.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.wakes.poke();
        }
    }

    /// Whether a sender may still send.
    pub(crate) fn has_senders(&self) -> bool {
        self.senders.load(Ordering::Acquire) > 0
    }

    /// The kernel is gone: later sends are refused, waiting senders woken.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.wake_room();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The most messages in flight at once.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }
}

/// The kernel's side: the shared mail, and the messages parked until their
/// inbox has room (per pid, in arrival order; a `BTreeMap` so that the order in
/// which pids are retried is deterministic).
pub(crate) struct Postbox<M> {
    pub(crate) mail: Arc<Mail<M>>,
    parked: BTreeMap<Pid, VecDeque<M>>,
}

impl<M> Postbox<M> {
    pub(crate) fn new(mail: Arc<Mail<M>>) -> Postbox<M> {
        Postbox {
            mail,
            parked: BTreeMap::new(),
        }
    }

    /// Whether mail is queued or parked.
    #[inline]
    pub(crate) fn pending(&self) -> bool {
        !self.parked.is_empty() || !self.mail.queue.is_empty()
    }

    /// Whether more mail may come: a sender lives, or mail is queued.
    pub(crate) fn may_come(&self) -> bool {
        self.mail.has_senders() || !self.mail.queue.is_empty()
    }
}

impl<M> Drop for Postbox<M> {
    fn drop(&mut self) {
        self.mail.close();
    }
}

impl<M: 'static> Kernel<M, M> {
    /// Delivers the mail: parked messages first (each pid's in order, until its
    /// inbox is full again), then what was queued since. A message whose inbox
    /// is full is parked; one that cannot be delivered at all (an unknown pid, a
    /// `Reject` inbox) is kept with the undelivered messages, from no sender.
    pub(crate) fn deliver_mail(&mut self) {
        let Some(mut postbox) = self.postbox.take() else {
            return;
        };
        let mut released = 0;
        let pids: Vec<Pid> = postbox.parked.keys().copied().collect();
        for pid in pids {
            let mut queue = postbox.parked.remove(&pid).unwrap_or_default();
            while let Some(msg) = queue.pop_front() {
                match self.deliver_one(pid, msg) {
                    Some(msg) => {
                        queue.push_front(msg);
                        break;
                    }
                    None => released += 1,
                }
            }
            if !queue.is_empty() {
                postbox.parked.insert(pid, queue);
            }
        }
        while let Some((pid, msg)) = postbox.mail.queue.pop() {
            if let Some(queue) = postbox.parked.get_mut(&pid) {
                queue.push_back(msg);
                continue;
            }
            match self.deliver_one(pid, msg) {
                Some(msg) => {
                    postbox.parked.entry(pid).or_default().push_back(msg);
                }
                None => released += 1,
            }
        }
        if released > 0 {
            postbox.mail.released(released);
        }
        self.postbox = Some(postbox);
    }

    /// Delivers one message from another thread: `Some(msg)` back if its inbox
    /// is full (to park it); otherwise it is delivered, or kept undelivered.
    fn deliver_one(&mut self, to: Pid, msg: M) -> Option<M> {
        let (reason, msg) = match self.deliver(None, to, msg, unrecorded::<M>) {
            Sent::Delivered => return None,
            Sent::Full { msg, .. } => return Some(msg),
            Sent::Rejected(msg) => (UndeliveredReason::Rejected, msg),
            Sent::NoRoute(msg) => (UndeliveredReason::NoRoute, msg),
            Sent::Unknown(_, msg) => (UndeliveredReason::UnknownPid, msg),
        };
        self.undelivered.push(Undelivered {
            from: None,
            to: Some(to),
            reason,
            msg,
        });
        None
    }

    /// The mail its senders share: made on first use.
    pub(crate) fn mail(&mut self, capacity: usize) -> Arc<Mail<M>> {
        if self.postbox.is_none() {
            let mail = Arc::new(Mail::new(capacity, self.wakes.clone()));
            self.postbox = Some(Postbox::new(mail));
            self.deliver_mail_fn = Some(Self::deliver_mail);
        }
        self.postbox.as_ref().expect("made above").mail.clone()
    }
}
