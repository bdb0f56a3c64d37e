//! Test harness: starts a real `runwarmd` on a temporary socket and talks HTTP to it.
//!
//! [`Daemon`] creates a short temporary directory (Unix socket paths are capped at 108 bytes),
//! writes a config, starts the daemon built by `cargo test --workspace`, and waits for
//! `/readyz`. Dropping it sends SIGTERM and then checks that no process of that daemon instance
//! is left: every executor and everything it starts carries `RUNWARM_INSTANCE=<id>` in its
//! environment, so a leak is found in `/proc/*/environ` and fails the test that caused it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

mod daemon;

pub use daemon::{Daemon, DaemonBuilder};

/// Something a test needs from the host.
#[derive(Debug, Clone, Copy)]
pub enum Need {
    /// A program on PATH.
    Program(&'static str),
    /// Running as root (confinement needs it).
    Root,
    /// A file or directory that `.ci/toolchains` installs outside PATH.
    Path(&'static str),
}

/// Whether the needs hold. Outside strict mode an unmet need prints a loud skip line (to the
/// raw stderr handle, which libtest does not capture) and returns false; with
/// `RUNWARM_TEST_STRICT=1` or `CI=true` it fails the test.
pub fn require(needs: &[Need]) -> bool {
    for need in needs {
        let (found, reason) = match need {
            Need::Program(p) => (
                Command::new("sh")
                    .args(["-c", &format!("command -v {p}")])
                    .stdout(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success()),
                format!("needs `{p}` on PATH"),
            ),
            Need::Path(p) => (
                Path::new(p).exists(),
                format!("needs `{p}` (installed by .ci/toolchains)"),
            ),
            Need::Root => (
                nix::unistd::geteuid().is_root(),
                "needs root (run via .ci/run)".to_owned(),
            ),
        };
        if !found {
            let test = std::thread::current().name().unwrap_or("?").to_owned();
            let strict = std::env::var("RUNWARM_TEST_STRICT").is_ok_and(|v| v == "1")
                || std::env::var("CI").is_ok_and(|v| v == "true");
            if strict {
                panic!(
                    "{test}: {reason}; RUNWARM_TEST_STRICT/CI is set, so this is a failure, not a skip"
                );
            }
            let _ = writeln!(std::io::stderr(), "*** SKIPPED {test}: {reason} ***");
            return false;
        }
    }
    true
}

/// The directory holding the workspace's built binaries.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf();
    let daemon = dir.join("runwarmd");
    assert!(
        daemon.exists(),
        "{} is missing: run `cargo test --workspace` (or `cargo build --workspace --bins`) first",
        daemon.display()
    );
    dir
}

/// How long [`Daemon::register`] waits for a prepare (a Maven download, a Go toolchain seed
/// on a loaded machine).
pub const PREPARE_BOUND: Duration = Duration::from_secs(300);

/// Pids whose `/proc/PID/environ` contains `needle` as one entry. A zombie has no environ to
/// read; a live process does.
pub fn processes_with_env(needle: &str) -> Vec<i32> {
    processes_whose("environ", |env| {
        env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes())
    })
}

/// Live host processes whose command line contains `needle`.
pub fn processes_with_cmdline(needle: &str) -> Vec<i32> {
    processes_whose("cmdline", |cmd| {
        let cmd: Vec<u8> = cmd.iter().map(|&b| if b == 0 { b' ' } else { b }).collect();
        String::from_utf8_lossy(&cmd).contains(needle)
    })
}

/// Pids whose `/proc/PID/<file>` can be read and satisfies `matches`.
fn processes_whose(file: &str, matches: impl Fn(&[u8]) -> bool) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_str()?.parse::<i32>().ok()?;
            let content = std::fs::read(e.path().join(file)).ok()?;
            matches(&content).then_some(pid)
        })
        .collect()
}

fn describe(pid: i32) -> String {
    let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmd: Vec<String> = cmd
        .split(|b| *b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    format!("{pid}: {}", cmd.join(" ").trim())
}
