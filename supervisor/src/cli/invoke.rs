//! `runwarm invoke` (and `replay`): run a script and behave like the script itself for a hook:
//! the result on stdout, the error on stderr, the outcome in the exit code. A cold start or a
//! long run shows a spinner on a terminal after a moment; a pipe sees nothing of it.

use std::time::Duration;

use clap::Args;
use serde_json::Value;

use crate::client::{InvokeOptions, Method, Response, Target};

use super::error::{CliError, UsageError};
use super::outcome::Outcome;
use super::output::{print_json, print_stderr, print_text, printable};
use super::progress::{self, Waited};
use super::{Ctx, payload, refused};

#[derive(Debug, Args)]
pub(super) struct InvokeArgs {
    /// NAME, NAME@VERSION or NAME:TAG (the `latest` tag when neither is given).
    pub(super) target: String,
    /// Payload: inline JSON, @FILE, or - for stdin [default: {}].
    #[arg(short = 'd', long = "data", value_name = "JSON|@FILE|-")]
    pub(super) data: Option<String>,
    /// Return the execution id at once (202) instead of waiting for the result.
    #[arg(long = "async")]
    pub(super) respond_async: bool,
    /// Time limit of this invocation (30s, 2m, 1h 5m …) [default: the script's limit].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub(super) timeout: Option<Duration>,
    /// Run at most once per key: repeating the same key and payload returns the same execution.
    #[arg(long, value_name = "KEY")]
    pub(super) idempotency_key: Option<String>,
    /// Where runwarmd POSTs the terminal record, signed, at least once (`Runwarm-Callback`):
    /// unix:/path/to.sock/http/path or http://127.0.0.1:PORT/path.
    #[arg(long, value_name = "URL")]
    pub(super) callback: Option<String>,
    /// Print the script's stdout (to stdout, before the result) and stderr (to stderr).
    #[arg(long)]
    pub(super) show_output: bool,
}

pub(super) async fn invoke(ctx: &Ctx, args: InvokeArgs) -> Result<Outcome, CliError> {
    let target = Target::parse(&args.target).map_err(UsageError::from)?;
    let payload = payload::read_payload(args.data.as_deref(), std::io::stdin().lock())?;
    let opts = InvokeOptions {
        respond_async: args.respond_async,
        timeout: args.timeout,
        idempotency_key: args.idempotency_key,
        callback: args.callback,
    };
    let call = ctx
        .client
        .invoke(&target.name, target.selector.as_ref(), &payload, &opts);
    let answer = if args.respond_async {
        // Answered as soon as the execution is queued: nothing to wait for.
        call.await?
    } else {
        match progress::waiting(call, &format!("running {}…", args.target)).await {
            Waited::Done(answer) => answer?,
            Waited::Interrupted => return Ok(interrupted(&target.name)),
        }
    };
    let path = format!("/v1/scripts/{}/invoke", target.name);
    report(ctx, &answer, &path, args.show_output)
}

/// What Ctrl-C during a synchronous wait means: only this client stops waiting. runwarmd runs
/// the execution to its end whether or not its caller is still there (see
/// `docs/design/0001-core.md`), so the person is told how to find it or stop it.
pub(super) fn interrupted(script: &str) -> Outcome {
    print_stderr(&format!(
        "stopped waiting; the execution goes on in runwarmd\n\nhint: find it with `runwarm \
         executions --script {script}`, follow it with `runwarm logs -f ID`, stop it with \
         `runwarm cancel ID`\n"
    ));
    Outcome::Interrupted
}

/// Prints the answer to an invocation or a replay and returns its outcome: the execution id of
/// a `202`, else the result (or the failure) of the record; an error status is a refusal of
/// `POST path`.
pub(super) fn report(
    ctx: &Ctx,
    answer: &Response,
    path: &str,
    show_output: bool,
) -> Result<Outcome, CliError> {
    if !answer.is_success() {
        return Err(refused(&Method::POST, path, answer.problem()));
    }
    let body = answer.json()?;
    if answer.status == 202 {
        if ctx.json {
            print_json(&body)?;
        } else {
            let Some(id) = body.get("id").and_then(Value::as_str) else {
                return Err(crate::client::ClientError::InvalidResponse(
                    "202 answer without an execution `id`".into(),
                )
                .into());
            };
            print_text(id)?;
        }
        return Ok(Outcome::Success);
    }
    let outcome = Outcome::of_record(&body);
    if ctx.json {
        print_json(&body)?;
    } else {
        if show_output {
            print_text(text_field(&body, "stdout"))?;
            print_stderr(text_field(&body, "stderr"));
        }
        if outcome == Outcome::Success {
            print_json(body.get("result").unwrap_or(&Value::Null))?;
        } else {
            print_stderr(&describe_failure(&body, !show_output));
        }
    }
    Ok(outcome)
}

