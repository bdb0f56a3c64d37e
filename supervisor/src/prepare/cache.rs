//! The prepare cache on disk: `<state>/prepare/deps/<runtime>/<key>` (dependency environments,
//! shared by every version with the same inputs), `<state>/prepare/build/<key>` (one version's
//! build), `<state>/prepare/toolchain/<runtime>/<key>` (a runtime's own seed, such as Go's
//! compiled standard library), `<state>/prepare/tmp` (steps in progress). An entry appears only
//! by `rename` of a
//! finished step's output, so a crash mid-prepare leaves at most a folder under `tmp`, which the
//! next start removes; nothing half-built is ever found under a key.
//!
//! Each entry has a sibling `<key>.json` with its size and last use, read at start, so listing
//! and eviction never walk the trees.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Which level of the cache an entry belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// A dependency environment.
    Deps,
    /// A version's build.
    Build,
    /// A runtime's own seed (Go's compiled standard library): made from no script's files.
    Toolchain,
}

/// What is known of one cache entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryMeta {
    /// Its level.
    pub level: Level,
    /// The runtime that made it.
    pub runtime: String,
    /// Its key (the folder's name).
    pub key: String,
    /// Bytes on disk.
    pub size_bytes: u64,
    /// When it was made (seconds since the epoch).
    pub created_s: u64,
    /// When a version last used it (seconds since the epoch).
    pub used_s: u64,
}

/// The cache's folders and its index of entries.
#[derive(Debug)]
pub struct Cache {
    root: PathBuf,
    entries: BTreeMap<(Level, String), EntryMeta>,
}

impl Cache {
    /// Opens `<state>/prepare`, removing whatever an interrupted step left in `tmp`, and
    /// indexes the entries.
    pub fn open(state_dir: &Path) -> std::io::Result<Cache> {
        let root = state_dir.join("prepare");
        let tmp = root.join("tmp");
        if tmp.exists() {
            let _ = make_writable(&tmp);
            fs_err::remove_dir_all(&tmp)?;
        }
        for dir in [
            root.join("deps"),
            root.join("build"),
            root.join("toolchain"),
            tmp,
        ] {
            fs_err::create_dir_all(&dir)?;
        }
        let mut cache = Cache {
            root,
            entries: BTreeMap::new(),
        };
        cache.index()?;
        Ok(cache)
    }

    fn index(&mut self) -> std::io::Result<()> {
        let mut dirs = Vec::new();
        for rt in fs_err::read_dir(self.root.join("deps"))? {
            let rt = rt?;
            if rt.file_type()?.is_dir() {
                let runtime = rt.file_name().to_string_lossy().into_owned();
                for e in fs_err::read_dir(rt.path())? {
                    dirs.push((Level::Deps, runtime.clone(), e?.path()));
                }
            }
        }
        for e in fs_err::read_dir(self.root.join("build"))? {
            dirs.push((Level::Build, String::new(), e?.path()));
        }
        for rt in fs_err::read_dir(self.root.join("toolchain"))? {
            let rt = rt?;
            if rt.file_type()?.is_dir() {
                let runtime = rt.file_name().to_string_lossy().into_owned();
                for e in fs_err::read_dir(rt.path())? {
                    dirs.push((Level::Toolchain, runtime.clone(), e?.path()));
                }
            }
        }
        let now = now_s();
        for (level, runtime, path) in dirs {
            if !path.is_dir() {
                continue;
            }
            let key = file_name(&path);
            let meta = fs_err::read(meta_path(&path))
                .ok()
                .and_then(|b| serde_json::from_slice::<EntryMeta>(&b).ok())
                .filter(|m| m.key == key && m.level == level)
                .unwrap_or_else(|| EntryMeta {
                    level,
                    runtime,
                    key: key.clone(),
                    size_bytes: tree_size(&path),
                    created_s: now,
                    used_s: now,
                });
            self.entries.insert((level, key), meta);
        }
        Ok(())
    }

