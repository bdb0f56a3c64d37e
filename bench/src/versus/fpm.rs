//! The benchmark's own PHP-FPM: Debian's `php-fpm` (installed with apt when missing and the
//! benchmark runs as root), a static pool on a Unix socket in a temporary directory, and a
//! one-file `hello.php` that does what the runwarm handler does: decode the JSON body, answer
//! `{"greeting": "hello " + name}` as JSON.
//!
//! [`OwnFpm`] is a guard like [`crate::daemon::OwnDaemon`]: it stops its master by pid (never by
//! name: other PHP-FPMs on the host are not ours), also when the benchmark fails or panics.

use std::fs::File;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::fastcgi::Connection;

/// The script PHP-FPM runs for every call.
pub const HELLO_PHP: &str = r#"<?php
header('Content-Type: application/json');
$event = json_decode(file_get_contents('php://input'), true);
echo json_encode(['greeting' => 'hello ' . ($event['name'] ?? 'world')]);
"#;

const READY_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_GRACE: Duration = Duration::from_secs(10);
/// Where Debian puts the binary (`php-fpm8.2`), in case `/usr/sbin` is not on PATH.
const SBIN: &str = "/usr/sbin";

/// A running PHP-FPM master owned by the benchmark.
pub struct OwnFpm {
    child: Option<Child>,
    socket: PathBuf,
    script: PathBuf,
    binary: PathBuf,
    log: PathBuf,
    children: usize,
    // Dropped last: the socket, the script and the log live in it.
    dir: tempfile::TempDir,
}

impl OwnFpm {
    /// Starts a static pool of `children` workers and waits until a request is answered.
    pub async fn start(children: usize) -> Result<OwnFpm> {
        let binary = find_or_install()?;
        let dir = tempfile::Builder::new()
            .prefix("rwfpm")
            .tempdir_in("/tmp")
            .context("creating a temporary directory under /tmp for PHP-FPM")?;
        // The pool's user (nobody when run as root) must reach the script.
        fs_err::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
        let socket = dir.path().join("fpm.sock");
        let script = dir.path().join("hello.php");
        fs_err::write(&script, HELLO_PHP)?;
        let log = dir.path().join("fpm.log");
        let config = dir.path().join("php-fpm.conf");
        // As root the workers must run as another user; PHP-FPM refuses root workers without -R.
        let user = if nix::unistd::geteuid().is_root() {
            "user = nobody\ngroup = nogroup\n"
        } else {
            ""
        };
        fs_err::write(
            &config,
            format!(
                "[global]\nerror_log = {log}\ndaemonize = no\n\n[bench]\n{user}listen = {socket}\n\
                 listen.mode = 0666\npm = static\npm.max_children = {children}\n\
                 pm.max_requests = 0\nclear_env = yes\n",
                log = log.display(),
                socket = socket.display(),
            ),
        )?;
        let output =
            File::create(dir.path().join("fpm.out")).context("creating PHP-FPM's output file")?;
        let output_err = output
            .try_clone()
            .context("duplicating PHP-FPM's output file")?;
        let child = crate::daemon::dies_with_us(&binary)
            .arg("--nodaemonize")
            .arg("--fpm-config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(output)
            .stderr(output_err)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut fpm = OwnFpm {
            child: Some(child),
            socket,
            script,
            binary,
            log,
            children: children.max(1),
            dir,
        };
        fpm.wait_ready().await?;
        Ok(fpm)
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub fn binary(&self) -> &Path {
        &self.binary
    }

    pub fn children(&self) -> usize {
        self.children
    }

    /// The FastCGI params of a `POST /hello.php` with a JSON body of `length` bytes.
    pub fn params(&self, length: &str) -> Vec<(&'static str, String)> {
        let script = self.script.display().to_string();
        vec![
            ("GATEWAY_INTERFACE", "CGI/1.1".to_owned()),
            ("SERVER_PROTOCOL", "HTTP/1.1".to_owned()),
            ("REQUEST_METHOD", "POST".to_owned()),
            ("SCRIPT_FILENAME", script),
            ("SCRIPT_NAME", "/hello.php".to_owned()),
            ("REQUEST_URI", "/hello.php".to_owned()),
            ("CONTENT_TYPE", "application/json".to_owned()),
            ("CONTENT_LENGTH", length.to_owned()),
        ]
    }

    /// The master's pid, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn log_tail(&self) -> String {
        let mut text = fs_err::read_to_string(&self.log).unwrap_or_default();
        text.push_str(&fs_err::read_to_string(self.dir.path().join("fpm.out")).unwrap_or_default());
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let until = Instant::now() + READY_TIMEOUT;
        let body = br#"{"name":"ready"}"#;
        let length = body.len().to_string();
        let owned = self.params(&length);
        let params: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait().context("polling php-fpm")?
            {
                bail!(
                    "php-fpm exited during start-up ({status}); its log:\n{}",
                    self.log_tail()
                );
            }
            if self.socket.exists()
                && let Ok(mut conn) = Connection::connect(&self.socket).await
                && let Ok(answer) = conn.request(&params, body).await
                && answer.status == 200
            {
                return Ok(());
            }
            if Instant::now() >= until {
                bail!(
                    "php-fpm did not answer on {} within {} s; its log:\n{}",
                    self.socket.display(),
                    READY_TIMEOUT.as_secs(),
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGQUIT (graceful) to the master by pid, then SIGKILL after a grace period.
    pub fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(pid) = i32::try_from(child.id()) {
            // ESRCH only means it is gone already.
            let _ = kill(Pid::from_raw(pid), Signal::SIGQUIT);
        }
        let until = Instant::now() + STOP_GRACE;
        while Instant::now() < until {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for OwnFpm {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// `php-fpm` or Debian's versioned `php-fpmX.Y`, on PATH or in /usr/sbin; installed with apt
/// when missing and the benchmark runs as root (`.ci/toolchains` installs it for CI).
fn find_or_install() -> Result<PathBuf> {
    if let Some(found) = find() {
        return Ok(found);
    }
    if !nix::unistd::geteuid().is_root() {
        bail!("php-fpm is not installed: apt-get install php-fpm (as root)");
    }
    crate::progress("php-fpm is missing: apt-get install -y php-fpm");
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "php-fpm"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .status()
    };
    let installed = install().is_ok_and(|s| s.success())
        || (Command::new("apt-get")
            .args(["update", "-qq"])
            .stdin(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
            && install().is_ok_and(|s| s.success()));
    if !installed {
        bail!("installing php-fpm with apt-get failed");
    }
    find().context("php-fpm was installed but no php-fpm binary was found")
}

fn find() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.push(PathBuf::from(SBIN));
    for dir in &dirs {
        let plain = dir.join("php-fpm");
        if plain.is_file() {
            return Some(plain);
        }
        // Debian's package installs only the versioned name, e.g. php-fpm8.2.
        let mut versioned: Vec<PathBuf> = fs_err::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_prefix("php-fpm"))
                    .is_some_and(|v| {
                        !v.is_empty() && v.chars().all(|c| c.is_ascii_digit() || c == '.')
                    })
            })
            .collect();
        versioned.sort();
        if let Some(newest) = versioned.pop() {
            return Some(newest);
        }
    }
    None
}
