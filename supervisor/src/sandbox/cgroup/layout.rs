//! Which cgroup hierarchies this host has and which of them the daemon uses (decided once).
//!
//! Detection looks at the directory layout under a root (default `/sys/fs/cgroup`), so fixture
//! trees in a tempdir exercise every branch. See `docs/design/0002-cgroups.md` for the policy.

use std::path::{Path, PathBuf};

use super::cgroupfs;
use super::control_files::{SelfCgroup, controller_list};

/// How the host mounts cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Pure cgroup v2: the root itself is the unified hierarchy (`cgroup.controllers` exists).
    Unified,
    /// v1 controller hierarchies plus a cgroup2 mount at `unified/` (usually without controllers).
    Hybrid,
    /// v1 controller hierarchies only.
    Legacy,
}

impl Layout {
    pub fn as_str(self) -> &'static str {
        match self {
            Layout::Unified => "unified",
            Layout::Hybrid => "hybrid",
            Layout::Legacy => "legacy",
        }
    }
}

/// The controllers runwarm uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Controller {
    Memory,
    Pids,
    Cpu,
    Cpuacct,
    Freezer,
}

impl Controller {
    pub(crate) const V1: [Controller; 5] = [
        Controller::Memory,
        Controller::Pids,
        Controller::Cpu,
        Controller::Cpuacct,
        Controller::Freezer,
    ];
    /// What v2 needs in `cgroup.subtree_control` (accounting and freezing are built in).
    pub(crate) const V2_WANTED: [Controller; 3] =
        [Controller::Memory, Controller::Pids, Controller::Cpu];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Pids => "pids",
            Controller::Cpu => "cpu",
            Controller::Cpuacct => "cpuacct",
            Controller::Freezer => "freezer",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    V1,
    V2,
}

/// One mounted hierarchy the daemon writes to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Hierarchy {
    pub version: Version,
    /// The controllers this hierarchy carries that runwarm uses (one per v1 mount, unless co-mounted).
    pub controllers: Vec<Controller>,
    /// The mount point (`/sys/fs/cgroup/memory`, `/sys/fs/cgroup`, `/sys/fs/cgroup/unified`).
    pub mount: PathBuf,
    /// The daemon's own cgroup in this hierarchy: runwarm nests below it, so whatever limits the
    /// host put on the daemon also bound its executors.
    pub base: PathBuf,
}

pub(crate) fn detect_layout(root: &Path) -> Option<Layout> {
    if root.join("cgroup.controllers").is_file() {
        Some(Layout::Unified)
    } else if Controller::V1.iter().any(|c| root.join(c.name()).is_dir()) {
        if root.join("unified/cgroup.controllers").is_file() {
            Some(Layout::Hybrid)
        } else {
            Some(Layout::Legacy)
        }
    } else {
        None
    }
}

fn join_cgroup_path(mount: &Path, cgroup: &str) -> PathBuf {
    let relative = cgroup.trim_start_matches('/');
    if relative.is_empty() {
        mount.to_path_buf()
    } else {
        mount.join(relative)
    }
}

/// The unified hierarchy the daemon would use, and whether it has every controller we need.
fn unified_candidate(mount: &Path, own: &SelfCgroup) -> (Hierarchy, bool) {
    let base = join_cgroup_path(mount, own.unified.as_deref().unwrap_or("/"));
    let available = cgroupfs::read_optional(&base.join("cgroup.controllers"))
        .map(|t| controller_list(&t))
        .unwrap_or_default();
    let controllers: Vec<Controller> = Controller::V2_WANTED
        .into_iter()
        .filter(|c| available.iter().any(|a| a == c.name()))
        .collect();
    let complete = controllers.len() == Controller::V2_WANTED.len();
    let hierarchy = Hierarchy {
        version: Version::V2,
        controllers,
        mount: mount.to_path_buf(),
        base,
    };
    (hierarchy, complete)
}

fn legacy_hierarchies(root: &Path, own: &SelfCgroup) -> Vec<Hierarchy> {
    let mut out: Vec<Hierarchy> = Vec::new();
    for controller in Controller::V1 {
        let mount = root.join(controller.name());
        if !mount.is_dir() {
            continue;
        }
        // `cpu` and `cpuacct` are often one mount (`cpu,cpuacct`) reached through symlinks.
        let real = std::fs::canonicalize(&mount).unwrap_or_else(|_| mount.clone());
        if let Some(h) = out
            .iter_mut()
            .find(|h| std::fs::canonicalize(&h.mount).unwrap_or_else(|_| h.mount.clone()) == real)
        {
            h.controllers.push(controller);
            continue;
        }
        let own_path = own.legacy_path(controller.name()).unwrap_or("/");
        out.push(Hierarchy {
            version: Version::V1,
            controllers: vec![controller],
            base: join_cgroup_path(&mount, own_path),
            mount,
        });
    }
    out
}

