//! Parsing a `POST /v1/scripts` body into a [`Bundle`], refusing anything unsafe to store.
//!
//! Everything here is pure (no I/O): names, paths, file entries, sizes and the manifest are
//! checked before a single byte reaches the disk. Paths that come out of [`parse_bundle`] are
//! relative, `/`-separated, free of `.`/`..`, backslashes and control characters, and no path is
//! both a file and a directory, so joining them under a version root cannot escape it.

use std::collections::{BTreeMap, HashSet};

use base64::Engine as _;
use serde::Deserialize as _;
use serde_json::{Map, Value};

use super::{RegisterError, RegistryLimits};
use crate::manifest::Manifest;

/// Longest accepted file path, in bytes (the usual `NAME_MAX`, applied to the whole path).
const MAX_PATH_BYTES: usize = 255;

/// A validated bundle, files sorted by path.
#[derive(Debug)]
pub(super) struct Bundle {
    pub name: String,
    pub manifest: Manifest,
    pub files: Vec<BundleFile>,
}

/// One decoded file of a bundle.
#[derive(Debug)]
pub(super) struct BundleFile {
    pub path: String,
    pub contents: Vec<u8>,
    pub executable: bool,
}

/// Whether `name` is a valid script or tag name: `[a-z0-9][a-z0-9._-]{0,63}`.
pub(crate) fn is_valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let Some(first) = bytes.first() else {
        return false;
    };
    bytes.len() <= 64
        && (first.is_ascii_lowercase() || first.is_ascii_digit())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(b))
}

/// Whether `label` can be typed after `NAME@` and read back unchanged: visible ASCII, none of
/// the characters that separate a reference's parts (`@`, `:`) or a URL path (`/`).
pub(crate) fn is_valid_label(label: &str) -> bool {
    (1..=64).contains(&label.len())
        && label
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"@:/".contains(&b))
}

/// Parses and validates a registration body (everything except the runtime and the schema,
/// which need the caller's runtimes and the schema compiler).
pub(super) fn parse_bundle(body: &Value, limits: &RegistryLimits) -> Result<Bundle, RegisterError> {
    let body = body
        .as_object()
        .ok_or_else(|| invalid_body("expected a JSON object"))?;
    // Unknown keys are refused for the same reason the manifest refuses them: a typo such as
    // `file` must not register a bundle without the caller noticing.
    if let Some(key) = body
        .keys()
        .find(|k| !["name", "manifest", "files"].contains(&k.as_str()))
    {
        return Err(invalid_body(&format!(
            "unknown key {key:?} (expected name, manifest, files)"
        )));
    }
    let name = match body.get("name") {
        Some(Value::String(name)) => name,
        Some(_) => return Err(invalid_body("\"name\" must be a string")),
        None => return Err(invalid_body("missing \"name\"")),
    };
    if !is_valid_name(name) {
        return Err(RegisterError::InvalidName { name: name.clone() });
    }
    let manifest = body
        .get("manifest")
        .ok_or_else(|| invalid_body("missing \"manifest\""))?;
    // A manifest is read on every cold start and shown by every `versions` call: a params
    // schema of megabytes is a mistake (or an attack on the registry), not a manifest.
    let size = serde_json::to_vec(manifest).map_or(usize::MAX, |v| v.len());
    if size > MAX_MANIFEST_BYTES {
        return Err(RegisterError::InvalidManifest {
            detail: format!(
                "the manifest takes {size} bytes as JSON; at most {MAX_MANIFEST_BYTES} are accepted"
            ),
        });
    }
    let manifest = Manifest::deserialize(manifest).map_err(|e| RegisterError::InvalidManifest {
        detail: e.to_string(),
    })?;
    check_manifest_values(&manifest)?;
    let files = match body.get("files") {
        Some(Value::Object(files)) => parse_files(files, limits)?,
        Some(_) => return Err(invalid_body("\"files\" must be an object of path to file")),
        None => return Err(invalid_body("missing \"files\"")),
    };
    if !files.iter().any(|f| f.path == manifest.entry) {
        return Err(RegisterError::EntryMissing {
            entry: manifest.entry.clone(),
        });
    }
    Ok(Bundle {
        name: name.clone(),
        manifest,
        files,
    })
}

fn invalid_body(detail: &str) -> RegisterError {
    RegisterError::InvalidBody {
        detail: detail.to_owned(),
    }
}

