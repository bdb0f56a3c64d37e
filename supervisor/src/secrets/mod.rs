//! The daemon's secret store: values a script names in its manifest (`secrets = ["NAME"]`) and
//! gets as environment variables inside its sandbox, and nowhere else.
//!
//! Values set through the API live in `secrets.json` under the state directory, mode 0600,
//! replaced atomically (write a temporary file, fsync, rename). Values an operator gives through
//! systemd (`LoadCredential=`, `$CREDENTIALS_DIRECTORY/<NAME>`) are read from there and never
//! copied: they are read-only here. Nothing in this module formats a value into an error, a
//! log line or a `Debug` output.
//!
//! The store's types and operations are here; the checks of names, values and a manifest's list
//! (`checks.rs`), the file on disk (`file.rs`) and the systemd credentials (`credentials.rs`)
//! each have a file, with the redaction of output in `redact.rs`.

mod checks;
mod credentials;
mod file;
mod redact;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::RwLock;

use serde::{Deserialize, Serialize};

pub use checks::{check_manifest, check_name, check_value};
pub use redact::{Redactor, StreamRedactor};

/// Largest value of one secret.
pub const MAX_VALUE_BYTES: usize = 4 * MAX_VALUE_CHARS;
/// Longest secret value in characters, the unit the API document's `maxLength` counts in: at
/// most four UTF-8 bytes each, so a value never exceeds [`MAX_VALUE_BYTES`].
pub const MAX_VALUE_CHARS: usize = 16 * 1024;
/// Most secrets one manifest may name: with [`MAX_VALUE_BYTES`] this bounds what secrets add to
/// an executor's environment at 512 KiB whatever values are set later, so with the manifest's
/// own `env` (at most 1 MiB, checked at registration) it stays under the 2 MiB that `execve`
/// takes for arguments and environment together.
pub const MAX_PER_MANIFEST: usize = 8;
/// Most secrets in the store, so its file stays small enough to rewrite on every change.
pub const MAX_STORED: usize = 1024;
/// Longest secret name.
const MAX_NAME: usize = 128;
/// Replaced values remembered (in memory only) per name, so output of executors started before
/// a change is still redacted until they are recycled.
const RETIRED_KEPT: usize = 8;
/// Names the launcher sets itself; a secret of that name would silently replace them.
const RESERVED: [&str; 4] = ["PATH", "LANG", "HOME", "TMPDIR"];

/// File name of the store under the state directory.
const FILE: &str = "secrets.json";

/// Why a secret operation failed. The messages name secrets, never values.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The name is not an environment variable name runwarm accepts.
    #[error("{0}")]
    InvalidName(String),
    /// The value cannot be passed as an environment variable.
    #[error("{0}")]
    InvalidValue(String),
    /// The store is full.
    #[error("the store already holds {MAX_STORED} secrets")]
    Full,
    /// The name is a systemd credential, which the daemon cannot change.
    #[error(
        "secret {0:?} is a systemd credential ($CREDENTIALS_DIRECTORY); change it in the unit's LoadCredential= instead"
    )]
    ReadOnly(String),
    /// No such secret.
    #[error("no secret named {0:?}")]
    NotFound(String),
    /// Reading or writing the store failed.
    #[error("secret store {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// Who set a secret (from the caller's peer credentials).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SetBy {
    /// The caller's uid.
    pub uid: u32,
    /// The caller's gid.
    pub gid: u32,
}

/// Where a secret comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Set with `runwarm secret set` (the state directory's `secrets.json`).
    Store,
    /// A systemd credential (`$CREDENTIALS_DIRECTORY`), read-only.
    Systemd,
}

/// One secret as `GET /v1/secrets` lists it: never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SecretInfo {
    /// Its name (the environment variable scripts see).
    pub name: String,
    /// Where it comes from.
    pub source: Source,
    /// Who set it (absent for systemd credentials).
    pub set_by: Option<SetBy>,
    /// When it was set, RFC 3339 (absent for systemd credentials).
    pub set_at: Option<String>,
    /// Scripts with a version that names it.
    pub used_by: Vec<String>,
}

#[derive(Clone, Serialize, Deserialize)]
struct Stored {
    value: String,
    set_by: Option<SetBy>,
    set_at: String,
}

