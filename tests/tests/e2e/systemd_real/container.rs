//! The container the real-systemd test boots: a cached Debian root (debootstrap), an overlay
//! of it per run, `unshare` into new namespaces, systemd as PID 1, and commands run inside
//! with `nsenter`; everything it changes on the host is put back when it is dropped.

use std::fmt::Write as _;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use runwarm_e2e::bin_dir;
use serde_json::Value;

use super::host::{container_cgroups, remove_cgroup_tree};

pub(super) const SOCKET: &str = "/run/runwarm/runwarm.sock";
const PATH_INSIDE: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Runs inside the new namespaces: builds the container's root on an overlay of the cached
/// root and execs systemd as PID 1. Arguments: lower root, run directory, the built binaries,
/// the repository's `systemd/` folder (both bound read-only under `/root/src`, where the
/// README's install steps find them as `target/release/` and `systemd/`).
const BOOT_SCRIPT: &str = r#"set -eu
lower=$1; run=$2; bins=$3; units=$4
root=$run/merged
mkdir -p "$run/upper" "$run/work" "$root"
mount -t overlay overlay -o "lowerdir=$lower,upperdir=$run/upper,workdir=$run/work" "$root"
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount -t tmpfs -o mode=0755,nosuid,nodev,noexec cgroup "$root/sys/fs/cgroup"
# The host's hierarchies, read-write: runwarm delegates below its unit's cgroup. With the new
# cgroup namespace each one's root is the cgroup the test made for this container.
while read -r _ dir fstype opts _; do
  case "$dir" in /sys/fs/cgroup/*) ;; *) continue ;; esac
  name=${dir#/sys/fs/cgroup/}
  mkdir -p "$root/sys/fs/cgroup/$name"
  case "$fstype" in
    cgroup2) mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$root/sys/fs/cgroup/$name" ;;
    cgroup)
      o=$(printf '%s' "$opts" | tr ',' '\n' | grep -v -E '^(rw|ro|relatime|nosuid|nodev|noexec)$' | paste -sd, -)
      mount -t cgroup -o "nosuid,nodev,noexec,$o" cgroup "$root/sys/fs/cgroup/$name" ;;
  esac
done < /proc/self/mounts
# A /dev of its own with the usual nodes (mknod works: this is the host's root).
mount -t tmpfs -o mode=0755,nosuid dev "$root/dev"
for n in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
  name=${n%%:*}; rest=${n#*:}
  mknod -m 0666 "$root/dev/$name" c "${rest%%:*}" "${rest#*:}"
done
mkdir -p "$root/dev/pts" "$root/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$root/dev/pts"
ln -s pts/ptmx "$root/dev/ptmx"
ln -s /proc/self/fd "$root/dev/fd"
mkdir -p "$root/root/src/target/release" "$root/root/src/systemd"
mount --bind -o ro "$bins" "$root/root/src/target/release"
mount --bind -o ro "$units" "$root/root/src/systemd"
hostname runwarm-systemd-test
cd "$root"
mkdir -p .oldroot
pivot_root . .oldroot
umount -l /.oldroot
rmdir /.oldroot
exec env -i container=runwarm-test /lib/systemd/systemd
"#;

/// Outside strict mode a loud skip; with `RUNWARM_TEST_STRICT=1` or `CI=true` a failure that
/// says why (the same rule as [`require`], for reasons found while running).
pub(super) fn cannot_run(reason: &str) -> bool {
    let strict = std::env::var("RUNWARM_TEST_STRICT").is_ok_and(|v| v == "1")
        || std::env::var("CI").is_ok_and(|v| v == "true");
    assert!(
        !strict,
        "runwarm_runs_under_a_real_systemd: {reason}; RUNWARM_TEST_STRICT/CI is set, so this is a failure, not a skip"
    );
    let _ = writeln!(
        std::io::stderr(),
        "*** SKIPPED runwarm_runs_under_a_real_systemd: {reason} ***"
    );
    false
}

/// Runs `cmd`, killing it after `limit`; the output so far comes back either way.
pub(super) fn run_bounded(mut cmd: Command, limit: Duration) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    wait_bounded(child, limit).unwrap_or_else(|out| {
        panic!(
            "{cmd:?} did not finish within {limit:?}; stdout: {}; stderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Waits for `child` up to `limit`; past it, kills it and returns what it wrote as `Err`.
fn wait_bounded(child: Child, limit: Duration) -> Result<Output, Output> {
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => Ok(out.unwrap()),
        Err(_) => {
            let _ = kill(pid, Signal::SIGKILL);
            Err(rx.recv().unwrap().unwrap())
        }
    }
}

/// A booted container: `unshare` as a child, systemd as its PID 1.
pub(super) struct Container {
    unshare: Child,
    /// systemd's pid on the host, for `nsenter`.
    pub(super) pid1: i32,
    run: tempfile::TempDir,
    /// The cgroup made for the container in each hierarchy (its cgroup namespace's root).
    cgroups: Vec<PathBuf>,
    console: PathBuf,
}

impl Container {
    pub(super) fn boot(root: &Path) -> Container {
        let run = tempfile::Builder::new()
            .prefix("rw-systemd-")
            .tempdir_in("/var/tmp")
            .unwrap();
        let id = format!("{}", std::process::id());
        let cgroups = container_cgroups(&id);
        let script = run.path().join("boot.sh");
        std::fs::write(&script, BOOT_SCRIPT).unwrap();
        let console = run.path().join("console.log");
        let log = File::create(&console).unwrap();
        let units = Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd");
        let units = units.canonicalize().unwrap();
        // The shell joins the container's cgroups, then becomes unshare, whose child becomes
        // PID 1 of the new pid namespace.
        let unshare = Command::new("sh")
            .arg("-c")
            .arg(
                r#"for f in $CGROUP_PROCS; do echo $$ > "$f"; done
exec unshare --pid --fork --mount --uts --ipc --net --cgroup --propagation private sh "$@""#,
            )
            .arg("sh")
            .arg(&script)
            .arg(root)
            .arg(run.path())
            .arg(bin_dir())
            .arg(&units)
            .env(
                "CGROUP_PROCS",
                cgroups
                    .iter()
                    .map(|d| d.join("cgroup.procs").display().to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut c = Container {
            pid1: 0,
            unshare,
            run,
            cgroups,
            console,
        };
        c.pid1 = c.find_pid1();
        c
    }

    /// unshare's only child is the container's PID 1 (systemd once the boot script exec'd).
    fn find_pid1(&mut self) -> i32 {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.unshare.try_wait() {
                panic!(
                    "the container did not boot ({status}):\n{}",
                    std::fs::read_to_string(&self.console).unwrap_or_default()
                );
            }
            let children = format!("/proc/{0}/task/{0}/children", self.unshare.id());
            if let Some(pid) = std::fs::read_to_string(children)
                .ok()
                .and_then(|t| t.split_whitespace().next()?.parse::<i32>().ok())
                && std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|c| c.trim() == "systemd")
            {
                return pid;
            }
            assert!(
                Instant::now() < until,
                "no systemd in the container within 30 s:\n{}",
                std::fs::read_to_string(&self.console).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `script` run by `sh` inside every namespace of the container, as root with a clean
    /// environment; `stdin` is fed to it.
    fn sh_with_input(&self, script: &str, stdin: &[u8], limit: Duration) -> Output {
        let mut cmd = Command::new("nsenter");
        cmd.args(["-t", &self.pid1.to_string(), "-a", "env", "-i"])
            .arg(format!("PATH={PATH_INSIDE}"))
            .args([
                "HOME=/root",
                "USER=root",
                "LANG=C.UTF-8",
                "SYSTEMD_PAGER=",
                "sh",
                "-c",
            ])
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(mut input) = child.stdin.take() {
            input.write_all(stdin).unwrap();
        }
        wait_bounded(child, limit).unwrap_or_else(|out| {
            panic!(
                "`{script}` did not finish within {limit:?}; stdout: {}; stderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }

    /// `script` inside; returns (success, stdout + stderr).
    pub(super) fn sh(&self, script: &str) -> (bool, String) {
        let out = self.sh_with_input(script, b"", Duration::from_secs(120));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// `script` inside; panics unless it succeeds; returns its stdout.
    pub(super) fn ok(&self, script: &str) -> String {
        let out = self.sh_with_input(script, b"", Duration::from_secs(120));
        assert!(
            out.status.success(),
            "`{script}` failed ({}):\n{}{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.journal()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The unit's recent journal, for failure messages.
    pub(super) fn journal(&self) -> String {
        let (_, text) = self.sh("journalctl -u runwarm.service -u runwarm.socket -n 40 --no-pager -o short-monotonic | cut -c1-600");
        format!("--- journal of runwarm ---\n{text}---")
    }

    /// An API call through the socket with curl, as an operator would make it.
    pub(super) fn api(
        &self,
        method: &str,
        path: &str,
        headers: &[&str],
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut script = format!(
            "curl -sS --max-time 60 -w '\\n%{{http_code}}' --unix-socket {SOCKET} -X {method} 'http://localhost{path}'"
        );
        for h in headers {
            let _ = write!(script, " -H '{h}'");
        }
        let input = body.map(|b| serde_json::to_vec(b).unwrap());
        if input.is_some() {
            script.push_str(" -H 'Content-Type: application/json' --data-binary @-");
        }
        let out = self.sh_with_input(
            &script,
            input.as_deref().unwrap_or_default(),
            Duration::from_secs(90),
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", text.as_str()));
        let status = code.trim().parse::<u16>().unwrap_or_else(|_| {
            panic!(
                "{method} {path}: no HTTP status ({}): {text}{}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr),
                self.journal()
            )
        });
        let value = serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_owned()));
        (status, value)
    }

    pub(super) fn show(&self, property: &str) -> String {
        self.ok(&format!(
            "systemctl show -p {property} --value runwarm.service"
        ))
        .trim()
        .to_owned()
    }

    /// Polls `what` until it holds, or panics after `limit` with `describe`'s view.
    pub(super) fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        mut check: impl FnMut(&Container) -> bool,
    ) {
        let until = Instant::now() + limit;
        while !check(self) {
            assert!(
                Instant::now() < until,
                "{what}: not within {limit:?}\n{}",
                self.journal()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// runwarm's cgroups left in any hierarchy: the unit's (`runwarm.service`) and daemon
    /// instances' (`runwarm/<instance>`, which in a hierarchy systemd does not manage, such as
    /// v1 freezer, sit at the container's root).
    pub(super) fn runwarm_cgroups(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            let in_runwarm = dir.file_name().is_some_and(|n| n == "runwarm");
            for e in entries.flatten() {
                if !e.file_type().is_ok_and(|t| t.is_dir()) {
                    continue;
                }
                let p = e.path();
                if in_runwarm || p.file_name().is_some_and(|n| n == "runwarm.service") {
                    out.push(p.clone());
                }
                walk(&p, out);
            }
        }
        let mut out = Vec::new();
        for dir in &self.cgroups {
            walk(dir, &mut out);
        }
        out
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if self.pid1 > 0 {
            // A clean poweroff first, so systemd removes its cgroups; SIGKILL to PID 1 ends the
            // whole pid namespace if it does not finish.
            let _ = Command::new("nsenter")
                .args([
                    "-t",
                    &self.pid1.to_string(),
                    "-a",
                    "systemctl",
                    "poweroff",
                    "--no-block",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let until = Instant::now() + Duration::from_secs(20);
            while Instant::now() < until && matches!(self.unshare.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(100));
            }
            // Only while unshare (its parent) lives is the pid surely still PID 1's.
            if matches!(self.unshare.try_wait(), Ok(None)) {
                let _ = kill(Pid::from_raw(self.pid1), Signal::SIGKILL);
            }
        }
        let _ = self.unshare.kill();
        let _ = self.unshare.wait();
        for dir in &self.cgroups {
            remove_cgroup_tree(dir);
        }
        // The overlay's work directory holds a mode-000 folder; root removes it all the same.
        let _ = std::fs::remove_dir_all(self.run.path());
    }
}
