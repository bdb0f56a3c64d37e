//! Fixture-tree tests of detection and creation, for v2 (which this build host cannot run for
//! real) and v1.

use std::fs;
use std::path::Path;

use super::*;

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// A v2 cgroup directory as the kernel would populate it with memory, pids and cpu enabled.
fn v2_cgroup(dir: &Path, controllers: &str) {
    write(&dir.join("cgroup.controllers"), controllers);
    for f in [
        "cgroup.subtree_control",
        "cgroup.procs",
        "cgroup.freeze",
        "cgroup.kill",
        "cpu.stat",
        "memory.max",
        "memory.swap.max",
        "memory.oom.group",
        "memory.events",
        "pids.max",
        "cpu.max",
    ] {
        write(&dir.join(f), "");
    }
}

#[test]
fn unified_detect_enables_controllers_down_the_subtree_and_creates_with_limits() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    v2_cgroup(r, "cpuset cpu io memory pids\n");
    v2_cgroup(&r.join("runwarm"), "cpu memory pids\n");
    v2_cgroup(&r.join("runwarm/inst"), "cpu memory pids\n");
    v2_cgroup(&r.join("runwarm/inst/e1"), "cpu memory pids\n");
    let cg = Cgroups::detect_with(r, "runwarm/inst", &SelfCgroup::parse("0::/\n")).unwrap();
    assert_eq!(cg.layout(), Layout::Unified);
    assert!(cg.uses_v2());
    assert_eq!(
        cg.active_controllers(),
        ["memory", "pids", "cpu", "freezer"]
    );
    for d in [r.to_path_buf(), r.join("runwarm"), r.join("runwarm/inst")] {
        let enabled = fs::read_to_string(d.join("cgroup.subtree_control")).unwrap();
        assert_eq!(enabled, "+memory +pids +cpu", "{}", d.display());
    }
    let limits = CgroupLimits {
        memory_bytes: Some(64 << 20),
        pids: Some(32),
        cpu_cores: Some(1.5),
    };
    let e1 = cg.create("e1", &limits).unwrap();
    let read = |f: &str| fs::read_to_string(r.join("runwarm/inst/e1").join(f)).unwrap();
    assert_eq!(read("memory.max"), "67108864");
    assert_eq!(read("memory.swap.max"), "0");
    assert_eq!(read("memory.oom.group"), "1");
    assert_eq!(read("pids.max"), "32");
    assert_eq!(read("cpu.max"), "150000 100000");
    assert_eq!(e1.procs_files(), [r.join("runwarm/inst/e1/cgroup.procs")]);
    e1.kill_all().unwrap();
    assert_eq!(read("cgroup.kill"), "1");
    drop(e1);
    assert!(!r.join("runwarm/inst/e1").exists());
}

#[test]
fn delegated_v2_cgroup_is_nested_below_and_its_subtree_control_left_alone() {
    // A systemd-delegated cgroup already has the controllers on: rewriting its subtree_control
    // would fail with EBUSY while the daemon is in it, so it must not be touched.
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    v2_cgroup(r, "cpu memory pids\n");
    let svc = r.join("system.slice/runwarmd.service");
    v2_cgroup(&svc, "cpu memory pids\n");
    fs::write(svc.join("cgroup.subtree_control"), "cpu memory pids\n").unwrap();
    v2_cgroup(&svc.join("runwarm"), "memory pids\n");
    let own = SelfCgroup::parse("0::/system.slice/runwarmd.service\n");
    let cg = Cgroups::detect_with(r, "runwarm", &own).unwrap();
    assert_eq!(cg.parent_dirs(), [svc.join("runwarm")]);
    assert_eq!(
        fs::read_to_string(svc.join("cgroup.subtree_control")).unwrap(),
        "cpu memory pids\n"
    );
    assert_eq!(
        fs::read_to_string(svc.join("runwarm/cgroup.subtree_control")).unwrap(),
        "+memory +pids"
    );
}

