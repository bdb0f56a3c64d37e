//! Registry tests through the public API, on a temporary state directory.

use std::os::unix::fs::PermissionsExt as _;

use serde_json::{Value, json};

use super::*;

fn known(runtime: &str) -> bool {
    ["python3", "bash"].contains(&runtime)
}

fn bundle(name: &str, main: &str) -> Value {
    json!({
        "name": name,
        "manifest": {"runtime": "python3", "entry": "main.py", "description": "Says hello",
                     "tags": ["demo"],
                     "params": {"type": "object", "required": ["name"],
                                "properties": {"count": {"type": "integer"}}}},
        "files": {"main.py": main, "lib/util.py": "X = 1",
                  "run.sh": {"text": "#!/bin/sh\necho hi\n", "executable": true},
                  "data/blob.bin": {"base64": "AAEC"}}
    })
}

fn open(dir: &Path) -> Registry {
    Registry::open(dir, RegistryLimits::default()).unwrap()
}

fn register(registry: &Registry, body: &Value) -> Result<Registered, RegisterError> {
    registry.register(body, &known)
}

fn mode(path: &Path) -> u32 {
    fs_err::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn registry_is_shareable_between_tasks() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Registry>();
    assert_send_sync::<Arc<Version>>();
}

#[test]
fn register_then_resolve_by_latest_tag_and_version() {
    let dir = tempfile::tempdir().unwrap();
    let registry = open(dir.path());
    let registered = register(&registry, &bundle("hello", "v1")).unwrap();
    assert!(registered.created);
    assert_eq!(registered.name, "hello");
    let id = registered.version;

    let latest = registry.resolve("hello", &Selector::Latest).unwrap();
    assert_eq!(latest.id, id);
    assert_eq!(latest.manifest.entry, "main.py");
    assert_eq!(latest.manifest.handler, "handler", "defaults are filled in");
    assert_eq!(
        registry
            .resolve("hello", &Selector::Tag("latest".into()))
            .unwrap()
            .id,
        id
    );
    assert_eq!(
        registry
            .resolve("hello", &Selector::Version(id.clone()))
            .unwrap()
            .id,
        id
    );
    let short = id["sha256:".len()..][..12].to_owned();
    assert_eq!(
        registry
            .resolve("hello", &Selector::Version(short))
            .unwrap()
            .id,
        id
    );

    assert!(matches!(
        registry.resolve("nope", &Selector::Latest),
        Err(ResolveError::UnknownScript { name }) if name == "nope"
    ));
    assert!(matches!(
        registry.resolve("hello", &Selector::Tag("prod".into())),
        Err(ResolveError::UnknownTag { tag, .. }) if tag == "prod"
    ));
    assert!(matches!(
        registry.resolve("hello", &Selector::Version("sha256:0000000".into())),
        Err(ResolveError::UnknownVersion { .. })
    ));
}

#[test]
fn identical_content_is_not_registered_twice() {
    let dir = tempfile::tempdir().unwrap();
    let registry = open(dir.path());
    let first = register(&registry, &bundle("hello", "v1")).unwrap();
    // The same content with keys in another order and a default written out.
    let again: Value = serde_json::from_str(
        r##"{"files": {"run.sh": {"executable": true, "text": "#!/bin/sh\necho hi\n"},
                      "data/blob.bin": {"base64": "AAEC"}, "lib/util.py": "X = 1", "main.py": "v1"},
            "manifest": {"params": {"properties": {"count": {"type": "integer"}},
                                    "required": ["name"], "type": "object"},
                         "tags": ["demo"], "pool": {"max": 4}, "description": "Says hello",
                         "entry": "main.py", "runtime": "python3"},
            "name": "hello"}"##,
    )
    .unwrap();
    let second = register(&registry, &again).unwrap();
    assert!(!second.created);
    assert_eq!(second.version, first.version);
    assert_eq!(registry.versions("hello").unwrap().len(), 1);
}