fn text_field<'a>(record: &'a Value, key: &str) -> &'a str {
    record.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// Lines of the script's stderr a failure shows when its output is not printed anyway: what a
/// script says last before it fails is usually why (a command-mode script's only error is its
/// exit code).
const STDERR_TAIL_LINES: usize = 5;
/// A longer stderr line is cut to this many characters in the tail.
const STDERR_TAIL_LINE_CHARS: usize = 300;

/// `error: E002 ValueError: message`, the trace, with `stderr_tail` the last lines the script
/// wrote to stderr, and where to read the output.
pub(super) fn describe_failure(record: &Value, stderr_tail: bool) -> String {
    let state = text_field(record, "state");
    let error = record.get("error").unwrap_or(&Value::Null);
    let code = text_field(error, "code");
    let kind = text_field(error, "kind");
    let message = printable(text_field(error, "message"));
    let mut text = match (code.is_empty(), kind.is_empty()) {
        (false, false) => format!("error: {code} {kind}: {message}\n"),
        (false, true) => format!("error: {code}: {message}\n"),
        (true, _) => format!("error: execution {state}\n"),
    };
    let trace = text_field(error, "trace");
    if !trace.is_empty() {
        for line in trace.lines() {
            text.push_str(&format!("  {}\n", printable(line)));
        }
    }
    if stderr_tail {
        text.push_str(&tail_of_stderr(text_field(record, "stderr")));
    }
    let id = text_field(record, "id");
    if !id.is_empty() {
        text.push_str(&format!(
            "\nhint: see its output with `runwarm logs {id}`\n"
        ));
    }
    text
}

/// `stderr:` and the last non-empty lines of `stderr`, indented; nothing when there are none.
fn tail_of_stderr(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return String::new();
    }
    let shown = &lines[lines.len().saturating_sub(STDERR_TAIL_LINES)..];
    let mut text = if shown.len() < lines.len() {
        format!("stderr (last {} of {} lines):\n", shown.len(), lines.len())
    } else {
        "stderr:\n".to_owned()
    };
    for line in shown {
        let cut: String = line.chars().take(STDERR_TAIL_LINE_CHARS).collect();
        let more = if cut.len() < line.len() { " …" } else { "" };
        text.push_str(&format!("  {}{more}\n", printable(&cut)));
    }
    text
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn failures_name_code_kind_message_and_the_execution() {
        let record = json!({"id": "0193", "state": "failed",
            "error": {"code": "E002", "kind": "ValueError", "message": "bad", "trace": "line 1\nline 2"}});
        assert_eq!(
            describe_failure(&record, true),
            "error: E002 ValueError: bad\n  line 1\n  line 2\n\nhint: see its output with `runwarm logs 0193`\n"
        );
        let bare = json!({"state": "cancelled", "error": null});
        assert_eq!(
            describe_failure(&bare, true),
            "error: execution cancelled\n"
        );
    }

    #[test]
    fn a_failure_shows_the_last_lines_of_stderr_unless_the_output_is_printed() {
        let record = json!({"id": "0194", "state": "failed",
            "stderr": "starting\n\n127.0.0.1:22 is not healthy\n",
            "error": {"code": "E002", "kind": "ExitCode", "message": "exited with code 1"}});
        assert_eq!(
            describe_failure(&record, true),
            "error: E002 ExitCode: exited with code 1\nstderr:\n  starting\n  127.0.0.1:22 is not healthy\n\nhint: see its output with `runwarm logs 0194`\n"
        );
        assert_eq!(
            describe_failure(&record, false),
            "error: E002 ExitCode: exited with code 1\n\nhint: see its output with `runwarm logs 0194`\n"
        );
        let chatty: String = (1..=8).map(|i| format!("line {i}\n")).collect();
        let long = "x".repeat(400);
        let tail = tail_of_stderr(&format!("{chatty}{long}\n"));
        assert!(
            tail.starts_with("stderr (last 5 of 9 lines):\n  line 5\n"),
            "{tail}"
        );
        assert!(
            tail.ends_with(&format!("  {} …\n", "x".repeat(300))),
            "{tail}"
        );
        // What the script wrote cannot drive the terminal from inside runwarm's own lines.
        let hostile = json!({"state": "failed", "stderr": "\u{1b}[2J\u{1b}]0;title\u{7}",
            "error": {"code": "E002", "kind": "X", "message": "bad\u{1b}[8m", "trace": "at\rline"}});
        let shown = describe_failure(&hostile, true);
        assert!(
            !shown.contains('\u{1b}') && !shown.contains('\r'),
            "{shown}"
        );
        assert!(
            shown.contains("bad\\u{1b}[8m") && shown.contains("at\\rline"),
            "{shown}"
        );
    }
}
