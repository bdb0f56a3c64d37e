//! The container's Debian root: built once with debootstrap from the mirror this machine's apt
//! uses, kept under `/var/cache` between runs and rebuilt when what it was built with changes.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};

use super::container::run_bounded;

/// Where the Debian root is kept between runs (outside any clone, so CI reuses it).
const CACHE: &str = "/var/cache/runwarm-systemd-root";
/// What the cached root was built with; a root with another stamp is rebuilt.
const ROOT_STAMP: &str = "1 bookworm minbase systemd,dbus,python3,curl; masked systemd-sysctl systemd-binfmt systemd-modules-load";
const SUITE: &str = "bookworm";
const PACKAGES: &str = "systemd,dbus,python3,curl";
/// Units that need host privileges a container must not use (sysctl, binfmt, modules).
const MASKED: [&str; 3] = [
    "systemd-sysctl.service",
    "systemd-binfmt.service",
    "systemd-modules-load.service",
];

/// The Debian mirror this machine's apt uses (the main suite's `URIs:` of a deb822 `.sources`
/// file, or a `deb URI SUITE` line), so debootstrap reaches the same place apt does.
fn apt_mirror() -> Option<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir("/etc/apt/sources.list.d")
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files.insert(0, PathBuf::from("/etc/apt/sources.list"));
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let name = file.to_string_lossy();
        if name.ends_with(".sources") {
            for stanza in text.split("\n\n") {
                let field = |key: &str| {
                    stanza.lines().find_map(|l| {
                        l.strip_prefix(key)
                            .and_then(|r| r.strip_prefix(':'))
                            .map(str::trim)
                    })
                };
                let is_deb =
                    field("Types").is_some_and(|t| t.split_whitespace().any(|t| t == "deb"));
                let main_suite =
                    field("Suites").is_some_and(|s| s.split_whitespace().any(|s| !s.contains('-')));
                if let (true, true, Some(uri)) = (is_deb, main_suite, field("URIs")) {
                    return uri.split_whitespace().next().map(str::to_owned);
                }
            }
        } else if name.ends_with(".list") {
            for line in text.lines() {
                let words: Vec<&str> = line
                    .split_whitespace()
                    .filter(|w| !w.starts_with('['))
                    .collect();
                if let ["deb", uri, suite, ..] = words.as_slice()
                    && !suite.contains('-')
                {
                    return Some((*uri).to_owned());
                }
            }
        }
    }
    None
}

/// The cached root, built first when missing or stale. `Err` says why it cannot be had.
pub(super) fn cached_root() -> Result<PathBuf, String> {
    let cache = Path::new(CACHE);
    std::fs::create_dir_all(cache).map_err(|e| format!("cannot create {CACHE}: {e}"))?;
    // Two test runs at once build it once.
    let lock_file = File::create(cache.join("lock")).map_err(|e| format!("{CACHE}/lock: {e}"))?;
    let _lock = Flock::lock(lock_file, FlockArg::LockExclusive)
        .map_err(|(_, e)| format!("cannot lock {CACHE}/lock: {e}"))?;
    let root = cache.join("root");
    let stamp = cache.join("stamp");
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == ROOT_STAMP)
        && root.join("lib/systemd/systemd").exists()
    {
        return Ok(root);
    }
    let mirror = apt_mirror().ok_or("no Debian mirror found in /etc/apt/sources.list*")?;
    let _ = std::fs::remove_file(&stamp);
    let building = cache.join("root.building");
    for old in [&building, &root] {
        if old.exists() {
            std::fs::remove_dir_all(old).map_err(|e| format!("{}: {e}", old.display()))?;
        }
    }
    let started = Instant::now();
    let mut cmd = Command::new("debootstrap");
    cmd.args(["--variant=minbase", &format!("--include={PACKAGES}"), SUITE])
        .arg(&building)
        .arg(&mirror);
    let out = run_bounded(cmd, Duration::from_secs(900));
    if !out.status.success() {
        let log = std::fs::read_to_string(building.join("debootstrap/debootstrap.log"))
            .unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        return Err(format!(
            "debootstrap {SUITE} from {mirror} failed ({}): {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ));
    }
    for unit in MASKED {
        let link = building.join("etc/systemd/system").join(unit);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink("/dev/null", &link).map_err(|e| format!("mask {unit}: {e}"))?;
    }
    // The downloaded packages are installed; keeping them would double the root's size.
    if let Ok(entries) = std::fs::read_dir(building.join("var/cache/apt/archives")) {
        for e in entries.flatten() {
            if e.path().extension().is_some_and(|x| x == "deb") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    std::fs::rename(&building, &root).map_err(|e| format!("rename the new root: {e}"))?;
    std::fs::write(&stamp, ROOT_STAMP).map_err(|e| format!("write the stamp: {e}"))?;
    let _ = writeln!(
        std::io::stderr(),
        "systemd_real: built the Debian root in {:.0?}",
        started.elapsed()
    );
    Ok(root)
}
