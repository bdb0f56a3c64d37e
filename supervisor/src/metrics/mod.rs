//! Prometheus metrics (`GET /metrics`, OpenMetrics text via `prometheus-client`).
//!
//! Three kinds of figures:
//! - per finished execution ([`Metrics::observe`]): outcome counters, latency histograms, CPU,
//!   peak memory and retries per script. This is on the warm path, so each script's handles
//!   are resolved once (see `scripts`) and a call costs a `&str` map lookup, three
//!   uncontended histogram locks and a few atomic adds, with no allocation (~130 ns in a release
//!   build);
//! - per refusal ([`Metrics::refused`], the reasons in `refusal`): one counter per reason, all
//!   created at start so every series exists (at 0) before the first refusal;
//! - read from their owners at scrape time (`live`, `process`): pools, queue, executor
//!   starts, history writer, prepare cache, the daemon's own process. There is no second
//!   bookkeeping that could drift.
//!
//! Every name is documented in the README ("Logs and metrics"); `ops/grafana/runwarm.json` and
//! `ops/prometheus/runwarm-alerts.yml` use them, and an end-to-end test checks that each name
//! they use is served.

mod live;
mod process;
mod refusal;
mod scripts;

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

pub use self::refusal::Refusal;
pub use self::scripts::{LATENCY_BUCKETS, MAX_SCRIPT_LABELS, OTHER};
use crate::execution::{ErrorCode, ExecutionRecord};
use crate::history::History;
use crate::pool::Pools;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    reason: &'static str,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    commit: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PrepareStepLabels {
    runtime: String,
    step: &'static str,
}

/// The version and commit `runwarm_build_info` reports.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The git commit the binary was built from (`build.rs`), or `unknown` outside a checkout.
pub const COMMIT: &str = match option_env!("RUNWARM_GIT_COMMIT") {
    Some(c) => c,
    None => "unknown",
};

fn prepare_histogram() -> Histogram {
    // 0.1 s … ~27 min: a cached pip install takes a second, a Maven download minutes.
    Histogram::new(exponential_buckets(0.1, 2.0, 15))
}

