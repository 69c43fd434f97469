//! Bounded inboxes with lookahead and back-pressure.

use std::collections::VecDeque;

/// What an inbox does when a message arrives and it is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// The sender waits. A process inside the scheduler is suspended (a BACKOFF
    /// signal) until there is room; a send from outside gets the message back in
    /// [`SendError::Full`](crate::SendError::Full). Nothing is lost. The default.
    #[default]
    Backoff,
    /// The oldest queued message is dropped to make room (counted, DROP signal).
    DropOldest,
    /// The arriving message is dropped (counted, DROP signal).
    DropNewest,
    /// The arriving message is refused and handed back: `try_send` and sends from
    /// outside return it in [`SendError::Full`](crate::SendError::Full), `send`
    /// keeps it with the undelivered messages (reason
    /// [`Rejected`](crate::UndeliveredReason::Rejected)). A sending process gets
    /// a REJECT signal ([`SignalData::Reject`](crate::SignalData::Reject)) instead
    /// of SEND, from `send`, `send_to` and `try_send` alike; a send from outside
    /// has no process to signal.
    Reject,
    /// The inbox never refuses, never drops and never makes a sender wait: its
    /// capacity is ignored. **It has no back-pressure: if the receiver is slower
    /// than its senders, its inbox, and the program's memory, grow without
    /// bound**, as with OTP's unbounded mailboxes. Use it only where something
    /// else bounds what the senders produce (a fixed batch, a protocol in which
    /// each request waits for its reply).
    ///
    /// It speaks for its own inbox only: a parent's children receive what it
    /// receives, and a delivery to an `Unbounded` parent still waits for room in
    /// a child's full `Backoff` inbox (or is refused by a full `Reject` one, or
    /// dropped by a drop policy there), as a delivery to any parent does. An
    /// `Unbounded` child never holds up a delivery to its parent.
    Unbounded,
}

/// The default inbox capacity.
pub const DEFAULT_CAPACITY: usize = 1024;

/// Shrink an idle inbox's buffer back to nothing once it has grown past this many
/// slots, so that memory follows what an inbox holds, not what it once held.
const SHRINK_ABOVE: usize = 64;

pub(crate) struct Inbox<I> {
    pub(crate) queue: VecDeque<I>,
    /// (A `u32`, with the overflow policy beside it, keeps the record small;
    /// larger capacities are taken as `u32::MAX`.)
    capacity: u32,
    pub(crate) overflow: Overflow,
    /// How many messages ever left the head of the queue (taken by the process,
    /// or evicted by `DropOldest`): lets a waiting `select` keep its scan
    /// position (while it waits, only evictions move the head), and tells when
    /// a system message is due (`Proc::sys_due`).
    pub(crate) head_removed: u64,
}

impl<I> Inbox<I> {
    pub(crate) fn new(capacity: usize, overflow: Overflow) -> Self {
        Inbox {
            queue: VecDeque::new(),
            capacity: Self::clamp(capacity, overflow),
            overflow,
            head_removed: 0,
        }
    }

    /// The capacity kept: an `Unbounded` inbox's is the largest, so that
    /// `is_full` needs no test of the policy (should it ever be reached, the
    /// policy lets the message in all the same).
    fn clamp(capacity: usize, overflow: Overflow) -> u32 {
        if overflow == Overflow::Unbounded {
            return u32::MAX;
        }
        u32::try_from(capacity).unwrap_or(u32::MAX)
    }

    /// Sets the capacity and the overflow policy (a transition to another
    /// template's).
    pub(crate) fn set_policy(&mut self, capacity: usize, overflow: Overflow) {
        self.capacity = Self::clamp(capacity, overflow);
        self.overflow = overflow;
    }

    #[inline]
    pub(crate) fn is_full(&self) -> bool {
        self.queue.len() >= self.capacity as usize
    }

    /// The index of the first message, from index `from` on, that matches
    /// `pred` (which sees each of those messages in order, until one matches).
    #[inline]
    pub(crate) fn find_from(&self, from: usize, mut pred: impl FnMut(&I) -> bool) -> Option<usize> {
        let (front, back) = self.queue.as_slices();
        if let Some(rest) = front.get(from..) {
            if let Some(i) = rest.iter().position(&mut pred) {
                return Some(from + i);
            }
            return back.iter().position(pred).map(|i| front.len() + i);
        }
        let rest = back.get(from - front.len()..)?;
        rest.iter().position(pred).map(|i| from + i)
    }

    #[inline]
    pub(crate) fn pop_front(&mut self) -> Option<I> {
        let m = self.queue.pop_front();
        if m.is_some() {
            self.head_removed += 1;
        }
        if self.queue.is_empty() {
            self.shrink_if_grown();
        }
        m
    }

    /// Removes the message at `i` (a selective receive's match). Only the
    /// kernel's `Proc::remove_message` calls it: a removal behind the head
    /// moves the system messages that arrived after it (see there).
    pub(super) fn remove(&mut self, i: usize) -> Option<I> {
        let m = self.queue.remove(i);
        if i == 0 && m.is_some() {
            self.head_removed += 1;
        }
        if self.queue.is_empty() {
            self.shrink_if_grown();
        }
        m
    }

    /// An emptied inbox gives back a buffer it grew past `SHRINK_ABOVE` slots.
    #[inline(always)]
    fn shrink_if_grown(&mut self) {
        if self.queue.capacity() > SHRINK_ABOVE {
            self.shrink();
        }
    }

    #[cold]
    #[inline(never)]
    fn shrink(&mut self) {
        self.queue = VecDeque::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `find_from` agrees with a plain scan, for every start and every target,
    /// whether or not the ring buffer wraps.
    #[test]
    fn find_from_matches_a_plain_scan_across_the_wrap() {
        for head in 0..8 {
            let mut inbox = Inbox::new(8, Overflow::Backoff);
            inbox.queue.reserve_exact(8);
            // Move the ring's head so that the messages wrap around its end.
            for _ in 0..head {
                inbox.queue.push_back(u32::MAX);
                inbox.queue.pop_front();
            }
            inbox.queue.extend([10, 11, 12, 13, 14, 15]);
            for from in 0..=7 {
                for target in 9..=16 {
                    let plain = (from..inbox.queue.len()).find(|&i| inbox.queue[i] == target);
                    let mut seen = Vec::new();
                    let found = inbox.find_from(from, |m| {
                        seen.push(*m);
                        *m == target
                    });
                    assert_eq!(found, plain, "head {head} from {from} target {target}");
                    let checked = match plain {
                        Some(i) => i + 1 - from,
                        None => inbox.queue.len().saturating_sub(from),
                    };
                    assert_eq!(
                        seen.len(),
                        checked,
                        "each message once, in order, up to the match"
                    );
                }
            }
        }
    }
}
