//! Process records: what the kernel knows of each process (its pid, inbox,
//! status, engine and tree links), and the states a process goes through.

use std::any::Any;
use std::collections::VecDeque;
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::Arc;

use smallvec::SmallVec;

use crate::error::ExitError;
use crate::kernel::engine::BoxedEngine;
use crate::kernel::inbox::Inbox;
use crate::kernel::options::Route;
use crate::kernel::sysmsg::SysMsg;
use crate::signal::Pid;

/// What a process waits for: the value its coroutine suspends with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// A message in its inbox.
    Message,
    /// A message in its inbox or a system message (DOWN, EXIT, a reply): a
    /// receive of [`Mail`](crate::Mail).
    Mail,
    /// A child to stop.
    Join(Pid),
    /// An effect's future to wake it.
    Effect,
    /// Room in the inbox of the given process.
    Room(Pid),
    /// A timer (`sleep`).
    Timer,
    /// Nothing: it used up its turn's budget and is runnable again.
    Yield,
    /// Its journal records to reach the disk before it performs an effect: a
    /// durable scheduler's next group commit (see
    /// [`CommitPolicy`](crate::durable::CommitPolicy)).
    Commit,
    /// Nothing ever: its calls did not match its journal in replay (a
    /// determinism violation), so it is held.
    Held,
}

/// Where a process stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Created, not started.
    Created,
    /// Runnable, waiting for its turn.
    Ready,
    /// Running now (seen only from inside a process).
    Running,
    /// Suspended until what it waits for happens.
    Waiting(Wait),
    /// Ended; its result has not been taken yet (by a join, or by the owner).
    Stopped,
}

/// A process record's address: records live in the kernel's slab and never move.
pub(crate) type PPtr<I, O> = NonNull<Proc<I, O>>;

pub(crate) struct Proc<I, O> {
    pub(crate) pid: Pid,
    /// Its template's name (of the entry it started with), as the kernel's
    /// [`Names`] gave it.
    pub(crate) name: Rc<str>,
    pub(crate) parent: Option<Pid>,
    pub(crate) inbox: Inbox<I>,
    pub(crate) status: Status,
    pub(crate) engine: Option<BoxedEngine>,
    /// The engine layer's tag for the kind of `engine` (see
    /// [`Dispatch`](crate::kernel::Dispatch)); not read by the kernel.
    pub(crate) engine_kind: u8,
    pub(crate) route: Option<Route<O>>,
    pub(crate) seq: u64,
    pub(crate) budget: u32,
    /// In the ready queue.
    pub(crate) queued: bool,
    /// The next process in the ready queue, while queued.
    pub(super) next_ready: Option<PPtr<I, O>>,
    /// Released while queued: free it when it leaves the queue.
    pub(crate) released: bool,
    /// Being killed: a panic unwinding its coroutine is its stop's unwinding, not
    /// a failure of the process.
    pub(crate) killing: bool,
    /// A call of its context is in progress (a stackless context refuses to be
    /// re-entered from the user code such a call runs).
    pub(crate) in_call: bool,
    /// A top-level process whose result nobody will read (its handle was
    /// dropped, or it was spawned detached): freed when it ends.
    pub(crate) detached: bool,
    /// A layer above wants to hear of its end (`Kernel::on_end`): it has
    /// links, monitors, a name.
    pub(crate) watched: bool,
    /// It armed a timed send (`send_after`, `start_timer`): it may cancel it
    /// by an id of this kernel's, so it never moves to another kernel.
    pub(crate) timed_sends: bool,
    /// Put into this kernel by a move from another of its space
    /// (`Kernel::insert`): what it sends to another moved-in process goes
    /// the long way, through the receiver's home (see `Kernel::deliver`).
    pub(crate) moved_in: bool,
    /// What few processes need, allocated by the first that does.
    pub(super) extra: Option<Box<Extra>>,
}

/// Template names as process records hold them: an `Rc`, counted up and
/// down with no atomic operation (a template's `Arc<str>` costs two per
/// process, which a spawn that ends at once feels), made once per name from
/// the template's. The last few names seen are kept, each with its
/// template's `Arc` (so that its address, the key, is not reused while kept).
#[derive(Default)]
pub(crate) struct Names {
    /// Each kept name's template `Arc` (its address) and its `Rc`.
    kept: Vec<(*const u8, Rc<str>)>,
    /// The templates' `Arc`s, in the same order: held, so that a kept address
    /// is not reused for another name while kept.
    arcs: Vec<Arc<str>>,
    /// The next one to replace, once `NAMES` are kept.
    next: usize,
}

/// Names kept.
const NAMES: usize = 4;

impl Names {
    /// `name`, as records hold it.
    #[inline]
    pub(crate) fn get(&mut self, name: &Arc<str>) -> Rc<str> {
        let key = Arc::as_ptr(name).cast::<u8>();
        for (k, rc) in &self.kept {
            if *k == key {
                return rc.clone();
            }
        }
        self.add(name)
    }

