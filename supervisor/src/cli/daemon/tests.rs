use serde_json::json;

use super::*;

#[test]
fn cache_cells_read_as_words() {
    let cache = json!({"entries": 3, "size_bytes": 432_345_678_u64, "hits": 12,
        "misses": 3, "failures": 0, "last_prepare_at": "2026-05-01T10:00:00.000Z",
        "last_prepare_ms": 14_230.0});
    assert_eq!(cache_cell(&cache), "3 entries, 412.3 MiB");
    assert_eq!(
        cache_cell(&json!({"entries": 1, "size_bytes": 10})),
        "1 entry, 10 B"
    );
    assert_eq!(hits_cell(&cache), "12/3");
    assert_eq!(
        hits_cell(&json!({"hits": 0, "misses": 2, "failures": 1})),
        "0/2, 1 failed"
    );
    let now = humantime::parse_rfc3339("2026-05-01T10:03:10Z").unwrap();
    assert_eq!(last_prepare_at(&cache, now), "14.2 s, 3 min ago");
    let fresh = json!({"entries": 0, "size_bytes": 0, "hits": 0, "misses": 0});
    assert_eq!(last_prepare_at(&fresh, now), "-");
    let odd = json!({"last_prepare_at": "yesterday"});
    assert_eq!(last_prepare_at(&odd, now), "yesterday");
    assert_eq!(ago(Duration::from_secs(0)), "just now");
    assert_eq!(ago(Duration::from_secs(59)), "59 s ago");
    assert_eq!(ago(Duration::from_secs(7300)), "2 h ago");
    assert_eq!(ago(Duration::from_secs(3 * 86_400 + 5)), "3 d ago");
}

#[test]
fn samples_filter_by_runtime_in_either_shape() {
    let list = json!([
        {"id": "hello-python", "runtime": "python3"},
        {"id": "hello-node", "runtime": "node"},
        {"id": "port-check", "manifest": {"runtime": "python3"}},
    ]);
    let ids = |v: &Value| -> Vec<String> {
        rows_of(v)
            .into_iter()
            .flatten()
            .filter_map(|s| s.get("id").and_then(Value::as_str).map(str::to_owned))
            .collect()
    };
    assert_eq!(
        ids(&of_runtime(list.clone(), "python3")),
        ["hello-python", "port-check"]
    );
    assert!(ids(&of_runtime(list.clone(), "ruby")).is_empty());
    let wrapped = json!({"samples": list});
    assert_eq!(ids(&of_runtime(wrapped.clone(), "node")), ["hello-node"]);
    assert_eq!(runtimes_of(&wrapped), ["node", "python3"]);
}
