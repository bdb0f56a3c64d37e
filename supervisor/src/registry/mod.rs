//! The script registry: named scripts, their immutable content-addressed versions, and tags.
//!
//! SQLite (`<state>/registry.db`) is the durable copy, blobs and read-only version trees live
//! under `<state>/blobs` and `<state>/versions`, and an in-memory cache answers every read, so
//! resolving a script on the invocation path never touches the disk. Writes (register, tag,
//! disable) are serialised by one mutex around the database connection and update the cache
//! only after their transaction commits: the cache never shows what the disk does not hold.

mod bundle;
mod cache;
mod db;
mod digest;
mod error;
pub mod manifest;
mod params;
pub mod samples;
mod store;
mod summary;
mod version;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::SystemTime;

use serde::Serialize;
use serde_json::Value;

// The API document's name pattern is tested against the rule itself.
#[cfg(test)]
pub(crate) use self::bundle::is_valid_name;
use self::cache::{Cache, Lookup};
use self::db::{Db, VersionRow};
use self::digest::FileDigest;
pub use self::error::{FileError, RegisterError, RegistryError, ResolveError, TagError};
use self::params::ParamsSchema;
pub use self::params::Violation;
use self::store::Store;
pub use self::summary::{ScriptDetail, ScriptFilter, ScriptSummary, VersionSummary};
pub use self::version::{FileInfo, Registrant, Version};

/// Size limits applied to every bundle at registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistryLimits {
    /// Most files in one bundle.
    pub max_files: usize,
    /// Largest single file, decoded, in bytes.
    pub max_file_bytes: u64,
    /// Largest bundle (all files, decoded) in bytes.
    pub max_bundle_bytes: u64,
}

impl Default for RegistryLimits {
    fn default() -> Self {
        Self {
            max_files: 1000,
            max_file_bytes: 10 * 1024 * 1024,
            max_bundle_bytes: 50 * 1024 * 1024,
        }
    }
}

/// Which version of a script an invocation wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// Whatever the `latest` tag points at.
    Latest,
    /// Whatever this tag points at.
    Tag(String),
    /// This version id, a unique prefix of at least 7 hex digits, or a manifest `label`
    /// carried by exactly one version.
    Version(String),
}

impl Selector {
    /// The selector a request names with an optional version and an optional tag; `None`
    /// when it names both, which the API refuses rather than pick one.
    pub fn of(version: Option<&String>, tag: Option<&String>) -> Option<Selector> {
        match (version, tag) {
            (Some(_), Some(_)) => None,
            (Some(v), None) => Some(Selector::Version(v.clone())),
            (None, Some(t)) => Some(Selector::Tag(t.clone())),
            (None, None) => Some(Selector::Latest),
        }
    }
}

/// The answer to a registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Registered {
    /// Script name.
    pub name: String,
    /// The version id of the bundle.
    pub version: String,
    /// `false` when identical content was already registered (HTTP 200 rather than 201).
    pub created: bool,
}

/// The registry: see the module documentation.
#[derive(Debug)]
pub struct Registry {
    db: Mutex<Db>,
    store: Store,
    cache: RwLock<Cache>,
    limits: RegistryLimits,
}

impl Registry {
    /// Opens (creating) `<state_dir>/registry.db` (WAL, busy_timeout) and `<state_dir>/blobs`,
    /// `<state_dir>/versions`; loads every script, version and tag into memory and rebuilds any
    /// version tree that is missing.
    pub fn open(state_dir: &Path, limits: RegistryLimits) -> Result<Registry, RegistryError> {
        fs_err::create_dir_all(state_dir)?;
        let store = Store::open(state_dir)?;
        let db = Db::open(&state_dir.join("registry.db"))?;
        let cache = Cache::from_rows(db.load()?, &store)?;
        Ok(Registry {
            db: Mutex::new(db),
            store,
            cache: RwLock::new(cache),
            limits,
        })
    }

