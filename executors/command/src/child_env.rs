//! The environment variables one request adds to the script's process: the `env` map from
//! `init`, a `PARAM_<NAME>` for each top-level scalar of an object payload, and the `RUNWARM_*`
//! request variables. Pure functions, so the naming rules are tested without spawning anything.
//!
//! Later entries win when the same name appears twice, so the request variables cannot be
//! shadowed by a payload or manifest key.
//!
//! `PARAM_*` variables are bounded: Linux refuses an `exec` whose single environment string
//! exceeds 128 KiB (`MAX_ARG_STRLEN`) or whose arguments and environment together exceed a
//! quarter of the stack limit, and a payload must not be able to make the spawn fail. A value
//! over the limits is left out with a note; the script still has it on stdin and in `args.json`.

use std::path::Path;

use runwarm_protocol::RequestContext;
use serde_json::{Map, Value};

/// Path of the `args.json` file holding the payload.
pub const ARGS_FILE: &str = "RUNWARM_ARGS_FILE";
/// Execution id of the request.
pub const EXECUTION_ID: &str = "RUNWARM_EXECUTION_ID";
/// Deadline in milliseconds since the Unix epoch.
pub const DEADLINE_MS: &str = "RUNWARM_DEADLINE_MS";
/// Attempt number, starting at 1.
pub const ATTEMPT: &str = "RUNWARM_ATTEMPT";
/// The script's root directory.
pub const SCRIPT_ROOT: &str = "RUNWARM_SCRIPT_ROOT";

/// Longest `PARAM_NAME=value` string set as a variable.
pub const MAX_PARAM_BYTES: usize = 32 * 1024;
/// Most bytes all `PARAM_*` strings of one request may take together.
pub const MAX_PARAMS_TOTAL_BYTES: usize = 256 * 1024;

/// The variables for the child and notes about the parameters left out.
#[derive(Debug, Default)]
pub struct ChildEnv {
    /// Variables to set, in the order they must be applied.
    pub vars: Vec<(String, String)>,
    /// One line per parameter that was not set, for the script's stderr.
    pub skipped: Vec<String>,
}

/// What one request needs to build its environment.
#[derive(Debug)]
pub struct RequestEnv<'a> {
    /// `env` from `init`.
    pub init_env: &'a Map<String, Value>,
    /// The request payload.
    pub payload: &'a Value,
    /// The request context.
    pub context: &'a RequestContext,
    /// Where the payload was written.
    pub args_file: &'a Path,
    /// The script's root directory.
    pub script_root: &'a str,
}

/// The variables to set on the child, in the order they must be applied.
pub fn child_env(req: &RequestEnv<'_>) -> ChildEnv {
    let mut vars = Vec::new();
    let mut skipped = Vec::new();
    for (key, value) in req.init_env {
        if let Some(text) = scalar_text(value) {
            push_if_valid(&mut vars, key.clone(), text);
        }
    }
    let mut params_bytes = 0;
    if let Value::Object(params) = req.payload {
        for (key, value) in params {
            let (Some(name), Some(text)) = (param_name(key), scalar_text(value)) else {
                continue;
            };
            let size = name.len() + 1 + text.len();
            if size > MAX_PARAM_BYTES || params_bytes + size > MAX_PARAMS_TOTAL_BYTES {
                skipped.push(format!(
                    "{name} not set: {size} bytes would pass the environment limit \
                     ({MAX_PARAM_BYTES} per variable, {MAX_PARAMS_TOTAL_BYTES} in all); \
                     read it from stdin or $RUNWARM_ARGS_FILE"
                ));
                continue;
            }
            params_bytes += size;
            push_if_valid(&mut vars, name, text);
        }
    }
    let ctx = req.context;
    vars.push((
        ARGS_FILE.to_owned(),
        req.args_file.to_string_lossy().into_owned(),
    ));
    push_if_valid(&mut vars, EXECUTION_ID.to_owned(), ctx.execution_id.clone());
    vars.push((DEADLINE_MS.to_owned(), ctx.deadline_ms.to_string()));
    vars.push((ATTEMPT.to_owned(), ctx.attempt.to_string()));
    push_if_valid(
        &mut vars,
        SCRIPT_ROOT.to_owned(),
        req.script_root.to_owned(),
    );
    ChildEnv { vars, skipped }
}

/// `PARAM_` plus the key uppercased with every character that is not an ASCII letter or digit
/// replaced by `_`; `None` for an empty key, which would name nothing.
pub fn param_name(key: &str) -> Option<String> {
    if key.is_empty() {
        return None;
    }
    let mut name = String::with_capacity(6 + key.len());
    name.push_str("PARAM_");
    name.extend(key.chars().map(|c| {
        if c.is_ascii_alphanumeric() {
            c.to_ascii_uppercase()
        } else {
            '_'
        }
    }));
    Some(name)
}

/// How a scalar is spelled in the environment: strings raw, numbers as JSON text, booleans as
/// `true`/`false`, null as the empty string. Objects and arrays have no natural spelling and are
/// skipped; the script reads them from stdin or `args.json`.
pub fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some(String::new()),
        Value::Array(_) | Value::Object(_) => None,
    }
}

/// A name with `=` or NUL, or a value with NUL, cannot be represented in `environ`; such an
/// entry is dropped rather than failing the whole spawn.
fn push_if_valid(vars: &mut Vec<(String, String)>, name: String, value: String) {
    if name.is_empty() || name.contains(['=', '\0']) || value.contains('\0') {
        return;
    }
    vars.push((name, value));
}

#[cfg(test)]
mod tests {
    use super::*;
    use runwarm_protocol::Caller;
    use serde_json::json;

