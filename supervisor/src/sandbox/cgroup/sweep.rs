//! Sweeping cgroups a crashed daemon left behind, at daemon start.
//!
//! Several daemons may share a host (tests start many at once), so only subtrees whose owner is
//! gone are swept: an instance directory named `<pid>-…` ([`super::instance_name`]) belongs to
//! a dead daemon when that pid no longer exists. A name without a pid is swept only when no
//! process is left in it, because then removing it cannot hurt anyone.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;

use super::control_files::SelfCgroup;
use super::kill::{Member, kill_cgroup};
use super::{cgroupfs, layout, validate_name};

#[derive(Debug, PartialEq, Eq)]
enum Owner {
    Alive,
    Dead,
    Unknown,
}

fn owner_of(instance: &str) -> Owner {
    let digits = instance.split('-').next().unwrap_or_default();
    let Ok(pid) = digits.parse::<i32>() else {
        return Owner::Unknown;
    };
    if pid <= 0 {
        return Owner::Unknown;
    }
    // Signal 0 checks existence only; EPERM means it exists under another user.
    match kill(Pid::from_raw(pid), None) {
        Err(Errno::ESRCH) => Owner::Dead,
        _ => Owner::Alive,
    }
}

fn subdirs(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect()
}

pub(crate) fn sweep_stale(root: &Path, parent: &str, own: &SelfCgroup) -> usize {
    let components: Vec<&str> = parent.split('/').filter(|c| !c.is_empty()).collect();
    if components.is_empty() || components.iter().any(|c| validate_name(c).is_err()) {
        return 0;
    }
    let Some(layout) = layout::detect_layout(root) else {
        return 0;
    };
    // instance → executor → its directory in each hierarchy, so each cgroup is killed once
    // with the freezer (if any) in the same call.
    let mut found: BTreeMap<String, BTreeMap<String, Vec<Member>>> = BTreeMap::new();
    let mut instance_dirs = Vec::new();
    for h in layout::all_hierarchies(root, layout, own) {
        let parent_dir = components.iter().fold(h.base.clone(), |d, c| d.join(c));
        for instance in subdirs(&parent_dir) {
            let instance_dir = parent_dir.join(&instance);
            let executors = found.entry(instance.clone()).or_default();
            for exec in subdirs(&instance_dir) {
                executors.entry(exec.clone()).or_default().push(Member {
                    version: h.version,
                    controllers: h.controllers.clone(),
                    dir: instance_dir.join(exec),
                });
            }
            instance_dirs.push((instance, instance_dir));
        }
    }
    let mut swept = 0;
    for (instance, executors) in &found {
        let populated = executors
            .values()
            .flatten()
            .any(|m| cgroupfs::read_pids(&m.dir.join("cgroup.procs")).is_ok_and(|p| !p.is_empty()));
        let stale = match owner_of(instance) {
            Owner::Dead => true,
            Owner::Alive => false,
            Owner::Unknown => !populated,
        };
        if !stale {
            continue;
        }
        for (exec, members) in executors {
            let removed = kill_cgroup(members, Duration::from_secs(1)).and_then(|()| {
                members.iter().try_for_each(|m| {
                    cgroupfs::remove_dir_with_retry(&m.dir, Duration::from_secs(1))
                })
            });
            match removed {
                Ok(()) => swept += 1,
                Err(e) => {
                    tracing::warn!(instance, executor = exec, error = %e, "stale cgroup not swept")
                }
            }
        }
        for (_, dir) in instance_dirs.iter().filter(|(i, _)| i == instance) {
            if let Err(e) = cgroupfs::remove_dir_with_retry(dir, Duration::from_millis(200)) {
                tracing::warn!(instance, error = %e, "stale cgroup not swept");
            }
        }
    }
    swept
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn owners_are_read_from_the_instance_name() {
        assert_eq!(
            owner_of(&format!("{}-abcd", std::process::id())),
            Owner::Alive
        );
        assert_eq!(owner_of("nopid"), Owner::Unknown);
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        assert_eq!(owner_of(&format!("{dead}-abcd")), Owner::Dead);
    }

    #[test]
    fn sweeps_dead_and_empty_subtrees_and_keeps_live_ones() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        fs::write(r.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let mk = |rel: &str, procs: &str| {
            let d = r.join(rel);
            fs::create_dir_all(&d).unwrap();
            fs::write(d.join("cgroup.procs"), procs).unwrap();
            fs::write(d.join("cgroup.kill"), "").unwrap();
        };
        mk(&format!("runwarm/{dead}-aa/e1"), "");
        mk(&format!("runwarm/{dead}-aa/e2"), "");
        mk(&format!("runwarm/{}-bb/e1", std::process::id()), "");
        mk("runwarm/nopid/e1", "");
        mk("runwarm/busy/e1", &format!("{}\n", std::process::id()));
        let own = SelfCgroup::parse("0::/\n");
        assert_eq!(sweep_stale(r, "runwarm", &own), 3);
        let mut left = subdirs(&r.join("runwarm"));
        left.sort_unstable();
        let mut want = vec!["busy".to_owned(), format!("{}-bb", std::process::id())];
        want.sort_unstable();
        assert_eq!(left, want);
        assert_eq!(sweep_stale(r, "../etc", &own), 0);
    }
}
