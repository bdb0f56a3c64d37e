//! Where `runwarm` looks for the daemon's socket when neither `--socket` nor `RUNWARM_SOCKET`
//! says: the development daemon's `./.runwarm/`, then the user's runtime dir, then the system
//! service's `/run/runwarm/`.

use std::path::{Path, PathBuf};

/// Socket of a development daemon started in the current directory.
pub const LOCAL_SOCKET: &str = ".runwarm/runwarm.sock";
/// Socket of the system service.
pub const SYSTEM_SOCKET: &str = "/run/runwarm/runwarm.sock";

/// The default socket; `exists` and `xdg_runtime_dir` are passed in so tests need no
/// environment changes.
pub fn default_socket(exists: impl Fn(&Path) -> bool, xdg_runtime_dir: Option<PathBuf>) -> PathBuf {
    let local = PathBuf::from(".").join(LOCAL_SOCKET);
    if exists(&local) {
        return local;
    }
    if let Some(dir) = xdg_runtime_dir.filter(|d| !d.as_os_str().is_empty()) {
        let user = dir.join("runwarm/runwarm.sock");
        if exists(&user) {
            return user;
        }
    }
    PathBuf::from(SYSTEM_SOCKET)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefers_local_then_xdg_then_system() {
        let xdg = Some(PathBuf::from("/run/user/1000"));
        assert_eq!(
            default_socket(|_| true, xdg.clone()),
            PathBuf::from("./.runwarm/runwarm.sock")
        );
        assert_eq!(
            default_socket(|p| p.starts_with("/run/user"), xdg.clone()),
            PathBuf::from("/run/user/1000/runwarm/runwarm.sock")
        );
        assert_eq!(default_socket(|_| false, xdg), PathBuf::from(SYSTEM_SOCKET));
        assert_eq!(
            default_socket(|p| p.starts_with("/run/user"), None),
            PathBuf::from(SYSTEM_SOCKET)
        );
    }
}
