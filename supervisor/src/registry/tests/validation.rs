//! Bundles and payloads the registry refuses, each with its own error.

use serde_json::json;

use super::*;

#[test]
fn each_invalid_bundle_gets_its_own_error() {
    let dir = tempfile::tempdir().unwrap();
    let limits = RegistryLimits {
        max_files: 3,
        max_file_bytes: 10,
        max_bundle_bytes: 25,
    };
    let registry = Registry::open(dir.path(), limits).unwrap();
    let manifest = json!({"runtime": "python3", "entry": "main.py"});
    let with = |name: &str, manifest: &Value, files: Value| {
        registry.register(
            &json!({"name": name, "manifest": manifest, "files": files}),
            &known,
        )
    };
    let ok_files = json!({"main.py": "x"});

    assert!(matches!(
        registry.register(&json!([1]), &known),
        Err(RegisterError::InvalidBody { .. })
    ));
    assert!(matches!(
        registry.register(
            &json!({"name": "a", "manifest": manifest, "file": {}}),
            &known
        ),
        Err(RegisterError::InvalidBody { .. })
    ));
    assert!(matches!(
        with("a", &manifest, json!({})),
        Err(RegisterError::InvalidBody { .. })
    ));
    assert!(matches!(
        with("Bad Name", &manifest, ok_files.clone()),
        Err(RegisterError::InvalidName { name }) if name == "Bad Name"
    ));
    for path in ["../x", "/etc/passwd", "a/../../b", "a\\b"] {
        match with("a", &manifest, json!({"main.py": "x", path: "evil"})) {
            Err(RegisterError::InvalidPath { path: refused, .. }) => assert_eq!(refused, path),
            other => panic!("{path:?} gave {other:?}"),
        }
    }
    assert!(matches!(
        with(
            "a",
            &manifest,
            json!({"main.py": "x", "b": "", "c": "", "d": ""})
        ),
        Err(RegisterError::TooManyFiles { count: 4, max: 3 })
    ));
    assert!(matches!(
        with("a", &manifest, json!({"main.py": "x", "big": "0123456789A"})),
        Err(RegisterError::FileTooLarge { path, size: 11, max: 10 }) if path == "big"
    ));
    assert!(matches!(
        with(
            "a",
            &manifest,
            json!({"main.py": "0123456789", "b": "0123456789", "c": "0123456"})
        ),
        Err(RegisterError::BundleTooLarge { size: 27, max: 25 })
    ));
    assert!(matches!(
        with("a", &manifest, json!({"other.py": "x"})),
        Err(RegisterError::EntryMissing { entry }) if entry == "main.py"
    ));
    assert!(matches!(
        with("a", &json!({"runtime": "python3", "entry": "main.py", "memroy_mb": 1}), ok_files.clone()),
        Err(RegisterError::InvalidManifest { detail }) if detail.contains("memroy_mb")
    ));
    assert!(matches!(
        with("a", &json!({"runtime": "cobol", "entry": "main.py"}), ok_files.clone()),
        Err(RegisterError::UnknownRuntime { runtime }) if runtime == "cobol"
    ));
    assert!(matches!(
        with(
            "a",
            &json!({"runtime": "python3", "entry": "main.py", "params": {"type": 7}}),
            ok_files.clone()
        ),
        Err(RegisterError::InvalidSchema { .. })
    ));
    assert!(matches!(
        with("a", &manifest, json!({"main.py": "x", "link": {"symlink": "/etc"}})),
        Err(RegisterError::InvalidFile { path, .. }) if path == "link"
    ));
    // Nothing of the refused bundles reached the registry or the disk.
    assert!(registry.list(&ScriptFilter::default()).is_empty());
    assert_eq!(
        fs_err::read_dir(dir.path().join("versions"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn params_violations_point_into_the_payload() {
    let dir = tempfile::tempdir().unwrap();
    let registry = open(dir.path());
    register(&registry, &bundle("hello", "v1")).unwrap();
    let version = registry.resolve("hello", &Selector::Latest).unwrap();
    assert_eq!(
        version.validate_params(&json!({"name": "x", "count": 2})),
        Ok(())
    );
    let violations = version
        .validate_params(&json!({"count": "two"}))
        .unwrap_err();
    let mut pointers: Vec<&str> = violations.iter().map(|v| v.pointer.as_str()).collect();
    pointers.sort_unstable();
    assert_eq!(pointers, ["", "/count"]);
}
