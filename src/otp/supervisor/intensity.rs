//! Restart intensity (OTP's `intensity` and `period`, MaxR within MaxT): a
//! sliding window of restart times on the scheduler's clock.

use std::collections::VecDeque;
use std::time::Duration;

use crate::clock::Time;

/// The restarts of the last `period`, oldest first.
#[derive(Debug)]
pub(crate) struct Window {
    max: u32,
    period: Duration,
    restarts: VecDeque<Time>,
}

impl Window {
    pub(crate) fn new(max: u32, period: Duration) -> Window {
        Window {
            max,
            period,
            restarts: VecDeque::new(),
        }
    }

    /// Records a restart at `now`: whether it is within the budget. As OTP's
    /// `add_restart/3`: the restarts kept are those at `now - period` or later
    /// (the edge is inclusive), the new one is added, and the supervisor gives
    /// up when they are more than `max` (so `max` 0 gives up at the first).
    pub(crate) fn add(&mut self, now: Time) -> bool {
        while let Some(&oldest) = self.restarts.front() {
            if now.since(oldest) > self.period {
                self.restarts.pop_front();
            } else {
                break;
            }
        }
        self.restarts.push_back(now);
        self.restarts.len() <= self.max as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> Time {
        Time::from_nanos(secs * 1_000_000_000)
    }

    #[test]
    fn the_window_keeps_its_edge_and_gives_up_beyond_max() {
        let mut w = Window::new(2, Duration::from_secs(5));
        assert!(w.add(at(10)));
        assert!(w.add(at(12)));
        // 10 is exactly at 15 - 5: still in the window (three restarts).
        assert!(!w.add(at(15)));
        let mut w = Window::new(1, Duration::from_secs(5));
        assert!(w.add(at(10)));
        // Just past the edge: 10 has left the window.
        assert!(w.add(Time::from_nanos(15_000_000_001)));
        let mut zero = Window::new(0, Duration::from_secs(5));
        assert!(!zero.add(at(1)));
    }
}
