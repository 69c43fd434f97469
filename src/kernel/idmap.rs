//! Hash maps keyed by the runtime's own ids (pids, timer ids): numbers it hands
//! out itself, in increasing order, never chosen by a user, so that they need
//! no DoS-resistant hash (std's SipHash costs more than the rest of a lookup).
//! One multiply (FxHash's) spreads them: with an odd factor, consecutive ids
//! land in distinct buckets.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// FxHash's factor.
const K: u64 = 0xf135_7aea_2e62_a9c5;

/// The hasher of [`IdMap`].
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(26) ^ n).wrapping_mul(K);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // (The high bits of a product are its best mixed: brought down, where
        // the table takes its bucket index.)
        self.0.rotate_left(26)
    }
}

/// A hash map keyed by ids the runtime hands out (see the module).
pub(crate) type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::Pid;

    #[test]
    fn consecutive_ids_spread_and_are_found() {
        let mut map: IdMap<Pid, u64> = IdMap::default();
        for i in 0..10_000 {
            map.insert(Pid(i), i * 2);
        }
        for i in (0..10_000).step_by(2) {
            assert_eq!(map.remove(&Pid(i)), Some(i * 2));
        }
        assert_eq!(map.len(), 5_000);
        assert!((1..10_000).step_by(2).all(|i| map[&Pid(i)] == i * 2));
    }
}
