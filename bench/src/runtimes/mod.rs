//! The per-runtime section: one tiny hello handler per language ([`crate::languages`]) in a
//! daemon of its own (so its prepare cache starts cold), measured through every stage a script
//! goes through: the first registration with a cold dependency cache, a code-only change, cold
//! starts, warm calls, and the anchor, the same handler run as a fresh process per call outside
//! runwarm. One table, then the targets computed from this run's figures.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use comfy_table::{Table, presets};
use runwarm_supervisor::client::{Client, Selector, escape};
use serde_json::{Value, json};

use crate::daemon::{OwnDaemon, Stopped};
use crate::languages::{self, Anchor, KNOWN, Spec, Tools};
use crate::measure::{Summary, round1};
use crate::progress;
use crate::scenarios::{Errors, call, expected_result, payload, register_bundle, timing_us};

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

/// Targets of the issue; figures, not assertions.
const TARGET_PY_CODE_ONLY: Duration = Duration::from_secs(1);
const TARGET_WARM_FACTOR: f64 = 2.0;
const TARGET_COLD_OVER_BARE_MS: f64 = 10.0;
const TARGET_JAVA_WARM_P50_US: f64 = 1000.0;

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

/// Stages 1 to 3 of a row: the first registration (cold dependency cache), a code-only
/// change, and the cold calls on a third version whose pool recycles every executor.
async fn prepare_and_cold(client: &Client, row: &mut Row, options: &Options) -> Result<()> {
    let spec = row.spec;
    let name = script_name(&spec);
    let manifest = json!({"runtime": spec.runtime, "entry": spec.entry});
    let binary = row.binary.as_deref();
    progress(&format!(
        "runtimes: {}: first registration{}",
        spec.runtime,
        spec.dependency
            .map(|d| format!(" with {d}, cold dependency cache"))
            .unwrap_or_default()
    ));
    let first = register_and_wait(client, &name, &manifest, spec.files("first", binary)?)
        .await
        .context("first registration")?;
    match (spec.dependency, first.dependencies) {
        (Some(_), None) => row
            .failures
            .push("the first registration reports no dependency step".to_owned()),
        (Some(_), Some(d)) if d.cached => row.failures.push(
            "the first registration found its dependencies cached: not a cold figure".to_owned(),
        ),
        _ => {}
    }
    row.first = Some(first);
    progress(&format!("runtimes: {}: code-only change", spec.runtime));
    let code_only = register_and_wait(client, &name, &manifest, spec.files("second", binary)?)
        .await
        .context("code-only change")?;
    if let Some(deps) = code_only.dependencies
        && !deps.cached
    {
        row.failures.push(format!(
            "the code-only change ran the dependency step again ({:.0} ms): not cached",
            deps.ms
        ));
    }
    row.code_only = Some(code_only);

    let mut cold_manifest = manifest.clone();
    // Every call is then the first of a fresh executor of the same prepared version; max 2 so
    // a call never waits for the retiring executor's slot.
    cold_manifest["pool"] = json!({"max": 2, "max_requests": 1});
    progress(&format!(
        "runtimes: {}: {} cold starts (pool.max_requests = 1)",
        spec.runtime,
        options.cold.max(1)
    ));
    let cold_version =
        register_and_wait(client, &name, &cold_manifest, spec.files("cold", binary)?)
            .await
            .context("registering the cold-start version")?
            .version;
    let selector = Selector::Version(cold_version.clone());
    let (payload, expected) = (payload(), expected_result(&payload()));
    let mut latencies = Vec::new();
    let mut cold_starts = Vec::new();
    let mut errors = Errors::default();
    for i in 0..options.cold.max(1) {
        tokio::time::sleep(COLD_PAUSE).await;
        let done = call(client, &name, Some(&selector), &payload, &expected).await;
        match done.outcome {
            Ok(record) if record["cold"] == true => {
                latencies.push(done.latency);
                cold_starts.extend(timing_us(&record, "cold_start_ms"));
            }
            Ok(record) => errors.add(format!(
                "cold call {i} was served warm (cold: {})",
                record["cold"]
            )),
            Err(e) => errors.add(e),
        }
    }
    if errors.count > 0 {
        row.failures.push(format!(
            "{} of {} cold calls failed (first: {})",
            errors.count,
            options.cold.max(1),
            errors.first.as_deref().unwrap_or_default()
        ));
    }
    row.cold = Some(ColdFigures {
        version: cold_version,
        runs: latencies.len(),
        cold_start: Summary::of_micros(cold_starts),
        client: Summary::of_durations(&latencies),
        errors,
    });
    Ok(())
}

