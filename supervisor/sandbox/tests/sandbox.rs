//! The helper against the real kernel: runs `/bin/sh -c …` inside and checks what it sees. Needs
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

#[test]
fn ids_caps_no_new_privs_seccomp_and_pid_namespace() {
    if !privileged() {
        return;
    }
    let task = task_dir();
    let script = "id -u; id -g; echo pid=$$; tr '\\0' ' ' </proc/1/cmdline; echo; \
                  grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status";
    let done = run(&spec(task.path(), script));
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    let lines: Vec<&str> = done.stdout.lines().collect();
    assert_eq!(&lines[..3], ["1000", "1000", "pid=2"], "{}", done.stdout);
    assert!(
        lines[3].contains("runwarm-sandbox"),
        "pid 1 is the init: {}",
        lines[3]
    );
    for want in [
        "CapEff:\t0000000000000000",
        "CapBnd:\t0000000000000000",
        "NoNewPrivs:\t1",
        "Seccomp:\t2",
    ] {
        assert!(lines.contains(&want), "{want} missing in {}", done.stdout);
    }
}

/// Pids of the processes whose parent is `parent`.
fn children_of(parent: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        if status.lines().any(|l| {
            l.strip_prefix("PPid:")
                .is_some_and(|p| p.trim() == parent.to_string())
        }) {
            found.push(pid);
        }
    }
    found
}

#[test]
fn host_sees_the_outside_uid_and_sigterm_is_forwarded() {
    if !privileged() {
        return;
    }
    let task = task_dir();
    let mut started = start(&spec(task.path(), "echo ready; exec sleep 30"));
    let mut out = BufReader::new(started.child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    let helper = started.child.id();
    let init = children_of(helper);
    assert_eq!(init.len(), 1, "one init under the helper");
    let executor = children_of(init[0]);
    assert_eq!(executor.len(), 1, "one executor under the init");
    let status = std::fs::read_to_string(format!("/proc/{}/status", executor[0])).unwrap();
    assert!(
        status.contains("Uid:\t65534\t65534\t65534\t65534"),
        "{status}"
    );
    assert!(
        status.contains("Gid:\t65534\t65534\t65534\t65534"),
        "{status}"
    );

    let t0 = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(helper).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let done = finish(started);
    assert_eq!(
        done.code,
        Some(128 + 15),
        "killed by the forwarded SIGTERM: {}",
        done.stderr
    );
    assert!(t0.elapsed() < Duration::from_secs(5));
}

#[test]
fn file_system_is_minimal_and_read_only_with_a_limited_tmp() {
    if !privileged() {
        return;
    }
    let task = task_dir();
    // The fds listed are those of a child that does nothing, through a file (once the full /tmp
    // is emptied): the shell's own would show a pipeline's pipe or a saved redirection fd. They
    // are read once the child is `sleep`: before its exec it is still a copy of the shell.
    let script = "test -e /etc/shadow && echo shadow-present || echo shadow-absent; \
                  cat /var/task/handler.txt; \
                  for p in /var/task/x /usr/x /x /etc/x; do touch $p 2>/dev/null && echo wrote-$p || echo ro-$p; done; \
                  echo data > /tmp/small && echo tmp-ok; \
                  dd if=/dev/zero of=/tmp/big bs=64k count=64 2>&1 | grep -o 'No space left on device'; \
                  rm -f /tmp/big; sleep 5 & p=$!; \
                  i=0; while [ \"$(cat /proc/$p/comm)\" != sleep ] && [ $i -lt 2000 ]; do i=$((i+1)); done; ls /proc/$p/fd > /tmp/fds; kill $p; tr '\\n' ' ' < /tmp/fds; echo; ls /";
    let done = run(&spec(task.path(), script));
    let out = &done.stdout;
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    for want in [
        "shadow-absent",
        "task content",
        "ro-/var/task/x",
        "ro-/usr/x",
        "ro-/x",
        "ro-/etc/x",
        "tmp-ok",
        "No space left on device",
        "0 1 2 3 \n",
    ] {
        assert!(out.contains(want), "{want:?} missing in:\n{out}");
    }
    let root: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("0 1 2 3"))
        .skip(1)
        .collect();
    assert!(
        !root.contains(&"root") && !root.contains(&"home") && !root.contains(&"work"),
        "{root:?}"
    );
    assert!(
        !Path::new(task.path()).join("x").exists(),
        "nothing reached the host's task dir"
    );
}