    /// Keeps `name`, in place of the oldest one kept once `NAMES` are.
    #[cold]
    #[inline(never)]
    fn add(&mut self, name: &Arc<str>) -> Rc<str> {
        let rc: Rc<str> = Rc::from(&**name);
        let kept = (Arc::as_ptr(name).cast::<u8>(), rc.clone());
        if self.kept.len() < NAMES {
            self.kept.push(kept);
            self.arcs.push(name.clone());
        } else {
            // (The key replaced first: the old `Arc` may be its last.)
            self.kept[self.next] = kept;
            self.arcs[self.next] = name.clone();
            self.next = (self.next + 1) % NAMES;
        }
        rc
    }
}

/// The part of a process record that most processes never use: kept out of the
/// record (which a million idle processes pay for) until needed.
#[derive(Default)]
pub(crate) struct Extra {
    /// Processes waiting for room in this inbox, in arrival order.
    pub(crate) waiting_senders: VecDeque<Pid>,
    /// Woken because this process's inbox had room, and not yet retried: if it dies
    /// first, the room passes to the next waiting sender.
    pub(crate) room_grant: Option<Pid>,
    /// Messages dropped by the overflow policy.
    pub(crate) dropped: u64,
    /// When stopped: its result, until joined or taken.
    pub(crate) result: Option<Result<Box<dyn Any>, ExitError>>,
    /// Results of other processes handed to it (see
    /// [`Kernel::give_result`](crate::kernel::Kernel::give_result)), with
    /// the pid of the process that gave each, until it takes them.
    pub(crate) given: Vec<(Pid, Outcome)>,
    /// Its armed timer (a `sleep` or `receive_timeout`), 0 for none.
    pub(crate) timer: u64,
    /// Its armed timer fired.
    pub(crate) timed_out: bool,
    /// Children not yet joined, in spawn order (live ones and stopped ones).
    pub(crate) children: SmallVec<[Pid; 2]>,
    /// What the layer above (durability) keeps of this process (its step count,
    /// its records while it is replayed).
    pub(crate) layer: Option<Box<dyn Any>>,
    /// System messages (a layer's notifications: DOWN, EXIT, replies), in
    /// arrival order, each due once the user messages that arrived before it
    /// have left the inbox.
    pub(crate) sys: VecDeque<SysItem>,
    /// Its calls are answered from a record (a durable replay): the signals it
    /// emits meanwhile are marked [`replayed`](crate::Signal::replayed), and
    /// recorded only if the kernel's `replay_signals` says so.
    pub(crate) replaying: bool,
}

/// How a process ended: its result, or why it has none.
pub(crate) type Outcome = Result<Box<dyn Any>, ExitError>;

/// A system message, opaque to the kernel (the layer that sent it reads it).
pub(crate) struct SysItem {
    /// Due when the inbox's `head_removed` reaches this: the user messages that
    /// arrived before it have left.
    pub(crate) due: u64,
    /// A number the layer matches without opening the message (a call's tag;
    /// 0 for none).
    pub(crate) tag: u64,
    pub(crate) msg: SysMsg,
}

impl Extra {
    /// Whether it holds nothing that ties the process to its kernel: only a
    /// count of dropped messages, if anything.
    pub(crate) fn is_bare(&self) -> bool {
        self.waiting_senders.is_empty()
            && self.room_grant.is_none()
            && self.result.is_none()
            && self.given.is_empty()
            && self.timer == 0
            && !self.timed_out
            && self.children.is_empty()
            && self.layer.is_none()
            && self.sys.is_empty()
            && !self.replaying
    }
}

impl<I, O> Proc<I, O> {
    /// Takes the message at `i` of its inbox (a selective receive's match). A
    /// system message that arrived after the one taken no longer waits for it:
    /// each system message waits for the user messages that arrived before it
    /// (see [`sys_due`](Self::sys_due)), and one taken from behind the head is
    /// one fewer of them only for those that arrived after it.
    #[inline]
    pub(crate) fn remove_message(&mut self, i: usize) -> Option<I> {
        let before = self.inbox.head_removed;
        let m = self.inbox.remove(i)?;
        if i > 0
            && let Some(e) = self.extra.as_deref_mut()
            && !e.sys.is_empty()
        {
            // (Items are in arrival order: those still waiting for more than
            // `i` messages are the ones that arrived after the message taken.)
            for item in e.sys.iter_mut().rev() {
                if item.due.saturating_sub(before) as usize > i {
                    item.due -= 1;
                } else {
                    break;
                }
            }
        }
        Some(m)
    }

