//! A version's `params` JSON Schema: compiled once, then checked against every payload.
//!
//! jsonschema is built without its `resolve-http`/`resolve-file` features, so a schema cannot
//! make the daemon fetch a URL or read a host file through `$ref`; such a schema is refused.

use serde::Serialize;
use serde_json::Value;

/// Most violations reported for one payload: enough to fix it, bounded for hostile payloads.
const MAX_VIOLATIONS: usize = 100;
/// Longest violation message kept, in bytes (messages quote the offending value).
const MAX_MESSAGE_BYTES: usize = 300;

/// One way a payload fails the schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// JSON pointer into the payload (`""` for the payload itself).
    pub pointer: String,
    /// What is wrong there.
    pub message: String,
}

/// The schema of a version, as far as validation is concerned.
#[derive(Debug)]
pub(super) enum ParamsSchema {
    /// The manifest has no `params`: every payload is accepted.
    None,
    /// The compiled validator.
    Compiled(Box<jsonschema::Validator>),
    /// A stored schema that no longer compiles (e.g. after an upgrade of the validator). Every
    /// payload is refused rather than run unchecked, and the daemon still starts.
    Broken(String),
}

impl ParamsSchema {
    /// Compiles a schema at registration; the error is the compiler's message.
    pub fn compile(schema: Option<&Value>) -> Result<ParamsSchema, String> {
        match schema {
            None => Ok(ParamsSchema::None),
            Some(schema) => jsonschema::validator_for(schema)
                .map(|validator| ParamsSchema::Compiled(Box::new(validator)))
                .map_err(|e| e.to_string()),
        }
    }

    /// Compiles a schema loaded from the database, where failing is not an option.
    pub fn compile_stored(schema: Option<&Value>) -> ParamsSchema {
        Self::compile(schema).unwrap_or_else(ParamsSchema::Broken)
    }

    /// Whether a payload could fail: false without a schema, where every payload passes.
    pub fn checks_anything(&self) -> bool {
        !matches!(self, ParamsSchema::None)
    }

    /// Every violation of `payload` (up to a bound), each with its JSON pointer.
    pub fn validate(&self, payload: &Value) -> Result<(), Vec<Violation>> {
        match self {
            ParamsSchema::None => Ok(()),
            ParamsSchema::Broken(detail) => Err(vec![Violation {
                pointer: String::new(),
                message: format!("the version's params schema no longer compiles: {detail}"),
            }]),
            ParamsSchema::Compiled(validator) => {
                let mut violations: Vec<Violation> = validator
                    .iter_errors(payload)
                    .take(MAX_VIOLATIONS + 1)
                    .map(|error| Violation {
                        pointer: error.instance_path.as_str().to_owned(),
                        message: bounded(error.to_string()),
                    })
                    .collect();
                if violations.is_empty() {
                    return Ok(());
                }
                if violations.len() > MAX_VIOLATIONS {
                    violations.truncate(MAX_VIOLATIONS);
                    violations.push(Violation {
                        pointer: String::new(),
                        message: format!(
                            "more than {MAX_VIOLATIONS} violations; the rest are not listed"
                        ),
                    });
                }
                Err(violations)
            }
        }
    }
}

fn bounded(mut message: String) -> String {
    if message.len() > MAX_MESSAGE_BYTES {
        let mut end = MAX_MESSAGE_BYTES;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    message
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> ParamsSchema {
        ParamsSchema::compile(Some(&json!({
            "type": "object",
            "required": ["name"],
            "properties": {"count": {"type": "integer"}, "tags": {"type": "array", "items": {"type": "string"}}}
        })))
        .unwrap()
    }

    #[test]
    fn violations_carry_json_pointers() {
        let violations = schema()
            .validate(&json!({"count": "three", "tags": ["a", 2]}))
            .unwrap_err();
        let mut pointers: Vec<&str> = violations.iter().map(|v| v.pointer.as_str()).collect();
        pointers.sort_unstable();
        assert_eq!(pointers, ["", "/count", "/tags/1"]);
        let missing = violations.iter().find(|v| v.pointer.is_empty()).unwrap();
        assert!(missing.message.contains("name"), "{}", missing.message);
    }

    #[test]
    fn a_valid_payload_passes_and_no_schema_accepts_anything() {
        assert_eq!(schema().validate(&json!({"name": "x", "count": 3})), Ok(()));
        assert_eq!(
            ParamsSchema::compile(None)
                .unwrap()
                .validate(&json!([1, "x"])),
            Ok(())
        );
    }

    #[test]
    fn invalid_and_remote_schemas_are_refused() {
        assert!(ParamsSchema::compile(Some(&json!({"type": 5}))).is_err());
        assert!(ParamsSchema::compile(Some(&json!({"type": "no-such-type"}))).is_err());
        for remote in ["http://127.0.0.1:9/x.json", "file:///etc/passwd"] {
            let error = ParamsSchema::compile(Some(&json!({"$ref": remote}))).unwrap_err();
            assert!(error.contains("retrieving it failed"), "{remote}: {error}");
        }
    }

    #[test]
    fn violations_are_bounded() {
        let schema = ParamsSchema::compile(Some(&json!({"items": {"type": "string"}}))).unwrap();
        let payload = Value::Array((0..1000).map(Value::from).collect());
        let violations = schema.validate(&payload).unwrap_err();
        assert_eq!(violations.len(), MAX_VIOLATIONS + 1);
        assert!(violations[MAX_VIOLATIONS].message.contains("not listed"));
    }

    #[test]
    fn a_broken_stored_schema_refuses_every_payload() {
        let schema = ParamsSchema::compile_stored(Some(&json!({"type": 5})));
        assert!(matches!(schema, ParamsSchema::Broken(_)));
        assert_eq!(schema.validate(&json!({})).unwrap_err()[0].pointer, "");
    }
}
