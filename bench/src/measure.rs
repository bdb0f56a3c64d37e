//! Latency samples and their summary: nearest-rank percentiles, maximum and mean.
//!
//! Nearest-rank (the smallest sample with at least p% of the samples at or below it) always
//! reports a latency that was really observed, which is what a reader of "p99 = 812 µs" assumes.

use std::time::Duration;

use serde_json::{Value, json};

/// A summary of latency samples, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Number of samples.
    pub count: usize,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl Summary {
    /// Summarises durations; `None` when there are none.
    pub fn of_durations(samples: &[Duration]) -> Option<Summary> {
        let micros: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e6).collect();
        Summary::of_micros(micros)
    }

    /// Summarises samples already in microseconds; non-finite values are dropped, and `None`
    /// comes back when nothing is left.
    pub fn of_micros(mut micros: Vec<f64>) -> Option<Summary> {
        micros.retain(|x| x.is_finite());
        if micros.is_empty() {
            return None;
        }
        micros.sort_by(f64::total_cmp);
        let mean = micros.iter().sum::<f64>() / micros.len() as f64;
        Some(Summary {
            count: micros.len(),
            p50: nearest_rank(&micros, 50),
            p90: nearest_rank(&micros, 90),
            p99: nearest_rank(&micros, 99),
            max: micros[micros.len() - 1],
            mean,
        })
    }

    /// The summary as JSON, values in microseconds rounded to 0.1.
    pub fn to_json(self) -> Value {
        json!({
            "count": self.count,
            "p50_us": round1(self.p50),
            "p90_us": round1(self.p90),
            "p99_us": round1(self.p99),
            "max_us": round1(self.max),
            "mean_us": round1(self.mean),
        })
    }
}

/// The nearest-rank percentile of sorted, non-empty samples.
fn nearest_rank(sorted: &[f64], percent: usize) -> f64 {
    let n = sorted.len();
    // Rank k (1-based) is the smallest with k/n >= p/100; integer arithmetic, so 0.9 * 10 cannot
    // come out as 9.000000000000002 and pick the tenth sample.
    let rank = (percent * n).div_ceil(100);
    sorted[rank.clamp(1, n) - 1]
}

/// Rounds to one decimal, for JSON that is read by people as well.
pub fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Milliseconds (as the daemon reports them) to microseconds.
pub fn ms_to_us(ms: f64) -> f64 {
    ms * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_one_to_hundred_are_the_ranks() {
        let s = Summary::of_micros((1..=100).rev().map(f64::from).collect()).unwrap();
        assert_eq!(s.count, 100);
        assert_eq!((s.p50, s.p90, s.p99, s.max), (50.0, 90.0, 99.0, 100.0));
        assert_eq!(s.mean, 50.5);
    }

    #[test]
    fn percentiles_of_few_samples_are_observed_values() {
        // Ten samples: p99 is the largest, p90 the ninth, p50 the fifth.
        let s = Summary::of_micros((1..=10).map(|x| f64::from(x) * 10.0).collect()).unwrap();
        assert_eq!((s.p50, s.p90, s.p99, s.max), (50.0, 90.0, 100.0, 100.0));
        let one = Summary::of_micros(vec![7.0]).unwrap();
        assert_eq!((one.p50, one.p99, one.max, one.mean), (7.0, 7.0, 7.0, 7.0));
    }

    #[test]
    fn a_tail_outlier_moves_p99_and_max_but_not_p50() {
        let mut xs = vec![100.0; 199];
        xs.push(5000.0);
        let s = Summary::of_micros(xs).unwrap();
        assert_eq!((s.p50, s.p99, s.max), (100.0, 100.0, 5000.0));
        let mut xs = vec![100.0; 98];
        xs.extend([5000.0, 6000.0]);
        assert_eq!(Summary::of_micros(xs).unwrap().p99, 5000.0);
    }

    #[test]
    fn empty_and_non_finite_samples_give_no_summary() {
        assert_eq!(Summary::of_micros(vec![]), None);
        assert_eq!(Summary::of_micros(vec![f64::NAN, f64::INFINITY]), None);
        let s = Summary::of_micros(vec![f64::NAN, 3.0]).unwrap();
        assert_eq!(s.count, 1);
    }

    #[test]
    fn durations_are_summarised_in_microseconds() {
        let s =
            Summary::of_durations(&[Duration::from_micros(120), Duration::from_millis(1)]).unwrap();
        assert_eq!((s.p50, s.max), (120.0, 1000.0));
    }
}
