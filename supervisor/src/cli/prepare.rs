//! Waiting for a registered version's prepare (dependencies, build), which runwarmd runs in the
//! background after `POST /v1/scripts`: a spinner when stderr is a terminal, one plain line per
//! step otherwise ([`super::progress`]), and the words for how it ended.
//!
//! The registration answer carries the prepare state as a string; the version endpoint carries
//! an object (`state`, `step`, `duration_ms`, `dependencies`, `build`, `error`). Both are read
//! here, and a state this client does not know counts as finished: waiting forever on a daemon
//! that added a terminal state would be worse than stopping early.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::client::{Method, escape};

use super::Ctx;
use super::error::CliError;
use super::outcome::Outcome;
use super::progress::{OnPipe, Progress, ctrl_c, seconds};

/// How often the version is asked for its prepare state.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// How waiting ended, with the last prepare status seen.
#[derive(Debug)]
pub(super) enum Waited {
    /// Ready or failed; `None` when the daemon no longer reports a prepare for the version
    /// (a restart forgets finished ones).
    Finished(Option<Value>),
    /// `--timeout` passed first.
    TimedOut(Value),
    /// Ctrl-C.
    Interrupted(Value),
}

/// The state of a prepare given as the registration's string or the version's object.
pub(super) fn state_of(prepare: &Value) -> Option<&str> {
    prepare
        .as_str()
        .or_else(|| prepare.get("state").and_then(Value::as_str))
}

/// Whether the prepare will not change any more.
pub(super) fn is_finished(prepare: &Value) -> bool {
    !matches!(state_of(prepare), Some("pending" | "running"))
}

/// The outcome of a finished prepare: a failed one is the script's failure (`E001` for its
/// invocations), a state this client does not know is the daemon's.
pub(super) fn outcome_of(prepare: &Value) -> Outcome {
    match state_of(prepare) {
        Some("ready" | "pending" | "running") => Outcome::Success,
        Some("failed") => Outcome::ScriptFailed,
        _ => Outcome::SystemError,
    }
}

/// Polls the version until its prepare finishes, `timeout` passes or Ctrl-C, showing progress
/// on stderr.
pub(super) async fn wait(
    ctx: &Ctx,
    name: &str,
    version: &str,
    timeout: Option<Duration>,
) -> Result<Waited, CliError> {
    let path = format!("/v1/scripts/{}/versions/{}", escape(name), escape(version));
    let mut progress = Progress::on_stderr(OnPipe::Lines, "preparing…");
    let started = Instant::now();
    // One listener for the whole wait: a Ctrl-C during a request is still seen afterwards.
    let interrupted = ctrl_c();
    tokio::pin!(interrupted);
    let mut last = Value::Null;
    loop {
        let answer = tokio::select! {
            () = &mut interrupted => return Ok(Waited::Interrupted(last)),
            answer = ctx.call(Method::GET, &path, None) => answer?,
        };
        let Some(prepare) = answer.get("prepare").filter(|p| !p.is_null()) else {
            return Ok(Waited::Finished(None));
        };
        if is_finished(prepare) {
            progress.finish(&end_line(prepare));
            return Ok(Waited::Finished(Some(prepare.clone())));
        }
        progress.update(&stage_line(prepare), started.elapsed());
        last = prepare.clone();
        let left = match timeout {
            Some(limit) => match limit.checked_sub(started.elapsed()) {
                Some(left) if !left.is_zero() => left,
                _ => return Ok(Waited::TimedOut(last)),
            },
            None => POLL_INTERVAL,
        };
        tokio::select! {
            () = &mut interrupted => return Ok(Waited::Interrupted(last)),
            () = tokio::time::sleep(POLL_INTERVAL.min(left)) => {}
        }
    }
}

/// What the prepare is doing, as a progress line: `preparing: dependencies…`.
pub(super) fn stage_line(prepare: &Value) -> String {
    match (
        state_of(prepare),
        prepare.get("step").and_then(Value::as_str),
    ) {
        (Some("running"), Some(step)) => format!("preparing: {step}…"),
        (Some("pending"), _) => "preparing: waiting for a turn…".to_owned(),
        _ => "preparing…".to_owned(),
    }
}

/// Where an unfinished prepare stands, for the message after a timeout or Ctrl-C.
pub(super) fn standing(prepare: &Value) -> String {
    match (
        state_of(prepare),
        prepare.get("step").and_then(Value::as_str),
    ) {
        (Some("running"), Some(step)) => format!("its {step} step was running"),
        (Some("pending"), _) => "it was waiting for a turn".to_owned(),
        _ => "it was under way".to_owned(),
    }
}

/// The last progress line: `prepared in 1.2 s`, `prepare failed after 3.4 s`.
pub(super) fn end_line(prepare: &Value) -> String {
    let took = took(prepare);
    match state_of(prepare) {
        Some("ready") => match took {
            Some(took) => format!("prepared in {took}"),
            None => "prepared".to_owned(),
        },
        Some("failed") => match took {
            Some(took) => format!("prepare failed after {took}"),
            None => "prepare failed".to_owned(),
        },
        Some(other) => format!("prepare {other}"),
        None => "prepare ended".to_owned(),
    }
}

