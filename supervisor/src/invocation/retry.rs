//! Which failed attempts are tried again, how many times, and after how long: the manifest's
//! `[retry]`, or without one the fixed policy runwarm always had.
//!
//! Pure (no clock, no I/O) so every rule has a unit test. A failure before the script could
//! have seen the request (the executor could not start, or died before the request was written
//! to it) is always safe to retry; anything else is retried only when its code is listed (or,
//! without `[retry]`, a script error `E002` when the manifest says `retry_safe`).

use std::time::Duration;

use crate::execution::ErrorCode;
use crate::registry::manifest::{Manifest, RetryPolicy};

/// Waits of the default policy before the second and third attempt.
const DEFAULT_BACKOFF: [Duration; 2] = [Duration::from_millis(50), Duration::from_millis(200)];

/// The retry rules of one version.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryRules {
    policy: Option<RetryPolicy>,
    retry_safe: bool,
}

impl RetryRules {
    /// The rules a manifest sets.
    pub fn of(manifest: &Manifest) -> Self {
        RetryRules {
            policy: manifest.retry.clone(),
            retry_safe: manifest.retry_safe,
        }
    }

    /// Most attempts, the first included.
    pub fn max_attempts(&self) -> u32 {
        self.policy
            .as_ref()
            .map_or(1 + DEFAULT_BACKOFF.len() as u32, |p| p.max_attempts)
    }

    /// Whether attempt `attempt` (from 1), which failed with `code` (`infra`: before the script
    /// could have seen the request), is followed by another.
    pub fn retries(&self, attempt: u32, infra: bool, code: Option<ErrorCode>) -> bool {
        if attempt >= self.max_attempts() {
            return false;
        }
        if infra {
            return true;
        }
        match (&self.policy, code) {
            (_, None) => false,
            (Some(p), Some(code)) => p.on.contains(&code),
            (None, Some(code)) => code == ErrorCode::E002 && self.retry_safe,
        }
    }

    /// The wait after failed attempt `attempt` (from 1); `jitter` is a number in [0, 1) that
    /// spreads it by ±25 % when the policy asks for jitter.
    pub fn backoff(&self, attempt: u32, jitter: f64) -> Duration {
        let Some(p) = &self.policy else {
            let i = usize::try_from(attempt.saturating_sub(1)).unwrap_or(usize::MAX);
            return DEFAULT_BACKOFF
                .get(i)
                .copied()
                .unwrap_or(DEFAULT_BACKOFF[DEFAULT_BACKOFF.len() - 1]);
        };
        let exp = attempt.saturating_sub(1).min(20);
        let base = Duration::from_millis(p.backoff_ms.saturating_mul(1u64 << exp))
            .min(Duration::from_millis(p.max_backoff_ms));
        if p.jitter {
            base.mul_f64(0.75 + jitter.clamp(0.0, 1.0) * 0.5)
        } else {
            base
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(retry: Option<RetryPolicy>, retry_safe: bool) -> Manifest {
        let mut m: Manifest =
            serde_json::from_value(serde_json::json!({"runtime": "bash", "entry": "x"})).unwrap();
        m.retry = retry;
        m.retry_safe = retry_safe;
        m
    }

    #[test]
    fn without_a_retry_section_the_old_policy_holds() {
        let rules = RetryRules::of(&manifest(None, false));
        assert_eq!(rules.max_attempts(), 3);
        assert!(rules.retries(1, true, Some(ErrorCode::E005)));
        assert!(rules.retries(2, true, Some(ErrorCode::E005)));
        assert!(!rules.retries(3, true, Some(ErrorCode::E005)));
        assert!(!rules.retries(1, false, Some(ErrorCode::E002)));
        assert!(RetryRules::of(&manifest(None, true)).retries(1, false, Some(ErrorCode::E002)));
        assert_eq!(rules.backoff(1, 0.9), Duration::from_millis(50));
        assert_eq!(rules.backoff(2, 0.9), Duration::from_millis(200));
    }

    #[test]
    fn a_retry_section_lists_codes_and_shapes_the_backoff() {
        let policy = RetryPolicy {
            max_attempts: 5,
            backoff_ms: 100,
            max_backoff_ms: 300,
            jitter: false,
            on: vec![ErrorCode::E004],
        };
        let rules = RetryRules::of(&manifest(Some(policy.clone()), true));
        assert!(rules.retries(4, false, Some(ErrorCode::E004)));
        assert!(!rules.retries(5, false, Some(ErrorCode::E004)));
        assert!(
            !rules.retries(1, false, Some(ErrorCode::E002)),
            "retry_safe is the old switch"
        );
        assert!(
            rules.retries(1, true, Some(ErrorCode::E005)),
            "infra failures always retry"
        );
        let waits: Vec<u128> = (1..=4).map(|n| rules.backoff(n, 0.0).as_millis()).collect();
        assert_eq!(waits, [100, 200, 300, 300]);
        let jittered = RetryRules::of(&manifest(
            Some(RetryPolicy {
                jitter: true,
                ..policy
            }),
            false,
        ));
        assert_eq!(jittered.backoff(1, 0.0), Duration::from_millis(75));
        assert_eq!(jittered.backoff(1, 1.0), Duration::from_millis(125));
    }
}
