//! Sending: along the route or to a pid, waiting for room in a full inbox, or
//! without waiting.

use crate::engine::stackful::context::Ctx;
use crate::error::SendError;
use crate::kernel::hooks::{Call, Expect, Outcome, Replayed};
use crate::kernel::{Sent, UndeliveredReason, Wait};
use crate::signal::{Pid, SignalData};
use crate::trace::trace_event;

impl<I: 'static, O: 'static> Ctx<I, O> {
    /// Sends `msg` where the template's route says. With no route (or a route that
    /// gives none), or to a pid that no longer exists, the message is kept with the
    /// undelivered messages for the owner to read back. When the destination's
    /// inbox is full (policy `Backoff`), this process is suspended (BACKOFF) until
    /// there is room, then delivers. A full inbox with the policy `Reject` refuses
    /// the message: a REJECT signal instead of SEND, and the message is kept with
    /// the undelivered ones (reason `Rejected`).
    pub fn send(&mut self, msg: O) {
        let to = self.p().route.as_ref().and_then(|route| route(&msg));
        self.send_inner(to, msg);
    }

    /// Sends `msg` to `to`, ignoring the route; otherwise as [`Ctx::send`].
    pub fn send_to(&mut self, to: Pid, msg: O) {
        self.send_inner(Some(to), msg);
    }

    /// In replay, the recorded outcome of this send (which is not done again);
    /// `None` when live.
    #[inline]
    fn replay_send(&mut self, to: Option<Pid>, msg: &O) -> Option<Outcome> {
        match self.replayed(|| Expect::Send { to, msg }) {
            Replayed::Sent(outcome) => Some(outcome),
            _ => None,
        }
    }

    #[inline]
    fn send_inner(&mut self, to: Option<Pid>, msg: O) {
        self.tick();
        if let Some(outcome) = self.replay_send(to, &msg) {
            // Not sent again; its signal is, marked replayed: REJECT for one an
            // inbox refused, SEND otherwise.
            let me = self.me;
            match (outcome, to) {
                (Outcome::Full, Some(to)) => self.k().emit_reject(me, to, &msg),
                _ => self.k().emit(me, || SignalData::Send { to, msg }),
            }
            return;
        }
        let me = self.me;
        // A delivery is journaled by the kernel, as this process's SEND too.
        match self.k().send_out(me, to, msg) {
            Sent::Delivered => {}
            sent => self.not_delivered(to, sent),
        }
    }

    /// A send that did not deliver at once: waits for room in a full inbox and
    /// retries (BACKOFF), or keeps the message with the undelivered ones.
    ///
    /// Room granted for a wait goes to this process alone (one waiting sender is
    /// woken per freed slot). When the retry does not use it (the inbox is full
    /// again with another blocker, or the message is kept), it passes on to the
    /// next waiting sender; a retry that panics leaves it in the record, which the
    /// process's end passes on. It is never lost.
    #[cold]
    #[inline(never)]
    fn not_delivered(&mut self, to: Option<Pid>, mut sent: Sent<O>) {
        let me = self.me;
        let (why, msg) = loop {
            match sent {
                Sent::Delivered => {
                    // The grant was used (or was stale): nothing to pass on.
                    self.p().take_room_grant();
                    return;
                }
                Sent::Full { msg, blocker } if self.cannot_wait() && blocker != self.pid() => {
                    break (UndeliveredReason::Stopping, msg);
                }
                Sent::Full { msg, blocker } if blocker != self.pid() => {
                    self.pass_on_grant();
                    trace_event!(
                        tracing::Level::DEBUG,
                        pid = self.pid().0,
                        name = &*self.p().name,
                        to = blocker.0,
                        "backoff"
                    );
                    let k = self.k();
                    k.emit(me, || SignalData::Backoff { to: blocker });
                    if let Some(b) = k.lookup(blocker) {
                        // SAFETY: b is live.
                        unsafe { (*b.as_ptr()).extra().waiting_senders.push_back(self.pid()) };
                    }
                    self.suspend(Wait::Room(blocker));
                    sent = self.k().send_out(me, to, msg);
                }
                Sent::Full { msg, .. } => break (UndeliveredReason::WouldDeadlock, msg),
                Sent::Rejected(msg) => break (UndeliveredReason::Rejected, msg),
                Sent::NoRoute(msg) => break (UndeliveredReason::NoRoute, msg),
                Sent::Unknown(_, msg) => break (UndeliveredReason::UnknownPid, msg),
            }
        };
        // Kept: one record is both the kept message and this process's SEND.
        self.record(|| Call::Kept {
            to,
            reason: why,
            msg: &msg,
        });
        self.pass_on_grant();
        self.k().keep_undelivered(me, to, why, msg);
    }

    /// Passes on the room this process was granted, if any, to the next sender
    /// waiting for it.
    #[cold]
    #[inline(never)]
    fn pass_on_grant(&mut self) {
        let grant = self.p().take_room_grant();
        self.k().pass_on_grant(grant);
    }

    /// Sends `msg` where the route says without waiting: a full inbox, a missing
    /// route or an unknown pid gives the message back in the error. A refusal by
    /// an [`Overflow::Reject`](crate::Overflow::Reject) inbox is recorded as a
    /// REJECT signal, as for [`Ctx::send`].
    pub fn try_send(&mut self, msg: O) -> Result<(), SendError<O>> {
        let to = self.p().route.as_ref().and_then(|route| route(&msg));
        self.tick();
        if let Some(outcome) = self.replay_send(to, &msg) {
            return match outcome {
                Outcome::Delivered => {
                    let me = self.me;
                    self.k().emit(me, || SignalData::Send { to, msg });
                    Ok(())
                }
                Outcome::Full => Err(SendError::Full(msg)),
                Outcome::NoRoute => Err(SendError::NoRoute(msg)),
                Outcome::UnknownPid => Err(SendError::UnknownPid(to.unwrap_or(Pid(u64::MAX)), msg)),
            };
        }
        let me = self.me;
        let (outcome, result) = match self.k().send_out(me, to, msg) {
            Sent::Delivered => (Outcome::Delivered, Ok(())),
            Sent::Full { msg, .. } => (Outcome::Full, Err(SendError::Full(msg))),
            Sent::Rejected(msg) => {
                // Refused (REJECT), handed back; a route gave `to`.
                if let Some(to) = to {
                    self.k().emit_reject(me, to, &msg);
                }
                (Outcome::Full, Err(SendError::Full(msg)))
            }
            Sent::NoRoute(msg) => (Outcome::NoRoute, Err(SendError::NoRoute(msg))),
            Sent::Unknown(pid, msg) => (Outcome::UnknownPid, Err(SendError::UnknownPid(pid, msg))),
        };
        // A delivery is journaled by the kernel, as this process's SEND too.
        if let Err(SendError::Full(msg) | SendError::NoRoute(msg) | SendError::UnknownPid(_, msg)) =
            &result
        {
            self.record(|| Call::TrySend { to, msg, outcome });
        }
        result
    }
}
