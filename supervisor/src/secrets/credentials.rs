//! Systemd credentials (`LoadCredential=`, `$CREDENTIALS_DIRECTORY/<NAME>`): read from their
//! directory whenever one is asked for and never copied into the store, which cannot change them.

use std::fs;
use std::io::Read;

use super::{MAX_VALUE_BYTES, SecretStore, check_name, check_value};

impl SecretStore {
    /// A systemd credential's value, if there is one of that name that fits the limits.
    pub(super) fn credential(&self, name: &str) -> Option<String> {
        let dir = self.credentials.as_ref()?;
        check_name(name).ok()?;
        let f = fs::File::open(dir.join(name)).ok()?;
        let mut bytes = Vec::new();
        f.take(MAX_VALUE_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .ok()?;
        let value = String::from_utf8(bytes).ok()?;
        if check_value(&value).is_err() {
            tracing::warn!(
                secret = name,
                "systemd credential ignored: empty, over 64 KiB, or holds NUL"
            );
            return None;
        }
        Some(value)
    }

    pub(super) fn credential_names(&self) -> Vec<String> {
        let Some(dir) = &self.credentials else {
            return Vec::new();
        };
        let Ok(entries) = fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| check_name(n).is_ok())
            .collect();
        names.sort();
        names
    }
}
