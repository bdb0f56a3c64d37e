use std::fs;
use std::os::unix::fs::PermissionsExt;

use serde_json::json;

use super::*;

fn write(dir: &Path, rel: &str, bytes: &[u8]) {
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(path, bytes).unwrap();
}

#[test]
fn reads_manifest_text_binary_and_executable_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("hello");
    write(
        &dir,
        "runwarm.toml",
        b"runtime = \"python3\"\nentry = \"main.py\"\ntags = [\"demo\"]\n[limits]\ntimeout_ms = 500\n",
    );
    write(&dir, "main.py", b"def handler(e, c): return e\n");
    write(&dir, "data/logo.png", &[0x89, b'P', b'N', b'G', 0xff, 0x00]);
    write(&dir, "run.sh", b"#!/bin/sh\necho hi\n");
    fs::set_permissions(dir.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();

    let body = bundle_from_dir(&dir).unwrap();
    assert_eq!(
        body,
        json!({
            "name": "hello",
            "manifest": {"runtime": "python3", "entry": "main.py", "tags": ["demo"],
                         "limits": {"timeout_ms": 500}},
            "files": {
                "main.py": {"text": "def handler(e, c): return e\n", "executable": false},
                "data/logo.png": {"base64": "iVBOR/8A", "executable": false},
                "run.sh": {"text": "#!/bin/sh\necho hi\n", "executable": true},
            }
        })
    );
}

#[test]
fn a_name_key_overrides_the_folder_name() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "runwarm.toml",
        b"name = \"custom\"\nruntime = \"bash\"\nentry = \"a\"\n",
    );
    write(tmp.path(), "a", b"x");
    let body = bundle_from_dir(tmp.path()).unwrap();
    assert_eq!(body["name"], "custom");
    assert!(body["manifest"].get("name").is_none());
}

#[test]
fn skips_hidden_entries_and_nested_manifests_are_files() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "runwarm.toml",
        b"runtime = \"bash\"\nentry = \"a\"\n",
    );
    write(tmp.path(), "a", b"x");
    write(tmp.path(), ".env", b"SECRET=1");
    write(tmp.path(), ".git/config", b"[core]");
    write(tmp.path(), "sub/.hidden", b"h");
    write(tmp.path(), "sub/runwarm.toml", b"kept");
    let body = bundle_from_dir(tmp.path()).unwrap();
    let files: Vec<&String> = body["files"].as_object().unwrap().keys().collect();
    assert_eq!(files, ["a", "sub/runwarm.toml"]);
}

#[test]
fn refuses_symlinks_naming_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "runwarm.toml",
        b"runtime = \"bash\"\nentry = \"a\"\n",
    );
    write(tmp.path(), "a", b"x");
    std::os::unix::fs::symlink("/etc/passwd", tmp.path().join("sub-link")).unwrap();
    let err = bundle_from_dir(tmp.path()).unwrap_err();
    assert!(matches!(&err, BundleError::Symlink { path } if path.ends_with("sub-link")));
    assert!(err.to_string().contains("sub-link"), "{err}");
    assert!(err.hint().is_some());
}

#[test]
fn a_folder_without_manifest_or_with_bad_toml_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let err = bundle_from_dir(tmp.path()).unwrap_err();
    assert!(matches!(err, BundleError::NoManifest { .. }));
    assert!(err.hint().unwrap_or_default().contains("runtime"));
    write(tmp.path(), "runwarm.toml", b"runtime = ");
    assert!(matches!(
        bundle_from_dir(tmp.path()).unwrap_err(),
        BundleError::Manifest { .. }
    ));
    write(tmp.path(), "runwarm.toml", b"name = 3\n");
    assert!(matches!(
        bundle_from_dir(tmp.path()).unwrap_err(),
        BundleError::NameNotString { .. }
    ));
}

#[test]
fn single_file_bundles_carry_the_command_line_options() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "check.sh", b"#!/bin/sh\nexit 0\n");
    fs::set_permissions(
        tmp.path().join("check.sh"),
        fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    let opts = FileBundle {
        name: None,
        runtime: "bash".into(),
        mode: Some("command".into()),
        ..FileBundle::default()
    };
    let body = bundle_from_file(&tmp.path().join("check.sh"), &opts).unwrap();
    assert_eq!(
        body,
        json!({"name": "check",
               "manifest": {"runtime": "bash", "entry": "check.sh", "mode": "command"},
               "files": {"check.sh": {"text": "#!/bin/sh\nexit 0\n", "executable": true}}})
    );

    let opts = FileBundle {
        name: Some("greet".into()),
        runtime: "python3".into(),
        handler: Some("main".into()),
        entry: Some("app.py".into()),
        mode: None,
    };
    write(tmp.path(), "x.py", b"def main(e, c): pass\n");
    let body = bundle_from_file(&tmp.path().join("x.py"), &opts).unwrap();
    assert_eq!(body["name"], "greet");
    assert_eq!(body["manifest"]["entry"], "app.py");
    assert_eq!(body["manifest"]["handler"], "main");
    assert!(body["files"].get("app.py").is_some());
}

#[test]
fn single_file_bundles_refuse_symlinks_and_missing_files() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = FileBundle {
        runtime: "bash".into(),
        ..FileBundle::default()
    };
    let missing = bundle_from_file(&tmp.path().join("nope.sh"), &opts).unwrap_err();
    assert!(matches!(missing, BundleError::Read { .. }));
    std::os::unix::fs::symlink("/etc/hostname", tmp.path().join("l.sh")).unwrap();
    let link = bundle_from_file(&tmp.path().join("l.sh"), &opts).unwrap_err();
    assert!(matches!(link, BundleError::Symlink { .. }));
}