    /// Where an entry lives.
    pub fn path(&self, level: Level, runtime: &str, key: &str) -> PathBuf {
        match level {
            Level::Deps => self.root.join("deps").join(runtime).join(key),
            Level::Build => self.root.join("build").join(key),
            Level::Toolchain => self.root.join("toolchain").join(runtime).join(key),
        }
    }

    /// A fresh folder under `tmp` for a step in progress.
    pub fn scratch(&self, what: &str) -> std::io::Result<PathBuf> {
        let dir = self
            .root
            .join("tmp")
            .join(format!("{what}-{}", uuid::Uuid::now_v7().simple()));
        fs_err::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// The entry, if it is complete on disk; marks it used.
    pub fn hit(&mut self, level: Level, runtime: &str, key: &str) -> Option<PathBuf> {
        let path = self.path(level, runtime, key);
        if !path.is_dir() {
            self.entries.remove(&(level, key.to_owned()));
            return None;
        }
        if let Some(meta) = self.entries.get_mut(&(level, key.to_owned())) {
            meta.used_s = now_s();
            let _ = write_meta(&path, meta);
        }
        Some(path)
    }

    /// Moves a finished step's output into the cache under its key.
    pub fn commit(
        &mut self,
        level: Level,
        runtime: &str,
        key: &str,
        output: &Path,
    ) -> std::io::Result<PathBuf> {
        let path = self.path(level, runtime, key);
        if let Some(parent) = path.parent() {
            fs_err::create_dir_all(parent)?;
        }
        if path.exists() {
            // Another daemon (or a step not deduplicated) finished first: keep the first.
            let _ = make_writable(output);
            fs_err::remove_dir_all(output)?;
        } else {
            fs_err::rename(output, &path)?;
        }
        let now = now_s();
        let meta = EntryMeta {
            level,
            runtime: runtime.to_owned(),
            key: key.to_owned(),
            size_bytes: tree_size(&path),
            created_s: now,
            used_s: now,
        };
        write_meta(&path, &meta)?;
        self.entries.insert((level, key.to_owned()), meta);
        Ok(path)
    }

    /// Every entry.
    pub fn entries(&self) -> impl Iterator<Item = &EntryMeta> {
        self.entries.values()
    }

    /// Removes entries no live version uses: first every one unused for longer than
    /// `retention`, then the least recently used until the total is at most `max_bytes`.
    /// Returns what was removed.
    pub fn evict(
        &mut self,
        in_use: &dyn Fn(Level, &str) -> bool,
        max_bytes: u64,
        retention: Duration,
    ) -> Vec<EntryMeta> {
        let now = now_s();
        let mut candidates: Vec<EntryMeta> = self
            .entries
            .values()
            .filter(|m| !in_use(m.level, &m.key))
            .cloned()
            .collect();
        candidates.sort_by_key(|m| m.used_s);
        let mut total: u64 = self.entries.values().map(|m| m.size_bytes).sum();
        let mut removed = Vec::new();
        for meta in candidates {
            let stale = now.saturating_sub(meta.used_s) > retention.as_secs();
            // A toolchain seed serves every version of its runtime: only disuse removes it.
            if !stale && (total <= max_bytes || meta.level == Level::Toolchain) {
                continue;
            }
            let path = self.path(meta.level, &meta.runtime, &meta.key);
            // Renamed away first, so no reader finds a half-deleted entry under its key.
            let Ok(doomed) = self.scratch("evicted") else {
                continue;
            };
            let _ = fs_err::remove_dir(&doomed);
            if fs_err::rename(&path, &doomed).is_err() {
                continue;
            }
            let _ = fs_err::remove_file(meta_path(&path));
            let _ = make_writable(&doomed);
            let _ = fs_err::remove_dir_all(&doomed);
            total = total.saturating_sub(meta.size_bytes);
            self.entries.remove(&(meta.level, meta.key.clone()));
            removed.push(meta);
        }
        removed
    }
}

/// A cache key: hex sha256 over length-prefixed parts, so no two part lists collide.
pub fn key(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    hex::encode(h.finalize())
}

fn meta_path(entry: &Path) -> PathBuf {
    let mut name = entry.as_os_str().to_owned();
    name.push(".json");
    PathBuf::from(name)
}

fn write_meta(entry: &Path, meta: &EntryMeta) -> std::io::Result<()> {
    let json = serde_json::to_vec(meta).map_err(std::io::Error::other)?;
    let tmp = meta_path(entry).with_extension("json.tmp");
    fs_err::write(&tmp, json)?;
    fs_err::rename(tmp, meta_path(entry))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Bytes used by a tree (files' lengths; links not followed).
pub fn tree_size(path: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(meta) = e.path().symlink_metadata() else {
                continue;
            };
            if meta.is_dir() {
                stack.push(e.path());
            } else {
                total += meta.len();
            }
        }
    }
    total
}

/// Tools such as Go's module cache write read-only trees; removal needs write permission on
/// every directory.
pub fn make_writable(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let meta = dir.symlink_metadata()?;
        if !meta.is_dir() {
            continue;
        }
        let mode = meta.permissions().mode();
        if mode & 0o700 != 0o700 {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode | 0o700))?;
        }
        if let Ok(entries) = std::fs::read_dir(&dir) {
            stack.extend(entries.flatten().map(|e| e.path()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(cache: &mut Cache, level: Level, key: &str, bytes: usize) -> PathBuf {
        let out = cache.scratch("t").unwrap();
        std::fs::write(out.join("f"), vec![0u8; bytes]).unwrap();
        cache.commit(level, "python3", key, &out).unwrap()
    }

    #[test]
    fn committed_entries_are_found_and_survive_a_reopen_while_tmp_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = Cache::open(dir.path()).unwrap();
        let path = entry(&mut cache, Level::Deps, "k1", 10);
        assert_eq!(cache.hit(Level::Deps, "python3", "k1"), Some(path));
        let half = cache.scratch("crashed").unwrap();
        std::fs::write(half.join("partial"), b"x").unwrap();
        drop(cache);
        let mut cache = Cache::open(dir.path()).unwrap();
        assert!(
            !half.exists(),
            "an interrupted step's folder is removed at open"
        );
        assert!(cache.hit(Level::Deps, "python3", "k1").is_some());
        assert_eq!(cache.entries().next().unwrap().size_bytes, 10);
        assert!(cache.hit(Level::Deps, "python3", "k2").is_none());
    }

    #[test]
    fn eviction_spares_entries_in_use_and_removes_the_least_recently_used_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = Cache::open(dir.path()).unwrap();
        entry(&mut cache, Level::Deps, "old", 100);
        entry(&mut cache, Level::Build, "used", 100);
        entry(&mut cache, Level::Deps, "new", 100);
        for (k, t) in [("old", 1), ("used", 0), ("new", 2)] {
            cache
                .entries
                .values_mut()
                .find(|m| m.key == k)
                .unwrap()
                .used_s = t;
        }
        let long = Duration::from_secs(u64::MAX / 2);
        let removed = cache.evict(&|_, k| k == "used", 150, long);
        let keys: Vec<&str> = removed.iter().map(|m| m.key.as_str()).collect();
        assert_eq!(keys, ["old", "new"], "oldest first, the one in use never");
        assert!(cache.hit(Level::Build, "", "used").is_some());
        assert!(cache.hit(Level::Deps, "python3", "old").is_none());
        // Under the limit nothing goes unless it outlived the retention.
        assert!(cache.evict(&|_, _| false, 1 << 30, long).is_empty());
        for m in cache.entries.values_mut() {
            m.used_s = 0;
        }
        let stale = cache.evict(&|_, _| false, 1 << 30, Duration::from_secs(60));
        assert_eq!(stale.len(), 1, "unused past the retention: removed");
    }

    #[test]
    fn keys_separate_their_parts() {
        assert_ne!(key(&[b"ab", b"c"]), key(&[b"a", b"bc"]));
        assert_eq!(key(&[b"x"]).len(), 64);
    }
}
