//! The cost of confinement as the daemon pays it: the same cold starts and warm calls of the
//! hello handler against two daemons started for this phase, one with the default sandbox mode
//! (`required` when run as root) and one with `[sandbox] mode = "off"`, plus the report section
//! that puts them side by side with the process-level anchor of [`anchor`].

pub mod anchor;

use std::fmt::Write as _;

use anyhow::{Context, Result};
use runwarm_supervisor::client::Client;

use crate::daemon::OwnDaemon;
use crate::measure::Summary;
use crate::scenarios::{Cold, ColdRuns, HANDLER_PY, Warm, WarmSamples};
use anchor::Anchor;

/// Cold starts per daemon: each a new version, as in the cold phase.
pub const COLD_RUNS: usize = 20;
/// Warm calls per daemon, in [`WARM_ROUNDS`] rounds of blocks of [`WARM_BLOCK`] taken
/// alternately, each block after [`WARM_WARMUP`] unmeasured calls.
pub const WARM_CALLS: usize = 2000;
/// Each round runs a new version on both daemons, so new executors. A warm call's time depends
/// on which CPUs its three processes land on (on a 2-vCPU VM a wake-up across CPUs costs ten
/// times one within a CPU), and that placement holds for an executor's life: one pair of
/// executors can differ by a third with identical daemons. The target reads the median of the
/// rounds' differences, and the report shows their range.
pub const WARM_ROUNDS: usize = 5;
const WARM_BLOCK: usize = 100;
const WARM_WARMUP: usize = 10;
/// A pause after both daemons have the round's executors, for what a registration leaves
/// running (old executors retiring, their cgroups removed) to finish.
const SETTLE: std::time::Duration = std::time::Duration::from_millis(250);
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
    /// Each round's warm client p50 in µs: (confined, unconfined).
    pub warm_rounds: Vec<(f64, f64)>,
}

/// What confinement adds to the warm client p50, round by round.
#[derive(Debug, Clone, Copy)]
pub struct WarmAdded {
    /// Median of the rounds' added percentages.
    pub median_percent: f64,
    pub lowest_percent: f64,
    pub highest_percent: f64,
    pub rounds: usize,
    /// The p50 of all calls of each daemon, in µs.
    pub confined_p50: f64,
    pub unconfined_p50: f64,
}

impl Compare {
    /// `None` when no round gave both medians.
    pub fn warm_added(&self) -> Option<WarmAdded> {
        let mut added: Vec<f64> = self
            .warm_rounds
            .iter()
            .filter(|(_, u)| *u > 0.0)
            .map(|(c, u)| (c - u) / u * 100.0)
            .collect();
        added.sort_by(f64::total_cmp);
        let (&lowest, &highest) = (added.first()?, added.last()?);
        let mid = added.len() / 2;
        let median = if added.len() % 2 == 1 {
            added[mid]
        } else {
            (added[mid - 1] + added[mid]) / 2.0
        };
        Some(WarmAdded {
            median_percent: median,
            lowest_percent: lowest,
            highest_percent: highest,
            rounds: added.len(),
            confined_p50: self.confined.warm.client.p50,
            unconfined_p50: self.unconfined.warm.client.p50,
        })
    }
}

/// Starts both daemons side by side and measures them alternately, one cold start (or one block
/// of warm calls) on each in turn, so drift in the machine's load falls on both alike.
pub async fn measure() -> Result<Compare> {
    let confined = OwnDaemon::start("")
        .await
        .context("starting the confined daemon")?;
    let unconfined = OwnDaemon::start("\n[sandbox]\nmode = \"off\"\n")
        .await
        .context("starting the unconfined daemon")?;
    let measured = measure_on(&confined, &unconfined).await;
    let measured = measured.map_err(|e| {
        anyhow::anyhow!(
            "{e:#}\nthe confined daemon's log ends with:\n{}\nthe unconfined daemon's log ends with:\n{}",
            confined.log_tail(),
            unconfined.log_tail()
        )
    });
    confined.stop();
    unconfined.stop();
    measured
}

