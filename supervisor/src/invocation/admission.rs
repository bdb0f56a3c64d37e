//! Admission control: what is refused before it is accepted, so no queue grows without bound.
//!
//! Three limits: a script's `pool.max_concurrency` (its executions queued or running at once),
//! a global bound on accepted async executions not yet finished, and an optional token bucket
//! per caller uid. A refusal says how long to wait (`Retry-After`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AdmissionError {
    /// The script has `max_concurrency` executions in flight.
    #[error("script {script} already has {limit} executions in flight (its pool.max_concurrency)")]
    Concurrency {
        /// The script.
        script: String,
        /// Its limit.
        limit: u32,
    },
    /// Too many accepted async executions are unfinished.
    #[error("too many async executions in flight ({limit}); try again shortly")]
    Backlog {
        /// The bound.
        limit: usize,
    },
    /// The caller's rate limit.
    #[error("caller uid {uid} is over its rate limit of {rate} requests per second")]
    RateLimited {
        /// The caller.
        uid: u32,
        /// Its rate.
        rate: f64,
    },
}

impl AdmissionError {
    /// Seconds the caller should wait.
    pub fn retry_after(&self) -> u64 {
        1
    }
}

/// A token bucket: `rate` tokens a second, at most `burst` saved.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: f64, burst: f64, now: Instant) -> Self {
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Takes a token if there is one.
    pub fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Rate limit per caller uid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Requests per second.
    pub rate: f64,
    /// Requests allowed at once after a quiet spell.
    pub burst: f64,
}