#[derive(Default)]
struct Inner {
    stored: BTreeMap<String, Stored>,
    retired: BTreeMap<String, Vec<String>>,
}

/// The secret store.
pub struct SecretStore {
    path: PathBuf,
    credentials: Option<PathBuf>,
    inner: RwLock<Inner>,
}

impl std::fmt::Debug for SecretStore {
    // Written by hand: the derived one would print every value.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretStore")
            .field("path", &self.path)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl SecretStore {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        // Every writer leaves `Inner` consistent before it can panic.
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether a secret of this name exists (store or systemd).
    pub fn contains(&self, name: &str) -> bool {
        self.read().stored.contains_key(name) || self.credential(name).is_some()
    }

    /// A secret's value; systemd credentials come first, as the operator's explicit choice.
    pub fn get(&self, name: &str) -> Option<String> {
        self.credential(name)
            .or_else(|| self.read().stored.get(name).map(|s| s.value.clone()))
    }

    /// The values to redact from the output of a version naming `names`: the current ones and
    /// those replaced during this run (old executors may still hold them).
    pub fn redactor(&self, names: &[String]) -> Redactor {
        if names.is_empty() {
            return Redactor::default();
        }
        let mut values: Vec<String> = names.iter().filter_map(|n| self.get(n)).collect();
        let inner = self.read();
        for n in names {
            values.extend(inner.retired.get(n).into_iter().flatten().cloned());
        }
        Redactor::new(values)
    }

    /// Every secret, by name, without values; `used_by` maps a name to the scripts naming it.
    pub fn list(&self, used_by: &BTreeMap<String, BTreeSet<String>>) -> Vec<SecretInfo> {
        let users = |n: &str| {
            used_by
                .get(n)
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default()
        };
        let mut out: BTreeMap<String, SecretInfo> = self
            .read()
            .stored
            .iter()
            .map(|(n, s)| {
                let info = SecretInfo {
                    name: n.clone(),
                    source: Source::Store,
                    set_by: s.set_by,
                    set_at: Some(s.set_at.clone()),
                    used_by: users(n),
                };
                (n.clone(), info)
            })
            .collect();
        for n in self.credential_names() {
            let info = SecretInfo {
                name: n.clone(),
                source: Source::Systemd,
                set_by: None,
                set_at: None,
                used_by: users(&n),
            };
            out.insert(n, info);
        }
        out.into_values().collect()
    }

    /// Sets a secret and writes the store; returns whether it existed before.
    pub fn set(&self, name: &str, value: &str, by: Option<SetBy>) -> Result<bool, SecretError> {
        check_name(name).map_err(SecretError::InvalidName)?;
        check_value(value)?;
        if self.credential(name).is_some() {
            return Err(SecretError::ReadOnly(name.to_owned()));
        }
        let mut inner = self.write();
        if !inner.stored.contains_key(name) && inner.stored.len() >= MAX_STORED {
            return Err(SecretError::Full);
        }
        let mut next = inner.stored.clone();
        let old = next.insert(
            name.to_owned(),
            Stored {
                value: value.to_owned(),
                set_by: by,
                set_at: crate::invocation::now_rfc3339(),
            },
        );
        // The file is written before memory changes: a failed write leaves both as they were.
        self.persist(&next)?;
        inner.stored = next;
        if let Some(old) = &old {
            retire(&mut inner, name, &old.value);
        }
        Ok(old.is_some())
    }

    /// Removes a secret from the store.
    pub fn remove(&self, name: &str) -> Result<(), SecretError> {
        let mut inner = self.write();
        if !inner.stored.contains_key(name) {
            return Err(if self.credential(name).is_some() {
                SecretError::ReadOnly(name.to_owned())
            } else {
                SecretError::NotFound(name.to_owned())
            });
        }
        let mut next = inner.stored.clone();
        let old = next.remove(name);
        self.persist(&next)?;
        inner.stored = next;
        if let Some(old) = &old {
            retire(&mut inner, name, &old.value);
        }
        Ok(())
    }
}

fn retire(inner: &mut Inner, name: &str, value: &str) {
    let kept = inner.retired.entry(name.to_owned()).or_default();
    if !kept.iter().any(|v| v == value) {
        kept.push(value.to_owned());
        if kept.len() > RETIRED_KEPT {
            kept.remove(0);
        }
    }
}

#[cfg(test)]
mod tests;
