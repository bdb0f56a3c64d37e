//! The per-runtime section: one tiny hello handler per language ([`crate::languages`]) in a
//! daemon of its own (so its prepare cache starts cold), measured through every stage a script
//! goes through: the first registration with a cold dependency cache, a code-only change, cold
//! starts, warm calls, and the anchor, the same handler run as a fresh process per call outside
//! runwarm. One table, then the targets computed from this run's figures.

mod report;
mod stages;
mod targets;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use runwarm_supervisor::client::Client;
use serde_json::Value;

use crate::daemon::{OwnDaemon, Stopped};
use crate::languages::{self, Anchor, KNOWN, Spec, Tools};
use crate::measure::Summary;
use crate::progress;
use crate::scenarios::{Errors, payload};

pub use report::{json, text};
use stages::{measure_warm, prepare_and_cold, time_anchors};

/// The version endpoint is polled this often while a prepare runs.
const POLL: Duration = Duration::from_millis(20);
/// A prepare that takes longer is reported as failed (a Maven download on a busy machine takes
/// a minute; the daemon's own step limit is ten).
const PREPARE_BOUND: Duration = Duration::from_secs(900);
/// Pause before each cold call, so the executor retired by the previous one is gone.
const COLD_PAUSE: Duration = Duration::from_millis(200);
/// Warm calls are taken in blocks of this many per runtime in turn, each after
/// [`BLOCK_WARMUP`] unmeasured ones.
const WARM_BLOCK: usize = 100;
const BLOCK_WARMUP: usize = 10;
/// Unmeasured fresh processes of each anchor before the timed ones.
const FRESH_WARMUP: usize = 2;

/// What to measure.
#[derive(Debug, Clone)]
pub struct Options {
    /// Runtimes to measure; every available one with a bench handler when `None`.
    pub runtimes: Option<Vec<String>>,
    /// Warm calls measured per runtime.
    pub calls: usize,
    /// Unmeasured warm calls per runtime before them.
    pub warmup: usize,
    /// Cold calls per runtime.
    pub cold: usize,
    /// Fresh processes timed per anchor.
    pub fresh: usize,
}

/// Refuses a `--runtimes` name the bench has no handler for, before anything starts.
pub fn check_names(names: Option<&[String]>) -> Result<()> {
    for name in names.unwrap_or_default() {
        if !KNOWN.contains(&name.as_str()) {
            bail!(
                "--runtimes: the bench has no handler for {name:?}; it has: {}",
                KNOWN.join(", ")
            );
        }
    }
    Ok(())
}

/// A registration timed from the POST until the daemon said the prepare was ready.
#[derive(Debug, Clone)]
pub struct Ready {
    pub version: String,
    /// POST until the poll that saw `ready` came back (the POST alone without a prepare).
    pub wall: Duration,
    /// The registration answer's `prepare` (absent for a runtime without prepare).
    pub answered: Option<String>,
    /// The prepare's own `duration_ms`.
    pub prepare_ms: Option<f64>,
    /// The runtime's toolchain seed (Go's compiled standard library), shown only by the
    /// registration that had to wait for it.
    pub toolchain: Option<StepFigures>,
    pub dependencies: Option<StepFigures>,
    pub build: Option<StepFigures>,
}

/// One prepare step as the version endpoint reports it.
#[derive(Debug, Clone, Copy)]
pub struct StepFigures {
    pub cached: bool,
    pub ms: f64,
}

/// Cold calls: a fresh executor of one prepared version each (`pool.max_requests = 1`).
#[derive(Debug, Clone)]
pub struct ColdFigures {
    /// The version called (its pool recycles every executor after one call).
    pub version: String,
    pub runs: usize,
    pub cold_start: Option<Summary>,
    pub client: Option<Summary>,
    pub errors: Errors,
}

/// Sequential warm calls.
#[derive(Debug, Clone)]
pub struct WarmFigures {
    pub calls: usize,
    pub client: Option<Summary>,
    pub run: Option<Summary>,
    pub executors: usize,
    pub errors: Errors,
}

/// One runtime's figures.
#[derive(Debug, Clone)]
pub struct Row {
    pub spec: Spec,
    /// The interpreter (or compiler) version the daemon probed.
    pub version: Option<String>,
    pub first: Option<Ready>,
    pub code_only: Option<Ready>,
    pub cold: Option<ColdFigures>,
    pub warm: Option<WarmFigures>,
    /// What the anchor runs, and its figures (or why there are none).
    pub anchor_label: Option<String>,
    pub fresh: Option<Result<Summary, String>>,
    /// Why the row failed: a stage that did not run, or a dependency step not cached.
    pub failures: Vec<String>,
    anchor: Option<Anchor>,
    binary: Option<Vec<u8>>,
    warm_samples: WarmSamples,
}

#[derive(Debug, Clone, Default)]
struct WarmSamples {
    latencies: Vec<Duration>,
    run: Vec<f64>,
    pids: std::collections::BTreeSet<i64>,
    errors: Errors,
    /// A warm-up call failed: no measured calls for this runtime.
    gave_up: bool,
}

/// The whole section.
pub struct Section {
    pub daemon: String,
    pub daemon_version: Option<String>,
    pub sandbox_mode: String,
    pub options: Options,
    pub rows: Vec<Row>,
    /// Runtimes not measured, and why.
    pub skipped: Vec<(String, String)>,
    pub stopped: Option<Stopped>,
}

impl Section {
    /// Rows with a failure.
    pub fn failed_rows(&self) -> usize {
        self.rows.iter().filter(|r| !r.failures.is_empty()).count()
    }
}

