use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;

use serde_json::json;

use super::*;
use crate::registry::manifest::SecretRef;

fn by() -> Option<SetBy> {
    Some(SetBy {
        uid: 1000,
        gid: 100,
    })
}

#[test]
fn set_persists_with_mode_0600_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let store = SecretStore::open(dir.path(), None).unwrap();
    assert!(!store.set("DB_PASSWORD", "hunter2-long", by()).unwrap());
    assert!(store.set("DB_PASSWORD", "hunter3-long", by()).unwrap());
    let mode = fs::metadata(dir.path().join(FILE))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let again = SecretStore::open(dir.path(), None).unwrap();
    assert_eq!(again.get("DB_PASSWORD").as_deref(), Some("hunter3-long"));
    assert!(again.contains("DB_PASSWORD"));
    // No temporary file is left beside the store.
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, [FILE]);
}

#[test]
fn a_store_readable_by_others_is_tightened_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE);
    fs::write(&path, r#"{"secrets":{}}"#).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    SecretStore::open(dir.path(), None).unwrap();
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn list_shows_names_and_users_never_values() {
    let dir = tempfile::tempdir().unwrap();
    let creds = tempfile::tempdir().unwrap();
    fs::write(creds.path().join("API_TOKEN"), "from-systemd").unwrap();
    let store = SecretStore::open(dir.path(), Some(creds.path().to_owned())).unwrap();
    store.set("DB_PASSWORD", "s3cr3t-value", by()).unwrap();
    let used: BTreeMap<String, BTreeSet<String>> =
        [("DB_PASSWORD".to_owned(), ["checkdb".to_owned()].into())].into();
    let list = store.list(&used);
    let text = serde_json::to_string(&list).unwrap();
    assert!(!text.contains("s3cr3t-value") && !text.contains("from-systemd"));
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].name, "API_TOKEN");
    assert_eq!(list[0].source, Source::Systemd);
    assert_eq!(list[1].used_by, ["checkdb"]);
    assert_eq!(list[1].set_by, by());
    assert_eq!(store.get("API_TOKEN").as_deref(), Some("from-systemd"));
    assert!(matches!(
        store.set("API_TOKEN", "other", by()),
        Err(SecretError::ReadOnly(_))
    ));
    assert!(matches!(
        store.remove("API_TOKEN"),
        Err(SecretError::ReadOnly(_))
    ));
    assert!(format!("{store:?}").find("s3cr3t").is_none());
}

#[test]
fn names_and_values_are_checked_without_quoting_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let store = SecretStore::open(dir.path(), None).unwrap();
    for bad in ["", "1ABC", "A-B", "PATH", "RUNWARM_X", "A B"] {
        assert!(store.set(bad, "value", by()).is_err(), "{bad:?}");
    }
    let big = "x".repeat(MAX_VALUE_CHARS + 1);
    let e = store.set("BIG", &big, by()).unwrap_err().to_string();
    assert!(!e.contains("xxxx"), "{e}");
    assert!(store.set("NUL", "a\0b", by()).is_err());
    assert!(store.set("EMPTY", "", by()).is_err());
    assert!(matches!(
        store.remove("NOPE"),
        Err(SecretError::NotFound(_))
    ));
    store.set("OK_1", "v", by()).unwrap();
    store.remove("OK_1").unwrap();
    assert!(!store.contains("OK_1"));
}

#[test]
fn manifests_name_valid_distinct_secrets() {
    let mut m: crate::registry::manifest::Manifest =
        serde_json::from_value(json!({"runtime": "python3", "entry": "main.py"})).unwrap();
    assert!(check_manifest(&m).is_ok());
    let env = |n: &str| SecretRef::Env(n.to_owned());
    m.secrets = vec![env("A"), SecretRef::File("A".into())];
    assert!(
        check_manifest(&m).is_err(),
        "the same name twice, however delivered"
    );
    m.secrets = vec![env("HOME")];
    assert!(check_manifest(&m).is_err());
    m.secrets = (0..=MAX_PER_MANIFEST)
        .map(|i| env(&format!("S{i}")))
        .collect();
    assert!(check_manifest(&m).is_err());
    m.secrets = vec![env("X")];
    m.env.insert("X".into(), "1".into());
    assert!(check_manifest(&m).is_err());
}

