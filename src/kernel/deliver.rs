//! Delivery and back-pressure: a message goes into its recipient's inbox and
//! those of the recipient's live descendants (all or nothing), a full inbox applies
//! its overflow policy, waiting senders are woken as room frees up, and what
//! cannot be delivered is kept for the owner.

use std::any::TypeId;
use std::ptr::NonNull;

use smallvec::SmallVec;

use crate::kernel::inbox::Overflow;
use crate::kernel::{Kernel, PPtr, Recording, Status, Wait};
use crate::signal::{DropReason, Pid, SignalData};
use crate::trace::{trace_event, traced};

/// A message that could not be delivered, kept for the owner to read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Undelivered<M> {
    /// The sending process (`None`: sent from outside).
    pub from: Option<Pid>,
    /// Where it was going (`None`: the route gave no destination).
    pub to: Option<Pid>,
    /// Why it was not delivered.
    pub reason: UndeliveredReason,
    /// The message itself.
    pub msg: M,
}

/// Why a message was kept instead of delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum UndeliveredReason {
    /// The sender's route gave no destination (or it has no route).
    NoRoute,
    /// No live process has the destination pid.
    UnknownPid,
    /// The destination's inbox is full and its policy is [`Overflow::Reject`].
    Rejected,
    /// The full inbox is the sender's own (it sent to itself, or to an ancestor
    /// whose messages it also receives): waiting for room would wait on itself.
    WouldDeadlock,
    /// The sender could not wait for room in the destination's full inbox: a
    /// destructor sent it while the sender's stack unwound (the sender was
    /// killed, dropped with its scheduler, or its body panicked).
    Stopping,
    /// Mail from a [`Sender`](crate::Sender) that a durable scheduler had not
    /// delivered (nor journaled) when its run stopped on a journal error.
    Stopped,
}

impl UndeliveredReason {
    pub(crate) const fn code(self) -> u8 {
        self as u8
    }

    pub(crate) fn from_code(code: u8) -> Self {
        match code {
            0 => UndeliveredReason::NoRoute,
            1 => UndeliveredReason::UnknownPid,
            2 => UndeliveredReason::Rejected,
            4 => UndeliveredReason::Stopping,
            5 => UndeliveredReason::Stopped,
            _ => UndeliveredReason::WouldDeadlock,
        }
    }
}

/// How a standalone process's outgoing messages are collected (as SEND signals).
pub(crate) type DeliverOut<I, O> = fn(&mut Kernel<I, O>, PPtr<I, O>, Option<Pid>, O) -> Sent<O>;

/// Where outgoing messages go.
#[derive(Clone, Copy)]
pub(crate) enum Outbound<I, O> {
    /// To other processes of this kernel, by pid (a scheduler: `I` and `O` are one
    /// type). Called directly, so that a send inlines its delivery.
    Route,
    /// Elsewhere, through this function (a standalone process's SEND signals).
    Collect(DeliverOut<I, O>),
}

/// The outcome of one delivery attempt.
pub(crate) enum Sent<M> {
    Delivered,
    /// A recipient with the Backoff policy is full.
    Full {
        msg: M,
        blocker: Pid,
    },
    Rejected(M),
    NoRoute(M),
    Unknown(Pid, M),
}

impl<I: 'static, O: 'static> Kernel<I, O> {
    /// Wakes the first live process waiting for room in `p`'s inbox.
    pub(crate) fn wake_one_sender(&mut self, p: PPtr<I, O>) {
        // SAFETY: p is a live process of this kernel.
        let pid = unsafe { p.as_ref().pid };
        loop {
            // SAFETY: as above.
            let Some(sender) = (unsafe { (*p.as_ptr()).extra().waiting_senders.pop_front() })
            else {
                return;
            };
            if let Some(s) = self.lookup(sender) {
                // SAFETY: s is live.
                if let Status::Waiting(Wait::Room(_)) = unsafe { s.as_ref().status } {
                    // SAFETY: s is live.
                    unsafe { (*s.as_ptr()).extra().room_grant = Some(pid) };
                    self.make_ready(s);
                    return;
                }
            }
        }
    }

    /// Room that `blocker` granted and that was not used (the granted sender did
    /// not deliver there: it ended, or found another inbox full) passes on to the
    /// next sender waiting for it: it is never lost.
    #[cold]
    pub(crate) fn pass_on_grant(&mut self, blocker: Option<Pid>) {
        if let Some(b) = blocker.and_then(|b| self.lookup(b)) {
            self.wake_one_sender(b);
        }
    }

