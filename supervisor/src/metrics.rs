//! Prometheus metrics (`GET /metrics`, text format via `prometheus-client`).
//!
//! Counters and histograms move when an execution record is finished ([`Metrics::observe`]);
//! pool sizes, queue depth, spawns and history lag are read from their owners at scrape time,
//! so there is no second bookkeeping that could drift.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::execution::{ErrorCode, ExecutionRecord};
use crate::pool::PoolView;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InvocationLabels {
    script: String,
    runtime: String,
    outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    script: String,
    version: String,
    state: String,
}

/// Every metric the daemon exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    invocations: Family<InvocationLabels, Counter>,
    duration: Histogram,
    cold_start: Histogram,
    executors: Family<PoolLabels, Gauge>,
    queue_depth: Gauge,
    spawns: Counter,
    spawns_seen: AtomicU64,
    oom_kills: Counter,
    timeouts: Counter,
    protocol_faults: Counter,
    history_lag: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric under the `runwarm_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("runwarm");
        let invocations = Family::<InvocationLabels, Counter>::default();
        registry.register(
            "invocations",
            "Finished invocations by script, runtime and outcome",
            invocations.clone(),
        );
        // 1 ms … ~65 s.
        let duration = Histogram::new(exponential_buckets(0.001, 2.0, 17));
        registry.register(
            "invocation_duration_seconds",
            "Wall time of finished invocations, queueing included",
            duration.clone(),
        );
        let cold_start = Histogram::new(exponential_buckets(0.001, 2.0, 15));
        registry.register(
            "cold_start_seconds",
            "Executor start time of invocations that started one",
            cold_start.clone(),
        );
        let executors = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "pool_executors",
            "Executors per pool by state (idle, busy, starting)",
            executors.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "queue_depth",
            "Invocations waiting for an executor",
            queue_depth.clone(),
        );
        let spawns = Counter::default();
        registry.register("spawns", "Executors started", spawns.clone());
        let oom_kills = Counter::default();
        registry.register(
            "oom_kills",
            "Invocations ended by the memory limit",
            oom_kills.clone(),
        );
        let timeouts = Counter::default();
        registry.register(
            "timeouts",
            "Invocations ended by the time limit",
            timeouts.clone(),
        );
        let protocol_faults = Counter::default();
        registry.register(
            "protocol_faults",
            "Executors retired for breaking the protocol",
            protocol_faults.clone(),
        );
        let history_lag = Gauge::default();
        registry.register(
            "history_pending_records",
            "Records accepted but not yet written to the history database",
            history_lag.clone(),
        );
        Metrics {
            registry,
            invocations,
            duration,
            cold_start,
            executors,
            queue_depth,
            spawns,
            spawns_seen: AtomicU64::new(0),
            oom_kills,
            timeouts,
            protocol_faults,
            history_lag,
        }
    }

    /// Counts one finished execution.
    pub fn observe(&self, rec: &ExecutionRecord, runtime: &str) {
        self.invocations
            .get_or_create(&InvocationLabels {
                script: rec.script.clone(),
                runtime: runtime.to_owned(),
                outcome: rec.state.as_str().to_owned(),
            })
            .inc();
        self.duration.observe(rec.timings.total_ms / 1000.0);
        if rec.cold {
            self.cold_start.observe(rec.timings.cold_start_ms / 1000.0);
        }
        if let Some(e) = &rec.error {
            match e.code {
                ErrorCode::E003 => {
                    self.oom_kills.inc();
                }
                ErrorCode::E004 => {
                    self.timeouts.inc();
                }
                ErrorCode::E005 if e.kind == "ProtocolFault" => {
                    self.protocol_faults.inc();
                }
                _ => {}
            }
        }
    }

    /// Renders the text format, refreshing the scrape-time figures first.
    pub fn render(&self, pools: &[PoolView], history_pending: usize) -> String {
        self.executors.clear();
        let mut waiting = 0;
        let mut spawned = 0u64;
        for p in pools {
            for (state, n) in [("idle", p.idle), ("busy", p.busy), ("starting", p.starting)] {
                self.executors
                    .get_or_create(&PoolLabels {
                        script: p.script.clone(),
                        version: p.version.clone(),
                        state: state.to_owned(),
                    })
                    .set(i64::try_from(n).unwrap_or(i64::MAX));
            }
            waiting += p.waiting;
            spawned += p.spawned;
        }
        // Pools keep their spawn count for their lifetime; only growth is added, so the counter
        // never goes back when a pool is dropped.
        let seen = self.spawns_seen.fetch_max(spawned, Ordering::AcqRel);
        if spawned > seen {
            self.spawns.inc_by(spawned - seen);
        }
        self.queue_depth
            .set(i64::try_from(waiting).unwrap_or(i64::MAX));
        self.history_lag
            .set(i64::try_from(history_pending).unwrap_or(i64::MAX));
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "encoding metrics failed");
        }
        out
    }
}