/// POSTs the version, then polls its endpoint every [`POLL`] until the prepare is ready.
async fn register_and_wait(
    client: &Client,
    name: &str,
    manifest: &Value,
    files: Value,
) -> Result<Ready> {
    let started = Instant::now();
    let (version, created) = register_bundle(client, name, manifest, files).await?;
    let answered = created["prepare"].as_str().map(str::to_owned);
    let path = format!("/v1/scripts/{}/versions/{}", escape(name), escape(&version));
    let (wall, status) = match answered.as_deref() {
        // A runtime without prepare: ready when registered.
        None => (started.elapsed(), Value::Null),
        Some("ready") => {
            let wall = started.elapsed();
            (wall, client.get_json(&path).await?["prepare"].clone())
        }
        Some(_) => loop {
            let status = client.get_json(&path).await?["prepare"].clone();
            match status["state"].as_str() {
                Some("ready") => break (started.elapsed(), status),
                Some("failed") => bail!(
                    "the prepare of {name} failed: {}",
                    status["error"].as_str().unwrap_or("(no error text)")
                ),
                Some("pending" | "running") => {}
                _ => bail!("{path} shows no prepare state: {status}"),
            }
            if started.elapsed() > PREPARE_BOUND {
                bail!(
                    "the prepare of {name} was not ready within {} s: {status}",
                    PREPARE_BOUND.as_secs()
                );
            }
            tokio::time::sleep(POLL).await;
        },
    };
    let step = |key: &str| {
        let s = &status[key];
        Some(StepFigures {
            cached: s["cached"].as_bool()?,
            ms: s["duration_ms"].as_f64()?,
        })
    };
    Ok(Ready {
        version,
        wall,
        answered,
        prepare_ms: status["duration_ms"].as_f64(),
        toolchain: step("toolchain"),
        dependencies: step("dependencies"),
        build: step("build"),
    })
}

/// Warm calls on the code-only change's version: `warmup` unmeasured calls each, then blocks
/// of [`WARM_BLOCK`] calls per runtime in turn, so the machine's drift falls on all alike.
async fn measure_warm(client: &Client, rows: &mut [Row], options: &Options) {
    let (payload, expected) = (payload(), expected_result(&payload()));
    let live = |row: &Row| row.code_only.is_some() && !row.warm_samples.gave_up;
    progress(&format!(
        "runtimes: warm calls, {} + {} per runtime in blocks of {WARM_BLOCK} in turn",
        options.warmup, options.calls
    ));
    for row in rows.iter_mut().filter(|r| r.code_only.is_some()) {
        let Some(version) = row.code_only.as_ref().map(|r| r.version.clone()) else {
            continue;
        };
        let (name, selector) = (script_name(&row.spec), Selector::Version(version));
        for _ in 0..options.warmup {
            if let Err(e) = call(client, &name, Some(&selector), &payload, &expected)
                .await
                .outcome
            {
                row.failures.push(format!("a warm-up call failed: {e}"));
                row.warm_samples.errors.add(e);
                row.warm_samples.gave_up = true;
                break;
            }
        }
    }
    let mut left = options.calls;
    while left > 0 {
        let block = left.min(WARM_BLOCK);
        left -= block;
        for row in rows.iter_mut().filter(|r| live(r)) {
            let Some(version) = row.code_only.as_ref().map(|r| r.version.clone()) else {
                continue;
            };
            let (name, selector) = (script_name(&row.spec), Selector::Version(version));
            for _ in 0..BLOCK_WARMUP {
                let _ = call(client, &name, Some(&selector), &payload, &expected).await;
            }
            for _ in 0..block {
                let done = call(client, &name, Some(&selector), &payload, &expected).await;
                let samples = &mut row.warm_samples;
                samples.latencies.push(done.latency);
                match done.outcome {
                    Ok(record) => {
                        samples.run.extend(timing_us(&record, "run_ms"));
                        samples.pids.extend(record["executor"]["pid"].as_i64());
                    }
                    Err(e) => samples.errors.add(e),
                }
            }
        }
    }
    for row in rows.iter_mut().filter(|r| r.code_only.is_some()) {
        let samples = std::mem::take(&mut row.warm_samples);
        if samples.errors.count > 0 && !samples.latencies.is_empty() {
            row.failures.push(format!(
                "{} warm calls failed (first: {})",
                samples.errors.count,
                samples.errors.first.as_deref().unwrap_or_default()
            ));
        }
        row.warm = Some(WarmFigures {
            calls: samples.latencies.len(),
            client: Summary::of_durations(&samples.latencies),
            run: Summary::of_micros(samples.run),
            executors: samples.pids.len(),
            errors: samples.errors,
        });
    }
}

