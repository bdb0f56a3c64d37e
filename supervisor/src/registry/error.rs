//! The registry's error types, one per operation boundary, each with an optional `hint`.
//!
//! Variants carry the facts (name, path, limit, observed value) so the API layer can turn them
//! into problem+json without parsing messages, and the CLI can print the hint on its own line.

use std::path::PathBuf;

use thiserror::Error;

/// Opening the registry, or a storage failure (filesystem or SQLite) during a later operation.
#[derive(Debug, Error)]
pub enum RegistryError {
    /// A filesystem operation failed; `fs-err` puts the path into the source's message.
    #[error("registry file operation failed")]
    Io(#[from] std::io::Error),
    /// A SQLite statement failed.
    #[error("registry database could not {operation}")]
    Db {
        /// What the registry was doing, e.g. "insert a version".
        operation: &'static str,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// The database could not be opened or brought to this build's schema.
    #[error("cannot open the registry database")]
    Open(#[from] crate::sqlite::OpenError),
    /// A stored row does not parse any more.
    #[error("registry database holds an unreadable version {name}@{version}: {detail}")]
    Corrupt {
        /// Script name.
        name: String,
        /// Version id.
        version: String,
        /// What failed to parse.
        detail: String,
    },
    /// A version's tree is missing and one of its blobs is gone too, so it cannot be rebuilt.
    #[error("blob {path} of {name}@{version} is missing, so the version cannot be materialised")]
    MissingBlob {
        /// Script name.
        name: String,
        /// Version id.
        version: String,
        /// The blob's expected path.
        path: PathBuf,
    },
}

impl RegistryError {
    /// A next step for the operator, where one helps.
    pub fn hint(&self) -> Option<String> {
        match self {
            RegistryError::Open(crate::sqlite::OpenError::SchemaTooNew { .. }) => {
                Some("run the runwarmd that created this state directory, or use a new one".into())
            }
            RegistryError::Io(_) | RegistryError::Db { .. } | RegistryError::Open(_) => None,
            RegistryError::Corrupt { .. } | RegistryError::MissingBlob { .. } => Some(
                "the state directory was changed outside runwarmd; restore it from a backup".into(),
            ),
        }
    }
}

/// Why `POST /v1/scripts` refused a bundle.
#[derive(Debug, Error)]
pub enum RegisterError {
    /// The body is not the documented shape.
    #[error("invalid request body: {detail}")]
    InvalidBody {
        /// What is wrong with it.
        detail: String,
    },
    /// The script name breaks the naming rule.
    #[error("invalid script name {name:?}")]
    InvalidName {
        /// The name as sent.
        name: String,
    },
    /// A file path is unsafe or malformed.
    #[error("invalid file path {path:?}: {reason}")]
    InvalidPath {
        /// The path as sent.
        path: String,
        /// Which rule it breaks.
        reason: String,
    },
    /// A file entry is neither text nor base64 (bundles cannot hold symlinks or anything else).
    #[error("invalid file {path:?}: {reason}")]
    InvalidFile {
        /// The file's path.
        path: String,
        /// What is wrong with the entry.
        reason: String,
    },
    /// More files than the limit.
    #[error("the bundle has {count} files, more than the limit of {max}")]
    TooManyFiles {
        /// Files sent.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// One file is over the per-file limit.
    #[error("file {path:?} is {size} bytes, more than the limit of {max}")]
    FileTooLarge {
        /// The file's path.
        path: String,
        /// Its decoded size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// All files together are over the bundle limit.
    #[error("the bundle is {size} bytes, more than the limit of {max}")]
    BundleTooLarge {
        /// Decoded size of all files.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The manifest's entry is not one of the files.
    #[error("the entry {entry:?} is not one of the bundle's files")]
    EntryMissing {
        /// The manifest's `entry`.
        entry: String,
    },
    /// The manifest does not parse or has an invalid value.
    #[error("invalid manifest: {detail}")]
    InvalidManifest {
        /// What is wrong with it.
        detail: String,
    },
    /// The manifest names a runtime this daemon does not have.
    #[error("unknown runtime {runtime:?}")]
    UnknownRuntime {
        /// The manifest's `runtime`.
        runtime: String,
    },
    /// `params` is not a valid JSON Schema.
    #[error("invalid params schema: {detail}")]
    InvalidSchema {
        /// The compiler's message.
        detail: String,
    },
    /// The bundle was valid but storing it failed.
    #[error("could not store the version")]
    Storage(#[from] RegistryError),
}

impl RegisterError {
    /// A next step for the caller, where one helps.
    pub fn hint(&self) -> Option<String> {
        match self {
            RegisterError::InvalidBody { .. } => Some(
                r#"send {"name": ..., "manifest": {...}, "files": {"path": "text" | {"text"|"base64": ..., "executable": bool}}}"#
                    .into(),
            ),
            RegisterError::InvalidName { .. } => Some(NAME_RULE.into()),
            RegisterError::InvalidPath { .. } => Some(
                "paths are relative, separated by '/', without '.' or '..' segments".into(),
            ),
            RegisterError::InvalidFile { .. } => Some(
                "a file is a string, or an object with \"text\" or \"base64\" and an optional \"executable\""
                    .into(),
            ),
            RegisterError::TooManyFiles { .. }
            | RegisterError::FileTooLarge { .. }
            | RegisterError::BundleTooLarge { .. } => {
                Some("keep large data out of the bundle, or raise the daemon's registry limits".into())
            }
            RegisterError::EntryMissing { .. } => {
                Some("the manifest's \"entry\" must be one of the keys of \"files\"".into())
            }
            RegisterError::InvalidManifest { .. } => Some(
                "only \"runtime\" and \"entry\" are required; unknown keys are refused".into(),
            ),
            RegisterError::UnknownRuntime { .. } => {
                Some("list the available runtimes with: runwarm runtimes".into())
            }
            RegisterError::InvalidSchema { .. } => Some(
                "\"params\" must be a JSON Schema (draft 2020-12 unless \"$schema\" names another)"
                    .into(),
            ),
            RegisterError::Storage(source) => source.hint(),
        }
    }
}

/// Why a script name plus selector did not resolve to a runnable version.
#[derive(Debug, Error)]
pub enum ResolveError {
    /// No script by that name.
    #[error("unknown script {name:?}")]
    UnknownScript {
        /// The name asked for.
        name: String,
    },
    /// The script has no such version.
    #[error("script {name:?} has no version {version:?}")]
    UnknownVersion {
        /// Script name.
        name: String,
        /// The version asked for.
        version: String,
    },
    /// A version prefix matches more than one version.
    #[error("version {version:?} of script {name:?} is ambiguous: {matches} versions match")]
    AmbiguousVersion {
        /// Script name.
        name: String,
        /// The prefix asked for.
        version: String,
        /// How many versions match it.
        matches: usize,
    },
    /// More than one version carries the manifest label asked for.
    #[error("label {label:?} of script {name:?} is carried by {} versions", versions.len())]
    AmbiguousLabel {
        /// Script name.
        name: String,
        /// The label asked for.
        label: String,
        /// The ids of the versions carrying it, oldest first.
        versions: Vec<String>,
    },
    /// The script has no such tag.
    #[error("script {name:?} has no tag {tag:?}")]
    UnknownTag {
        /// Script name.
        name: String,
        /// The tag asked for.
        tag: String,
    },
    /// The script is disabled: it takes no new invocations.
    #[error("script {name:?} is disabled")]
    Disabled {
        /// Script name.
        name: String,
    },
    /// Writing the disabled flag failed (only from `set_disabled`; `resolve` never touches disk).
    #[error("could not store the script's state")]
    Storage(#[from] RegistryError),
}

impl ResolveError {
    /// A next step for the caller, where one helps.
    pub fn hint(&self) -> Option<String> {
        match self {
            ResolveError::UnknownScript { .. } => Some("list scripts with: runwarm ls".into()),
            ResolveError::UnknownVersion { name, .. } => {
                Some(format!("list its versions with: runwarm versions {name}"))
            }
            ResolveError::AmbiguousVersion { .. } => {
                Some("give more characters of the version id".into())
            }
            ResolveError::AmbiguousLabel { name, versions, .. } => Some(format!(
                "name one by id instead: {}",
                versions
                    .iter()
                    .map(|v| format!("{name}@{}", short_id(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            ResolveError::UnknownTag { name, .. } => {
                Some(format!("list its tags with: runwarm show {name}"))
            }
            ResolveError::Disabled { name } => {
                Some(format!("enable it with: runwarm enable {name}"))
            }
            ResolveError::Storage(source) => source.hint(),
        }
    }
}

/// Why a tag could not be set.
#[derive(Debug, Error)]
pub enum TagError {
    /// The tag name breaks the naming rule.
    #[error("invalid tag name {tag:?}")]
    InvalidTag {
        /// The tag as sent.
        tag: String,
    },
    /// The script or version to tag does not exist, or the version prefix is ambiguous.
    #[error(transparent)]
    Target(#[from] ResolveError),
    /// Writing the tag failed.
    #[error("could not store the tag")]
    Storage(#[from] RegistryError),
}

impl TagError {
    /// A next step for the caller, where one helps.
    pub fn hint(&self) -> Option<String> {
        match self {
            TagError::InvalidTag { .. } => Some(NAME_RULE.replace("names", "tag names")),
            TagError::Target(inner) => inner.hint(),
            TagError::Storage(source) => source.hint(),
        }
    }
}

/// Why a version's file could not be read back.
#[derive(Debug, Error)]
pub enum FileError {
    /// The script or version does not resolve.
    #[error(transparent)]
    Version(#[from] ResolveError),
    /// The version has no file at this path.
    #[error("version {version} of script {name:?} has no file {path:?}")]
    UnknownFile {
        /// Script name.
        name: String,
        /// The resolved version id.
        version: String,
        /// The path asked for.
        path: String,
    },
    /// Reading the stored blob failed, or it no longer matches its hash.
    #[error("could not read the stored file")]
    Storage(#[source] RegistryError),
}

impl FileError {
    /// A next step for the caller, where one helps.
    pub fn hint(&self) -> Option<String> {
        match self {
            FileError::Version(inner) => inner.hint(),
            FileError::UnknownFile { name, version, .. } => Some(format!(
                "list its files with: runwarm api GET /v1/scripts/{name}/versions/{version}"
            )),
            FileError::Storage(source) => source.hint(),
        }
    }
}

/// The first 12 hex digits of a version id, as `runwarm versions` shows them.
fn short_id(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    hex.get(..12).unwrap_or(hex)
}

const NAME_RULE: &str =
    "names are 1 to 64 characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit";
