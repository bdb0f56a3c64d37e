//! Execution commands: `executions` (the history table), `logs` (one execution's output,
//! followed live with `-f`, see [`follow`]; or the output of recent executions, see
//! [`super::logs`]), `cancel` and `replay`.

mod follow;

use std::time::SystemTime;

use clap::{ArgGroup, Args};
use serde_json::Value;

use crate::client::{Method, SseParser, escape};

use super::error::CliError;
use super::invoke::{interrupted, report};
use super::logs::{self, Recent};
use super::outcome::Outcome;
use super::output::{note, print_json, print_stderr, write_stdout};
use super::progress::{self, Waited};
use super::scripts::show_rows;
use super::table::{Format, col};
use super::{Ctx, refused, with_query};
use follow::{poll_until_terminal, print_event};

#[derive(Debug, Args)]
pub(super) struct ExecutionsArgs {
    /// Only executions of this script.
    #[arg(long)]
    script: Option<String>,
    /// Only executions in this state (queued, running, completed, failed, timeout, cancelled).
    #[arg(long)]
    state: Option<String>,
    /// At most this many, newest first.
    #[arg(long)]
    limit: Option<u32>,
    /// Only executions older than this execution id (paging).
    #[arg(long, value_name = "ID")]
    before: Option<String>,
    /// Every attempt of the retry chain this execution belongs to, first to last.
    #[arg(long, value_name = "ID", conflicts_with_all = ["script", "state", "limit", "before"])]
    chain: Option<String>,
}

/// The records of the retry chain `id` is part of, first attempt first.
async fn chain(ctx: &Ctx, id: &str) -> Result<Value, CliError> {
    let rec = ctx
        .call(Method::GET, &format!("/v1/executions/{}", escape(id)), None)
        .await?;
    let ids: Vec<String> = match rec.get("chain").and_then(Value::as_array) {
        Some(chain) => chain
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        None => return Ok(Value::Array(vec![rec])),
    };
    let mut records = Vec::with_capacity(ids.len());
    for id in ids {
        records.push(
            ctx.call(
                Method::GET,
                &format!("/v1/executions/{}", escape(&id)),
                None,
            )
            .await?,
        );
    }
    Ok(Value::Array(records))
}

pub(super) async fn list(ctx: &Ctx, args: ExecutionsArgs) -> Result<Outcome, CliError> {
    if let Some(id) = &args.chain {
        let records = chain(ctx, id).await?;
        return show_rows(
            ctx,
            &records,
            &[
                col("ATTEMPT", &["/attempt"], Format::Plain),
                col("ID", &["/id"], Format::Plain),
                col("STATE", &["/state"], Format::Plain),
                col("CODE", &["/error/code"], Format::Plain),
                col("MS", &["/timings/total_ms"], Format::Millis),
                col("TIME", &["/timings/queued_at"], Format::Plain),
            ],
            "no executions",
        );
    }
    let path = with_query(
        "/v1/executions",
        &[
            ("script", args.script),
            ("state", args.state),
            ("limit", args.limit.map(|l| l.to_string())),
            ("before", args.before),
        ],
    );
    let records = ctx.call(Method::GET, &path, None).await?;
    show_rows(
        ctx,
        &records,
        &[
            col("ID", &["/id"], Format::Plain),
            col("SCRIPT", &["/script"], Format::Plain),
            col("STATE", &["/state"], Format::Plain),
            col("CODE", &["/error/code"], Format::Plain),
            col("MS", &["/timings/total_ms"], Format::Millis),
            col("TIME", &["/timings/queued_at"], Format::Plain),
        ],
        "no executions",
    )
}

#[derive(Debug, Args)]
#[command(group(
    ArgGroup::new("which")
        .args(["id", "script", "since", "tail"])
        .required(true)
        .multiple(true)
))]
pub(super) struct LogsArgs {
    /// Execution id; without it, the output of the executions that --script, --since and
    /// --tail choose, oldest first, each under a `==> ID SCRIPT STATE TIME <==` line.
    id: Option<String>,
    /// Follow the output live until the execution ends, then exit with its outcome.
    // With the others excluded, the group leaves the id as the one thing -f can go with
    // (clap's `requires = "id"` is not enforced for a member of a required group).
    #[arg(short = 'f', long, conflicts_with_all = ["tail", "since", "script"])]
    pub(super) follow: bool,
    /// Only the last N lines: of stdout and of stderr (with the structured logs) each, for one
    /// execution; of everything shown, across executions.
    #[arg(short = 'n', long, value_name = "N")]
    tail: Option<usize>,
    /// Only executions queued since T: a time ago (30s, 10m, 2h, 1d) or a time
    /// (2026-05-01T10:00:00Z, 2026-05-01 10:00:00 in UTC).
    #[arg(long, value_name = "T", value_parser = logs::parse_since, conflicts_with = "id")]
    since: Option<SystemTime>,
    /// Only executions of this script.
    #[arg(long, value_name = "NAME", conflicts_with = "id")]
    script: Option<String>,
}

