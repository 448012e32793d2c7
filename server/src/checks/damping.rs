//! Flap damping and "sustained for" windows: the pure state machines between
//! a probe's raw result and a check's settled state.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use opsdeck_wire::CheckStatus;

/// The settled state of a check and the streak that may change it.
///
/// - From `Unknown` (a new check, or one never probed) the first result
///   settles at once: an operator adding a check wants to see its answer.
/// - Otherwise a result different from the settled state starts a streak;
///   `fail_after` consecutive worse results (or `recover_after` better ones)
///   change the state to the latest result. A result in the other
///   direction, or equal to the settled state, ends the streak.
#[derive(Debug, Clone, PartialEq)]
pub struct Damper {
    pub status: CheckStatus,
    pub since: Option<DateTime<Utc>>,
    streak: u32,
    streak_worse: bool,
}

impl Damper {
    pub fn new(status: CheckStatus, since: Option<DateTime<Utc>>) -> Damper {
        Damper {
            status,
            since,
            streak: 0,
            streak_worse: false,
        }
    }

    /// Feeds one result; returns the previous state when the settled state changed.
    pub fn observe(
        &mut self,
        seen: CheckStatus,
        fail_after: u32,
        recover_after: u32,
        at: DateTime<Utc>,
    ) -> Option<CheckStatus> {
        if seen == CheckStatus::Unknown {
            return None;
        }
        if self.status == CheckStatus::Unknown {
            return Some(self.settle(seen, at));
        }
        if seen == self.status {
            self.streak = 0;
            return None;
        }
        let worse = seen > self.status;
        if self.streak > 0 && self.streak_worse == worse {
            self.streak += 1;
        } else {
            self.streak = 1;
            self.streak_worse = worse;
        }
        let need = if worse { fail_after } else { recover_after }.max(1);
        (self.streak >= need).then(|| self.settle(seen, at))
    }

    fn settle(&mut self, to: CheckStatus, at: DateTime<Utc>) -> CheckStatus {
        let from = self.status;
        self.status = to;
        self.since = Some(at);
        self.streak = 0;
        from
    }
}

/// "CPU > 80 % for 5 min": a threshold counts only once it has been crossed
/// without interruption for the window.
#[derive(Debug, Clone, Default)]
pub struct Sustain {
    /// Since when the warning / critical threshold has been crossed.
    over: [Option<Instant>; 2],
}

impl Sustain {
    /// The status to report for a raw `status` observed at `now`, and when
    /// it is milder than the raw one, how long the crossing has lasted.
    pub fn apply(
        &mut self,
        status: CheckStatus,
        window: Duration,
        now: Instant,
    ) -> (CheckStatus, Option<Duration>) {
        if status == CheckStatus::Unknown {
            return (status, None);
        }
        for (i, level) in [CheckStatus::Warning, CheckStatus::Critical]
            .into_iter()
            .enumerate()
        {
            if status >= level {
                self.over[i].get_or_insert(now);
            } else {
                self.over[i] = None;
            }
        }
        let held = |i: usize| self.over[i].is_some_and(|t| now.duration_since(t) >= window);
        let effective = if held(1) {
            CheckStatus::Critical
        } else if held(0) {
            CheckStatus::Warning
        } else {
            CheckStatus::Ok
        };
        if effective < status {
            let level = if status == CheckStatus::Critical {
                1
            } else {
                0
            };
            (effective, self.over[level].map(|t| now.duration_since(t)))
        } else {
            (effective, None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CheckStatus::*;

    fn run(d: &mut Damper, seq: &[CheckStatus], fail: u32, recover: u32) -> Vec<CheckStatus> {
        seq.iter()
            .map(|s| {
                d.observe(*s, fail, recover, Utc::now());
                d.status
            })
            .collect()
    }

    #[test]
    fn first_result_settles_at_once() {
        let mut d = Damper::new(Unknown, None);
        assert_eq!(d.observe(Critical, 3, 3, Utc::now()), Some(Unknown));
        assert_eq!(d.status, Critical);
        assert!(d.since.is_some());
    }

    #[test]
    fn needs_consecutive_failures_to_flip_and_successes_to_recover() {
        let mut d = Damper::new(Ok, None);
        let got = run(
            &mut d,
            &[Critical, Critical, Critical, Ok, Ok, Critical, Ok],
            3,
            2,
        );
        assert_eq!(got, [Ok, Ok, Critical, Critical, Ok, Ok, Ok]);
    }

    #[test]
    fn flapping_never_settles() {
        let mut d = Damper::new(Ok, None);
        let got = run(
            &mut d,
            &[Critical, Ok, Critical, Ok, Critical, Ok, Critical],
            2,
            2,
        );
        assert!(got.iter().all(|s| *s == Ok), "{got:?}");
    }

    #[test]
    fn a_streak_in_one_direction_moves_to_the_latest_result() {
        let mut d = Damper::new(Ok, None);
        let got = run(&mut d, &[Warning, Critical], 2, 2);
        assert_eq!(got, [Ok, Critical]);
        // Critical → Warning is a recovery: needs recover_after.
        let got = run(&mut d, &[Warning, Warning], 2, 2);
        assert_eq!(got, [Critical, Warning]);
    }

    #[test]
    fn unknown_results_are_ignored() {
        let mut d = Damper::new(Ok, None);
        assert_eq!(
            run(&mut d, &[Critical, Unknown, Critical], 2, 2),
            [Ok, Ok, Critical]
        );
    }

    #[test]
    fn sustain_holds_back_until_the_window_passes() {
        let mut s = Sustain::default();
        let t0 = Instant::now();
        let w = Duration::from_secs(300);
        assert_eq!(s.apply(Critical, w, t0).0, Ok);
        assert_eq!(s.apply(Critical, w, t0 + Duration::from_secs(200)).0, Ok);
        assert_eq!(
            s.apply(Critical, w, t0 + Duration::from_secs(301)).0,
            Critical
        );
        // Dipping below resets the window.
        assert_eq!(s.apply(Ok, w, t0 + Duration::from_secs(302)).0, Ok);
        assert_eq!(s.apply(Critical, w, t0 + Duration::from_secs(303)).0, Ok);
    }

    #[test]
    fn sustain_keeps_warning_window_through_a_critical_spike() {
        let mut s = Sustain::default();
        let t0 = Instant::now();
        let w = Duration::from_secs(60);
        s.apply(Warning, w, t0);
        let (st, held) = s.apply(Critical, w, t0 + Duration::from_secs(61));
        assert_eq!(st, Warning, "warning held 61 s; critical only just started");
        assert_eq!(held, Some(Duration::ZERO));
        assert_eq!(s.apply(Warning, Duration::ZERO, t0).0, Warning);
    }
}
