//! The benchmark's own `runwarmd`: started from the release build next to this executable, in a
//! short temporary directory, and stopped again whatever happens.
//!
//! [`OwnDaemon`] is a guard: [`OwnDaemon::stop`] sends SIGTERM and waits for the drain, and its
//! `Drop` does the same (then SIGKILL) when the benchmark returns early with an error or panics,
//! so no daemon or warm executor outlives a failed run.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use runwarm_supervisor::client::Client;

/// How long the daemon may take to answer `/readyz` with 200.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a SIGTERM'd daemon may take to drain before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(15);

/// A running `runwarmd` owned by the benchmark.
#[derive(Debug)]
pub struct OwnDaemon {
    child: Option<Child>,
    socket: PathBuf,
    binary: PathBuf,
    log_path: PathBuf,
    // Dropped last: the daemon's socket, state and log live in it.
    dir: tempfile::TempDir,
}

/// How the daemon ended.
#[derive(Debug, Clone, Copy)]
pub struct Stopped {
    pub status: Option<ExitStatus>,
    pub took: Duration,
    pub killed: bool,
}

impl Stopped {
    /// How it ended and how long that took, for the reports' closing line.
    pub fn describe(&self) -> String {
        let how = match (self.killed, self.status) {
            (true, _) => "killed after the SIGTERM grace period".to_owned(),
            (false, Some(status)) => format!("{status}"),
            (false, None) => "status unknown".to_owned(),
        };
        format!("{how}, after {} ms", self.took.as_millis())
    }
}

impl OwnDaemon {
    /// Starts `runwarmd` from the directory of this executable and waits until it is ready;
    /// `extra_config` goes into its TOML config before the `[log]` table (top-level keys, then
    /// tables such as `[sandbox]`).
    pub async fn start(extra_config: &str) -> Result<OwnDaemon> {
        OwnDaemon::start_in(&release_dir()?, extra_config).await
    }

    /// Like [`OwnDaemon::start`], with `runwarmd` and its helpers from `bins` (another build,
    /// to compare two builds in one run).
    pub async fn start_in(bins: &Path, extra_config: &str) -> Result<OwnDaemon> {
        let binary = bins.join("runwarmd");
        let exec_command = bins.join("runwarm-exec-command");
        for needed in [&binary, &exec_command] {
            if !needed.exists() {
                bail!(
                    "{} is missing: run `cargo build --release --workspace --bins` first",
                    needed.display()
                );
            }
        }
        // Under /tmp with a short prefix: a Unix socket path may not exceed 108 bytes.
        let dir = tempfile::Builder::new()
            .prefix("rwb")
            .tempdir_in("/tmp")
            .context("creating a temporary directory under /tmp for the daemon")?;
        let socket = dir.path().join("s.sock");
        let config_path = dir.path().join("runwarmd.toml");
        // No samples: since prepare landed, a new state directory would prepare every sample
        // (a Maven download, Go builds) in the background, during the measurements.
        let config = format!(
            "socket = {}\nstate_dir = {}\nexec_command = {}\nload_samples = false\n{extra_config}\n\n[log]\nlevel = \"warn\"\n",
            toml_string(&socket),
            toml_string(&dir.path().join("state")),
            toml_string(&exec_command),
        );
        fs_err::write(&config_path, config)?;
        let log_path = dir.path().join("daemon.log");
        let log =
            File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
        let log_err = log
            .try_clone()
            .with_context(|| format!("duplicating the handle of {}", log_path.display()))?;
        let child = dies_with_us(&binary)
            .arg("--config")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut daemon = OwnDaemon {
            child: Some(child),
            socket,
            binary,
            log_path,
            dir,
        };
        daemon.wait_ready().await?;
        Ok(daemon)
    }

    /// The socket it listens on.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Its pid, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The binary that was started.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// Its temporary directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let client = Client::new(&self.socket).with_timeout(Duration::from_secs(5));
        let until = Instant::now() + READY_TIMEOUT;
        loop {
            let exited = match self.child.as_mut() {
                Some(child) => child.try_wait().context("polling runwarmd")?,
                None => None,
            };
            if let Some(status) = exited {
                bail!(
                    "runwarmd exited during start-up ({status}); its log:\n{}",
                    self.log_tail()
                );
            }
            if let Ok(answer) = client.get("/readyz").await
                && answer.status == 200
            {
                return Ok(());
            }
            if Instant::now() >= until {
                bail!(
                    "runwarmd did not answer /readyz with 200 within {} s; its log:\n{}",
                    READY_TIMEOUT.as_secs(),
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The last lines of the daemon's log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = fs_err::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        if tail.is_empty() {
            "(empty)".to_owned()
        } else {
            tail
        }
    }

    /// Sends SIGTERM, waits for the drain (killing the daemon after a grace period).
    pub fn stop(mut self) -> Stopped {
        self.terminate()
    }

    fn terminate(&mut self) -> Stopped {
        let started = Instant::now();
        let Some(mut child) = self.child.take() else {
            return Stopped {
                status: None,
                took: Duration::ZERO,
                killed: false,
            };
        };
        let pid = i32::try_from(child.id()).ok().map(Pid::from_raw);
        if let Some(pid) = pid {
            // ESRCH only means it has already exited; try_wait below collects it.
            let _ = kill(pid, Signal::SIGTERM);
        }
        let until = started + STOP_GRACE;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    return Stopped {
                        status: Some(status),
                        took: started.elapsed(),
                        killed: false,
                    };
                }
                Ok(None) if Instant::now() < until => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Ok(None) | Err(_) => break,
            }
        }
        let _ = child.kill();
        let status = child.wait().ok();
        Stopped {
            status,
            took: started.elapsed(),
            killed: true,
        }
    }
}

impl Drop for OwnDaemon {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.terminate();
        }
    }
}

/// A command for `program` under `setpriv --pdeathsig TERM` when util-linux has it. The guards'
/// `Drop` does not run when the benchmark is killed (Ctrl-C, a timeout), and a daemon or a
/// PHP-FPM master would then outlive it; with the parent-death signal each gets SIGTERM and
/// stops what it started itself.
pub fn dies_with_us(program: &Path) -> Command {
    let setpriv = Path::new("/usr/bin/setpriv");
    if setpriv.is_file() {
        let mut command = Command::new(setpriv);
        command.args(["--pdeathsig", "TERM", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// The directory of this executable, where cargo also puts `runwarmd` (`target/release`).
pub fn release_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("finding the benchmark's own executable")?;
    exe.parent()
        .map(Path::to_path_buf)
        .with_context(|| format!("{} has no parent directory", exe.display()))
}

/// A TOML basic string holding a path (quotes and backslashes escaped).
fn toml_string(path: &Path) -> String {
    let text = path.display().to_string();
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_strings_escape_quotes_and_backslashes() {
        assert_eq!(toml_string(Path::new("/tmp/a")), "\"/tmp/a\"");
        assert_eq!(
            toml_string(Path::new("/tmp/a\"b\\c")),
            "\"/tmp/a\\\"b\\\\c\""
        );
    }
}
