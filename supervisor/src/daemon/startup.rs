//! Start-up steps that are functions of their own: binding the API socket, and preparing what
//! the registry holds; `run_with` calls them in its order.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::UnixListener;

use crate::api::access::AccessPolicy;
use crate::pool::Pools;
use crate::registry::Registry;

/// Prepares every registered version whose runtime has a prepare step (a cache hit costs a
/// few file reads; what was lost or never finished runs again), and keeps the cache bounded.
pub(super) fn start_preparing(registry: &Arc<Registry>, pools: &Pools) {
    let launcher = pools.launcher();
    let all = launcher.preparer().settings().at_start_all;
    for v in registry.all_versions() {
        if all {
            launcher.submit_prepare(v.script_ref(), false);
        } else {
            launcher.restore_prepare(v.script_ref());
        }
    }
    let (registry2, pools2) = (Arc::clone(registry), pools.clone());
    launcher.preparer().set_live(Box::new(move || {
        let mut live: std::collections::HashSet<String> =
            registry2.tagged_versions().into_iter().collect();
        live.extend(pools2.versions());
        live
    }));
    let preparer = launcher.preparer().clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(600));
        loop {
            every.tick().await;
            let p = preparer.clone();
            let _ = tokio::task::spawn_blocking(move || p.evict()).await;
        }
    });
}

/// Binds the socket, replacing a stale file but refusing to steal a live daemon's socket, and
/// gives it the configured mode and group.
pub(super) fn bind_socket(path: &Path, access: &AccessPolicy) -> anyhow::Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        fs_err::create_dir_all(dir).context("creating the socket directory")?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            anyhow::bail!(
                "another runwarmd is already serving on {}; stop it or choose another socket",
                path.display()
            );
        }
        fs_err::remove_file(path).context("removing a stale socket file")?;
    }
    let listener = UnixListener::bind(path)
        .with_context(|| format!("binding the API socket {}", path.display()))?;
    if let Some(gid) = access.socket_group {
        nix::unistd::chown(path, None, Some(nix::unistd::Gid::from_raw(gid)))
            .with_context(|| format!("giving the socket to group {gid} (access.socket_group)"))?;
    }
    fs_err::set_permissions(path, std::fs::Permissions::from_mode(access.socket_mode))
        .context("setting the socket's permissions (access.socket_mode)")?;
    Ok(listener)
}
