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
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Waker;
use std::thread::ThreadId;

use crossbeam_queue::SegQueue;

use crate::kernel::pass::forget_quietly;
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
    /// `OPEN`; `CLOSED`: the kernel is gone; `STOPPED`: its run stopped on a
    /// journal error. Nothing is delivered any more once it is not open.
    state: AtomicU8,
    /// Live `Sender` handles.
    senders: AtomicUsize,
    /// Wakes the kernel's thread.
    wakes: Arc<WakeQueue>,
    /// The kernel's thread, which must not wait for room (it makes it).
    owner: ThreadId,
}

const OPEN: u8 = 0;
const CLOSED: u8 = 1;
const STOPPED: u8 = 2;

/// Why mail was not taken.
pub(crate) enum Refused<M> {
    /// `capacity` messages are in flight.
    Full(M),
    /// The kernel is gone.
    Closed(M),
    /// The kernel's run stopped on a journal error.
    Stopped(M),
}

impl<M> Mail<M> {
    pub(crate) fn new(capacity: usize, wakes: Arc<WakeQueue>) -> Mail<M> {
        Mail {
            queue: SegQueue::new(),
            in_flight: AtomicUsize::new(0),
            capacity: capacity.max(1),
            room: Mutex::new(Vec::new()),
            room_wanted: AtomicBool::new(false),
            state: AtomicU8::new(OPEN),
            senders: AtomicUsize::new(0),
            wakes,
            owner: std::thread::current().id(),
        }
    }

    /// Queues `msg` for `to` if there is room, and wakes the kernel's thread.
    pub(crate) fn try_send(&self, to: Pid, msg: M) -> Result<(), Refused<M>> {
        match self.state.load(Ordering::Acquire) {
            OPEN => {}
            STOPPED => return Err(Refused::Stopped(msg)),
            _ => return Err(Refused::Closed(msg)),
        }
        // Never above the capacity, not even for a moment: a refused send that
        // counted itself in and out could hide room from a sender that looked
        // meanwhile, which would then wait for a release that never comes.
        let room = self
            .in_flight
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < self.capacity).then_some(n + 1)
            });
        if room.is_err() {
            return Err(Refused::Full(msg));
        }
        // Counted in, the state is read again: a kernel that closes its mail
        // and then sees no message in flight knows that none can come after
        // (`close_mail`); a send that finds it closed now goes back.
        match self.state.load(Ordering::SeqCst) {
            OPEN => {}
            state => {
                self.released(1);
                return Err(if state == STOPPED {
                    Refused::Stopped(msg)
                } else {
                    Refused::Closed(msg)
                });
            }
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
            || self.state.load(Ordering::SeqCst) != OPEN
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
                // The executor's (or a thread's) code: a panic must not keep
                // the other waiters asleep, nor escape into the kernel.
                if let Err(payload) = catch_unwind(AssertUnwindSafe(|| waker.wake())) {
                    forget_quietly(payload);
                }
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

    /// The kernel is gone (or, `stopped`, its run stopped on a journal error):
    /// later sends are refused, waiting senders woken.
    pub(crate) fn close(&self, stopped: bool) {
        let state = if stopped { STOPPED } else { CLOSED };
        let _ = self
            .state
            .compare_exchange(OPEN, state, Ordering::SeqCst, Ordering::SeqCst);
        self.wake_room();
    }

    /// Whether sends are refused for good.
    pub(crate) fn is_closed(&self) -> bool {
        self.state.load(Ordering::Acquire) != OPEN
    }

    /// Whether this runs on the kernel's own thread.
    pub(crate) fn on_kernel_thread(&self) -> bool {
        std::thread::current().id() == self.owner
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

    /// Whether more mail may come: a sender lives, or mail is queued.
    pub(crate) fn may_come(&self) -> bool {
        self.mail.has_senders() || !self.mail.queue.is_empty()
    }
}

impl<M> Drop for Postbox<M> {
    /// The kernel is gone: its mail is closed, and what was queued is dropped
    /// here, on the kernel's thread, as its inboxes' messages are (not kept
    /// alive by the senders: a message that holds a sender would keep itself).
    /// A message's `Drop` that panics is dropped quietly: the kernel has no
    /// caller left to report it to.
    fn drop(&mut self) {
        self.mail.close(false);
        let parked = std::mem::take(&mut self.parked).into_values().flatten();
        let queued = std::iter::from_fn(|| self.mail.queue.pop()).map(|(_, msg)| msg);
        for msg in parked.chain(queued) {
            if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(msg))) {
                forget_quietly(payload);
            }
        }
    }
}

