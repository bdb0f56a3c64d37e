//! Commands about the daemon itself: `pools`, `prewarm`, `runtimes`, `samples`, `info`, and
//! the raw `api` escape hatch.

use clap::Args;
use serde_json::{Map, Value, json};

use crate::client::{Method, Selector, Target};

use super::Ctx;
use super::error::{CliError, UsageError};
use super::outcome::Outcome;
use super::output::{note, print_json, print_stderr, print_text, write_stdout};
use super::payload::read_body_arg;
use super::scripts::show_rows;
use super::table::{Format, col, render_fields};

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
            col("WAITING", &["/waiting"], Format::Plain),
            col("SPAWNED", &["/spawned"], Format::Plain),
            col("COLD P50 MS", &["/cold_start_ms_p50"], Format::Millis),
        ],
        "no warm pools",
    )
}

#[derive(Debug, Args)]
pub(super) struct PrewarmArgs {
    /// NAME, NAME@VERSION or NAME:TAG, one or more.
    #[arg(required = true)]
    targets: Vec<String>,
    /// Executors to start for each script [default: the daemon's choice].
    #[arg(long)]
    count: Option<u32>,
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

pub(super) async fn prewarm(ctx: &Ctx, args: PrewarmArgs) -> Result<Outcome, CliError> {
    let body = prewarm_body(&args.targets, args.count)?;
    let answer = ctx.call(Method::POST, "/v1/prewarm", Some(&body)).await?;
    if ctx.json || !answer.is_null() {
        print_json(&answer)?;
    } else {
        note(&format!("prewarming {}", args.targets.join(", ")));
    }
    Ok(Outcome::Success)
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
            col("MODES", &["/modes"], Format::Names),
            col("DETAIL", &["/detail"], Format::Plain),
        ],
        "no runtimes defined",
    )
}

pub(super) async fn samples(ctx: &Ctx) -> Result<Outcome, CliError> {
    let samples = ctx.call(Method::GET, "/v1/samples", None).await?;
    show_rows(
        ctx,
        &samples,
        &[
            col("ID", &["/id", "/name"], Format::Plain),
            col("RUNTIME", &["/runtime", "/manifest/runtime"], Format::Plain),
            col(
                "DESCRIPTION",
                &["/description", "/manifest/description"],
                Format::Plain,
            ),
        ],
        "no samples",
    )
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
mod tests {
    use super::*;

    #[test]
    fn prewarm_bodies_carry_selectors_and_counts() {
        let targets = vec!["a".to_owned(), "b@sha256:1".to_owned(), "c:prod".to_owned()];
        assert_eq!(
            prewarm_body(&targets, Some(2)).unwrap(),
            json!({"scripts": [
                {"name": "a", "count": 2},
                {"name": "b", "version": "sha256:1", "count": 2},
                {"name": "c", "tag": "prod", "count": 2},
            ]})
        );
        assert_eq!(
            prewarm_body(&["a".to_owned()], None).unwrap(),
            json!({"scripts": [{"name": "a"}]})
        );
        assert!(prewarm_body(&["Bad Name".to_owned()], None).is_err());
    }
}
