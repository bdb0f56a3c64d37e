//! [`DaemonBuilder`]: the config, runtimes and environment of a daemon to start.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use runwarm_supervisor::client::Client;

use super::Daemon;
use crate::bin_dir;

/// Builds a daemon.
#[derive(Debug, Default)]
pub struct DaemonBuilder {
    runtimes: Vec<(String, String)>,
    extra_config: String,
    no_samples: bool,
    env: Vec<(String, String)>,
    socket_activation: bool,
    state_dir: Option<PathBuf>,
    stderr: Option<std::os::fd::OwnedFd>,
}

impl DaemonBuilder {
    /// Adds a runtime definition file (`NAME.toml` with `text`).
    pub fn runtime(mut self, name: &str, text: &str) -> Self {
        self.runtimes.push((name.to_owned(), text.to_owned()));
        self
    }

    /// Appends TOML to the config (tables such as `[pools]`).
    pub fn config(mut self, toml: &str) -> Self {
        self.extra_config.push_str(toml);
        self.extra_config.push('\n');
        self
    }

    /// Sets an environment variable of the daemon.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// The test binds the socket and hands it over as fd 3 with `LISTEN_FDS=1` and
    /// `LISTEN_PID` set to the daemon's pid, the way systemd's socket activation does.
    pub fn socket_activation(mut self) -> Self {
        self.socket_activation = true;
        self
    }

    /// Keeps the state in `dir` (say a small tmpfs the test mounted) instead of the temp dir.
    pub fn state_dir(mut self, dir: &Path) -> Self {
        self.state_dir = Some(dir.to_path_buf());
        self
    }

    /// Connects the daemon's stderr, where it logs, to `fd` instead of the log file (say a pipe
    /// the test does not read); [`Daemon::log`] then has stdout only.
    pub fn stderr(mut self, fd: std::os::fd::OwnedFd) -> Self {
        self.stderr = Some(fd);
        self
    }

    /// Does not register the samples.
    pub fn without_samples(mut self) -> Self {
        self.no_samples = true;
        self
    }

    /// Starts the daemon and waits until it is ready.
    pub async fn start(self) -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("rw")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let runtimes_dir = dir.path().join("runtimes");
        std::fs::create_dir_all(&runtimes_dir).unwrap();
        for (name, text) in &self.runtimes {
            std::fs::write(runtimes_dir.join(format!("{name}.toml")), text).unwrap();
        }
        let bins = bin_dir();
        let config = format!(
            "socket = \"{sock}\"\nstate_dir = \"{state}\"\nruntimes_dirs = [\"{rt}\"]\nload_samples = {samples}\nexec_command = \"{exec}\"\n{extra}\n",
            sock = dir.path().join("s.sock").display(),
            state = self
                .state_dir
                .clone()
                .unwrap_or_else(|| dir.path().join("state"))
                .display(),
            rt = runtimes_dir.display(),
            samples = !self.no_samples,
            exec = bins.join("runwarm-exec-command").display(),
            extra = with_log_table(&self.extra_config),
        );
        let config_path = dir.path().join("runwarmd.toml");
        std::fs::write(&config_path, config).unwrap();
        let log_path = dir.path().join("daemon.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let socket = dir.path().join("s.sock");
        let mut cmd = if self.socket_activation {
            // The listener goes in as stdin and the shell moves it to fd 3, so no unsafe
            // pre_exec is needed; `$$` is the pid runwarmd keeps after `exec`.
            let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg("LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" --config \"$1\" 3<&0 0</dev/null")
                .arg(bins.join("runwarmd"))
                .arg(&config_path)
                .stdin(Stdio::from(std::os::fd::OwnedFd::from(listener)));
            c
        } else {
            let mut c = Command::new(bins.join("runwarmd"));
            c.arg("--config").arg(&config_path).stdin(Stdio::null());
            c
        };
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let stderr = match self.stderr {
            Some(fd) => Stdio::from(fd),
            None => Stdio::from(log.try_clone().unwrap()),
        };
        let child = cmd
            .stdout(log)
            .stderr(stderr)
            .spawn()
            .expect("start runwarmd");
        let mut daemon = Daemon {
            config_path: config_path.clone(),
            dir,
            socket: socket.clone(),
            child: Some(child),
            client: Client::new(&socket).with_timeout(Duration::from_secs(120)),
            instance: String::new(),
            log_path,
            exit_status: None,
        };
        daemon.wait_ready().await;
        daemon
    }
}

fn with_log_table(extra: &str) -> String {
    let mut text = extra.to_owned();
    if !extra.contains("[log]") {
        text.push_str("\n[log]\nformat = \"json\"\nlevel = \"info\"\n");
    }
    // Each test daemon has its own state: preparing every sample (a Maven download, a Go
    // build) at each start would swamp the machine; a test prepares what it invokes.
    if !extra.contains("[prepare]") {
        text.push_str("\n[prepare]\nat_start = \"lazy\"\n");
    }
    text
}