/// Each anchor `FRESH_WARMUP` times unmeasured, then `runs` times, one runtime after the other
/// in turn; the first failure ends that anchor.
fn time_anchors(rows: &mut [Row], runs: usize) {
    let (payload, expected) = (payload(), expected_result(&payload()));
    progress(&format!(
        "runtimes: fresh processes, {runs} per runtime in turn"
    ));
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); rows.len()];
    let mut failed: Vec<Option<String>> = vec![None; rows.len()];
    for i in 0..FRESH_WARMUP + runs.max(1) {
        for (k, row) in rows.iter().enumerate() {
            let Some(anchor) = &row.anchor else { continue };
            if failed[k].is_some() {
                continue;
            }
            match anchor.run_once(&payload, &expected) {
                Ok(took) if i >= FRESH_WARMUP => samples[k].push(took),
                Ok(_) => {}
                Err(e) => failed[k] = Some(format!("{e:#}")),
            }
        }
    }
    for ((row, samples), failed) in rows.iter_mut().zip(samples).zip(failed) {
        if row.anchor.is_none() {
            continue;
        }
        row.fresh = Some(match failed {
            Some(why) => Err(why),
            None => Summary::of_durations(&samples).ok_or_else(|| "no runs".to_owned()),
        });
    }
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

/// One target and whether the run met it (`None`: not measured in this run).
pub struct Target {
    pub what: String,
    pub measured: String,
    pub met: Option<bool>,
}

fn targets(rows: &[Row]) -> Vec<Target> {
    let find = |name: &str| rows.iter().find(|r| r.spec.runtime == name);
    let mut out = Vec::new();

    let what = format!(
        "python code-only change ready ≤ {} s",
        TARGET_PY_CODE_ONLY.as_secs()
    );
    out.push(match find("python3").and_then(|r| r.code_only.as_ref()) {
        Some(ready) => {
            let cached = ready.dependencies.is_some_and(|d| d.cached);
            Target {
                what,
                measured: format!(
                    "{:.3} s{}",
                    ready.wall.as_secs_f64(),
                    if cached {
                        ""
                    } else {
                        " (dependencies not cached)"
                    }
                ),
                met: Some(ready.wall <= TARGET_PY_CODE_ONLY && cached),
            }
        }
        None => not_measured(what, "python3"),
    });

    let what = format!(
        "every handler runtime's warm p50 within {TARGET_WARM_FACTOR}× of python3's warm p50"
    );
    out.push(match find("python3").and_then(Row::warm_p50) {
        Some(reference) => {
            let mut parts = vec![format!("python3 {reference:.0} µs")];
            let mut met = true;
            for row in rows
                .iter()
                .filter(|r| r.spec.mode == "handler" && r.spec.runtime != "python3")
            {
                match row.warm_p50() {
                    Some(p50) => {
                        let factor = p50 / reference.max(f64::EPSILON);
                        met &= factor <= TARGET_WARM_FACTOR;
                        parts.push(format!("{} {factor:.2}×", row.spec.runtime));
                    }
                    None => {
                        met = false;
                        parts.push(format!("{} not measured", row.spec.runtime));
                    }
                }
            }
            Target {
                what,
                measured: parts.join(", "),
                met: Some(met),
            }
        }
        None => not_measured(what, "python3"),
    });

    for name in ["go", "c", "cpp"] {
        let what =
            format!("{name} cold start ≤ {TARGET_COLD_OVER_BARE_MS} ms over the bare process");
        out.push(match find(name).and_then(Row::cold_over_bare_ms) {
            Some((cold, bare)) => Target {
                what,
                measured: format!(
                    "cold_start {cold:.1} ms - fresh process {bare:.1} ms = {:+.1} ms",
                    cold - bare
                ),
                met: Some(cold - bare <= TARGET_COLD_OVER_BARE_MS),
            },
            None => not_measured(what, name),
        });
    }

    let what = format!("java warm p50 ≤ {} ms", TARGET_JAVA_WARM_P50_US / 1000.0);
    out.push(match find("java").and_then(Row::warm_p50) {
        Some(p50) => Target {
            what,
            measured: format!("{:.3} ms", p50 / 1000.0),
            met: Some(p50 <= TARGET_JAVA_WARM_P50_US),
        },
        None => not_measured(what, "java"),
    });
    out
}

fn not_measured(what: String, runtime: &str) -> Target {
    Target {
        what,
        measured: format!("{runtime} not measured in this run"),
        met: None,
    }
}

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "PASS",
        Some(false) => "MISS",
        None => "N/A",
    }
}

