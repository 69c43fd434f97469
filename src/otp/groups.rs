//! Process groups (OTP's `pg`: join, leave, members, and a send to every
//! member): a group is a name and the processes that joined it, in the order
//! they joined; a process leaves its groups when it ends. A process is in a
//! group once, however often it joins (OTP's `pg` counts joins instead).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use crate::kernel::Kernel;
use crate::otp::ctx::{bool_of, pids_of};
use crate::otp::record::{Answer, Ask};
use crate::otp::{alive, table, watch};
use crate::signal::Pid;

/// The groups of a runtime's kernels: one set that every core sees (kept, a
/// clone each, in each kernel's extensions; none for a kernel of its own).
/// Each kernel's table still holds the groups of its own processes, so that
/// a process's end takes it out of them where it ends.
#[derive(Clone, Default)]
pub(crate) struct SharedGroups(pub(crate) Arc<RwLock<BTreeMap<Arc<str>, Vec<Pid>>>>);

impl SharedGroups {
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<Arc<str>, Vec<Pid>>> {
        self.0.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes `pid` out of `group`: whether it was in.
    pub(crate) fn leave(&self, group: &str, pid: Pid) -> bool {
        let mut groups = self.write();
        let Some(members) = groups.get_mut(group) else {
            return false;
        };
        let Some(i) = members.iter().position(|m| *m == pid) else {
            return false;
        };
        members.remove(i);
        if members.is_empty() {
            groups.remove(group);
        }
        true
    }
}

/// The runtime's groups, if this kernel is one of a runtime's.
#[inline]
fn shared<I: 'static, O: 'static>(k: &Kernel<I, O>) -> Option<SharedGroups> {
    if !k.has_remote() {
        return None;
    }
    k.extensions.get::<SharedGroups>().cloned()
}

/// `pid` joins `group`: whether it was alive (a process that is not alive
/// joins nothing). Joining twice is joining once.
pub(crate) fn join<I: 'static, O: 'static>(k: &mut Kernel<I, O>, group: &str, pid: Pid) -> bool {
    let Some(p) = alive(k, pid) else {
        return false;
    };
    table(k).join(group, pid);
    if let Some(groups) = shared(k) {
        let mut groups = groups.write();
        let members = groups.entry(group.into()).or_default();
        if !members.contains(&pid) {
            members.push(pid);
        }
    }
    watch(p);
    true
}

/// `pid` leaves `group`: whether it was a member.
pub(crate) fn leave<I: 'static, O: 'static>(k: &mut Kernel<I, O>, group: &str, pid: Pid) -> bool {
    let Some(groups) = shared(k) else {
        return table(k).leave(group, pid);
    };
    let was = groups.leave(group, pid);
    if k.elsewhere(pid) {
        // Its core takes it out of its table's group too.
        let group: Arc<str> = group.into();
        k.run_at(
            pid,
            Box::new(move |k| {
                table(k).leave(&group, pid);
            }),
        );
    } else {
        table(k).leave(group, pid);
    }
    was
}

/// The members of `group`, in the order they joined.
pub(crate) fn members<I: 'static, O: 'static>(k: &mut Kernel<I, O>, group: &str) -> Vec<Pid> {
    if let Some(groups) = shared(k) {
        let groups = groups.0.read().unwrap_or_else(|e| e.into_inner());
        return groups.get(group).cloned().unwrap_or_default();
    }
    table(k).groups.get(group).cloned().unwrap_or_default()
}

impl<I: 'static, O: 'static> crate::Ctx<I, O> {
    /// `pid` joins process group `group` (OTP's `pg:join/2`): whether it is
    /// alive (one that is not joins nothing). It leaves when it ends.
    pub fn join_group(&mut self, group: &str, pid: Pid) -> bool {
        self.journaled(
            || Ask::Join {
                group: group.to_string(),
                pid,
            },
            |c| join(c.k(), group, pid),
            |&b| Answer::Bool(b),
            bool_of,
        )
    }

    /// `pid` leaves `group` (OTP's `pg:leave/2`): whether it was a member.
    pub fn leave_group(&mut self, group: &str, pid: Pid) -> bool {
        self.journaled(
            || Ask::Leave {
                group: group.to_string(),
                pid,
            },
            |c| leave(c.k(), group, pid),
            |&b| Answer::Bool(b),
            bool_of,
        )
    }

    /// The members of `group`, in the order they joined (OTP's
    /// `pg:get_members/1`).
    pub fn members(&mut self, group: &str) -> Vec<Pid> {
        self.journaled(
            || Ask::Members {
                group: group.to_string(),
            },
            |c| members(c.k(), group),
            |pids| Answer::Pids(pids.clone()),
            pids_of,
        )
    }

    /// Sends a copy of `msg` to every member of `group` (as
    /// [`send_to`](Self::send_to) sends, in the order they joined): how many.
    pub fn send_group(&mut self, group: &str, msg: O) -> usize
    where
        O: Clone,
    {
        let to = self.members(group);
        for &pid in &to {
            self.send_to(pid, msg.clone());
        }
        to.len()
    }
}

impl<M: 'static> crate::SimpleScheduler<M> {
    /// `pid` joins `group` (see [`Ctx::join_group`](crate::Ctx::join_group)).
    pub fn join_group(&mut self, group: &str, pid: Pid) -> bool {
        join(self.kernel_mut(), group, pid)
    }

    /// `pid` leaves `group`: whether it was a member.
    pub fn leave_group(&mut self, group: &str, pid: Pid) -> bool {
        leave(self.kernel_mut(), group, pid)
    }

    /// The members of `group`, in the order they joined.
    pub fn members(&mut self, group: &str) -> Vec<Pid> {
        members(self.kernel_mut(), group)
    }

    /// Sends a copy of `msg` to every member of `group` from outside: the
    /// members whose inbox refused it (full, say), with the error.
    pub fn send_group(&mut self, group: &str, msg: M) -> Vec<crate::SendError<M>>
    where
        M: Clone,
    {
        self.members(group)
            .into_iter()
            .filter_map(|pid| self.send(pid, msg.clone()).err())
            .collect()
    }
}

#[cfg(feature = "stackless")]
impl<I: 'static, O: 'static> crate::StacklessCtx<I, O> {
    /// `pid` joins `group` (see [`Ctx::join_group`](crate::Ctx::join_group)).
    pub fn join_group(&self, group: &str, pid: Pid) -> bool {
        let b = self.enter();
        Self::spend(self.p(&b));
        join(self.k(&b), group, pid)
    }

    /// `pid` leaves `group`: whether it was a member.
    pub fn leave_group(&self, group: &str, pid: Pid) -> bool {
        let b = self.enter();
        Self::spend(self.p(&b));
        leave(self.k(&b), group, pid)
    }

    /// The members of `group`, in the order they joined. (To send to them all,
    /// `send_to!` each.)
    pub fn members(&self, group: &str) -> Vec<Pid> {
        let b = self.enter();
        Self::spend(self.p(&b));
        members(self.k(&b), group)
    }
}
