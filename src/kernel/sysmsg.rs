//! A system message as the kernel holds it: a value of a type the kernel does
//! not know (a layer's notice, a reply), opened by the layer that sent it.
//! What a `Box<dyn Any>` offers, without the allocation for a value that fits
//! in [`WORDS`] words (the toolkit's notices: DOWN, EXIT, timeouts, requests;
//! most replies): such a value is kept inline, with the few facts of its type
//! needed to check a downcast and to drop it. A larger one is boxed.

use std::any::{Any, TypeId};
use std::marker::PhantomData;
use std::mem::{ManuallyDrop, MaybeUninit, align_of, size_of};

/// Words of a value kept inline: the toolkit's `Notice` (56 bytes on 64-bit
/// targets) fits.
const WORDS: usize = 7;

/// Where an inline value lives: word-aligned, uninitialized until written.
type Buf = [MaybeUninit<usize>; WORDS];

/// A system message: any `'static` value, inline when small.
pub(crate) struct SysMsg(Repr);

enum Repr {
    Inline(Inline),
    Boxed(Box<dyn Any>),
}

/// A value kept inline: `buf` holds a value of the type `meta` describes
/// (the invariant every `unsafe` below relies on), dropped with it.
struct Inline {
    meta: &'static Meta,
    buf: Buf,
}

/// What an inline value's type is, and how it is dropped.
struct Meta {
    /// The type's id (a value, compared where a downcast checks it: no call).
    type_id: TypeId,
    /// Drops the value of that type in a buffer.
    ///
    /// # Safety
    /// The buffer holds a value of that type, not used afterwards.
    drop: unsafe fn(*mut Buf),
}

/// The [`Meta`] of `T`, as a constant (a `'static` reference to it is
/// promoted).
struct MetaOf<T>(PhantomData<T>);

impl<T: Any> MetaOf<T> {
    /// A `T` fits a buffer: its size and its alignment.
    const FITS: bool = size_of::<T>() <= size_of::<Buf>() && align_of::<T>() <= align_of::<Buf>();

    const META: Meta = Meta {
        type_id: TypeId::of::<T>(),
        drop: drop_as::<T>,
    };
}

/// Drops the `T` in `buf`.
///
/// # Safety
/// `buf` holds a `T` (written by [`SysMsg::new`]), not used afterwards.
unsafe fn drop_as<T>(buf: *mut Buf) {
    // SAFETY: per the contract; a `T` was written at the buffer's start, which
    // is aligned for it (`MetaOf::FITS`).
    unsafe { buf.cast::<T>().drop_in_place() }
}

impl Inline {
    /// Whether it holds a `T`.
    #[inline]
    fn is<T: Any>(&self) -> bool {
        self.meta.type_id == TypeId::of::<T>()
    }

    /// Its value, as a `T`.
    ///
    /// # Safety
    /// It holds a `T` ([`is`](Self::is)).
    #[inline]
    unsafe fn take<T>(self) -> T {
        let this = ManuallyDrop::new(self);
        // SAFETY: per the contract, `buf` holds a `T`, at its (aligned) start;
        // it is read once, and `this` is not dropped (no second drop).
        unsafe { this.buf.as_ptr().cast::<T>().read() }
    }
}

impl Drop for Inline {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: `buf` holds a value of `meta`'s type (the invariant of
        // `Inline`), dropped once, here.
        unsafe { (self.meta.drop)(&mut self.buf) }
    }
}

impl SysMsg {
    /// `value`, inline if it fits, boxed if not.
    #[inline]
    pub(crate) fn new<T: Any>(value: T) -> SysMsg {
        if MetaOf::<T>::FITS {
            let mut buf: Buf = [MaybeUninit::uninit(); WORDS];
            // SAFETY: a `T` fits the buffer, in size and alignment (`FITS`).
            unsafe { buf.as_mut_ptr().cast::<T>().write(value) };
            SysMsg(Repr::Inline(Inline {
                meta: &MetaOf::<T>::META,
                buf,
            }))
        } else {
            SysMsg(Repr::Boxed(Box::new(value)))
        }
    }

