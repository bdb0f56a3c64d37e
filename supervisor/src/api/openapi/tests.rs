#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use serde_json::{Value, json};

use super::*;

fn doc() -> Value {
    document()
}

/// Whether a missing tool must fail the test (CI) rather than skip it, as in the e2e
/// harness's `require`.
fn strict() -> bool {
    std::env::var("RUNWARM_TEST_STRICT").is_ok_and(|v| v == "1")
        || std::env::var("CI").is_ok_and(|v| v == "true")
}

#[test]
fn the_document_passes_openapi_spec_validator() {
    let tool = "openapi-spec-validator";
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            !strict(),
            "{tool} is not on PATH (.ci/toolchains installs it); CI is set, so this is a failure, not a skip"
        );
        eprintln!("*** SKIPPED: {tool} is not on PATH (.ci/toolchains installs it) ***");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&doc()).unwrap()).unwrap();
    let out = Command::new(tool).arg(&file).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{tool} refused the document:\n{text}");
    assert!(text.contains("OK"), "{tool} said:\n{text}");
}

#[test]
fn every_parameter_has_a_schema_and_every_answer_a_description() {
    let doc = doc();
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            for p in op["parameters"].as_array().into_iter().flatten() {
                assert!(p.get("schema").is_some(), "{method} {path}: {p}");
            }
            let answers = op["responses"].as_object().unwrap();
            assert!(!answers.is_empty(), "{method} {path} has no answers");
            for (status, r) in answers {
                assert!(
                    r["description"].as_str().is_some_and(|d| !d.is_empty()),
                    "{method} {path} {status}"
                );
                // Every route but GET ones passes the access policy, which may refuse.
                if method != "get" {
                    assert!(answers.contains_key("403"), "{method} {path} lacks 403");
                }
            }
        }
    }
    assert!(operations >= 24, "only {operations} operations");
}

