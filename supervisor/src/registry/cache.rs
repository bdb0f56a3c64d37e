//! The in-memory copy of the registry that every read is answered from.
//!
//! Invariants: every script in the cache has at least one version and a `latest` tag, and every
//! tag points at one of the script's own versions (tags hold the `Arc<Version>` itself, so
//! resolving a tag is one map lookup and cannot dangle).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::db::Loaded;
use super::params::ParamsSchema;
use super::store::Store;
use super::summary::{ScriptDetail, ScriptFilter, ScriptSummary, VersionSummary};
use super::version::{FileInfo, Version};
use super::{RegistryError, ResolveError, Selector};
use crate::registry::manifest::Manifest;

/// Shortest version prefix accepted in place of a full id (as git's short hashes).
const MIN_PREFIX_HEX: usize = 7;

/// Every script, by name.
#[derive(Debug, Default)]
pub(super) struct Cache {
    scripts: BTreeMap<String, ScriptEntry>,
}

/// One script.
#[derive(Debug)]
pub(super) struct ScriptEntry {
    pub disabled: bool,
    pub created_at: String,
    /// Registration order, oldest first.
    pub versions: Vec<Arc<Version>>,
    pub tags: BTreeMap<String, Arc<Version>>,
}

/// The result of looking a version up by id, prefix or label.
pub(super) enum Lookup<'a> {
    Found(&'a Arc<Version>),
    Missing,
    Ambiguous(usize),
    /// More than one version carries this manifest `label`: their ids, oldest first.
    AmbiguousLabel(Vec<String>),
}

impl ScriptEntry {
    /// Finds a version by full id, by a unique prefix of at least 7 hex digits (with or
    /// without `sha256:`), so people can type what `runwarm versions` shows, or by its manifest
    /// `label` (`1.4.0`) when exactly one version carries it. Ids and prefixes are tried first:
    /// a label that happens to look like a prefix never hides the version it names.
    pub fn find_version(&self, wanted: &str) -> Lookup<'_> {
        match self.find_by_id(wanted) {
            Lookup::Missing => self.find_by_label(wanted),
            found => found,
        }
    }

    fn find_by_id(&self, wanted: &str) -> Lookup<'_> {
        if let Some(exact) = self.versions.iter().find(|v| v.id == wanted) {
            return Lookup::Found(exact);
        }
        let prefix = wanted.strip_prefix("sha256:").unwrap_or(wanted);
        if prefix.len() < MIN_PREFIX_HEX || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Lookup::Missing;
        }
        let prefix = prefix.to_ascii_lowercase();
        let mut matches = self
            .versions
            .iter()
            .filter(|v| v.hex().starts_with(&prefix));
        match (matches.next(), matches.count()) {
            (None, _) => Lookup::Missing,
            (Some(found), 0) => Lookup::Found(found),
            (Some(_), more) => Lookup::Ambiguous(more + 1),
        }
    }

    fn find_by_label(&self, label: &str) -> Lookup<'_> {
        let labelled: Vec<&Arc<Version>> = self
            .versions
            .iter()
            .filter(|v| v.manifest.label.as_deref() == Some(label))
            .collect();
        match labelled.as_slice() {
            [] => Lookup::Missing,
            [only] => Lookup::Found(only),
            many => Lookup::AmbiguousLabel(many.iter().map(|v| v.id.clone()).collect()),
        }
    }

    fn latest(&self) -> Option<&Arc<Version>> {
        self.tags.get("latest")
    }

    fn tags_of(&self, id: &str) -> Vec<String> {
        self.tags
            .iter()
            .filter(|(_, v)| v.id == id)
            .map(|(tag, _)| tag.clone())
            .collect()
    }

    fn matches(&self, name: &str, latest: &Version, filter: &ScriptFilter) -> bool {
        let tag_ok = filter.tag.as_ref().is_none_or(|tag| {
            self.tags.contains_key(tag) || latest.manifest.tags.iter().any(|label| label == tag)
        });
        let runtime_ok = filter
            .runtime
            .as_ref()
            .is_none_or(|runtime| &latest.manifest.runtime == runtime);
        let q_ok = filter.q.as_ref().is_none_or(|q| {
            let q = q.to_lowercase();
            name.to_lowercase().contains(&q)
                || latest.manifest.description.to_lowercase().contains(&q)
        });
        tag_ok && runtime_ok && q_ok
    }
}

impl Cache {
    /// Builds the cache from the database rows, rebuilding any missing version tree.
    pub fn from_rows(loaded: Loaded, store: &Store) -> Result<Cache, RegistryError> {
        let mut cache = Cache::default();
        for row in loaded.scripts {
            cache.scripts.insert(
                row.name,
                ScriptEntry {
                    disabled: row.disabled,
                    created_at: row.created_at,
                    versions: Vec::new(),
                    tags: BTreeMap::new(),
                },
            );
        }
        for row in loaded.versions {
            let corrupt = |detail: String| RegistryError::Corrupt {
                name: row.name.clone(),
                version: row.id.clone(),
                detail,
            };
            let manifest: Manifest = serde_json::from_str(&row.manifest)
                .map_err(|e| corrupt(format!("manifest: {e}")))?;
            let files: Vec<FileInfo> =
                serde_json::from_str(&row.files).map_err(|e| corrupt(format!("files: {e}")))?;
            let root = store.materialise(&row.name, &row.id, &files)?;
            let params = ParamsSchema::compile_stored(manifest.params.as_ref());
            let Some(entry) = cache.scripts.get_mut(&row.name) else {
                return Err(corrupt("the version's script row is missing".into()));
            };
            entry.versions.push(Arc::new(Version {
                name: row.name,
                id: row.id,
                manifest,
                root,
                created_at: row.created_at,
                files,
                registered_by: row.registered_by,
                params,
            }));
        }
        for row in loaded.tags {
            let Some(entry) = cache.scripts.get_mut(&row.name) else {
                continue;
            };
            if let Lookup::Found(version) = entry.find_version(&row.version) {
                let version = Arc::clone(version);
                entry.tags.insert(row.tag, version);
            }
        }
        cache.scripts.retain(|name, entry| {
            if entry.latest().is_none() {
                let Some(newest) = entry.versions.last() else {
                    tracing::warn!(script = %name, "script without versions ignored");
                    return false;
                };
                let newest = Arc::clone(newest);
                entry.tags.insert("latest".into(), newest);
            }
            true
        });
        Ok(cache)
    }

