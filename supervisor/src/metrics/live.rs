//! Figures read from their owners at scrape time: pools, executor starts, history, prepare,
//! the log writer.
//!
//! Nothing here is counted twice: the pools, the history writer and the preparer keep their own
//! figures for `GET /v1/pools` and `GET /v1/runtimes`, and this collector only encodes them.
//! Their counts are never reset while the daemon runs, so they back Prometheus counters.

use std::collections::BTreeMap;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::scripts::Scripts;
use crate::history::History;
use crate::pool::Pools;

/// The owners the collector reads.
#[derive(Debug)]
pub struct Live {
    pub pools: Pools,
    pub history: History,
    pub scripts: Arc<Scripts>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    script: String,
    version: String,
    state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScriptLabel {
    script: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuntimeLabel {
    runtime: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PrepareLabels {
    runtime: String,
    outcome: &'static str,
}

/// Encodes one metric family from `(labels, value)` rows; the descriptor is written even with
/// no rows, so the family is listed from the first scrape.
fn family<L: EncodeLabelSet, V: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    rows: impl IntoIterator<Item = (L, V)>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
    for (labels, value) in rows {
        value.encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

fn gauge(n: usize) -> ConstGauge {
    ConstGauge::new(i64::try_from(n).unwrap_or(i64::MAX))
}

impl Collector for Live {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let views = self.pools.views();
        let waiting: usize = views.iter().map(|p| p.waiting).sum();
        let executors = views.iter().flat_map(|p| {
            [("idle", p.idle), ("busy", p.busy), ("starting", p.starting)].map(|(state, n)| {
                let labels = PoolLabels {
                    script: p.script.clone(),
                    version: p.version.clone(),
                    state,
                };
                (labels, gauge(n))
            })
        });
        // Pools exist only for versions with executors or waiters (idle ones retire after
        // their TTL), so `version` here stays bounded by what is warm.
        family(
            &mut encoder,
            "pool_executors",
            "Executors per pool by state (idle, busy, starting)",
            MetricType::Gauge,
            executors,
        )?;
        let depth = gauge(waiting);
        depth.encode(encoder.encode_descriptor(
            "queue_depth",
            "Invocations waiting for an executor",
            None,
            depth.metric_type(),
        )?)?;
        let (budget, memory_mb) = self.pools.budget();
        let bytes = |mb: u64| {
            ConstGauge::new(i64::try_from(mb.saturating_mul(1 << 20)).unwrap_or(i64::MAX))
        };
        bytes(memory_mb).encode(encoder.encode_descriptor(
            "executor_memory_limit_bytes",
            "The memory limits of the executors alive or starting, summed",
            None,
            MetricType::Gauge,
        )?)?;
        if budget.memory_mb != u64::MAX {
            bytes(budget.memory_mb).encode(encoder.encode_descriptor(
                "executor_memory_budget_bytes",
                "What their memory limits may add up to (pools.max_memory_mb)",
                None,
                MetricType::Gauge,
            )?)?;
        }

        // Per script label (names beyond the cap are summed into the shared one).
        let mut starts: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for (script, (spawned, failed)) in self.pools.start_counts() {
            let label = self.scripts.get(&script).label.clone();
            let e = starts.entry(label).or_default();
            e.0 += spawned;
            e.1 += failed;
        }
        family(
            &mut encoder,
            "spawns",
            "Executors started",
            MetricType::Counter,
            starts
                .iter()
                .map(|(s, (n, _))| (ScriptLabel { script: s.clone() }, ConstCounter::new(*n))),
        )?;
        family(
            &mut encoder,
            "executor_start_failures",
            "Executor starts that failed (spawn, sandbox, init, prepare), retried ones included",
            MetricType::Counter,
            starts
                .iter()
                .map(|(s, (_, n))| (ScriptLabel { script: s.clone() }, ConstCounter::new(*n))),
        )?;

        let lag = gauge(self.history.pending());
        lag.encode(encoder.encode_descriptor(
            "history_pending_records",
            "Records accepted but not yet written to the history database",
            None,
            lag.metric_type(),
        )?)?;
        let dropped = ConstCounter::new(crate::daemon::logging::dropped_lines());
        dropped.encode(encoder.encode_descriptor(
            "log_lines_dropped",
            "Log lines dropped because stderr's reader (the journal, a pipe) fell behind",
            None,
            dropped.metric_type(),
        )?)?;
        let errors = ConstCounter::new(self.history.write_errors());
        errors.encode(encoder.encode_descriptor(
            "history_write_errors",
            "Failed writes to the history database (each retry of a failed batch counts) and records that could not be queued",
            None,
            errors.metric_type(),
        )?)?;

        // Every runtime that has a prepare section is listed from the start, so `rate()` and
        // `increase()` see a zero before the first step instead of no series at all.
        let preparer = self.pools.launcher().preparer();
        let mut figures = preparer.figures();
        for rt in self.pools.launcher().catalog().all() {
            if rt.def.prepare.is_some() {
                figures.entry(rt.def.name.clone()).or_default();
            }
        }
        let steps = figures.iter().flat_map(|(runtime, f)| {
            [
                ("cached", f.hits),
                ("succeeded", f.misses.saturating_sub(f.failures)),
                ("failed", f.failures),
            ]
            .map(|(outcome, n)| {
                let labels = PrepareLabels {
                    runtime: runtime.clone(),
                    outcome,
                };
                (labels, ConstCounter::new(n))
            })
        });
        family(
            &mut encoder,
            "prepare_steps",
            "Prepare steps (dependencies, build, toolchain) by runtime and outcome: answered from the cache, ran and succeeded, ran and failed",
            MetricType::Counter,
            steps,
        )?;
        family(
            &mut encoder,
            "prepare_cache_bytes",
            "Bytes the prepare cache holds per runtime",
            MetricType::Gauge,
            figures.iter().map(|(runtime, f)| {
                let labels = RuntimeLabel {
                    runtime: runtime.clone(),
                };
                (
                    labels,
                    ConstGauge::new(i64::try_from(f.size_bytes).unwrap_or(i64::MAX)),
                )
            }),
        )?;
        family(
            &mut encoder,
            "prepare_cache_entries",
            "Entries (dependency environments, builds) in the prepare cache per runtime",
            MetricType::Gauge,
            figures.iter().map(|(runtime, f)| {
                let labels = RuntimeLabel {
                    runtime: runtime.clone(),
                };
                (labels, gauge(f.entries))
            }),
        )
    }
}