/// `MAX_ARG_STRLEN`: the longest single argument or environment string execve takes.
const MAX_ENV_STRING: usize = 32 * 4096;
/// Most bytes a manifest may take, as compact JSON.
pub const MAX_MANIFEST_BYTES: usize = 1 << 20;

/// Most bytes a manifest's environment may take: half of the smallest usual `ARG_MAX` (2 MiB).
const MAX_ENV_TOTAL: usize = 1 << 20;

/// Values serde accepts but an executor could not honour; refused here rather than at spawn.
fn check_manifest_values(manifest: &Manifest) -> Result<(), RegisterError> {
    let invalid = |detail: String| Err(RegisterError::InvalidManifest { detail });
    for (key, value) in &manifest.env {
        if key.is_empty() || key.contains('=') || key.contains('\0') {
            return invalid(format!(
                "env name {key:?} must be non-empty, without '=' or NUL"
            ));
        }
        if value.contains('\0') {
            return invalid(format!("env value of {key:?} contains NUL"));
        }
        // The kernel refuses one environment string longer than MAX_ARG_STRLEN at execve:
        // such a version would register and then fail every start.
        if key.len() + 1 + value.len() >= MAX_ENV_STRING {
            return invalid(format!(
                "env {key:?} is {} bytes; one variable may have at most {} (the kernel's limit for one environment string)",
                value.len(),
                MAX_ENV_STRING - key.len() - 2
            ));
        }
    }
    let total: usize = manifest
        .env
        .iter()
        .map(|(k, v)| k.len() + v.len() + 2)
        .sum();
    if total > MAX_ENV_TOTAL {
        return invalid(format!(
            "env takes {total} bytes; a manifest may set at most {MAX_ENV_TOTAL} (execve's limit on arguments and environment together, with room for the runtime's own)"
        ));
    }
    if let Err(detail) = crate::secrets::check_manifest(manifest) {
        return invalid(detail);
    }
    if let Some(label) = &manifest.label
        && !is_valid_label(label)
    {
        return invalid(format!(
            "label {label:?} must be 1 to 64 visible ASCII characters without '@', ':' or '/' (it is typed as NAME@LABEL)"
        ));
    }
    if let Some(retry) = &manifest.retry {
        use crate::execution::ErrorCode;
        if !(1..=10).contains(&retry.max_attempts) {
            return invalid(format!(
                "retry.max_attempts must be 1 to 10, got {}",
                retry.max_attempts
            ));
        }
        if retry.backoff_ms > 600_000 || retry.max_backoff_ms > 600_000 {
            return invalid(
                "retry.backoff_ms and max_backoff_ms are at most 600000 (10 min)".into(),
            );
        }
        if let Some(code) = retry.on.iter().find(|c| {
            !matches!(
                c,
                ErrorCode::E002 | ErrorCode::E003 | ErrorCode::E004 | ErrorCode::E005
            )
        }) {
            return invalid(format!(
                "retry.on may list E002, E003, E004 and E005, not {}",
                code.as_str()
            ));
        }
    }
    for (key, text, max) in [
        ("author", &manifest.author, 256),
        ("changelog", &manifest.changelog, 16 * 1024),
    ] {
        if let Some(text) = text
            && (text.len() > max || text.contains('\0'))
        {
            return invalid(format!(
                "{key} is {} bytes or holds NUL; at most {max} bytes of text",
                text.len()
            ));
        }
    }
    let limits = &manifest.limits;
    for (key, value) in [
        ("timeout_ms", limits.timeout_ms),
        ("memory_mb", limits.memory_mb),
        ("pids", limits.pids),
    ] {
        if value == Some(0) {
            return invalid(format!("limits.{key} must be at least 1"));
        }
    }
    if let Some(cpu) = limits.cpu.filter(|cpu| !(cpu.is_finite() && *cpu > 0.0)) {
        return invalid(format!("limits.cpu must be a positive number, got {cpu}"));
    }
    let pool = &manifest.pool;
    if pool.max == 0 {
        return invalid("pool.max must be at least 1".into());
    }
    if pool.min_warm > pool.max {
        return invalid(format!(
            "pool.min_warm ({}) is larger than pool.max ({})",
            pool.min_warm, pool.max
        ));
    }
    if pool.max_requests == 0 {
        return invalid("pool.max_requests must be at least 1".into());
    }
    Ok(())
}

