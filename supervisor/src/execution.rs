//! Execution records and their state machine: `queued → provisioning → running → terminal`.
//!
//! Terminal states (`completed`, `failed`, `timeout`, `cancelled`) are immutable: once a record
//! is terminal, [`ExecutionRecord::finish`] refuses to change it again.

use runwarm_protocol::Caller;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Where an execution is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = ExecutionState)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Accepted, waiting for an executor.
    Queued,
    /// Waiting for a new executor to start (a cold start).
    Provisioning,
    /// The executor has the request.
    Running,
    /// The script succeeded.
    Completed,
    /// The script or the system failed.
    Failed,
    /// The time limit ran out.
    Timeout,
    /// A caller cancelled it.
    Cancelled,
}

impl State {
    /// Whether the state is final.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            State::Completed | State::Failed | State::Timeout | State::Cancelled
        )
    }

    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::Provisioning => "provisioning",
            State::Running => "running",
            State::Completed => "completed",
            State::Failed => "failed",
            State::Timeout => "timeout",
            State::Cancelled => "cancelled",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(s: &str) -> Option<State> {
        Some(match s {
            "queued" => State::Queued,
            "provisioning" => State::Provisioning,
            "running" => State::Running,
            "completed" => State::Completed,
            "failed" => State::Failed,
            "timeout" => State::Timeout,
            "cancelled" => State::Cancelled,
            _ => return None,
        })
    }
}

/// The error codes of DESIGN §7.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum ErrorCode {
    /// Init or build error.
    E001,
    /// Script error.
    E002,
    /// Memory limit.
    E003,
    /// Time limit.
    E004,
    /// System error: executor crash, protocol fault, supervisor restart.
    E005,
    /// Rejected: invalid params, disabled, rate limited.
    E006,
}

impl ErrorCode {
    /// The wire spelling (`E001` …).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::E001 => "E001",
            ErrorCode::E002 => "E002",
            ErrorCode::E003 => "E003",
            ErrorCode::E004 => "E004",
            ErrorCode::E005 => "E005",
            ErrorCode::E006 => "E006",
        }
    }
}

/// The error of a failed execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExecutionError {
    /// `E001` … `E006`.
    pub code: ErrorCode,
    /// Error class: the script's exception type, or `Timeout`, `ProtocolFault`, `ExecutorCrashed` ….
    pub kind: String,
    /// What happened, for a person.
    pub message: String,
    /// Stack trace, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
}

impl ExecutionError {
    /// An error without a trace.
    pub fn new(code: ErrorCode, kind: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code,
            kind: kind.into(),
            message: message.into(),
            trace: None,
        }
    }
}

/// One structured log record (`@@{json}` output lines and protocol `log` messages).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LogRecord {
    /// Level.
    pub level: String,
    /// Message text.
    pub message: String,
    /// Other fields.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[schema(value_type = Object)]
    pub fields: Map<String, Value>,
}

/// Which executor served the execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExecutorInfo {
    /// Host pid of the executor process.
    pub pid: u32,
    /// How many requests it has served, this one included.
    pub invocations: u64,
}

/// When things happened (RFC 3339) and how long they took (milliseconds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, utoipa::ToSchema)]
pub struct Timings {
    /// Accepted.
    pub queued_at: String,
    /// Handed to an executor.
    #[serde(default)]
    pub started_at: Option<String>,
    /// Terminal.
    #[serde(default)]
    pub finished_at: Option<String>,
    /// Time spent waiting for an executor (including a cold start).
    pub queue_ms: f64,
    /// Time the executor took to start, when this execution started it.
    pub cold_start_ms: f64,
    /// Time from sending the request to its response.
    pub run_ms: f64,
    /// Accepted to terminal.
    pub total_ms: f64,
    /// A retry's attempt does not start before this (its backoff), also after a restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
}

/// Resources the execution used, when the host can measure them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, utoipa::ToSchema)]
pub struct Resources {
    /// User CPU time of this execution in milliseconds.
    #[serde(default)]
    pub cpu_user_ms: Option<f64>,
    /// System CPU time of this execution in milliseconds.
    #[serde(default)]
    pub cpu_system_ms: Option<f64>,
    /// Peak memory of the executor in bytes.
    #[serde(default)]
    pub peak_memory_bytes: Option<u64>,
}

