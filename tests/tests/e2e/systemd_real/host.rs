//! What the container touches on the host and is put back: sysctls systemd raises as PID 1,
//! and the cgroups the container runs in.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Restores sysctls that systemd as PID 1 raises on the host (they are not namespaced).
pub(super) struct SysctlGuard(Vec<(PathBuf, String)>);

impl SysctlGuard {
    pub(super) fn save() -> SysctlGuard {
        // The values systemd raises them to: one already there was raised by a container that
        // still runs (a concurrent test run), whose own guard restores the host's value.
        let raised = [
            ("fs/file-max", "9223372036854775807"),
            ("fs/nr_open", "1073741816"),
        ];
        let saved = raised
            .iter()
            .filter_map(|(k, max)| {
                let p = Path::new("/proc/sys").join(k);
                let v = std::fs::read_to_string(&p).ok()?;
                (v.trim() != *max).then_some((p, v))
            })
            .collect();
        SysctlGuard(saved)
    }
}

impl Drop for SysctlGuard {
    fn drop(&mut self) {
        for (path, value) in &self.0 {
            if std::fs::read_to_string(path).ok().as_deref() != Some(value.as_str())
                && let Err(e) = std::fs::write(path, value.trim())
            {
                let _ = writeln!(
                    std::io::stderr(),
                    "systemd_real: cannot restore {}: {e}",
                    path.display()
                );
            }
        }
    }
}

/// The cgroups the container runs in: a child of the test's own cgroup in each hierarchy, so
/// whatever limits the test has also bound the container, and the whole tree is removed after.
pub(super) fn container_cgroups(id: &str) -> Vec<PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mut dirs = Vec::new();
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let mount = match controllers {
            "" => "unified",
            "name=systemd" => "systemd",
            c => c,
        };
        let mut base = Path::new("/sys/fs/cgroup").join(mount);
        if controllers.is_empty() && !base.exists() {
            // A pure v2 host mounts the unified hierarchy at /sys/fs/cgroup itself.
            base = PathBuf::from("/sys/fs/cgroup");
        }
        let base = base.join(path.trim_start_matches('/'));
        if !base.join("cgroup.procs").exists() {
            continue;
        }
        let dir = base.join(format!("runwarm-systemd-{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        // A v1 cpuset cgroup takes no process until it has cpus and memory nodes.
        for f in ["cpuset.cpus", "cpuset.mems"] {
            if dir.join(f).exists() {
                let v = std::fs::read_to_string(base.join(f)).unwrap_or_default();
                std::fs::write(dir.join(f), v.trim()).unwrap();
            }
        }
        dirs.push(dir);
    }
    dirs
}

/// Removes a cgroup tree bottom-up (a cgroup directory goes only once its children are gone).
pub(super) fn remove_cgroup_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    let until = Instant::now() + Duration::from_secs(5);
    while std::fs::remove_dir(dir).is_err_and(|e| e.kind() != std::io::ErrorKind::NotFound)
        && Instant::now() < until
    {
        std::thread::sleep(Duration::from_millis(50));
    }
}
