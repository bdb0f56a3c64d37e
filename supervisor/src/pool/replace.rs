//! Starting an executor's replacement before it is retired.
//!
//! An executor serves at most its manifest's `pool.max_requests` requests. Retired only when it
//! reaches the limit, it left the next caller to wait for a cold start (tens of milliseconds
//! for Python, a second for the JVM) once every `max_requests` calls, in steady traffic. So
//! when an executor comes back close to its limit — closer, at the rate it has been serving,
//! than two of its own start-up times — its replacement is started in the background, if its
//! pool and the daemon's budget have room for one more; it waits idle and takes over when the
//! old one is retired. A pool at its `max` recycles the way it did: retire, then start.

use std::time::{Duration, Instant};

/// Whether an executor that has served `served` of its `max_requests` requests since
/// `started`, and took `cold_start` to start, should have its replacement started now.
pub fn due(served: u64, max_requests: u64, started: Instant, cold_start: Duration) -> bool {
    due_at(served, max_requests, started.elapsed(), cold_start)
}

fn due_at(served: u64, max_requests: u64, age: Duration, cold_start: Duration) -> bool {
    let left = max_requests.saturating_sub(served);
    if left == 0 || served == 0 {
        // Retired now (its replacement is an ordinary start), or nothing to go by yet.
        return false;
    }
    let per_request = age.as_secs_f64() / served as f64;
    let lead = 2.0 * cold_start.as_secs_f64();
    // Requests it will serve while its replacement starts, with room for one start's jitter.
    per_request * (left as f64) <= lead
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn far_from_the_limit_nothing_starts() {
        // 1,000 calls in a second, 9,000 left: nine seconds away from a 30 ms start.
        assert!(!due_at(1_000, 10_000, 1_000 * MS, 30 * MS));
    }

    #[test]
    fn within_two_start_times_of_the_limit_the_replacement_starts() {
        // 1 ms per call, 50 left: 50 ms away, and two 30 ms starts are 60 ms.
        assert!(due_at(9_950, 10_000, 9_950 * MS, 30 * MS));
        assert!(!due_at(9_930, 10_000, 9_930 * MS, 30 * MS));
    }

    #[test]
    fn a_slow_start_is_started_earlier() {
        // A JVM taking a second to start, 100 calls a second: 200 calls ahead.
        assert!(due_at(9_800, 10_000, 98_000 * MS, 1_000 * MS));
        assert!(!due_at(9_700, 10_000, 97_000 * MS, 1_000 * MS));
    }

    #[test]
    fn at_the_limit_or_before_the_first_call_it_does_not() {
        assert!(!due_at(10_000, 10_000, 10 * MS, 30 * MS));
        assert!(!due_at(0, 10_000, 10 * MS, 30 * MS));
    }
}
