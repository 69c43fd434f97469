//! The Linux stack pool: process stacks carved out of large slabs, reused, so
//! that the steady state spawns without mapping memory and a million stacks need
//! only a few hundred memory mappings.
//!
//! Linux counts memory mappings per process (`vm.max_map_count`, 65530 by
//! default). corosensei's default stack is a mapping of its own whose guard page is
//! made with `mprotect`, which splits it in two: two mappings per stack, so about
//! 32,000 live processes at most. Here a slab holds many stacks in one mapping, and
//! each stack's guard page is installed with `madvise(MADV_GUARD_INSTALL)` (Linux
//! 6.13 and later), which does not split the mapping. On older kernels (where the
//! advice is unknown: `EINVAL`) the guard pages fall back to `mprotect`: correct,
//! but each guard page splits its slab, two mappings per stack again, so about
//! 32,000 live stackful processes under the default limit; past it `mprotect`
//! fails (`ENOMEM`), and so does the process that asked for the stack at its
//! first run (a spawn fails with [`SpawnError::Stack`] only when a stack size's
//! first slab cannot be mapped).
//!
//! [`SpawnError::Stack`]: crate::SpawnError::Stack

use std::collections::BTreeMap;
use std::io;
use std::ptr;

use super::{ProcStack, page_size, rounded, too_large};

/// `madvise` advice that installs guard pages without splitting the mapping
/// (Linux 6.13+, `include/uapi/asm-generic/mman-common.h`).
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// `madvise` advice that faults pages in, writable (Linux 5.14+).
const MADV_POPULATE_WRITE: libc::c_int = 23;

/// `process_madvise`'s pidfd for the calling process (Linux 6.14+,
/// `PIDFD_SELF_THREAD_GROUP`).
const PIDFD_SELF: libc::c_int = -10001;

/// Stacks carved, guarded and populated together.
const BATCH: usize = 64;

/// Aim for slabs of about this size (address space, not memory).
const SLAB_BYTES: usize = 64 << 20;

struct Slab {
    addr: *mut libc::c_void,
    len: usize,
    /// A stack of it was abandoned by a coroutine that can never finish
    /// unwinding: never unmapped (its frames may hold pinned values).
    abandoned: bool,
}

/// One size of stack: its slabs, the free stacks, and the uncarved rest of the
/// newest slab.
#[derive(Default)]
struct SizeClass {
    free: Vec<ProcStack>,
    slabs: Vec<Slab>,
    /// Next uncarved slot of the newest slab, and how many slots remain.
    next: usize,
    remaining: usize,
}

/// Free stacks by size, and the slabs they come from.
pub(crate) struct StackPool {
    classes: BTreeMap<usize, SizeClass>,
    page: usize,
    /// Whether `MADV_GUARD_INSTALL` works here; learnt at the first guard.
    guard_advice: Option<bool>,
    /// Whether `process_madvise` on this process works for guards (Linux 6.14+),
    /// and for populating pages; each is dropped at its first failure.
    batch_guards: bool,
    batch_populate: bool,
}

impl Default for StackPool {
    fn default() -> Self {
        StackPool {
            classes: BTreeMap::new(),
            page: page_size(),
            guard_advice: None,
            batch_guards: true,
            batch_populate: true,
        }
    }
}