impl<M: 'static> Kernel<M, M> {
    /// Delivers the mail: parked messages first (each pid's in order, until its
    /// inbox is full again), then what was queued since. A message whose inbox
    /// is full is parked; one that cannot be delivered at all (an unknown pid, a
    /// `Reject` inbox) is kept with the undelivered messages, from no sender.
    ///
    /// A panic of user code while a message is delivered (its `Clone`, for the
    /// children of its destination) loses that message, and is reported to the
    /// caller of the run once the pass is over, as a panic of a message's `Drop`
    /// is; the mail goes on.
    pub(crate) fn deliver_mail(&mut self) {
        let Some(postbox) = &mut self.postbox else {
            return;
        };
        let mail = postbox.mail.clone();
        let mut parked = std::mem::take(&mut postbox.parked);
        let mut released = 0;
        let pids: Vec<Pid> = parked.keys().copied().collect();
        for pid in pids {
            let mut queue = parked.remove(&pid).unwrap_or_default();
            while !self.layer_halted()
                && let Some(msg) = queue.pop_front()
            {
                match self.deliver_caught(pid, msg) {
                    Some(msg) => {
                        queue.push_front(msg);
                        break;
                    }
                    None => released += 1,
                }
            }
            if !queue.is_empty() {
                parked.insert(pid, queue);
            }
        }
        // (Once a layer above halted the run, what is left stays queued: the
        // layer stops the mail, which keeps it undelivered.)
        while !self.layer_halted()
            && let Some((pid, msg)) = mail.queue.pop()
        {
            if let Some(queue) = parked.get_mut(&pid) {
                queue.push_back(msg);
                continue;
            }
            match self.deliver_caught(pid, msg) {
                Some(msg) => parked.entry(pid).or_default().push_back(msg),
                None => released += 1,
            }
        }
        self.mail_parked = !parked.is_empty();
        if let Some(postbox) = &mut self.postbox {
            postbox.parked = parked;
        }
        if released > 0 {
            mail.released(released);
        }
    }

    /// Whether a layer above (durability) halted the run: nothing more may be
    /// delivered, as it could not be journaled.
    fn layer_halted(&self) -> bool {
        self.hooks.as_ref().is_some_and(|h| h.halted())
    }

    /// [`deliver_one`](Self::deliver_one), with a panic of user code caught and
    /// reported (the message is lost with it: `None`).
    fn deliver_caught(&mut self, to: Pid, msg: M) -> Option<M> {
        match catch_unwind(AssertUnwindSafe(|| self.deliver_one(to, msg))) {
            Ok(back) => back,
            Err(payload) => {
                self.report(Some(payload));
                None
            }
        }
    }

    /// The run stopped for good (a durable scheduler's journal error): senders
    /// are refused from now on ([`SendError::Stopped`](crate::SendError)), and
    /// the mail not delivered is kept with the undelivered messages, reason
    /// [`Stopped`](UndeliveredReason::Stopped), never dropped.
    pub(crate) fn stop_mail(&mut self) {
        self.close_mail(true);
    }

    /// Closes the mail for good ([`stop_mail`](Self::stop_mail) if `stopped`;
    /// else senders are told [`SendError::Closed`](crate::SendError), as once
    /// the kernel is gone): what was queued or parked is kept with the
    /// undelivered messages, reason [`Stopped`](UndeliveredReason::Stopped).
    pub(crate) fn close_mail(&mut self, stopped: bool) {
        let Some(postbox) = &mut self.postbox else {
            return;
        };
        let mail = postbox.mail.clone();
        mail.close(stopped);
        let parked = std::mem::take(&mut postbox.parked);
        self.mail_parked = false;
        let mut kept = 0;
        for (pid, queue) in parked {
            for msg in queue {
                self.keep_mail(pid, UndeliveredReason::Stopped, msg);
                kept += 1;
            }
        }
        while let Some((pid, msg)) = mail.queue.pop() {
            self.keep_mail(pid, UndeliveredReason::Stopped, msg);
            kept += 1;
        }
        if kept > 0 {
            mail.released(kept);
        }
        if !stopped {
            // Senders that counted themselves in before the mail closed push
            // their messages now: kept too, none left behind to be dropped
            // with the kernel.
            while mail.in_flight.load(Ordering::SeqCst) > 0 {
                std::thread::yield_now();
                let mut kept = 0;
                while let Some((pid, msg)) = mail.queue.pop() {
                    self.keep_mail(pid, UndeliveredReason::Stopped, msg);
                    kept += 1;
                }
                if kept > 0 {
                    mail.released(kept);
                }
            }
        }
    }

    /// Keeps mail for `to` with the undelivered messages, from no sender.
    fn keep_mail(&mut self, to: Pid, reason: UndeliveredReason, msg: M) {
        self.undelivered.push(Undelivered {
            from: None,
            to: Some(to),
            reason,
            msg,
        });
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
        self.keep_mail(to, reason, msg);
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
