//! Version ids: `sha256:` over a canonical encoding of a bundle's manifest and files.
//!
//! The encoding is a versioned prefix line, the manifest as canonical JSON (serialised from the
//! typed [`Manifest`], so defaults are filled in, then written with sorted keys), and one JSON
//! line per file in path order: `[path, executable, sha256-of-contents]`. JSON string escaping
//! keeps a path from forging a line break. Changing this encoding changes every id, so the
//! prefix names its version.

use std::fmt::Write as _;

use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::registry::manifest::Manifest;

const ENCODING_PREFIX: &str = "runwarm-version-v1\n";

/// One file as the digest sees it.
pub(super) struct FileDigest<'a> {
    pub path: &'a str,
    pub executable: bool,
    /// Hex sha256 of the contents.
    pub sha256: &'a str,
}

/// Hex sha256 of `bytes`.
pub(super) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The version id (`sha256:<64 hex>`) of a manifest plus files (in any order).
pub(super) fn version_id(
    manifest: &Manifest,
    files: &[FileDigest<'_>],
) -> Result<String, serde_json::Error> {
    Ok(format!(
        "sha256:{}",
        sha256_hex(canonical_encoding(manifest, files)?.as_bytes())
    ))
}

fn canonical_encoding(
    manifest: &Manifest,
    files: &[FileDigest<'_>],
) -> Result<String, serde_json::Error> {
    let mut out = String::from(ENCODING_PREFIX);
    write_canonical_json(&serde_json::to_value(manifest)?, &mut out)?;
    out.push('\n');
    let mut sorted: Vec<&FileDigest<'_>> = files.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(b.path));
    for file in sorted {
        let line = Value::Array(vec![
            Value::from(file.path),
            Value::from(file.executable),
            Value::from(file.sha256),
        ]);
        write_canonical_json(&line, &mut out)?;
        out.push('\n');
    }
    Ok(out)
}

/// Writes `value` with object keys sorted by their bytes and no whitespace. serde_json's own
/// order cannot be trusted: another crate in the build enables `preserve_order`.
pub(super) fn write_canonical_json(
    value: &Value,
    out: &mut String,
) -> Result<(), serde_json::Error> {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(key)?);
                out.push(':');
                write_canonical_json(value, out)?;
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical_json(item, out)?;
            }
            out.push(']');
        }
        Value::String(s) => out.push_str(&serde_json::to_string(s)?),
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Null => out.push_str("null"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde::Deserialize as _;
    use serde_json::json;

    use super::*;

    struct File {
        path: &'static str,
        contents: &'static [u8],
        executable: bool,
    }

    fn id(manifest: Value, files: &[File]) -> String {
        let manifest = Manifest::deserialize(&manifest).unwrap();
        let hashes: Vec<String> = files.iter().map(|f| sha256_hex(f.contents)).collect();
        let digests: Vec<FileDigest<'_>> = files
            .iter()
            .zip(&hashes)
            .map(|(f, sha256)| FileDigest {
                path: f.path,
                executable: f.executable,
                sha256,
            })
            .collect();
        version_id(&manifest, &digests).unwrap()
    }

    fn base_files() -> Vec<File> {
        vec![
            File {
                path: "main.py",
                contents: b"print(1)",
                executable: false,
            },
            File {
                path: "lib/a.py",
                contents: b"A = 1",
                executable: false,
            },
        ]
    }

    fn base_manifest() -> Value {
        json!({"runtime": "python3", "entry": "main.py", "env": {"B": "2", "A": "1"},
               "params": {"type": "object", "required": ["x"]}})
    }

    #[test]
    fn id_is_sha256_of_64_hex() {
        let id = id(base_manifest(), &base_files());
        let hex = id.strip_prefix("sha256:").unwrap();
        assert_eq!(hex.len(), 64);
        assert!(
            hex.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
    }

    #[test]
    fn key_order_and_file_order_do_not_change_the_id() {
        let reordered: Value = serde_json::from_str(
            r#"{"params": {"required": ["x"], "type": "object"}, "env": {"A": "1", "B": "2"},
                "entry": "main.py", "runtime": "python3"}"#,
        )
        .unwrap();
        let mut files = base_files();
        files.reverse();
        assert_eq!(id(base_manifest(), &base_files()), id(reordered, &files));
    }

    #[test]
    fn explicit_defaults_give_the_same_id_as_omitted_ones() {
        let mut explicit = base_manifest();
        let fields = explicit.as_object_mut().unwrap();
        fields.insert("handler".into(), json!("handler"));
        fields.insert("pool".into(), json!({"min_warm": 0, "max": 4}));
        fields.insert("network".into(), json!("none"));
        fields.insert("retry_safe".into(), json!(false));
        fields.insert("tags".into(), json!([]));
        fields.insert("limits".into(), json!({}));
        assert_eq!(
            id(base_manifest(), &base_files()),
            id(explicit, &base_files())
        );
    }

    #[test]
    fn any_change_of_content_changes_the_id() {
        let base = id(base_manifest(), &base_files());
        let mut byte = base_files();
        byte[0].contents = b"print(2)";
        let mut path = base_files();
        path[1].path = "lib/b.py";
        let mut executable = base_files();
        executable[0].executable = true;
        let mut manifest = base_manifest();
        manifest["pool"] = json!({"max": 5});
        let mut schema = base_manifest();
        schema["params"]["required"] = json!(["y"]);
        for (what, changed) in [
            ("a byte", id(base_manifest(), &byte)),
            ("a path", id(base_manifest(), &path)),
            ("the executable bit", id(base_manifest(), &executable)),
            ("a manifest field", id(manifest, &base_files())),
            ("the params schema", id(schema, &base_files())),
            ("a missing file", id(base_manifest(), &base_files()[..1])),
        ] {
            assert_ne!(base, changed, "changing {what} kept the id");
        }
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let value: Value =
            serde_json::from_str(r#"{"b": {"d": 1, "c": [true, null]}, "a": "\n"}"#).unwrap();
        let mut out = String::new();
        write_canonical_json(&value, &mut out).unwrap();
        assert_eq!(out, r#"{"a":"\n","b":{"c":[true,null],"d":1}}"#);
    }
}