    /// Validates and stores a bundle (a `POST /v1/scripts` body) registered by nobody in
    /// particular (the samples runwarmd registers at start); see [`Registry::register_as`].
    pub fn register(
        &self,
        body: &Value,
        runtime_known: &dyn Fn(&str) -> bool,
    ) -> Result<Registered, RegisterError> {
        self.register_as(body, runtime_known, None)
    }

    /// Validates and stores a bundle (a `POST /v1/scripts` body). `runtime_known` says whether
    /// the manifest's runtime exists on this daemon; `by` is recorded with a new version (an
    /// identical re-registration keeps who registered it first).
    pub fn register_as(
        &self,
        body: &Value,
        runtime_known: &dyn Fn(&str) -> bool,
        by: Option<Registrant>,
    ) -> Result<Registered, RegisterError> {
        let bundle = bundle::parse_bundle(body, &self.limits)?;
        if !runtime_known(&bundle.manifest.runtime) {
            return Err(RegisterError::UnknownRuntime {
                runtime: bundle.manifest.runtime,
            });
        }
        let params = ParamsSchema::compile(bundle.manifest.params.as_ref())
            .map_err(|detail| RegisterError::InvalidSchema { detail })?;
        let files: Vec<FileInfo> = bundle
            .files
            .iter()
            .map(|f| FileInfo {
                path: f.path.clone(),
                size: f.contents.len() as u64,
                sha256: digest::sha256_hex(&f.contents),
                executable: f.executable,
            })
            .collect();
        let digests: Vec<FileDigest<'_>> = files
            .iter()
            .map(|f| FileDigest {
                path: &f.path,
                executable: f.executable,
                sha256: &f.sha256,
            })
            .collect();
        let id = digest::version_id(&bundle.manifest, &digests).map_err(|e| {
            RegisterError::InvalidManifest {
                detail: e.to_string(),
            }
        })?;
        let registered = |created| Registered {
            name: bundle.name.clone(),
            version: id.clone(),
            created,
        };

        let mut db = lock(&self.db);
        let exists = self
            .read_cache()
            .get(&bundle.name)
            .is_some_and(|entry| matches!(entry.find_version(&id), Lookup::Found(_)));
        if exists {
            // Re-registering is idempotent: identical content names the existing version and
            // leaves `latest` where it is, so a deploy hook that re-sends an old bundle does
            // not silently roll back a newer one.
            return Ok(registered(false));
        }
        for (info, file) in files.iter().zip(&bundle.files) {
            self.store.put_blob(&info.sha256, &file.contents)?;
        }
        // The tree exists before the row: a committed version always has its files.
        let root = self.store.materialise(&bundle.name, &id, &files)?;
        let row = VersionRow {
            name: bundle.name.clone(),
            id: id.clone(),
            manifest: serde_json::to_string(&bundle.manifest).map_err(|e| {
                RegisterError::InvalidManifest {
                    detail: e.to_string(),
                }
            })?,
            files: serde_json::to_string(&files).map_err(|e| RegisterError::InvalidBody {
                detail: e.to_string(),
            })?,
            created_at: now_rfc3339(),
            registered_by: by,
        };
        db.insert_version(&row)?;
        self.write_cache().insert_version(Arc::new(Version {
            name: row.name,
            id: row.id,
            manifest: bundle.manifest,
            root,
            created_at: row.created_at,
            files,
            registered_by: row.registered_by,
            params,
        }));
        Ok(registered(true))
    }

    /// Resolves a name and selector to a version, from memory only (the invocation hot path).
    pub fn resolve(&self, name: &str, selector: &Selector) -> Result<Arc<Version>, ResolveError> {
        self.read_cache().resolve(name, selector)
    }

    /// Every version of every script (the daemon prepares them at start).
    pub fn all_versions(&self) -> Vec<Arc<Version>> {
        self.read_cache().all_versions()
    }

    /// Ids of the versions a tag of an enabled script points at (`latest` included).
    pub fn tagged_versions(&self) -> Vec<String> {
        self.read_cache().tagged_versions()
    }

    /// Scripts matching `filter`, sorted by name.
    pub fn list(&self, filter: &ScriptFilter) -> Vec<ScriptSummary> {
        self.read_cache().list(filter)
    }

