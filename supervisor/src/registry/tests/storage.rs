//! What the registry keeps on disk: read-only materialised files, what a reopen finds and
//! rebuilds, who registered each version, older database schemas upgraded in place.

use std::os::unix::fs::PermissionsExt as _;

use serde_json::json;

use super::*;

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
