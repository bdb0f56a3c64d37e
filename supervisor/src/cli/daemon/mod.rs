//! Commands about the daemon itself: `pools`, `prewarm`, `runtimes`, `samples`, `info`, and
//! the raw `api` escape hatch.
//!
//! `prewarm`, which can wait for the executors it starts, is in `prewarm.rs`; the others send one
//! request each and show its answer.

mod prewarm;

use std::time::{Duration, SystemTime};

use clap::Args;
use serde_json::Value;

use crate::client::Method;

use super::Ctx;
use super::error::{CliError, UsageError};
use super::outcome::Outcome;
use super::output::{print_json, print_stderr, print_text, write_stdout};
use super::payload::read_body_arg;
use super::progress::seconds;
use super::scripts::{rows_of, show_rows};
use super::table::{Format, col, human_bytes, render_fields};

pub(in crate::cli) use prewarm::{PrewarmArgs, prewarm};

pub(super) async fn pools(ctx: &Ctx) -> Result<Outcome, CliError> {
    let pools = ctx.call(Method::GET, "/v1/pools", None).await?;
    show_rows(
        ctx,
        &pools,
        &[
            col("SCRIPT", &["/script"], Format::Plain),
            col("VERSION", &["/version"], Format::ShortId),
            col("IDLE", &["/idle"], Format::Plain),
            col("BUSY", &["/busy"], Format::Plain),
            col("STARTING", &["/starting"], Format::Plain),
            col("MAX", &["/max"], Format::Plain),
            col("MEM MIB", &["/memory_mb"], Format::Plain),
            col("WAITING", &["/waiting"], Format::Plain),
            col("SPAWNED", &["/spawned"], Format::Plain),
            col("COLD P50 MS", &["/cold_start_ms_p50"], Format::Millis),
        ],
        "no warm pools",
    )
}

pub(super) async fn runtimes(ctx: &Ctx) -> Result<Outcome, CliError> {
    let runtimes = ctx.call(Method::GET, "/v1/runtimes", None).await?;
    show_rows(
        ctx,
        &runtimes,
        &[
            col("NAME", &["/name"], Format::Plain),
            col("AVAILABLE", &["/available"], Format::Plain),
            col("VERSION", &["/version"], Format::Plain),
            col("EXTENSIONS", &["/extensions"], Format::Names),
            col("MODES", &["/modes"], Format::Names),
            col("CACHE", &["/cache"], Format::With(cache_cell)),
            col("HITS/MISSES", &["/cache"], Format::With(hits_cell)),
            col("LAST PREPARE", &["/cache"], Format::With(last_prepare_cell)),
            col("DETAIL", &["/detail"], Format::Plain),
        ],
        "no runtimes defined",
    )
}

/// `3 entries, 412.3 MiB`.
fn cache_cell(cache: &Value) -> String {
    let entries = cache.get("entries").and_then(Value::as_u64).unwrap_or(0);
    let size = cache.get("size_bytes").and_then(Value::as_u64).unwrap_or(0);
    let noun = if entries == 1 { "entry" } else { "entries" };
    format!("{entries} {noun}, {}", human_bytes(size))
}

/// `12/3`, with the failures when there were some: `12/3, 1 failed`.
fn hits_cell(cache: &Value) -> String {
    let count = |key: &str| cache.get(key).and_then(Value::as_u64).unwrap_or(0);
    let mut text = format!("{}/{}", count("hits"), count("misses"));
    let failures = count("failures");
    if failures > 0 {
        text.push_str(&format!(", {failures} failed"));
    }
    text
}

fn last_prepare_cell(cache: &Value) -> String {
    last_prepare_at(cache, SystemTime::now())
}

/// `14.2 s, 3 min ago`; `-` when nothing ran since the daemon started.
fn last_prepare_at(cache: &Value, now: SystemTime) -> String {
    let took = cache
        .get("last_prepare_ms")
        .and_then(Value::as_f64)
        .filter(|ms| ms.is_finite())
        .map(|ms| seconds(ms / 1000.0));
    let when = cache
        .get("last_prepare_at")
        .and_then(Value::as_str)
        .map(|at| match humantime::parse_rfc3339_weak(at) {
            Ok(then) => ago(now.duration_since(then).unwrap_or_default()),
            // A time this client cannot read is still worth showing as it came.
            Err(_) => at.to_owned(),
        });
    match (took, when) {
        (Some(took), Some(when)) => format!("{took}, {when}"),
        (Some(one), None) | (None, Some(one)) => one,
        (None, None) => "-".to_owned(),
    }
}

