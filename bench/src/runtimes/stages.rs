//! Each runtime's measurement, stage by stage: the registrations timed until ready, the cold
//! calls, the warm blocks taken across runtimes in turn, and the anchors' fresh processes.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use runwarm_supervisor::client::{Client, Selector, escape};
use serde_json::{Value, json};

use super::{
    BLOCK_WARMUP, COLD_PAUSE, ColdFigures, FRESH_WARMUP, Options, POLL, PREPARE_BOUND, Ready, Row,
    StepFigures, WARM_BLOCK, WarmFigures, script_name,
};
use crate::measure::Summary;
use crate::progress;
use crate::scenarios::{Errors, call, expected_result, payload, register_bundle, timing_us};

/// Stages 1 to 3 of a row: the first registration (cold dependency cache), a code-only
/// change, and the cold calls on a third version whose pool recycles every executor.
pub(super) async fn prepare_and_cold(
    client: &Client,
    row: &mut Row,
    options: &Options,
) -> Result<()> {
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
pub(super) async fn measure_warm(client: &Client, rows: &mut [Row], options: &Options) {
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
pub(super) fn time_anchors(rows: &mut [Row], runs: usize) {
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
