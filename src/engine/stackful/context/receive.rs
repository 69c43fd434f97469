//! Receiving: the head of the inbox, a selective receive, a filter.

use crate::engine::stackful::context::Ctx;
use crate::kernel::Wait;
use crate::signal::{DropReason, SignalData};
use crate::trace::trace_event;

impl<I: 'static, O: 'static> Ctx<I, O> {
    /// Takes the message at the head of the inbox, waiting for one if it is empty.
    pub fn receive(&mut self) -> I {
        self.tick();
        if self.hooked() {
            return self.receive_hooked();
        }
        self.take_head::<false>()
    }

    /// [`receive`](Self::receive) with hooks: replayed, or journaled.
    #[cold]
    #[inline(never)]
    fn receive_hooked(&mut self) -> I {
        if let Some(Some(m)) = self.replay_take("a receive", false) {
            return m;
        }
        self.take_head::<true>()
    }

    /// Takes the head of the inbox, waiting for one; `JOURNAL`: records the take
    /// (compiled twice, so that the hot path has no test for it).
    #[inline(always)]
    fn take_head<const JOURNAL: bool>(&mut self) -> I {
        loop {
            if let Some(m) = self.p().inbox.pop_front() {
                self.took();
                if JOURNAL {
                    self.journal_take(Some(&m));
                }
                return m;
            }
            self.suspend(Wait::Message);
        }
    }

    /// Takes the head of the inbox if there is one, without waiting.
    pub fn try_receive(&mut self) -> Option<I> {
        self.tick();
        if let Some(m) = self.replay_take("a try_receive", true) {
            return m;
        }
        let m = self.p().inbox.pop_front();
        if m.is_some() {
            self.took();
        }
        self.journal_take(m.as_ref());
        m
    }

    /// Selective receive: takes the first message, in arrival order, that matches
    /// `pred`; the others stay in the inbox in their order. With no match it waits,
    /// and checks only the messages that arrive (the scan position is kept, as
    /// BEAM's receive markers do), so `pred` sees each message at most once per
    /// call.
    pub fn select(&mut self, mut pred: impl FnMut(&I) -> bool) -> I {
        self.tick();
        if let Some(Some(m)) = self.replay_take("a select", false) {
            if !pred(&m) {
                self.violation(
                    "a message the select does not match".into(),
                    "a select".into(),
                );
            }
            return m;
        }
        let mut i = 0usize;
        let mut evicted = self.p().inbox.head_removed;
        loop {
            let inbox = &mut self.p().inbox;
            // Messages evicted from the head shift the ones we already scanned.
            i = i.saturating_sub((inbox.head_removed - evicted) as usize);
            evicted = inbox.head_removed;
            if let Some(found) = inbox.find_from(i, &mut pred) {
                let m = self
                    .p()
                    .remove_message(found)
                    .expect("index within the inbox");
                self.took();
                self.journal_take(Some(&m));
                return m;
            }
            i = inbox.queue.len();
            self.suspend(Wait::Message);
        }
    }

    /// Takes the first message that matches `pred`, dropping every message before
    /// it (a DROP signal each); with none it waits, dropping each non-matching
    /// arrival.
    pub fn filter(&mut self, mut pred: impl FnMut(&I) -> bool) -> I {
        self.tick();
        if let Some(Some(m)) = self.replay_take("a filter", false) {
            if !pred(&m) {
                self.violation(
                    "a message the filter does not match".into(),
                    "a filter".into(),
                );
            }
            return m;
        }
        loop {
            while let Some(m) = self.p().inbox.pop_front() {
                self.took();
                if pred(&m) {
                    self.journal_take(Some(&m));
                    return m;
                }
                let me = self.me;
                let pid = self.pid();
                let k = self.k();
                k.hook_eviction(pid, &m);
                trace_event!(
                    tracing::Level::DEBUG,
                    pid = pid.0,
                    reason = "filtered",
                    "drop"
                );
                k.emit(me, || SignalData::Drop {
                    msg: m,
                    reason: DropReason::Filtered,
                });
            }
            self.suspend(Wait::Message);
        }
    }
}
