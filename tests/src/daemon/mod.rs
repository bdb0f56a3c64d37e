//! A running daemon: starting, stopping, restarting it, its log, and the check that it left
//! no process behind ([`builder`] starts one, [`requests`] talks to it).

mod builder;
mod requests;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use runwarm_supervisor::client::Client;

use crate::{bin_dir, describe, processes_with_env};
pub use builder::DaemonBuilder;

/// A running daemon.
#[derive(Debug)]
pub struct Daemon {
    dir: tempfile::TempDir,
    socket: PathBuf,
    child: Option<Child>,
    client: Client,
    instance: String,
    log_path: PathBuf,
    config_path: PathBuf,
    exit_status: Option<std::process::ExitStatus>,
}

impl Daemon {
    /// A builder.
    pub fn builder() -> DaemonBuilder {
        DaemonBuilder::default()
    }

    /// A daemon with the default settings and the samples.
    pub async fn start() -> Daemon {
        Self::builder().start().await
    }

    async fn wait_ready(&mut self) {
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "runwarmd exited during start-up ({status})\n{}",
                    self.report()
                );
            }
            if let Ok(r) = self.client.get("/readyz").await
                && r.status == 200
            {
                break;
            }
            assert!(
                Instant::now() < until,
                "runwarmd not ready within 60 s\n{}",
                self.report()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let info = self
            .client
            .get_json("/v1/info")
            .await
            .expect("GET /v1/info");
        self.instance = info["instance"].as_str().expect("instance id").to_owned();
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The temporary directory (config, state, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Sends a signal to the daemon.
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.pid()).unwrap());
        nix::sys::signal::kill(pid, sig).unwrap();
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The log once it holds `needle` at least `count` times; panics after 20 s. The daemon's
    /// log thread writes a line shortly after the event, so a line about a call can come after
    /// the call's answer.
    pub async fn log_with(&self, needle: &str, count: usize) -> String {
        let until = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let log = self.log();
            if log.matches(needle).count() >= count {
                return log;
            }
            assert!(
                std::time::Instant::now() < until,
                "no {count} × {needle:?} in the log\n{}",
                self.report()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The daemon's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Host pids whose environment carries this daemon instance's id.
    pub fn instance_processes(&self) -> Vec<i32> {
        processes_with_env(&format!("RUNWARM_INSTANCE={}", self.instance))
    }

    /// The last lines of the daemon's log, for failure messages.
    pub fn report(&self) -> String {
        let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!(
            "--- runwarmd log ({}) ---\n{}\n---",
            self.log_path.display(),
            tail.join("\n")
        )
    }

    /// Sends SIGTERM, waits for exit (killing after 20 s); returns the exit status.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let Some(mut child) = self.child.take() else {
            return self.exit_status;
        };
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).ok()?);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.exit_status = Some(status);
                return Some(status);
            }
            if Instant::now() > until {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the daemon with SIGKILL (a crash: no drain, no flush) and waits for it to die.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the daemon again on the same config and state directory (after [`Daemon::kill9`]
    /// or [`Daemon::stop`]); its log is appended to the same file.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "restart of a daemon that still runs");
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.log_path)
            .unwrap();
        let child = Command::new(bin_dir().join("runwarmd"))
            .arg("--config")
            .arg(&self.config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("restart runwarmd");
        self.child = Some(child);
        self.wait_ready().await;
    }

    fn assert_no_leaks(&self) {
        if self.instance.is_empty() {
            return;
        }
        let until = Instant::now() + Duration::from_secs(5);
        let mut left = self.instance_processes();
        while !left.is_empty() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
            left = self.instance_processes();
        }
        if !left.is_empty() {
            let described: Vec<String> = left.iter().map(|p| describe(*p)).collect();
            for p in &left {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(*p),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            if !std::thread::panicking() {
                panic!(
                    "processes of this daemon survived its shutdown: {described:?}\n{}",
                    self.report()
                );
            }
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let status = self.stop();
        self.assert_no_leaks();
        if !std::thread::panicking() {
            assert!(
                status.is_some_and(|s| s.success()),
                "runwarmd did not exit 0 on SIGTERM ({status:?})\n{}",
                self.report()
            );
        }
    }
}
