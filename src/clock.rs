//! Time is an input: the scheduler reads it only through a [`Clock`] it is given.

use std::fmt;
use std::ops::Add;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
#[cfg(not(unix))]
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// A point in time: nanoseconds since the Unix epoch. Wall-clock based, so that a
/// deadline journaled before a crash still means the same moment after it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Time(pub u64);

impl Time {
    /// The time `nanos` nanoseconds after the epoch.
    pub fn from_nanos(nanos: u64) -> Time {
        Time(nanos)
    }

    /// Nanoseconds since the epoch.
    pub fn as_nanos(self) -> u64 {
        self.0
    }

    /// How long from `earlier` to `self` (zero if `earlier` is later).
    pub fn since(self, earlier: Time) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Time {
    type Output = Time;
    fn add(self, d: Duration) -> Time {
        Time(
            self.0
                .saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        )
    }
}

impl fmt::Debug for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Time({}.{:09}s)",
            self.0 / 1_000_000_000,
            self.0 % 1_000_000_000
        )
    }
}

/// Where a scheduler reads the time.
pub trait Clock {
    /// The current time.
    fn now(&self) -> Time;

    /// Whether the time passes by itself (`true`, the default: a deadline
    /// comes if one waits for it). A clock that moves only when told (a
    /// [`ManualClock`]) says `false`: `run_blocking` and the async `run` then
    /// do not wait for its timers, which waiting cannot bring (they return
    /// once nothing else can wake a process; advance the clock and run again).
    fn passes_by_itself(&self) -> bool {
        true
    }

    /// A time no earlier than the current time, and not much later, cheaper to
    /// read than [`now`](Clock::now) if the clock can: the scheduler checks
    /// with it whether a timer may be due, and sets the deadlines of long
    /// timers (a second or more) armed during a pass from it. The default is
    /// [`now`](Clock::now).
    fn now_or_later(&self) -> Time {
        self.now()
    }
}

/// The system's wall clock (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    /// `CLOCK_REALTIME` read directly on Unix (what `SystemTime::now` reads,
    /// without its conversions through `Duration` and `u128`: a timer reads the
    /// clock once or twice).
    #[cfg(unix)]
    #[inline]
    fn now(&self) -> Time {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid timespec to write; CLOCK_REALTIME always
        // exists.
        unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
        // (Before the epoch: the epoch, as the portable version below gives.)
        let Ok(secs) = u64::try_from(ts.tv_sec) else {
            return Time(0);
        };
        Time(
            secs.saturating_mul(1_000_000_000)
                .saturating_add(ts.tv_nsec as u64),
        )
    }

    #[cfg(not(unix))]
    fn now(&self) -> Time {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Time(u64::try_from(since.as_nanos()).unwrap_or(u64::MAX))
    }

    /// On Linux, `CLOCK_REALTIME_COARSE` (the time at the last clock tick, a
    /// few nanoseconds to read, against tens for `CLOCK_REALTIME`) plus two of
    /// its ticks (its resolution: 4 ms at 250 Hz), one to cover the time since
    /// the last tick and one for a tick late. (Not under Miri, which has no
    /// `clock_getres`: `now` there.)
    #[cfg(all(target_os = "linux", not(miri)))]
    #[inline]
    fn now_or_later(&self) -> Time {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid timespec to write; CLOCK_REALTIME_COARSE
        // exists on Linux (2.6.32 and later).
        unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) };
        let Ok(secs) = u64::try_from(ts.tv_sec) else {
            return self.now();
        };
        Time(
            secs.saturating_mul(1_000_000_000)
                .saturating_add(ts.tv_nsec as u64)
                .saturating_add(2 * coarse_tick()),
        )
    }
}

/// The resolution of `CLOCK_REALTIME_COARSE` in nanoseconds, asked once.
#[cfg(all(target_os = "linux", not(miri)))]
fn coarse_tick() -> u64 {
    static TICK: AtomicU64 = AtomicU64::new(0);
    let tick = TICK.load(Ordering::Relaxed);
    if tick != 0 {
        return tick;
    }
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write.
    let ok = unsafe { libc::clock_getres(libc::CLOCK_REALTIME_COARSE, &mut ts) } == 0;
    let tick = match u64::try_from(ts.tv_sec) {
        // (At least 1 ns, so that 0 still means unknown; a second if unknown.)
        Ok(secs) if ok => secs
            .saturating_mul(1_000_000_000)
            .saturating_add(ts.tv_nsec as u64)
            .max(1),
        _ => 1_000_000_000,
    };
    TICK.store(tick, Ordering::Relaxed);
    tick
}

/// A clock that moves only when told: for tests, and for simulations where a run
/// must be a pure function of its inputs. Clones share the same time.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    now: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: Time) -> ManualClock {
        ManualClock {
            now: Arc::new(AtomicU64::new(start.0)),
        }
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.now.fetch_add(nanos, Ordering::SeqCst);
    }

    /// Sets the clock to `t` (which may be earlier: the clock is yours).
    pub fn set(&self, t: Time) {
        self.now.store(t.0, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Time {
        Time(self.now.load(Ordering::SeqCst))
    }

    fn passes_by_itself(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{SystemTime, UNIX_EPOCH};

    #[test]
    fn the_system_clock_reads_the_wall_clock() {
        let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let now = SystemClock.now();
        let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        assert!(Time(before.as_nanos() as u64) <= now);
        assert!(now <= Time(after.as_nanos() as u64));
    }
}
