//! One confined run of a tool to its end: a prepare step (`crate::prepare`), a checker or a
//! formatter (`crate::check`). The program starts through the same `runwarm-sandbox` helper as
//! an executor, in a cgroup of its own, with stdin fed from memory and stdout and stderr kept
//! apart and bounded; over its time it is killed (the helper's process group, which is the init
//! of its pid namespace, and its cgroup), so nothing it started survives.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::cgroup::CgroupLimits;
use super::{Binds, Confinement};
use crate::worker::LaunchSpec;

/// Limits of one run.
#[derive(Debug, Clone, Copy)]
pub struct RunLimits {
    /// Wall-clock limit.
    pub timeout: Duration,
    /// Memory of its cgroup.
    pub memory_bytes: u64,
    /// Processes.
    pub pids: u64,
    /// CPU cores.
    pub cpu: f64,
    /// Size of its private `/tmp`.
    pub tmp_bytes: u64,
}

/// How much of an output stream is kept.
#[derive(Debug, Clone, Copy)]
pub enum Capture {
    /// The first quarter and the last three quarters of this many bytes (a build log: where
    /// tools say what matters); what lies between is marked as cut.
    HeadAndTail(usize),
    /// The first this many bytes; the rest is read and dropped, and the output marked as cut
    /// (a formatter's answer, which is worthless cut).
    Head(usize),
}

/// One program to run to its end.
#[derive(Debug)]
pub struct OneShot {
    /// `build`, `check-ruff`, …: for cgroup names and messages.
    pub name: String,
    /// What to run, with paths as the confined program sees them; `cwd` inside.
    pub inner: LaunchSpec,
    /// Host folder seen read-only at `/var/task`, and the other binds.
    pub binds: Binds,
    /// Bytes written to its stdin (then closed); `None`: `/dev/null`.
    pub stdin: Option<Vec<u8>>,
    /// How stdout and stderr are kept.
    pub capture: Capture,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// It exited with this status.
    Exited(i32),
    /// A signal ended it.
    Killed(String),
    /// Its cgroup ran out of memory.
    OutOfMemory,
    /// It ran over its time and was killed.
    TimedOut,
    /// Waiting for it failed.
    WaitFailed(String),
}

/// What a run left.
#[derive(Debug)]
pub struct RunOutcome {
    /// How it ended.
    pub ended: Ended,
    /// What it wrote to stdout (bounded by [`Capture`]).
    pub stdout: Vec<u8>,
    /// Whether stdout was cut.
    pub stdout_cut: bool,
    /// What it wrote to stderr (bounded).
    pub stderr: Vec<u8>,
    /// How long it ran.
    pub elapsed: Duration,
}

impl RunOutcome {
    /// Whether it exited 0.
    pub fn success(&self) -> bool {
        self.ended == Ended::Exited(0)
    }
}

/// Runs `run` confined by `confinement` (or plainly when executors are unconfined) to its end or
/// its time limit. Errors are failures to start it.
pub async fn run(
    confinement: &Confinement,
    run: OneShot,
    limits: RunLimits,
) -> Result<RunOutcome, String> {
    let started = Instant::now();
    let OneShot {
        name,
        inner,
        mut binds,
        stdin,
        capture,
    } = run;
    let (launch, cgroup) = if confinement.namespaces() {
        let id = format!("{name}-{}", uuid::Uuid::now_v7().simple());
        let cg = CgroupLimits {
            memory_bytes: Some(limits.memory_bytes),
            pids: Some(limits.pids),
            cpu_cores: Some(limits.cpu),
        };
        binds.tmp_size_bytes = Some(limits.tmp_bytes);
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
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let spec_fd = match launch.spec_fd.as_deref() {
        Some(fd) => Some(
            crate::worker::pass_spec_fd(&mut cmd, fd)
                .map_err(|e| format!("passing the {name} run its sandbox spec: {e}"))?,
        ),
        None => None,
    };
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("starting the {name} run ({:?}): {e}", launch.program))?;
    drop(spec_fd);
    let pid = child.id();
    let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
        return Err("the run's output pipes are missing".into());
    };
    if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // Fed from a task of its own: a program that writes before it has read all of its
        // input would otherwise deadlock against this one waiting to write. A program that
        // stops reading early (EPIPE) is its own business.
        tokio::spawn(async move {
            let _ = pipe.write_all(&bytes).await;
        });
    }
    let waited = tokio::time::timeout(limits.timeout, async {
        tokio::join!(
            read_bounded(out, capture),
            read_bounded(err, capture),
            child.wait()
        )
    })
    .await;
    let outcome = match waited {
        Ok(((stdout, stdout_cut), (stderr, _), status)) => {
            let oom = cgroup.as_ref().is_some_and(|c| c.oom_kills() > 0);
            let ended = match status {
                _ if oom => Ended::OutOfMemory,
                Ok(s) => match s.code() {
                    Some(code) => Ended::Exited(code),
                    None => Ended::Killed(s.to_string()),
                },
                Err(e) => Ended::WaitFailed(e.to_string()),
            };
            RunOutcome {
                ended,
                stdout,
                stdout_cut,
                stderr,
                elapsed: started.elapsed(),
            }
        }
        Err(_) => {
            if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = child.kill().await;
            RunOutcome {
                ended: Ended::TimedOut,
                stdout: Vec::new(),
                stdout_cut: false,
                stderr: Vec::new(),
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

/// Reads `r` to its end, keeping what `capture` says; whether anything was dropped.
async fn read_bounded(mut r: impl AsyncRead + Unpin, capture: Capture) -> (Vec<u8>, bool) {
    let (head_max, tail_max) = match capture {
        Capture::HeadAndTail(max) => (max / 4, max * 3 / 4),
        Capture::Head(max) => (max, 0),
    };
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
            if head.len() < head_max {
                head.push(b);
            } else if tail_max == 0 {
                cut = true;
            } else {
                tail.push_back(b);
                if tail.len() > tail_max {
                    tail.pop_front();
                    cut = true;
                }
            }
        }
    }
    if cut && tail_max > 0 {
        head.extend_from_slice("\n[… output cut …]\n".as_bytes());
    }
    head.extend(tail);
    (head, cut)
}

/// The inside path a run's `/var/task` is seen at: itself when there is no minimal root.
pub fn inside_task(confinement: &Confinement, host: &Path) -> PathBuf {
    if confinement.minimal_root() {
        PathBuf::from(super::INSIDE_TASK)
    } else {
        host.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn head_capture_keeps_the_start_and_says_it_cut() {
        let data = vec![b'x'; 10_000];
        let (kept, cut) = read_bounded(&data[..], Capture::Head(100)).await;
        assert_eq!(kept.len(), 100);
        assert!(cut);
        let (kept, cut) = read_bounded(&data[..], Capture::Head(20_000)).await;
        assert_eq!(kept.len(), 10_000);
        assert!(!cut);
    }

    #[tokio::test]
    async fn head_and_tail_capture_keeps_both_ends() {
        let mut data = vec![b'a'; 100];
        data.extend(vec![b'm'; 10_000]);
        data.extend(vec![b'z'; 100]);
        let (kept, cut) = read_bounded(&data[..], Capture::HeadAndTail(400)).await;
        assert!(cut);
        assert!(kept.starts_with(&[b'a'; 100]));
        assert!(kept.ends_with(&[b'z'; 100]));
    }
}
