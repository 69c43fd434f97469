//! Time and wakes: timers armed by `sleep` and `receive_timeout` on the kernel's
//! clock, and the queue through which effect futures' wakers (from any thread)
//! make their processes runnable.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Wake, Waker};
use std::time::Duration;

use crate::clock::Time;
use crate::kernel::{Kernel, PPtr, Status, Wait};
use crate::signal::Pid;

/// Wake-ups from any thread: pids whose effect futures woke, and pokes (mail
/// from a [`Sender`](crate::Sender), the last sender gone). A scheduler that
/// waits for them blocks on `cond` (`run_blocking`) or leaves a waker (the async
/// `run`).
#[derive(Default)]
pub(crate) struct WakeQueue {
    inner: Mutex<Woken>,
    cond: Condvar,
    /// Set with the first pid pushed (or a poke), so that a pass with nothing
    /// woken takes no lock.
    any: AtomicBool,
}

#[derive(Default)]
struct Woken {
    pids: Vec<Pid>,
    /// Something other than an effect woke: look at the mail.
    poked: bool,
    /// Top-level processes whose handles were dropped: nobody will read their
    /// results. (No wake-up: nothing runs for them; the next pass frees them.)
    dropped: Vec<Pid>,
    /// The async `run` waiting for a wake-up.
    waker: Option<Waker>,
}

impl WakeQueue {
    fn lock(&self) -> MutexGuard<'_, Woken> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a wake-up (`pid`'s effect, or a poke) and wakes whoever waits.
    fn wake(&self, pid: Option<Pid>) {
        let mut woken = self.lock();
        match pid {
            Some(pid) => woken.pids.push(pid),
            None => woken.poked = true,
        }
        self.any.store(true, Ordering::Release);
        let waker = woken.waker.take();
        drop(woken);
        self.cond.notify_all();
        // Outside the lock: the waker is the executor's code, whose panic must
        // not unwind into whoever woke (a sender, another effect's waker, the
        // kernel delivering mail).
        if let Some(waker) = waker
            && let Err(payload) = catch_unwind(AssertUnwindSafe(|| waker.wake()))
        {
            super::pass::forget_quietly(payload);
        }
    }

    /// Whether something woke since the kernel last looked (no lock).
    pub(crate) fn is_woken(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }

    /// Something for the scheduler to look at came (mail, or a sender went).
    pub(crate) fn poke(&self) {
        self.wake(None);
    }

    /// `pid`'s handle was dropped (on any thread): its result is freed at the
    /// kernel's next pass.
    pub(crate) fn handle_dropped(&self, pid: Pid) {
        let mut woken = self.lock();
        woken.dropped.push(pid);
        self.any.store(true, Ordering::Release);
    }

    /// Moves what woke into `pids` and `dropped`: whether mail poked.
    fn drain_into(&self, pids: &mut Vec<Pid>, dropped: &mut Vec<Pid>) -> bool {
        let mut woken = self.lock();
        self.any.store(false, Ordering::Relaxed);
        pids.append(&mut woken.pids);
        dropped.append(&mut woken.dropped);
        std::mem::take(&mut woken.poked)
    }

    /// Waits until something wakes, or `timeout` (if any) passes.
    pub(crate) fn wait_nonempty(&self, timeout: Option<std::time::Duration>) {
        let mut woken = self.lock();
        match timeout {
            None => {
                while woken.pids.is_empty() && !woken.poked {
                    woken = self.cond.wait(woken).unwrap_or_else(|e| e.into_inner());
                }
            }
            Some(timeout) => {
                if woken.pids.is_empty() && !woken.poked {
                    drop(
                        self.cond
                            .wait_timeout(woken, timeout)
                            .unwrap_or_else(|e| e.into_inner()),
                    );
                }
            }
        }
    }

    /// For the async `run`: whether something woke; if not, `waker` is woken
    /// when something does.
    pub(crate) fn woken_or_register(&self, waker: &Waker) -> bool {
        if self.any.load(Ordering::Acquire) {
            return true;
        }
        let mut woken = self.lock();
        if !woken.pids.is_empty() || woken.poked {
            return true;
        }
        match &mut woken.waker {
            Some(w) if w.will_wake(waker) => {}
            slot => *slot = Some(waker.clone()),
        }
        false
    }
}

