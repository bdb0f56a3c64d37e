use serde_json::{Map, json};

use super::*;

fn object(pairs: &[(&str, Value)]) -> Value {
    let mut map = Map::new();
    for (k, v) in pairs {
        map.insert((*k).to_owned(), v.clone());
    }
    Value::Object(map)
}

#[test]
fn registrants_read_as_names_with_their_ids() {
    assert_eq!(
        with_names(1000, 1000, Some("ada"), Some("staff")),
        "ada:staff (1000:1000)"
    );
    assert_eq!(with_names(1000, 50, Some("ada"), None), "ada:50 (1000:50)");
    assert_eq!(with_names(4321, 4321, None, None), "4321:4321");
    assert_eq!(registrant(&Value::Null), "-");
    assert_eq!(registrant(&json!({"uid": -1, "gid": 0})), "-");
    // uid 0 is root everywhere.
    assert!(registrant(&json!({"uid": 0, "gid": 0})).starts_with("root:"));
    assert!(registrant(&json!({"uid": 4321, "gid": 4321, "pid": 77})).ends_with(" pid 77"));
}

#[test]
fn limits_take_the_runtimes_defaults_where_the_manifest_sets_none() {
    let manifest = json!({"limits": {"timeout_ms": 5000}});
    let defaults = json!({"timeout_ms": 30000, "memory_mb": 256, "pids": 64, "cpu": 1.0});
    assert_eq!(
        limits_line(&manifest, &defaults),
        "timeout 5.0 s, memory 256 MiB (runtime default), pids 64 (runtime default), \
         cpu 1.0 cores (runtime default)"
    );
    assert_eq!(
        limits_line(&json!({}), &Value::Null),
        "timeout runwarmd's default, memory runwarmd's default, pids runwarmd's default, \
         cpu runwarmd's default"
    );
}

#[test]
fn show_lists_schema_limits_pool_tags_and_registrants() {
    let script = object(&[
        ("name", json!("greet")),
        ("description", json!("Greets")),
        ("disabled", json!(false)),
        ("latest", json!("sha256:0123456789abcdef")),
        (
            "tags",
            json!({"latest": "sha256:0123456789abcdef", "prod": "sha256:fedcba9876543210"}),
        ),
        ("labels", json!(["demo"])),
        ("created_at", json!("2026-05-01T10:00:00.000Z")),
    ]);
    let latest = json!({"id": "sha256:0123456789abcdef", "registered_by": {"uid": 4321, "gid": 4321},
        "manifest": {"runtime": "python3", "entry": "main.py", "handler": "handler",
            "params": {"type": "object", "required": ["name"]},
            "limits": {"timeout_ms": 5000},
            "pool": {"min_warm": 1, "max": 4, "idle_ttl_s": 600, "max_requests": 10000},
            "network": "none", "retry_safe": false, "env": {}}});
    let versions = json!([
        {"id": "sha256:0123456789abcdef", "created_at": "2026-05-01T10:00:00.000Z",
         "runtime": "python3", "tags": ["latest"], "registered_by": {"uid": 4321, "gid": 4321}},
        {"id": "sha256:fedcba9876543210", "created_at": "2026-04-01T10:00:00.000Z",
         "runtime": "python3", "tags": ["prod"], "registered_by": null},
    ]);
    let text = render(&script, &latest, &versions, &json!({"memory_mb": 256}));
    for expected in [
        "python3, the runtime's default mode, entry main.py, handler handler",
        "latest -> sha256:0123456789ab, prod -> sha256:fedcba987654",
        "registered by  4321:4321",
        "timeout 5.0 s, memory 256 MiB (runtime default)",
        "max 4, min_warm 1, idle_ttl 600 s, max_requests 10000, max_concurrency unlimited",
        "none (loopback only)",
        "parameters (JSON Schema):\n  {\n",
        "    \"type\": \"object\"",
        "versions, newest first:\nVERSION",
        "REGISTERED BY",
    ] {
        assert!(text.contains(expected), "{expected:?} missing from\n{text}");
    }
    let rows: Vec<&str> = text.lines().rev().take(2).collect();
    assert!(
        rows[0].contains("sha256:fedcba9876543210") && rows[0].contains(" - "),
        "{text}"
    );
    assert!(rows[1].contains("4321:4321"), "{text}");
    // A changelog keeps its lines; what would drive the terminal is shown escaped.
    let noted =
        json!({"manifest": {"changelog": "fixed the greeting\n\u{1b}]0;owned\u{7}added a name"}});
    let text = render(&script, &noted, &json!([]), &Value::Null);
    assert!(
        text.contains(
            "changelog      fixed the greeting\n               \\u{1b}]0;owned\\u{7}added a name"
        ),
        "{text}"
    );
    let bare = render(&script, &json!({"manifest": {}}), &json!([]), &Value::Null);
    assert!(bare.contains("parameters: any JSON payload"), "{bare}");
    assert!(bare.contains("  none\n"), "{bare}");
}