    pub fn all_versions(&self) -> Vec<Arc<Version>> {
        self.scripts
            .values()
            .flat_map(|e| e.versions.iter().cloned())
            .collect()
    }

    pub fn tagged_versions(&self) -> Vec<String> {
        self.scripts
            .values()
            .filter(|e| !e.disabled)
            .flat_map(|e| e.tags.values().map(|v| v.id.clone()))
            .collect()
    }

    pub fn get(&self, name: &str) -> Option<&ScriptEntry> {
        self.scripts.get(name)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut ScriptEntry> {
        self.scripts.get_mut(name)
    }

    /// Adds a newly registered version and points `latest` at it.
    pub fn insert_version(&mut self, version: Arc<Version>) {
        let entry = self
            .scripts
            .entry(version.name.clone())
            .or_insert_with(|| ScriptEntry {
                disabled: false,
                created_at: version.created_at.clone(),
                versions: Vec::new(),
                tags: BTreeMap::new(),
            });
        entry.versions.push(Arc::clone(&version));
        entry.tags.insert("latest".into(), version);
    }

    /// The version of `name` whose id is or starts with `version`, enabled or not.
    pub fn find_version(&self, name: &str, version: &str) -> Result<Arc<Version>, ResolveError> {
        let entry = self.get(name).ok_or_else(|| ResolveError::UnknownScript {
            name: name.to_owned(),
        })?;
        match entry.find_version(version) {
            Lookup::Found(found) => Ok(Arc::clone(found)),
            Lookup::Missing => Err(ResolveError::UnknownVersion {
                name: name.to_owned(),
                version: version.to_owned(),
            }),
            Lookup::Ambiguous(matches) => Err(ResolveError::AmbiguousVersion {
                name: name.to_owned(),
                version: version.to_owned(),
                matches,
            }),
            Lookup::AmbiguousLabel(versions) => Err(ResolveError::AmbiguousLabel {
                name: name.to_owned(),
                label: version.to_owned(),
                versions,
            }),
        }
    }

    pub fn resolve(&self, name: &str, selector: &Selector) -> Result<Arc<Version>, ResolveError> {
        let entry = self.get(name).ok_or_else(|| ResolveError::UnknownScript {
            name: name.to_owned(),
        })?;
        if entry.disabled {
            return Err(ResolveError::Disabled {
                name: name.to_owned(),
            });
        }
        let tag = match selector {
            Selector::Latest => "latest",
            Selector::Tag(tag) => tag,
            Selector::Version(version) => return self.find_version(name, version),
        };
        entry
            .tags
            .get(tag)
            .cloned()
            .ok_or_else(|| ResolveError::UnknownTag {
                name: name.to_owned(),
                tag: tag.to_owned(),
            })
    }

    pub fn list(&self, filter: &ScriptFilter) -> Vec<ScriptSummary> {
        self.scripts
            .iter()
            .filter_map(|(name, entry)| {
                let latest = entry.latest()?;
                entry.matches(name, latest, filter).then(|| ScriptSummary {
                    name: name.clone(),
                    disabled: entry.disabled,
                    latest: latest.id.clone(),
                    runtime: latest.manifest.runtime.clone(),
                    description: latest.manifest.description.clone(),
                    labels: latest.manifest.tags.clone(),
                    tags: entry.tags.keys().cloned().collect(),
                    versions: entry.versions.len(),
                    created_at: entry.created_at.clone(),
                    updated_at: latest.created_at.clone(),
                })
            })
            .collect()
    }

    pub fn script(&self, name: &str) -> Option<ScriptDetail> {
        let entry = self.get(name)?;
        let latest = entry.latest()?;
        Some(ScriptDetail {
            name: name.to_owned(),
            disabled: entry.disabled,
            tags: entry
                .tags
                .iter()
                .map(|(tag, v)| (tag.clone(), v.id.clone()))
                .collect(),
            latest: latest.id.clone(),
            created_at: entry.created_at.clone(),
            description: latest.manifest.description.clone(),
            runtime: latest.manifest.runtime.clone(),
            labels: latest.manifest.tags.clone(),
            versions: entry.versions.len(),
            label: latest.manifest.label.clone(),
            author: latest.manifest.author.clone(),
        })
    }

    pub fn versions(&self, name: &str) -> Option<Vec<VersionSummary>> {
        let entry = self.get(name)?;
        Some(
            entry
                .versions
                .iter()
                .rev()
                .map(|v| VersionSummary {
                    id: v.id.clone(),
                    created_at: v.created_at.clone(),
                    runtime: v.manifest.runtime.clone(),
                    entry: v.manifest.entry.clone(),
                    mode: v.manifest.mode,
                    description: v.manifest.description.clone(),
                    tags: entry.tags_of(&v.id),
                    files: v.files.len(),
                    size: v.size(),
                    registered_by: v.registered_by,
                    label: v.manifest.label.clone(),
                    author: v.manifest.author.clone(),
                    changelog: v.manifest.changelog.clone(),
                })
                .collect(),
        )
    }
}
