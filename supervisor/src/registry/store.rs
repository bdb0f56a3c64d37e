//! The content-addressed file store and the read-only per-version trees built from it.
//!
//! Blobs live at `blobs/<hh>/<rest-of-hex>` and are written to a temporary name, synced, then
//! renamed, so a blob path either holds complete contents or does not exist. A version's tree
//! at `versions/<hex>/` is built in a temporary directory and renamed into place whole, so a
//! crash never leaves a half tree under a real name. Files are 0444 (0555 when executable) and
//! directories 0555: executors see the tree read-only even without a read-only bind mount.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::RegistryError;
use super::version::FileInfo;

/// Prefix of temporary names; anything with it is debris from a crash and removed at open.
const TMP_PREFIX: &str = ".tmp-";

/// Makes temporary names unique within this process (the pid separates processes).
static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The blob and version directories under the state directory.
#[derive(Debug)]
pub(super) struct Store {
    blobs: PathBuf,
    versions: PathBuf,
}

impl Store {
    /// Creates the directories and removes temporary debris left by a crash.
    pub fn open(state_dir: &Path) -> Result<Store, RegistryError> {
        let store = Store {
            blobs: state_dir.join("blobs"),
            versions: state_dir.join("versions"),
        };
        fs_err::create_dir_all(&store.blobs)?;
        fs_err::create_dir_all(&store.versions)?;
        remove_debris(&store.versions)?;
        for shard in fs_err::read_dir(&store.blobs)? {
            let shard = shard?;
            if shard.file_type()?.is_dir() {
                remove_debris(&shard.path())?;
            }
        }
        Ok(store)
    }

    /// Where the blob with this hex sha256 lives.
    pub fn blob_path(&self, sha256: &str) -> PathBuf {
        let (shard, rest) = sha256.split_at(sha256.len().min(2));
        self.blobs.join(shard).join(rest)
    }

    /// Where the tree of the version with this id lives.
    pub fn version_root(&self, version_id: &str) -> PathBuf {
        self.versions
            .join(version_id.strip_prefix("sha256:").unwrap_or(version_id))
    }

    /// Stores `contents` under its hex sha256 unless a blob with that hash already exists.
    pub fn put_blob(&self, sha256: &str, contents: &[u8]) -> Result<(), RegistryError> {
        let path = self.blob_path(sha256);
        if path.is_file() {
            return Ok(());
        }
        let dir = path.parent().unwrap_or(&self.blobs);
        fs_err::create_dir_all(dir)?;
        let tmp = dir.join(tmp_name(sha256));
        let written = write_synced(&tmp, contents, 0o444).and_then(|()| {
            fs_err::rename(&tmp, &path)?;
            Ok(())
        });
        if written.is_err() {
            let _ = fs_err::remove_file(&tmp);
        }
        written
    }

    /// Builds the read-only tree of a version from its blobs, unless it already exists.
    pub fn materialise(
        &self,
        name: &str,
        version_id: &str,
        files: &[FileInfo],
    ) -> Result<PathBuf, RegistryError> {
        let root = self.version_root(version_id);
        if root.is_dir() {
            return Ok(root);
        }
        let tmp = self
            .versions
            .join(tmp_name(version_id.trim_start_matches("sha256:")));
        let built = self
            .build_tree(name, version_id, &tmp, files)
            .and_then(|()| {
                fs_err::rename(&tmp, &root)?;
                Ok(())
            });
        if let Err(error) = built {
            let _ = remove_tree(&tmp);
            // Another registry sharing the state directory may have won the rename; its tree
            // has the same contents, since the directory is named after them.
            if root.is_dir() {
                return Ok(root);
            }
            return Err(error);
        }
        Ok(root)
    }

    fn build_tree(
        &self,
        name: &str,
        version_id: &str,
        tmp: &Path,
        files: &[FileInfo],
    ) -> Result<(), RegistryError> {
        fs_err::create_dir(tmp)?;
        let mut dirs = Vec::new();
        for file in files {
            let blob = self.blob_path(&file.sha256);
            if !blob.is_file() {
                return Err(RegistryError::MissingBlob {
                    name: name.to_owned(),
                    version: version_id.to_owned(),
                    path: blob,
                });
            }
            // Paths were validated at registration (relative, no `..`), so this stays in `tmp`.
            let target = tmp.join(&file.path);
            if let Some(parent) = target.parent() {
                fs_err::create_dir_all(parent)?;
            }
            // A copy rather than a hard link: the same blob may be executable in one version
            // and not in another, and a link would share one mode.
            fs_err::copy(&blob, &target)?;
            let mode = if file.executable { 0o555 } else { 0o444 };
            fs_err::set_permissions(&target, std::fs::Permissions::from_mode(mode))?;
            let mut dir = Path::new(&file.path).parent();
            while let Some(d) = dir.filter(|d| !d.as_os_str().is_empty()) {
                dirs.push(tmp.join(d));
                dir = d.parent();
            }
        }
        // Deepest first, so no directory is sealed before its children are.
        dirs.sort_unstable_by(|a, b| b.cmp(a));
        dirs.dedup();
        dirs.push(tmp.to_path_buf());
        for dir in dirs {
            fs_err::set_permissions(&dir, std::fs::Permissions::from_mode(0o555))?;
        }
        Ok(())
    }
}

