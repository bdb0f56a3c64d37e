//! Running one prepare step: a runtime's shell script, confined like an executor except that it
//! has the host network (package registries), a writable output folder and a disk-backed
//! scratch folder, and its own limits. Its output (stdout and stderr together) is the step's log.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::sandbox::cgroup::CgroupLimits;
use crate::sandbox::{Binds, Confinement, INSIDE_TASK};
use crate::worker::LaunchSpec;

/// Most bytes of a step's output kept (the start and the end, where tools put what matters).
const LOG_MAX: usize = 256 * 1024;

/// Limits of one step.
#[derive(Debug, Clone, Copy)]
pub struct StepLimits {
    /// Wall-clock limit.
    pub timeout: Duration,
    /// Memory of the step's cgroup.
    pub memory_bytes: u64,
    /// Processes.
    pub pids: u64,
    /// CPU cores.
    pub cpu: f64,
    /// Size of its private `/tmp`.
    pub tmp_bytes: u64,
}

/// One step to run.
#[derive(Debug)]
pub struct Step<'a> {
    /// `dependencies` or `build`, for logs and cgroup names.
    pub name: &'static str,
    /// The shell script.
    pub script: &'a str,
    /// Host folder seen read-only as the sources.
    pub src: &'a Path,
    /// Read-only binds `(host, inside)`: the dependency folder for a build, the runtime's
    /// host paths, the interpreter's prefix, the executor shims.
    pub ro: Vec<(PathBuf, PathBuf)>,
    /// Writable binds `(host, inside)`: the output folder and the scratch folder.
    pub rw: Vec<(PathBuf, PathBuf)>,
    /// The environment (complete; nothing of the daemon's leaks in).
    pub env: Vec<(String, String)>,
    /// Working directory as the step sees it.
    pub cwd: PathBuf,
}

/// How a step ended.
#[derive(Debug)]
pub struct StepOutcome {
    /// Whether it exited 0.
    pub ok: bool,
    /// What it printed (bounded).
    pub log: String,
    /// Why it failed, for a person: the exit status or the limit it hit.
    pub status: String,
    /// How long it ran.
    pub elapsed: Duration,
}

/// Runs `step` confined by `confinement` (or plainly when executors are unconfined).
pub async fn run(
    confinement: &Confinement,
    step: Step<'_>,
    limits: StepLimits,
) -> Result<StepOutcome, String> {
    let started = Instant::now();
    let inner = LaunchSpec {
        program: PathBuf::from("/bin/sh"),
        args: vec!["-euc".into(), step.script.to_owned(), "prepare".into()],
        env: step.env,
        cwd: step.cwd,
        spec_fd: None,
    };
    let (launch, cgroup) = if confinement.namespaces() {
        let id = format!("prepare-{}", uuid::Uuid::now_v7().simple());
        let cg = CgroupLimits {
            memory_bytes: Some(limits.memory_bytes),
            pids: Some(limits.pids),
            cpu_cores: Some(limits.cpu),
        };
        let binds = Binds {
            task_dir: step.src.to_owned(),
            ro: step.ro,
            rw: step.rw,
            network_host: true,
            tmp_size_bytes: Some(limits.tmp_bytes),
            secret_files: Vec::new(),
        };
        let wrapped = confinement.wrap_with(&id, &inner, binds, &cg)?;
        (wrapped.launch, wrapped.cgroup)
    } else {
        (inner, None)
    };
    let mut cmd = tokio::process::Command::new(&launch.program);
    cmd.args(&launch.args)
        .env_clear()
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .current_dir(if confinement.namespaces() {
            Path::new("/")
        } else {
            launch.cwd.as_path()
        })
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let spec_fd = match launch.spec_fd.as_deref() {
        Some(fd) => Some(
            crate::worker::pass_spec_fd(&mut cmd, fd)
                .map_err(|e| format!("passing the {} step its sandbox spec: {e}", step.name))?,
        ),
        None => None,
    };
    let mut child = cmd.spawn().map_err(|e| {
        format!(
            "starting the {} step ({:?}): {e}",
            step.name, launch.program
        )
    })?;
    drop(spec_fd);
    let pid = child.id();
    let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
        return Err("the step's output pipes are missing".into());
    };
    let collect = async {
        let (a, b) = tokio::join!(read_bounded(out), read_bounded(err));
        let mut log = a;
        if !b.is_empty() {
            if !log.is_empty() && !log.ends_with('\n') {
                log.push('\n');
            }
            log.push_str(&b);
        }
        log
    };
    let waited = tokio::time::timeout(limits.timeout, async {
        let (log, status) = tokio::join!(collect, child.wait());
        (log, status)
    })
    .await;
    let outcome = match waited {
        Ok((log, Ok(status))) => {
            let oom = cgroup.as_ref().is_some_and(|c| c.oom_kills() > 0);
            let status_text = if oom {
                format!(
                    "the {} step ran out of memory (limit {} MiB)",
                    step.name,
                    limits.memory_bytes >> 20
                )
            } else if let Some(code) = status.code() {
                format!("the {} step exited with status {code}", step.name)
            } else {
                format!("the {} step was killed ({status})", step.name)
            };
            StepOutcome {
                ok: status.success(),
                log: sandbox_failure_explained(log),
                status: status_text,
                elapsed: started.elapsed(),
            }
        }
        Ok((log, Err(e))) => StepOutcome {
            ok: false,
            log,
            status: format!("waiting for the {} step: {e}", step.name),
            elapsed: started.elapsed(),
        },
        Err(_) => {
            if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = child.kill().await;
            StepOutcome {
                ok: false,
                log: String::new(),
                status: format!(
                    "the {} step did not finish within {}s and was killed",
                    step.name,
                    limits.timeout.as_secs()
                ),
                elapsed: started.elapsed(),
            }
        }
    };
    if let Some(cg) = cgroup {
        // Killing and removing a cgroup waits for it to empty: not on this thread.
        let _ = tokio::task::spawn_blocking(move || drop(cg)).await;
    }
    Ok(outcome)
}

