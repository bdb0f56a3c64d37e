//! Protocol messages. Every message is a JSON object with a `type` field; unknown fields are
//! ignored so newer peers can add fields without breaking older ones.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// How the executor runs the script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Load the entry once and call its handler per request (the warm Lambda model).
    #[default]
    Handler,
    /// Run the entry as a fresh process per request inside the warm executor.
    Command,
}

impl Mode {
    /// The wire spelling (`handler` or `command`).
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Handler => "handler",
            Mode::Command => "command",
        }
    }
}

/// The script an executor serves, sent once in `init`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InitScript {
    /// Script name.
    pub name: String,
    /// Resolved version id (`sha256:…`).
    pub version: String,
    /// Directory that holds the script's files (read-only).
    pub root: String,
    /// Entry file, relative to `root`.
    pub entry: String,
    /// Handler function name (handler mode).
    #[serde(default = "default_handler")]
    pub handler: String,
    /// Handler or command mode.
    #[serde(default)]
    pub mode: Mode,
}

fn default_handler() -> String {
    "handler".to_owned()
}

/// Who called, from the socket's peer credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Caller {
    /// Caller uid.
    pub uid: u32,
    /// Caller gid.
    pub gid: u32,
    /// Caller pid.
    pub pid: i32,
}

/// Per-request context handed to the handler.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestContext {
    /// Execution id (UUIDv7).
    pub execution_id: String,
    /// Deadline as milliseconds since the Unix epoch.
    pub deadline_ms: u64,
    /// Attempt number, starting at 1.
    pub attempt: u32,
    /// The caller.
    pub caller: Caller,
}

/// An error raised by a script or by the executor while loading it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Error class, e.g. `ValueError`, `TypeError`, `ExitCode`.
    pub kind: String,
    /// Human-readable message.
    pub message: String,
    /// Stack trace, if the language has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
}

/// Messages the supervisor writes to the executor's stdin. Read through a flat shape of every
/// variant's fields (`supervisor_wire`), so a request's payload keeps its text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    try_from = "crate::supervisor_wire::WireMessage"
)]
pub enum SupervisorMessage {
    /// First message: which script to load.
    Init {
        /// Protocol version.
        protocol: u32,
        /// The script.
        script: InitScript,
        /// Environment the script sees, beyond the executor's own.
        #[serde(default)]
        env: Map<String, Value>,
    },
    /// Run the script once.
    Request {
        /// Request id, echoed in `log` and `response`.
        id: String,
        /// The invocation payload, as the caller sent it (shared with the daemon's records, not
        /// copied for the message).
        payload: std::sync::Arc<crate::RawJson>,
        /// Context for the handler.
        context: RequestContext,
    },
    /// Health check; the executor answers `pong` with the same id.
    Ping {
        /// Echoed id.
        id: String,
    },
    /// Exit 0 after at most `grace_ms`.
    Shutdown {
        /// Grace period in milliseconds.
        grace_ms: u64,
    },
}

/// Messages the executor writes to its stdout (fd 1). Read through a flat shape of every
/// variant's fields (`executor_wire`), so a large `result` is parsed once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    try_from = "crate::executor_wire::WireMessage"
)]
pub enum ExecutorMessage {
    /// The script is loaded and the executor takes requests.
    Ready {
        /// Protocol version.
        protocol: u32,
        /// Runtime name and version, e.g. `python3.11.7`.
        #[serde(default)]
        runtime: String,
        /// The executor's pid as it sees itself.
        #[serde(default)]
        pid: i64,
    },
    /// Loading the script failed; the executor exits after sending this.
    InitError {
        /// What went wrong.
        error: ErrorBody,
    },
    /// A structured log record for the request in flight.
    Log {
        /// Request id.
        id: String,
        /// Level (`debug`, `info`, `warn`, `error`).
        #[serde(default = "default_level")]
        level: String,
        /// Message text.
        #[serde(default)]
        message: String,
        /// Extra structured fields.
        #[serde(default, skip_serializing_if = "Map::is_empty")]
        fields: Map<String, Value>,
    },
    /// The outcome of one request.
    Response {
        /// Request id.
        id: String,
        /// Whether the script succeeded.
        success: bool,
        /// The result (on success), as the executor wrote it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        result: Option<crate::RawJson>,
        /// The error (on failure).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<ErrorBody>,
        /// Exit code of the script process (command mode).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exit_code: Option<i32>,
    },
    /// Answer to `ping`.
    Pong {
        /// Echoed id.
        id: String,
    },
}

pub(crate) fn default_level() -> String {
    "info".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn response_with_extra_fields_parses() {
        let line =
            r#"{"type":"response","id":"a","success":true,"result":{"x":1},"extra":"ignored"}"#;
        let msg: ExecutorMessage = serde_json::from_str(line).unwrap();
        assert_eq!(
            msg,
            ExecutorMessage::Response {
                id: "a".into(),
                success: true,
                result: Some(crate::RawJson::from_value(&json!({"x":1}))),
                error: None,
                exit_code: None
            }
        );
    }

    #[test]
    fn init_serialises_with_type_tag() {
        let msg = SupervisorMessage::Init {
            protocol: 1,
            script: InitScript {
                name: "hello".into(),
                version: "sha256:00".into(),
                root: "/var/task".into(),
                entry: "main.py".into(),
                handler: "handler".into(),
                mode: Mode::Handler,
            },
            env: Map::new(),
        };
        let v = serde_json::to_value(&msg).unwrap();
        assert_eq!(v["type"], "init");
        assert_eq!(v["script"]["mode"], "handler");
    }

    #[test]
    fn message_without_type_is_rejected() {
        assert!(serde_json::from_str::<ExecutorMessage>(r#"{"id":"x"}"#).is_err());
    }
}
