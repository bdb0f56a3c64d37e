//! Killing every process of a cgroup, so no grandchild, double-forked or `setsid` process
//! survives its executor.
//!
//! v2 writes `cgroup.kill` (Linux 5.14+), which the kernel applies atomically to the whole
//! subtree. Without it (older v2, and all of v1) the cgroup is frozen first so nothing can fork
//! between listing the pids and signalling them, every pid gets SIGKILL, then it is thawed so the
//! signals are delivered. ESRCH (already gone) counts as success. Blocking: call it from a
//! blocking thread.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::layout::{Controller, Version};
use super::{CgroupError, cgroupfs};

/// One directory of a cgroup: a v2 cgroup has one, a v1 cgroup one per controller hierarchy.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Member {
    pub version: Version,
    pub controllers: Vec<Controller>,
    pub dir: PathBuf,
}

fn signal_all(procs: &Path) -> Result<usize, CgroupError> {
    let own = std::process::id() as i32;
    let pids = cgroupfs::read_pids(procs)?;
    for &pid in &pids {
        // Never init or ourselves, whatever a (possibly fixture) file claims.
        if pid == 1 || pid == own {
            continue;
        }
        match kill(Pid::from_raw(pid), Signal::SIGKILL) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(e) => {
                return Err(CgroupError::io(
                    "send SIGKILL to a process listed in",
                    procs,
                    e.into(),
                ));
            }
        }
    }
    Ok(pids.len())
}

fn wait_for_state(file: &Path, want: &str, within: Duration) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if cgroupfs::read_optional(file).is_some_and(|s| s.trim() == want) {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn remaining(members: &[Member]) -> (usize, PathBuf) {
    let mut most = (0, PathBuf::new());
    for m in members {
        let procs = m.dir.join("cgroup.procs");
        let n = cgroupfs::read_pids(&procs).map(|p| p.len()).unwrap_or(0);
        if n > most.0 || most.1.as_os_str().is_empty() {
            most = (n, m.dir.clone());
        }
    }
    most
}

fn kill_v2(dir: &Path) -> Result<(), CgroupError> {
    let kill_file = dir.join("cgroup.kill");
    if kill_file.exists() {
        return cgroupfs::write(&kill_file, "1");
    }
    let freeze = dir.join("cgroup.freeze");
    let frozen = freeze.exists() && cgroupfs::write(&freeze, "1").is_ok();
    let result = signal_all(&dir.join("cgroup.procs"));
    if frozen {
        cgroupfs::write(&freeze, "0")?;
    }
    result.map(drop)
}

fn kill_v1(members: &[Member]) -> Result<(), CgroupError> {
    let freezer = members
        .iter()
        .find(|m| m.controllers.contains(&Controller::Freezer));
    // A freezer that cannot be used (gone, or the write refused) only loses the fork race
    // protection: the kill loop in `kill_cgroup` still re-kills until the cgroup is empty.
    let state = freezer
        .map(|m| m.dir.join("freezer.state"))
        .filter(|state| cgroupfs::write(state, "FROZEN").is_ok());
    if let Some(state) = &state {
        wait_for_state(state, "FROZEN", Duration::from_millis(200));
    }
    // Every hierarchy should hold the same processes, but a helper that died half-way through
    // attaching may be in some only.
    let mut result = Ok(());
    for m in members {
        if let Err(e) = signal_all(&m.dir.join("cgroup.procs")) {
            result = Err(e);
        }
    }
    if let Some(state) = &state {
        cgroupfs::write(state, "THAWED")?;
    }
    result
}

/// Kills every process in the cgroup and waits (bounded by `within`) until it is empty.
pub(crate) fn kill_cgroup(members: &[Member], within: Duration) -> Result<(), CgroupError> {
    let deadline = Instant::now() + within;
    loop {
        match members.iter().find(|m| m.version == Version::V2) {
            Some(v2) => kill_v2(&v2.dir)?,
            None => kill_v1(members)?,
        }
        // Re-kill on every round: without a freezer a process may have forked in between.
        for _ in 0..10 {
            let (left, _) = remaining(members);
            if left == 0 {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        if Instant::now() >= deadline {
            let (left, path) = remaining(members);
            return Err(CgroupError::KillTimeout {
                path,
                remaining: left,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn member(version: Version, controllers: &[Controller], dir: &Path) -> Member {
        fs::create_dir_all(dir).unwrap();
        fs::write(dir.join("cgroup.procs"), "").unwrap();
        Member {
            version,
            controllers: controllers.to_vec(),
            dir: dir.to_path_buf(),
        }
    }

    #[test]
    fn v2_writes_cgroup_kill_when_the_kernel_has_it() {
        let dir = tempfile::tempdir().unwrap();
        let m = member(Version::V2, &Controller::V2_WANTED, dir.path());
        fs::write(dir.path().join("cgroup.kill"), "").unwrap();
        kill_cgroup(&[m], Duration::from_millis(100)).unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join("cgroup.kill")).unwrap(),
            "1"
        );
    }

    #[test]
    fn v2_without_cgroup_kill_freezes_and_thaws() {
        let dir = tempfile::tempdir().unwrap();
        let m = member(Version::V2, &Controller::V2_WANTED, dir.path());
        fs::write(dir.path().join("cgroup.freeze"), "0").unwrap();
        kill_cgroup(&[m], Duration::from_millis(100)).unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join("cgroup.freeze")).unwrap(),
            "0"
        );
    }

    #[test]
    fn v1_thaws_after_killing_and_reports_processes_that_do_not_leave() {
        let root = tempfile::tempdir().unwrap();
        let freezer = member(
            Version::V1,
            &[Controller::Freezer],
            &root.path().join("freezer/x"),
        );
        let pids = member(
            Version::V1,
            &[Controller::Pids],
            &root.path().join("pids/x"),
        );
        fs::write(freezer.dir.join("freezer.state"), "THAWED").unwrap();
        // A real child of ours, listed in the fixture: it must get SIGKILL, and since a fixture
        // file never empties itself the call must end with a timeout naming the count.
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        fs::write(pids.dir.join("cgroup.procs"), format!("{}\n", child.id())).unwrap();
        let err = kill_cgroup(&[freezer.clone(), pids], Duration::from_millis(50)).unwrap_err();
        assert!(
            matches!(err, CgroupError::KillTimeout { remaining: 1, .. }),
            "{err}"
        );
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        let state = fs::read_to_string(freezer.dir.join("freezer.state")).unwrap();
        assert_eq!(state, "THAWED");
    }
}
