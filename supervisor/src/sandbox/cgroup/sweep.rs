//! Sweeping cgroups a crashed daemon left behind, at daemon start.
//!
//! Several daemons may share a host (tests start many at once, and a daemon in a container
//! sees the same cgroup hierarchies as one outside it), so only subtrees whose owner is gone
//! are swept. A live daemon holds an exclusive `flock` on each of its instance directories
//! (see `Cgroups::detect`) for as long as it runs, and the kernel drops that lock the moment
//! the daemon dies, however it dies. The lock sits on the cgroupfs inode, which every mount of a
//! hierarchy shares, so the test works across pid, mount and cgroup namespaces; the pid in the
//! instance name does not (pids are relative to a pid namespace, so a live daemon in a
//! container looks dead from the host and the other way round). A directory whose name is not
//! an instance name is swept only when no process is left in it, because then removing it
//! cannot hurt anyone.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};

use super::control_files::SelfCgroup;
use super::kill::{Member, kill_cgroup};
use super::{cgroupfs, layout, validate_name};

/// Whether a directory under the parent is some daemon's instance, and if so whether that
/// daemon lives.
#[derive(Debug)]
enum Owner {
    /// A live daemon holds the lock.
    Alive,
    /// An instance directory nobody holds: its daemon is gone. The locks are kept until the
    /// directories are removed, so a daemon starting meanwhile cannot adopt them half-swept.
    Dead { _held: Vec<Flock<File>> },
    /// Not named like an instance: swept only when empty.
    Unknown,
}

/// `<pid>-<hex>` as [`super::instance_name`] makes it.
fn is_instance_name(name: &str) -> bool {
    name.split_once('-').is_some_and(|(pid, tail)| {
        !pid.is_empty()
            && pid.bytes().all(|b| b.is_ascii_digit())
            && !tail.is_empty()
            && tail.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

/// Tries each of the instance's directories (one per hierarchy): one held by someone else means
/// a live owner.
fn owner_of<'a>(instance: &str, dirs: impl IntoIterator<Item = &'a Path>) -> Owner {
    if !is_instance_name(instance) {
        return Owner::Unknown;
    }
    let mut held = Vec::new();
    for dir in dirs {
        // Gone meanwhile (its owner removed it at shutdown) or unreadable: nothing to decide on.
        let Ok(file) = File::open(dir) else {
            continue;
        };
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => held.push(lock),
            // EWOULDBLOCK: a live daemon holds it. Any other error (a filesystem without
            // flock, which no cgroupfs is): do not guess, keep it.
            Err(_) => return Owner::Alive,
        }
    }
    Owner::Dead { _held: held }
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
        let dirs = instance_dirs
            .iter()
            .filter(|(i, _)| i == instance)
            .map(|(_, d)| d.as_path());
        // Lives to the end of this iteration: a dead owner's locks are held until its
        // directories are gone.
        let owner = owner_of(instance, dirs);
        let stale = match &owner {
            Owner::Alive => false,
            Owner::Dead { .. } => true,
            Owner::Unknown => !executors.values().flatten().any(|m| {
                cgroupfs::read_pids(&m.dir.join("cgroup.procs")).is_ok_and(|p| !p.is_empty())
            }),
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

    fn lock(dir: &Path) -> Flock<File> {
        Flock::lock(File::open(dir).unwrap(), FlockArg::LockExclusiveNonblock).unwrap()
    }

    #[test]
    fn instance_names_are_pid_dash_hex() {
        assert!(is_instance_name("4242-0a1b2c3d"));
        assert!(is_instance_name("1-crashed"));
        for other in ["nopid", "-abc", "42-", "x1-abc", "42-a.b"] {
            assert!(!is_instance_name(other), "{other}");
        }
    }

    #[test]
    fn an_instance_is_alive_while_some_process_holds_its_lock() {
        let root = tempfile::tempdir().unwrap();
        let (a, b) = (root.path().join("a"), root.path().join("b"));
        fs::create_dir(&a).unwrap();
        fs::create_dir(&b).unwrap();
        assert!(matches!(owner_of("nopid", [a.as_path()]), Owner::Unknown));
        assert!(
            matches!(owner_of("1-aa", [a.as_path(), b.as_path()]), Owner::Dead { _held: l } if l.len() == 2)
        );
        // The lock of one hierarchy's directory is enough; a second open of the same directory
        // conflicts even within one process, as a lock held by another daemon would.
        let held = lock(&b);
        assert!(matches!(
            owner_of("1-aa", [a.as_path(), b.as_path()]),
            Owner::Alive
        ));
        drop(held);
        assert!(matches!(
            owner_of("1-aa", [a.as_path(), b.as_path()]),
            Owner::Dead { .. }
        ));
    }

    #[test]
    fn sweeps_unlocked_and_empty_subtrees_and_keeps_locked_ones() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        fs::write(r.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        let mk = |rel: &str, procs: &str| {
            let d = r.join(rel);
            fs::create_dir_all(&d).unwrap();
            fs::write(d.join("cgroup.procs"), procs).unwrap();
            fs::write(d.join("cgroup.kill"), "").unwrap();
        };
        // A pid that exists here proves nothing (it may be another namespace's daemon): an
        // unlocked instance named after this very process is swept all the same.
        let me = std::process::id();
        mk(&format!("runwarm/{me}-aa/e1"), "");
        mk(&format!("runwarm/{me}-aa/e2"), "");
        mk("runwarm/999999-bb/e1", "");
        mk("runwarm/nopid/e1", "");
        mk("runwarm/busy/e1", &format!("{me}\n"));
        let live = lock(&r.join("runwarm/999999-bb"));
        let own = SelfCgroup::parse("0::/\n");
        assert_eq!(sweep_stale(r, "runwarm", &own), 3);
        let mut left = subdirs(&r.join("runwarm"));
        left.sort_unstable();
        assert_eq!(left, ["999999-bb".to_owned(), "busy".to_owned()]);
        drop(live);
        assert_eq!(sweep_stale(r, "runwarm", &own), 1);
        assert_eq!(subdirs(&r.join("runwarm")), ["busy".to_owned()]);
        assert_eq!(sweep_stale(r, "../etc", &own), 0);
    }
}
