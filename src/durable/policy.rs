//! When a durable scheduler makes a process's records durable: before each of
//! its effects (the default), or once per pass.

/// When the records of a process must be durable, which decides how much of a
/// process re-runs after a crash.
///
/// Whatever the policy, the scheduler commits the journal once per pass (one
/// `fdatasync` under [`SyncPolicy::EveryCommit`](crate::journal::SyncPolicy)),
/// and a crash loses at most what was recorded since the last commit. The policy
/// says whether a process may act on the outside world (an effect) while its
/// records are still in that window.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommitPolicy {
    /// Before a process performs an effect, every record before it is durable:
    /// its takes (and so the deliveries it took), its earlier effects' results,
    /// its creation, its timers, its sends. A process about to perform an effect
    /// while some of them are not yet committed waits
    /// ([`Wait::Commit`](crate::Wait::Commit)) for the pass's group commit, one
    /// `fdatasync` for every process waiting, and then goes on.
    ///
    /// So a crash re-runs at most one effect per process, the one in flight (its
    /// result had not reached the disk), and never an effect whose inputs were
    /// lost: after recovery, a process replays exactly the branch it took before
    /// the crash up to its last effect. The cost: a process performs at most one
    /// effect per commit (per pass), so effects per second per process are
    /// bounded by the commit rate; processes that perform effects in the same
    /// pass share its commit.
    ///
    /// [`Ctx::now`](crate::Ctx::now) reads the clock without waiting: it acts on
    /// nothing outside.
    #[default]
    BeforeEffects,
    /// Records are made durable once per pass only: a process performs its
    /// effects as it reaches them, without waiting for a commit.
    ///
    /// The wider window: a crash re-runs every effect performed since the last
    /// commit, up to a whole pass of each process (every effect of a process
    /// that ran a thousand effects in its turn), and since the order in which
    /// messages arrived in that pass was not yet durable either, a process may
    /// take another branch after recovery: an effect performed before the crash
    /// may then never be performed again (orphaned), not only repeated. Choose it
    /// only for effects that are idempotent and whose outcome does not depend on
    /// the order of arrivals, for its throughput.
    ///
    /// At-most-once effects ([`Ctx::effect_at_most_once`](crate::Ctx::effect_at_most_once))
    /// wait for their intent to be durable under both policies.
    PerPass,
}