#[test]
fn a_new_version_moves_latest_and_an_old_one_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let registry = open(dir.path());
    let v1 = register(&registry, &bundle("hello", "v1")).unwrap().version;
    let v2 = register(&registry, &bundle("hello", "v2")).unwrap().version;
    assert_ne!(v1, v2);
    assert_eq!(registry.resolve("hello", &Selector::Latest).unwrap().id, v2);

    let again = register(&registry, &bundle("hello", "v1")).unwrap();
    assert!(!again.created);
    assert_eq!(registry.resolve("hello", &Selector::Latest).unwrap().id, v2);

    let versions = registry.versions("hello").unwrap();
    let ids: Vec<&str> = versions.iter().map(|v| v.id.as_str()).collect();
    assert_eq!(ids, [v2.as_str(), v1.as_str()], "newest first");
    assert_eq!(versions[0].tags, ["latest"]);
    assert!(versions[1].tags.is_empty());
    assert_eq!(versions[0].files, 4);
}

#[test]
fn tags_move_and_persist_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (v1, v2) = {
        let registry = open(dir.path());
        let v1 = register(&registry, &bundle("hello", "v1")).unwrap().version;
        let v2 = register(&registry, &bundle("hello", "v2")).unwrap().version;
        registry.set_tag("hello", "prod", &v1).unwrap();
        let held = registry
            .resolve("hello", &Selector::Tag("prod".into()))
            .unwrap();
        registry.set_tag("hello", "prod", &v2).unwrap();
        // A version resolved before the move stays what it was.
        assert_eq!(held.id, v1);
        assert_eq!(
            registry
                .resolve("hello", &Selector::Tag("prod".into()))
                .unwrap()
                .id,
            v2
        );
        // Rolling `latest` back is allowed.
        registry.set_tag("hello", "latest", &v1).unwrap();
        (v1, v2)
    };
    let registry = open(dir.path());
    assert_eq!(
        registry
            .resolve("hello", &Selector::Tag("prod".into()))
            .unwrap()
            .id,
        v2
    );
    assert_eq!(registry.resolve("hello", &Selector::Latest).unwrap().id, v1);
    let detail = registry.script("hello").unwrap();
    assert_eq!(detail.tags.get("prod"), Some(&v2));
    assert_eq!(detail.latest, v1);
}

#[test]
fn tag_errors_name_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let registry = open(dir.path());
    let v1 = register(&registry, &bundle("hello", "v1")).unwrap().version;
    assert!(matches!(
        registry.set_tag("hello", "Prod", &v1),
        Err(TagError::InvalidTag { tag }) if tag == "Prod"
    ));
    assert!(matches!(
        registry.set_tag("nope", "prod", &v1),
        Err(TagError::Target(ResolveError::UnknownScript { .. }))
    ));
    assert!(matches!(
        registry.set_tag("hello", "prod", "sha256:ffffffffff"),
        Err(TagError::Target(ResolveError::UnknownVersion { .. }))
    ));
    assert!(!registry.script("hello").unwrap().tags.contains_key("prod"));
}

#[test]
fn a_disabled_script_does_not_resolve_and_the_flag_persists() {
    let dir = tempfile::tempdir().unwrap();
    {
        let registry = open(dir.path());
        register(&registry, &bundle("hello", "v1")).unwrap();
        registry.set_disabled("hello", true).unwrap();
        let err = registry.resolve("hello", &Selector::Latest).unwrap_err();
        assert!(matches!(&err, ResolveError::Disabled { name } if name == "hello"));
        assert_eq!(
            err.hint().as_deref(),
            Some("enable it with: runwarm enable hello")
        );
        assert!(matches!(
            registry.set_disabled("nope", true),
            Err(ResolveError::UnknownScript { .. })
        ));
    }
    let registry = open(dir.path());
    assert!(registry.script("hello").unwrap().disabled);
    assert!(matches!(
        registry.resolve("hello", &Selector::Latest),
        Err(ResolveError::Disabled { .. })
    ));
    registry.set_disabled("hello", false).unwrap();
    assert!(registry.resolve("hello", &Selector::Latest).is_ok());
}

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

