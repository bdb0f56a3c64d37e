//! `runwarm logs` without an execution id: the output of recent executions, chosen by script,
//! by age (`--since`) and by amount (`--tail`), read from `GET /v1/executions` page by page,
//! newest first, and printed oldest first.
//!
//! Output lines carry no timestamps of their own (an executor's stdout is a byte stream), so
//! `--since` chooses executions by when they were queued, not lines by when they were printed.

use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::client::Method;

use super::error::CliError;
use super::executions::format_log;
use super::outcome::Outcome;
use super::output::{note, print_json, print_stderr, write_stdout};
use super::scripts::rows_of;
use super::{Ctx, with_query};

/// Records asked for per page: a record holds up to 1 MiB of stdout and of stderr, so pages
/// stay small; most executions print far less.
const PAGE: u32 = 50;

/// Which executions `logs` shows when it has no id.
#[derive(Debug, Clone, Default)]
pub(super) struct Recent {
    /// Only this script's.
    pub script: Option<String>,
    /// Only those queued at or after this time.
    pub since: Option<SystemTime>,
    /// Only as many executions, newest first, as hold the last this many lines.
    pub tail: Option<usize>,
}

/// Reads `--since`: a time ago (`10m`, `2h 30m`, `1d`) or a point in time (RFC 3339, UTC).
pub(super) fn parse_since(text: &str) -> Result<SystemTime, String> {
    since_at(text, SystemTime::now())
}

fn since_at(text: &str, now: SystemTime) -> Result<SystemTime, String> {
    let text = text.trim();
    if let Ok(ago) = humantime::parse_duration(text) {
        return Ok(now.checked_sub(ago).unwrap_or(SystemTime::UNIX_EPOCH));
    }
    humantime::parse_rfc3339_weak(text).map_err(|_| {
        format!(
            "{text:?} is neither a time ago (30s, 10m, 2h, 1d) nor a time \
             (2026-05-01T10:00:00Z)"
        )
    })
}

/// One execution's output as lines: stdout, and stderr followed by its structured log records
/// (which is where `logs ID` prints them too).
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Lines {
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
}

impl Lines {
    pub(super) fn of(record: &Value) -> Lines {
        let field = |k: &str| record.get(k).and_then(Value::as_str).unwrap_or_default();
        let mut stderr = split(field("stderr"));
        if let Some(logs) = record.get("logs").and_then(Value::as_array) {
            stderr.extend(logs.iter().map(format_log));
        }
        Lines {
            stdout: split(field("stdout")),
            stderr,
        }
    }

    fn len(&self) -> usize {
        self.stdout.len() + self.stderr.len()
    }
}

