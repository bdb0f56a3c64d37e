//! Registry tests through the public API, on a temporary state directory.

use std::os::unix::fs::PermissionsExt as _;

use serde_json::{Value, json};

use super::*;

mod storage;
mod validation;

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
