//! What the API shows about scripts and versions: list filters and the JSON views.
//!
//! These are plain snapshots built from the in-memory cache; holding one does not pin anything.

use std::collections::BTreeMap;

use runwarm_protocol::Mode;
use serde::{Deserialize, Serialize};

/// `GET /v1/scripts?tag=&runtime=&q=`: every given condition must hold.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ScriptFilter {
    /// A version tag of the script (`prod`) or a label of its latest manifest (`demo`).
    pub tag: Option<String>,
    /// The runtime of the latest version, exactly.
    pub runtime: Option<String>,
    /// A substring of the name or the latest description, ignoring case.
    pub q: Option<String>,
}

/// One script in a listing.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ScriptSummary {
    /// Script name.
    pub name: String,
    /// Whether new invocations are refused.
    pub disabled: bool,
    /// The version `latest` points at.
    pub latest: String,
    /// Runtime of the latest version.
    pub runtime: String,
    /// Description of the latest version.
    pub description: String,
    /// Labels (manifest `tags`) of the latest version.
    pub labels: Vec<String>,
    /// Names of the script's version tags.
    pub tags: Vec<String>,
    /// Number of versions.
    pub versions: usize,
    /// When the script was first registered.
    pub created_at: String,
    /// When the latest version was registered.
    pub updated_at: String,
}

/// One script in detail.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ScriptDetail {
    /// Script name.
    pub name: String,
    /// Whether new invocations are refused.
    pub disabled: bool,
    /// Every tag and the version id it points at.
    pub tags: BTreeMap<String, String>,
    /// The version `latest` points at.
    pub latest: String,
    /// When the script was first registered.
    pub created_at: String,
    /// Description of the latest version.
    pub description: String,
    /// Runtime of the latest version.
    pub runtime: String,
    /// Labels (manifest `tags`) of the latest version.
    pub labels: Vec<String>,
    /// Number of versions.
    pub versions: usize,
    /// Manifest `label` of the latest version (`1.4.0`), when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Manifest `author` of the latest version, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
}

/// One version in `GET /v1/scripts/{name}/versions`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct VersionSummary {
    /// `sha256:<64 hex>`.
    pub id: String,
    /// When it was registered.
    pub created_at: String,
    /// Its runtime.
    pub runtime: String,
    /// Its entry file.
    pub entry: String,
    /// Its mode, when the manifest sets one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// Its description.
    pub description: String,
    /// The tags pointing at it.
    pub tags: Vec<String>,
    /// Number of files.
    pub files: usize,
    /// Total size of the files in bytes.
    pub size: u64,
    /// Who registered it (`null` when unknown: see [`super::Version::registered_by`]).
    pub registered_by: Option<super::Registrant>,
    /// Its manifest `label` (`1.4.0`): `NAME@LABEL` selects it when no other version has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Its manifest `author`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// Its manifest `changelog`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changelog: Option<String>,
}
