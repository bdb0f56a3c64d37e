//! Reading the supervisor's line (what a Rust executor does) through a flat shape.
//!
//! A request's payload is carried as the text the caller sent ([`RawJson`]), and serde's
//! internally tagged enums cannot hand such a field its text: they gather every field into an
//! intermediate tree first, which has none. So [`SupervisorMessage`] is read the way
//! [`ExecutorMessage`](crate::ExecutorMessage) is (see `executor_wire`): every variant's fields
//! side by side, then checked against `type`.

use std::sync::Arc;

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::RawJson;
use crate::message::{InitScript, RequestContext, SupervisorMessage};

/// Every field any supervisor message has; which ones must be there depends on `type`.
#[derive(Deserialize)]
pub(crate) struct WireMessage {
    #[serde(rename = "type")]
    kind: String,
    protocol: Option<u32>,
    script: Option<InitScript>,
    env: Option<Map<String, Value>>,
    id: Option<String>,
    // `null` is a payload like any other, not a missing one.
    #[serde(default, deserialize_with = "present")]
    payload: Option<Arc<RawJson>>,
    context: Option<RequestContext>,
    grace_ms: Option<u64>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Arc<RawJson>>, D::Error> {
    Arc::<RawJson>::deserialize(d).map(Some)
}

fn required<T>(value: Option<T>, field: &str, kind: &str) -> Result<T, String> {
    value.ok_or_else(|| format!("missing field `{field}` in a `{kind}` message"))
}

impl TryFrom<WireMessage> for SupervisorMessage {
    type Error = String;

    fn try_from(w: WireMessage) -> Result<Self, String> {
        let kind = w.kind.as_str();
        Ok(match kind {
            "init" => SupervisorMessage::Init {
                protocol: required(w.protocol, "protocol", kind)?,
                script: required(w.script, "script", kind)?,
                env: w.env.unwrap_or_default(),
            },
            "request" => SupervisorMessage::Request {
                id: required(w.id, "id", kind)?,
                payload: required(w.payload, "payload", kind)?,
                context: required(w.context, "context", kind)?,
            },
            "ping" => SupervisorMessage::Ping {
                id: required(w.id, "id", kind)?,
            },
            "shutdown" => SupervisorMessage::Shutdown {
                grace_ms: required(w.grace_ms, "grace_ms", kind)?,
            },
            other => {
                return Err(format!(
                    "unknown message type `{other}` (expected `init`, `request`, `ping` or \
                     `shutdown`)"
                ));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::message::{Caller, RequestContext, SupervisorMessage};

    fn parse(line: &str) -> Result<SupervisorMessage, String> {
        serde_json::from_str(line).map_err(|e| e.to_string())
    }

    #[test]
    fn a_request_round_trips_with_its_payload_as_written() {
        let payload = r#"{"z":1,"big":123456789012345678901234567890,"a":[null]}"#;
        let line = format!(
            r#"{{"type":"request","id":"r","payload":{payload},"context":{{"execution_id":"e","deadline_ms":1,"attempt":1,"caller":{{"uid":0,"gid":0,"pid":0}}}}}}"#
        );
        let msg = parse(&line).unwrap();
        let SupervisorMessage::Request { payload: got, .. } = &msg else {
            panic!("{msg:?}");
        };
        assert_eq!(got.get(), payload);
        assert_eq!(serde_json::to_string(&msg).unwrap(), line);
        let null = parse(r#"{"type":"request","id":"r","payload":null,"context":{"execution_id":"e","deadline_ms":1,"attempt":1,"caller":{"uid":0,"gid":0,"pid":0}}}"#).unwrap();
        assert_eq!(
            null,
            SupervisorMessage::Request {
                id: "r".into(),
                payload: std::sync::Arc::new(crate::RawJson::default()),
                context: RequestContext {
                    execution_id: "e".into(),
                    deadline_ms: 1,
                    attempt: 1,
                    caller: Caller {
                        uid: 0,
                        gid: 0,
                        pid: 0
                    },
                },
            }
        );
    }

    #[test]
    fn what_a_type_needs_and_unknown_types_are_named_in_the_error() {
        let e = parse(r#"{"type":"request","id":"r"}"#).unwrap_err();
        assert!(e.contains("`payload`"), "{e}");
        let e = parse(r#"{"type":"shutdown"}"#).unwrap_err();
        assert!(
            e.contains("missing field `grace_ms` in a `shutdown` message"),
            "{e}"
        );
        let e = parse(r#"{"type":"teapot"}"#).unwrap_err();
        assert!(e.contains("unknown message type `teapot`"), "{e}");
        assert_eq!(
            parse(&json!({"type": "ping", "id": "p"}).to_string()).unwrap(),
            SupervisorMessage::Ping { id: "p".into() }
        );
    }
}
