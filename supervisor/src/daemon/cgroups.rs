//! The last steps of shutdown: what is left in the executors' cgroups killed, then the
//! daemon's own subtree removed; blocking cgroupfs work, kept apart from the sequence.

use std::sync::Arc;
use std::time::Duration;

/// Removes the daemon's own cgroup subtree once the executors' cgroups (removed in the
/// background as workers drop) are gone; retried briefly, then left to the next start's sweep.
pub(super) async fn remove_cgroup_parents(confinement: &Arc<crate::sandbox::Confinement>) {
    let confinement = Arc::clone(confinement);
    let removed = tokio::task::spawn_blocking(move || {
        let Some(cgroups) = confinement.cgroups() else {
            return Ok(());
        };
        let mut last = Ok(());
        for _ in 0..30 {
            last = cgroups.remove_parents();
            if last.is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        last
    })
    .await;
    match removed {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "the daemon's cgroups were not all removed; the next start sweeps them")
        }
        Err(e) => tracing::warn!(error = %e, "removing the daemon's cgroups failed"),
    }
}

/// Kills every process left in the daemon's executor cgroups: executors of requests that were
/// cut off by the shutdown grace are still held by their request tasks.
pub(super) async fn kill_remaining_executors(confinement: &Arc<crate::sandbox::Confinement>) {
    let confinement = Arc::clone(confinement);
    let _ = tokio::task::spawn_blocking(move || {
        let Some(cgroups) = confinement.cgroups() else {
            return;
        };
        for parent in cgroups.parent_dirs() {
            let Ok(children) = std::fs::read_dir(&parent) else {
                continue;
            };
            for child in children.flatten().filter(|c| c.path().is_dir()) {
                let procs =
                    std::fs::read_to_string(child.path().join("cgroup.procs")).unwrap_or_default();
                for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                    // ESRCH (already gone) is fine.
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
    })
    .await;
}