/// Every metric the daemon exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    scripts: Arc<scripts::Scripts>,
    refusals: [Counter; Refusal::ALL.len()],
    oom_kills: Counter,
    timeouts: Counter,
    protocol_faults: Counter,
    prepare_seconds: Family<PrepareStepLabels, Histogram, fn() -> Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// The metrics of finished executions and refusals only (no pools or history to read).
    pub fn new() -> Self {
        Self::build(None)
    }

    /// Every metric, reading pools, executor starts, the history writer and the prepare cache
    /// at scrape time, and counting the callback worker's attempts.
    pub fn with_sources(
        pools: Pools,
        history: History,
        deliveries: &crate::callbacks::DeliveryMetrics,
    ) -> Self {
        Self::build(Some((pools, history, deliveries)))
    }

    fn build(sources: Option<(Pools, History, &crate::callbacks::DeliveryMetrics)>) -> Self {
        let mut root = Registry::default();
        root.register_collector(Box::new(process::ProcessCollector::new()));
        let registry = root.sub_registry_with_prefix("runwarm");

        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: VERSION,
                commit: COMMIT,
            })
            .set(1);
        registry.register(
            "build_info",
            "Always 1; the labels say which runwarmd this is",
            build,
        );

        let families = scripts::Families::new();
        registry.register(
            "invocations",
            "Finished invocations by script, runtime and outcome (completed, failed, timeout, cancelled)",
            families.invocations.clone(),
        );
        registry.register(
            "invocation_duration_seconds",
            "Wall time of finished invocations, from acceptance to the record (queue wait and cold start included)",
            families.duration.clone(),
        );
        registry.register(
            "queue_wait_seconds",
            "Time finished invocations waited for an executor (a cold start included)",
            families.queue_wait.clone(),
        );
        registry.register(
            "cold_start_seconds",
            "Executor start time of invocations that started one",
            families.cold_start.clone(),
        );
        registry.register(
            "script_cpu_seconds",
            "CPU time of scripts' executions by mode (user, system), where cgroups measure it",
            families.cpu.clone(),
        );
        registry.register(
            "script_peak_memory_bytes",
            "Peak memory of the executor that ran the script's latest execution, where cgroups measure it",
            families.peak_memory.clone(),
        );
        registry.register(
            "retries",
            "Attempts beyond the first (infrastructure failures, and script errors of retry_safe scripts)",
            families.retries.clone(),
        );
        let scripts = Arc::new(scripts::Scripts::new(families));

        let refusal_family = Family::<RefusalLabels, Counter>::default();
        let refusals = Refusal::ALL.map(|r| {
            refusal_family
                .get_or_create(&RefusalLabels {
                    reason: r.reason(),
                    status: r.status(),
                })
                .clone()
        });
        registry.register(
            "refusals",
            "Invocations refused before they ran, by reason and HTTP status (403 counts every route)",
            refusal_family,
        );

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
        let prepare_seconds =
            Family::<PrepareStepLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                prepare_histogram,
            );
        registry.register(
            "prepare_step_duration_seconds",
            "Wall time of prepare steps that ran (not those answered from the cache), by runtime and step",
            prepare_seconds.clone(),
        );

        if let Some((pools, history, deliveries)) = sources {
            deliveries.register(registry);
            // Listed from the start for every step a runtime defines, so dashboards and alerts
            // see zeros rather than no series.
            for rt in pools.launcher().catalog().all() {
                let Some(p) = &rt.def.prepare else { continue };
                let steps = [
                    ("toolchain", p.toolchain.is_some()),
                    ("dependencies", p.dependencies.is_some()),
                    ("build", p.build.is_some()),
                ];
                for (step, defined) in steps {
                    if defined {
                        let _created = prepare_seconds.get_or_create(&PrepareStepLabels {
                            runtime: rt.def.name.clone(),
                            step,
                        });
                    }
                }
            }
            registry.register_collector(Box::new(live::Live {
                pools,
                history,
                scripts: Arc::clone(&scripts),
            }));
        }

        Metrics {
            registry: root,
            scripts,
            refusals,
            oom_kills,
            timeouts,
            protocol_faults,
            prepare_seconds,
        }
    }

    /// Counts one finished execution (the warm path: no allocation once the script was seen).
    /// `first_attempt` is the attempt number the run started with, so retries inside it count.
    pub fn observe(&self, rec: &ExecutionRecord, runtime: &str, first_attempt: u32) {
        let s = self.scripts.get(&rec.script);
        s.count_outcome(runtime, rec.state);
        s.duration.observe(rec.timings.total_ms / 1000.0);
        s.queue_wait.observe(rec.timings.queue_ms / 1000.0);
        if rec.cold {
            s.cold_start.observe(rec.timings.cold_start_ms / 1000.0);
        }
        let r = &rec.resources;
        if let Some(ms) = r.cpu_user_ms {
            s.cpu_user.inc_by(ms / 1000.0);
        }
        if let Some(ms) = r.cpu_system_ms {
            s.cpu_system.inc_by(ms / 1000.0);
        }
        if let Some(bytes) = r.peak_memory_bytes {
            s.peak_memory.set(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
        if rec.attempt > first_attempt {
            s.retries.inc_by(u64::from(rec.attempt - first_attempt));
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

    /// Counts one refused request.
    pub fn refused(&self, why: Refusal) {
        if let Some(c) = Refusal::ALL
            .iter()
            .position(|r| *r == why)
            .and_then(|i| self.refusals.get(i))
        {
            c.inc();
        }
    }

    /// Records one prepare step that ran: `step` is `toolchain`, `dependencies` or `build`.
    pub fn prepare_step(&self, runtime: &str, step: &'static str, took: Duration) {
        self.prepare_seconds
            .get_or_create(&PrepareStepLabels {
                runtime: runtime.to_owned(),
                step,
            })
            .observe(took.as_secs_f64());
    }

    /// Renders the OpenMetrics text, reading the scrape-time figures.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "encoding metrics failed");
        }
        out
    }
}

#[cfg(test)]
mod tests;