/// A sandbox helper failure is reported on stderr in a machine form: say it in words.
fn sandbox_failure_explained(log: String) -> String {
    match runwarm_sandbox::StepFailure::find_in_stderr(&log) {
        Some(f) => format!("{log}\nsandbox: {f}"),
        None => log,
    }
}

async fn read_bounded(mut r: impl AsyncRead + Unpin) -> String {
    let mut head = Vec::new();
    let mut tail: std::collections::VecDeque<u8> = std::collections::VecDeque::new();
    let mut cut = false;
    let mut buf = [0u8; 8192];
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for &b in &buf[..n] {
            if head.len() < LOG_MAX / 4 {
                head.push(b);
            } else {
                tail.push_back(b);
                if tail.len() > LOG_MAX * 3 / 4 {
                    tail.pop_front();
                    cut = true;
                }
            }
        }
    }
    let mut text = String::from_utf8_lossy(&head).into_owned();
    if cut {
        text.push_str("\n[… output cut …]\n");
    }
    let tail: Vec<u8> = tail.into_iter().collect();
    text.push_str(&String::from_utf8_lossy(&tail));
    text
}

/// The end of a failed step's log a person needs: its last lines that say something, without
/// the progress noise package managers print.
pub fn summary(log: &str, max_lines: usize) -> String {
    let lines: Vec<&str> = log
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .filter(|l| !l.starts_with("Downloading ") && !l.starts_with("[INFO] Download"))
        .collect();
    let start = lines.len().saturating_sub(max_lines);
    let mut text = lines[start..].join("\n");
    if text.len() > 4096 {
        let cut = text.len() - 4096;
        let boundary = (cut..text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(text.len());
        text = format!("…{}", &text[boundary..]);
    }
    text
}

/// The inside path a step's sources are seen at.
pub fn inside_src(confined: bool, host: &Path) -> PathBuf {
    if confined {
        PathBuf::from(INSIDE_TASK)
    } else {
        host.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_keeps_the_last_lines_that_matter() {
        let log = "Collecting x\nDownloading x-1.tar.gz\n\nERROR: No matching distribution found for no-such-package-xyz==1\n";
        assert_eq!(
            summary(log, 2),
            "Collecting x\nERROR: No matching distribution found for no-such-package-xyz==1"
        );
        let long = "é".repeat(5000);
        assert!(summary(&long, 5).len() <= 4100);
    }
}