/// The ids of the timers processes wait on (`sleep`, `receive_timeout`) have
/// this bit set: a space of their own, apart from the ids of timed sends,
/// which processes see (`TimerRef`) and a durable scheduler journals, so that
/// a replay that waits again uses up none of theirs.
const WAIT_TIMER: u64 = 1 << 63;

/// What a timed send delivers: a user message, or a system message (a timeout
/// notice), made from the timer's id when it fires (so that a timer cancelled
/// before, as most are, allocates nothing).
pub(crate) enum Timed<I> {
    Msg(I),
    Sys(fn(u64) -> crate::kernel::SysMsg),
}

/// A timer armed during the current pass (see [`Kernel::arm_send_after`]):
/// its delay (ns), id and process, and a timed send's message (none for a
/// process's own timer, or once cancelled or settled).
pub(crate) struct Fresh<I> {
    delay: u64,
    id: u64,
    pid: Pid,
    msg: Option<Timed<I>>,
}

impl<I> Fresh<I> {
    /// Its message, if it still holds one.
    pub(crate) fn take_msg(&mut self) -> Option<Timed<I>> {
        self.msg.take()
    }
}

/// When a timed send is due: at a deadline, or (armed in the current pass,
/// see [`Kernel::arm_send_after`]) a delay after the pass's turns.
#[derive(Clone, Copy)]
pub(crate) enum Due {
    At(Time),
    /// Nanoseconds.
    After(u64),
}

/// A timer armed during a pass with a delay of this much or more (1 s) gets
/// its deadline from [`Clock::now_or_later`](crate::Clock::now_or_later), not
/// from the clock itself: late by at most a few milliseconds (two ticks of the
/// coarse clock on Linux), a fraction of a percent of its delay.
const LONG: u64 = 1_000_000_000;

/// A delay in nanoseconds (saturating).
fn nanos(delay: Duration) -> u64 {
    u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX)
}

pub(crate) struct PidWaker {
    pid: Pid,
    queue: Arc<WakeQueue>,
}

impl Wake for PidWaker {
    fn wake(self: Arc<Self>) {
        self.queue.wake(Some(self.pid));
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.queue.wake(Some(self.pid));
    }
}

impl<I: 'static, O: 'static> Kernel<I, O> {
    /// Arms a timer for `p` at `deadline`; it wakes `p` if `p` still waits on it
    /// then. A timer `p` had armed before is cancelled.
    pub(crate) fn arm_timer(&mut self, p: PPtr<I, O>, deadline: Time) {
        self.cancel_timer(p);
        let id = WAIT_TIMER | self.next_wait;
        self.next_wait += 1;
        // SAFETY: p is live.
        let proc = unsafe { &mut *p.as_ptr() };
        let extra = proc.extra();
        extra.timer = id;
        extra.timed_out = false;
        self.armed += 1;
        self.timers.push(Reverse((deadline, id, proc.pid)));
    }

    /// Cancels `p`'s armed timer, if any (nobody waits on it any more: a message
    /// answered its `receive_timeout`, or it is ending). Its heap entry becomes
    /// stale: stale entries are popped from the top at once, so that the top is
    /// always a live timer (what `next_deadline` reports and `run_blocking` waits
    /// for), and the heap is compacted when stale entries outnumber live ones, so
    /// that it stays bounded by the number of armed timers.
    #[inline]
    pub(crate) fn cancel_timer(&mut self, p: PPtr<I, O>) {
        // SAFETY: p is live.
        let proc = unsafe { &mut *p.as_ptr() };
        if let Some(extra) = &mut proc.extra
            && extra.timer != 0
        {
            let id = std::mem::take(&mut extra.timer);
            self.armed -= 1;
            self.cancelled(id);
        }
    }

