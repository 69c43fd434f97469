//! A slab of process records: allocated `CHUNK` at a time, and reused through a
//! free list threaded through the freed slots.
//!
//! Spawning a process allocates its record; with one `malloc` per record, the
//! allocator's work and its per-block header were a good part of a stackless
//! spawn. Here a spawn takes a slot: the last freed one, or the next one of the
//! newest chunk. A chunk's pages cost memory only once touched, and chunks go
//! back to the allocator when the slab is dropped (with its kernel), not before:
//! a kernel keeps room for as many records as it once held at the same time.

use std::mem::{MaybeUninit, align_of, size_of};
use std::ptr::NonNull;

/// Records per chunk.
const CHUNK: usize = 64;

pub(crate) struct Slab<T> {
    /// Every chunk, each `CHUNK` slots (kept as raw pointers: slots are handed out
    /// as pointers, which must stay valid while the list of chunks grows).
    chunks: Vec<NonNull<MaybeUninit<T>>>,
    /// Slots handed out from the newest chunk.
    used: usize,
    /// The last freed slot; each free slot holds the next one.
    free: Option<NonNull<T>>,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            chunks: Vec::new(),
            used: CHUNK,
            free: None,
        }
    }
}

impl<T> Slab<T> {
    /// A free slot holds a link to the next one.
    const FITS_A_LINK: () = assert!(
        size_of::<T>() >= size_of::<Option<NonNull<T>>>()
            && align_of::<T>() >= align_of::<Option<NonNull<T>>>()
    );

    /// Moves `value` into a slot; the pointer stays valid until [`Slab::free`].
    #[inline]
    pub(crate) fn alloc(&mut self, value: T) -> NonNull<T> {
        self.alloc_with(|| value)
    }

    /// Puts the value `make` makes into a slot, made there (not moved in from
    /// elsewhere, once `make` is inlined); the pointer stays valid until
    /// [`Slab::free`]. Should `make` panic, its slot is lost (not reused, and
    /// freed with the slab).
    #[inline]
    pub(crate) fn alloc_with(&mut self, make: impl FnOnce() -> T) -> NonNull<T> {
        let () = Self::FITS_A_LINK;
        let slot = match self.free {
            Some(slot) => {
                // SAFETY: a free slot holds the link to the next free one.
                self.free = unsafe { slot.cast::<Option<NonNull<T>>>().read() };
                slot
            }
            None => self.fresh(),
        };
        // SAFETY: the slot is in a live chunk and holds no value.
        unsafe { slot.write(make()) };
        slot
    }

    /// The next never-used slot, from a new chunk when the newest is used up.
    #[inline]
    fn fresh(&mut self) -> NonNull<T> {
        if self.used == CHUNK {
            let chunk = Box::<[T]>::new_uninit_slice(CHUNK);
            // (A slice's pointer: the chunk is freed in `drop` from it and CHUNK.)
            let chunk = NonNull::new(Box::into_raw(chunk).cast::<MaybeUninit<T>>())
                .expect("a box is never null");
            self.chunks.push(chunk);
            self.used = 0;
        }
        let chunk = *self.chunks.last().expect("a chunk was just made");
        // SAFETY: `used < CHUNK`, so the slot is inside the chunk.
        let slot = unsafe { chunk.add(self.used) };
        self.used += 1;
        slot.cast()
    }

    /// Drops the value in `slot` and keeps the slot for the next `alloc`. A panic
    /// of the value's destructor (a message's) is caught and returned: the slot
    /// is freed all the same (the rest of the value was dropped by the unwind).
    ///
    /// # Safety
    /// `slot` came from this slab's `alloc`, holds its value, and is not used
    /// after this.
    #[inline(always)]
    #[must_use = "a destructor's panic is to be reported"]
    pub(crate) unsafe fn free(
        &mut self,
        slot: NonNull<T>,
    ) -> Option<Box<dyn std::any::Any + Send>> {
        // The value is dropped where it is (not moved out first: a record is
        // large). Its destructor is user code (a process's messages) that may
        // panic: the panic is caught here and handed back, after the unwind
        // dropped the rest of the value, and the slot is freed either way. The
        // destructor cannot reach the slab, which the caller holds mutably.
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // SAFETY: per the contract, the slot holds its value, dropped once.
            unsafe { slot.as_ptr().drop_in_place() }
        }))
        .err();
        // SAFETY: the slot's value was dropped; the slot is free memory now.
        unsafe { slot.cast::<Option<NonNull<T>>>().write(self.free) };
        self.free = Some(slot);
        panicked
    }
}

impl<T> Drop for Slab<T> {
    /// Gives the chunks back. Values still in them are not dropped (the kernel
    /// frees every record before its slab goes).
    fn drop(&mut self) {
        for &chunk in &self.chunks {
            let slice = std::ptr::slice_from_raw_parts_mut(chunk.as_ptr(), CHUNK);
            // SAFETY: made by `Box::into_raw` of a CHUNK-long slice in `fresh`.
            drop(unsafe { Box::from_raw(slice) });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn slots_are_reused_last_freed_first_and_values_dropped_once() {
        let token = Rc::new(());
        let mut slab = Slab::default();
        let ptrs: Vec<_> = (0..CHUNK * 2 + 3)
            .map(|i| slab.alloc((i, token.clone())))
            .collect();
        assert_eq!(Rc::strong_count(&token), ptrs.len() + 1);
        assert_eq!(slab.chunks.len(), 3);
        // Every value is where it was put.
        for (i, p) in ptrs.iter().enumerate() {
            // SAFETY: allocated above, not freed.
            assert_eq!(unsafe { p.as_ref() }.0, i);
        }
        // SAFETY: each pointer came from this slab and is freed once.
        unsafe {
            assert!(slab.free(ptrs[5]).is_none());
            assert!(slab.free(ptrs[70]).is_none());
        }
        assert_eq!(Rc::strong_count(&token), ptrs.len() - 1);
        let a = slab.alloc((1000, token.clone()));
        let b = slab.alloc((1001, token.clone()));
        assert_eq!((a, b), (ptrs[70], ptrs[5]), "last freed, first reused");
        let c = slab.alloc((1002, token.clone()));
        assert_ne!(c, ptrs[5]);
        assert_eq!(slab.chunks.len(), 3, "reuse before growing");
        // SAFETY: as above.
        assert_eq!(unsafe { a.as_ref() }.0, 1000);
        for (i, &p) in ptrs.iter().enumerate() {
            if i != 5 && i != 70 {
                // SAFETY: as above.
                unsafe { assert!(slab.free(p).is_none()) };
            }
        }
        // SAFETY: as above.
        unsafe {
            assert!(slab.free(a).is_none());
            assert!(slab.free(b).is_none());
            assert!(slab.free(c).is_none());
        }
        assert_eq!(Rc::strong_count(&token), 1, "every value dropped once");
    }
}
