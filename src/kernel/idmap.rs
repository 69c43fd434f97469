//! Hash maps keyed by the runtime's own ids (pids, timer ids): numbers it hands
//! out itself, in increasing order, never chosen by a user, so that they need
//! no DoS-resistant hash (std's SipHash costs more than the rest of a lookup).
//! FxHash (one multiply per word) spreads them: consecutive ids land in
//! distinct buckets.

/// A hash map keyed by ids the runtime hands out (see the module): FxHash
/// (the `rustc-hash` crate's).
pub(crate) type IdMap<K, V> = rustc_hash::FxHashMap<K, V>;

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
