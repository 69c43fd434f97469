//! The portable stack pool (unix systems other than Linux, or Linux with
//! `--cfg chronoflow_portable_stacks`): each stack is a mapping of its own, whose
//! lowest page `mprotect` makes a guard page. Freed stacks are kept for the next
//! spawns, as on Linux; the mappings are unmapped with the pool.
//!
//! Two mappings per stack (the guard page splits it): where the system limits the
//! mappings of a process, that limits the live stackful processes (on Linux, about
//! 32,000 under the default `vm.max_map_count` of 65530).

use std::collections::BTreeMap;
use std::io;
use std::ptr;

use super::{ProcStack, page_size, rounded, too_large};

/// One stack's mapping, guard page included.
struct Mapping {
    addr: *mut libc::c_void,
    len: usize,
    /// Its stack was abandoned by a coroutine that can never finish unwinding:
    /// never unmapped (its frames may hold pinned values).
    abandoned: bool,
}

/// Free stacks by size, and every mapping made.
pub(crate) struct StackPool {
    free: BTreeMap<usize, Vec<ProcStack>>,
    mappings: Vec<Mapping>,
    page: usize,
}

impl Default for StackPool {
    fn default() -> Self {
        StackPool {
            free: BTreeMap::new(),
            mappings: Vec::new(),
            page: page_size(),
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
        if let Some(stack) = self.free.get_mut(&size).and_then(Vec::pop) {
            return Ok((stack, size));
        }
        let slot = size + page;
        // SAFETY: a fresh anonymous private mapping; no existing memory is touched.
        let addr = unsafe {
            libc::mmap(
                ptr::null_mut(),
                slot,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the first page of the mapping just made; no stack uses it.
        if unsafe { libc::mprotect(addr, page, libc::PROT_NONE) } != 0 {
            let err = io::Error::last_os_error();
            // SAFETY: we mapped it, and nothing uses it.
            unsafe { libc::munmap(addr, slot) };
            return Err(err);
        }
        self.mappings.push(Mapping {
            addr,
            len: slot,
            abandoned: false,
        });
        Ok((ProcStack::in_slot(addr as usize, slot), size))
    }

    /// Never reuses nor unmaps the stack whose guard page starts at `guard`.
    pub(crate) fn abandon(&mut self, guard: usize) {
        if let Some(m) = self.mappings.iter_mut().find(|m| m.addr as usize == guard) {
            m.abandoned = true;
        }
    }

    /// Returns a stack for reuse.
    pub(crate) fn put(&mut self, size: usize, stack: ProcStack) {
        self.free.entry(size).or_default().push(stack);
    }
}

impl Drop for StackPool {
    fn drop(&mut self) {
        for m in self.mappings.iter().filter(|m| !m.abandoned) {
            // SAFETY: we mapped it; every stack of it is gone (the pool is dropped
            // after the coroutines that used them).
            unsafe { libc::munmap(m.addr, m.len) };
        }
    }
}