    /// Wakes every sender waiting for room in `p`'s inbox (it ended, or its
    /// inbox changed): each tries again.
    pub(crate) fn wake_all_senders(&mut self, p: PPtr<I, O>) {
        // SAFETY: p is a live process of this kernel.
        let Some(extra) = (unsafe { &mut (*p.as_ptr()).extra }) else {
            return;
        };
        let senders = std::mem::take(&mut extra.waiting_senders);
        for sender in senders {
            if let Some(s) = self.lookup(sender) {
                // SAFETY: s is live.
                if let Status::Waiting(Wait::Room(_)) = unsafe { s.as_ref().status } {
                    self.make_ready(s);
                }
            }
        }
    }

    /// Sends `msg` out of process `from`: delivered to `to` in a scheduler,
    /// collected as a SEND signal by a standalone process.
    #[inline(always)]
    pub(crate) fn send_out(&mut self, from: PPtr<I, O>, to: Option<Pid>, msg: O) -> Sent<O> {
        match self.outbound {
            Outbound::Collect(collect) => collect(self, from, to, msg),
            Outbound::Route => {
                // Only `boxed_router` makes a `Route` kernel, whose `I` is its `O`.
                assert!(TypeId::of::<I>() == TypeId::of::<O>());
                // SAFETY: `I` and `O` are one type (checked above; the check is
                // folded at compile time), so this kernel and its records are
                // `Kernel<O, O>` and `Proc<O, O>`.
                let k = unsafe { &mut *(self as *mut Self).cast::<Kernel<O, O>>() };
                k.route(from.cast(), to, msg)
            }
        }
    }

    /// Delivers `msg` to `to` and every live descendant of `to` (children receive
    /// what their parent receives). All-or-nothing: a full Backoff inbox among them
    /// refuses the whole delivery. `from`, when given, gets the SEND signal.
    #[inline(always)]
    pub(crate) fn deliver(
        &mut self,
        from: Option<PPtr<I, O>>,
        to: Pid,
        msg: I,
        clone_for_send: fn(&I) -> O,
    ) -> Sent<I> {
        let Some(target) = self.lookup(to) else {
            std::hint::cold_path();
            // (A pid of another kernel of a runtime, say.)
            // SAFETY: a sender is a live process of this kernel.
            let from = from.map(|f| unsafe { f.as_ref().pid });
            return self.not_here(from, to, msg);
        };
        // SAFETY: target is a live process of this kernel.
        let t = unsafe { &mut *target.as_ptr() };
        // SAFETY: a sender is a live process of this kernel; a read.
        if t.moved_in && from.is_some_and(|f| f != target && unsafe { f.as_ref().moved_in }) {
            std::hint::cold_path();
            // Both moved here: what the sender sent the receiver before its
            // own move went through the receiver's home and down its line,
            // and may still be on its way (the sender's fence came back
            // through its own old cores only). So this goes that way too,
            // behind it, back to this kernel: per-sender order holds. (What
            // it sends itself was in its inbox before it moved.)
            // SAFETY: as above.
            let from = from.map(|f| unsafe { f.as_ref().pid });
            return self.not_here(from, to, msg);
        }
        if t.status == Status::Stopped {
            std::hint::cold_path();
            return Sent::Unknown(to, msg);
        }
        if t.children().is_empty() {
            if t.inbox.is_full() {
                match t.inbox.overflow {
                    Overflow::Backoff => return Sent::Full { msg, blocker: to },
                    Overflow::Reject => return Sent::Rejected(msg),
                    Overflow::DropNewest | Overflow::DropOldest | Overflow::Unbounded => {}
                }
            }
            if let Some(from) = from {
                self.emit(from, || SignalData::Send {
                    to: Some(to),
                    msg: clone_for_send(&msg),
                });
            }
            self.hook_delivery(to, &msg, from, &[target]);
            self.push_into(target, msg);
            return Sent::Delivered;
        }
        self.deliver_tree(from, target, msg, clone_for_send)
    }

    /// Delivers a timed send's message to live `p` alone (not to its
    /// children): a timer cannot wait, so a full inbox takes it past its
    /// capacity, unless its policy drops (as for any delivery).
    pub(crate) fn deliver_timed(&mut self, p: PPtr<I, O>, msg: I) {
        self.push_into(p, msg);
    }