/// How a finished prepare went, for the `registered …` line: `prepared in 1.2 s (dependencies
/// cached)`, `prepared from the cache`. A string state (the registration's answer with
/// `--no-wait`) is shown as it is: `prepare pending`.
pub(super) fn summary(prepare: &Value) -> String {
    if state_of(prepare) != Some("ready") || prepare.is_string() {
        return match state_of(prepare) {
            Some(state) => format!("prepare {state}"),
            None => "prepare state unknown".to_owned(),
        };
    }
    let steps: Vec<(&str, bool)> = ["dependencies", "build"]
        .into_iter()
        .filter_map(|step| {
            let report = prepare.get(step).filter(|r| r.is_object())?;
            Some((
                step,
                report.get("cached").and_then(Value::as_bool) == Some(true),
            ))
        })
        .collect();
    let cached: Vec<&str> = steps
        .iter()
        .filter(|(_, cached)| *cached)
        .map(|(step, _)| *step)
        .collect();
    if !steps.is_empty() && cached.len() == steps.len() {
        return "prepared from the cache".to_owned();
    }
    let mut text = end_line(prepare);
    if !cached.is_empty() {
        text.push_str(&format!(" ({} cached)", cached.join(" and ")));
    }
    text
}

/// The report of a failed prepare for stderr: what failed, the daemon's summary of the tool's
/// output (indented), and what to do.
pub(super) fn failure_report(name: &str, version: &str, prepare: &Value) -> String {
    let after = took(prepare)
        .map(|took| format!(" after {took}"))
        .unwrap_or_default();
    let mut text = format!("error: registered {name} {version}, but preparing it failed{after}\n");
    let detail = prepare
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim_end();
    if detail.is_empty() {
        text.push_str("  (runwarmd gave no detail)\n");
    }
    for line in detail.lines() {
        text.push_str(&format!("  {line}\n"));
    }
    text.push_str(
        "\nhint: invocations of this version fail with E001 until it is prepared; fix the \
         dependencies or the code and register again (registering the same files again retries, \
         in case the network was to blame)\n",
    );
    text
}

fn took(prepare: &Value) -> Option<String> {
    let ms = prepare.get("duration_ms").and_then(Value::as_f64)?;
    ms.is_finite().then(|| seconds(ms / 1000.0))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn states_come_from_strings_or_objects() {
        assert_eq!(state_of(&json!("pending")), Some("pending"));
        assert_eq!(state_of(&json!({"state": "running"})), Some("running"));
        assert_eq!(state_of(&json!({"no": "state"})), None);
        assert!(!is_finished(&json!("pending")));
        assert!(!is_finished(&json!({"state": "running", "step": "build"})));
        assert!(is_finished(&json!({"state": "ready"})));
        assert!(is_finished(&json!({"state": "failed"})));
        // An unknown state stops the wait instead of polling forever.
        assert!(is_finished(&json!({"state": "vanished"})));
        assert_eq!(outcome_of(&json!({"state": "ready"})), Outcome::Success);
        assert_eq!(
            outcome_of(&json!({"state": "failed"})),
            Outcome::ScriptFailed
        );
        assert_eq!(
            outcome_of(&json!({"state": "vanished"})),
            Outcome::SystemError
        );
    }

    #[test]
    fn progress_lines_name_the_step_and_the_time() {
        let running = json!({"state": "running", "step": "dependencies"});
        assert_eq!(stage_line(&running), "preparing: dependencies…");
        assert_eq!(
            stage_line(&json!({"state": "pending"})),
            "preparing: waiting for a turn…"
        );
        assert_eq!(stage_line(&json!({"state": "running"})), "preparing…");
        assert_eq!(standing(&running), "its dependencies step was running");
        assert_eq!(
            standing(&json!({"state": "pending"})),
            "it was waiting for a turn"
        );
        assert_eq!(
            end_line(&json!({"state": "ready", "duration_ms": 1234.5})),
            "prepared in 1.2 s"
        );
        assert_eq!(
            end_line(&json!({"state": "failed", "duration_ms": 3400.0})),
            "prepare failed after 3.4 s"
        );
    }

    #[test]
    fn summaries_say_what_came_from_the_cache() {
        let ran = json!({"state": "ready", "duration_ms": 14200.0,
            "dependencies": {"key": "k", "cached": false, "duration_ms": 14000.0},
            "build": {"key": "b", "cached": false, "duration_ms": 200.0}});
        assert_eq!(summary(&ran), "prepared in 14.2 s");
        let deps_cached = json!({"state": "ready", "duration_ms": 1234.0,
            "dependencies": {"key": "k", "cached": true, "duration_ms": 0.0},
            "build": {"key": "b", "cached": false, "duration_ms": 1200.0}});
        assert_eq!(
            summary(&deps_cached),
            "prepared in 1.2 s (dependencies cached)"
        );
        let all_cached = json!({"state": "ready", "duration_ms": 0.0,
            "dependencies": {"key": "k", "cached": true, "duration_ms": 0.0},
            "build": {"key": "b", "cached": true, "duration_ms": 0.0}});
        assert_eq!(summary(&all_cached), "prepared from the cache");
        assert_eq!(summary(&json!("pending")), "prepare pending");
        assert_eq!(summary(&json!("ready")), "prepare ready");
        assert_eq!(summary(&json!({"state": "ready"})), "prepared");
    }

    #[test]
    fn failures_show_the_daemons_summary_indented() {
        let failed = json!({"state": "failed", "duration_ms": 2100.0,
            "error": "the dependencies step exited with status 1\n  × No solution found: no-such-package-xyz\n"});
        let text = failure_report("deps", "sha256:ab", &failed);
        assert!(
            text.starts_with(
                "error: registered deps sha256:ab, but preparing it failed after 2.1 s\n  the \
                 dependencies step exited with status 1\n    × No solution found: \
                 no-such-package-xyz\n\nhint: "
            ),
            "{text}"
        );
        let bare = failure_report("x", "v", &json!({"state": "failed"}));
        assert!(
            bare.starts_with(
                "error: registered x v, but preparing it failed\n  (runwarmd gave no detail)\n"
            ),
            "{bare}"
        );
    }
}
