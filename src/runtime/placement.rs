//! Where a spawn puts its process.

use crate::error::SpawnError;
use crate::runtime::shared::Shared;
use crate::signal::Pid;

/// Which core a new process lives on. A stackful process never moves: it
/// stays on the core it was placed on until it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Placement {
    /// The spawning process's own core, for locality (BEAM's default: a
    /// spawned process starts on its parent's scheduler). From outside the
    /// runtime there is no such core: round-robin.
    #[default]
    Local,
    /// The cores in turn, one spawn each (shared by every spawner).
    RoundRobin,
    /// The core with the fewest live processes at its last count (each core
    /// counts after each pass, so a burst of spawns may land on one core
    /// before its count rises).
    LeastLoaded,
    /// Core number `n` (from 0). A core that does not exist gives
    /// [`SpawnError::Unplaceable`].
    Core(usize),
    /// The core of the process `pid` (living or not: where it is, or was
    /// last, if it moved), so that the two talk without crossing cores.
    Near(Pid),
}

impl Placement {
    /// The core index this placement picks, for a spawner on core `here`
    /// (`None`: outside the runtime).
    pub(crate) fn pick<M>(
        self,
        shared: &Shared<M>,
        here: Option<usize>,
    ) -> Result<usize, SpawnError> {
        let cores = shared.cores.len();
        let core = match self {
            Placement::Local => match here {
                Some(core) => core,
                None => shared.next_round_robin(),
            },
            Placement::RoundRobin => shared.next_round_robin(),
            Placement::LeastLoaded => shared.least_loaded(),
            Placement::Core(n) => n,
            Placement::Near(pid) => shared.core_of(pid),
        };
        if core < cores {
            Ok(core)
        } else {
            Err(SpawnError::Unplaceable(format!(
                "core {core} of a runtime of {cores}"
            )))
        }
    }
}
