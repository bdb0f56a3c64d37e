//! What a `runwarm` command came to, and the one place that turns it into an exit code.
//!
//! | code | meaning |
//! | ---- | ------- |
//! | 0 | success: the execution completed (or the command did what was asked) |
//! | 1 | the script failed: `E001`, `E002`, `E003`, cancelled, or any other failed state |
//! | 2 | usage: bad arguments, an unreadable `-d @file`, a payload that is not JSON |
//! | 3 | timeout: `E004` or state `timeout` |
//! | 4 | rejected: HTTP 4xx (unknown script, invalid parameters, disabled, 429 overload), `E006` |
//! | 5 | system error: `E005`, HTTP 5xx, cannot connect, an answer the client cannot read |
//! | 130 | interrupted: Ctrl-C while the client waited (`register`'s prepare, `invoke`, `replay`, `prewarm --wait`); the work goes on in runwarmd |

use crate::execution::State;
use serde_json::Value;

/// The exit-code table, as shown by `--help`.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  success: the execution completed (or the command did what was asked)
  1  the script failed: E001 (init/build), E002 (script error), E003 (memory), cancelled,
     or any other failed state
  2  usage: bad arguments, an unreadable `-d @file`, a payload that is not JSON
  3  timeout: E004 or state `timeout`
  4  rejected: HTTP 4xx (unknown script, invalid parameters, disabled, 429 overload), E006
  5  system error: E005, HTTP 5xx, cannot connect to runwarmd, an unreadable answer
  130  interrupted: Ctrl-C while waiting for a prepare (register), a result (invoke, replay
       on a terminal) or executors (prewarm --wait); the work goes on in runwarmd
";

/// What happened; see the module docs for the exit code of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The execution completed, or the command did what was asked.
    Success,
    /// The script ran and failed.
    ScriptFailed,
    /// The command line could not be used.
    Usage,
    /// The execution ran out of time.
    TimedOut,
    /// The daemon refused the request.
    Rejected,
    /// The daemon, the executor or the connection failed.
    SystemError,
    /// The person pressed Ctrl-C while the command waited (128 + SIGINT, as a shell reports it).
    Interrupted,
}

impl Outcome {
    /// The process exit code; the only place outcomes become numbers.
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Success => 0,
            Outcome::ScriptFailed => 1,
            Outcome::Usage => 2,
            Outcome::TimedOut => 3,
            Outcome::Rejected => 4,
            Outcome::SystemError => 5,
            Outcome::Interrupted => 130,
        }
    }

    /// The outcome of an execution record (`state` and `error.code`).
    pub fn of_record(record: &Value) -> Outcome {
        let state = record
            .get("state")
            .and_then(Value::as_str)
            .and_then(State::parse);
        let code = record
            .get("error")
            .and_then(|e| e.get("code"))
            .and_then(Value::as_str);
        match (state, code) {
            (Some(State::Completed), _) => Outcome::Success,
            (Some(State::Timeout), _) | (Some(State::Failed), Some("E004")) => Outcome::TimedOut,
            (Some(State::Failed | State::Cancelled), Some("E005")) => Outcome::SystemError,
            (Some(State::Failed | State::Cancelled), Some("E006")) => Outcome::Rejected,
            (Some(State::Failed | State::Cancelled), _) => Outcome::ScriptFailed,
            // A record that is not terminal, or has no state we know, is not an answer the
            // daemon should give to a finished invocation.
            (Some(State::Queued | State::Provisioning | State::Running) | None, _) => {
                Outcome::SystemError
            }
        }
    }

    /// The outcome of an HTTP status.
    pub fn of_status(status: u16) -> Outcome {
        match status {
            200..=299 => Outcome::Success,
            400..=499 => Outcome::Rejected,
            _ => Outcome::SystemError,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn record(state: &str, code: Option<&str>) -> Value {
        json!({"state": state, "error": code.map(|c| json!({"code": c, "kind": "K", "message": "m"}))})
    }

    #[test]
    fn every_outcome_has_its_documented_code() {
        let table = [
            (Outcome::Success, 0),
            (Outcome::ScriptFailed, 1),
            (Outcome::Usage, 2),
            (Outcome::TimedOut, 3),
            (Outcome::Rejected, 4),
            (Outcome::SystemError, 5),
            (Outcome::Interrupted, 130),
        ];
        for (outcome, code) in table {
            assert_eq!(outcome.exit_code(), code, "{outcome:?}");
            assert!(
                EXIT_CODES.contains(&format!("  {code}  ")),
                "{code} missing from --help"
            );
        }
    }

    #[test]
    fn records_map_to_the_table() {
        let rows = [
            (record("completed", None), 0),
            (record("failed", Some("E001")), 1),
            (record("failed", Some("E002")), 1),
            (record("failed", Some("E003")), 1),
            (record("failed", None), 1),
            (record("failed", Some("E999")), 1),
            (record("cancelled", None), 1),
            (record("timeout", Some("E004")), 3),
            (record("timeout", None), 3),
            (record("failed", Some("E004")), 3),
            (record("failed", Some("E006")), 4),
            (record("failed", Some("E005")), 5),
            (record("running", None), 5),
            (json!({"no": "state"}), 5),
        ];
        for (rec, code) in rows {
            assert_eq!(Outcome::of_record(&rec).exit_code(), code, "{rec}");
        }
    }

    #[test]
    fn statuses_map_to_the_table() {
        for (status, code) in [
            (200, 0),
            (202, 0),
            (400, 4),
            (404, 4),
            (409, 4),
            (429, 4),
            (500, 5),
            (503, 5),
            (302, 5),
        ] {
            assert_eq!(Outcome::of_status(status).exit_code(), code, "{status}");
        }
    }
}
