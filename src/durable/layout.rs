//! Layout fingerprints: what the journal's bytes mean. A value is journaled as
//! its postcard encoding, which names no field and no type: two `Pid` fields
//! swapped in a struct, or a variant inserted before others, still decode, into
//! silent garbage. So the journal records, for each type it holds values of (the
//! message type, each template's arguments and result), a fingerprint of its
//! serde layout as [`serde_reflection`] traces it (containers, field and variant
//! names, in order, with their formats), and refuses to open with types whose
//! fingerprint changed, unless the user declares the change.

use std::collections::{BTreeMap, BTreeSet};
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};

use serde::de::DeserializeOwned;
use serde_reflection::{ContainerFormat, Error, Samples, Tracer, TracerConfig};

use crate::durable::depth::Limited;
use crate::kernel::pass::forget_quietly;

/// How many tracing passes are tried, at most, to see every variant of every
/// enum a type holds (one more variant of each incomplete enum per pass).
const MAX_PASSES: usize = 64;

/// The fingerprint of `T`'s serde layout; `None` if it cannot be traced (a
/// `Deserialize` that validates what it reads, or that panics, or a recursive
/// type whose tracing would not end): such a type is not checked.
pub(crate) fn fingerprint<T: DeserializeOwned>() -> Option<u32> {
    let traced = catch_unwind(AssertUnwindSafe(trace::<T>));
    traced.unwrap_or_else(|payload| {
        forget_quietly(payload);
        None
    })
}

fn trace<T: DeserializeOwned>() -> Option<u32> {
    let samples = Samples::new();
    // A pass goes down one variant of each enum; an enum found incomplete is
    // marked to be explored further by the next pass. Tracing is deterministic:
    // each round starts afresh, with one pass more and every enum found
    // incomplete so far, until a round ends with every variant of every enum
    // placed.
    let mut incomplete: BTreeSet<String> = BTreeSet::new();
    for passes in 1..=MAX_PASSES {
        let mut tracer = Tracer::new(TracerConfig::default());
        let mut format = None;
        for pass in 1..=passes {
            // Through a proxy that bounds the nesting: a recursive type would
            // otherwise overflow the stack.
            let seed = Limited::<T>(PhantomData);
            let (f, _) = tracer.trace_type_once_with_seed(&samples, seed).ok()?;
            format = Some(f);
            if pass < passes {
                for name in &incomplete {
                    tracer.check_incomplete_enum(name);
                }
            }
        }
        match tracer.registry() {
            // Variants not yet placed carry provisional indices, at the top of
            // the range: complete only once none is left.
            Ok(registry) if registry.values().all(placed) => {
                let bytes = postcard::to_allocvec(&(format?, registry)).ok()?;
                return Some(crc32c::crc32c(&bytes));
            }
            Ok(_) => {}
            Err(Error::MissingVariants(names)) => incomplete.extend(names),
            Err(_) => return None,
        }
    }
    None
}

/// Whether every variant of a container (an enum) has its real index: the
/// tracer gives the variants it has not placed yet provisional indices counted
/// down from `u32::MAX`.
fn placed(container: &ContainerFormat) -> bool {
    match container {
        ContainerFormat::Enum(variants) => variants.keys().all(|&i| i < u32::MAX / 2),
        _ => true,
    }
}

/// What a journal holds values of: the layout of each, by role ("message",
/// "args of NAME", "result of NAME").
pub(crate) type Layouts = BTreeMap<String, u32>;

/// The role of the message type, as layouts name it.
pub(crate) const MESSAGE: &str = "message";

/// The role of a template's arguments, as layouts name it.
pub(crate) fn args_of(template: &str) -> String {
    format!("args of {template}")
}

/// The role of a template's result, as layouts name it.
pub(crate) fn result_of(template: &str) -> String {
    format!("result of {template}")
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[allow(dead_code)]
    mod before {
        #[derive(serde::Deserialize)]
        pub struct Transfer {
            pub from: u64,
            pub to: u64,
        }
    }

    #[allow(dead_code)]
    mod after {
        #[derive(serde::Deserialize)]
        pub struct Transfer {
            pub to: u64,
            pub from: u64,
        }
    }

    #[allow(dead_code)]
    #[derive(Deserialize)]
    enum Nested {
        A(Inner),
        B,
    }

    #[allow(dead_code)]
    #[derive(Deserialize)]
    enum Inner {
        X,
        Y(u8),
        Z { z: String },
    }

    #[test]
    fn swapped_fields_change_the_fingerprint() {
        let (a, b) = (
            fingerprint::<before::Transfer>(),
            fingerprint::<after::Transfer>(),
        );
        assert!(a.is_some() && b.is_some());
        assert_ne!(a, b);
        assert_eq!(a, fingerprint::<before::Transfer>(), "deterministic");
    }

    #[allow(dead_code)]
    mod renamed {
        #[derive(serde::Deserialize)]
        pub enum Nested {
            A(Inner),
            B,
        }

        #[derive(serde::Deserialize)]
        pub enum Inner {
            X,
            Y(u8),
            W { z: String },
        }
    }

    #[allow(dead_code)]
    #[derive(Deserialize)]
    enum List {
        Cons(u8, Box<List>),
        Nil,
    }

    #[allow(dead_code)]
    #[derive(Deserialize)]
    enum Expr {
        Add(Box<Expr>, Box<Expr>),
        Neg { of: Box<Term> },
        Lit(i64),
    }

    #[allow(dead_code)]
    #[derive(Deserialize)]
    struct Term {
        expr: Option<Expr>,
        list: Vec<List>,
    }

    #[test]
    fn recursive_types_whose_first_variant_recurses_are_not_traced_not_a_crash() {
        // Before the depth bound, each of these overflowed the stack (an abort).
        assert_eq!(fingerprint::<List>(), None);
        assert_eq!(fingerprint::<Expr>(), None);
        assert_eq!(fingerprint::<(Option<Term>, u8)>(), None);
        // A recursive type whose first variant ends is traced.
        #[allow(dead_code)]
        #[derive(Deserialize)]
        enum Ends {
            Nil,
            Cons(u8, Box<Ends>),
        }
        assert!(fingerprint::<Ends>().is_some());
    }

    #[test]
    fn nested_enums_are_traced_in_full() {
        assert!(fingerprint::<Nested>().is_some());
        assert_ne!(fingerprint::<Nested>(), fingerprint::<Inner>());
        // A variant renamed deep inside changes it.
        assert_ne!(fingerprint::<Nested>(), fingerprint::<renamed::Nested>());
    }
}
