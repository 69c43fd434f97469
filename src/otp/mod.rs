//! The OTP toolkit: exit signals and trapping, links, monitors, mail (system
//! messages beside the user's), timers that send, and request/reply calls.
//!
//! A layer over the kernel: it keeps its tables in the kernel's extensions and
//! hears of each watched process's end through the kernel's end notice
//! (`Kernel::notify_end`); it reaches processes only through the kernel's
//! system messages and exit signals. The kernel knows nothing of it. A
//! scheduler that never uses it pays one test of a flag per process end.
//!
//! Under a durable scheduler each call of a process is handed to the
//! kernel's hooks as a record of what it asked and got (`record.rs`), and
//! answered from that record in replay; the durable layer folds those records
//! at recovery through the tables' own operations (`table.rs`). The toolkit
//! knows nothing of who records.
//!
//! One file per concept:
//!
//! | file | concept |
//! |---|---|
//! | `mail.rs` | [`Mail`]: a message or a system notice (DOWN, EXIT, timeout) |
//! | `links.rs` | links, exit signals, trapping exits |
//! | `table.rs` | the tables as plain data: links, monitors, trapping, names, groups |
//! | `mailbox.rs` | reading mail: the inbox and the system queue merged in arrival order |
//! | `monitors.rs` | monitors and DOWN |
//! | `registry.rs` | names: register, whereis, send by name |
//! | `groups.rs` | process groups: join, leave, members, send to all |
//! | `timers.rs` | timed sends (`send_after`, `start_timer`) and their cancelling |
//! | `call.rs` | request/reply calls with a timeout |
//! | `children.rs` | a parent's view of its children: list, stop one |
//! | `record.rs` | the calls as a journaling layer records them: asked and answered |
//! | `request.rs` | typed system requests, beside the user's messages |
//! | `agent.rs` | agents: a process holding a value, read and changed by functions |
//! | `server/` | servers: a state and its handlers (`gen_server`), typed handles |
//! | `supervisor/` | supervisors: child specs, strategies, restart intensity, backoff |
//! | `ctx.rs` | the calls of a stackful process's [`Ctx`](crate::Ctx) |
//! | `outside.rs` | the same, from the scheduler's owner |
//! | `shutdown.rs` | a scheduler's graceful shutdown |
//! | `stackless.rs` | the same calls of a stackless process's `StacklessCtx` (feature `stackless`) |

pub mod agent;
pub(crate) mod call;
pub(crate) mod children;
pub(crate) mod ctx;
pub(crate) mod elsewhere;
pub(crate) mod groups;
pub(crate) mod links;
pub(crate) mod mail;
pub(crate) mod mailbox;
pub(crate) mod monitors;
pub(crate) mod outside;
pub(crate) mod record;
pub(crate) mod registry;
pub(crate) mod request;
pub mod server;
pub(crate) mod shutdown;
#[cfg(feature = "stackless")]
pub(crate) mod stackless;
pub mod supervisor;
pub(crate) mod table;
pub(crate) mod timers;

use crate::error::SpawnError;
use crate::kernel::{Kernel, PPtr};
use crate::reason::Reason;
use crate::signal::{Payload, Pid};
use crate::template::Spawnable;

pub use call::{CallError, ReplyTo};
pub use mail::{Mail, MailRef, MonitorRef, TimerRef};
pub use registry::RegisterError;
pub use request::{DurableRequest, Request, RequestType};
pub use shutdown::ShutdownReport;
pub(crate) use table::{Entry, Table};

/// The toolkit's tables in kernel `k`, made (and the end notice installed) on
/// first use.
pub(crate) fn table<I: 'static, O: 'static>(k: &mut Kernel<I, O>) -> &mut Table {
    if k.on_end.is_none() {
        k.on_end = Some(on_end::<I, O>);
    }
    k.extensions.get_or_insert_with(Table::default)
}

/// Marks `p` (live) watched: its end is told to [`on_end`] (a process the
/// tables name).
pub(crate) fn watch<I, O>(p: PPtr<I, O>) {
    // SAFETY: p is live; one field written.
    unsafe { (*p.as_ptr()).watched = true };
}

