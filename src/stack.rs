//! The stack pool: process stacks carved out of large slabs, reused, so that the
//! steady state spawns without mapping memory and a million stacks need only a few
//! hundred memory mappings.
//!
//! Linux counts memory mappings per process (`vm.max_map_count`, 65530 by
//! default). corosensei's default stack is a mapping of its own whose guard page is
//! made with `mprotect`, which splits it in two: two mappings per stack, so about
//! 32,000 live processes at most. Here a slab holds many stacks in one mapping, and
//! each stack's guard page is installed with `madvise(MADV_GUARD_INSTALL)` (Linux
//! 6.13 and later), which does not split the mapping. On older kernels the guard
//! pages fall back to `mprotect`: correct, but two mappings per stack again.
//!
//! Layout of a slot, low addresses first: one guard page, then the stack, which
//! grows down from the slot's top. A stack overflow runs into the guard page below
//! it, never into the neighbouring stack.

use std::collections::BTreeMap;
use std::io;
use std::ptr;
use std::sync::OnceLock;

use corosensei::stack::{Stack, StackPointer};

/// `madvise` advice that installs guard pages without splitting the mapping
/// (Linux 6.13+, `include/uapi/asm-generic/mman-common.h`).
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// Aim for slabs of about this size (address space, not memory).
const SLAB_BYTES: usize = 64 << 20;

/// A process stack: one slot of a slab. It does not own its memory; the pool that
/// made it does, and outlives it.
pub(crate) struct ProcStack {
    base: StackPointer,
    limit: StackPointer,
}

// SAFETY: `base` is the top of a mapped, writable region of `base - limit` bytes,
// both page aligned (so aligned to STACK_ALIGNMENT); `limit` is the bottom of the
// slot including its guard page. The memory stays mapped, and is used by no one
// else, as long as the pool that made this stack lives, which outlives every
// coroutine of its kernel.
impl ProcStack {
    /// The guard page below the stack: its first and one-past-last address.
    pub(crate) fn guard(&self) -> (usize, usize) {
        (self.limit.get(), self.limit.get() + page_size())
    }
}

unsafe impl Stack for ProcStack {
    fn base(&self) -> StackPointer {
        self.base
    }

    fn limit(&self) -> StackPointer {
        self.limit
    }
}

struct Slab {
    addr: *mut libc::c_void,
    len: usize,
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
}

impl Default for StackPool {
    fn default() -> Self {
        StackPool {
            classes: BTreeMap::new(),
            page: page_size(),
            guard_advice: None,
        }
    }
}

impl StackPool {
    /// A stack of at least `size` usable bytes; returns it with its size class.
    pub(crate) fn get(&mut self, size: usize) -> io::Result<(ProcStack, usize)> {
        let page = self.page;
        let size = size.max(page).div_ceil(page) * page;
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
            class.slabs.push(Slab { addr, len });
            class.next = addr as usize;
            class.remaining = count;
        }
        let bottom = class.next;
        class.next += slot;
        class.remaining -= 1;
        let guard_advice = &mut self.guard_advice;
        install_guard(guard_advice, bottom, page)?;
        let stack = ProcStack {
            base: StackPointer::new(bottom + slot).expect("mapped address is not null"),
            limit: StackPointer::new(bottom).expect("mapped address is not null"),
        };
        Ok((stack, size))
    }

    /// Returns a stack for reuse.
    pub(crate) fn put(&mut self, size: usize, stack: ProcStack) {
        self.classes.entry(size).or_default().free.push(stack);
    }

    /// How many memory mappings the pool holds (a slab is one mapping when guards
    /// are installed with `MADV_GUARD_INSTALL`).
    #[allow(dead_code)]
    pub(crate) fn slabs(&self) -> usize {
        self.classes.values().map(|c| c.slabs.len()).sum()
    }
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
        if err.raw_os_error() != Some(libc::EINVAL) || *advice_works == Some(true) {
            return Err(err);
        }
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
            for slab in &class.slabs {
                // SAFETY: we mapped it; every stack carved from it is gone (the pool
                // is dropped after the coroutines that used them).
                unsafe { libc::munmap(slab.addr, slab.len) };
            }
        }
    }
}

pub(crate) fn page_size() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if p > 0 { p as usize } else { 4096 }
    })
}