    /// Delivers `msg` to live `p` and, as [`deliver`](Self::deliver) does, to
    /// each live descendant (children receive what their parent receives),
    /// past the capacity of full `Backoff` inboxes (a drop policy still
    /// applies): what waited for room for them and may not wait longer (a
    /// layer's messages that a job must not overtake). A copy's `Clone`
    /// (user code) that panics delivers nothing.
    pub(crate) fn deliver_past_capacity(&mut self, p: PPtr<I, O>, msg: I) {
        // SAFETY: p is live; a read.
        if unsafe { p.as_ref() }.children().is_empty() {
            return self.push_into(p, msg);
        }
        let mut recipients: SmallVec<[PPtr<I, O>; 8]> = SmallVec::new();
        self.collect_tree(p, &mut recipients);
        let clone = self
            .clone_in
            .expect("a process with children was spawned with I: Clone");
        let copies: SmallVec<[I; 8]> = recipients[1..].iter().map(|_| clone(&msg)).collect();
        // SAFETY: p is live.
        self.hook_delivery(unsafe { p.as_ref().pid }, &msg, None, &recipients);
        self.push_into_tree(recipients[0], msg);
        for (&r, copy) in recipients[1..].iter().zip(copies) {
            self.push_into_tree(r, copy);
        }
    }

    #[cold]
    fn deliver_tree(
        &mut self,
        from: Option<PPtr<I, O>>,
        target: PPtr<I, O>,
        msg: I,
        clone_for_send: fn(&I) -> O,
    ) -> Sent<I> {
        let mut recipients: SmallVec<[PPtr<I, O>; 8]> = SmallVec::new();
        self.collect_tree(target, &mut recipients);
        for &r in &recipients {
            // SAFETY: recipients are live processes.
            let r = unsafe { r.as_ref() };
            if r.inbox.is_full() {
                match r.inbox.overflow {
                    Overflow::Backoff => {
                        return Sent::Full {
                            msg,
                            blocker: r.pid,
                        };
                    }
                    Overflow::Reject => return Sent::Rejected(msg),
                    Overflow::DropNewest | Overflow::DropOldest | Overflow::Unbounded => {}
                }
            }
        }
        // The copies first: `Clone` is user code, and if it panics (the sender
        // fails) nothing has been delivered, signalled or told to the hooks yet.
        let clone = self
            .clone_in
            .expect("a process with children was spawned with I: Clone");
        let copies: SmallVec<[I; 8]> = recipients[1..].iter().map(|_| clone(&msg)).collect();
        if let Some(from) = from {
            // SAFETY: target is live.
            let to = unsafe { target.as_ref().pid };
            self.emit(from, || SignalData::Send {
                to: Some(to),
                msg: clone_for_send(&msg),
            });
        }
        // SAFETY: target is live.
        self.hook_delivery(unsafe { target.as_ref().pid }, &msg, from, &recipients);
        // In tree order, parent first, so that a parent wakes before its children.
        self.push_into_tree(recipients[0], msg);
        for (&r, copy) in recipients[1..].iter().zip(copies) {
            self.push_into_tree(r, copy);
        }
        Sent::Delivered
    }

    /// Tells the hooks of a message entering `to`'s inbox (and those of
    /// `recipients`, its descendants), sent by `from`, before the overflow
    /// policies of full inboxes apply.
    #[inline(always)]
    fn hook_delivery(
        &mut self,
        to: Pid,
        msg: &I,
        from: Option<PPtr<I, O>>,
        recipients: &[PPtr<I, O>],
    ) {
        if let Some(hooks) = &mut self.hooks {
            // Durable only: off the plain path (see `Ctx::replayed`).
            std::hint::cold_path();
            // SAFETY: the sender is live, and not otherwise borrowed here.
            let from = from.map(|f| unsafe { &mut *f.as_ptr() });
            hooks.delivered(to, msg, from, recipients);
        }
    }

    /// Tells the hooks of a message leaving `pid`'s inbox without being taken.
    pub(crate) fn hook_eviction(&mut self, pid: Pid, msg: &I) {
        if let Some(hooks) = &mut self.hooks {
            hooks.evicted(pid, msg);
        }
    }

    /// [`push_into`](Self::push_into) for a delivery to a tree, out of line: the
    /// plain delivery's push stays small enough to be inlined whole.
    #[inline(never)]
    fn push_into_tree(&mut self, p: PPtr<I, O>, msg: I) {
        self.push_into(p, msg);
    }

    /// Pushes into `p`'s inbox, applying a drop policy if it is full, and wakes it.
    #[inline]
    fn push_into(&mut self, p: PPtr<I, O>, msg: I) {
        // SAFETY: p is a live process of this kernel.
        let proc = unsafe { &mut *p.as_ptr() };
        if proc.inbox.is_full() {
            return self.push_into_full(p, msg);
        }
        proc.inbox.queue.push_back(msg);
        self.notify_message(p);
    }

