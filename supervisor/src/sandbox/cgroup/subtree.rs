//! Creating the daemon's parent cgroups and executor directories, and measuring which
//! controllers really work there.

use std::io;
use std::path::{Path, PathBuf};

use super::control_files::controller_list;
use super::layout::{Controller, Hierarchy, Version};
use super::{CgroupError, cgroupfs};

/// The leaf the daemon moves itself into when its own v2 cgroup must become an inner node.
const DAEMON_LEAF: &str = "runwarmd";

/// The file whose presence shows a controller is enabled in a cgroup directory.
fn probe_file(version: Version, controller: Controller) -> &'static str {
    match (version, controller) {
        (Version::V2, Controller::Memory) => "memory.max",
        (Version::V2, Controller::Pids) => "pids.max",
        (Version::V2, Controller::Cpu) => "cpu.max",
        (Version::V2, Controller::Cpuacct) => "cpu.stat",
        (Version::V2, Controller::Freezer) => "cgroup.freeze",
        (Version::V1, Controller::Memory) => "memory.limit_in_bytes",
        (Version::V1, Controller::Pids) => "pids.max",
        (Version::V1, Controller::Cpu) => "cpu.cfs_quota_us",
        (Version::V1, Controller::Cpuacct) => "cpuacct.usage",
        (Version::V1, Controller::Freezer) => "freezer.state",
    }
}

/// The controllers whose control files are readable in `dir` (the daemon's parent cgroup):
/// measured, not assumed from what is mounted.
pub(crate) fn measure_active(h: &Hierarchy, dir: &Path) -> Vec<Controller> {
    let mut candidates = h.controllers.clone();
    if h.version == Version::V2 {
        // Freezing is part of v2 itself (cgroup.freeze, Linux 5.2+), not a controller.
        candidates.push(Controller::Freezer);
    }
    candidates
        .into_iter()
        .filter(|&c| cgroupfs::read_optional(&dir.join(probe_file(h.version, c))).is_some())
        .collect()
}

fn enable_controllers(dir: &Path, wanted: &[Controller]) -> Result<(), CgroupError> {
    let available = cgroupfs::read_optional(&dir.join("cgroup.controllers"))
        .map(|t| controller_list(&t))
        .unwrap_or_default();
    let enabled = cgroupfs::read_optional(&dir.join("cgroup.subtree_control"))
        .map(|t| controller_list(&t))
        .unwrap_or_default();
    let missing: Vec<String> = wanted
        .iter()
        .map(|c| c.name())
        .filter(|n| available.iter().any(|a| a == n) && !enabled.iter().any(|e| e == n))
        .map(|n| format!("+{n}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    cgroupfs::write(&dir.join("cgroup.subtree_control"), &missing.join(" "))
}

/// v2's "no internal processes" rule: a non-root cgroup with processes cannot hand controllers
/// to children. The daemon moves itself into a leaf of its own cgroup, as systemd's delegation
/// documentation prescribes.
fn move_self_to_leaf(base: &Path) -> Result<(), CgroupError> {
    let leaf = base.join(DAEMON_LEAF);
    cgroupfs::make_dir_all(&leaf)?;
    cgroupfs::write(&leaf.join("cgroup.procs"), &std::process::id().to_string())
}

/// Creates `base/components…` on v2 with memory, pids and cpu enabled down to the parent, and
/// returns the parent directory.
pub(crate) fn prepare_v2(h: &Hierarchy, components: &[&str]) -> Result<PathBuf, CgroupError> {
    let wanted: Vec<Controller> = h
        .controllers
        .iter()
        .copied()
        .filter(|c| Controller::V2_WANTED.contains(c))
        .collect();
    match enable_controllers(&h.base, &wanted) {
        Err(CgroupError::Io { source, .. })
            // The real root is exempt, so EBUSY means a delegated cgroup or a container's
            // namespace root, where the daemon shares its cgroup with nothing it must keep.
            if source.raw_os_error() == Some(libc::EBUSY) =>
        {
            move_self_to_leaf(&h.base)?;
            enable_controllers(&h.base, &wanted)?;
        }
        other => other?,
    }
    let mut dir = h.base.clone();
    for c in components {
        dir.push(c);
        cgroupfs::make_dir_all(&dir)?;
        enable_controllers(&dir, &wanted)?;
    }
    Ok(dir)
}

/// Creates an executor's cgroup directory. An existing one is adopted only when empty (an
/// earlier attempt with the same id that failed half-way); one with processes is an error.
pub(crate) fn make_executor_dir(dir: &Path) -> Result<(), CgroupError> {
    match cgroupfs::make_dir(dir) {
        Err(CgroupError::Io { source, .. }) if source.kind() == io::ErrorKind::AlreadyExists => {
            let procs = dir.join("cgroup.procs");
            match cgroupfs::read_pids(&procs) {
                Ok(pids) if pids.is_empty() => Ok(()),
                Ok(_) => Err(CgroupError::io(
                    "create (it exists and has processes)",
                    dir,
                    io::Error::from(io::ErrorKind::AlreadyExists),
                )),
                Err(e) => Err(e),
            }
        }
        other => other,
    }
}
