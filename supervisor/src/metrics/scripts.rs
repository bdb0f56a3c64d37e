//! Per-script metric handles, resolved once per script name so a finished invocation costs a
//! map lookup by `&str` and a few atomic operations, never a label set built from owned strings.
//!
//! The `script` label is bounded: the first [`MAX_SCRIPT_LABELS`] script names seen since the
//! daemon started get a label of their own, every later one shares [`OTHER`]. Names are
//! admin-controlled (only registered scripts are ever invoked) but a registry may hold thousands;
//! each labelled script costs about 90 series (three latency histograms of 22 buckets plus
//! counters), so the cap keeps one daemon's scrape near 9,000 series at most. A script keeps the
//! label it got for the daemon's lifetime, so its counters never jump between series; a restart
//! reassigns them (in the order scripts are used).

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use dashmap::DashMap;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

use crate::execution::State;

/// Scripts with a `script` label of their own; see the module documentation.
pub const MAX_SCRIPT_LABELS: usize = 100;

/// The label shared by scripts beyond the cap. Script names start with a letter or digit, so no
/// script can be called this.
pub const OTHER: &str = "_other";

/// Upper bounds (seconds) of the latency histograms: ×2 steps from 50 µs to 52 s. A warm call
/// takes 0.1–0.4 ms, so the first buckets must be sub-millisecond to tell a healthy warm path
/// from a degraded one; written out so the `le` labels are the decimals shown here.
pub const LATENCY_BUCKETS: [f64; 21] = [
    0.00005, 0.0001, 0.0002, 0.0004, 0.0008, 0.0016, 0.0032, 0.0064, 0.0128, 0.0256, 0.0512,
    0.1024, 0.2048, 0.4096, 0.8192, 1.6384, 3.2768, 6.5536, 13.1072, 26.2144, 52.4288,
];

