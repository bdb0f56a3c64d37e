//! The daemon's cgroup layer: one cgroup per executor under the daemon's own subtree, with
//! memory (no swap), pids and CPU limits, killed as a whole and read back for OOM and usage.
//!
//! Works on cgroup v2 and on v1 controller hierarchies (this build host is hybrid); every entry
//! point takes the cgroupfs root so tests run against fixture trees. Policy and the reasons for
//! hand-rolling the file layer: `docs/design/0002-cgroups.md`.

mod cgroupfs;
mod control_files;
mod error;
mod executor;
mod kill;
mod layout;
mod limits;
mod subtree;
mod sweep;
mod usage;

#[cfg(test)]
mod kernel_tests;

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use nix::fcntl::{Flock, FlockArg};

pub use error::CgroupError;
pub use executor::ExecutorCgroup;
pub use layout::Layout;
pub use usage::{CgroupStats, CpuCounters, CpuTime};

use control_files::SelfCgroup;
use kill::Member;
use layout::{Controller, Version};

/// The default cgroupfs root.
pub const DEFAULT_ROOT: &str = "/sys/fs/cgroup";

/// Limits for one executor; `None` leaves the inherited value.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CgroupLimits {
    pub memory_bytes: Option<u64>,
    pub pids: Option<u64>,
    pub cpu_cores: Option<f64>,
}

/// The daemon's parent cgroup in one hierarchy, and which of its controllers work.
#[derive(Debug, Clone)]
struct Parent {
    version: Version,
    active: Vec<Controller>,
    dir: PathBuf,
}

/// The daemon's cgroup subtree: creates executor cgroups below it.
#[derive(Debug)]
pub struct Cgroups {
    layout: Layout,
    parents: Vec<Parent>,
    /// An exclusive `flock` on each parent directory, held while the daemon lives: how a
    /// sweeping daemon, in whatever pid namespace, tells this one alive (see `sweep`). Never
    /// read: holding the files is the point.
    _locks: Vec<Flock<File>>,
}

/// A name for this daemon's subtree, unique on the host: our pid (for people reading the tree;
/// `sweep_stale` goes by the subtree's lock, not by the pid) and a random tail.
pub fn instance_name() -> String {
    let id = uuid::Uuid::now_v7().simple().to_string();
    // The random tail of a v7 uuid; the head is a timestamp that adds nothing here.
    format!("{}-{}", std::process::id(), &id[id.len() - 8..])
}

pub(crate) fn validate_name(name: &str) -> Result<(), CgroupError> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= 200
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(CgroupError::InvalidName {
            name: name.to_owned(),
        })
    }
}

fn own_cgroup() -> SelfCgroup {
    std::fs::read_to_string("/proc/self/cgroup")
        .map(|t| SelfCgroup::parse(&t))
        .unwrap_or_default()
}

/// Creates the daemon's parent directory with `make` and takes its lock. Another daemon's sweep
/// may find the directory in the moment between mkdir and flock, take it for a dead daemon's and
/// remove it; then the lock sits on a removed directory and the directory is made again.
fn make_locked(
    make: impl Fn() -> Result<PathBuf, CgroupError>,
) -> Result<(PathBuf, Flock<File>), CgroupError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let dir = make()?;
        let locked = File::open(&dir)
            .map_err(|e| CgroupError::io("open", &dir, e))
            .and_then(|f| {
                Flock::lock(f, FlockArg::LockExclusiveNonblock)
                    .map_err(|(_, errno)| CgroupError::io("lock", &dir, errno.into()))
            });
        let still_there = |lock: &Flock<File>| match (std::fs::metadata(&dir), lock.metadata()) {
            (Ok(path), Ok(held)) => (path.dev(), path.ino()) == (held.dev(), held.ino()),
            _ => false,
        };
        match locked {
            Ok(lock) if still_there(&lock) => return Ok((dir, lock)),
            Ok(_) if attempt >= 3 => {
                return Err(CgroupError::io(
                    "lock (removed by another daemon's sweep each time)",
                    &dir,
                    std::io::Error::from(std::io::ErrorKind::NotFound),
                ));
            }
            Err(e) if attempt >= 3 => return Err(e),
            Ok(_) | Err(_) => {}
        }
    }
}

impl Cgroups {
    /// Detects the layout under `root`, creates the daemon's parent cgroup(s) `subtree` (e.g.
    /// `runwarm/<instance>`) below the daemon's own cgroup, and measures which controllers work.
    /// Fails when cgroups are not usable at all; [`CgroupError::hint`] says how to fix it.
    pub fn detect(root: &Path, subtree: &str) -> Result<Cgroups, CgroupError> {
        Self::detect_with(root, subtree, &own_cgroup())
    }