/// Milliseconds as people read a wait: `850 ms`, `12.40 s`.
fn wait(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}

fn step_ms(ms: f64) -> String {
    wait(Duration::from_secs_f64(ms.max(0.0) / 1000.0))
}

fn ready_cell(ready: Option<&Ready>, dependency: Option<&str>) -> String {
    let Some(r) = ready else {
        return "-".to_owned();
    };
    let mut lines = vec![wait(r.wall)];
    if r.answered.is_none() {
        lines.push("no prepare".to_owned());
    }
    if let Some(t) = r.toolchain {
        lines.push(if t.cached {
            "toolchain cached".to_owned()
        } else {
            format!("toolchain {}", step_ms(t.ms))
        });
    }
    if let Some(d) = r.dependencies {
        lines.push(if d.cached {
            "deps cached".to_owned()
        } else {
            format!(
                "deps {}{}",
                step_ms(d.ms),
                dependency.map(|d| format!(" ({d})")).unwrap_or_default()
            )
        });
    }
    if let Some(b) = r.build {
        lines.push(if b.cached {
            "build cached".to_owned()
        } else {
            format!("build {}", step_ms(b.ms))
        });
    }
    lines.join("\n")
}

fn cold_cell(cold: Option<&ColdFigures>) -> String {
    let Some(c) = cold else {
        return "-".to_owned();
    };
    let mut lines = Vec::new();
    if let Some(s) = c.cold_start {
        lines.push(format!("{:.1} ms", s.p50 / 1000.0));
    }
    if let Some(s) = c.client {
        lines.push(format!("client {:.1} ms", s.p50 / 1000.0));
    }
    lines.push(format!("(median of {})", c.runs));
    lines.join("\n")
}

/// A ratio with a decimal while it is small (command-mode runtimes come out near 1).
fn ratio(r: f64) -> String {
    if r < 10.0 {
        format!("{r:.1}×")
    } else {
        format!("{r:.0}×")
    }
}

fn pair_us(s: Option<Summary>) -> String {
    s.map_or_else(
        || "-".to_owned(),
        |s| format!("{:.0} / {:.0}", s.p50, s.p99),
    )
}

/// The section as text: the table, what failed, and the targets.
pub fn text(section: &Section) -> String {
    let mut out = String::new();
    let o = &section.options;
    let _ = writeln!(
        out,
        "\nRuntimes: a hello handler per language, in a runwarmd of its own (sandbox.mode = {}, {})",
        section.sandbox_mode,
        section
            .daemon_version
            .as_deref()
            .unwrap_or("version unknown")
    );
    let _ = writeln!(out, "  daemon: {}", section.daemon);
    let _ = writeln!(
        out,
        "  ready = POST until the version endpoint (polled every {} ms) says ready; cold = \
         timings.cold_start_ms of {} calls on a version with pool.max_requests = 1; warm = {} \
         calls after {} warm-up, in blocks of {WARM_BLOCK} per runtime in turn; fresh = the same \
         handler as a new process per call outside runwarm, median of {}",
        POLL.as_millis(),
        o.cold.max(1),
        o.calls,
        o.warmup,
        o.fresh.max(1)
    );
    let mut table = Table::new();
    table.load_preset(presets::UTF8_FULL_CONDENSED);
    table.set_header(vec![
        "runtime",
        "first registration\n(cold deps) → ready",
        "code-only change\n→ ready",
        "cold start\n(cold_start_ms)",
        "warm client\np50 / p99 µs",
        "warm run_ms\np50 / p99 µs",
        "fresh process\nmedian",
        "fresh /\nwarm p50",
    ]);
    for row in &section.rows {
        let runtime = format!(
            "{}{}\n{}{}",
            row.spec.runtime,
            if row.failures.is_empty() {
                ""
            } else {
                " FAILED"
            },
            row.version.as_deref().unwrap_or("?"),
            if row.spec.mode == "command" {
                "\ncommand mode"
            } else {
                ""
            }
        );
        let warm = row.warm.as_ref();
        let fresh = match &row.fresh {
            Some(Ok(s)) => format!("{:.1} ms", s.p50 / 1000.0),
            Some(Err(_)) => "failed".to_owned(),
            None => "-".to_owned(),
        };
        table.add_row(vec![
            runtime,
            ready_cell(row.first.as_ref(), row.spec.dependency),
            ready_cell(row.code_only.as_ref(), None),
            cold_cell(row.cold.as_ref()),
            pair_us(warm.and_then(|w| w.client)),
            pair_us(warm.and_then(|w| w.run)),
            fresh,
            row.ratio().map_or_else(|| "-".to_owned(), ratio),
        ]);
    }
    for line in table.to_string().lines() {
        let _ = writeln!(out, "  {}", line.trim_end());
    }
    let anchors: Vec<String> = section
        .rows
        .iter()
        .filter_map(|r| {
            Some(format!(
                "{} = {}",
                r.spec.runtime,
                r.anchor_label.as_deref()?
            ))
        })
        .collect();
    if !anchors.is_empty() {
        let _ = writeln!(out, "  fresh process: {}", anchors.join("; "));
    }
    for row in &section.rows {
        for failure in &row.failures {
            let _ = writeln!(out, "  {} FAILED: {failure}", row.spec.runtime);
        }
        if let Some(Err(why)) = &row.fresh {
            let _ = writeln!(out, "  {} fresh process: {why}", row.spec.runtime);
        }
    }
    for (name, why) in &section.skipped {
        let _ = writeln!(out, "  {name} skipped: {why}");
    }
    let _ = writeln!(out, "\nTargets (runtimes)");
    for t in targets(&section.rows) {
        let _ = writeln!(out, "  {:<4}  {}: {}", verdict(t.met), t.what, t.measured);
    }
    if let Some(s) = &section.stopped {
        let how = match (s.killed, s.status) {
            (true, _) => "killed after the SIGTERM grace period".to_owned(),
            (false, Some(status)) => format!("{status}"),
            (false, None) => "status unknown".to_owned(),
        };
        let _ = writeln!(
            out,
            "\nruntimes daemon stopped with SIGTERM: {how}, after {} ms",
            s.took.as_millis()
        );
    }
    out
}

