//! Parsing a `POST /v1/scripts` body into a [`Bundle`], refusing anything unsafe to store.
//!
//! Everything here is pure (no I/O): names, paths, file entries, sizes and the manifest are
//! checked before a single byte reaches the disk. Paths that come out of [`parse_bundle`] are
//! relative, `/`-separated, free of `.`/`..`, backslashes and control characters, and no path is
//! both a file and a directory, so joining them under a version root cannot escape it.

mod files;
mod manifest_values;

use serde::Deserialize as _;
use serde_json::Value;

use super::{RegisterError, RegistryLimits};
use crate::registry::manifest::Manifest;
use files::parse_files;
use manifest_values::check_manifest_values;

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

/// Most bytes a manifest may take, as compact JSON.
pub const MAX_MANIFEST_BYTES: usize = 1 << 20;

#[cfg(test)]
mod tests;