    /// Whether its oldest system message is due: every user message that
    /// arrived before it has left the inbox, so that mail is read in arrival
    /// order (OTP's one mailbox: what a process sent before it ended comes
    /// before its DOWN or EXIT).
    #[inline]
    pub(crate) fn sys_due(&self) -> bool {
        self.extra
            .as_ref()
            .and_then(|e| e.sys.front())
            .is_some_and(|item| item.due <= self.inbox.head_removed)
    }

    /// Whether it holds system messages (due or not).
    #[inline]
    pub(crate) fn has_sys(&self) -> bool {
        self.extra.as_ref().is_some_and(|e| !e.sys.is_empty())
    }

    /// Drops the messages left in its inbox and system queue one at a time,
    /// each under a catch of its own (their `Drop` is user code: two that
    /// panic while the queue is dropped whole abort the program, the second
    /// panicking while the first unwinds). The first panic, to report; the
    /// others are dropped quietly. (Before its record is freed; cold: a
    /// process most often ends with nothing left.)
    #[cold]
    #[inline(never)]
    pub(crate) fn drop_queues_quietly(&mut self) -> Option<Box<dyn Any + Send>> {
        use std::panic::{AssertUnwindSafe, catch_unwind};
        let mut first = None;
        let mut keep = |dropped: std::thread::Result<()>| {
            if let Err(payload) = dropped {
                match first {
                    None => first = Some(payload),
                    Some(_) => crate::kernel::pass::forget_quietly(payload),
                }
            }
        };
        while let Some(msg) = self.inbox.queue.pop_front() {
            keep(catch_unwind(AssertUnwindSafe(move || drop(msg))));
        }
        if let Some(e) = self.extra.as_deref_mut() {
            while let Some(item) = e.sys.pop_front() {
                keep(catch_unwind(AssertUnwindSafe(move || drop(item))));
            }
        }
        first
    }

    /// Whether messages are left in its inbox or system queue.
    #[inline(always)]
    pub(crate) fn has_queued(&self) -> bool {
        !self.inbox.queue.is_empty() || self.has_sys()
    }

    /// A process record in its first state: created, nothing queued or run.
    pub(crate) fn new(
        pid: Pid,
        name: Rc<str>,
        parent: Option<Pid>,
        inbox: Inbox<I>,
        route: Option<Route<O>>,
    ) -> Self {
        Proc {
            pid,
            name,
            parent,
            inbox,
            status: Status::Created,
            engine: None,
            engine_kind: 0,
            route,
            seq: 0,
            budget: 0,
            queued: false,
            next_ready: None,
            released: false,
            killing: false,
            in_call: false,
            detached: false,
            watched: false,
            timed_sends: false,
            moved_in: false,
            extra: None,
        }
    }

    /// The rarely used part of the record, if it was made.
    #[inline]
    pub(crate) fn extra_mut(&mut self) -> Option<&mut Extra> {
        self.extra.as_deref_mut()
    }

    /// The rarely used part of the record, if it was made (to read).
    #[inline]
    pub(crate) fn extra_ref(&self) -> Option<&Extra> {
        self.extra.as_deref()
    }

    /// The rarely used part of the record, made on first use.
    #[inline]
    pub(crate) fn extra(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Box::default)
    }

    /// Whether senders wait for room in this inbox.
    #[inline(always)]
    pub(crate) fn has_waiting_senders(&self) -> bool {
        self.extra
            .as_ref()
            .is_some_and(|e| !e.waiting_senders.is_empty())
    }

    /// Whether its armed timer fired (and it has not been told yet).
    #[inline]
    pub(crate) fn timed_out(&self) -> bool {
        self.extra.as_ref().is_some_and(|e| e.timed_out)
    }

    /// Forgets that its timer fired.
    #[inline]
    pub(crate) fn clear_timed_out(&mut self) {
        if let Some(e) = &mut self.extra {
            e.timed_out = false;
        }
    }

    /// Messages dropped by the overflow policy.
    pub(crate) fn dropped(&self) -> u64 {
        self.extra.as_ref().map_or(0, |e| e.dropped)
    }

    /// Its children not yet joined, in spawn order.
    #[inline(always)]
    pub(crate) fn children(&self) -> &[Pid] {
        self.extra.as_ref().map_or(&[], |e| &e.children)
    }

    /// Takes the list of its children, leaving it empty.
    pub(crate) fn take_children(&mut self) -> SmallVec<[Pid; 2]> {
        self.extra_mut()
            .map(|e| std::mem::take(&mut e.children))
            .unwrap_or_default()
    }

    /// Takes the room it was granted (the process whose inbox had room), if any.
    #[inline]
    pub(crate) fn take_room_grant(&mut self) -> Option<Pid> {
        self.extra.as_mut()?.room_grant.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A million idle processes pay for a million records: the record stays at
    /// 176 bytes on 64-bit targets (what README's memory figures assume).
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_record_is_176_bytes_at_most() {
        assert!(std::mem::size_of::<Proc<u64, u64>>() <= 176);
    }
}