#[test]
fn mount_unshare_and_bpf_are_refused() {
    if !privileged() {
        return;
    }
    let task = task_dir();
    let script = "unshare -U true 2>&1 | grep -o 'Operation not permitted'; \
                  mount -t tmpfs x /tmp 2>/dev/null && echo mounted || echo mount-refused";
    let done = run(&spec(task.path(), script));
    assert!(
        done.stdout.contains("Operation not permitted"),
        "{}",
        done.stdout
    );
    assert!(done.stdout.contains("mount-refused"), "{}", done.stdout);
}

#[test]
fn network_is_loopback_only_unless_host() {
    if !privileged() {
        return;
    }
    if !Path::new("/usr/bin/bash").exists() {
        let _ = writeln!(
            std::io::stderr(),
            "*** SKIPPED *** network test: needs /usr/bin/bash"
        );
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = task_dir();
    let mut s = spec(
        task.path(),
        &format!(
            "bash -c 'echo hi > /dev/tcp/127.0.0.1/{port}' 2>/dev/null && echo connected || echo refused"
        ),
    );
    let done = run(&s);
    assert_eq!(done.stdout.trim(), "refused", "{}", done.stderr);
    s.network_host = true;
    let done = run(&s);
    assert_eq!(done.stdout.trim(), "connected", "{}", done.stderr);
    // Loopback inside the empty namespace is up: a server and client inside can talk.
    s.network_host = false;
    s.args[1] =
        "bash -c 'exec 3<>/dev/tcp/127.0.0.1/9' 2>&1 | grep -o -E 'refused|unreachable'".into();
    let done = run(&s);
    let out = done.stdout;
    assert!(
        out.contains("refused") && !out.contains("unreachable"),
        "lo must be up (down gives unreachable): {out}"
    );
}

#[test]
fn grandchildren_die_with_the_executor() {
    if !privileged() {
        return;
    }
    let task = task_dir();
    let t0 = Instant::now();
    // The background sleep keeps stdout open: only the pid namespace's teardown ends it.
    let done = run(&spec(task.path(), "sleep 60 & echo started"));
    assert_eq!(done.code, Some(0));
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "a grandchild outlived the executor"
    );
}

#[test]
fn a_failing_step_comes_back_typed() {
    if !privileged() {
        return;
    }
    let task = task_dir();
    let mut s = spec(task.path(), "");
    s.program = PathBuf::from("/no/such/program");
    let done = finish(start(&s));
    assert_eq!(done.code, Some(125));
    let failure =
        StepFailure::parse_line(&done.report).unwrap_or_else(|| panic!("{:?}", done.report));
    assert_eq!(failure.step, Step::Exec);
    assert_eq!(failure.errno, libc_enoent());
    assert!(done.stderr.contains("\"step\":\"exec\""), "{}", done.stderr);

    s.task_dir = PathBuf::from("/no/such/task");
    let failure = StepFailure::parse_line(&finish(start(&s)).report).unwrap();
    assert_eq!(failure.step, Step::NewRoot);
}

fn libc_enoent() -> i32 {
    nix::errno::Errno::ENOENT as i32
}

/// The host's cgroup2 mount: `/sys/fs/cgroup` on a unified host, `/sys/fs/cgroup/unified` on a
/// hybrid one (this build host), none on a legacy one.
fn cgroup2_mount() -> Option<PathBuf> {
    ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| {
            nix::sys::statfs::statfs(p)
                .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
        })
}

#[test]
fn the_helper_joins_its_cgroups_before_anything_starts() {
    if !privileged() {
        return;
    }
    let name = format!("runwarm-sandbox-test-{}", std::process::id());
    // Every kind of join this host offers: a v1 hierarchy (through `tasks`) and the cgroup2 mount
    // (through clone3 CLONE_INTO_CGROUP), which this hybrid host has without controllers.
    let mut joins = Vec::new();
    if Path::new("/sys/fs/cgroup/pids/tasks").exists() {
        joins.push(CgroupJoin {
            dir: Path::new("/sys/fs/cgroup/pids").join(&name),
            version: CgroupVersion::V1,
        });
    }
    if let Some(v2) = cgroup2_mount() {
        joins.push(CgroupJoin {
            dir: v2.join(&name),
            version: CgroupVersion::V2,
        });
    }
    assert!(
        !joins.is_empty(),
        "this host has no cgroup hierarchy to join"
    );
    for join in &joins {
        std::fs::create_dir(&join.dir).unwrap();
    }
    let task = task_dir();
    let mut s = spec(task.path(), "cat /proc/self/cgroup; sleep 0.2");
    s.cgroups = joins.clone();
    let started = start(&s);
    // While it runs, the cgroups list the sandbox's processes (init and executor at least).
    std::thread::sleep(Duration::from_millis(100));
    let members: Vec<usize> = joins
        .iter()
        .map(|j| {
            std::fs::read_to_string(j.dir.join("cgroup.procs"))
                .unwrap()
                .lines()
                .count()
        })
        .collect();
    let done = finish(started);
    for join in &joins {
        std::fs::remove_dir(&join.dir).unwrap();
    }
    // The sandbox has no cgroup namespace, so /proc/self/cgroup names the full paths.
    for (join, members) in joins.iter().zip(&members) {
        let line = match join.version {
            CgroupVersion::V1 => format!(":pids:/{name}"),
            CgroupVersion::V2 => format!("0::/{name}"),
        };
        assert!(
            done.stdout.contains(&line),
            "executor not in {}: {}",
            join.dir.display(),
            done.stdout
        );
        assert!(
            *members >= 2,
            "{} held {members} processes",
            join.dir.display()
        );
    }
}

