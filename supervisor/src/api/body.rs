//! Reading request bodies as JSON with a size limit and problem+json errors.
//!
//! axum's own `Json` extractor answers malformed bodies with `text/plain`; the API promises
//! problem+json everywhere, so bodies are read here instead.

use axum::body::{Body, to_bytes};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::problem::Problem;

/// Deepest JSON nesting accepted; deeper documents are refused before they reach a handler.
const MAX_DEPTH: usize = 128;

/// Reads the body (at most `limit` bytes) and parses it as JSON; an empty body is `empty`.
pub(crate) async fn json_body(body: Body, limit: usize, empty: Value) -> Result<Value, Problem> {
    let bytes = to_bytes(body, limit).await.map_err(|_| {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            format!("the request body is larger than the limit of {limit} bytes"),
        )
        .hint(Some(
            "raise limits.max_body_bytes / limits.max_payload_bytes in the daemon config".into(),
        ))
    })?;
    // Only a body of no bytes at all means "none"; whitespace alone is not JSON (and a client
    // that sends some meant to send something).
    if bytes.is_empty() {
        return Ok(empty);
    }
    if nesting_depth(&bytes) > MAX_DEPTH {
        return Err(Problem::bad_request(format!(
            "the JSON body is nested deeper than {MAX_DEPTH} levels"
        )));
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| Problem::bad_request(format!("the request body is not valid JSON: {e}")))
}

/// A JSON object body as `T`; `shape` says what was expected. serde would also build a struct
/// from an array of its fields in order (`["sha256:…"]` as a tag body), which the API does not
/// take and the document does not promise: only objects are read.
pub(crate) fn from_object<T: DeserializeOwned>(body: Value, shape: &str) -> Result<T, Problem> {
    if !body.is_object() {
        return Err(Problem::bad_request(format!(
            "expected {shape}: the body must be a JSON object"
        )));
    }
    serde_json::from_value(body).map_err(|e| Problem::bad_request(format!("expected {shape}: {e}")))
}

/// Maximum bracket depth of a JSON text, ignoring brackets inside strings.
fn nesting_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut max, mut in_str, mut escaped) = (0usize, 0usize, false, false);
    for &b in bytes {
        if in_str {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'{' | b'[' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_ignores_brackets_in_strings() {
        assert_eq!(nesting_depth(br#"{"a":"[[[[{{{"}"#), 1);
        assert_eq!(nesting_depth(br#"[[[1]],{"x":[2]}]"#), 3);
        assert_eq!(nesting_depth(br#"{"a":"\"[["}"#), 1);
    }

    #[tokio::test]
    async fn deep_and_invalid_and_large_bodies_are_problems() {
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        let p = json_body(Body::from(deep), 1 << 20, Value::Null)
            .await
            .unwrap_err();
        assert_eq!(p.status, 400);
        let p = json_body(Body::from("{nope"), 1 << 20, Value::Null)
            .await
            .unwrap_err();
        assert_eq!(p.status, 400);
        let p = json_body(Body::from(vec![b' '; 100]), 10, Value::Null)
            .await
            .unwrap_err();
        assert_eq!(p.status, 413);
        let v = json_body(Body::from(""), 10, serde_json::json!({}))
            .await
            .unwrap();
        assert_eq!(v, serde_json::json!({}), "no body at all is the default");
        let p = json_body(Body::from("\r\n"), 10, serde_json::json!({}))
            .await
            .unwrap_err();
        assert_eq!(p.status, 400, "whitespace alone is not JSON");
    }

    #[test]
    fn only_objects_become_structs() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Tag {
            version: String,
        }
        let p = from_object::<Tag>(serde_json::json!(["sha256:0"]), "{\"version\"}").unwrap_err();
        assert_eq!(p.status, 400);
        assert!(from_object::<Tag>(serde_json::json!({"version": "x"}), "").is_ok());
    }
}
