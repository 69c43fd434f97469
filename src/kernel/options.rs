//! The options a process record is made with: its name, route, inbox capacity
//! and overflow policy. Templates of both engines carry them.

use std::fmt;
use std::sync::Arc;

use crate::kernel::inbox::{DEFAULT_CAPACITY, Overflow};
use crate::signal::Pid;

pub(crate) type Route<O> = Arc<dyn Fn(&O) -> Option<Pid> + Send + Sync>;
/// The options that stackful and stackless templates share: the name, the
/// route, and the inbox's capacity and overflow policy.
pub(crate) struct Options<O> {
    pub(crate) name: Arc<str>,
    pub(crate) route: Option<Route<O>>,
    pub(crate) capacity: usize,
    pub(crate) overflow: Overflow,
}

impl<O> Options<O> {
    /// The defaults: no route, [`DEFAULT_CAPACITY`], [`Overflow::Backoff`].
    pub(crate) fn new(name: &str) -> Self {
        Options {
            name: name.into(),
            route: None,
            capacity: DEFAULT_CAPACITY,
            overflow: Overflow::Backoff,
        }
    }

    /// Its fields, for a template's `Debug`.
    pub(crate) fn debug_into(&self, d: &mut fmt::DebugStruct<'_, '_>) {
        d.field("name", &self.name)
            .field("routed", &self.route.is_some())
            .field("capacity", &self.capacity)
            .field("overflow", &self.overflow);
    }
}

impl<O> Clone for Options<O> {
    fn clone(&self) -> Self {
        Options {
            name: self.name.clone(),
            route: self.route.clone(),
            capacity: self.capacity,
            overflow: self.overflow,
        }
    }
}
