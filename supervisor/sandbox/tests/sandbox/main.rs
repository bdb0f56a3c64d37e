//! The helper against the real kernel: runs `/bin/sh -c …` inside and checks what it sees
//! (`confinement`: ids, file system, network, seccomp) and how it starts and ends
//! (`lifecycle`: signals, cgroups, children). Needs
//! root (to map the sandbox ids to 65534 and to write cgroups); without root each test prints a
//! loud `*** SKIPPED ***` line, and fails instead under `RUNWARM_TEST_STRICT=1` or `CI=true`.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is a test failure"
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use runwarm_sandbox::{CgroupJoin, CgroupVersion, SandboxSpec, Step, StepFailure};

const BIN: &str = env!("CARGO_BIN_EXE_runwarm-sandbox");

mod confinement;
mod lifecycle;

/// True when the test may run; otherwise says so loudly (or fails in strict mode).
fn privileged() -> bool {
    if nix::unistd::Uid::effective().is_root() {
        return true;
    }
    let name = std::thread::current().name().unwrap_or("?").to_owned();
    let strict = std::env::var("RUNWARM_TEST_STRICT").is_ok_and(|v| v == "1")
        || std::env::var("CI").is_ok_and(|v| v == "true");
    assert!(!strict, "{name}: needs root (strict mode forbids skipping)");
    let _ = writeln!(std::io::stderr(), "*** SKIPPED *** {name}: needs root");
    false
}

/// A world-readable task dir with one file.
fn task_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(dir.path().join("handler.txt"), "task content\n").unwrap();
    dir
}

fn spec(task: &Path, script: &str) -> SandboxSpec {
    SandboxSpec {
        program: "/bin/sh".into(),
        args: vec!["-c".into(), script.into()],
        env: vec![("PATH".into(), "/usr/bin:/bin".into())],
        ro_binds: SandboxSpec::default_ro_binds(),
        task_dir: task.to_path_buf(),
        tmp_size_bytes: 1 << 20,
        ..SandboxSpec::default()
    }
}

struct Started {
    child: Child,
    status_read: OwnedFd,
}

/// Starts the helper with fd 3 = its stdout and a status pipe on a fd above 3.
fn start(spec: &SandboxSpec) -> Started {
    let (read, write) = nix::unistd::pipe2(OFlag::empty()).unwrap();
    fcntl(&read, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).unwrap();
    let child = Command::new("/bin/sh")
        .args(["-c", r#"exec "$0" "$@" 3>&1"#, BIN, "--spec"])
        .arg(serde_json::to_string(spec).unwrap())
        .args(["--status-fd", &write.as_raw_fd().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(write);
    Started {
        child,
        status_read: read,
    }
}

struct Finished {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    report: String,
}

fn finish(started: Started) -> Finished {
    let out = started.child.wait_with_output().unwrap();
    let mut report = String::new();
    std::fs::File::from(started.status_read)
        .read_to_string(&mut report)
        .unwrap();
    Finished {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        report,
    }
}

fn run(spec: &SandboxSpec) -> Finished {
    let done = finish(start(spec));
    assert!(
        done.report.is_empty(),
        "unexpected status report: {} / {}",
        done.report,
        done.stderr
    );
    done
}

fn libc_enoent() -> i32 {
    nix::errno::Errno::ENOENT as i32
}