/// The hierarchies to use: v2 when the unified hierarchy offers memory, pids and cpu to our
/// cgroup; on hybrid and legacy hosts otherwise the v1 controller hierarchies.
pub(crate) fn plan_hierarchies(root: &Path, layout: Layout, own: &SelfCgroup) -> Vec<Hierarchy> {
    match layout {
        // There is nothing else to fall back to: use what v2 offers, active_controllers says
        // what is missing.
        Layout::Unified => vec![unified_candidate(root, own).0],
        Layout::Hybrid => match unified_candidate(&root.join("unified"), own) {
            (v2, true) => vec![v2],
            (_, false) => legacy_hierarchies(root, own),
        },
        Layout::Legacy => legacy_hierarchies(root, own),
    }
}

/// Every hierarchy a daemon on this host may have used, whatever it decided: what a sweep visits.
pub(crate) fn all_hierarchies(root: &Path, layout: Layout, own: &SelfCgroup) -> Vec<Hierarchy> {
    let mut out = legacy_hierarchies(root, own);
    match layout {
        Layout::Unified => out.push(unified_candidate(root, own).0),
        Layout::Hybrid => out.push(unified_candidate(&root.join("unified"), own).0),
        Layout::Legacy => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn touch(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn v1_tree(root: &Path) {
        for c in ["memory", "pids", "cpu", "cpuacct", "freezer", "systemd"] {
            fs::create_dir_all(root.join(c)).unwrap();
        }
    }

    #[test]
    fn detects_each_layout_from_the_directory_tree() {
        let unified = tempfile::tempdir().unwrap();
        touch(
            &unified.path().join("cgroup.controllers"),
            "cpu memory pids\n",
        );
        assert_eq!(detect_layout(unified.path()), Some(Layout::Unified));

        let hybrid = tempfile::tempdir().unwrap();
        v1_tree(hybrid.path());
        touch(
            &hybrid.path().join("unified/cgroup.controllers"),
            "hugetlb\n",
        );
        assert_eq!(detect_layout(hybrid.path()), Some(Layout::Hybrid));

        let legacy = tempfile::tempdir().unwrap();
        v1_tree(legacy.path());
        assert_eq!(detect_layout(legacy.path()), Some(Layout::Legacy));

        let empty = tempfile::tempdir().unwrap();
        assert_eq!(detect_layout(empty.path()), None);
    }

    #[test]
    fn hybrid_with_an_empty_unified_mount_uses_v1_below_our_own_cgroups() {
        let root = tempfile::tempdir().unwrap();
        v1_tree(root.path());
        touch(&root.path().join("unified/cgroup.controllers"), "hugetlb\n");
        let own = SelfCgroup::parse("4:memory:/process_api/7fed\n8:pids:/\n0::/\n");
        let plan = plan_hierarchies(root.path(), Layout::Hybrid, &own);
        assert!(plan.iter().all(|h| h.version == Version::V1));
        let names: Vec<_> = plan.iter().map(|h| h.controllers[0].name()).collect();
        assert_eq!(names, ["memory", "pids", "cpu", "cpuacct", "freezer"]);
        assert_eq!(plan[0].base, root.path().join("memory/process_api/7fed"));
        assert_eq!(plan[1].base, root.path().join("pids"));
    }

    #[test]
    fn hybrid_with_a_complete_unified_mount_uses_v2() {
        let root = tempfile::tempdir().unwrap();
        v1_tree(root.path());
        touch(
            &root.path().join("unified/cgroup.controllers"),
            "cpu io memory pids\n",
        );
        let plan = plan_hierarchies(root.path(), Layout::Hybrid, &SelfCgroup::parse("0::/\n"));
        assert_eq!(plan.len(), 1);
        assert_eq!(plan[0].version, Version::V2);
        assert_eq!(plan[0].base, root.path().join("unified"));
        assert_eq!(plan[0].controllers, Controller::V2_WANTED);
    }

    #[test]
    fn unified_nests_below_the_daemon_cgroup_and_keeps_partial_controllers() {
        let root = tempfile::tempdir().unwrap();
        touch(&root.path().join("cgroup.controllers"), "cpu memory pids\n");
        touch(
            &root
                .path()
                .join("system.slice/runwarmd.service/cgroup.controllers"),
            "memory pids\n",
        );
        let own = SelfCgroup::parse("0::/system.slice/runwarmd.service\n");
        let plan = plan_hierarchies(root.path(), Layout::Unified, &own);
        assert_eq!(
            plan[0].base,
            root.path().join("system.slice/runwarmd.service")
        );
        assert_eq!(plan[0].controllers, [Controller::Memory, Controller::Pids]);
    }

    #[cfg(unix)]
    #[test]
    fn co_mounted_cpu_and_cpuacct_are_one_hierarchy() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("cpu,cpuacct")).unwrap();
        std::os::unix::fs::symlink("cpu,cpuacct", root.path().join("cpu")).unwrap();
        std::os::unix::fs::symlink("cpu,cpuacct", root.path().join("cpuacct")).unwrap();
        let plan = plan_hierarchies(root.path(), Layout::Legacy, &SelfCgroup::default());
        assert_eq!(plan.len(), 1);
        assert_eq!(plan[0].controllers, [Controller::Cpu, Controller::Cpuacct]);
    }
}
