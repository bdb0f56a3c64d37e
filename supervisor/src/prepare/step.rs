//! Running one prepare step: a runtime's shell script, confined like an executor except that it
//! has the host network (package registries), a writable output folder and a disk-backed
//! scratch folder, and its own limits. Its output (stdout and stderr together) is the step's log.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::sandbox::oneshot::{self, Capture, Ended, OneShot, RunLimits};
use crate::sandbox::{Binds, Confinement, INSIDE_TASK};
use crate::worker::LaunchSpec;

/// Most bytes of a step's output kept (the start and the end, where tools put what matters).
const LOG_MAX: usize = 256 * 1024;

/// Limits of one step.
pub type StepLimits = RunLimits;

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
    let inner = LaunchSpec {
        program: PathBuf::from("/bin/sh"),
        args: vec!["-euc".into(), step.script.to_owned(), "prepare".into()],
        env: step.env,
        cwd: step.cwd,
        spec_fd: None,
    };
    let binds = Binds {
        task_dir: step.src.to_owned(),
        ro: step.ro,
        rw: step.rw,
        network_host: true,
        tmp_size_bytes: None,
        secret_files: Vec::new(),
    };
    let run = OneShot {
        name: format!("prepare-{}", step.name),
        inner,
        binds,
        stdin: None,
        capture: Capture::HeadAndTail(LOG_MAX),
    };
    let out = oneshot::run(confinement, run, limits).await?;
    let mut log = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.stderr.is_empty() {
        if !log.is_empty() && !log.ends_with('\n') {
            log.push('\n');
        }
        log.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    let status = match &out.ended {
        Ended::OutOfMemory => format!(
            "the {} step ran out of memory (limit {} MiB)",
            step.name,
            limits.memory_bytes >> 20
        ),
        Ended::Exited(code) => format!("the {} step exited with status {code}", step.name),
        Ended::Killed(how) => format!("the {} step was killed ({how})", step.name),
        Ended::WaitFailed(e) => format!("waiting for the {} step: {e}", step.name),
        Ended::TimedOut => format!(
            "the {} step did not finish within {}s and was killed",
            step.name,
            limits.timeout.as_secs()
        ),
    };
    Ok(StepOutcome {
        ok: out.success(),
        log: sandbox_failure_explained(log),
        status,
        elapsed: out.elapsed,
    })
}

/// A sandbox helper failure is reported on stderr in a machine form: say it in words.
fn sandbox_failure_explained(log: String) -> String {
    match runwarm_sandbox::StepFailure::find_in_stderr(&log) {
        Some(f) => format!("{log}\nsandbox: {f}"),
        None => log,
    }
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