fn ready_json(r: Option<&Ready>) -> Value {
    let Some(r) = r else { return Value::Null };
    let step = |s: Option<StepFigures>| {
        s.map_or(
            Value::Null,
            |s| json!({"cached": s.cached, "duration_ms": round1(s.ms)}),
        )
    };
    json!({
        "version": r.version,
        "ready_ms": round1(r.wall.as_secs_f64() * 1000.0),
        "answered": r.answered,
        "prepare_ms": r.prepare_ms.map(round1),
        "toolchain": step(r.toolchain),
        "dependencies": step(r.dependencies),
        "build": step(r.build),
    })
}

/// The section as JSON, latencies in microseconds.
pub fn json(section: &Section) -> Value {
    let opt = |s: Option<Summary>| s.map_or(Value::Null, Summary::to_json);
    let errors = |e: &Errors| json!({"count": e.count, "first": e.first});
    let rows: Vec<Value> = section
        .rows
        .iter()
        .map(|r| {
            json!({
                "runtime": r.spec.runtime,
                "mode": r.spec.mode,
                "version": r.version,
                "dependency": r.spec.dependency,
                "first_registration": ready_json(r.first.as_ref()),
                "code_only_change": ready_json(r.code_only.as_ref()),
                "cold": r.cold.as_ref().map(|c| json!({
                    "version": c.version,
                    "runs": c.runs,
                    "cold_start": opt(c.cold_start),
                    "client": opt(c.client),
                    "errors": errors(&c.errors),
                })),
                "warm": r.warm.as_ref().map(|w| json!({
                    "calls": w.calls,
                    "client": opt(w.client),
                    "run": opt(w.run),
                    "executors": w.executors,
                    "errors": errors(&w.errors),
                })),
                "fresh_process": match &r.fresh {
                    Some(Ok(s)) => json!({"anchor": r.anchor_label, "summary": s.to_json()}),
                    Some(Err(why)) => json!({"anchor": r.anchor_label, "failed": why}),
                    None => Value::Null,
                },
                "ratio": r.ratio().map(round1),
                "failures": r.failures,
            })
        })
        .collect();
    let o = &section.options;
    json!({
        "daemon": section.daemon,
        "daemon_version": section.daemon_version,
        "sandbox_mode": section.sandbox_mode,
        "settings": {
            "warm_calls": o.calls,
            "warmup": o.warmup,
            "cold_runs": o.cold.max(1),
            "fresh_runs": o.fresh.max(1),
            "poll_ms": POLL.as_millis(),
        },
        "rows": rows,
        "skipped": section.skipped.iter().map(|(name, why)| json!({"runtime": name, "why": why})).collect::<Vec<_>>(),
        "targets": targets(&section.rows).into_iter().map(|t| json!({
            "target": t.what,
            "measured": t.measured,
            "met": t.met,
        })).collect::<Vec<_>>(),
    })
}