    /// Arms a timer that delivers `msg` to `pid` `delay` from now (a timed
    /// send: `send_after`, `start_timer`): its id, to cancel it with.
    ///
    /// Armed from a process's turn, it reads no clock: it waits aside
    /// (`fresh`) until the turn is over, and its deadline is then set from a
    /// clock read taken after the turn (at the next pass's start, or when the
    /// run ends): never earlier than `delay` after it was armed, and later by at
    /// most the rest of the pass it was armed in (in which no timer can fire
    /// anyway). Armed from outside (the scheduler's owner), it reads the clock.
    pub(crate) fn arm_send_after(&mut self, pid: Pid, delay: Duration, msg: Timed<I>) -> u64 {
        self.arming();
        let id = self.next_timer;
        self.next_timer += 1;
        self.armed += 1;
        if self.resuming.is_some() {
            // (Its message waits with it, out of `timed` until it is settled:
            // a zero-delay one never goes there.)
            self.fresh.push(Fresh {
                delay: nanos(delay),
                id,
                pid,
                msg: Some(msg),
            });
        } else {
            let deadline = self.clock.now() + delay;
            self.timed.insert(id, (Due::At(deadline), msg));
            self.timers.push(Reverse((deadline, id, pid)));
        }
        id
    }

    /// Arms a timer that delivers `msg` to `pid` at `deadline` (a layer that
    /// must know each timer's deadline as it is armed: a durable scheduler
    /// journals it): its id. It reads no clock.
    pub(crate) fn arm_send_at(&mut self, pid: Pid, deadline: Time, msg: Timed<I>) -> u64 {
        let id = self.next_timer;
        self.arm_send_as(id, pid, deadline, msg);
        id
    }

    /// Arms timed send `id` at `deadline` (a layer rebuilding its state:
    /// durable recovery); later ids come after it.
    pub(crate) fn arm_send_as(&mut self, id: u64, pid: Pid, deadline: Time, msg: Timed<I>) {
        self.arming();
        self.next_timer = self.next_timer.max(id + 1);
        self.armed += 1;
        self.timed.insert(id, (Due::At(deadline), msg));
        self.timers.push(Reverse((deadline, id, pid)));
    }

    /// A timed send is armed: the process running (if any) holds its id,
    /// of this kernel's, and so stays here (`Proc::timed_sends`).
    #[inline]
    fn arming(&mut self) {
        if let Some(p) = self.resuming {
            // SAFETY: the process being resumed is live; one field written.
            unsafe { (*p.as_ptr()).timed_sends = true };
        }
    }

    /// Timer ids below `next` were handed out (a layer rebuilding its state).
    pub(crate) fn timer_ids_from(&mut self, next: u64) {
        self.next_timer = self.next_timer.max(next);
    }

    /// The next timer id (ids below it were handed out).
    pub(crate) fn next_timer_id(&self) -> u64 {
        self.next_timer
    }

    /// The timed sends armed: id, deadline, process, by id.
    pub(crate) fn timed_sends(&self) -> Vec<(u64, Time, Pid)> {
        let mut sends: Vec<(u64, Time, Pid)> = self
            .timers
            .iter()
            .filter(|Reverse((_, id, _))| self.timed.contains_key(id))
            .map(|&Reverse((deadline, id, pid))| (id, deadline, pid))
            .collect();
        sends.sort_unstable_by_key(|s| s.0);
        sends.dedup_by_key(|s| s.0);
        sends
    }

