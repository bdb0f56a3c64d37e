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
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hyper::Method;
use runwarm_supervisor::client::{Client, InvokeOptions};
use serde_json::{Value, json};

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

    /// One API call as `uid` with supplementary `groups`, through curl under `setpriv` (the
    /// daemon sees that uid in `SO_PEERCRED`): (status, JSON body or the text). The socket
    /// must be open to that uid (`[access] socket_mode`). Status 0 when nothing answered (the
    /// connection was refused or reset).
    pub fn call_as(
        &self,
        uid: u32,
        groups: &[u32],
        method: &str,
        path: &str,
        body: Option<&str>,
        headers: &[&str],
    ) -> (u16, Value) {
        let mut cmd = Command::new("setpriv");
        cmd.arg(format!("--reuid={uid}"))
            .arg(format!("--regid={uid}"));
        if groups.is_empty() {
            cmd.arg("--clear-groups");
        } else {
            let list: Vec<String> = groups.iter().map(u32::to_string).collect();
            cmd.arg(format!("--groups={}", list.join(",")));
        }
        cmd.args(["curl", "-sS", "--max-time", "60", "-w", "\n%{http_code}"])
            .arg("--unix-socket")
            .arg(self.socket())
            .args(["-X", method])
            .arg(format!("http://localhost{path}"));
        for h in headers {
            cmd.args(["-H", h]);
        }
        if let Some(b) = body {
            cmd.args(["-H", "content-type: application/json", "--data-binary", b]);
        }
        let out = cmd.output().expect("run curl under setpriv");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
        let status: u16 = status.trim().parse().unwrap_or_else(|_| {
            panic!(
                "curl as uid {uid}: {text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let v = serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_owned()));
        (status, v)
    }

    /// The execution's record once it is terminal (completed, failed, timeout or cancelled);
    /// fails the test after 60 s.
    pub async fn wait_terminal(&self, id: &str) -> Value {
        self.wait_terminal_within(id, Duration::from_secs(60)).await
    }

    /// [`Daemon::wait_terminal`] with another bound (a first call that prepares a toolchain).
    pub async fn wait_terminal_within(&self, id: &str, bound: Duration) -> Value {
        let until = Instant::now() + bound;
        loop {
            let (status, rec) = self
                .call(Method::GET, &format!("/v1/executions/{id}"), None)
                .await;
            if status == 200
                && ["completed", "failed", "timeout", "cancelled"]
                    .contains(&rec["state"].as_str().unwrap_or(""))
            {
                return rec;
            }
            assert!(
                Instant::now() < until,
                "{id} not terminal: {status} {rec}\n{}",
                self.report()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs the `runwarm` client against this daemon's socket: (exit code, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(bin_dir().join("runwarm"))
            .arg("--socket")
            .arg(self.socket())
            .args(args)
            .output()
            .expect("run runwarm");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
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

    /// Sends a request; returns (status, JSON body or the raw text as a JSON string).
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| serde_json::to_vec(&b).unwrap());
        self.raw(method, path, &[], body).await
    }

    /// Sends raw bytes.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> (u16, Value) {
        let r = self
            .client
            .request(method.clone(), path, headers, body)
            .await
            .unwrap_or_else(|e| panic!("{method} {path} failed: {e}\n{}", self.report()));
        let v = serde_json::from_slice(&r.body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&r.body).into_owned()));
        (r.status, v)
    }

    /// Registers a bundle and waits until its prepare has settled (ready or failed), as
    /// `runwarm register` does; panics unless 200/201. Returns the version id. Tests of a
    /// version still preparing use [`Daemon::register_answer`].
    pub async fn register(&self, name: &str, manifest: Value, files: Value) -> String {
        let body = self.register_answer(name, manifest, files).await;
        let version = body["version"].as_str().unwrap().to_owned();
        if body.get("prepare").is_some() {
            self.wait_prepare(name, &version, &["ready", "failed"], PREPARE_BOUND)
                .await;
        }
        version
    }

    /// Registers a bundle; panics unless 200/201. Returns the whole answer (`version`,
    /// `created`, and `prepare` when the runtime prepares).
    pub async fn register_answer(&self, name: &str, manifest: Value, files: Value) -> Value {
        let (status, body) = self
            .call(
                Method::POST,
                "/v1/scripts",
                Some(json!({"name": name, "manifest": manifest, "files": files})),
            )
            .await;
        assert!(
            status == 200 || status == 201,
            "register {name}: {status} {body}\n{}",
            self.report()
        );
        body
    }

    /// A version's `prepare` as `GET /v1/scripts/{name}/versions/{version}` shows it (`null`
    /// for a runtime without a prepare section).
    pub async fn prepare_status(&self, name: &str, version: &str) -> Value {
        let path = format!("/v1/scripts/{name}/versions/{version}");
        let (status, body) = self.call(Method::GET, &path, None).await;
        assert_eq!(status, 200, "{path}: {body}");
        body["prepare"].clone()
    }

    /// Polls a version until its prepare state is one of `states`; panics with the last status
    /// after `bound`.
    pub async fn wait_prepare(
        &self,
        name: &str,
        version: &str,
        states: &[&str],
        bound: Duration,
    ) -> Value {
        let until = Instant::now() + bound;
        loop {
            let p = self.prepare_status(name, version).await;
            if states.iter().any(|s| p["state"] == *s) {
                return p;
            }
            assert!(
                Instant::now() < until,
                "{name} {version}: prepare not {states:?} within {bound:?}; last status: {p:#}\n{}",
                self.report()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Invokes and returns (status, body); `query` is appended as is (e.g. `?tag=prod`).
    pub async fn invoke(&self, name: &str, query: &str, payload: Value) -> (u16, Value) {
        self.call(
            Method::POST,
            &format!("/v1/scripts/{name}/invoke{query}"),
            Some(payload),
        )
        .await
    }

    /// Invokes and insists on a completed record; returns it.
    pub async fn invoke_ok(&self, name: &str, payload: Value) -> Value {
        let (status, rec) = self.invoke(name, "", payload).await;
        assert_eq!(status, 200, "{rec}\n{}", self.report());
        assert_eq!(rec["state"], "completed", "{rec:#}\n{}", self.report());
        rec
    }

    /// The client's invoke options type, re-exported for tests.
    pub fn invoke_options() -> InvokeOptions {
        InvokeOptions::default()
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

/// Pids whose `/proc/PID/environ` contains `needle` as one entry.
pub fn processes_with_env(needle: &str) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(env) = std::fs::read(e.path().join("environ")) else {
            continue;
        };
        if env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()) {
            // A zombie still has no environ to read; a live process does.
            out.push(pid);
        }
    }
    out
}

fn describe(pid: i32) -> String {
    let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmd: Vec<String> = cmd
        .split(|b| *b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    format!("{pid}: {}", cmd.join(" ").trim())
}