/// A coarse age: `just now`, `40 s ago`, `3 min ago`, `2 h ago`, `5 d ago`.
fn ago(age: Duration) -> String {
    match age.as_secs() {
        0 => "just now".to_owned(),
        s @ 1..60 => format!("{s} s ago"),
        s @ 60..3600 => format!("{} min ago", s / 60),
        s @ 3600..86_400 => format!("{} h ago", s / 3600),
        s => format!("{} d ago", s / 86_400),
    }
}

#[derive(Debug, Args)]
pub(super) struct SamplesArgs {
    /// Only samples of this runtime.
    #[arg(long)]
    runtime: Option<String>,
}

pub(super) async fn samples(ctx: &Ctx, args: SamplesArgs) -> Result<Outcome, CliError> {
    let samples = ctx.call(Method::GET, "/v1/samples", None).await?;
    let (samples, empty) = match &args.runtime {
        None => (samples, "no samples".to_owned()),
        Some(runtime) => {
            let others = runtimes_of(&samples);
            let empty = if others.is_empty() {
                "no samples".to_owned()
            } else {
                format!(
                    "no samples of runtime {runtime}; there are samples of {}",
                    others.join(", ")
                )
            };
            (of_runtime(samples, runtime), empty)
        }
    };
    show_rows(
        ctx,
        &samples,
        &[
            col("ID", &["/id", "/name"], Format::Plain),
            col("RUNTIME", &SAMPLE_RUNTIME, Format::Plain),
            col(
                "DESCRIPTION",
                &["/description", "/manifest/description"],
                Format::Plain,
            ),
        ],
        &empty,
    )
}

/// Where a sample names its runtime.
const SAMPLE_RUNTIME: [&str; 2] = ["/runtime", "/manifest/runtime"];

fn sample_runtime(sample: &Value) -> Option<&str> {
    SAMPLE_RUNTIME
        .iter()
        .find_map(|p| sample.pointer(p).and_then(Value::as_str))
}

/// The samples of one runtime, in the shape the daemon answered (a list, or an object wrapping
/// one). The daemon's `/v1/samples` takes no filter, so this is done here.
fn of_runtime(mut samples: Value, runtime: &str) -> Value {
    let keep = |sample: &Value| sample_runtime(sample) == Some(runtime);
    match &mut samples {
        Value::Array(list) => list.retain(keep),
        Value::Object(object) if object.len() == 1 => {
            if let Some(Value::Array(list)) = object.values_mut().next() {
                list.retain(keep);
            }
        }
        _ => {}
    }
    samples
}

/// The runtimes that have samples, sorted, each once.
fn runtimes_of(samples: &Value) -> Vec<String> {
    let mut names: Vec<String> = rows_of(samples)
        .into_iter()
        .flatten()
        .filter_map(sample_runtime)
        .map(str::to_owned)
        .collect();
    names.sort();
    names.dedup();
    names
}

pub(super) async fn info(ctx: &Ctx) -> Result<Outcome, CliError> {
    let info = ctx.call(Method::GET, "/v1/info", None).await?;
    if ctx.json {
        print_json(&info)?;
    } else {
        print_text(&render_fields(&info))?;
    }
    Ok(Outcome::Success)
}

#[derive(Debug, Args)]
pub(super) struct ApiArgs {
    /// HTTP method (GET, POST, PUT, DELETE …).
    method: String,
    /// Path and query, starting with / (e.g. /v1/scripts?runtime=node).
    path: String,
    /// Request body: inline text, @FILE, or - for stdin.
    body: Option<String>,
    /// Extra request header, `Name: value` (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,
}

pub(super) async fn api(ctx: &Ctx, args: ApiArgs) -> Result<Outcome, CliError> {
    let method = Method::from_bytes(args.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| UsageError::Invalid(format!("{:?} is not an HTTP method", args.method)))?;
    let headers = args
        .headers
        .iter()
        .map(|h| {
            h.split_once(':')
                .map(|(k, v)| (k.trim(), v.trim()))
                .ok_or_else(|| UsageError::Invalid(format!("header {h:?} is not `Name: value`")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let body = args
        .body
        .as_deref()
        .map(|arg| read_body_arg(arg, std::io::stdin().lock()).map(|(bytes, _)| bytes))
        .transpose()?;
    let answer = ctx
        .client
        .request(method.clone(), &args.path, &headers, body)
        .await?;
    write_stdout(&answer.body)?;
    if !answer.body.is_empty() && !answer.body.ends_with(b"\n") {
        write_stdout(b"\n")?;
    }
    let outcome = Outcome::of_status(answer.status);
    if outcome != Outcome::Success {
        print_stderr(&format!(
            "{method} {} answered {}",
            args.path, answer.status
        ));
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests;