    /// One script's detail.
    pub fn script(&self, name: &str) -> Option<ScriptDetail> {
        self.read_cache().script(name)
    }

    /// A script's versions, newest first.
    pub fn versions(&self, name: &str) -> Option<Vec<VersionSummary>> {
        self.read_cache().versions(name)
    }

    /// One version by id or unique prefix (whether or not the script is disabled).
    pub fn version(&self, name: &str, version: &str) -> Option<Arc<Version>> {
        match self.read_cache().get(name)?.find_version(version) {
            Lookup::Found(found) => Some(Arc::clone(found)),
            Lookup::Missing | Lookup::Ambiguous(_) | Lookup::AmbiguousLabel(_) => None,
        }
    }

    /// One version by id, unique prefix or label (whether or not the script is disabled),
    /// saying why when there is none.
    pub fn find_version(&self, name: &str, version: &str) -> Result<Arc<Version>, ResolveError> {
        self.read_cache().find_version(name, version)
    }

    /// The contents of one file of a version. `path` must be one of the version's own file
    /// paths, compared as a string: nothing is joined onto a directory, so no path can reach
    /// outside the version. The blob's hash is checked, so a corrupted store is an error, never
    /// wrong content served as the version's.
    pub fn read_file(
        &self,
        name: &str,
        version: &str,
        path: &str,
    ) -> Result<(Arc<Version>, FileInfo, Vec<u8>), FileError> {
        let found = self.find_version(name, version)?;
        let info = found
            .files
            .iter()
            .find(|f| f.path == path)
            .cloned()
            .ok_or_else(|| FileError::UnknownFile {
                name: name.to_owned(),
                version: found.id.clone(),
                path: path.to_owned(),
            })?;
        let bytes = fs_err::read(self.store.blob_path(&info.sha256))
            .map_err(|e| FileError::Storage(RegistryError::Io(e)))?;
        if digest::sha256_hex(&bytes) != info.sha256 {
            return Err(FileError::Storage(RegistryError::Corrupt {
                name: name.to_owned(),
                version: found.id.clone(),
                detail: format!("the blob of {path} does not match its sha256"),
            }));
        }
        Ok((found, info, bytes))
    }

    /// Points `tag` at `version`, creating or moving it in one transaction; invocations see
    /// either the old or the new target, never neither. `latest` may be moved too (a rollback);
    /// the next registration of new content moves it again.
    pub fn set_tag(&self, name: &str, tag: &str, version: &str) -> Result<(), TagError> {
        if !bundle::is_valid_name(tag) {
            return Err(TagError::InvalidTag {
                tag: tag.to_owned(),
            });
        }
        let mut db = lock(&self.db);
        // A disabled script can still be re-tagged: that is how a rollback is prepared.
        let target = self.read_cache().find_version(name, version)?;
        db.set_tag(name, tag, &target.id, &now_rfc3339())?;
        if let Some(entry) = self.write_cache().get_mut(name) {
            entry.tags.insert(tag.to_owned(), target);
        }
        Ok(())
    }

    /// Disables (refuses new invocations of) or re-enables a script. Versions and tags stay.
    pub fn set_disabled(&self, name: &str, disabled: bool) -> Result<(), ResolveError> {
        let mut db = lock(&self.db);
        if self.read_cache().get(name).is_none() || !db.set_disabled(name, disabled)? {
            return Err(ResolveError::UnknownScript {
                name: name.to_owned(),
            });
        }
        if let Some(entry) = self.write_cache().get_mut(name) {
            entry.disabled = disabled;
        }
        Ok(())
    }

    // A panic while a guard is held cannot leave either structure half-updated: SQLite rolls an
    // open transaction back when it is dropped, and each cache update is a single insert or
    // assignment. So a poisoned lock is still safe to use, and one failed request must not
    // take the registry down for every other.
    fn read_cache(&self) -> RwLockReadGuard<'_, Cache> {
        self.cache.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_cache(&self) -> RwLockWriteGuard<'_, Cache> {
        self.cache.write().unwrap_or_else(PoisonError::into_inner)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}
