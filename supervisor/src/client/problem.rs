//! The `application/problem+json` answers of the daemon, read leniently.
//!
//! The daemon sends `{"type", "title", "status", "detail", "code", "hint"?, "violations"?}`; a
//! missing or odd member is left empty rather than failing, because an error answer that the
//! client cannot show at all helps nobody.

use serde_json::Value;

/// One failed check of the invocation payload against the script's JSON Schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON pointer into the payload (`/name`, or empty for the whole payload).
    pub pointer: String,
    /// What is wrong there.
    pub message: String,
}

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Problem {
    /// HTTP status.
    pub status: u16,
    /// Short summary.
    pub title: String,
    /// This occurrence.
    pub detail: String,
    /// `E006`, `E005` … when given.
    pub code: Option<String>,
    /// What to do about it, when given.
    pub hint: Option<String>,
    /// Parameter violations, when the payload was refused.
    pub violations: Vec<Violation>,
}

impl Problem {
    /// Reads an error answer; a body that is not a JSON object becomes the `detail`.
    pub fn from_answer(status: u16, body: &[u8]) -> Problem {
        let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
        let Ok(value) = serde_json::from_slice::<Value>(body) else {
            return Problem {
                status,
                detail: snippet(body),
                ..Problem::default()
            };
        };
        if !value.is_object() {
            return Problem {
                status,
                detail: snippet(body),
                ..Problem::default()
            };
        }
        let violations = value
            .get("violations")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .map(|v| Violation {
                        pointer: text(v, "pointer").unwrap_or_default(),
                        message: text(v, "message").unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Problem {
            status,
            title: text(&value, "title").unwrap_or_default(),
            detail: text(&value, "detail").unwrap_or_default(),
            code: text(&value, "code"),
            hint: text(&value, "hint"),
            violations,
        }
    }
}

/// The start of a body, as text, for messages.
pub fn snippet(body: &[u8]) -> String {
    const MAX: usize = 512;
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX)]);
    let text = text.trim();
    if body.len() > MAX {
        format!("{text}…")
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_member() {
        let body = br#"{"type":"about:blank","title":"invalid parameters","status":400,
            "detail":"2 violations","code":"E006","hint":"see the schema",
            "violations":[{"pointer":"/name","message":"must be a string"},{"message":"x"}]}"#;
        let p = Problem::from_answer(400, body);
        assert_eq!(p.title, "invalid parameters");
        assert_eq!(p.code.as_deref(), Some("E006"));
        assert_eq!(p.hint.as_deref(), Some("see the schema"));
        assert_eq!(p.violations.len(), 2);
        assert_eq!(p.violations[0].pointer, "/name");
        assert_eq!(p.violations[1].pointer, "");
    }

    #[test]
    fn a_body_that_is_not_json_becomes_the_detail() {
        let p = Problem::from_answer(502, b"bad gateway\n");
        assert_eq!(p.status, 502);
        assert_eq!(p.detail, "bad gateway");
        let long = vec![b'a'; 2000];
        assert!(Problem::from_answer(500, &long).detail.ends_with('…'));
    }
}