/// The lines of `text`; a final newline ends the last line rather than starting an empty one.
fn split(text: &str) -> Vec<String> {
    text.strip_suffix('\n')
        .unwrap_or(text)
        .split('\n')
        .filter(|_| !text.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The last `n` of `lines`.
pub(super) fn last(lines: &[String], n: usize) -> &[String] {
    &lines[lines.len().saturating_sub(n)..]
}

/// When an execution was queued, when its record says so readably.
fn queued_at(record: &Value) -> Option<SystemTime> {
    let at = record
        .pointer("/timings/queued_at")
        .and_then(Value::as_str)?;
    humantime::parse_rfc3339_weak(at).ok()
}

/// Collects the executions to show from pages of records, newest first. Returns whether it has
/// all it needs (an execution older than `since`, or `tail` lines gathered), so no further page
/// is asked for.
fn gather(page: &[Value], recent: &Recent, chosen: &mut Vec<Value>, lines: &mut usize) -> bool {
    for record in page {
        if let (Some(since), Some(at)) = (recent.since, queued_at(record))
            && at < since
        {
            // Ids, and so pages, go from newer to older: nothing after this one is recent.
            return true;
        }
        let found = Lines::of(record).len();
        if found == 0 {
            // Nothing to print; `runwarm executions` lists such runs.
            continue;
        }
        chosen.push(record.clone());
        *lines += found;
        if recent.tail.is_some_and(|tail| *lines >= tail) {
            return true;
        }
    }
    false
}

pub(super) async fn recent(ctx: &Ctx, recent: &Recent) -> Result<Outcome, CliError> {
    let mut chosen = Vec::new();
    let mut lines = 0;
    let mut before: Option<String> = None;
    loop {
        let path = with_query(
            "/v1/executions",
            &[
                ("script", recent.script.clone()),
                ("limit", Some(PAGE.to_string())),
                ("before", before.clone()),
            ],
        );
        let answer = ctx.call(Method::GET, &path, None).await?;
        let page: &[Value] = rows_of(&answer).map_or(&[], Vec::as_slice);
        if gather(page, recent, &mut chosen, &mut lines) || page.len() < PAGE as usize {
            break;
        }
        // The next page starts below the oldest record of this one.
        match page
            .last()
            .and_then(|r| r.get("id"))
            .and_then(Value::as_str)
        {
            Some(id) => before = Some(id.to_owned()),
            None => break,
        }
    }
    chosen.reverse();
    if ctx.json {
        print_json(&Value::Array(chosen))?;
        return Ok(Outcome::Success);
    }
    if chosen.is_empty() {
        note(&nothing_found(recent, SystemTime::now()));
        return Ok(Outcome::Success);
    }
    // Skip lines from the oldest end so that exactly the last `tail` are shown.
    let mut skip = recent.tail.map_or(0, |tail| lines.saturating_sub(tail));
    for record in &chosen {
        let mut output = Lines::of(record);
        let drop_out = skip.min(output.stdout.len());
        output.stdout.drain(..drop_out);
        skip -= drop_out;
        let drop_err = skip.min(output.stderr.len());
        output.stderr.drain(..drop_err);
        skip -= drop_err;
        if output.len() == 0 {
            continue;
        }
        write_stdout(format!("{}\n", header(record)).as_bytes())?;
        for line in &output.stdout {
            write_stdout(format!("{line}\n").as_bytes())?;
        }
        for line in &output.stderr {
            print_stderr(line);
        }
    }
    Ok(Outcome::Success)
}

/// `==> ID SCRIPT STATE QUEUED_AT <==`, as `tail` heads each file it shows.
fn header(record: &Value) -> String {
    let field = |pointer: &str| {
        record
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or("?")
    };
    format!(
        "==> {} {} {} {} <==",
        field("/id"),
        field("/script"),
        field("/state"),
        field("/timings/queued_at")
    )
}

fn nothing_found(recent: &Recent, now: SystemTime) -> String {
    let mut text = "no output".to_owned();
    if let Some(script) = &recent.script {
        text.push_str(&format!(" from {script}"));
    }
    if let Some(since) = recent.since {
        let ago = now.duration_since(since).unwrap_or_default();
        let ago = Duration::from_secs(ago.as_secs());
        text.push_str(&format!(" in the last {}", humantime::format_duration(ago)));
    }
    text.push_str("; `runwarm executions` lists executions, with or without output");
    text
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn at(text: &str) -> SystemTime {
        humantime::parse_rfc3339(text).unwrap()
    }

    #[test]
    fn since_reads_a_time_ago_or_a_time() {
        let now = at("2026-05-01T10:00:00Z");
        assert_eq!(since_at("10m", now), Ok(at("2026-05-01T09:50:00Z")));
        assert_eq!(since_at("1h 30m", now), Ok(at("2026-05-01T08:30:00Z")));
        assert_eq!(since_at("1d", now), Ok(at("2026-04-30T10:00:00Z")));
        assert_eq!(
            since_at("2026-04-01T00:00:00Z", now),
            Ok(at("2026-04-01T00:00:00Z"))
        );
        assert_eq!(
            since_at("2026-04-01 12:00:00", now),
            Ok(at("2026-04-01T12:00:00Z"))
        );
        let err = since_at("yesterday", now).unwrap_err();
        assert!(err.contains("neither a time ago"), "{err}");
    }

    #[test]
    fn output_splits_into_lines_with_logs_after_stderr() {
        let record = json!({"stdout": "a\nb\n", "stderr": "e1\ne2",
            "logs": [{"level": "info", "message": "m"}]});
        let lines = Lines::of(&record);
        assert_eq!(lines.stdout, ["a", "b"]);
        assert_eq!(lines.stderr, ["e1", "e2", "[info] m"]);
        assert_eq!(Lines::of(&json!({"stdout": ""})), Lines::default());
        assert_eq!(split("\n"), [""]);
        assert_eq!(last(&lines.stderr, 2), ["e2", "[info] m"]);
        assert_eq!(last(&lines.stdout, 10), ["a", "b"]);
        assert!(last(&lines.stdout, 0).is_empty());
    }

    fn record(id: &str, queued_at: &str, stdout: &str) -> Value {
        json!({"id": id, "script": "s", "state": "completed", "stdout": stdout, "stderr": "",
            "logs": [], "timings": {"queued_at": queued_at}})
    }

    #[test]
    fn gathering_stops_at_the_first_older_execution_or_enough_lines() {
        let page = [
            record("3", "2026-05-01T10:00:00Z", "c1\nc2\n"),
            record("2", "2026-05-01T09:30:00Z", ""),
            record("1", "2026-05-01T09:00:00Z", "a1\n"),
        ];
        let (mut chosen, mut lines) = (Vec::new(), 0);
        let since = Recent {
            since: Some(at("2026-05-01T09:15:00Z")),
            ..Recent::default()
        };
        assert!(gather(&page, &since, &mut chosen, &mut lines));
        // The silent execution is skipped, the one before `since` ends the search.
        assert_eq!((chosen.len(), lines), (1, 2));

        let (mut chosen, mut lines) = (Vec::new(), 0);
        let tail = Recent {
            tail: Some(3),
            ..Recent::default()
        };
        assert!(gather(&page, &tail, &mut chosen, &mut lines));
        assert_eq!((chosen.len(), lines), (2, 3));

        let (mut chosen, mut lines) = (Vec::new(), 0);
        assert!(!gather(&page, &Recent::default(), &mut chosen, &mut lines));
        assert_eq!(chosen.len(), 2, "a full page asks for the next one");
    }

    #[test]
    fn headers_and_empty_answers_say_what_was_looked_at() {
        assert_eq!(
            header(&record("0193-a", "2026-05-01T10:00:00.123Z", "")),
            "==> 0193-a s completed 2026-05-01T10:00:00.123Z <=="
        );
        let now = at("2026-05-01T10:00:00Z");
        let recent = Recent {
            script: Some("greet".into()),
            since: Some(at("2026-05-01T09:50:00Z")),
            tail: None,
        };
        assert_eq!(
            nothing_found(&recent, now),
            "no output from greet in the last 10m; `runwarm executions` lists executions, \
             with or without output"
        );
    }
}
