//! `runwarm prewarm`: the request, and with `--wait` the loop that watches the pools until the
//! executors it started are up or failed; apart because it is the one daemon command that waits.

use std::time::{Duration, Instant};

use clap::Args;
use serde_json::{Map, Value, json};

use crate::cli::Ctx;
use crate::cli::error::{CliError, UsageError};
use crate::cli::outcome::Outcome;
use crate::cli::output::{note, print_json, print_stderr, print_text};
use crate::cli::progress::{OnPipe, Progress, ctrl_c};
use crate::cli::scripts::rows_of;
use crate::cli::table::{Format, col, render_rows};
use crate::client::{Method, Selector, Target};

/// How often `prewarm --wait` looks at the pools.
const PREWARM_POLL: Duration = Duration::from_millis(200);

#[derive(Debug, Args)]
pub(in crate::cli) struct PrewarmArgs {
    /// NAME, NAME@VERSION or NAME:TAG, one or more.
    #[arg(required = true)]
    targets: Vec<String>,
    /// Executors to start for each script [default: 1].
    #[arg(long)]
    count: Option<u32>,
    /// Wait until the executors have started (or failed to), watching the pools; exit 1 if
    /// any failed to start.
    #[arg(long)]
    wait: bool,
    /// With --wait, stop waiting after this long (30s, 2m …) and exit 3; the executors go on
    /// starting in runwarmd [default: no limit].
    #[arg(long, requires = "wait", value_parser = humantime::parse_duration)]
    timeout: Option<Duration>,
}

/// The `POST /v1/prewarm` body.
fn prewarm_body(targets: &[String], count: Option<u32>) -> Result<Value, UsageError> {
    let mut scripts = Vec::with_capacity(targets.len());
    for raw in targets {
        let target = Target::parse(raw)?;
        let mut entry = Map::new();
        entry.insert("name".into(), target.name.into());
        match target.selector {
            Some(Selector::Version(v)) => entry.insert("version".into(), v.into()),
            Some(Selector::Tag(t)) => entry.insert("tag".into(), t.into()),
            None => None,
        };
        if let Some(count) = count {
            entry.insert("count".into(), count.into());
        }
        scripts.push(Value::Object(entry));
    }
    Ok(json!({"scripts": scripts}))
}

pub(in crate::cli) async fn prewarm(ctx: &Ctx, args: PrewarmArgs) -> Result<Outcome, CliError> {
    let body = prewarm_body(&args.targets, args.count)?;
    // Start failures are counted per pool since the daemon started: the figure before the
    // request tells this prewarm's failures from older ones.
    let before = if args.wait {
        ctx.call(Method::GET, "/v1/pools", None).await?
    } else {
        Value::Null
    };
    let mut answer = ctx.call(Method::POST, "/v1/prewarm", Some(&body)).await?;
    if !args.wait {
        show_prewarm(ctx, &answer, false)?;
        return Ok(Outcome::Success);
    }
    let mut progress = Progress::on_stderr(OnPipe::Quiet, "starting executors…");
    let started = Instant::now();
    let interrupted = ctrl_c();
    tokio::pin!(interrupted);
    let outcome = loop {
        let pools = tokio::select! {
            () = &mut interrupted => break Outcome::Interrupted,
            pools = ctx.call(Method::GET, "/v1/pools", None) => pools?,
        };
        let standing = prewarm_standing(&answer, &before, &pools);
        if standing.starting == 0 {
            progress.finish("");
            answer = standing.answer;
            break if standing.failed > 0 {
                Outcome::ScriptFailed
            } else {
                Outcome::Success
            };
        }
        progress.update(
            &format!(
                "starting executors: {} of {} up…",
                standing.up, standing.asked
            ),
            started.elapsed(),
        );
        let left = match args.timeout {
            Some(limit) => match limit.checked_sub(started.elapsed()) {
                Some(left) if !left.is_zero() => left,
                _ => break Outcome::TimedOut,
            },
            None => PREWARM_POLL,
        };
        tokio::select! {
            () = &mut interrupted => break Outcome::Interrupted,
            () = tokio::time::sleep(PREWARM_POLL.min(left)) => {}
        }
    };
    drop(progress);
    match outcome {
        Outcome::Success | Outcome::ScriptFailed => show_prewarm(ctx, &answer, true)?,
        Outcome::TimedOut => print_stderr(&format!(
            "error: the executors did not all start within {}; runwarmd goes on starting \
             them\n\nhint: `runwarm pools` shows where they stand\n",
            args.timeout
                .map(|t| humantime::format_duration(t).to_string())
                .unwrap_or_default()
        )),
        _ => print_stderr(
            "stopped waiting; runwarmd goes on starting the executors\n\nhint: `runwarm pools` \
             shows where they stand\n",
        ),
    }
    if outcome == Outcome::ScriptFailed && !ctx.json {
        print_stderr(
            "error: some executors failed to start\n\nhint: `runwarm invoke NAME` shows the \
             script's start error; runwarmd's log has every failure",
        );
    }
    Ok(outcome)
}

