//! A registered version as the rest of the daemon sees it: manifest, files, read-only tree and
//! the compiled params validator.
//!
//! Versions are immutable; the registry hands them out as `Arc<Version>` so a pool or an
//! execution keeps the exact version it resolved even while tags move.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::params::{ParamsSchema, Violation};
use crate::registry::manifest::Manifest;

/// One file of a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FileInfo {
    /// Path relative to the version root, `/`-separated.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Hex sha256 of the contents (the blob's name).
    pub sha256: String,
    /// Whether the file is materialised with execute permission.
    pub executable: bool,
}

/// Who registered a version: the peer credentials (`SO_PEERCRED`) of the connection that sent
/// `POST /v1/scripts` (or cloned a sample).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Registrant {
    /// The caller's uid.
    pub uid: u32,
    /// The caller's primary gid.
    pub gid: u32,
    /// The caller's pid at the time. Only a clue once that process is gone (pids are reused),
    /// but it ties a version to a deploy job's log. Absent for versions registered before
    /// runwarmd recorded it (registry schema 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
}

/// An immutable version of a script.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Version {
    /// Script name.
    pub name: String,
    /// `sha256:<64 hex>`.
    pub id: String,
    /// The manifest with every default applied.
    pub manifest: Manifest,
    /// The materialised read-only tree (mounted at `/var/task` in the sandbox). Not serialised:
    /// callers of the API have no business knowing the state directory's layout.
    #[serde(skip)]
    pub root: PathBuf,
    /// When the version was first registered (RFC 3339).
    pub created_at: String,
    /// Files sorted by path.
    pub files: Vec<FileInfo>,
    /// Who registered it; `null` for versions registered before runwarmd recorded it and for
    /// the samples runwarmd registers itself at start.
    pub registered_by: Option<Registrant>,
    #[serde(skip)]
    pub(super) params: ParamsSchema,
}

impl Version {
    /// Checks an invocation payload against the manifest's `params` schema, listing every
    /// violation with its JSON pointer. Without a schema every payload is accepted.
    pub fn validate_params(&self, payload: &Value) -> Result<(), Vec<Violation>> {
        self.params.validate(payload)
    }

    /// [`Self::validate_params`] for a payload kept as text: a tree of it is built only when
    /// there is a schema to check it against.
    pub fn validate_params_text(
        &self,
        payload: &runwarm_protocol::RawJson,
    ) -> Result<(), Vec<Violation>> {
        if !self.params.checks_anything() {
            return Ok(());
        }
        match payload.to_value() {
            Ok(value) => self.params.validate(&value),
            Err(e) => Err(vec![Violation {
                pointer: String::new(),
                message: format!("the payload is not JSON: {e}"),
            }]),
        }
    }

    /// The 64 hex digits of the id (the name of the version's directory).
    pub fn hex(&self) -> &str {
        self.id.strip_prefix("sha256:").unwrap_or(&self.id)
    }

    /// How the launcher names this version.
    pub fn script_ref(&self) -> crate::runtime::ScriptRef<'_> {
        crate::runtime::ScriptRef {
            name: &self.name,
            version: &self.id,
            root: &self.root,
            manifest: &self.manifest,
        }
    }

    /// Total size of the files in bytes.
    pub fn size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}