fn tmp_name(base: &str) -> String {
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{TMP_PREFIX}{base}-{}-{n}", std::process::id())
}

fn write_synced(path: &Path, contents: &[u8], mode: u32) -> Result<(), RegistryError> {
    let mut file = fs_err::File::create_new(path)?;
    file.write_all(contents)?;
    // Synced before the rename: after a power loss the name must not point at a short file.
    file.sync_all()?;
    fs_err::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// Removes every temporary entry directly inside `dir`.
fn remove_debris(dir: &Path) -> Result<(), RegistryError> {
    for entry in fs_err::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
            remove_tree(&entry.path())?;
        }
    }
    Ok(())
}

/// Removes a file or a tree whose directories may be read-only (0555 stops unlinking their
/// children for anyone but root).
fn remove_tree(path: &Path) -> Result<(), RegistryError> {
    let meta = fs_err::symlink_metadata(path)?;
    if meta.is_dir() {
        fs_err::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
        for entry in fs_err::read_dir(path)? {
            remove_tree(&entry?.path())?;
        }
        fs_err::remove_dir(path)?;
    } else {
        fs_err::remove_file(path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::digest::sha256_hex;

    fn file(path: &str, contents: &[u8], executable: bool) -> FileInfo {
        FileInfo {
            path: path.into(),
            size: contents.len() as u64,
            sha256: sha256_hex(contents),
            executable,
        }
    }

    fn mode(path: &Path) -> u32 {
        fs_err::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn blobs_are_content_addressed_and_deduplicated() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let hash = sha256_hex(b"hello");
        store.put_blob(&hash, b"hello").unwrap();
        store.put_blob(&hash, b"hello").unwrap();
        let path = store.blob_path(&hash);
        assert_eq!(
            path,
            dir.path().join("blobs").join(&hash[..2]).join(&hash[2..])
        );
        assert_eq!(fs_err::read(&path).unwrap(), b"hello");
        assert_eq!(fs_err::read_dir(path.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn trees_are_read_only_with_the_right_contents() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let files = [
            file("run.sh", b"#!/bin/sh", true),
            file("lib/deep/a.py", b"A", false),
        ];
        for (f, contents) in files.iter().zip([&b"#!/bin/sh"[..], b"A"]) {
            store.put_blob(&f.sha256, contents).unwrap();
        }
        let root = store.materialise("s", "sha256:abcd", &files).unwrap();
        assert_eq!(root, dir.path().join("versions/abcd"));
        assert_eq!(fs_err::read(root.join("lib/deep/a.py")).unwrap(), b"A");
        assert_eq!(mode(&root.join("run.sh")), 0o555);
        assert_eq!(mode(&root.join("lib/deep/a.py")), 0o444);
        for d in ["", "lib", "lib/deep"] {
            assert_eq!(mode(&root.join(d)), 0o555, "{d:?}");
        }
        // No temporary directory is left beside the tree.
        assert_eq!(
            fs_err::read_dir(dir.path().join("versions"))
                .unwrap()
                .count(),
            1
        );
    }

    #[test]
    fn a_missing_blob_fails_without_leaving_a_tree() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let err = store
            .materialise("s", "sha256:ef01", &[file("a", b"never stored", false)])
            .unwrap_err();
        assert!(matches!(err, RegistryError::MissingBlob { .. }), "{err:?}");
        assert_eq!(
            fs_err::read_dir(dir.path().join("versions"))
                .unwrap()
                .count(),
            0
        );
    }

    #[test]
    fn crash_debris_is_removed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let debris = dir.path().join("versions/.tmp-abcd-1-0/sub");
        fs_err::create_dir_all(&debris).unwrap();
        fs_err::write(debris.join("f"), b"x").unwrap();
        fs_err::set_permissions(&debris, std::fs::Permissions::from_mode(0o555)).unwrap();
        fs_err::create_dir_all(dir.path().join("blobs/ab")).unwrap();
        fs_err::write(dir.path().join("blobs/ab/.tmp-abcd-1-1"), b"half").unwrap();
        Store::open(dir.path()).unwrap();
        assert_eq!(
            fs_err::read_dir(dir.path().join("versions"))
                .unwrap()
                .count(),
            0
        );
        assert_eq!(
            fs_err::read_dir(dir.path().join("blobs/ab"))
                .unwrap()
                .count(),
            0
        );
    }
}