/// Starts a daemon of its own, measures every selected runtime in it, stops it, then times the
/// anchors.
pub fn measure(runtime: &tokio::runtime::Runtime, options: &Options) -> Result<Section> {
    check_names(options.runtimes.as_deref())?;
    let work = tempfile::Builder::new()
        .prefix("rwb-rt")
        .tempdir()
        .context("creating a temporary directory for the anchors")?;
    progress("runtimes: starting a runwarmd of its own (cold prepare cache)");
    let own = runtime.block_on(OwnDaemon::start(""))?;
    let measured = measure_on(runtime, &own, options, work.path());
    let measured = measured.map_err(|e| {
        anyhow!(
            "{e:#}\nthe runtimes daemon's log ends with:\n{}",
            own.log_tail()
        )
    });
    let stopped = own.stop();
    let mut section = measured?;
    section.stopped = Some(stopped);
    time_anchors(&mut section.rows, options.fresh);
    Ok(section)
}

fn measure_on(
    runtime: &tokio::runtime::Runtime,
    own: &OwnDaemon,
    options: &Options,
    work: &std::path::Path,
) -> Result<Section> {
    let client = Client::new(own.socket()).with_timeout(crate::REQUEST_TIMEOUT);
    let (info, catalog) = runtime.block_on(async {
        let info = client.get_json("/v1/info").await.context("GET /v1/info")?;
        let catalog = client
            .get_json("/v1/runtimes")
            .await
            .context("GET /v1/runtimes")?;
        anyhow::Ok((info, catalog))
    })?;
    let catalog: BTreeMap<String, Value> = catalog
        .as_array()
        .context("GET /v1/runtimes did not answer a list")?
        .iter()
        .filter_map(|r| Some((r["name"].as_str()?.to_owned(), r.clone())))
        .collect();
    let (mut rows, skipped) = select(&catalog, options.runtimes.as_deref());
    progress(&format!(
        "runtimes: building the anchors (fresh-process programs) for {}",
        rows.iter()
            .map(|r| r.spec.runtime)
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let payload = payload();
    for row in &mut rows {
        let tools = Tools {
            interpreter: catalog
                .get(row.spec.runtime)
                .and_then(|r| r["interpreter"].as_str())
                .map(Into::into),
        };
        match languages::build_anchor(&row.spec, &tools, &work.join(row.spec.runtime), &payload) {
            Ok(built) => {
                row.anchor_label = Some(built.anchor.label.clone());
                row.anchor = Some(built.anchor);
                row.binary = built.binary;
            }
            Err(e) => row.fresh = Some(Err(format!("building the anchor: {e:#}"))),
        }
    }
    runtime.block_on(async {
        for row in &mut rows {
            if let Err(e) = prepare_and_cold(&client, row, options).await {
                row.failures.push(format!("{e:#}"));
            }
        }
        measure_warm(&client, &mut rows, options).await;
    });
    Ok(Section {
        daemon: format!("{} in {}", own.binary().display(), own.dir().display()),
        daemon_version: info["version"].as_str().map(str::to_owned),
        sandbox_mode: info["sandbox"]["mode"]
            .as_str()
            .unwrap_or("(not reported)")
            .to_owned(),
        options: options.clone(),
        rows,
        skipped,
        stopped: None,
    })
}

/// The rows to measure and the runtimes left out, with why.
fn select(
    catalog: &BTreeMap<String, Value>,
    asked: Option<&[String]>,
) -> (Vec<Row>, Vec<(String, String)>) {
    let mut skipped = Vec::new();
    let names: Vec<&str> = match asked {
        Some(names) => names.iter().map(String::as_str).collect(),
        None => {
            for name in catalog.keys() {
                if !KNOWN.contains(&name.as_str()) {
                    skipped.push((name.clone(), "no handler in the bench".to_owned()));
                }
            }
            KNOWN.to_vec()
        }
    };
    let mut rows = Vec::new();
    for name in names {
        let Some(spec) = Spec::find(name) else {
            continue;
        };
        let Some(entry) = catalog.get(name) else {
            skipped.push((name.to_owned(), "the daemon has no such runtime".to_owned()));
            continue;
        };
        if entry["available"] != true {
            let why = entry["detail"].as_str().unwrap_or("probe failed");
            skipped.push((name.to_owned(), format!("not available: {why}")));
            continue;
        }
        rows.push(Row {
            spec,
            version: entry["version"].as_str().map(str::to_owned),
            first: None,
            code_only: None,
            cold: None,
            warm: None,
            anchor_label: None,
            fresh: None,
            failures: Vec::new(),
            anchor: None,
            binary: None,
            warm_samples: WarmSamples::default(),
        });
    }
    (rows, skipped)
}

fn script_name(spec: &Spec) -> String {
    format!("bench-rt-{}", spec.runtime)
}

impl Row {
    fn warm_p50(&self) -> Option<f64> {
        self.warm.as_ref()?.client.map(|s| s.p50)
    }

    fn fresh_ok(&self) -> Option<Summary> {
        self.fresh.as_ref()?.as_ref().ok().copied()
    }

    /// Fresh-process median over warm p50.
    fn ratio(&self) -> Option<f64> {
        Some(self.fresh_ok()?.p50 / self.warm_p50()?.max(f64::EPSILON))
    }

    /// `cold_start_ms` median minus the fresh-process median, in ms.
    fn cold_over_bare_ms(&self) -> Option<(f64, f64)> {
        let cold = self.cold.as_ref()?.cold_start?.p50 / 1000.0;
        let bare = self.fresh_ok()?.p50 / 1000.0;
        Some((cold, bare))
    }
}