    /// `push_into` when the inbox is full: the drop policies, or over capacity on
    /// purpose (a child's copy of its parent's inbox).
    #[cold]
    #[inline(never)]
    fn push_into_full(&mut self, p: PPtr<I, O>, msg: I) {
        // SAFETY: p is a live process of this kernel.
        let proc = unsafe { &mut *p.as_ptr() };
        {
            match proc.inbox.overflow {
                Overflow::DropNewest => {
                    proc.extra().dropped += 1;
                    self.dropped_by_policy(p, msg, DropReason::Newest);
                    return;
                }
                Overflow::DropOldest => {
                    proc.extra().dropped += 1;
                    if let Some(old) = proc.inbox.pop_front() {
                        self.dropped_by_policy(p, old, DropReason::Oldest);
                    }
                }
                // Over capacity on purpose: a child's copy of its parent's inbox.
                // (Unbounded: only past `u32::MAX` messages.)
                Overflow::Backoff | Overflow::Reject | Overflow::Unbounded => {}
            }
        }
        // SAFETY: as above; the emit calls above ended their borrows.
        unsafe { (*p.as_ptr()).inbox.queue.push_back(msg) };
        self.notify_message(p);
    }

    /// A message an overflow policy drops: a DROP signal takes it when signals are
    /// recorded; otherwise it is dropped here, and its `Drop` (user code) may not
    /// cut a delivery to several inboxes short: its panic is kept for the caller
    /// of the run.
    fn dropped_by_policy(&mut self, p: PPtr<I, O>, msg: I, reason: DropReason) {
        traced! {
            // SAFETY: p is live.
            let proc = unsafe { p.as_ref() };
            tracing::debug!(pid = proc.pid.0, name = &*proc.name, reason = ?reason, "drop");
        }
        if self.is_recording() {
            self.emit(p, || SignalData::Drop { msg, reason });
        } else {
            let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(msg)));
            self.report(dropped.err());
        }
    }

    /// Keeps a message that could not be delivered, with its SEND signal (REJECT
    /// for a message a Reject inbox refused).
    pub(crate) fn keep_undelivered(
        &mut self,
        from: PPtr<I, O>,
        to: Option<Pid>,
        reason: UndeliveredReason,
        msg: O,
    ) {
        // SAFETY: from is live.
        let from_pid = unsafe { from.as_ref().pid };
        trace_event!(
            tracing::Level::DEBUG,
            pid = from_pid.0,
            to = to.map(|p| p.0),
            reason = ?reason,
            "undelivered"
        );
        match (reason, to) {
            (UndeliveredReason::Rejected, Some(to)) => self.emit_reject(from, to, &msg),
            _ => {
                if let Some(clone) = self.clone_out {
                    self.emit(from, || SignalData::Send {
                        to,
                        msg: clone(&msg),
                    });
                }
            }
        }
        self.undelivered.push(Undelivered {
            from: Some(from_pid),
            to,
            reason,
            msg,
        });
    }
}

impl<I: 'static, O: 'static> Kernel<I, O> {
    /// REJECT for `from`: the inbox of `to` (or of one of its descendants) is full
    /// with the Reject policy and refused `msg`.
    #[cold]
    pub(crate) fn emit_reject(&mut self, from: PPtr<I, O>, to: Pid, msg: &O) {
        if let Some(clone) = self.clone_out {
            self.emit(from, || SignalData::Reject {
                to,
                msg: clone(msg),
            });
        }
    }
}

impl<M: 'static> Kernel<M, M> {
    /// A new kernel that routes outgoing messages to its processes by pid (a
    /// scheduler's), boxed at a stable address.
    pub(crate) fn boxed_router(recording: Recording<M, M>) -> NonNull<Self> {
        Self::boxed_with(Outbound::Route, recording)
    }

    /// Delivers a message sent by `from` to `to` (`None`: its route found no
    /// recipient).
    #[inline(always)]
    fn route(&mut self, from: PPtr<M, M>, to: Option<Pid>, msg: M) -> Sent<M> {
        let Some(to) = to else {
            return Sent::NoRoute(msg);
        };
        let clone = self.clone_out.unwrap_or(unrecorded::<M>);
        self.deliver(Some(from), to, msg, clone)
    }
}

pub(crate) fn unrecorded<M>(_: &M) -> M {
    unreachable!("SEND signals are built only while recording, which sets the message clone")
}