#[test]
fn materialised_files_are_read_only_with_their_contents() {
    let dir = tempfile::tempdir().unwrap();
    let registry = open(dir.path());
    register(&registry, &bundle("hello", "v1")).unwrap();
    let version = registry.resolve("hello", &Selector::Latest).unwrap();
    let root = &version.root;
    assert_eq!(root, &dir.path().join("versions").join(version.hex()));
    assert_eq!(fs_err::read_to_string(root.join("main.py")).unwrap(), "v1");
    assert_eq!(fs_err::read(root.join("data/blob.bin")).unwrap(), [0, 1, 2]);
    assert_eq!(mode(&root.join("main.py")), 0o444);
    assert_eq!(mode(&root.join("run.sh")), 0o555);
    assert_eq!(mode(&root.join("lib")), 0o555);
    assert_eq!(mode(root), 0o555);
    let run = version.files.iter().find(|f| f.path == "run.sh").unwrap();
    assert!(run.executable);
    assert_eq!(run.size, 18);
}

#[test]
fn reopen_finds_everything_and_rebuilds_missing_trees() {
    let dir = tempfile::tempdir().unwrap();
    let (id, before) = {
        let registry = open(dir.path());
        let id = register(&registry, &bundle("hello", "v1")).unwrap().version;
        register(&registry, &bundle("other", "v1")).unwrap();
        (id, registry.list(&ScriptFilter::default()))
    };
    // Lose the tree (an operator cleaning up, a crash before the rename).
    let tree = dir.path().join("versions").join(&id["sha256:".len()..]);
    fs_err::set_permissions(&tree, std::fs::Permissions::from_mode(0o755)).unwrap();
    for sub in ["lib", "data"] {
        fs_err::set_permissions(tree.join(sub), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    fs_err::remove_dir_all(&tree).unwrap();

    let registry = open(dir.path());
    assert_eq!(registry.list(&ScriptFilter::default()), before);
    let version = registry.version("hello", &id).unwrap();
    assert_eq!(version.manifest.description, "Says hello");
    assert_eq!(
        fs_err::read_to_string(version.root.join("main.py")).unwrap(),
        "v1"
    );
    assert!(
        version.validate_params(&json!({})).is_err(),
        "schema recompiled"
    );
    assert_eq!(registry.script("hello").unwrap().versions, 1);
}

#[test]
fn list_filters_by_tag_label_runtime_and_text() {
    let dir = tempfile::tempdir().unwrap();
    let registry = open(dir.path());
    let v = register(&registry, &bundle("hello", "v1")).unwrap().version;
    register(
        &registry,
        &json!({"name": "deploy-hook", "manifest": {"runtime": "bash", "entry": "run.sh",
                "description": "Rolls out"}, "files": {"run.sh": "echo"}}),
    )
    .unwrap();
    registry.set_tag("hello", "prod", &v).unwrap();
    let names = |filter: ScriptFilter| -> Vec<String> {
        registry.list(&filter).into_iter().map(|s| s.name).collect()
    };
    assert_eq!(names(ScriptFilter::default()), ["deploy-hook", "hello"]);
    let by_tag = |tag: &str| ScriptFilter {
        tag: Some(tag.into()),
        ..Default::default()
    };
    assert_eq!(names(by_tag("prod")), ["hello"]);
    assert_eq!(
        names(by_tag("demo")),
        ["hello"],
        "manifest labels count as tags"
    );
    assert_eq!(names(by_tag("latest")), ["deploy-hook", "hello"]);
    assert!(names(by_tag("canary")).is_empty());
    let by_runtime = ScriptFilter {
        runtime: Some("bash".into()),
        ..Default::default()
    };
    assert_eq!(names(by_runtime), ["deploy-hook"]);
    let by_text = |q: &str| ScriptFilter {
        q: Some(q.into()),
        ..Default::default()
    };
    assert_eq!(names(by_text("ROLLS")), ["deploy-hook"]);
    assert_eq!(names(by_text("hel")), ["hello"]);

    let summary = &registry.list(&by_tag("prod"))[0];
    assert_eq!(summary.tags, ["latest", "prod"]);
    assert_eq!(summary.labels, ["demo"]);
    assert_eq!(summary.runtime, "python3");
    assert_eq!(summary.latest, v);
}

#[test]
fn who_registered_a_version_is_kept_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let ada = Registrant {
        uid: 1000,
        gid: 1001,
        pid: Some(4242),
    };
    {
        let registry = open(dir.path());
        let first = registry
            .register_as(&bundle("hello", "v1"), &known, Some(ada))
            .unwrap();
        // Identical content from someone else names the same version and keeps its registrant.
        let again = registry
            .register_as(
                &bundle("hello", "v1"),
                &known,
                Some(Registrant {
                    uid: 0,
                    gid: 0,
                    pid: None,
                }),
            )
            .unwrap();
        assert_eq!((again.version, again.created), (first.version, false));
        register(&registry, &bundle("hello", "v2")).unwrap();
    }
    let registry = open(dir.path());
    let versions = registry.versions("hello").unwrap();
    let by: Vec<Option<Registrant>> = versions.iter().map(|v| v.registered_by).collect();
    assert_eq!(by, [None, Some(ada)], "newest first");
    let v1 = registry.version("hello", &versions[1].id).unwrap();
    assert_eq!(v1.registered_by, Some(ada));
    let shown = serde_json::to_value(v1.as_ref()).unwrap();
    assert_eq!(
        shown["registered_by"],
        json!({"uid": 1000, "gid": 1001, "pid": 4242})
    );
}

#[test]
fn a_schema_1_database_is_upgraded_in_place_and_keeps_its_versions() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let registry = open(dir.path());
        register(&registry, &bundle("old", "v1")).unwrap().version
    };
    // Turn the database back into what a schema-1 build wrote: no registrant columns.
    {
        let conn = rusqlite::Connection::open(dir.path().join("registry.db")).unwrap();
        conn.execute_batch(
            "ALTER TABLE versions DROP COLUMN registered_uid;
             ALTER TABLE versions DROP COLUMN registered_gid;
             ALTER TABLE versions DROP COLUMN registered_pid;
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let registry = open(dir.path());
    let old = registry.version("old", &id).unwrap();
    assert_eq!(old.registered_by, None, "unknown for versions from before");
    let by = Registrant {
        uid: 7,
        gid: 8,
        pid: Some(9),
    };
    let new = registry
        .register_as(&bundle("old", "v2"), &known, Some(by))
        .unwrap();
    drop(registry);
    let registry = open(dir.path());
    assert_eq!(
        registry.version("old", &new.version).unwrap().registered_by,
        Some(by)
    );
    let conn = rusqlite::Connection::open(dir.path().join("registry.db")).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, 3);
}

#[test]
fn a_schema_2_database_gains_the_registrant_pid_and_keeps_uid_and_gid() {
    let dir = tempfile::tempdir().unwrap();
    let by = Registrant {
        uid: 7,
        gid: 8,
        pid: Some(9),
    };
    let id = {
        let registry = open(dir.path());
        registry
            .register_as(&bundle("old", "v1"), &known, Some(by))
            .unwrap()
            .version
    };
    // What a schema-2 build wrote: uid and gid, no pid column.
    {
        let conn = rusqlite::Connection::open(dir.path().join("registry.db")).unwrap();
        conn.execute_batch(
            "ALTER TABLE versions DROP COLUMN registered_pid; PRAGMA user_version = 2;",
        )
        .unwrap();
    }
    let registry = open(dir.path());
    let old = registry.version("old", &id).unwrap();
    assert_eq!(
        old.registered_by,
        Some(Registrant { pid: None, ..by }),
        "uid and gid kept, pid unknown"
    );
    let conn = rusqlite::Connection::open(dir.path().join("registry.db")).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, 3);
}