/// A latency histogram with [`LATENCY_BUCKETS`] (a `fn`, so families can construct it).
pub fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InvocationLabels {
    pub script: String,
    pub runtime: String,
    pub outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScriptLabel {
    pub script: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CpuLabels {
    pub script: String,
    pub mode: &'static str,
}

/// A CPU-seconds counter (fractions of a second add up).
pub type CpuCounter = Counter<f64, AtomicU64>;

/// The metric families that carry a `script` label.
#[derive(Debug, Clone)]
pub struct Families {
    pub invocations: Family<InvocationLabels, Counter>,
    pub duration: Family<ScriptLabel, Histogram, fn() -> Histogram>,
    pub queue_wait: Family<ScriptLabel, Histogram, fn() -> Histogram>,
    pub cold_start: Family<ScriptLabel, Histogram, fn() -> Histogram>,
    pub cpu: Family<CpuLabels, CpuCounter>,
    pub peak_memory: Family<ScriptLabel, Gauge>,
    pub retries: Family<ScriptLabel, Counter>,
}

impl Families {
    pub fn new() -> Self {
        let histograms = || Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        Families {
            invocations: Family::default(),
            duration: histograms(),
            queue_wait: histograms(),
            cold_start: histograms(),
            cpu: Family::default(),
            peak_memory: Family::default(),
            retries: Family::default(),
        }
    }
}

/// The terminal states, in the order of [`ScriptMetrics`]' outcome counters.
const OUTCOMES: [State; 4] = [
    State::Completed,
    State::Failed,
    State::Timeout,
    State::Cancelled,
];

fn outcome_index(state: State) -> Option<usize> {
    OUTCOMES.iter().position(|s| *s == state)
}

/// The handles of one `script` label value.
#[derive(Debug)]
pub struct ScriptMetrics {
    /// The label value: the script's name, or [`OTHER`].
    pub label: String,
    families: Families,
    /// Outcome counters for the runtime the script was first seen with (a script's versions
    /// almost always share one); another runtime goes through the family.
    outcomes: OnceLock<(String, [Counter; 4])>,
    pub duration: Histogram,
    pub queue_wait: Histogram,
    pub cold_start: Histogram,
    pub cpu_user: CpuCounter,
    pub cpu_system: CpuCounter,
    pub peak_memory: Gauge,
    pub retries: Counter,
}

impl ScriptMetrics {
    fn new(families: &Families, label: &str) -> Self {
        let script = ScriptLabel {
            script: label.to_owned(),
        };
        let cpu = |mode| {
            families
                .cpu
                .get_or_create(&CpuLabels {
                    script: label.to_owned(),
                    mode,
                })
                .clone()
        };
        ScriptMetrics {
            label: label.to_owned(),
            families: families.clone(),
            outcomes: OnceLock::new(),
            duration: families.duration.get_or_create(&script).clone(),
            queue_wait: families.queue_wait.get_or_create(&script).clone(),
            cold_start: families.cold_start.get_or_create(&script).clone(),
            cpu_user: cpu("user"),
            cpu_system: cpu("system"),
            peak_memory: families.peak_memory.get_or_create(&script).clone(),
            retries: families.retries.get_or_create(&script).clone(),
        }
    }

    /// Counts one finished invocation of `runtime` ending in `state`.
    pub fn count_outcome(&self, runtime: &str, state: State) {
        let (rt, counters) = self.outcomes.get_or_init(|| {
            let counters = OUTCOMES.map(|s| self.outcome_counter(runtime, s));
            (runtime.to_owned(), counters)
        });
        match outcome_index(state) {
            Some(i) if rt == runtime => {
                counters[i].inc();
            }
            _ => {
                self.outcome_counter(runtime, state).inc();
            }
        }
    }

    fn outcome_counter(&self, runtime: &str, state: State) -> Counter {
        self.families
            .invocations
            .get_or_create(&InvocationLabels {
                script: self.label.clone(),
                runtime: runtime.to_owned(),
                outcome: state.as_str(),
            })
            .clone()
    }
}

/// Script name → handles, with the label cap.
#[derive(Debug)]
pub struct Scripts {
    families: Families,
    by_name: DashMap<String, Arc<ScriptMetrics>>,
    other: OnceLock<Arc<ScriptMetrics>>,
    /// Serialises label assignment so the cap is exact under concurrent first calls.
    assigning: Mutex<()>,
}

impl Scripts {
    pub fn new(families: Families) -> Self {
        Scripts {
            families,
            by_name: DashMap::new(),
            other: OnceLock::new(),
            assigning: Mutex::new(()),
        }
    }

    /// The handles of `name`: one `&str` lookup once the name has been seen.
    pub fn get(&self, name: &str) -> Arc<ScriptMetrics> {
        if let Some(h) = self.by_name.get(name) {
            return Arc::clone(h.value());
        }
        self.assign(name)
    }

    /// First sight of `name` (or a name beyond the cap, every time).
    #[cold]
    fn assign(&self, name: &str) -> Arc<ScriptMetrics> {
        let _one_at_a_time = self
            .assigning
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(h) = self.by_name.get(name) {
            return Arc::clone(h.value());
        }
        if self.by_name.len() >= MAX_SCRIPT_LABELS {
            return Arc::clone(
                self.other
                    .get_or_init(|| Arc::new(ScriptMetrics::new(&self.families, OTHER))),
            );
        }
        let h = Arc::new(ScriptMetrics::new(&self.families, name));
        self.by_name.insert(name.to_owned(), Arc::clone(&h));
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_beyond_the_cap_share_one_label() {
        let scripts = Scripts::new(Families::new());
        for i in 0..MAX_SCRIPT_LABELS {
            assert_eq!(scripts.get(&format!("s{i}")).label, format!("s{i}"));
        }
        assert_eq!(scripts.get("one-more").label, OTHER);
        assert_eq!(scripts.get("and-another").label, OTHER);
        // A name that got its own label keeps it.
        assert_eq!(scripts.get("s0").label, "s0");
        assert!(Arc::ptr_eq(&scripts.get("s7"), &scripts.get("s7")));
    }

    #[test]
    fn outcomes_count_per_runtime() {
        let families = Families::new();
        let scripts = Scripts::new(families.clone());
        let h = scripts.get("a");
        h.count_outcome("python3", State::Completed);
        h.count_outcome("python3", State::Completed);
        h.count_outcome("python3", State::Timeout);
        h.count_outcome("node", State::Completed);
        let get = |runtime: &str, outcome| {
            families
                .invocations
                .get_or_create(&InvocationLabels {
                    script: "a".into(),
                    runtime: runtime.into(),
                    outcome,
                })
                .get()
        };
        assert_eq!(get("python3", "completed"), 2);
        assert_eq!(get("python3", "timeout"), 1);
        assert_eq!(get("node", "completed"), 1);
    }
}