    /// Whether it is a `T`.
    #[inline]
    pub(crate) fn is<T: Any>(&self) -> bool {
        match &self.0 {
            Repr::Inline(inline) => inline.is::<T>(),
            Repr::Boxed(b) => b.is::<T>(),
        }
    }

    /// It, if it is a `T`.
    #[inline]
    pub(crate) fn downcast_ref<T: Any>(&self) -> Option<&T> {
        match &self.0 {
            // SAFETY: it holds a `T` (checked), at the buffer's aligned start,
            // borrowed as long as `self`.
            Repr::Inline(inline) if inline.is::<T>() => {
                Some(unsafe { &*inline.buf.as_ptr().cast::<T>() })
            }
            Repr::Inline(_) => None,
            Repr::Boxed(b) => b.downcast_ref(),
        }
    }

    /// It, as a `T`; itself back if it is no `T`.
    #[inline]
    pub(crate) fn downcast<T: Any>(self) -> Result<T, SysMsg> {
        match self.0 {
            // SAFETY: it holds a `T` (checked).
            Repr::Inline(inline) if inline.is::<T>() => Ok(unsafe { inline.take() }),
            Repr::Boxed(b) => match b.downcast::<T>() {
                Ok(t) => Ok(*t),
                Err(b) => Err(SysMsg(Repr::Boxed(b))),
            },
            inline => Err(SysMsg(inline)),
        }
    }
}

#[cfg(test)]
impl SysMsg {
    /// Whether it is kept inline (not boxed).
    pub(crate) fn is_inline(&self) -> bool {
        matches!(self.0, Repr::Inline(_))
    }
}

impl std::fmt::Debug for SysMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SysMsg")
    }
}

/// A message boxed already (kept as it is: a downcast opens the box).
impl From<Box<dyn Any>> for SysMsg {
    fn from(b: Box<dyn Any>) -> Self {
        SysMsg(Repr::Boxed(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn small_values_are_inline_and_large_ones_boxed() {
        assert!(matches!(SysMsg::new(7u64).0, Repr::Inline(_)));
        assert!(matches!(SysMsg::new([0u64; WORDS]).0, Repr::Inline(_)));
        assert!(matches!(SysMsg::new([0u64; WORDS + 1]).0, Repr::Boxed(_)));
        // Over-aligned: boxed.
        #[repr(align(32))]
        struct Wide(#[allow(dead_code)] u8);
        assert!(matches!(SysMsg::new(Wide(1)).0, Repr::Boxed(_)));
    }

    #[test]
    fn downcasts_check_the_type_and_values_drop_once() {
        let token = Rc::new(());
        for big in [false, true] {
            let msg = if big {
                SysMsg::new((token.clone(), [0u64; WORDS]))
            } else {
                SysMsg::new(token.clone())
            };
            assert_eq!(Rc::strong_count(&token), 2);
            assert!(!msg.is::<u64>());
            assert!(msg.downcast_ref::<u64>().is_none());
            let msg = msg.downcast::<u64>().expect_err("no u64");
            assert_eq!(Rc::strong_count(&token), 2, "kept by a failed downcast");
            if big {
                let (t, _) = msg
                    .downcast::<(Rc<()>, [u64; WORDS])>()
                    .expect("its own type");
                assert!(Rc::ptr_eq(&t, &token));
            } else {
                assert!(msg.is::<Rc<()>>());
                assert!(Rc::ptr_eq(msg.downcast_ref::<Rc<()>>().unwrap(), &token));
                let t = msg.downcast::<Rc<()>>().expect("its own type");
                assert!(Rc::ptr_eq(&t, &token));
            }
            assert_eq!(Rc::strong_count(&token), 1, "moved out, dropped once");
        }
        // Dropped unopened.
        drop(SysMsg::new(token.clone()));
        drop(SysMsg::from(Box::new(token.clone()) as Box<dyn Any>));
        assert_eq!(Rc::strong_count(&token), 1);
    }

    #[test]
    fn a_boxed_message_opens_as_its_content() {
        let msg = SysMsg::from(Box::new(5u32) as Box<dyn Any>);
        assert!(msg.is::<u32>());
        assert_eq!(msg.downcast_ref::<u32>(), Some(&5));
        assert_eq!(msg.downcast::<u32>().ok(), Some(5));
    }
}
