//! The cost of confinement as the daemon pays it: the same cold starts and warm calls of the
//! hello handler against two daemons started for this phase, one with the default sandbox mode
//! (`required` when run as root) and one with `[sandbox] mode = "off"`, plus the report section
//! that puts them side by side with the process-level anchor of [`crate::anchor`].

use std::fmt::Write as _;

use anyhow::{Context, Result};
use runwarm_supervisor::client::Client;

use crate::anchor::Anchor;
use crate::daemon::OwnDaemon;
use crate::measure::Summary;
use crate::scenarios::{self, Cold, Warm};

/// Cold starts per daemon: each a new version, as in the cold phase.
pub const COLD_RUNS: usize = 20;
/// Warm calls per daemon, after [`WARM_WARMUP`] unmeasured ones.
pub const WARM_CALLS: usize = 1000;
const WARM_WARMUP: usize = 100;
/// Target of the added cold-start cost, in milliseconds.
const TARGET_ADDED_MS: f64 = 5.0;

/// One daemon's figures.
pub struct Side {
    /// `sandbox.mode` of its `/v1/info`.
    pub mode: String,
    pub cold: Cold,
    pub warm: Warm,
}

/// Both daemons' figures.
pub struct Compare {
    pub confined: Side,
    pub unconfined: Side,
}

/// Starts both daemons in turn (one at a time, so neither competes with the other for the CPUs)
/// and measures each.
pub async fn measure() -> Result<Compare> {
    let confined = measure_side("")
        .await
        .context("measuring the confined daemon")?;
    let unconfined = measure_side("\n[sandbox]\nmode = \"off\"\n")
        .await
        .context("measuring the unconfined daemon")?;
    Ok(Compare {
        confined,
        unconfined,
    })
}

async fn measure_side(extra_config: &str) -> Result<Side> {
    let own = OwnDaemon::start(extra_config).await?;
    let measured = measure_on(&own).await;
    let measured = measured
        .map_err(|e| anyhow::anyhow!("{e:#}\nthe daemon's log ends with:\n{}", own.log_tail()));
    own.stop();
    measured
}

async fn measure_on(own: &OwnDaemon) -> Result<Side> {
    let client = Client::new(own.socket()).with_timeout(crate::REQUEST_TIMEOUT);
    let info = client.get_json("/v1/info").await.context("GET /v1/info")?;
    let mode = info["sandbox"]["mode"]
        .as_str()
        .unwrap_or("(not reported)")
        .to_owned();
    let cold = scenarios::measure_cold(&client, COLD_RUNS).await?;
    let warm = scenarios::measure_warm(&client, WARM_CALLS, WARM_WARMUP).await?;
    Ok(Side { mode, cold, warm })
}

fn ms(us: f64) -> f64 {
    us / 1000.0
}

fn row(out: &mut String, label: &str, confined: Option<Summary>, unconfined: Option<Summary>) {
    match (confined, unconfined) {
        (Some(c), Some(u)) => {
            let _ = writeln!(
                out,
                "  {label:<26} {:>9.2} {:>9.2} {:>11.2} {:>11.2} {:>+10.2}",
                ms(c.p50),
                ms(c.p90),
                ms(u.p50),
                ms(u.p90),
                ms(c.p50 - u.p50),
            );
        }
        _ => {
            let _ = writeln!(out, "  {label:<26} (not reported)");
        }
    }
}

/// The report section; `compare` and `anchor` are `None` when skipped.
pub fn text(compare: &Compare, anchor: &Anchor) -> String {
    let mut out = String::new();
    let (c, u) = (&compare.confined, &compare.unconfined);
    let _ = writeln!(out, "\nconfinement cost (hello python handler)");
    let _ = writeln!(
        out,
        "  daemons: confined sandbox.mode = {}, unconfined sandbox.mode = {}",
        c.mode, u.mode
    );
    let _ = writeln!(
        out,
        "  {:<26} {:>9} {:>9} {:>11} {:>11} {:>10}",
        "ms", "conf p50", "conf p90", "unconf p50", "unconf p90", "added p50"
    );
    row(
        &mut out,
        &format!("cold, client ({COLD_RUNS} each)"),
        Some(c.cold.client),
        Some(u.cold.client),
    );
    row(
        &mut out,
        "cold, timings.cold_start",
        c.cold.cold_start,
        u.cold.cold_start,
    );
    row(
        &mut out,
        &format!("warm, client ({WARM_CALLS} each)"),
        Some(c.warm.client),
        Some(u.warm.client),
    );
    row(
        &mut out,
        "warm, timings.total",
        c.warm.daemon_total,
        u.warm.daemon_total,
    );
    let errors =
        c.cold.errors.count + u.cold.errors.count + c.warm.errors.count + u.warm.errors.count;
    if errors > 0 {
        let first = [&c.cold, &u.cold]
            .iter()
            .find_map(|x| x.errors.first.clone())
            .or_else(|| {
                [&c.warm, &u.warm]
                    .iter()
                    .find_map(|x| x.errors.first.clone())
            })
            .unwrap_or_default();
        let _ = writeln!(out, "  errors: {errors} (first: {first})");
    }
    if let (Some(cs), Some(us)) = (c.cold.cold_start, u.cold.cold_start) {
        let added = ms(cs.p50 - us.p50);
        let verdict = if added <= TARGET_ADDED_MS {
            "met"
        } else {
            "MISSED"
        };
        let _ = writeln!(
            out,
            "  target: confinement adds <= {TARGET_ADDED_MS} ms to a cold start (p50 cold_start): {added:+.2} ms, {verdict}"
        );
    }
    out.push_str(&anchor.text());
    out
}

/// The section as JSON, figures in microseconds.
pub fn json(compare: &Compare, anchor: &Anchor) -> serde_json::Value {
    let opt = |s: Option<Summary>| s.map_or(serde_json::Value::Null, Summary::to_json);
    let side = |s: &Side| {
        serde_json::json!({
            "sandbox_mode": s.mode,
            "cold_client": s.cold.client.to_json(),
            "cold_start": opt(s.cold.cold_start),
            "warm_client": s.warm.client.to_json(),
            "warm_total": opt(s.warm.daemon_total),
            "errors": s.cold.errors.count + s.warm.errors.count,
        })
    };
    let way = |r: &Result<Summary, String>| match r {
        Ok(s) => s.to_json(),
        Err(why) => serde_json::json!({"skipped": why}),
    };
    serde_json::json!({
        "confined": side(&compare.confined),
        "unconfined": side(&compare.unconfined),
        "anchor": {
            "direct": anchor.direct.to_json(),
            "runwarm_sandbox": way(&anchor.sandbox),
            "bwrap": way(&anchor.bwrap),
        },
    })
}
