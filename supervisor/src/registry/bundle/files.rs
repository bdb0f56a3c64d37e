//! The `files` of a registration: each path checked against the rules that keep it under the
//! version's root, each entry decoded, and the bundle's limits applied.

use std::collections::{BTreeMap, HashSet};

use base64::Engine as _;
use serde_json::{Map, Value};

use super::{BundleFile, RegisterError, RegistryLimits, invalid_body};

/// Longest accepted file path, in bytes (the usual `NAME_MAX`, applied to the whole path).
const MAX_PATH_BYTES: usize = 255;

pub(super) fn parse_files(
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
pub(super) fn path_problem(path: &str) -> Option<&'static str> {
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