#[test]
fn hybrid_uses_v1_hierarchies_and_writes_v1_limits() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    write(&r.join("unified/cgroup.controllers"), "hugetlb\n");
    let own = SelfCgroup::parse("4:memory:/outer\n0::/\n");
    let files: [(&str, &[&str]); 5] = [
        (
            "memory/outer",
            &["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"],
        ),
        ("pids", &["pids.max"]),
        ("cpu", &["cpu.cfs_quota_us", "cpu.cfs_period_us"]),
        ("cpuacct", &["cpuacct.usage"]),
        ("freezer", &["freezer.state"]),
    ];
    for (dir, names) in files {
        for inst in ["runwarm/inst", "runwarm/inst/e1"] {
            write(&r.join(dir).join(inst).join("cgroup.procs"), "");
            for n in names {
                write(&r.join(dir).join(inst).join(n), "");
            }
        }
    }
    let cg = Cgroups::detect_with(r, "runwarm/inst", &own).unwrap();
    assert_eq!(cg.layout(), Layout::Hybrid);
    assert!(!cg.uses_v2());
    assert_eq!(
        cg.active_controllers(),
        ["memory", "pids", "cpu", "cpuacct", "freezer"]
    );
    let limits = CgroupLimits {
        memory_bytes: Some(32 << 20),
        pids: Some(5),
        cpu_cores: Some(2.0),
    };
    let e1 = cg.create("e1", &limits).unwrap();
    let read = |p: &str| fs::read_to_string(r.join(p)).unwrap();
    assert_eq!(
        read("memory/outer/runwarm/inst/e1/memory.limit_in_bytes"),
        "33554432"
    );
    assert_eq!(
        read("memory/outer/runwarm/inst/e1/memory.memsw.limit_in_bytes"),
        "33554432"
    );
    assert_eq!(read("pids/runwarm/inst/e1/pids.max"), "5");
    assert_eq!(read("cpu/runwarm/inst/e1/cpu.cfs_quota_us"), "200000");
    assert_eq!(e1.procs_files().len(), 5);
    e1.kill_all().unwrap();
    assert_eq!(read("freezer/runwarm/inst/e1/freezer.state"), "THAWED");
    e1.remove().unwrap();
    assert!(!r.join("pids/runwarm/inst/e1").exists());
}

#[test]
fn detect_reports_what_is_missing() {
    let empty = tempfile::tempdir().unwrap();
    let err = Cgroups::detect_with(empty.path(), "runwarm/x", &SelfCgroup::default()).unwrap_err();
    assert!(matches!(err, CgroupError::NoCgroupFs { .. }), "{err}");
    assert!(err.hint().is_some());

    // Hierarchies mounted, but no control file answers: nothing to limit with.
    let bare = tempfile::tempdir().unwrap();
    fs::create_dir_all(bare.path().join("memory")).unwrap();
    let err = Cgroups::detect_with(bare.path(), "runwarm/x", &SelfCgroup::default()).unwrap_err();
    assert!(matches!(err, CgroupError::NoControllers { .. }), "{err}");
    assert!(err.to_string().contains("runwarm/x"), "{err}");

    for bad in ["", "runwarm/..", "a b", "x/\u{e9}"] {
        let err = Cgroups::detect_with(bare.path(), bad, &SelfCgroup::default()).unwrap_err();
        assert!(
            matches!(err, CgroupError::InvalidName { .. }),
            "{bad:?}: {err}"
        );
    }
}

#[test]
fn create_refuses_bad_ids_and_busy_leftovers() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    v2_cgroup(r, "cpu memory pids\n");
    v2_cgroup(&r.join("rw/i"), "cpu memory pids\n");
    let cg = Cgroups::detect_with(r, "rw/i", &SelfCgroup::parse("0::/\n")).unwrap();
    for bad in ["", "..", "a/b"] {
        assert!(cg.create(bad, &CgroupLimits::default()).is_err(), "{bad:?}");
    }
    v2_cgroup(&r.join("rw/i/busy"), "");
    fs::write(r.join("rw/i/busy/cgroup.procs"), "4242\n").unwrap();
    let err = cg.create("busy", &CgroupLimits::default()).unwrap_err();
    assert!(err.to_string().contains("busy"), "{err}");
    assert!(
        r.join("rw/i/busy").exists(),
        "a busy cgroup is not ours to remove"
    );
}
