//! How a runtime's pids name their home core.
//!
//! A pid's top bits are the index of the core (the worker thread, and its
//! kernel) that holds the process: a send finds its way with a shift, no table
//! shared between threads. Below them, each core hands out pids of two kinds,
//! both increasing and never reused: even ones that its own kernel gives the
//! processes it makes, and odd ones that other threads reserve for the
//! processes they ask it to make (a spawn placed on another core gets its pid
//! at once, before the core makes the process). The parity tells the home
//! core, for a pid it does not hold, whether a process may still come with it.

use crate::signal::Pid;

/// The bits below a core's index.
const CORE_SHIFT: u32 = 48;

/// The most cores a runtime may have.
pub(crate) const MAX_CORES: usize = 1 << (64 - CORE_SHIFT);

/// The index of the core that holds (or held) the process `pid` of a
/// [`Runtime`](crate::runtime::Runtime).
pub fn home(pid: Pid) -> usize {
    (pid.0 >> CORE_SHIFT) as usize
}

/// The first pid core `core`'s kernel hands out (they go up by two).
pub(crate) fn first_made(core: usize) -> u64 {
    (core as u64) << CORE_SHIFT
}

/// The first pid other threads reserve on core `core` (they go up by two).
pub(crate) fn first_reserved(core: usize) -> u64 {
    first_made(core) | 1
}

/// Whether `pid` was reserved by another thread (not made by its core's own
/// kernel).
pub(crate) fn is_reserved(pid: Pid) -> bool {
    pid.0 & 1 == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pid_names_its_core_and_kind() {
        for core in [0, 1, 7, MAX_CORES - 1] {
            let made = Pid(first_made(core) + 2 * 12345);
            let reserved = Pid(first_reserved(core) + 2 * 99);
            assert_eq!(home(made), core);
            assert_eq!(home(reserved), core);
            assert!(!is_reserved(made));
            assert!(is_reserved(reserved));
        }
    }
}
