//! Backoff between a child's restarts (phyxius's supervisor: an initial delay
//! that grows by a factor up to a maximum, reset after a quiet period, with
//! jitter from an injected seeded source, never an implicit one). OTP has no
//! backoff: a supervisor restarts at once.

use std::time::Duration;

/// How long a supervisor waits before it restarts a child, by how many times
/// the child was restarted since it last ran quietly:
/// `min(initial × factor^n, max)`, then moved by up to `jitter` of itself
/// either way (a factor in `[1 - jitter, 1 + jitter)`, still at most `max`),
/// drawn from `fastrand`'s generator seeded with `seed`. The same seed gives the same
/// delays: a run under a [`ManualClock`](crate::ManualClock) is reproducible.
///
/// A child that ran for `reset_after` or longer before it ended starts again
/// from `initial`. The restart is still counted in the restart intensity when
/// the child ends (as OTP counts it), not when the delay is over.
///
/// The default is phyxius's: 1 s doubling up to 30 s, reset after 30 s of
/// quiet, no jitter, seed 0.
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    pub(crate) initial: Duration,
    pub(crate) factor: f64,
    pub(crate) max: Duration,
    pub(crate) reset_after: Duration,
    pub(crate) jitter: f64,
    pub(crate) seed: u64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_secs(1),
            factor: 2.0,
            max: Duration::from_secs(30),
            reset_after: Duration::from_secs(30),
            jitter: 0.0,
            seed: 0,
        }
    }
}

impl Backoff {
    /// A backoff of `initial`, growing by `factor` (at least 1) up to `max`.
    pub fn new(initial: Duration, factor: f64, max: Duration) -> Backoff {
        Backoff {
            initial,
            factor,
            max,
            ..Backoff::default()
        }
    }

    /// Sets how long a child must run for its next restart to wait `initial`
    /// again.
    pub fn reset_after(mut self, quiet: Duration) -> Self {
        self.reset_after = quiet;
        self
    }

    /// Sets the jitter, a fraction in `[0, 1]` of each delay, drawn from a
    /// PRNG seeded with `seed`.
    pub fn jitter(mut self, jitter: f64, seed: u64) -> Self {
        self.jitter = jitter;
        self.seed = seed;
        self
    }

    /// Whether its numbers make sense (a factor of at least 1, a jitter in
    /// `[0, 1]`).
    pub(crate) fn is_valid(&self) -> bool {
        self.factor >= 1.0 && (0.0..=1.0).contains(&self.jitter)
    }

    /// The delay of restart number `n` (from 0) since the last quiet run.
    pub(crate) fn delay(&self, n: u32, rng: &mut fastrand::Rng) -> Duration {
        let grown = self.initial.as_secs_f64() * self.factor.powi(n.min(1024) as i32);
        let max = self.max.as_secs_f64();
        let mut secs = grown.min(max);
        if self.jitter > 0.0 {
            let u = rng.f64();
            secs *= 1.0 - self.jitter + 2.0 * self.jitter * u;
            secs = secs.min(max);
        }
        Duration::try_from_secs_f64(secs).unwrap_or(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_maximum_and_jitter_follows_the_seed() {
        let b = Backoff::new(Duration::from_secs(1), 2.0, Duration::from_secs(5));
        let mut rng = fastrand::Rng::with_seed(0);
        let d: Vec<_> = (0..5).map(|n| b.delay(n, &mut rng).as_secs()).collect();
        assert_eq!(d, [1, 2, 4, 5, 5]);
        let j = b.clone().jitter(0.5, 7);
        let draw = |seed| {
            let mut rng = fastrand::Rng::with_seed(seed);
            (0..4).map(|n| j.delay(n, &mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
        for (n, d) in draw(7).into_iter().enumerate() {
            let base = b
                .delay(n as u32, &mut fastrand::Rng::with_seed(0))
                .as_secs_f64();
            assert!(d.as_secs_f64() >= base * 0.5 && d.as_secs_f64() <= 5.0);
        }
    }
}
