//! The store's file, `secrets.json`: read (and its mode tightened) at open, replaced atomically
//! on every change; apart from the store's operations as the one part that touches the disk.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use serde::{Deserialize, Serialize};

use super::{FILE, Inner, SecretError, SecretStore, Stored};

#[derive(Default, Serialize, Deserialize)]
struct StoreFile {
    secrets: BTreeMap<String, Stored>,
}

impl SecretStore {
    /// Opens (or starts) the store under `state_dir`; `credentials` is systemd's
    /// `$CREDENTIALS_DIRECTORY`, if the daemon was given one.
    pub fn open(state_dir: &Path, credentials: Option<PathBuf>) -> Result<Self, SecretError> {
        let path = state_dir.join(FILE);
        let io = |source| SecretError::Io {
            path: path.clone(),
            source,
        };
        let stored = match fs::File::open(&path) {
            Ok(mut f) => {
                // A store left readable by others (restored from a backup, say) is tightened
                // rather than refused: refusing would stop every script that needs a secret.
                let mode = f.metadata().map_err(io)?.permissions().mode();
                if mode & 0o077 != 0 {
                    tracing::warn!(path = %path.display(), mode = %format!("{:o}", mode & 0o777), "secret store was readable by others; set to 0600");
                    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).map_err(io)?;
                }
                let mut text = String::new();
                f.read_to_string(&mut text).map_err(io)?;
                // serde_json's messages give a position, never the text around it.
                let file: StoreFile = serde_json::from_str(&text)
                    .map_err(|e| io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
                file.secrets
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(io(e)),
        };
        Ok(SecretStore {
            path,
            credentials: credentials.filter(|d| d.is_dir()),
            inner: RwLock::new(Inner {
                stored,
                retired: BTreeMap::new(),
            }),
        })
    }

    /// Replaces the file atomically: a crash leaves the old store or the new one, never a mix,
    /// and the file is never readable by anyone but the daemon's user, not even for a moment.
    pub(super) fn persist(&self, stored: &BTreeMap<String, Stored>) -> Result<(), SecretError> {
        let io = |source| SecretError::Io {
            path: self.path.clone(),
            source,
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let tmp = dir.join(format!(".{FILE}.{}.tmp", std::process::id()));
        let file = StoreFile {
            secrets: stored.clone(),
        };
        let bytes = serde_json::to_vec(&file)
            .map_err(|e| io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
        // Left over by a crash of this same pid number: stale, never a store.
        let _ = fs::remove_file(&tmp);
        let written = (|| {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            // The mode given to open is masked by the umask, which can only clear bits; set it
            // again so the result does not depend on the umask at all.
            f.set_permissions(fs::Permissions::from_mode(0o600))?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, &self.path)?;
            fs::File::open(dir)?.sync_all()
        })();
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written.map_err(io)
    }
}