/// Whether `pid` is a live process (not ended) of `k`: its record.
pub(crate) fn alive<I: 'static, O: 'static>(k: &Kernel<I, O>, pid: Pid) -> Option<PPtr<I, O>> {
    k.lookup(pid).filter(|p| {
        // SAFETY: p is live.
        (unsafe { p.as_ref().status }) != crate::kernel::Status::Stopped
    })
}

/// Spawns a top-level process from `template` with `args`, its result not
/// kept (detached): a process of its own, not a child, for `spawn_link` and
/// `spawn_monitor`. It is made, tied to `me` (live) by `tie` (a link, a
/// monitor) and only then started, with no yield between: it cannot run, nor
/// end, untied. `tie` is given `me`, the new process's record (created, not
/// started: alive, and not `me`) and both pids. The template's function
/// (user code) runs inside.
pub(crate) fn spawn_unparented<I: 'static, O: 'static, A: 'static, R: Payload>(
    k: &mut Kernel<I, O>,
    me: PPtr<I, O>,
    template: &impl Spawnable<I, O, A, R>,
    args: A,
    tie: impl FnOnce(&mut Kernel<I, O>, PPtr<I, O>, PPtr<I, O>, Pid, Pid),
) -> Result<Pid, SpawnError> {
    let p = template.create_in(k, args, None)?;
    // SAFETY: p was just made: live, and not referenced elsewhere; me is
    // live (and another record).
    let (pid, my_pid) = unsafe {
        (*p.as_ptr()).detached = true;
        (p.as_ref().pid, me.as_ref().pid)
    };
    tie(k, me, p, my_pid, pid);
    k.start(p);
    Ok(pid)
}

/// The kernel's end notice: `p` ends for `reason`. Its name is freed, it
/// leaves its groups, its monitors go, each watcher gets one DOWN, and each
/// linked peer an exit signal (OTP: "when a process terminates, it sends an
/// exit signal to all linked processes").
fn on_end<I: 'static, O: 'static>(k: &mut Kernel<I, O>, p: PPtr<I, O>, reason: Reason) {
    // SAFETY: p is live.
    let pid = unsafe { p.as_ref().pid };
    let table = table(k);
    let Some(entry) = table.entries.remove(&pid) else {
        return;
    };
    let traps = table.untie(pid, &entry);
    if k.has_remote() {
        // (Its name and groups, in those of every core.)
        if let Some(name) = entry.name()
            && let Some(names) = k.extensions.get::<registry::SharedNames>()
        {
            names.free(name, pid);
        }
        if let Some(groups) = k.extensions.get::<groups::SharedGroups>() {
            for group in entry.groups() {
                groups.leave(group, pid);
            }
        }
        // (Ties with processes of other kernels: theirs end their halves.)
        let peers = entry.watchers.iter().map(|&(_, w)| w);
        let peers = peers.chain(entry.monitors.iter().map(|&(_, t)| t));
        let peers = peers.chain(entry.links.iter().copied());
        elsewhere::tell(k, pid, peers, &reason);
    }
    let mut reason = Shared::new(reason, entry.watchers.len() + entry.links.len());
    if !entry.watchers.is_empty() {
        monitors::ended(k, pid, Some(p), &entry, &mut reason);
    }
    links::ended(k, pid, Some(p), &entry, traps, &mut reason);
    entry.discard();
}

/// An ended process's reason, handed to the notices its end sends: a copy to
/// each but the last, which takes it (a custom reason's copy counts a
/// reference up, its drop down).
pub(crate) struct Shared {
    reason: Option<Reason>,
    /// The notices that may still take it.
    left: usize,
}

impl Shared {
    /// `reason`, for at most `notices` notices.
    pub(crate) fn new(reason: Reason, notices: usize) -> Self {
        Shared {
            reason: Some(reason),
            left: notices,
        }
    }

    /// The reason, to look at.
    pub(crate) fn get(&self) -> &Reason {
        self.reason.as_ref().expect("taken by the last notice only")
    }

    /// The reason for one notice: the last one takes it. (Inlined, the copy
    /// for the others out of line: most ends send one notice.)
    #[inline]
    pub(crate) fn take(&mut self) -> Reason {
        self.left -= 1;
        match self.left {
            0 => self.reason.take().expect("taken by the last notice only"),
            _ => self.copy(),
        }
    }

    /// A copy of the reason, for a notice but the last.
    #[inline(never)]
    fn copy(&self) -> Reason {
        self.get().clone()
    }
}