impl StackPool {
    /// A stack of at least `size` usable bytes; returns it with its size class.
    pub(crate) fn get(&mut self, size: usize) -> io::Result<(ProcStack, usize)> {
        let page = self.page;
        let Some(size) = rounded(size, page) else {
            return Err(too_large(size));
        };
        let class = self.classes.entry(size).or_default();
        if let Some(stack) = class.free.pop() {
            return Ok((stack, size));
        }
        let slot = size + page;
        if class.remaining == 0 {
            let count = (SLAB_BYTES / slot).max(1);
            let len = count * slot;
            // SAFETY: a fresh anonymous private mapping; no existing memory is touched.
            let addr = unsafe {
                libc::mmap(
                    ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                    -1,
                    0,
                )
            };
            if addr == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            class.slabs.push(Slab {
                addr,
                len,
                abandoned: false,
            });
            class.next = addr as usize;
            class.remaining = count;
        }
        // Carve a batch: one system call installs all their guard pages, another
        // faults in all their top pages (which the first resume writes anyway).
        let n = class.remaining.min(BATCH);
        let first = class.next;
        class.next += n * slot;
        class.remaining -= n;
        let guards: Vec<libc::iovec> = (0..n)
            .map(|i| libc::iovec {
                iov_base: (first + i * slot) as *mut libc::c_void,
                iov_len: page,
            })
            .collect();
        if !self.batch_guards || !advise_all(&guards, MADV_GUARD_INSTALL) {
            self.batch_guards = false;
            for g in &guards {
                install_guard(&mut self.guard_advice, g.iov_base as usize, page)?;
            }
        }
        if self.batch_populate {
            let tops: Vec<libc::iovec> = (0..n)
                .map(|i| libc::iovec {
                    iov_base: (first + (i + 1) * slot - page) as *mut libc::c_void,
                    iov_len: page,
                })
                .collect();
            // Only a head start: where the kernel cannot, first touches fault them in.
            self.batch_populate = advise_all(&tops, MADV_POPULATE_WRITE);
        }
        let class = self.classes.get_mut(&size).expect("the class exists");
        // Lowest address last, so that it is used first.
        class.free.extend(
            (1..n)
                .rev()
                .map(|i| ProcStack::in_slot(first + i * slot, slot)),
        );
        Ok((ProcStack::in_slot(first, slot), size))
    }

    /// Never reuses nor unmaps the stack whose guard page starts at `guard`, nor
    /// the rest of its slab.
    pub(crate) fn abandon(&mut self, guard: usize) {
        for class in self.classes.values_mut() {
            for slab in &mut class.slabs {
                let start = slab.addr as usize;
                if (start..start + slab.len).contains(&guard) {
                    slab.abandoned = true;
                }
            }
        }
    }

    /// Returns a stack for reuse.
    pub(crate) fn put(&mut self, size: usize, stack: ProcStack) {
        self.classes.entry(size).or_default().free.push(stack);
    }
}

/// Applies `advice` to every range with one `process_madvise` call; false if the
/// kernel did not do all of it.
fn advise_all(ranges: &[libc::iovec], advice: libc::c_int) -> bool {
    let total: usize = ranges.iter().map(|r| r.iov_len).sum();
    // SAFETY: every range lies in a slab we mapped and that no stack uses yet.
    let done = unsafe {
        libc::syscall(
            libc::SYS_process_madvise,
            PIDFD_SELF,
            ranges.as_ptr(),
            ranges.len(),
            advice,
            0,
        )
    };
    done >= 0 && done as usize == total
}

fn install_guard(advice_works: &mut Option<bool>, addr: usize, page: usize) -> io::Result<()> {
    if *advice_works != Some(false) {
        // SAFETY: addr..addr+page lies in a slab we mapped; no stack uses it.
        let r = unsafe { libc::madvise(addr as *mut libc::c_void, page, MADV_GUARD_INSTALL) };
        if r == 0 {
            *advice_works = Some(true);
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if *advice_works == Some(true) {
            return Err(err);
        }
        // Its first use failed: a kernel older than 6.13 (`EINVAL`, the advice is
        // unknown), or one that refuses it some other way (a sandbox). `mprotect`
        // it is, for good.
        *advice_works = Some(false);
    }
    // SAFETY: as above.
    if unsafe { libc::mprotect(addr as *mut libc::c_void, page, libc::PROT_NONE) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl Drop for StackPool {
    fn drop(&mut self) {
        for class in self.classes.values() {
            for slab in class.slabs.iter().filter(|s| !s.abandoned) {
                // SAFETY: we mapped it; every stack carved from it is gone (the pool
                // is dropped after the coroutines that used them).
                unsafe { libc::munmap(slab.addr, slab.len) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::stackful::stack::tests::permissions_at;

    /// Where `MADV_GUARD_INSTALL` is unknown (Linux before 6.13), the guard pages
    /// are made with `mprotect`: the pool learns it at its first guard, here
    /// forced.
    #[test]
    #[cfg_attr(miri, ignore = "maps memory and reads /proc/self/maps")]
    fn without_guard_advice_the_guard_pages_are_mprotected() {
        let mut pool = StackPool::default();
        pool.guard_advice = Some(false);
        pool.batch_guards = false;
        let (s, size) = pool.get(1).unwrap();
        let (guard, stack) = s.guard();
        assert_eq!(permissions_at(guard).as_deref(), Some("---p"));
        assert_eq!(permissions_at(stack).as_deref(), Some("rw-p"));
        pool.put(size, s);
    }
}
