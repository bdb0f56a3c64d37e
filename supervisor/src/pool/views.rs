//! What the pools look like from outside: `GET /v1/pools` and the metrics.

use std::collections::HashMap;

use serde::Serialize;

use super::Pools;

/// One pool's state, for `GET /v1/pools`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PoolView {
    /// Script name.
    pub script: String,
    /// Version id.
    pub version: String,
    /// Idle executors.
    pub idle: usize,
    /// Busy executors.
    pub busy: usize,
    /// Starting executors.
    pub starting: usize,
    /// Waiting invocations.
    pub waiting: usize,
    /// Pool `max`.
    pub max: u32,
    /// Pool `min_warm`.
    pub min_warm: u32,
    /// The memory limit each of its executors counts against `pools.max_memory_mb`, in MiB.
    pub memory_mb: u64,
    /// Executors started so far.
    pub spawned: u64,
    /// Starts that failed.
    pub start_failures: u64,
    /// Median of the last cold starts, in ms.
    pub cold_start_ms_p50: Option<f64>,
}

impl Pools {
    /// State of every pool, sorted by script and version.
    pub fn views(&self) -> Vec<PoolView> {
        let counts = self.inner.lock().counts();
        let mut out: Vec<PoolView> = counts
            .into_iter()
            .map(|(k, p, c)| {
                let (spawned, start_failures, p50) = match self.inner.stats.get(&k) {
                    Some(s) => (s.spawned, s.start_failures, median(&s.recent_cold_ms)),
                    None => (0, 0, None),
                };
                PoolView {
                    script: k.script,
                    version: k.version,
                    idle: c.idle,
                    busy: c.busy,
                    starting: c.starting,
                    waiting: c.waiting,
                    max: p.max,
                    min_warm: p.min_warm,
                    memory_mb: c.memory_mb,
                    spawned,
                    start_failures,
                    cold_start_ms_p50: p50,
                }
            })
            .collect();
        out.sort_by(|a, b| (&a.script, &a.version).cmp(&(&b.script, &b.version)));
        out
    }

    /// Executors started and starts that failed, per script, since the daemon started: the
    /// pools' own figures plus those of pools forgotten since, never reset, so they can back
    /// counters.
    pub fn start_counts(&self) -> HashMap<String, (u64, u64)> {
        let mut out: HashMap<String, (u64, u64)> = HashMap::new();
        for s in self.inner.stats.iter() {
            let e = out.entry(s.key().script.clone()).or_default();
            e.0 += s.spawned;
            e.1 += s.start_failures;
        }
        for f in self.inner.forgotten_starts.iter() {
            let e = out.entry(f.key().clone()).or_default();
            e.0 += f.0;
            e.1 += f.1;
        }
        out
    }

    /// Totals: (live executors, waiting invocations).
    pub fn totals(&self) -> (usize, usize) {
        let t = self.inner.lock();
        (t.live(), t.waiting())
    }

    /// The budget in force and the memory limits of the executors alive, summed, in MiB.
    pub fn budget(&self) -> (super::Budget, u64) {
        let t = self.inner.lock();
        (t.budget(), t.memory_mb())
    }
}

fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    Some(s[s.len() / 2])
}