    fn context() -> RequestContext {
        RequestContext {
            execution_id: "exec-1".into(),
            deadline_ms: 1_700_000_000_123,
            attempt: 2,
            caller: Caller::default(),
        }
    }

    fn env_for(init_env: &Value, payload: &Value) -> Vec<(String, String)> {
        full_env_for(init_env, payload).vars
    }

    fn full_env_for(init_env: &Value, payload: &Value) -> ChildEnv {
        let init_env = init_env.as_object().cloned().unwrap_or_default();
        child_env(&RequestEnv {
            init_env: &init_env,
            payload,
            context: &context(),
            args_file: Path::new("/tmp/w/args.json"),
            script_root: "/var/task",
        })
    }

    fn lookup<'a>(vars: &'a [(String, String)], name: &str) -> Option<&'a str> {
        vars.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn param_names_are_uppercased_and_sanitised() {
        assert_eq!(param_name("name").as_deref(), Some("PARAM_NAME"));
        assert_eq!(param_name("dry-run").as_deref(), Some("PARAM_DRY_RUN"));
        assert_eq!(param_name("a.b c9").as_deref(), Some("PARAM_A_B_C9"));
        assert_eq!(param_name("café").as_deref(), Some("PARAM_CAF_"));
        assert_eq!(param_name(""), None);
    }

    #[test]
    fn scalars_are_spelled_and_containers_skipped() {
        assert_eq!(scalar_text(&json!("x y")).as_deref(), Some("x y"));
        assert_eq!(scalar_text(&json!(42)).as_deref(), Some("42"));
        assert_eq!(scalar_text(&json!(-1.5)).as_deref(), Some("-1.5"));
        assert_eq!(scalar_text(&json!(true)).as_deref(), Some("true"));
        assert_eq!(scalar_text(&json!(null)).as_deref(), Some(""));
        assert_eq!(scalar_text(&json!([1])), None);
        assert_eq!(scalar_text(&json!({"a": 1})), None);
    }

    #[test]
    fn object_payload_gives_params_and_request_vars() {
        let vars = env_for(
            &json!({"GREETING": "hi", "N": 3}),
            &json!({"name": "Ada", "count": 2, "ok": false, "nested": {"x": 1}, "nil": null}),
        );
        assert_eq!(lookup(&vars, "GREETING"), Some("hi"));
        assert_eq!(lookup(&vars, "N"), Some("3"));
        assert_eq!(lookup(&vars, "PARAM_NAME"), Some("Ada"));
        assert_eq!(lookup(&vars, "PARAM_COUNT"), Some("2"));
        assert_eq!(lookup(&vars, "PARAM_OK"), Some("false"));
        assert_eq!(lookup(&vars, "PARAM_NIL"), Some(""));
        assert_eq!(lookup(&vars, "PARAM_NESTED"), None);
        assert_eq!(lookup(&vars, ARGS_FILE), Some("/tmp/w/args.json"));
        assert_eq!(lookup(&vars, EXECUTION_ID), Some("exec-1"));
        assert_eq!(lookup(&vars, DEADLINE_MS), Some("1700000000123"));
        assert_eq!(lookup(&vars, ATTEMPT), Some("2"));
        assert_eq!(lookup(&vars, SCRIPT_ROOT), Some("/var/task"));
    }

    #[test]
    fn non_object_payload_gives_no_params() {
        let vars = env_for(&json!({}), &json!([1, 2]));
        assert!(vars.iter().all(|(k, _)| !k.starts_with("PARAM_")));
    }

    #[test]
    fn request_vars_win_over_manifest_env() {
        let vars = env_for(&json!({"RUNWARM_ATTEMPT": "99"}), &json!({}));
        assert_eq!(lookup(&vars, ATTEMPT), Some("2"));
    }

    #[test]
    fn unrepresentable_entries_are_dropped() {
        let vars = env_for(
            &json!({"A=B": "x", "": "y", "C": "nul\0"}),
            &json!({"k": "v\0"}),
        );
        assert!(
            vars.iter()
                .all(|(k, v)| !k.contains('=') && !v.contains('\0'))
        );
        assert!(
            !vars
                .iter()
                .any(|(k, _)| k.is_empty() || k == "C" || k == "PARAM_K")
        );
    }

    #[test]
    fn oversized_params_are_skipped_with_a_note() {
        let big = "x".repeat(MAX_PARAM_BYTES);
        let env = full_env_for(&json!({}), &json!({"big": big, "small": "s"}));
        assert_eq!(lookup(&env.vars, "PARAM_SMALL"), Some("s"));
        assert_eq!(lookup(&env.vars, "PARAM_BIG"), None);
        assert_eq!(env.skipped.len(), 1);
        assert!(
            env.skipped[0].starts_with("PARAM_BIG not set"),
            "{:?}",
            env.skipped
        );
    }

    #[test]
    fn params_stop_at_the_total_budget() {
        let chunk = "y".repeat(MAX_PARAM_BYTES - 100);
        let payload: Map<String, Value> = (0..12)
            .map(|i| (format!("k{i:02}"), Value::String(chunk.clone())))
            .collect();
        let env = full_env_for(&json!({}), &Value::Object(payload));
        let set = env
            .vars
            .iter()
            .filter(|(k, _)| k.starts_with("PARAM_"))
            .count();
        let total: usize = env
            .vars
            .iter()
            .filter(|(k, _)| k.starts_with("PARAM_"))
            .map(|(k, v)| k.len() + 1 + v.len())
            .sum();
        assert!(total <= MAX_PARAMS_TOTAL_BYTES);
        assert_eq!(set + env.skipped.len(), 12);
        assert!(!env.skipped.is_empty());
    }
}
