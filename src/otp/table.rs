//! The toolkit's tables as plain data: who is linked to whom, who monitors
//! whom, who traps exits, names and groups. Pure: no process is touched
//! here. The live calls (`links.rs`, `monitors.rs`, ...) check liveness and
//! tell processes; a durable scheduler's recovery folds its journal through
//! the same operations, so that the tables it rebuilds are the ones the live
//! calls made.

use std::collections::BTreeMap;
use std::sync::Arc;

use std::collections::hash_map::Entry::{Occupied, Vacant};

use smallvec::{SmallVec, smallvec};

use crate::kernel::IdMap;
use crate::otp::registry::RegisterError;
use crate::signal::Pid;

/// What the toolkit keeps of one process (only of processes that use it).
/// Small (an entry is made, moved and dropped for each process spawned
/// linked or monitored): what few processes have, a name or groups, is boxed.
#[derive(Default)]
pub(crate) struct Entry {
    /// Its links, in the order they were made.
    pub(crate) links: SmallVec<[Pid; 2]>,
    /// It traps exits: exit signals come to it as [`Mail::Exit`](crate::Mail::Exit).
    pub(crate) trap_exit: bool,
    /// Monitors it holds: (reference, watched pid).
    pub(crate) monitors: SmallVec<[(u64, Pid); 1]>,
    /// Monitors on it: (reference, watcher), in the order they were set.
    pub(crate) watchers: SmallVec<[(u64, Pid); 1]>,
    /// The process that started it linked (`spawn_link`): its parent, as
    /// OTP's `proc_lib` knows it (a server stops on its parent's EXIT).
    pub(crate) parent: Option<Pid>,
    /// It runs a server's loop: a scheduler's shutdown asks it to stop (its
    /// `terminate` runs) rather than signal it.
    pub(crate) server: bool,
    /// Its name and groups, once it has either.
    names: Option<Box<Names>>,
}

/// A process's registered name and groups.
#[derive(Default)]
struct Names {
    /// Its registered name.
    name: Option<Arc<str>>,
    /// The groups it is in, in the order it joined them.
    groups: SmallVec<[Arc<str>; 1]>,
}

impl Entry {
    /// Its registered name.
    pub(crate) fn name(&self) -> Option<&Arc<str>> {
        self.names.as_ref()?.name.as_ref()
    }

    /// The groups it is in, in the order it joined them.
    pub(crate) fn groups(&self) -> &[Arc<str>] {
        self.names.as_ref().map_or(&[], |n| &n.groups)
    }

    /// Drops it; without its drop glue (a call) when it holds nothing on the
    /// heap, as most entries do: lists within their inline room (of `Copy`
    /// items), no name, no group.
    #[inline]
    pub(crate) fn discard(self) {
        if self.links.spilled()
            || self.monitors.spilled()
            || self.watchers.spilled()
            || self.names.is_some()
        {
            drop(self);
        } else {
            // (Nothing to free, nothing to drop: its lists' items need none.)
            const { assert!(!std::mem::needs_drop::<Pid>() && !std::mem::needs_drop::<(u64, Pid)>()) };
            std::mem::forget(self);
        }
    }

    /// Its name and groups, to change.
    fn names(&mut self) -> &mut Names {
        self.names.get_or_insert_with(Box::default)
    }
}

/// The toolkit's tables, one per kernel (in its extensions).
#[derive(Default)]
pub(crate) struct Table {
    /// By pid; looked up, never iterated (the order of what a process's end
    /// does comes from each entry's own lists).
    pub(crate) entries: IdMap<Pid, Entry>,
    /// The last monitor reference or call tag handed out (unique in the kernel).
    pub(crate) next_ref: u64,
    /// Registered names (ordered: listed by name).
    pub(crate) names: BTreeMap<Arc<str>, Pid>,
    /// Process groups and their members, in the order they joined.
    pub(crate) groups: BTreeMap<Arc<str>, Vec<Pid>>,
}

impl Table {
    /// A fresh reference.
    pub(crate) fn new_ref(&mut self) -> u64 {
        self.next_ref += 1;
        self.next_ref
    }

    /// Whether `pid` traps exits.
    pub(crate) fn traps(&self, pid: Pid) -> bool {
        self.entries.get(&pid).is_some_and(|e| e.trap_exit)
    }

    /// Sets whether `pid` traps exits: the previous setting.
    pub(crate) fn set_trap(&mut self, pid: Pid, on: bool) -> bool {
        std::mem::replace(&mut self.entries.entry(pid).or_default().trap_exit, on)
    }

    /// `child` was started linked by `parent` (see [`Entry::parent`]).
    pub(crate) fn set_parent(&mut self, child: Pid, parent: Pid) {
        self.entries.entry(child).or_default().parent = Some(parent);
    }