fn parse_files(
    files: &Map<String, Value>,
    limits: &RegistryLimits,
) -> Result<Vec<BundleFile>, RegisterError> {
    if files.is_empty() {
        return Err(invalid_body(
            "\"files\" is empty; a bundle needs at least one file",
        ));
    }
    if files.len() > limits.max_files {
        return Err(RegisterError::TooManyFiles {
            count: files.len(),
            max: limits.max_files,
        });
    }
    // Sorted by path: the digest and the store both want a stable order.
    let mut decoded = BTreeMap::new();
    let mut total: u64 = 0;
    for (path, entry) in files {
        if let Some(reason) = path_problem(path) {
            return Err(RegisterError::InvalidPath {
                path: path.clone(),
                reason: reason.to_owned(),
            });
        }
        let (contents, executable) = parse_file_entry(path, entry)?;
        let size = contents.len() as u64;
        if size > limits.max_file_bytes {
            return Err(RegisterError::FileTooLarge {
                path: path.clone(),
                size,
                max: limits.max_file_bytes,
            });
        }
        total += size;
        decoded.insert(path.clone(), (contents, executable));
    }
    if total > limits.max_bundle_bytes {
        return Err(RegisterError::BundleTooLarge {
            size: total,
            max: limits.max_bundle_bytes,
        });
    }
    refuse_file_directory_clashes(decoded.keys())?;
    Ok(decoded
        .into_iter()
        .map(|(path, (contents, executable))| BundleFile {
            path,
            contents,
            executable,
        })
        .collect())
}

/// The rule a path breaks, if any.
fn path_problem(path: &str) -> Option<&'static str> {
    if path.is_empty() {
        return Some("the path is empty");
    }
    if path.len() > MAX_PATH_BYTES {
        return Some("the path is longer than 255 bytes");
    }
    if path.starts_with('/') {
        return Some("absolute paths are not allowed");
    }
    if path.contains('\\') {
        return Some("backslashes are not allowed; separate directories with '/'");
    }
    if path.chars().any(char::is_control) {
        return Some("control characters (including NUL) are not allowed");
    }
    for segment in path.split('/') {
        match segment {
            "" => return Some("empty segments (a doubled or trailing '/') are not allowed"),
            "." | ".." => return Some("'.' and '..' segments are not allowed"),
            _ => {}
        }
    }
    None
}

/// Refuses `a` and `a/b` in one bundle: `a` cannot be both a file and a directory.
fn refuse_file_directory_clashes<'a>(
    paths: impl Iterator<Item = &'a String> + Clone,
) -> Result<(), RegisterError> {
    let all: HashSet<&str> = paths.clone().map(String::as_str).collect();
    for path in paths {
        for (i, _) in path.match_indices('/') {
            let parent = &path[..i];
            if all.contains(parent) {
                return Err(RegisterError::InvalidPath {
                    path: path.clone(),
                    reason: format!("{parent:?} is a file, so it cannot also be a directory"),
                });
            }
        }
    }
    Ok(())
}

fn parse_file_entry(path: &str, entry: &Value) -> Result<(Vec<u8>, bool), RegisterError> {
    let invalid = |reason: String| RegisterError::InvalidFile {
        path: path.to_owned(),
        reason,
    };
    let fields = match entry {
        Value::String(text) => return Ok((text.as_bytes().to_vec(), false)),
        Value::Object(fields) => fields,
        _ => return Err(invalid("expected a string or an object".into())),
    };
    if let Some(key) = fields
        .keys()
        .find(|k| !["text", "base64", "executable"].contains(&k.as_str()))
    {
        // Bundles are JSON, so a symlink or device could only arrive as some other key.
        return Err(invalid(format!(
            "unknown key {key:?}: a file is \"text\" or \"base64\" (bundles cannot hold symlinks)"
        )));
    }
    let executable = match fields.get("executable") {
        None => false,
        Some(Value::Bool(executable)) => *executable,
        Some(_) => return Err(invalid("\"executable\" must be true or false".into())),
    };
    let contents = match (fields.get("text"), fields.get("base64")) {
        (Some(Value::String(text)), None) => text.as_bytes().to_vec(),
        (None, Some(Value::String(encoded))) => base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|e| invalid(format!("invalid base64: {e}")))?,
        (Some(_), Some(_)) => return Err(invalid("give \"text\" or \"base64\", not both".into())),
        (None, None) => return Err(invalid("missing \"text\" or \"base64\"".into())),
        _ => return Err(invalid("\"text\" and \"base64\" must be strings".into())),
    };
    Ok((contents, executable))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

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
}
