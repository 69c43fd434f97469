//! The stack pool: stacks are reused, so that the steady state spawns without
//! mapping memory.

use std::collections::BTreeMap;
use std::io;

use corosensei::stack::DefaultStack;

pub(crate) type ProcStack = DefaultStack;

/// Free stacks by size.
#[derive(Default)]
pub(crate) struct StackPool {
    free: BTreeMap<usize, Vec<ProcStack>>,
}

impl StackPool {
    pub(crate) fn get(&mut self, size: usize) -> io::Result<(ProcStack, usize)> {
        let size = round_to_page(size);
        if let Some(stack) = self.free.get_mut(&size).and_then(Vec::pop) {
            return Ok((stack, size));
        }
        Ok((DefaultStack::new(size)?, size))
    }

    pub(crate) fn put(&mut self, size: usize, stack: ProcStack) {
        self.free.entry(size).or_default().push(stack);
    }

    /// How many stacks wait for reuse.
    #[allow(dead_code)]
    pub(crate) fn idle(&self) -> usize {
        self.free.values().map(Vec::len).sum()
    }
}

pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as usize } else { 4096 }
}

fn round_to_page(size: usize) -> usize {
    let page = page_size();
    size.max(page).div_ceil(page) * page
}