    /// The process that started `pid` linked, if any.
    pub(crate) fn parent_of(&self, pid: Pid) -> Option<Pid> {
        self.entries.get(&pid).and_then(|e| e.parent)
    }

    /// `pid` runs a server's loop (see [`Entry::server`]).
    pub(crate) fn set_server(&mut self, pid: Pid) {
        self.entries.entry(pid).or_default().server = true;
    }

    /// Whether `pid` runs a server's loop.
    pub(crate) fn is_server(&self, pid: Pid) -> bool {
        self.entries.get(&pid).is_some_and(|e| e.server)
    }

    /// Links `a` and `b` (once, however often).
    pub(crate) fn link(&mut self, a: Pid, b: Pid) {
        for (x, y) in [(a, b), (b, a)] {
            let e = self.entries.entry(x).or_default();
            if !e.links.contains(&y) {
                e.links.push(y);
            }
        }
    }

    /// `parent` started `child` linked: as [`link`](Self::link)`(parent,
    /// child)` then [`set_parent`](Self::set_parent)`(child, parent)`, with
    /// one lookup of each entry.
    #[inline(always)]
    pub(crate) fn link_child(&mut self, parent: Pid, child: Pid) {
        let e = self.entries.entry(parent).or_default();
        if !e.links.contains(&child) {
            e.links.push(child);
        }
        match self.entries.entry(child) {
            // (A new process has no entry yet: made whole, not pushed into.)
            Vacant(v) => {
                v.insert(Entry {
                    links: smallvec![parent],
                    parent: Some(parent),
                    ..Entry::default()
                });
            }
            Occupied(o) => {
                let e = o.into_mut();
                if !e.links.contains(&parent) {
                    e.links.push(parent);
                }
                e.parent = Some(parent);
            }
        }
    }

    /// Removes the link between `a` and `b`, if any.
    pub(crate) fn unlink(&mut self, a: Pid, b: Pid) {
        for (x, y) in [(a, b), (b, a)] {
            if let Some(e) = self.entries.get_mut(&x) {
                e.links.retain(|p| *p != y);
            }
        }
    }

    /// `watcher` monitors `target` with reference `r`.
    #[inline(always)]
    pub(crate) fn add_monitor(&mut self, r: u64, watcher: Pid, target: Pid) {
        self.next_ref = self.next_ref.max(r);
        self.entries
            .entry(watcher)
            .or_default()
            .monitors
            .push((r, target));
        match self.entries.entry(target) {
            // (A process spawned monitored has no entry yet: made whole.)
            Vacant(v) => {
                v.insert(Entry {
                    watchers: smallvec![(r, watcher)],
                    ..Entry::default()
                });
            }
            Occupied(o) => o.into_mut().watchers.push((r, watcher)),
        }
    }

    /// `pid` ended: its name is freed, and it leaves its groups. (Out of line:
    /// few processes have either.)
    #[cold]
    #[inline(never)]
    fn unname(&mut self, pid: Pid, names: &Names) {
        if let Some(name) = &names.name {
            self.names.remove(name);
        }
        for group in &names.groups {
            if let Some(members) = self.groups.get_mut(group) {
                members.retain(|m| *m != pid);
                if members.is_empty() {
                    self.groups.remove(group);
                }
            }
        }
    }

    /// Drops `pid`'s entry if it says nothing (no tie, flag, name or group):
    /// the half of ties that another kernel's process had here, once they
    /// are all gone.
    pub(crate) fn forget_if_unused(&mut self, pid: Pid) {
        if let Some(e) = self.entries.get(&pid)
            && e.links.is_empty()
            && e.monitors.is_empty()
            && e.watchers.is_empty()
            && e.parent.is_none()
            && !e.trap_exit
            && !e.server
            && e.names.is_none()
        {
            self.entries.remove(&pid);
        }
    }

    /// `watcher` cancels its monitor `r`: whether it was active.
    pub(crate) fn demonitor(&mut self, watcher: Pid, r: u64) -> bool {
        self.demonitor_target(watcher, r).is_some()
    }

    /// `watcher` cancels its monitor `r`: what it watched, if it was active.
    pub(crate) fn demonitor_target(&mut self, watcher: Pid, r: u64) -> Option<Pid> {
        let e = self.entries.get_mut(&watcher)?;
        let i = e.monitors.iter().position(|(x, _)| *x == r)?;
        let (_, target) = remove_at(&mut e.monitors, i);
        if let Some(w) = self.entries.get_mut(&target) {
            w.watchers.retain(|(x, _)| *x != r);
        }
        Some(target)
    }

