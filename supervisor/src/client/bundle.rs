//! Building the `POST /v1/scripts` body from a script folder (`runwarm.toml` + files) or from a
//! single file plus command-line options.
//!
//! The daemon validates bundles; this side refuses what it cannot send faithfully (symlinks,
//! special files, names that are not UTF-8) with the path in the error, and skips hidden
//! entries (`.git`, `.venv`, editor files) that are never meant to be part of a script.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::{Map, Value, json};

/// The manifest file of a script folder.
pub const MANIFEST_FILE: &str = "runwarm.toml";

/// Why a bundle could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// Reading a file or listing a folder failed.
    #[error("cannot read {}", path.display())]
    Read {
        /// What.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The folder has no `runwarm.toml`.
    #[error("{} has no {MANIFEST_FILE}", dir.display())]
    NoManifest {
        /// The folder.
        dir: PathBuf,
    },
    /// `runwarm.toml` is not valid TOML.
    #[error("invalid {}", path.display())]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// Why.
        #[source]
        source: toml::de::Error,
    },
    /// The top-level `name` key of `runwarm.toml` is not a string.
    #[error("`name` in {} must be a string", path.display())]
    NameNotString {
        /// The manifest file.
        path: PathBuf,
    },
    /// No script name could be found (no `name` key and no usable folder or file name).
    #[error("cannot tell the script name of {}", path.display())]
    NoName {
        /// The folder or file.
        path: PathBuf,
    },
    /// A symlink inside the bundle.
    #[error("{} is a symlink; bundles may not contain symlinks", path.display())]
    Symlink {
        /// The link.
        path: PathBuf,
    },
    /// A FIFO, socket or device inside the bundle.
    #[error("{} is not a regular file or folder", path.display())]
    SpecialFile {
        /// The entry.
        path: PathBuf,
    },
    /// A path that is not UTF-8 cannot be a JSON key.
    #[error("{} has a name that is not UTF-8", path.display())]
    NonUtf8Name {
        /// The entry.
        path: PathBuf,
    },
}

impl BundleError {
    /// What the person might do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            BundleError::NoManifest { dir } => Some(format!(
                "create {}/{MANIFEST_FILE} with at least `runtime` and `entry`, or register a \
                 single file with `runwarm register FILE --name NAME --runtime RUNTIME`",
                dir.display()
            )),
            BundleError::Symlink { .. } => {
                Some("copy the target into the folder instead of linking it".into())
            }
            BundleError::NameNotString { .. } | BundleError::NoName { .. } => {
                Some("set `name = \"my-script\"` in runwarm.toml or pass --name".into())
            }
            BundleError::Read { .. }
            | BundleError::Manifest { .. }
            | BundleError::SpecialFile { .. }
            | BundleError::NonUtf8Name { .. } => None,
        }
    }
}

/// Reads a script folder into the registration body `{"name", "manifest", "files"}`.
pub fn bundle_from_dir(dir: &Path) -> Result<Value, BundleError> {
    let manifest_path = dir.join(MANIFEST_FILE);
    let text = match std::fs::read_to_string(&manifest_path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(BundleError::NoManifest {
                dir: dir.to_owned(),
            });
        }
        Err(source) => {
            return Err(BundleError::Read {
                path: manifest_path,
                source,
            });
        }
    };
    let mut table: toml::Table = toml::from_str(&text).map_err(|source| BundleError::Manifest {
        path: manifest_path.clone(),
        source,
    })?;
    let name = match table.remove("name") {
        Some(toml::Value::String(name)) => name,
        Some(_) => {
            return Err(BundleError::NameNotString {
                path: manifest_path,
            });
        }
        None => folder_name(dir)?,
    };
    let manifest = toml_to_json(toml::Value::Table(table));
    let mut files = Map::new();
    collect_files(dir, "", &mut files)?;
    Ok(json!({"name": name, "manifest": manifest, "files": files}))
}

/// Options of `runwarm register FILE`.
#[derive(Debug, Clone, Default)]
pub struct FileBundle {
    /// Script name; the file's stem when absent.
    pub name: Option<String>,
    /// Runtime (required by the daemon).
    pub runtime: String,
    /// `handler` or `command`.
    pub mode: Option<String>,
    /// Handler function name.
    pub handler: Option<String>,
    /// Name of the file inside the bundle; the file's own name when absent.
    pub entry: Option<String>,
}