    /// Arms a timer for `p` `delay` from now, as [`arm_timer`](Self::arm_timer)
    /// does at a deadline; from a turn, it reads no clock (as
    /// [`arm_send_after`](Self::arm_send_after)).
    pub(crate) fn arm_timer_after(&mut self, p: PPtr<I, O>, delay: Duration) {
        if self.resuming.is_none() {
            let deadline = self.clock.now() + delay;
            self.arm_timer(p, deadline);
            return;
        }
        self.cancel_timer(p);
        let id = WAIT_TIMER | self.next_wait;
        self.next_wait += 1;
        // SAFETY: p is live.
        let proc = unsafe { &mut *p.as_ptr() };
        let extra = proc.extra();
        extra.timer = id;
        extra.timed_out = false;
        self.armed += 1;
        self.fresh.push(Fresh {
            delay: nanos(delay),
            id,
            pid: proc.pid,
            msg: None,
        });
    }

    /// How long a cancelled timed send had left: one armed in the turn that
    /// cancels it (or in another turn of the same pass) is given its whole
    /// delay (the clock is not read: too long by at most the time since it
    /// was armed, within one pass); another, its deadline less the time now.
    pub(crate) fn time_left(&self, due: Due) -> Duration {
        match due {
            Due::After(delay) => Duration::from_nanos(delay),
            Due::At(deadline) => deadline.since(self.clock.now()),
        }
    }

    /// Timers armed in the turns of the pass that ended (`fresh`) get their
    /// deadlines, a time read after those turns plus their delays, and join
    /// the heap; stale ones go. That time is `now` (read now if `None`) for
    /// the short ones, `later` (no earlier than now: [`Clock::now_or_later`],
    /// cheaper to read) for those of [`LONG`] or more, which it may make late
    /// by a little. Zero-delay ones, which are due, are kept in `fresh` when
    /// `keep_due` (for [`fire_timers`](Self::fire_timers) to fire after the
    /// heap's due timers).
    ///
    /// [`Clock::now_or_later`]: crate::Clock::now_or_later
    fn settle_fresh(&mut self, now: &mut Option<Time>, later: Time, keep_due: bool) {
        let mut fresh = std::mem::take(&mut self.fresh);
        let mut kept = 0;
        for i in 0..fresh.len() {
            let (delay, id, pid) = (fresh[i].delay, fresh[i].id, fresh[i].pid);
            if !(fresh[i].msg.is_some() || self.waits_on(id, pid)) {
                // (Stale.)
                continue;
            }
            if delay == 0 && keep_due {
                fresh.swap(kept, i);
                kept += 1;
                continue;
            }
            let from = if delay >= LONG {
                later
            } else {
                *now.get_or_insert_with(|| self.clock.now())
            };
            let deadline = Time(from.0.saturating_add(delay));
            if let Some(msg) = fresh[i].msg.take() {
                self.timed.insert(id, (Due::At(deadline), msg));
            }
            self.timers.push(Reverse((deadline, id, pid)));
        }
        // (What is left past `kept` holds no message: taken, or none.)
        fresh.truncate(kept);
        self.fresh = fresh;
    }

    /// When a run of passes ends: the timers its last pass armed get their
    /// deadlines (the owner may wait for them, or look).
    #[inline]
    pub(super) fn settle_at_end(&mut self) {
        if !self.fresh.is_empty() {
            self.settle_at_end_now();
        }
    }

    #[cold]
    fn settle_at_end_now(&mut self) {
        let now = self.clock.now();
        self.settle_fresh(&mut Some(now), now, false);
        self.discard_stale_timers();
    }

    /// A timer id that names no timer (a timed send dropped before it was
    /// armed): unique, so that it never cancels another.
    pub(crate) fn unused_timer_id(&mut self) -> u64 {
        let id = self.next_timer;
        self.next_timer += 1;
        id
    }

    /// Cancels timed send `id`: its deadline and message, if it had not fired.
    pub(crate) fn cancel_send(&mut self, id: u64) -> Option<(Due, Timed<I>)> {
        if let Some(i) = self.fresh_index(id) {
            let msg = self.fresh[i].msg.take()?;
            let delay = self.fresh[i].delay;
            self.armed -= 1;
            self.cancelled(id);
            return Some((Due::After(delay), msg));
        }
        let sent = self.timed.remove(&id)?;
        self.armed -= 1;
        self.cancelled(id);
        Some(sent)
    }