    /// Registers `name` for `pid` (alive: the caller checked).
    pub(crate) fn register(&mut self, name: &str, pid: Pid) -> Result<(), RegisterError> {
        if let Some(&owner) = self.names.get(name) {
            return Err(RegisterError::NameTaken(name.to_string(), owner));
        }
        if let Some(own) = self.entries.get(&pid).and_then(|e| e.name()) {
            return Err(RegisterError::AlreadyNamed(pid, own.to_string()));
        }
        let name: Arc<str> = name.into();
        self.names.insert(name.clone(), pid);
        self.entries.entry(pid).or_default().names().name = Some(name);
        Ok(())
    }

    /// Frees `name`: the process it named.
    pub(crate) fn unregister(&mut self, name: &str) -> Option<Pid> {
        let pid = self.names.remove(name)?;
        if let Some(names) = self.entries.get_mut(&pid).and_then(|e| e.names.as_mut()) {
            names.name = None;
        }
        Some(pid)
    }

    /// `pid` (alive: the caller checked) joins `group`, once.
    pub(crate) fn join(&mut self, group: &str, pid: Pid) {
        let name = match self.groups.get_key_value(group) {
            Some((name, _)) => name.clone(),
            None => group.into(),
        };
        let members = self.groups.entry(name.clone()).or_default();
        if members.contains(&pid) {
            return;
        }
        members.push(pid);
        self.entries
            .entry(pid)
            .or_default()
            .names()
            .groups
            .push(name);
    }

    /// `pid` leaves `group`: whether it was a member.
    pub(crate) fn leave(&mut self, group: &str, pid: Pid) -> bool {
        let Some(members) = self.groups.get_mut(group) else {
            return false;
        };
        let Some(i) = members.iter().position(|m| *m == pid) else {
            return false;
        };
        members.remove(i);
        if members.is_empty() {
            self.groups.remove(group);
        }
        if let Some(names) = self.entries.get_mut(&pid).and_then(|e| e.names.as_mut()) {
            names.groups.retain(|g| &**g != group);
        }
        true
    }

    /// `pid` ended: its entry, taken out with every trace of it (its name, its
    /// groups, its monitors, the monitors on it and its links, from the other
    /// side too). What its end tells others comes from the entry's lists.
    pub(crate) fn end(&mut self, pid: Pid) -> Option<Entry> {
        self.end_with_traps(pid).map(|(entry, _)| entry)
    }

    /// [`end`](Self::end), with whether each linked peer traps exits (as
    /// [`traps`](Self::traps) tells it, read while each peer's entry is looked
    /// up to lose its link): bit `i` for `links[i]`, for the first 64 links
    /// (ask [`traps`](Self::traps) for the others).
    pub(crate) fn end_with_traps(&mut self, pid: Pid) -> Option<(Entry, u64)> {
        let entry = self.entries.remove(&pid)?;
        let traps = self.untie(pid, &entry);
        Some((entry, traps))
    }

    /// The rest of [`end_with_traps`](Self::end_with_traps), `entry` (`pid`'s)
    /// taken out of the table already: every trace of `pid` elsewhere goes;
    /// whether each linked peer traps exits. (Apart, so that the end notice
    /// moves the entry once, out of the map into its own frame.)
    #[inline(always)]
    pub(crate) fn untie(&mut self, pid: Pid, entry: &Entry) -> u64 {
        if let Some(names) = &entry.names {
            self.unname(pid, names);
        }
        // (Each reference and each link is in a list once: the first match
        // is the only one.)
        for &(r, target) in &entry.monitors {
            if let Some(e) = self.entries.get_mut(&target) {
                remove_first(&mut e.watchers, |(x, _)| *x == r);
            }
        }
        for &(r, watcher) in &entry.watchers {
            if let Some(e) = self.entries.get_mut(&watcher) {
                remove_first(&mut e.monitors, |(x, _)| *x == r);
            }
        }
        let mut traps = 0u64;
        for (i, &peer) in entry.links.iter().enumerate() {
            if let Some(e) = self.entries.get_mut(&peer) {
                remove_first(&mut e.links, |p| *p == pid);
                if e.trap_exit && i < 64 {
                    traps |= 1 << i;
                }
            }
        }
        traps
    }
}

/// Removes the first item of `list` that `is` matches, if any, keeping the
/// order of the rest (what `retain` does to a list that holds it once).
#[inline]
fn remove_first<A: smallvec::Array>(list: &mut SmallVec<A>, is: impl Fn(&A::Item) -> bool) {
    if let Some(i) = list.iter().position(is) {
        remove_at(list, i);
    }
}

/// Removes the item at `i` of `list` (there is one), keeping the order of the
/// rest. (The last one, most often (a child's tie that was its parent's
/// newest, a call's monitor): popped, with no shift of the rest, which calls
/// memmove even for nothing.)
#[inline]
fn remove_at<A: smallvec::Array>(list: &mut SmallVec<A>, i: usize) -> A::Item {
    if i + 1 == list.len() {
        list.pop().expect("an item at i")
    } else {
        list.remove(i)
    }
}
