//! Per-kernel state that belongs to the layers above the kernel (the stackful
//! engine's stack pool, say), kept by type so that the kernel need not name it.

use std::any::{Any, TypeId};

/// A small map from a type to the one value of it that a kernel keeps.
#[derive(Default)]
pub(crate) struct Extensions {
    values: Vec<(TypeId, Box<dyn Any>)>,
}

impl Extensions {
    /// The value of type `T`, made by `make` the first time.
    #[inline]
    pub(crate) fn get_or_insert_with<T: Any>(&mut self, make: impl FnOnce() -> T) -> &mut T {
        let id = TypeId::of::<T>();
        let i = match self.values.iter().position(|(t, _)| *t == id) {
            Some(i) => i,
            None => self.insert(make),
        };
        let value: *mut dyn Any = &mut *self.values[i].1;
        // SAFETY: the value at `i` was stored under `TypeId::of::<T>()`, and only
        // a `T` is ever stored under it (above): the cast is the one
        // `downcast_mut` would make, without asking the value its type again.
        unsafe { &mut *value.cast::<T>() }
    }

    /// The value of type `T`, if one was made.
    pub(crate) fn get<T: Any>(&self) -> Option<&T> {
        let id = TypeId::of::<T>();
        self.values
            .iter()
            .find(|(t, _)| *t == id)
            .and_then(|(_, v)| v.downcast_ref())
    }

    /// The value of type `T`, if one was made, to change.
    pub(crate) fn get_mut<T: Any>(&mut self) -> Option<&mut T> {
        let id = TypeId::of::<T>();
        self.values
            .iter_mut()
            .find(|(t, _)| *t == id)
            .and_then(|(_, v)| v.downcast_mut())
    }

    /// Adds the value `make` makes, the first time: its index. (Out of line,
    /// so that the lookup above, done on every use, stays small enough to be
    /// inlined.)
    #[cold]
    #[inline(never)]
    fn insert<T: Any>(&mut self, make: impl FnOnce() -> T) -> usize {
        self.values.push((TypeId::of::<T>(), Box::new(make())));
        self.values.len() - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_value_per_type_made_once() {
        let mut ext = Extensions::default();
        *ext.get_or_insert_with(|| 1u32) += 1;
        assert_eq!(*ext.get_or_insert_with(|| 10u32), 2);
        assert_eq!(ext.get_or_insert_with(|| String::from("a")), "a");
        assert_eq!(*ext.get_or_insert_with(|| 10u32), 2);
    }
}
