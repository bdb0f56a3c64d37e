//! What an executor inside the sandbox is: its ids and capabilities, its file system, its
//! network, the system calls it is refused.

use super::*;

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