/// The admission state of the daemon.
#[derive(Debug)]
pub struct Admission {
    inner: Arc<Mutex<Counts>>,
    /// The limits, swapped by a reload (SIGHUP) while requests are admitted.
    limits: Mutex<Limits>,
    buckets: Mutex<HashMap<u32, TokenBucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Limits {
    rate: Option<RateLimit>,
    backlog_max: usize,
}

#[derive(Debug, Default)]
struct Counts {
    per_script: HashMap<String, u32>,
    backlog: usize,
}

/// Held while an execution is in flight; dropping it frees its place.
#[derive(Debug)]
pub struct Permit {
    counts: Arc<Mutex<Counts>>,
    script: Option<String>,
    backlog: bool,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut c = lock(&self.counts);
        if let Some(script) = &self.script
            && let Some(n) = c.per_script.get_mut(script)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.per_script.remove(script);
            }
        }
        if self.backlog {
            c.backlog = c.backlog.saturating_sub(1);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Admission {
    /// Async executions beyond `backlog_max` are refused; `rate` limits each caller uid.
    pub fn new(backlog_max: usize, rate: Option<RateLimit>) -> Self {
        Admission {
            inner: Arc::default(),
            limits: Mutex::new(Limits { rate, backlog_max }),
            buckets: Mutex::default(),
        }
    }

    /// Applies new limits (a reload). Executions already admitted keep their places; the
    /// per-caller buckets start again full, since their figures may be of the old rate.
    pub fn set_limits(&self, backlog_max: usize, rate: Option<RateLimit>) {
        *lock(&self.limits) = Limits { rate, backlog_max };
        lock(&self.buckets).clear();
    }

    /// Admits one execution of `script` for caller `uid`, or says why not. `asynchronous`
    /// executions count against the backlog bound; `max_concurrency` is the script's limit.
    pub fn admit(
        &self,
        script: &str,
        max_concurrency: Option<u32>,
        uid: Option<u32>,
        asynchronous: bool,
    ) -> Result<Permit, AdmissionError> {
        let Limits { rate, backlog_max } = *lock(&self.limits);
        if let (Some(limit), Some(uid)) = (rate, uid) {
            let now = Instant::now();
            let mut buckets = lock(&self.buckets);
            if buckets.len() > 10_000 {
                // Full buckets carry no state worth keeping; forget them rather than grow.
                buckets.retain(|_, b| !b.is_full(now));
            }
            let bucket = buckets
                .entry(uid)
                .or_insert_with(|| TokenBucket::new(limit.rate, limit.burst, now));
            if !bucket.take(now) {
                return Err(AdmissionError::RateLimited {
                    uid,
                    rate: limit.rate,
                });
            }
        }
        let mut c = lock(&self.inner);
        if asynchronous && c.backlog >= backlog_max {
            return Err(AdmissionError::Backlog { limit: backlog_max });
        }
        if let Some(limit) = max_concurrency
            && c.per_script.get(script).copied().unwrap_or(0) >= limit
        {
            return Err(AdmissionError::Concurrency {
                script: script.to_owned(),
                limit,
            });
        }
        let script = max_concurrency.map(|_| {
            *c.per_script.entry(script.to_owned()).or_default() += 1;
            script.to_owned()
        });
        if asynchronous {
            c.backlog += 1;
        }
        Ok(Permit {
            counts: Arc::clone(&self.inner),
            script,
            backlog: asynchronous,
        })
    }
}

impl TokenBucket {
    /// Whether the bucket would be full at `now` (it can be forgotten).
    fn is_full(&self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens + elapsed * self.rate >= self.burst
    }
}

/// A rate limit from the config's `[admission]` figures (`rate_per_uid = 0` means off).
pub fn rate_limit(rate_per_uid: f64, burst: f64) -> Option<RateLimit> {
    (rate_per_uid > 0.0).then_some(RateLimit {
        rate: rate_per_uid,
        burst: burst.max(1.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_bucket_allows_the_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(2.0, 3.0, t0);
        assert!((0..3).all(|_| b.take(t0)));
        assert!(!b.take(t0));
        assert!(!b.take(t0 + Duration::from_millis(400)));
        assert!(b.take(t0 + Duration::from_millis(500)));
        assert!(!b.take(t0 + Duration::from_millis(500)));
        // A long quiet spell refills only up to the burst.
        let later = t0 + Duration::from_secs(60);
        assert_eq!((0..10).filter(|_| b.take(later)).count(), 3);
    }

    #[test]
    fn max_concurrency_counts_permits_in_flight() {
        let a = Admission::new(100, None);
        let p1 = a.admit("s", Some(2), None, false).unwrap();
        let _p2 = a.admit("s", Some(2), None, true).unwrap();
        assert!(matches!(
            a.admit("s", Some(2), None, false),
            Err(AdmissionError::Concurrency { limit: 2, .. })
        ));
        assert!(a.admit("other", Some(2), None, false).is_ok());
        drop(p1);
        assert!(a.admit("s", Some(2), None, false).is_ok());
        // Without a limit nothing is counted.
        assert!((0..10).all(|_| a.admit("free", None, None, false).is_ok()));
    }

    #[test]
    fn the_async_backlog_is_bounded() {
        let a = Admission::new(2, None);
        let held: Vec<_> = (0..2)
            .map(|_| a.admit("s", None, None, true).unwrap())
            .collect();
        assert!(matches!(
            a.admit("s", None, None, true),
            Err(AdmissionError::Backlog { limit: 2 })
        ));
        assert!(
            a.admit("s", None, None, false).is_ok(),
            "sync calls queue in the pool"
        );
        drop(held);
        assert!(a.admit("s", None, None, true).is_ok());
    }

    #[test]
    fn the_rate_limit_is_per_uid() {
        let a = Admission::new(100, rate_limit(1.0, 2.0));
        assert!(a.admit("s", None, Some(1), false).is_ok());
        assert!(a.admit("s", None, Some(1), false).is_ok());
        assert!(matches!(
            a.admit("s", None, Some(1), false),
            Err(AdmissionError::RateLimited { uid: 1, .. })
        ));
        assert!(a.admit("s", None, Some(2), false).is_ok());
        assert!(rate_limit(0.0, 5.0).is_none());
    }
}