    fn detect_with(root: &Path, subtree: &str, own: &SelfCgroup) -> Result<Cgroups, CgroupError> {
        let components: Vec<&str> = subtree.split('/').filter(|c| !c.is_empty()).collect();
        for c in &components {
            validate_name(c)?;
        }
        if components.is_empty() {
            return Err(CgroupError::InvalidName {
                name: subtree.to_owned(),
            });
        }
        let layout = layout::detect_layout(root).ok_or_else(|| CgroupError::NoCgroupFs {
            root: root.to_path_buf(),
        })?;
        let mut parents = Vec::new();
        let mut locks = Vec::new();
        for h in layout::plan_hierarchies(root, layout, own) {
            let (dir, lock) = make_locked(|| match h.version {
                Version::V2 => subtree::prepare_v2(&h, &components),
                Version::V1 => {
                    let dir = components.iter().fold(h.base.clone(), |d, c| d.join(c));
                    cgroupfs::make_dir_all(&dir)?;
                    Ok(dir)
                }
            })?;
            locks.push(lock);
            let active = subtree::measure_active(&h, &dir);
            parents.push(Parent {
                version: h.version,
                active,
                dir,
            });
        }
        let cgroups = Cgroups {
            layout,
            parents,
            _locks: locks,
        };
        let limiting = [Controller::Memory, Controller::Pids, Controller::Cpu];
        if !cgroups
            .parents
            .iter()
            .any(|p| p.active.iter().any(|c| limiting.contains(c)))
        {
            let path = cgroups
                .parents
                .first()
                .map_or_else(|| root.to_path_buf(), |p| p.dir.clone());
            // Nothing will run there: do not leave the directories just made behind.
            let _ = cgroups.remove_parents();
            return Err(CgroupError::NoControllers {
                path,
                wanted: "memory, pids, cpu".into(),
            });
        }
        Ok(cgroups)
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Whether executor cgroups live on v2 (`true`) or on v1 controller hierarchies.
    pub fn uses_v2(&self) -> bool {
        self.parents.iter().any(|p| p.version == Version::V2)
    }

    /// The controllers that were found working under the daemon's subtree, by name
    /// (`memory`, `pids`, `cpu`, `cpuacct`, `freezer`), for `/v1/info` and the startup log.
    pub fn active_controllers(&self) -> Vec<String> {
        self.parents
            .iter()
            .flat_map(|p| p.active.iter().map(|c| c.name().to_owned()))
            .collect()
    }

    /// The daemon's parent cgroup directories (one on v2, one per hierarchy on v1).
    pub fn parent_dirs(&self) -> Vec<PathBuf> {
        self.parents.iter().map(|p| p.dir.clone()).collect()
    }

    /// Creates the cgroup `id` for one executor and applies `limits` where the controller is
    /// active. Memory is limited without swap. On error nothing is left behind.
    pub fn create(&self, id: &str, limits: &CgroupLimits) -> Result<ExecutorCgroup, CgroupError> {
        validate_name(id)?;
        let mut cgroup = ExecutorCgroup {
            members: Vec::new(),
            configured_memory: limits.memory_bytes,
            removed: AtomicBool::new(false),
            usage: std::sync::OnceLock::new(),
        };
        for p in &self.parents {
            let dir = p.dir.join(id);
            subtree::make_executor_dir(&dir)?;
            cgroup.members.push(Member {
                version: p.version,
                controllers: p.active.clone(),
                dir,
            });
        }
        // `cgroup` removes what was made if a write fails (Drop).
        for m in &cgroup.members {
            let writes = limits::plan_writes(m.version, &m.controllers, limits, &m.dir)?;
            limits::apply(&m.dir, &writes)?;
        }
        Ok(cgroup)
    }

    /// Removes the daemon's (empty) parent cgroups, at shutdown after every executor is gone.
    pub fn remove_parents(&self) -> Result<(), CgroupError> {
        for p in &self.parents {
            cgroupfs::remove_dir_with_retry(&p.dir, std::time::Duration::from_millis(500))?;
        }
        Ok(())
    }

    /// At daemon start: kills and removes the cgroups under `parent` (e.g. `runwarm`) that a
    /// crashed daemon left; a live daemon's subtree (named by [`instance_name`]) is left alone.
    /// Returns how many executor cgroups were swept.
    pub fn sweep_stale(root: &Path, parent: &str) -> usize {
        sweep::sweep_stale(root, parent, &own_cgroup())
    }
}

#[cfg(test)]
mod tests;