async fn measure_on(confined: &OwnDaemon, unconfined: &OwnDaemon) -> Result<Compare> {
    let clients = [confined, unconfined]
        .map(|own| Client::new(own.socket()).with_timeout(crate::REQUEST_TIMEOUT));
    let mut modes = Vec::new();
    for client in &clients {
        let info = client.get_json("/v1/info").await.context("GET /v1/info")?;
        modes.push(
            info["sandbox"]["mode"]
                .as_str()
                .unwrap_or("(not reported)")
                .to_owned(),
        );
    }
    let mut cold = [ColdRuns::new(), ColdRuns::new()];
    for _ in 0..COLD_RUNS {
        for (runs, client) in cold.iter_mut().zip(&clients) {
            runs.run_once(client).await?;
        }
    }
    let mut warm = [WarmSamples::default(), WarmSamples::default()];
    let mut warm_rounds = Vec::with_capacity(WARM_ROUNDS);
    for round in 0..WARM_ROUNDS {
        let source = format!("{HANDLER_PY}\n# round {round}: a new version, a new executor\n");
        // Both daemons get the round's version and a warm executor before either is measured,
        // so a registration's prepare and the retirement of the last round's executors are
        // over before the blocks start rather than inside the other daemon's first block.
        for client in &clients {
            WarmSamples::default()
                .take_of(client, &source, 0, WARM_WARMUP)
                .await?;
        }
        tokio::time::sleep(SETTLE).await;
        let mut this_round = [WarmSamples::default(), WarmSamples::default()];
        for block in 0..WARM_CALLS / WARM_ROUNDS / WARM_BLOCK {
            // ABBA: each daemon is measured first in half the pairs. Measured always first,
            // the confined daemon read 8.7 % slower where in second place it read 0.7 % faster
            // (docs/design/0007-hot-path.md, "Whoever goes first").
            let order = if block % 2 == 0 { [0, 1] } else { [1, 0] };
            for i in order {
                this_round[i]
                    .take_of(&clients[i], &source, WARM_BLOCK, WARM_WARMUP)
                    .await?;
            }
        }
        if let [Some(c), Some(u)] = this_round.each_ref().map(WarmSamples::client_p50) {
            warm_rounds.push((c, u));
        }
        for (all, samples) in warm.iter_mut().zip(this_round) {
            all.absorb(samples);
        }
    }
    let [cold_c, cold_u] = cold;
    let [warm_c, warm_u] = warm;
    let [mode_c, mode_u] =
        <[String; 2]>::try_from(modes).map_err(|_| anyhow::anyhow!("two daemons, two modes"))?;
    Ok(Compare {
        confined: Side {
            mode: mode_c,
            cold: cold_c.finish()?,
            warm: warm_c.finish(WARM_WARMUP, None)?,
        },
        unconfined: Side {
            mode: mode_u,
            cold: cold_u.finish()?,
            warm: warm_u.finish(WARM_WARMUP, None)?,
        },
        warm_rounds,
    })
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
    if let Some(added) = compare.warm_added() {
        let rounds: Vec<String> = compare
            .warm_rounds
            .iter()
            .map(|(c, u)| format!("{c:.0}/{u:.0}"))
            .collect();
        let _ = writeln!(
            out,
            "  warm p50 per round, confined/unconfined (µs, each round new executors): {}",
            rounds.join(", ")
        );
        let _ = writeln!(
            out,
            "  confinement adds to the warm p50: median {:+.1}% over {} rounds (from {:+.1}% to {:+.1}%)",
            added.median_percent, added.rounds, added.lowest_percent, added.highest_percent
        );
    }
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
    let added = compare.warm_added();
    serde_json::json!({
        "confined": side(&compare.confined),
        "unconfined": side(&compare.unconfined),
        "warm_rounds_p50_us": compare.warm_rounds.iter().map(|(c, u)| serde_json::json!({"confined": c, "unconfined": u})).collect::<Vec<_>>(),
        "warm_added_percent": added.map(|a| serde_json::json!({
            "median": a.median_percent, "lowest": a.lowest_percent, "highest": a.highest_percent,
        })),
        "anchor": {
            "direct": anchor.direct.to_json(),
            "runwarm_sandbox": way(&anchor.sandbox),
            "bwrap": way(&anchor.bwrap),
            "layers": anchor.layers_json(),
        },
    })
}
