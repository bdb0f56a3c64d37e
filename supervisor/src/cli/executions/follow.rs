//! `logs -f`: following one execution's output over its Server-Sent Events, or by polling
//! its record where the daemon has no event stream, until it ends.

use std::time::Duration;

use serde_json::Value;

use super::format_log;
use crate::cli::Ctx;
use crate::cli::error::CliError;
use crate::cli::invoke::describe_failure;
use crate::cli::outcome::Outcome;
use crate::cli::output::{print_json, print_stderr, print_text, write_stdout};
use crate::client::{Method, SseEvent};
use crate::execution::State;

/// How often `logs -f` polls when the daemon has no event stream.
const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// What `logs -f` does with one event.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum EventAction {
    /// Script stdout.
    Stdout(String),
    /// Script stderr, or a structured log line.
    Stderr(String),
    /// Nothing to print (state changes before the end, unknown events).
    Continue,
    /// The execution is over.
    End,
}

pub(super) fn classify_event(event: &SseEvent) -> EventAction {
    let data: Option<Value> = serde_json::from_str(&event.data).ok();
    let text = || match &data {
        Some(Value::Object(o)) => ["line", "text", "data", "chunk"]
            .iter()
            .find_map(|k| o.get(*k).and_then(Value::as_str))
            .map(with_newline)
            .unwrap_or_default(),
        Some(Value::String(s)) => with_newline(s),
        _ => with_newline(&event.data),
    };
    match event.event.as_str() {
        "end" => EventAction::End,
        "stdout" => EventAction::Stdout(text()),
        "stderr" => EventAction::Stderr(text()),
        "log" => match &data {
            Some(record) => EventAction::Stderr(format_log(record)),
            None => EventAction::Stderr(with_newline(&event.data)),
        },
        "state" => {
            let state = match &data {
                Some(Value::Object(o)) => o.get("state").and_then(Value::as_str),
                Some(Value::String(s)) => Some(s.as_str()),
                _ => Some(event.data.as_str()),
            };
            if state.and_then(State::parse).is_some_and(State::is_terminal) {
                EventAction::End
            } else {
                EventAction::Continue
            }
        }
        _ => EventAction::Continue,
    }
}

/// Prints one event (as a JSON line with `--json`); returns whether it ends the stream.
pub(super) fn print_event(ctx: &Ctx, event: &SseEvent) -> Result<bool, CliError> {
    let action = classify_event(event);
    if ctx.json {
        let data: Value =
            serde_json::from_str(&event.data).unwrap_or_else(|_| event.data.clone().into());
        let line = serde_json::json!({"event": event.event, "data": data});
        print_text(&line.to_string())?;
        return Ok(action == EventAction::End);
    }
    match action {
        EventAction::Stdout(text) => write_stdout(text.as_bytes())?,
        EventAction::Stderr(text) => print_stderr(&text),
        EventAction::Continue => {}
        EventAction::End => return Ok(true),
    }
    Ok(false)
}

fn with_newline(text: &str) -> String {
    if text.ends_with('\n') {
        text.to_owned()
    } else {
        format!("{text}\n")
    }
}

/// Polls the record until the execution is terminal, printing its output as it grows when
/// `show_output` is set.
pub(super) async fn poll_until_terminal(
    ctx: &Ctx,
    record_path: &str,
    show_output: bool,
) -> Result<Outcome, CliError> {
    let (mut out_len, mut err_len) = (0, 0);
    loop {
        let record = ctx.call(Method::GET, record_path, None).await?;
        if show_output && !ctx.json {
            out_len = print_growth(&record, "stdout", out_len, |t| write_stdout(t.as_bytes()))?;
            err_len = print_growth(&record, "stderr", err_len, |t| {
                print_stderr(t);
                Ok(())
            })?;
        }
        let terminal = record
            .get("state")
            .and_then(Value::as_str)
            .and_then(State::parse)
            .is_none_or(State::is_terminal);
        if terminal {
            if show_output && ctx.json {
                print_json(&record)?;
            }
            return Ok(finish_followed(ctx, &record));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Prints what a text field gained since `printed` bytes; returns its new length.
pub(super) fn print_growth(
    record: &Value,
    key: &str,
    printed: usize,
    print: impl Fn(&str) -> Result<(), CliError>,
) -> Result<usize, CliError> {
    let text = record.get(key).and_then(Value::as_str).unwrap_or_default();
    // A truncated field may shrink or not share the printed prefix; then there is no growth
    // to show without repeating.
    if let Some(new) = text.get(printed..).filter(|n| !n.is_empty()) {
        print(new)?;
        return Ok(text.len());
    }
    Ok(printed.max(text.len()))
}

/// The summary after following: the failure on stderr, and the outcome of the record.
pub(super) fn finish_followed(ctx: &Ctx, record: &Value) -> Outcome {
    let outcome = Outcome::of_record(record);
    if outcome != Outcome::Success && !ctx.json {
        print_stderr(&describe_failure(record, false));
    }
    outcome
}