#[test]
fn content_types_are_what_the_routes_serve() {
    let doc = doc();
    let content = |path: &str, status: &str| -> Vec<String> {
        doc["paths"][path]["get"]["responses"][status]["content"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    assert_eq!(content("/metrics", "200"), ["application/openmetrics-text"]);
    assert_eq!(
        content("/v1/executions/{id}/events", "200"),
        ["text/event-stream"]
    );
    assert_eq!(content("/v1/executions/{id}", "404"), [PROBLEM_JSON]);
    let invoke = &doc["paths"]["/v1/scripts/{name}/invoke"]["post"];
    let headers: Vec<&str> = invoke["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["in"] == "header")
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(headers, ["Prefer", "Runwarm-Callback", "Idempotency-Key"]);
    assert!(invoke["responses"]["202"]["headers"]["Location"].is_object());
    assert!(invoke["responses"]["200"]["headers"]["Runwarm-Outcome"].is_object());
    assert!(invoke["responses"]["429"]["headers"]["Retry-After"].is_object());
}

/// The JSON Schema of component `name`, with the document's components alongside so its
/// `$ref`s resolve.
fn component_validator(doc: &Value, name: &str) -> jsonschema::Validator {
    let schema = json!({
        "$ref": format!("#/components/schemas/{name}"),
        "components": doc["components"].clone(),
    });
    jsonschema::validator_for(&schema).unwrap()
}

#[test]
fn every_sample_registration_matches_the_documented_body() {
    // The registration body is parsed by hand (registry::bundle, for its precise errors);
    // the real bodies of the samples keep its documented type honest.
    let doc = doc();
    let validator = component_validator(&doc, "RegisterRequest");
    let samples = crate::registry::samples::Samples::embedded().unwrap();
    assert!(!samples.all().is_empty());
    for s in samples.all() {
        let errors: Vec<String> = validator
            .iter_errors(&s.body)
            .map(|e| format!("{}: {e}", e.instance_path))
            .collect();
        assert!(errors.is_empty(), "sample {}: {errors:?}", s.id);
    }
}

/// Every `pattern` in `value`, with where it is.
fn patterns(value: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("pattern", Value::String(p)) => out.push((at.to_owned(), p.clone())),
                    _ => patterns(v, &format!("{at}/{k}"), out),
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                patterns(v, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_name_pattern_is_the_one_rule() {
    let mut found = Vec::new();
    patterns(&doc(), "", &mut found);
    let names: Vec<&(String, String)> = found
        .iter()
        .filter(|(_, p)| p.starts_with("^[a-z0-9]"))
        .collect();
    // RegisterRequest.name, CloneBody.name, the tag and the script-name path parameters.
    assert!(names.len() >= 4, "{found:?}");
    for (at, p) in names {
        assert_eq!(p, NAME_PATTERN, "{at}");
    }
}

#[test]
fn the_idempotency_key_is_documented_as_the_store_takes_it() {
    let doc = doc();
    let key = doc["paths"]["/v1/scripts/{name}/invoke"]["post"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Idempotency-Key")
        .unwrap()
        .clone();
    assert_eq!(
        key["schema"]["maxLength"],
        json!(crate::invocation::idempotency::MAX_KEY_LEN)
    );
    let v = jsonschema::validator_for(&key["schema"]).unwrap();
    for good in ["k", "a b", "~!"] {
        assert!(v.is_valid(&json!(good)), "{good:?}");
    }
    // HTTP strips outer blanks, and the handler refuses what `to_str` refuses.
    for bad in ["", " k", "k ", "\tk", "é"] {
        assert!(!v.is_valid(&json!(bad)), "{bad:?}");
    }
}

#[test]
fn every_event_matches_the_documented_stream() {
    let doc = doc();
    let stream = &doc["paths"]["/v1/executions/{id}/events"]["get"]["responses"]["200"]["content"]
        ["text/event-stream"]["schema"];
    assert_eq!(stream["$ref"], "#/components/schemas/ServerSentEvent");
    let branches = doc["components"]["schemas"]["ServerSentEvent"]["oneOf"]
        .as_array()
        .unwrap()
        .clone();
    let mut rec = crate::execution::ExecutionRecord::queued(
        "01".into(),
        "s".into(),
        "sha256:0".into(),
        runwarm_protocol::RawJson::from_value(&json!({"n": 1})),
        runwarm_protocol::Caller::default(),
        "2025-01-01T00:00:00Z".into(),
    );
    rec.state = crate::execution::State::Completed;
    rec.stdout = "a\nb".into();
    rec.stderr = "e\n".into();
    rec.logs.push(crate::execution::LogRecord {
        level: "info".into(),
        message: "m".into(),
        fields: serde_json::Map::new(),
    });
    let events = crate::invocation::events::synthesize(&rec);
    let mut names: Vec<&str> = events.iter().map(|e| e.name).collect();
    names.dedup();
    assert_eq!(names, ["state", "stdout", "stderr", "log", "state", "end"]);
    for ev in &events {
        let matching: Vec<&Value> = branches
            .iter()
            .filter(|b| b["properties"]["event"]["const"] == ev.name)
            .collect();
        assert_eq!(matching.len(), 1, "{}", ev.name);
        let content = &matching[0]["properties"]["data"]["contentSchema"]["$ref"];
        let name = content.as_str().unwrap().rsplit('/').next().unwrap();
        let data: Value = serde_json::from_str(&ev.data).unwrap();
        let v = component_validator(&doc, name);
        let errors: Vec<String> = v.iter_errors(&data).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{} {}: {errors:?}", ev.name, ev.data);
    }
}

#[test]
fn a_prewarm_body_is_documented_as_the_handler_takes_it() {
    let doc = doc();
    let v = component_validator(&doc, "PrewarmBody");
    let item = |extra: Value| {
        let mut i = json!({"name": "a"});
        i.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        json!({"scripts": [i]})
    };
    // The handler refuses a version and a tag together after parsing; the schema says so.
    for (body, valid) in [
        (item(json!({})), true),
        (item(json!({"version": "abc1234", "tag": null})), true),
        (item(json!({"version": "abc1234", "tag": "prod"})), false),
    ] {
        let errors: Vec<String> = v.iter_errors(&body).map(|e| e.to_string()).collect();
        assert_eq!(errors.is_empty(), valid, "{body}: {errors:?}");
    }
    // JSON Schema's `integer` includes 2.0 (this crate's validator disagrees, schemathesis's
    // does not), so the handler takes it; 1.5 is no count.
    let parse = |count: Value| {
        super::super::body::from_object::<super::super::system::PrewarmBody>(
            item(json!({ "count": count })),
            "",
        )
    };
    assert!(parse(json!(2.0)).is_ok());
    assert!(parse(json!(3)).is_ok());
    assert!(parse(json!(1.5)).is_err());
    assert!(parse(json!(-1)).is_err());
    assert!(parse(json!(5e9)).is_err());
}

#[test]
fn the_name_pattern_is_the_registry_rule() {
    let re = json!({"type": "string", "pattern": NAME_PATTERN});
    let v = jsonschema::validator_for(&re).unwrap();
    let long = "a".repeat(64);
    let too_long = "a".repeat(65);
    for name in [
        "a", "0", "hello", "a.b_c-d", &long, &too_long, "", "A", "-a", ".a", "a b", "a/b", "é",
        "a\n",
    ] {
        assert_eq!(
            v.is_valid(&json!(name)),
            crate::registry::is_valid_name(name),
            "{name:?}"
        );
    }
}
