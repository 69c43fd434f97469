//! Engine memory kept for the next engine: the block of an engine that ended
//! (a stackless coroutine, a stackful engine's handle on its stack) goes to
//! the next engine of the same layout instead of back to the allocator. A
//! process that is spawned and ends, again and again, then costs its
//! engine's box no `malloc` and no `free`.
//!
//! A block keeps the layout it was allocated with: it is handed out only for
//! an engine of exactly that layout (what `Box` of that engine would have
//! allocated), so that a box made of it frees it rightly, here or anywhere.

use std::alloc::{Layout, dealloc};
use std::pin::Pin;
use std::ptr::NonNull;

use crate::kernel::engine::{BoxedEngine, Engine};

/// A kernel's spare engine block: the block of the last engine that ended,
/// while no new engine took it. One only: a process spawned as another ends
/// (a worker restarted, one process per request) finds it, and keeping it
/// costs a process whose block is not reused a test or two, no more.
#[derive(Default)]
pub(crate) struct Blocks {
    /// A block allocated by the global allocator with this layout (never
    /// zero-sized), holding nothing.
    spare: Option<(NonNull<u8>, Layout)>,
}

impl Blocks {
    /// `engine`, boxed and pinned: in the spare block if it has its layout.
    #[inline]
    pub(crate) fn boxed<E: Engine + 'static>(&mut self, engine: E) -> BoxedEngine {
        match self.spare {
            Some((block, layout)) if layout == Layout::new::<E>() => {
                self.spare = None;
                let e = block.cast::<E>();
                // SAFETY: the block was allocated by the global allocator with
                // `layout`, which is `E`'s (not zero-sized: such a block is
                // never kept): valid for a write of an `E`, and aligned. Once
                // written, it is what `Box::<E>::new` would have made, and the
                // box frees it with that same layout. Pinned: it is not moved
                // before it is dropped.
                unsafe {
                    e.as_ptr().write(engine);
                    Pin::new_unchecked(Box::from_raw(e.as_ptr()))
                }
            }
            _ => Box::pin(engine),
        }
    }

    /// Drops `engine` and keeps its block as the spare if there is none, or
    /// frees it (dropping the box). The block is the spare from before the
    /// engine drops: should a destructor panic, the unwind leaves the block
    /// holding nothing all the same (as a box would free it). The destructors
    /// are user code, which cannot reach a kernel, nor so its spare, from a
    /// done engine.
    #[inline]
    pub(crate) fn recycle(&mut self, engine: BoxedEngine) {
        if self.spare.is_some() {
            drop(engine);
            return;
        }
        // SAFETY: the engine is dropped in place below before its memory is
        // reused or freed: what pinning asks.
        let raw: *mut dyn Engine = Box::into_raw(unsafe { Pin::into_inner_unchecked(engine) });
        // SAFETY: `raw` is a live engine, made by a `Box`.
        let layout = Layout::for_value(unsafe { &*raw });
        if layout.size() == 0 {
            // SAFETY: made by a `Box` just above, and not used again.
            drop(unsafe { Box::from_raw(raw) });
            return;
        }
        let block = NonNull::new(raw.cast::<u8>()).expect("a box is never null");
        self.spare = Some((block, layout));
        // SAFETY: a live engine, dropped once, in its block, which is not
        // handed out before this returns (nothing reaches the kernel meanwhile).
        unsafe { raw.drop_in_place() };
    }
}

impl Drop for Blocks {
    fn drop(&mut self) {
        if let Some((block, layout)) = self.spare.take() {
            // SAFETY: the spare block was allocated with its layout and holds
            // nothing.
            unsafe { dealloc(block.as_ptr(), layout) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::{Ended, Turn, Wait};
    use std::rc::Rc;

    /// An engine that holds a token (to count drops) and some bytes.
    struct Probe<const N: usize>(#[allow(dead_code)] Rc<()>, [u8; N]);

    impl<const N: usize> Engine for Probe<N> {
        fn resume(self: Pin<&mut Self>, _: &Turn, _: &mut Option<Ended>) -> Option<Wait> {
            None
        }
        fn stop(self: Pin<Box<Self>>, _: &Turn) {}
    }

    fn addr(e: &BoxedEngine) -> *const u8 {
        (&**e as *const dyn Engine).cast()
    }

    #[test]
    fn the_spare_block_is_reused_by_its_layout_and_engines_dropped_once() {
        let token = Rc::new(());
        let mut blocks = Blocks::default();
        let a = blocks.boxed(Probe(token.clone(), [0; 8]));
        let b = blocks.boxed(Probe(token.clone(), [0; 8]));
        let (at, bt) = (addr(&a), addr(&b));
        blocks.recycle(a);
        assert_eq!(Rc::strong_count(&token), 2, "dropped when recycled");
        // One spare only: b's block is freed.
        blocks.recycle(b);
        assert_eq!(Rc::strong_count(&token), 1);
        // Another layout: a fresh block.
        let c = blocks.boxed(Probe(token.clone(), [0; 64]));
        assert_ne!(addr(&c), at);
        // The same layout: the spare.
        let d = blocks.boxed(Probe(token.clone(), [1; 8]));
        assert_eq!(addr(&d), at);
        assert_ne!(addr(&d), bt);
        assert!(blocks.spare.is_none());
        drop(c);
        drop(d); // (the spare block, freed by its box)
        assert_eq!(Rc::strong_count(&token), 1);
        // Zero-sized engines have no block to keep; tiny ones do.
        struct Zst;
        impl Engine for Zst {
            fn resume(self: Pin<&mut Self>, _: &Turn, _: &mut Option<Ended>) -> Option<Wait> {
                None
            }
            fn stop(self: Pin<Box<Self>>, _: &Turn) {}
        }
        struct Tiny(#[allow(dead_code)] u8);
        impl Engine for Tiny {
            fn resume(self: Pin<&mut Self>, _: &Turn, _: &mut Option<Ended>) -> Option<Wait> {
                None
            }
            fn stop(self: Pin<Box<Self>>, _: &Turn) {}
        }
        let z = blocks.boxed(Zst);
        blocks.recycle(z);
        assert!(blocks.spare.is_none());
        let t = blocks.boxed(Tiny(1));
        let tt = addr(&t);
        blocks.recycle(t);
        let u = blocks.boxed(Tiny(2));
        assert_eq!(addr(&u), tt);
        blocks.recycle(u);
        // Kept when the blocks are dropped: freed with them.
        assert!(blocks.spare.is_some());
    }
}