    /// Where timer `id` is in `fresh`, if it is there (their ids increase:
    /// the last, most often, else a binary search).
    #[inline]
    fn fresh_index(&self, id: u64) -> Option<usize> {
        let last = self.fresh.last()?;
        if last.id == id {
            return Some(self.fresh.len() - 1);
        }
        if id > last.id || id < self.fresh[0].id {
            return None;
        }
        self.fresh.binary_search_by_key(&id, |f| f.id).ok()
    }

    /// Timer `id` was cancelled: its entry is stale. Most often it is the last
    /// armed, or the top (the earliest): popped without asking; and then
    /// most often nothing else is left to discard.
    #[inline]
    fn cancelled(&mut self, id: u64) {
        if let Some(last) = self.fresh.last()
            && last.id == id
        {
            self.fresh.pop();
        } else if let Some(&Reverse((_, top, _))) = self.timers.peek()
            && top == id
        {
            self.timers.pop();
        }
        if !(self.fresh.is_empty() && self.timers.is_empty())
            || self.fresh.capacity() > 1024
            || self.timers.capacity() > 1024
        {
            self.discard_stale_timers();
        }
    }

    /// A timed send fired: its message goes to `pid`'s inbox (past its
    /// capacity if it is full: a timer cannot wait, and timers are as many as
    /// were armed), or to its system messages; one for a process that ended is
    /// dropped and counted ([`timed_dropped`](Kernel::timed_dropped)).
    /// (Not cold: every `send_after` that is not cancelled comes here.)
    fn fire_send(&mut self, pid: Pid, id: u64, msg: Timed<I>) {
        let p = self.lookup(pid).filter(|p| {
            // SAFETY: p is live.
            (unsafe { p.as_ref().status }) != Status::Stopped
        });
        if self.hooks.is_some() {
            self.tell_fired(pid, id, p, &msg);
        }
        let Some(p) = p else {
            self.drop_timed(pid, msg);
            return;
        };
        match msg {
            Timed::Msg(msg) => self.deliver_timed(p, msg),
            Timed::Sys(make) => self.fire_sys(p, id, make),
        }
    }

    /// Tells the hooks of a timed send that fired, to `p` (live) if it is
    /// alive. (Out of line: only a layer that journals has hooks, and
    /// `fire_send` stays small enough to be inlined in the pass.)
    #[cold]
    #[inline(never)]
    fn tell_fired(&mut self, pid: Pid, id: u64, p: Option<PPtr<I, O>>, msg: &Timed<I>) {
        if let Some(hooks) = &mut self.hooks {
            // (Its delivery is this one record, whole: a layer that journals
            // needs no other to know what it delivered.)
            let sent = match msg {
                Timed::Msg(m) => Some(m),
                Timed::Sys(_) => None,
            };
            // SAFETY: p is live, and nothing else borrows it during the hook.
            let to = p.map(|p| unsafe { &*p.as_ptr() });
            hooks.fired(id, pid, to, sent);
        }
    }

    /// A timed system notice fired: it goes to `p`'s system messages. (Out of
    /// line: `push_sys` is inlined where it is hot, and here it would make
    /// `fire_send`, which a timed message takes on every fire, too big to be
    /// inlined in the pass.)
    #[inline(never)]
    fn fire_sys(&mut self, p: PPtr<I, O>, id: u64, make: fn(u64) -> crate::kernel::SysMsg) {
        self.push_sys(p, 0, make(id));
    }

