use std::collections::BTreeSet;

use serde_json::json;

use super::*;
use crate::{ExecutorMessage, SupervisorMessage};

/// Every message type of protocol v1, per direction. `every_listed_type_is_a_real_message`
/// keeps these lists honest against `message.rs`.
const SUPERVISOR_TYPES: &[&str] = &["init", "request", "ping", "shutdown"];
const EXECUTOR_TYPES: &[&str] = &["ready", "init_error", "log", "response", "pong"];

fn all_vectors() -> Vec<(PathBuf, Vector)> {
    let paths = list(&crate::conformance::vectors_dir()).unwrap();
    assert!(!paths.is_empty(), "no vectors found");
    paths
        .into_iter()
        .map(|p| {
            let v = Vector::load(&p).unwrap_or_else(|e| panic!("{e}"));
            (p, v)
        })
        .collect()
}

fn shim(mode: Mode) -> Shim {
    Shim {
        name: "test".into(),
        command: vec![],
        fixture_root: "/fixture".into(),
        entry: "main.x".into(),
        mode,
        env: vec![],
    }
}

#[test]
fn every_message_type_appears_in_some_vector() {
    let mut sent = BTreeSet::new();
    let mut expected = BTreeSet::new();
    for (_, v) in all_vectors() {
        for (_, step) in &v.steps {
            match step {
                Step::Send(m) => sent.insert(m["type"].as_str().unwrap_or("").to_owned()),
                Step::Expect(m) => expected.insert(m["type"].as_str().unwrap_or("").to_owned()),
                _ => false,
            };
        }
    }
    for t in SUPERVISOR_TYPES {
        assert!(sent.contains(*t), "no vector sends a {t:?} message");
    }
    for t in EXECUTOR_TYPES {
        assert!(expected.contains(*t), "no vector expects a {t:?} message");
    }
}

#[test]
fn every_listed_type_is_a_real_message() {
    let ctx =
        json!({"execution_id":"e","deadline_ms":1,"attempt":1,"caller":{"uid":0,"gid":0,"pid":0}});
    let samples = [
        json!({"type":"init","protocol":1,"script":{"name":"n","version":"v","root":"/","entry":"e"}}),
        json!({"type":"request","id":"r","payload":null,"context":ctx}),
        json!({"type":"ping","id":"p"}),
        json!({"type":"shutdown","grace_ms":1}),
    ];
    for (t, s) in SUPERVISOR_TYPES.iter().zip(&samples) {
        assert_eq!(s["type"], *t);
        serde_json::from_value::<SupervisorMessage>(s.clone()).unwrap();
    }
    let samples = [
        json!({"type":"ready","protocol":1}),
        json!({"type":"init_error","error":{"kind":"k","message":"m"}}),
        json!({"type":"log","id":"r"}),
        json!({"type":"response","id":"r","success":true}),
        json!({"type":"pong","id":"p"}),
    ];
    for (t, s) in EXECUTOR_TYPES.iter().zip(&samples) {
        assert_eq!(s["type"], *t);
        serde_json::from_value::<ExecutorMessage>(s.clone()).unwrap();
    }
}

/// Sends of a known type must be valid messages once substituted; only deliberately unknown
/// types (testing that executors ignore them) may be free-form.
#[test]
fn every_known_send_parses_as_a_supervisor_message() {
    for (path, v) in all_vectors() {
        for mode in &v.modes {
            for (line, step) in &v.steps {
                let Step::Send(m) = step else { continue };
                let m = substitute(m, &shim(*mode));
                if SUPERVISOR_TYPES.contains(&m["type"].as_str().unwrap_or("")) {
                    serde_json::from_value::<SupervisorMessage>(m.clone()).unwrap_or_else(|e| {
                        panic!(
                            "{}:{line}: {m} is not a supervisor message: {e}",
                            path.display()
                        )
                    });
                }
            }
        }
    }
}

#[test]
fn every_expect_names_an_executor_type() {
    for (path, v) in all_vectors() {
        for (line, step) in &v.steps {
            if let Step::Expect(m) = step {
                let t = m["type"].as_str().unwrap_or("");
                assert!(
                    EXECUTOR_TYPES.contains(&t),
                    "{}:{line}: expect without a known type",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn vector_names_match_file_names_and_have_descriptions() {
    for (path, v) in all_vectors() {
        let stem = path.file_stem().unwrap().to_string_lossy();
        assert_eq!(v.name, stem, "{}", path.display());
        assert!(
            !v.description.is_empty(),
            "{} lacks a description",
            path.display()
        );
    }
}

#[test]
fn parses_every_step_kind() {
    let v = Vector::parse(
        r#"{"vector":"x","modes":["command"],"description":"d"}

{"send":{"type":"ping","id":"1"}}
{"expect":{"type":"pong","id":"1"}}
{"close_stdin":true}
{"expect_exit":"nonzero"}
{"expect_exit":0}
{"expect_user_stdout_contains":"t"}"#,
    )
    .unwrap();
    assert_eq!(v.modes, vec![Mode::Command]);
    let steps: Vec<_> = v.steps.iter().map(|(n, s)| (*n, s.clone())).collect();
    assert_eq!(steps[0], (3, Step::Send(json!({"type":"ping","id":"1"}))));
    assert_eq!(steps[2], (5, Step::CloseStdin));
    assert_eq!(steps[3].1, Step::ExpectExit(ExitExpectation::Nonzero));
    assert_eq!(steps[4].1, Step::ExpectExit(ExitExpectation::Code(0)));
    assert_eq!(steps[5].1, Step::ExpectUserStdoutContains("t".into()));
}

#[test]
fn rejects_unknown_steps_and_bad_headers() {
    let header = r#"{"vector":"x","modes":["handler"]}"#;
    let err = Vector::parse(&format!("{header}\n{{\"expekt\":{{}}}}")).unwrap_err();
    assert!(err.contains("line 2"), "{err}");
    assert!(Vector::parse(&format!("{header}\n{{\"send\":{{}},\"expect\":{{}}}}")).is_err());
    assert!(Vector::parse(&format!("{header}\n{{\"expect_exit\":\"soon\"}}")).is_err());
    assert!(Vector::parse(r#"{"vector":"x","modes":[]}"#).is_err());
    assert!(Vector::parse(r#"{"vector":"x","modes":["lambda"]}"#).is_err());
    assert!(Vector::parse("").is_err());
}

#[test]
fn substitution_reaches_nested_strings_only() {
    let msg =
        json!({"script":{"root":"$ROOT","entry":"$ENTRY","mode":"$MODE","n":1},"l":["$ROOT/x"]});
    let out = substitute(&msg, &shim(Mode::Command));
    assert_eq!(
        out,
        json!({"script":{"root":"/fixture","entry":"main.x","mode":"command","n":1},"l":["/fixture/x"]})
    );
}