/// Where a `prewarm --wait` stands: the pools the prewarm started executors in, from the
/// `POST /v1/prewarm` answer and `GET /v1/pools` before and now.
#[derive(Debug, PartialEq)]
struct PrewarmStanding {
    /// Executors still starting in those pools.
    starting: u64,
    /// Executors idle or busy in those pools (warm ones from before included).
    up: u64,
    /// Executors the prewarm started.
    asked: u64,
    /// Starts that failed since the prewarm was sent.
    failed: u64,
    /// The prewarm answer with `warm` and `failed` added to each script.
    answer: Value,
}

fn prewarm_standing(answer: &Value, before: &Value, now: &Value) -> PrewarmStanding {
    let pool_of = |pools: &Value, name: &str, version: &str| -> Option<Value> {
        rows_of(pools)?
            .iter()
            .find(|p| {
                p.get("script").and_then(Value::as_str) == Some(name)
                    && p.get("version").and_then(Value::as_str) == Some(version)
            })
            .cloned()
    };
    let count = |pool: &Option<Value>, key: &str| {
        pool.as_ref()
            .and_then(|p| p.get(key))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    let mut standing = PrewarmStanding {
        starting: 0,
        up: 0,
        asked: 0,
        failed: 0,
        answer: answer.clone(),
    };
    let Some(scripts) = standing
        .answer
        .get_mut("scripts")
        .and_then(Value::as_array_mut)
    else {
        return standing;
    };
    for entry in scripts {
        let name = entry
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let version = entry
            .get("version")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let (old, new) = (pool_of(before, name, version), pool_of(now, name, version));
        let up = count(&new, "idle") + count(&new, "busy");
        let failed = count(&new, "start_failures").saturating_sub(count(&old, "start_failures"));
        standing.starting += count(&new, "starting");
        standing.up += up;
        standing.asked += entry.get("started").and_then(Value::as_u64).unwrap_or(0);
        standing.failed += failed;
        if let Some(entry) = entry.as_object_mut() {
            entry.insert("warm".into(), up.into());
            entry.insert("failed".into(), failed.into());
        }
    }
    standing
}

/// The prewarm table: what was asked and started, and after `--wait` how many executors are
/// warm and how many failed to start.
fn show_prewarm(ctx: &Ctx, answer: &Value, waited: bool) -> Result<(), CliError> {
    let rows = answer.get("scripts").and_then(Value::as_array);
    let (Some(rows), false) = (rows, ctx.json) else {
        return print_json(answer);
    };
    let mut columns = vec![
        col("SCRIPT", &["/name"], Format::Plain),
        col("VERSION", &["/version"], Format::ShortId),
        col("REQUESTED", &["/requested"], Format::Plain),
        col("STARTED", &["/started"], Format::Plain),
    ];
    if waited {
        columns.push(col("WARM", &["/warm"], Format::Plain));
        columns.push(col("FAILED", &["/failed"], Format::Plain));
    }
    print_text(&render_rows(rows, &columns))?;
    let short = rows.iter().any(|r| {
        let n = |k: &str| r.get(k).and_then(Value::as_u64).unwrap_or(0);
        n("started") < n("requested")
    });
    if short {
        note(
            "fewer executors started than requested: the pool's `max` or runwarmd's \
             `pools.max_workers` was reached",
        );
    }
    if !waited {
        note("the executors start in the background; `--wait` waits for them");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