    /// A timed send to `pid`, which ended, is dropped and counted.
    #[cold]
    fn drop_timed(&mut self, pid: Pid, msg: Timed<I>) {
        // (A pid of another kernel of a runtime: the message goes there.)
        let msg = match msg {
            Timed::Msg(m) if self.elsewhere(pid) => match self.not_here(None, pid, m) {
                super::Sent::Delivered => return,
                super::Sent::Full { msg, .. }
                | super::Sent::Rejected(msg)
                | super::Sent::NoRoute(msg)
                | super::Sent::Unknown(_, msg) => Timed::Msg(msg),
            },
            msg => msg,
        };
        self.timed_dropped += 1;
        crate::trace::trace_event!(
            tracing::Level::DEBUG,
            to = pid.0,
            reason = "process ended",
            "timer dropped"
        );
        let _ = pid;
        // (Its `Drop` is user code: kept from unwinding into the pass.)
        let dropped = catch_unwind(AssertUnwindSafe(move || drop(msg)));
        self.report(dropped.err());
    }

    /// Whether a heap entry is a timer some process still waits on.
    fn timer_is_live(&self, id: u64, pid: Pid) -> bool {
        self.waits_on(id, pid) || self.timed.contains_key(&id)
    }

    /// Whether timer `id` is the one process `pid` waits on (a `sleep`'s, a
    /// receive's timeout): two loads, where a timed send's is a hash lookup.
    #[inline]
    fn waits_on(&self, id: u64, pid: Pid) -> bool {
        self.lookup(pid).is_some_and(|p| {
            // SAFETY: p is live.
            unsafe { p.as_ref() }
                .extra
                .as_ref()
                .is_some_and(|e| e.timer == id)
        })
    }

    /// Pops stale entries off the top of the heap, and compacts it when stale
    /// entries outnumber live ones.
    #[cold]
    fn discard_stale_timers(&mut self) {
        if self.armed == 0 {
            // (All stale.)
            self.fresh.clear();
        }
        while let Some(last) = self.fresh.last() {
            if last.msg.is_some() || self.waits_on(last.id, last.pid) {
                break;
            }
            self.fresh.pop();
        }
        if self.fresh.len() > 2 * self.armed + 32 {
            let mut fresh = std::mem::take(&mut self.fresh);
            // (The stale hold no message: no user code runs.)
            fresh.retain(|f| f.msg.is_some() || self.waits_on(f.id, f.pid));
            self.fresh = fresh;
        }
        while let Some(&Reverse((_, id, pid))) = self.timers.peek() {
            if self.timer_is_live(id, pid) {
                break;
            }
            self.timers.pop();
        }
        // (The slack keeps a few stale entries from causing a rebuild each time.)
        if self.timers.len() > 2 * self.armed + 32 {
            let mut timers = std::mem::take(&mut self.timers);
            timers.retain(|&Reverse((_, id, pid))| self.timer_is_live(id, pid));
            if timers.capacity() > 4 * timers.len().max(64) {
                timers.shrink_to(2 * timers.len().max(64));
            }
            self.timers = timers;
        }
        if self.timers.is_empty() && self.timers.capacity() > 1024 {
            self.timers = BinaryHeap::new();
        }
        if self.fresh.is_empty() && self.fresh.capacity() > 1024 {
            self.fresh = Vec::new();
        }
    }

    /// The earliest armed timer's deadline (the heap's top is always live).
    /// (Timers armed in the current pass, if asked mid-run, as if armed now.)
    pub(crate) fn next_deadline(&self) -> Option<Time> {
        let top = self.timers.peek().map(|Reverse((t, _, _))| *t);
        let fresh = self.fresh.iter().map(|f| f.delay).min();
        match fresh {
            Some(d) => {
                let t = Time(self.clock.now().0.saturating_add(d));
                Some(top.map_or(t, |top| top.min(t)))
            }
            None => top,
        }
    }

    /// Fires the timers that are due: each wakes its process, if it still waits on
    /// that timer. Reads the clock only when a timer is armed. The timers armed in
    /// the last pass's turns get their deadlines first (from this read).
    #[inline]
    pub(super) fn fire_timers(&mut self) {
        if self.armed == 0 || self.hold_timers {
            return;
        }
        self.fire_timers_now();
    }