/// The execution record of DESIGN §3 "Wire shapes".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExecutionRecord {
    /// UUIDv7.
    pub id: String,
    /// Script name.
    pub script: String,
    /// Resolved version id.
    pub version: String,
    /// Where it is.
    pub state: State,
    /// Invocation payload.
    // Shared, not copied, between the request, the executor's message, the in-flight table and
    // history.
    // Kept as the text the caller sent.
    #[serde(default)]
    #[schema(value_type = Value)]
    pub payload: std::sync::Arc<runwarm_protocol::RawJson>,
    /// Result on success.
    // The executor's text, carried through to the answer, history and callbacks unparsed.
    #[serde(default)]
    #[schema(value_type = Option<Value>)]
    pub result: Option<runwarm_protocol::RawJson>,
    /// Error when failed.
    #[serde(default)]
    pub error: Option<ExecutionError>,
    /// User stdout (head and tail kept when over the limit).
    #[serde(default)]
    pub stdout: String,
    /// User stderr (head and tail kept when over the limit).
    #[serde(default)]
    pub stderr: String,
    /// Whether stdout was cut.
    #[serde(default)]
    pub stdout_truncated: bool,
    /// Whether stderr was cut.
    #[serde(default)]
    pub stderr_truncated: bool,
    /// Structured logs.
    #[serde(default)]
    pub logs: Vec<LogRecord>,
    /// Whether this execution started its executor.
    #[serde(default)]
    pub cold: bool,
    /// The executor that served it.
    #[serde(default)]
    pub executor: Option<ExecutorInfo>,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// Exit code of the script process (command mode).
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// Who called.
    pub caller: Caller,
    /// Timings.
    pub timings: Timings,
    /// Resources used.
    #[serde(default)]
    pub resources: Resources,
    /// The manifest `label` of the version (`1.4.0`), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Where the outcome goes, the lineage of the execution: see [`Lineage`].
    #[serde(flatten)]
    pub lineage: Lineage,
}

/// Where an execution came from and where its outcome goes. Set when it is accepted and never
/// changed, except `replays`, which `GET /v1/executions/{id}` fills in from the later records
/// that name this one in `replay_of`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Lineage {
    /// The execution this one replays (`POST /v1/executions/{id}/replay`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay_of: Option<String>,
    /// The replays of this execution, oldest first (shown by `GET /v1/executions/{id}`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replays: Vec<String>,
    /// The `Runwarm-Callback` the caller named: where the terminal record is POSTed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback: Option<String>,
    /// The first attempt of the chain this attempt belongs to (a retry under the manifest's
    /// retry policy is its own execution, with its own record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_of: Option<String>,
    /// The attempt that followed this failed one. A record that was retried owes no callback:
    /// the chain's last attempt does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retried_by: Option<String>,
    /// Every attempt of the chain, first to last (shown by `GET /v1/executions/{id}` when
    /// there was more than one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<String>,
}

impl ExecutionRecord {
    /// A new `queued` record: nothing has run yet.
    pub fn queued(
        id: String,
        script: String,
        version: String,
        payload: impl Into<std::sync::Arc<runwarm_protocol::RawJson>>,
        caller: Caller,
        queued_at: String,
    ) -> Self {
        ExecutionRecord {
            id,
            script,
            version,
            state: State::Queued,
            payload: payload.into(),
            result: None,
            error: None,
            stdout: String::new(),
            stderr: String::new(),
            stdout_truncated: false,
            stderr_truncated: false,
            logs: Vec::new(),
            cold: false,
            executor: None,
            attempt: 1,
            exit_code: None,
            caller,
            timings: Timings {
                queued_at,
                ..Timings::default()
            },
            resources: Resources::default(),
            label: None,
            lineage: Lineage::default(),
        }
    }

    /// Moves the record to a terminal state; returns `false` (and changes nothing) if it is
    /// already terminal.
    pub fn finish(&mut self, state: State, error: Option<ExecutionError>) -> bool {
        if self.state.is_terminal() || !state.is_terminal() {
            return false;
        }
        self.state = state;
        self.error = error;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> ExecutionRecord {
        let mut r = ExecutionRecord::queued(
            "x".into(),
            "s".into(),
            "sha256:0".into(),
            runwarm_protocol::RawJson::default(),
            Caller::default(),
            String::new(),
        );
        r.state = State::Running;
        r
    }

    #[test]
    fn terminal_states_are_immutable() {
        let mut r = record();
        assert!(r.finish(State::Completed, None));
        let err = ExecutionError::new(ErrorCode::E005, "Crash", "boom");
        assert!(!r.finish(State::Failed, Some(err)));
        assert_eq!(r.state, State::Completed);
        assert!(r.error.is_none());
    }

    #[test]
    fn finish_requires_a_terminal_target() {
        let mut r = record();
        assert!(!r.finish(State::Queued, None));
        assert_eq!(r.state, State::Running);
    }

    #[test]
    fn states_round_trip_their_spelling() {
        for s in [
            State::Queued,
            State::Provisioning,
            State::Running,
            State::Completed,
            State::Failed,
            State::Timeout,
            State::Cancelled,
        ] {
            assert_eq!(State::parse(s.as_str()), Some(s));
        }
    }
}
