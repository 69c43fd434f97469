//! The stack pool: process stacks, reused, each with a guard page below it.
//!
//! On Linux ([`slabs`]) stacks are carved out of large slabs, so that the steady
//! state spawns without mapping memory and a million stacks need only a few
//! hundred memory mappings (with `MADV_GUARD_INSTALL`, Linux 6.13 and later).
//! On other unix systems ([`portable`]) each stack is a mapping of its own whose
//! lowest page is made a guard page with `mprotect`: portable, but two mappings
//! per stack. Both keep the freed stacks for the next spawns.
//!
//! The portable pool builds on Linux too with `--cfg chronoflow_portable_stacks`
//! (`RUSTFLAGS`), so that it can be checked and tested here.
//!
//! Layout of a slot, low addresses first: one guard page, then the stack, which
//! grows down from the slot's top. A stack overflow runs into the guard page below
//! it, never into the neighbouring stack.

#[cfg(not(unix))]
compile_error!(
    "chronoflow supports unix targets only: its stack pool maps process stacks and \
     their guard pages with mmap/mprotect, and its stack overflow report is a \
     SIGSEGV/SIGBUS handler on an alternate signal stack (sigaction, sigaltstack)"
);

#[cfg(any(not(target_os = "linux"), chronoflow_portable_stacks))]
mod portable;
#[cfg(all(target_os = "linux", not(chronoflow_portable_stacks)))]
mod slabs;

#[cfg(any(not(target_os = "linux"), chronoflow_portable_stacks))]
pub(crate) use portable::StackPool;
#[cfg(all(target_os = "linux", not(chronoflow_portable_stacks)))]
pub(crate) use slabs::StackPool;

use std::sync::OnceLock;

use corosensei::stack::{Stack, StackPointer};

/// A process stack: one slot of the pool's memory. It does not own its memory;
/// the pool that made it does, and outlives it.
pub(crate) struct ProcStack {
    base: StackPointer,
    limit: StackPointer,
}

impl ProcStack {
    /// The stack of the slot at `bottom` (its guard page's first address) that is
    /// `slot` bytes long, guard page included.
    fn in_slot(bottom: usize, slot: usize) -> Self {
        ProcStack {
            base: StackPointer::new(bottom + slot).expect("mapped address is not null"),
            limit: StackPointer::new(bottom).expect("mapped address is not null"),
        }
    }

    /// The guard page below the stack: its first and one-past-last address.
    pub(crate) fn guard(&self) -> (usize, usize) {
        (self.limit.get(), self.limit.get() + page_size())
    }
}

// SAFETY: `base` is the top of a mapped, writable region of `base - limit` bytes,
// both page aligned (so aligned to STACK_ALIGNMENT); `limit` is the bottom of the
// slot including its guard page. The memory stays mapped, and is used by no one
// else, as long as the pool that made this stack lives, which outlives every
// coroutine of its kernel.
unsafe impl Stack for ProcStack {
    fn base(&self) -> StackPointer {
        self.base
    }

    fn limit(&self) -> StackPointer {
        self.limit
    }
}

/// Whether a stack of `size` bytes can be carved: rounded up to whole pages, plus
/// its guard page, it fits in half the address space.
pub(crate) fn valid_size(size: usize) -> bool {
    rounded(size, page_size()).is_some()
}

/// `size` rounded up to whole pages (at least one), if its slot (with the guard
/// page) fits in half the address space (`mmap`'s length limit, `isize::MAX`).
fn rounded(size: usize, page: usize) -> Option<usize> {
    // (`page` is a power of two: masks, no division.)
    let size = size.max(page).checked_add(page - 1)? & !(page - 1);
    let slot = size.checked_add(page)?;
    (slot <= isize::MAX as usize).then_some(size)
}

/// The error of a stack size that [`rounded`] refuses.
fn too_large(size: usize) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("stack size {size} is too large"),
    )
}

pub(crate) fn page_size() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if p > 0 && (p as usize).is_power_of_two() {
            p as usize
        } else {
            4096
        }
    })
}

#[cfg(all(test, target_os = "linux"))]
pub(super) mod tests {
    use super::*;

    /// The permissions (`rw-p`, `---p`...) of the mapping that holds `addr`, from
    /// `/proc/self/maps`.
    pub(crate) fn permissions_at(addr: usize) -> Option<String> {
        let maps = std::fs::read_to_string("/proc/self/maps").expect("Linux /proc");
        maps.lines().find_map(|line| {
            let mut fields = line.split_whitespace();
            let (start, end) = fields.next()?.split_once('-')?;
            let start = usize::from_str_radix(start, 16).ok()?;
            let end = usize::from_str_radix(end, 16).ok()?;
            (start..end)
                .contains(&addr)
                .then(|| fields.next().map(str::to_owned))?
        })
    }

    #[test]
    #[cfg_attr(miri, ignore = "maps memory and reads /proc/self/maps")]
    fn stacks_are_writable_and_reused() {
        let mut pool = StackPool::default();
        let page = page_size();
        let (a, size) = pool.get(3 * page + 1).unwrap();
        assert_eq!(size, 4 * page);
        let (guard, top) = (a.guard().1, a.base.get());
        assert_eq!(top - guard, size);
        assert_eq!(permissions_at(top - 1).as_deref(), Some("rw-p"));
        // SAFETY: the stack's pages are mapped and writable, and nothing uses them.
        unsafe { ptr_write_all(guard, top) };
        let limit = a.limit.get();
        pool.put(size, a);
        let (b, _) = pool.get(size).unwrap();
        assert_eq!(b.limit.get(), limit, "a freed stack is reused");
        pool.put(size, b);
    }

    /// Writes every page of `start..end`.
    unsafe fn ptr_write_all(start: usize, end: usize) {
        for addr in (start..end).step_by(page_size()) {
            // SAFETY: per the caller.
            unsafe { (addr as *mut u8).write_volatile(1) };
        }
    }

    #[cfg(any(not(target_os = "linux"), chronoflow_portable_stacks))]
    #[test]
    #[cfg_attr(miri, ignore = "maps memory and reads /proc/self/maps")]
    fn a_portable_guard_page_is_protected() {
        let mut pool = StackPool::default();
        let (s, size) = pool.get(1).unwrap();
        assert_eq!(permissions_at(s.guard().0).as_deref(), Some("---p"));
        pool.put(size, s);
    }
}