    /// After a pass that held its timers back (`hold_timers`), fires those
    /// that are due, and lets the next passes fire theirs as ever.
    pub(crate) fn release_timers(&mut self) {
        if std::mem::take(&mut self.hold_timers) && self.armed != 0 {
            self.fire_timers_now();
        }
    }

    #[inline]
    fn fire_timers_now(&mut self) {
        // (A cheap upper bound of the time first: most passes have nothing
        // due, and learn it without reading the clock itself.)
        let later = self.clock.now_or_later();
        let mut now = None;
        let mut popped = false;
        if !self.fresh.is_empty() {
            self.settle_fresh(&mut now, later, true);
        }
        if self
            .timers
            .peek()
            .is_some_and(|&Reverse((deadline, _, _))| deadline <= later)
        {
            let now = *now.get_or_insert_with(|| self.clock.now());
            while let Some(&Reverse((deadline, id, pid))) = self.timers.peek() {
                if deadline > now {
                    break;
                }
                self.timers.pop();
                popped = true;
                self.fire_one(id, pid);
            }
        }
        // Then the zero-delay ones of the last pass, due now, in the order they
        // were armed (after the heap's, which were armed before them).
        if !self.fresh.is_empty() {
            let mut due = std::mem::take(&mut self.fresh);
            for f in due.iter_mut() {
                match f.msg.take() {
                    Some(msg) => {
                        self.armed -= 1;
                        self.fire_send(f.pid, f.id, msg);
                    }
                    None => self.fire_one(f.id, f.pid),
                }
            }
            due.clear();
            if self.fresh.is_empty() {
                self.fresh = due;
            }
        }
        // The new top may be stale if one was popped (settled ones are live).
        if popped || self.fresh.capacity() > 1024 || self.timers.capacity() > 1024 {
            self.discard_stale_timers();
        }
    }

    /// Timer `id` of `pid` is due: it fires, unless stale.
    #[inline]
    fn fire_one(&mut self, id: u64, pid: Pid) {
        if let Some((_, msg)) = self.timed.remove(&id) {
            self.armed -= 1;
            self.fire_send(pid, id, msg);
            return;
        }
        if let Some(p) = self.lookup(pid) {
            // SAFETY: p is live.
            let proc = unsafe { &mut *p.as_ptr() };
            if let Some(extra) = &mut proc.extra
                && extra.timer == id
            {
                extra.timer = 0;
                extra.timed_out = true;
                self.armed -= 1;
                if matches!(
                    proc.status,
                    Status::Waiting(Wait::Timer | Wait::Message | Wait::Mail)
                ) {
                    self.make_ready(p);
                }
            }
        }
    }

    /// At the start of a pass, what came from outside its thread: woken
    /// effect futures' processes go to the ready queue, mail is delivered (and
    /// parked mail tried again), and the results of processes whose handles
    /// were dropped are freed. One test when nothing came.
    #[inline]
    pub(super) fn take_outside(&mut self) {
        if self.wakes.any.load(Ordering::Acquire) || self.mail_parked {
            self.take_outside_now();
        }
    }

    #[cold]
    fn take_outside_now(&mut self) {
        let mut woken = std::mem::take(&mut self.woken);
        let mut dropped = Vec::new();
        let poked = self.wakes.drain_into(&mut woken, &mut dropped);
        for pid in woken.drain(..) {
            if let Some(p) = self.lookup(pid) {
                // SAFETY: p is live.
                if unsafe { p.as_ref().status } == Status::Waiting(Wait::Effect) {
                    self.make_ready(p);
                }
            }
        }
        self.woken = woken;
        if (poked || self.mail_parked)
            && let Some(deliver) = self.deliver_mail_fn
        {
            deliver(self);
        }
        for pid in dropped {
            self.detach(pid);
        }
    }

    pub(crate) fn waker(&self, pid: Pid) -> std::task::Waker {
        std::task::Waker::from(Arc::new(PidWaker {
            pid,
            queue: self.wakes.clone(),
        }))
    }
}
