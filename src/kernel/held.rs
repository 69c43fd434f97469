//! System messages held back between two processes that both moved to this
//! kernel (a runtime's core, see `runtime::migrate`).
//!
//! What one such process sends the other goes the long way: through the
//! receiver's home core and down its line back here (see
//! [`Kernel::deliver`]), since what it sent before its own move may still be
//! on that way. A system message between the two (a DOWN or EXIT at the
//! sender's end, an exit signal, a reply, a request) may not overtake those
//! messages (OTP orders all signals from one process to another). It is
//! kept here, and a release job takes the same long way behind them
//! ([`Kernel::run_behind`]): when the job comes back, the oldest message
//! held for the receiver goes into its system queue, after what the line
//! brought.
//!
//! Kept here, not shipped: a system message need not be `Send`, and a
//! `demonitor` finds a DOWN held for its process, an `unlink` the EXIT of
//! the link ([`Kernel::retain_held`]): neither is in the queue yet, and
//! neither may come after them (OTP: once `demonitor/1` or `unlink/1`
//! returned, the monitor or link has no effect on the caller; across cores,
//! the DOWN or EXIT that comes after them finds no tie and is dropped). A
//! process with messages held does not move again. One that ends takes them
//! with it: they are dropped with its record, where a panic of their `Drop`
//! (user code, a reply's value) is caught.

use std::collections::VecDeque;

use crate::kernel::proc::SysItem;
use crate::kernel::sysmsg::SysMsg;
use crate::kernel::{Kernel, PPtr};
use crate::signal::Pid;

/// A held system message: its tag and the message.
pub(crate) type Held = (u64, SysMsg);

/// One held message, with the number of its release, and whether it is the
/// EXIT of a link (which an `unlink` removes; an exit signal of
/// `exit_signal`, no link's, stays).
pub(crate) struct Holding {
    release: u64,
    link: bool,
    held: Held,
}

/// The kernel's held messages, by receiver, in the order they were held.
pub(crate) type HeldMap = crate::kernel::IdMap<Pid, VecDeque<Holding>>;

impl<I: 'static, O: 'static> Kernel<I, O> {
    /// Whether `p` (live, of this kernel) moved here: a system message to it
    /// then goes through [`push_sys_moved`](Self::push_sys_moved), which
    /// holds it if its sender moved here too (see the module). (The one test
    /// on the common path, before the message is made: it is then made where
    /// `push_sys` writes it, with no copy more.)
    #[inline(always)]
    pub(crate) fn moved_here(&self, p: PPtr<I, O>) -> bool {
        // SAFETY: p is a live process of this kernel; a read.
        unsafe { p.as_ref().moved_in }
    }

    /// Puts a system message from the process `from` (live, of this kernel;
    /// none: from outside, or a job) in the queue of `p`, which moved here:
    /// held if `from` moved here too (see the module), else as
    /// [`push_sys`](Self::push_sys) does.
    #[cold]
    #[inline(never)]
    pub(crate) fn push_sys_moved(
        &mut self,
        from: Option<PPtr<I, O>>,
        p: PPtr<I, O>,
        tag: u64,
        msg: SysMsg,
    ) {
        self.push_moved(from, p, tag, msg, false);
    }

    /// [`push_sys_moved`](Self::push_sys_moved) of the EXIT (tag 0) that a
    /// link gives `p` at the end of `from`: held, it is marked as the link's
    /// (an `unlink` removes it).
    #[cold]
    #[inline(never)]
    pub(crate) fn push_link_exit_moved(
        &mut self,
        from: Option<PPtr<I, O>>,
        p: PPtr<I, O>,
        msg: SysMsg,
    ) {
        self.push_moved(from, p, 0, msg, true);
    }

    /// [`push_sys_moved`](Self::push_sys_moved), `link` saying whether the
    /// message is a link's EXIT.
    #[inline(always)]
    fn push_moved(
        &mut self,
        from: Option<PPtr<I, O>>,
        p: PPtr<I, O>,
        tag: u64,
        msg: SysMsg,
        link: bool,
    ) {
        // SAFETY: from is a live process of this kernel; a read.
        match from.filter(|&f| f != p && unsafe { f.as_ref().moved_in }) {
            Some(from) => self.hold_sys(from, p, tag, msg, link),
            None => self.push_sys(p, tag, msg),
        }
    }