#[test]
fn a_secret_is_a_name_or_a_table_and_env_is_written_as_the_bare_name() {
    let m: crate::registry::manifest::Manifest = serde_json::from_value(json!({
        "runtime": "bash", "entry": "main.sh",
        "secrets": ["A", {"name": "B", "as": "file"}, {"name": "C", "as": "env"}, {"name": "D"}]
    }))
    .unwrap();
    assert_eq!(
        m.secrets,
        vec![
            SecretRef::Env("A".into()),
            SecretRef::File("B".into()),
            SecretRef::Env("C".into()),
            SecretRef::Env("D".into())
        ]
    );
    assert_eq!(
        serde_json::to_value(&m.secrets).unwrap(),
        json!(["A", {"name": "B", "as": "file"}, "C", "D"]),
        "one form per meaning, so the version id does not depend on how it was written"
    );
    for bad in [
        json!([{"name": "B", "as": "disk"}]),
        json!([{"name": "B", "mode": "file"}]),
        json!([7]),
    ] {
        let e = serde_json::from_value::<crate::registry::manifest::Manifest>(
            json!({"runtime": "bash", "entry": "main.sh", "secrets": bad}),
        )
        .unwrap_err();
        assert!(e.to_string().contains("secret"), "{e}");
    }
}

#[test]
fn redaction_replaces_values_and_keeps_short_ones() {
    let r = Redactor::new(["hunter2-long".to_owned(), "abc".to_owned()]);
    assert_eq!(r.text("pw=hunter2-long; abc"), "pw=***; abc");
    let v = r.json(json!({"hunter2-long": ["x hunter2-long", 1, {"k": "hunter2-long"}]}));
    assert_eq!(v, json!({"***": ["x ***", 1, {"k": "***"}]}));
    let n = Redactor::new(["123456".to_owned()]);
    assert_eq!(n.json(json!(91234567)), json!("***"));
    assert_eq!(n.json(json!(42)), json!(42));
}

#[test]
fn a_result_is_redacted_as_json_even_where_its_text_escapes_the_value() {
    let r = Redactor::new(["hunter2-long".to_owned()]);
    let mut rec = crate::execution::ExecutionRecord::queued(
        "id".into(),
        "s".into(),
        "v".into(),
        runwarm_protocol::RawJson::from_value(&json!({})),
        runwarm_protocol::Caller {
            uid: 0,
            gid: 0,
            pid: 1,
        },
        "2026-01-01T00:00:00Z".into(),
    );
    // `\u0068` is `h`: the text never holds the value, the string does.
    rec.result = Some(serde_json::from_str(r#"{"pw":"\u0068unter2-long","n":1}"#).unwrap());
    let rec = r.record(rec);
    let result = rec.result.unwrap().to_value().unwrap();
    assert_eq!(result, json!({"pw": "***", "n": 1}));
}

#[test]
fn a_value_split_across_chunks_is_still_redacted() {
    let r = Redactor::new(["SECRETVALUE".to_owned()]);
    let mut s = StreamRedactor::new(r);
    let mut out = Vec::new();
    for chunk in [
        &b"line one SEC"[..],
        b"RETVA",
        b"LUE end\nSECRETVALUE",
        b"\n",
    ] {
        out.extend(s.push(chunk));
    }
    out.extend(s.finish());
    assert_eq!(String::from_utf8(out).unwrap(), "line one *** end\n***\n");
}

#[test]
fn a_replaced_value_is_still_redacted_for_old_executors() {
    let dir = tempfile::tempdir().unwrap();
    let store = SecretStore::open(dir.path(), None).unwrap();
    store.set("TOKEN", "first-value", by()).unwrap();
    store.set("TOKEN", "second-value", by()).unwrap();
    let r = store.redactor(&["TOKEN".to_owned()]);
    assert_eq!(r.text("first-value second-value"), "*** ***");
}
