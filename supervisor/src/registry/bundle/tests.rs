use serde_json::json;

use super::files::path_problem;
use super::*;

fn limits() -> RegistryLimits {
    RegistryLimits::default()
}

fn body_with_files(files: Value) -> Value {
    json!({"name": "hello", "manifest": {"runtime": "python3", "entry": "main.py"}, "files": files})
}

#[test]
fn names_follow_the_pattern() {
    for good in ["a", "0", "hello", "a.b_c-d", &"a".repeat(64)] {
        assert!(is_valid_name(good), "{good}");
    }
    for bad in [
        "",
        "Hello",
        "-a",
        ".a",
        "_a",
        "a b",
        "a/b",
        "é",
        &"a".repeat(65),
    ] {
        assert!(!is_valid_name(bad), "{bad}");
    }
}

#[test]
fn paths_that_could_escape_the_root_are_refused() {
    for (path, reason_part) in [
        ("../x", "'..'"),
        ("/etc/passwd", "absolute"),
        ("a/../../b", "'..'"),
        ("a\\b", "backslash"),
        ("./a", "'.'"),
        ("a//b", "empty segments"),
        ("a/", "empty segments"),
        ("a\0b", "control"),
        ("a\nb", "control"),
        ("", "empty"),
    ] {
        let problem = path_problem(path).unwrap_or_else(|| panic!("{path:?} was accepted"));
        assert!(problem.contains(reason_part), "{path:?}: {problem}");
    }
    assert_eq!(
        path_problem(&"a".repeat(256)),
        Some("the path is longer than 255 bytes")
    );
    assert_eq!(path_problem(&"a".repeat(255)), None);
    assert_eq!(path_problem("lib/util/x.py"), None);
    assert_eq!(path_problem("..a/b..c/.hidden"), None);
}

#[test]
fn file_entries_decode_text_and_base64() {
    let body = body_with_files(json!({
        "main.py": "print(1)",
        "run.sh": {"text": "#!/bin/sh", "executable": true},
        "data/bin": {"base64": "AAEC/w=="},
    }));
    let bundle = parse_bundle(&body, &limits()).unwrap();
    let files: Vec<_> = bundle
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.contents.as_slice(), f.executable))
        .collect();
    assert_eq!(
        files,
        vec![
            ("data/bin", &[0u8, 1, 2, 255][..], false),
            ("main.py", b"print(1)".as_slice(), false),
            ("run.sh", b"#!/bin/sh".as_slice(), true),
        ]
    );
}

#[test]
fn entries_that_are_not_text_or_base64_are_refused() {
    for entry in [
        json!({"symlink": "/etc/passwd"}),
        json!({"text": "a", "base64": "YQ=="}),
        json!({}),
        json!({"base64": "not base64!"}),
        json!({"text": "a", "executable": "yes"}),
        json!(42),
        json!(null),
    ] {
        let body = body_with_files(json!({"main.py": "x", "other": entry}));
        match parse_bundle(&body, &limits()) {
            Err(RegisterError::InvalidFile { path, .. }) => assert_eq!(path, "other"),
            other => panic!("{entry}: {other:?}"),
        }
    }
}

#[test]
fn a_path_cannot_be_both_file_and_directory() {
    let body = body_with_files(json!({"main.py": "x", "lib": "x", "lib/a.py": "y"}));
    match parse_bundle(&body, &limits()) {
        Err(RegisterError::InvalidPath { path, reason }) => {
            assert_eq!(path, "lib/a.py");
            assert!(reason.contains("\"lib\" is a file"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn manifest_values_an_executor_cannot_honour_are_refused() {
    for manifest in [
        json!({"runtime": "python3", "entry": "main.py", "env": {"A=B": "x"}}),
        json!({"runtime": "python3", "entry": "main.py", "pool": {"max": 0}}),
        json!({"runtime": "python3", "entry": "main.py", "pool": {"min_warm": 5, "max": 2}}),
        json!({"runtime": "python3", "entry": "main.py", "limits": {"cpu": -1.0}}),
        json!({"runtime": "python3", "entry": "main.py", "limits": {"memory_mb": 0}}),
        json!({"runtime": "python3", "entry": "main.py", "memroy_mb": 5}),
        json!({"entry": "main.py"}),
    ] {
        let body = json!({"name": "a", "manifest": manifest, "files": {"main.py": "x"}});
        assert!(
            matches!(
                parse_bundle(&body, &limits()),
                Err(RegisterError::InvalidManifest { .. })
            ),
            "{manifest}"
        );
    }
}