#[test]
fn sigkill_of_the_helper_takes_the_whole_sandbox_down() {
    if !privileged() {
        return;
    }
    let task = task_dir();
    let mut started = start(&spec(task.path(), "sleep 60 & echo ready; exec sleep 60"));
    let mut out = BufReader::new(started.child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let init = children_of(started.child.id());
    assert_eq!(init.len(), 1);
    let mut inside: Vec<u32> = children_of(init[0]);
    assert_eq!(inside.len(), 1, "one executor");
    inside.extend(children_of(inside[0]));
    assert_eq!(inside.len(), 2, "the executor's background child");
    // What the daemon's kill_on_drop does: SIGKILL to the helper only.
    started.child.kill().unwrap();
    // Only the helper is waited for: reading its pipes would wait for the survivors themselves.
    started.child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let alive = |pid: &u32| {
        Path::new(&format!("/proc/{pid}/status")).exists()
            && !std::fs::read_to_string(format!("/proc/{pid}/status"))
                .unwrap_or_default()
                .contains("State:\tZ")
    };
    while init.iter().chain(&inside).any(alive) {
        assert!(
            Instant::now() < deadline,
            "sandbox processes outlived the helper"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The host's real Python prefix (pyenv shims are scripts that need the whole pyenv tree).
fn python_prefix() -> Option<PathBuf> {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.base_prefix)"])
        .output()
        .ok()?;
    let prefix = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    prefix.join("bin/python3").exists().then_some(prefix)
}

#[test]
fn seccomp_answers_each_denied_call_and_namespace_clones() {
    if !privileged() {
        return;
    }
    let Some(prefix) = python_prefix() else {
        let strict = std::env::var("RUNWARM_TEST_STRICT").is_ok_and(|v| v == "1");
        assert!(!strict, "python3 is needed for the seccomp test");
        let _ = writeln!(
            std::io::stderr(),
            "*** SKIPPED *** seccomp test: needs python3"
        );
        return;
    };
    // Raw syscalls with harmless arguments: the filter answers before the kernel looks at them
    // (ptrace gets an invalid request, which the kernel alone would answer with ESRCH).
    let calls = [
        ("ptrace", libc::SYS_ptrace, "12345678, 0, 0, 0", "EPERM"),
        ("bpf", libc::SYS_bpf, "0, 0, 0", "EPERM"),
        ("keyctl", libc::SYS_keyctl, "0, 0, 0", "EPERM"),
        ("setns", libc::SYS_setns, "0, 0", "EPERM"),
        ("userfaultfd", libc::SYS_userfaultfd, "0", "EPERM"),
        ("clone3", libc::SYS_clone3, "0, 0", "ENOSYS"),
        // A NULL params pointer: the kernel alone would answer EFAULT.
        ("io_uring_setup", libc::SYS_io_uring_setup, "2, 0", "ENOSYS"),
        (
            "io_uring_enter",
            libc::SYS_io_uring_enter,
            "-1, 0, 0, 0, 0, 0",
            "ENOSYS",
        ),
        (
            "io_uring_register",
            libc::SYS_io_uring_register,
            "-1, 0, 0, 0",
            "ENOSYS",
        ),
        // PER_LINUX32 and ADDR_NO_RANDOMIZE are refused; the query (-1 as an int) and
        // PER_LINUX are answered.
        ("personality_linux32", libc::SYS_personality, "8", "EPERM"),
        (
            "personality_norandom",
            libc::SYS_personality,
            "0x0040000",
            "EPERM",
        ),
        ("personality_query", libc::SYS_personality, "-1", "ALLOWED"),
        ("personality_linux", libc::SYS_personality, "0", "ALLOWED"),
        // Bad fds and pointers: the kernel alone would answer EBADF or EFAULT.
        (
            "name_to_handle_at",
            libc::SYS_name_to_handle_at,
            "-1, 0, 0, 0, 0",
            "EPERM",
        ),
        ("quotactl", libc::SYS_quotactl, "0, 0, 0, 0", "EPERM"),
        // Socket families: AF_ALG (38) and AF_PACKET (17, EPERM from the kernel without
        // CAP_NET_RAW) prove the filter answered; AF_VSOCK (40) is the one that matters.
        ("socket_vsock", libc::SYS_socket, "40, 1, 0", "EAFNOSUPPORT"),
        ("socket_alg", libc::SYS_socket, "38, 5, 0", "EAFNOSUPPORT"),
        (
            "socket_packet",
            libc::SYS_socket,
            "17, 3, 0",
            "EAFNOSUPPORT",
        ),
        // Netlink: route only (audit is 9, uevents 15).
        (
            "socket_netlink_audit",
            libc::SYS_socket,
            "16, 3, 9",
            "EAFNOSUPPORT",
        ),
        (
            "socket_netlink_uevent",
            libc::SYS_socket,
            "16, 2, 15",
            "EAFNOSUPPORT",
        ),
        (
            "socket_netlink_route",
            libc::SYS_socket,
            "16, 3, 0",
            "ALLOWED",
        ),
        ("socket_unix", libc::SYS_socket, "1, 1, 0", "ALLOWED"),
        ("socket_inet", libc::SYS_socket, "2, 1, 0", "ALLOWED"),
        ("socket_inet6", libc::SYS_socket, "10, 2, 0", "ALLOWED"),
        // clone(CLONE_NEWUSER|SIGCHLD): denied by flag; a plain fork still works below.
        (
            "clone_newuser",
            libc::SYS_clone,
            "0x10000011, 0, 0, 0, 0",
            "EPERM",
        ),
    ];
    let mut script = String::from(
        "import ctypes, errno, os\nlibc = ctypes.CDLL(None, use_errno=True)\n\
         def check(name, nr, args):\n    \
             r = eval('libc.syscall(%d, %s)' % (nr, args))\n    \
             if r == 0 and name.startswith('clone'): os._exit(0)\n    \
             print(name, errno.errorcode.get(ctypes.get_errno(), r) if r == -1 else 'ALLOWED')\n",
    );
    for (name, nr, args, _) in calls {
        script.push_str(&format!("check('{name}', {nr}, '{args}')\n"));
    }
    script.push_str(
        "pid = os.fork()\nif pid == 0: os._exit(7)\nprint('fork', os.waitpid(pid, 0)[1] >> 8)\n",
    );
    let task = task_dir();
    let mut s = spec(task.path(), "");
    s.program = prefix.join("bin/python3");
    s.args = vec!["-c".into(), script];
    s.ro_binds.push((prefix.clone(), prefix));
    let done = run(&s);
    for (name, _, _, want) in calls {
        assert!(
            done.stdout.contains(&format!("{name} {want}\n")),
            "{name}: want {want} in:\n{}{}",
            done.stdout,
            done.stderr
        );
    }
    assert!(
        done.stdout.contains("fork 7\n"),
        "plain fork must work: {}",
        done.stdout
    );
}

#[test]
fn a_writable_bind_is_writable_and_nothing_else_becomes_so() {
    if !privileged() {
        return;
    }
    let task = task_dir();
    let out = tempfile::tempdir().unwrap();
    // The daemon hands a prepare step's output folder to the sandbox user.
    std::os::unix::fs::chown(out.path(), Some(65534), Some(65534)).unwrap();
    let mut s = spec(
        task.path(),
        "echo built > /opt/out/result && echo ok; touch /var/task/x 2>/dev/null && echo task-writable; touch /opt/runwarm-ro/x 2>/dev/null && echo ro-writable; exit 0",
    );
    s.rw_binds = vec![(out.path().to_path_buf(), "/opt/out".into())];
    s.ro_binds
        .push((task.path().to_path_buf(), "/opt/runwarm-ro".into()));
    let done = run(&s);
    assert_eq!(done.stdout.trim(), "ok", "{}", done.stderr);
    assert_eq!(
        std::fs::read_to_string(out.path().join("result")).unwrap(),
        "built\n"
    );
}