    /// [`push_sys_moved`](Self::push_sys_moved) from the running process,
    /// if any.
    pub(crate) fn push_sys_moved_running(&mut self, p: PPtr<I, O>, tag: u64, msg: SysMsg) {
        self.push_sys_moved(self.resuming, p, tag, msg);
    }

    /// Puts the system message `msg` makes, from the running process if any,
    /// in `p`'s queue (held if both moved here: see the module).
    #[inline]
    pub(crate) fn push_sys_running(
        &mut self,
        p: PPtr<I, O>,
        tag: u64,
        msg: impl FnOnce() -> SysMsg,
    ) {
        if self.moved_here(p) {
            self.push_sys_moved_running(p, tag, msg());
        } else {
            self.push_sys(p, tag, msg());
        }
    }

    /// Holds a system message from `from` for `p` (both moved here), and
    /// sends its release the long way, behind what `from` sent `p`.
    fn hold_sys(&mut self, from: PPtr<I, O>, p: PPtr<I, O>, tag: u64, msg: SysMsg, link: bool) {
        // SAFETY: from is live; a read.
        let from = unsafe { from.as_ref().pid };
        // SAFETY: p is live; a read.
        let pid = unsafe { p.as_ref().pid };
        self.held_releases += 1;
        let release = self.held_releases;
        self.held.entry(pid).or_default().push_back(Holding {
            release,
            link,
            held: (tag, msg),
        });
        self.run_behind(
            pid,
            Some(from),
            Box::new(move |k| k.release_held(pid, release)),
        );
    }

    /// Release number `release` of a system message held for `pid`: into its
    /// queue, if it is still held (not flushed) and `pid` still here (one
    /// that ended took its held messages with it).
    fn release_held(&mut self, pid: Pid, release: u64) {
        let Some(held) = self.held.get_mut(&pid) else {
            return;
        };
        let Some(i) = held.iter().position(|h| h.release == release) else {
            return;
        };
        let item = held.remove(i);
        if held.is_empty() {
            self.held.remove(&pid);
        }
        if let (
            Some(Holding {
                held: (tag, msg), ..
            }),
            Some(p),
        ) = (item, self.lookup(pid))
        {
            self.push_sys(p, tag, msg);
        }
    }

    /// Whether system messages are held for `pid` (it may not move).
    #[inline]
    pub(crate) fn holds_for(&self, pid: Pid) -> bool {
        !self.held.is_empty() && self.held.contains_key(&pid)
    }

    /// Keeps, of the system messages held for `pid`, those `keep` says,
    /// given each message and whether it is a link's EXIT (a `demonitor`
    /// removes a DOWN held, an `unlink` the link's EXIT): whether it removed
    /// any. (The release of one removed comes all the same, and finds
    /// nothing; a process with nothing held left may move again.)
    pub(crate) fn retain_held(
        &mut self,
        pid: Pid,
        mut keep: impl FnMut(&Held, bool) -> bool,
    ) -> bool {
        let Some(held) = self.held.get_mut(&pid) else {
            return false;
        };
        let before = held.len();
        // (The `Drop` of a message removed is the toolkit's own: a DOWN's
        // or an EXIT's reason.)
        held.retain(|h| keep(&h.held, h.link));
        let removed = held.len() < before;
        if held.is_empty() {
            self.held.remove(&pid);
        }
        removed
    }

    /// `p` (moved here) ends: the system messages held for it go into its
    /// record, to be dropped with it.
    #[cold]
    #[inline(never)]
    pub(crate) fn unhold(&mut self, p: PPtr<I, O>) {
        // SAFETY: p is live; a read.
        let pid = unsafe { p.as_ref().pid };
        let Some(held) = self.held.remove(&pid) else {
            return;
        };
        // SAFETY: p is live; no other reference to its record is held.
        let proc = unsafe { &mut *p.as_ptr() };
        let sys = &mut proc.extra().sys;
        sys.extend(held.into_iter().map(
            |Holding {
                 held: (tag, msg), ..
             }| SysItem {
                due: u64::MAX,
                tag,
                msg,
            },
        ));
    }

    /// Takes every held message (the kernel's teardown drops them).
    pub(crate) fn take_held(&mut self) -> impl Iterator<Item = Held> + use<I, O> {
        let held = std::mem::take(&mut self.held);
        held.into_values().flatten().map(|h| h.held)
    }
}
