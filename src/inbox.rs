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
    /// outside return it in an error, `send` keeps it with the undelivered messages.
    Reject,
}

/// The default inbox capacity.
pub const DEFAULT_CAPACITY: usize = 1024;

/// Shrink an idle inbox's buffer back to nothing once it has grown past this many
/// slots, so that memory follows what an inbox holds, not what it once held.
const SHRINK_ABOVE: usize = 64;

pub(crate) struct Inbox<I> {
    pub(crate) queue: VecDeque<I>,
    pub(crate) capacity: usize,
    pub(crate) overflow: Overflow,
    /// How many messages were evicted from the head by `DropOldest`, ever: lets a
    /// waiting `select` keep its scan position.
    pub(crate) evicted: u64,
}

impl<I> Inbox<I> {
    pub(crate) fn new(capacity: usize, overflow: Overflow) -> Self {
        Inbox {
            queue: VecDeque::new(),
            capacity,
            overflow,
            evicted: 0,
        }
    }

    #[inline]
    pub(crate) fn is_full(&self) -> bool {
        self.queue.len() >= self.capacity
    }

    #[inline]
    pub(crate) fn pop_front(&mut self) -> Option<I> {
        let m = self.queue.pop_front();
        if self.queue.is_empty() {
            self.shrink_if_grown();
        }
        m
    }

    pub(crate) fn remove(&mut self, i: usize) -> Option<I> {
        let m = self.queue.remove(i);
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