/// Builds the registration body for a single-file script.
pub fn bundle_from_file(file: &Path, opts: &FileBundle) -> Result<Value, BundleError> {
    let meta = std::fs::symlink_metadata(file).map_err(|source| BundleError::Read {
        path: file.to_owned(),
        source,
    })?;
    if meta.file_type().is_symlink() {
        return Err(BundleError::Symlink {
            path: file.to_owned(),
        });
    }
    let own_name = file
        .file_name()
        .map(|n| {
            n.to_str()
                .ok_or(BundleError::NonUtf8Name { path: file.into() })
        })
        .transpose()?;
    let Some(entry) = opts.entry.as_deref().or(own_name) else {
        return Err(BundleError::NoName { path: file.into() });
    };
    let name = match &opts.name {
        Some(name) => name.clone(),
        None => file
            .file_stem()
            .and_then(|s| s.to_str())
            .map(str::to_owned)
            .ok_or(BundleError::NoName { path: file.into() })?,
    };
    let mut manifest = Map::new();
    manifest.insert("runtime".into(), opts.runtime.clone().into());
    manifest.insert("entry".into(), entry.into());
    if let Some(mode) = &opts.mode {
        manifest.insert("mode".into(), mode.clone().into());
    }
    if let Some(handler) = &opts.handler {
        manifest.insert("handler".into(), handler.clone().into());
    }
    let mut files = Map::new();
    files.insert(entry.to_owned(), read_file_entry(file, &meta)?);
    Ok(json!({"name": name, "manifest": manifest, "files": files}))
}

fn folder_name(dir: &Path) -> Result<String, BundleError> {
    // `register .` must name the script after the folder it stands for, not after ".".
    let resolved = std::fs::canonicalize(dir).map_err(|source| BundleError::Read {
        path: dir.to_owned(),
        source,
    })?;
    resolved
        .file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .ok_or(BundleError::NoName { path: dir.into() })
}

/// Walks `dir` depth-first, adding every regular file under its `/`-separated relative path.
fn collect_files(
    dir: &Path,
    prefix: &str,
    files: &mut Map<String, Value>,
) -> Result<(), BundleError> {
    let read_err = |source| BundleError::Read {
        path: dir.to_owned(),
        source,
    };
    let mut entries = std::fs::read_dir(dir)
        .map_err(read_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read_err)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            return Err(BundleError::NonUtf8Name { path });
        };
        if file_name.starts_with('.') || (prefix.is_empty() && file_name == MANIFEST_FILE) {
            continue;
        }
        let meta = std::fs::symlink_metadata(&path).map_err(|source| BundleError::Read {
            path: path.clone(),
            source,
        })?;
        let relative = format!("{prefix}{file_name}");
        let kind = meta.file_type();
        if kind.is_symlink() {
            return Err(BundleError::Symlink { path });
        } else if kind.is_dir() {
            collect_files(&path, &format!("{relative}/"), files)?;
        } else if kind.is_file() {
            files.insert(relative, read_file_entry(&path, &meta)?);
        } else {
            return Err(BundleError::SpecialFile { path });
        }
    }
    Ok(())
}

/// `{"text", "executable"}` for UTF-8 content, `{"base64", "executable"}` otherwise.
fn read_file_entry(path: &Path, meta: &std::fs::Metadata) -> Result<Value, BundleError> {
    if !meta.is_file() {
        return Err(BundleError::SpecialFile { path: path.into() });
    }
    let bytes = std::fs::read(path).map_err(|source| BundleError::Read {
        path: path.to_owned(),
        source,
    })?;
    let executable = meta.permissions().mode() & 0o111 != 0;
    Ok(match String::from_utf8(bytes) {
        Ok(text) => json!({"text": text, "executable": executable}),
        Err(e) => json!({
            "base64": base64::engine::general_purpose::STANDARD.encode(e.into_bytes()),
            "executable": executable,
        }),
    })
}

fn toml_to_json(value: toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => Value::from(f),
        toml::Value::Boolean(b) => Value::Bool(b),
        // Datetimes have no JSON form; their TOML spelling is what a person wrote.
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(items) => Value::Array(items.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => {
            Value::Object(t.into_iter().map(|(k, v)| (k, toml_to_json(v))).collect())
        }
    }
}

#[cfg(test)]
#[path = "bundle_tests.rs"]
mod tests;