pub(super) async fn logs(ctx: &Ctx, args: LogsArgs) -> Result<Outcome, CliError> {
    let Some(id) = args.id else {
        let recent = Recent {
            script: args.script,
            since: args.since,
            tail: args.tail,
        };
        return logs::recent(ctx, &recent).await;
    };
    let record_path = format!("/v1/executions/{}", escape(&id));
    if !args.follow {
        let record = ctx.call(Method::GET, &record_path, None).await?;
        print_record_output(ctx, &record, args.tail)?;
        return Ok(Outcome::Success);
    }
    let events_path = format!("{record_path}/events");
    let mut stream = ctx.client.stream(Method::GET, &events_path).await?;
    if stream.status == 404 {
        // Either the daemon has no event stream or the id is unknown; polling the record
        // tells the two apart.
        drop(stream);
        return poll_until_terminal(ctx, &record_path, true).await;
    }
    if !(200..300).contains(&stream.status) {
        let answer = stream.into_response().await?;
        return Err(refused(&Method::GET, &events_path, answer.problem()));
    }
    let mut parser = SseParser::default();
    'stream: while let Some(chunk) = stream.chunk().await? {
        for event in parser.push(&chunk).map_err(CliError::Stream)? {
            if print_event(ctx, &event)? {
                break 'stream;
            }
        }
    }
    drop(stream);
    // The stream may end before the record is final (a daemon restart, a proxy); wait for
    // it without printing again what the stream already showed.
    poll_until_terminal(ctx, &record_path, false).await
}

/// `logs ID`: stdout to stdout, stderr and structured logs to stderr (or the record), the last
/// `tail` lines of each when given.
fn print_record_output(ctx: &Ctx, record: &Value, tail: Option<usize>) -> Result<(), CliError> {
    if ctx.json {
        return print_json(record);
    }
    let lines = logs::Lines::of(record);
    let (stdout, stderr) = match tail {
        Some(n) => (logs::last(&lines.stdout, n), logs::last(&lines.stderr, n)),
        None => (&lines.stdout[..], &lines.stderr[..]),
    };
    for line in stdout {
        write_stdout(format!("{line}\n").as_bytes())?;
    }
    for line in stderr {
        print_stderr(line);
    }
    for (key, what) in [
        ("stdout_truncated", "stdout"),
        ("stderr_truncated", "stderr"),
    ] {
        if record.get(key).and_then(Value::as_bool) == Some(true) {
            print_stderr(&format!("note: {what} was truncated by the daemon"));
        }
    }
    Ok(())
}

/// `[level] message {fields}`.
pub(super) fn format_log(entry: &Value) -> String {
    let field = |k: &str| entry.get(k).and_then(Value::as_str).unwrap_or_default();
    let mut line = format!("[{}] {}", field("level"), field("message"));
    if let Some(fields) = entry
        .get("fields")
        .filter(|f| f.as_object().is_some_and(|o| !o.is_empty()))
    {
        line.push(' ');
        line.push_str(&fields.to_string());
    }
    line
}

/// `runwarm cancel ID`.
pub(super) async fn cancel(ctx: &Ctx, id: &str) -> Result<Outcome, CliError> {
    let path = format!("/v1/executions/{}/cancel", escape(id));
    let record = ctx.call(Method::POST, &path, None).await?;
    if ctx.json {
        print_json(&record)?;
    } else {
        let script = record.get("script").and_then(Value::as_str).unwrap_or("?");
        note(&format!("cancelled {id} ({script})"));
    }
    Ok(Outcome::Success)
}

#[derive(Debug, Args)]
pub(super) struct ReplayArgs {
    /// Id of the execution to run again (same script version, same payload).
    id: String,
    /// Return the new execution's id at once (202) instead of waiting for the result.
    #[arg(long = "async")]
    respond_async: bool,
    /// Where runwarmd POSTs the new execution's terminal record, signed, at least once
    /// (`Runwarm-Callback`): unix:/path/to.sock/http/path or http://127.0.0.1:PORT/path.
    #[arg(long, value_name = "URL")]
    callback: Option<String>,
    /// Print the script's stdout (to stdout, before the result) and stderr (to stderr).
    #[arg(long)]
    show_output: bool,
}

/// `runwarm replay ID`: a new execution answered like `invoke`, with the same exit codes.
pub(super) async fn replay(ctx: &Ctx, args: ReplayArgs) -> Result<Outcome, CliError> {
    let path = format!("/v1/executions/{}/replay", escape(&args.id));
    let mut headers: Vec<(&str, &str)> = Vec::new();
    if args.respond_async {
        headers.push(("prefer", "respond-async"));
    }
    if let Some(url) = &args.callback {
        headers.push(("runwarm-callback", url.as_str()));
    }
    let call = ctx.client.request(Method::POST, &path, &headers, None);
    let answer = if args.respond_async {
        call.await?
    } else {
        match progress::waiting(call, &format!("replaying {}…", args.id)).await {
            Waited::Done(answer) => answer?,
            Waited::Interrupted => {
                // The script's name is in the new record only; the old one names it too.
                let old = format!("/v1/executions/{}", escape(&args.id));
                let script = match ctx.call(Method::GET, &old, None).await {
                    Ok(record) => record
                        .get("script")
                        .and_then(Value::as_str)
                        .unwrap_or("NAME")
                        .to_owned(),
                    Err(_) => "NAME".to_owned(),
                };
                return Ok(interrupted(&script));
            }
        }
    };
    report(ctx, &answer, &path, args.show_output)
}

#[cfg(test)]
mod tests;
