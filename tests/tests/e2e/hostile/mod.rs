//! Hostile scripts against a real, confined daemon (issue 4): each test checks that the attack
//! fails inside the sandbox and that the daemon answers with the right code and keeps serving.

use std::time::{Duration, Instant};

use runwarm_e2e::{Daemon, Need, require};
use serde_json::{Value, json};

mod accounting;
mod best_effort;
mod processes;

const HOSTILE: &str = r#"import ctypes, os, socket, subprocess, time
libc = ctypes.CDLL(None, use_errno=True)

def sc(nr, *args):
    r = libc.syscall(nr, *args)
    return 0 if r >= 0 else ctypes.get_errno()

def attempt(fn):
    try:
        fn()
        return "ok"
    except OSError as e:
        return e.errno

def link(path):
    try:
        return os.readlink(path)
    except OSError as e:
        return e.errno

def write(path, size=1):
    chunk = b"x" * min(size, 1 << 20)
    with open(path, "wb") as f:
        for _ in range(max(1, size // len(chunk))):
            f.write(chunk)

def handler(event, context):
    do = event["do"]
    if do == "fork":
        pids, err = [], None
        try:
            for _ in range(500):
                pid = os.fork()
                if pid == 0:
                    time.sleep(60)
                    os._exit(0)
                pids.append(pid)
        except OSError as e:
            err = e.errno
        return {"forked": len(pids), "errno": err}
    if do == "memory":
        blocks = []
        while True:
            blocks.append(bytearray(16 << 20))
    if do == "spin":
        while True:
            pass
    if do == "fs":
        return {
            "tmp_fill": attempt(lambda: write("/tmp/fill", 200 << 20)),
            "var_task": attempt(lambda: write("/var/task/evil")),
            "usr": attempt(lambda: write("/usr/evil")),
            "root": attempt(lambda: write("/evil")),
            "proc_self_exe": attempt(lambda: write("/proc/self/exe")),
            "shadow": attempt(lambda: open("/etc/shadow").read()),
            "db": attempt(lambda: open(event["db"]).read()),
            "other_script": attempt(lambda: os.listdir(event["versions"])),
            "state_dir": os.path.exists(event["state"]),
            "init_environ": attempt(lambda: open("/proc/1/environ", "rb").read().decode()),
            "fds": {f: link("/proc/self/fd/" + f) for f in os.listdir("/proc/self/fd")},
        }
    if do == "procs":
        pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
        try:
            os.kill(event["daemon_pid"], 15)
            signal_daemon = "ok"
        except OSError as e:
            signal_daemon = e.errno
        try:
            os.kill(os.getppid(), 9)
        except OSError:
            pass
        time.sleep(0.1)
        return {"pids": pids, "ppid": os.getppid(), "signal_daemon": signal_daemon,
                "daemon_visible": os.path.exists("/proc/%d" % event["daemon_pid"])}
    if do == "syscalls":
        # x86_64 numbers: ptrace 101, mount 165, unshare 272, bpf 321, keyctl 250, setns 308
        return {
            "ptrace": sc(101, 16, event.get("victim", 1), 0, 0),
            "mount": sc(165, b"none", b"/tmp", b"tmpfs", 0, 0),
            "unshare": sc(272, 0x10000000),
            "bpf": sc(321, 0, 0, 0),
            "keyctl": sc(250, 0, 0, 0, 0, 0),
            "setns": sc(308, 0, 0),
            # io_uring_setup 425, personality 135 (ADDR_NO_RANDOMIZE), socket 41 (AF_VSOCK,
            # AF_PACKET), name_to_handle_at 303, quotactl 179
            "io_uring_setup": sc(425, 2, 0),
            "personality": sc(135, 0x0040000),
            "vsock": sc(41, 40, 1, 0),
            "packet": sc(41, 17, 3, 0),
            "name_to_handle_at": sc(303, -1, 0, 0, 0, 0),
            "quotactl": sc(179, 0, 0, 0, 0),
        }
    if do == "connect":
        s = socket.socket()
        s.settimeout(2)
        return {"connect": attempt(lambda: s.connect(("127.0.0.1", event["port"])))}
    if do == "spawn":
        subprocess.run(["/bin/true"], check=True)
        return {"spawned": True}
    if do == "daemonize":
        subprocess.Popen(["/bin/sh", "-c", "(setsid sleep 300 &) ; exit 0"]).wait()
        return {"spawned": True}
    return {"ok": True}
"#;

const EPERM: i64 = 1;

/// In the daemon's environment, so a test can tell whether the host's environment leaks in.
const HOST_SECRET: (&str, &str) = ("RUNWARM_TEST_HOST_SECRET", "host-environment-marker");

async fn hostile_daemon(extra: &[(&str, Value)]) -> Option<Daemon> {
    if !require(&[Need::Program("python3"), Need::Root]) {
        return None;
    }
    let d = Daemon::builder()
        .env(HOST_SECRET.0, HOST_SECRET.1)
        .start()
        .await;
    let manifest = json!({"runtime": "python3", "entry": "main.py",
        "limits": {"timeout_ms": 2000, "memory_mb": 128, "pids": 32}});
    d.register("hostile", manifest, json!({"main.py": HOSTILE}))
        .await;
    for (name, manifest) in extra {
        d.register(name, manifest.clone(), json!({"main.py": HOSTILE}))
            .await;
    }
    let (_, info) = d.call(hyper::Method::GET, "/v1/info", None).await;
    assert_eq!(info["sandbox"]["mode"], "required", "{info:#}");
    Some(d)
}

#[tokio::test]
async fn fork_bomb_is_held_by_the_pids_limit() {
    let Some(d) = hostile_daemon(&[(
        "bomb",
        json!({"runtime": "python3", "entry": "main.py",
        "limits": {"timeout_ms": 3000, "pids": 32}, "pool": {"max_requests": 1}}),
    )])
    .await
    else {
        return;
    };
    let before = d.instance_processes().len();
    let rec = d.invoke_ok("bomb", json!({"do": "fork"})).await;
    assert!(rec["result"]["forked"].as_u64().unwrap() < 32, "{rec:#}");
    assert_eq!(
        rec["result"]["errno"], 11,
        "fork fails with EAGAIN at the limit: {rec:#}"
    );
    // max_requests = 1 retires the executor: its cgroup is killed with every child.
    let until = Instant::now() + Duration::from_secs(10);
    while d.instance_processes().len() > before && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        d.instance_processes().len() <= before,
        "fork bomb children survived the recycle"
    );
    d.invoke_ok("hello-python", json!({})).await;
}

#[tokio::test]
async fn memory_bomb_is_e003_and_cpu_spin_is_e004() {
    let Some(d) = hostile_daemon(&[]).await else {
        return;
    };
    let (_, rec) = d.invoke("hostile", "", json!({"do": "memory"})).await;
    assert_eq!(rec["error"]["code"], "E003", "{rec:#}");
    assert!(
        rec["error"]["message"]
            .as_str()
            .unwrap()
            .contains("128 MiB"),
        "{rec:#}"
    );
    assert!(
        rec["resources"]["peak_memory_bytes"].as_u64().unwrap() > 64 << 20,
        "{rec:#}"
    );
    let t0 = Instant::now();
    let (_, rec) = d.invoke("hostile", "", json!({"do": "spin"})).await;
    assert_eq!(rec["error"]["code"], "E004", "{rec:#}");
    assert!(t0.elapsed() < Duration::from_secs(4));
    let ok = d.invoke_ok("hostile", json!({"do": "nothing"})).await;
    assert!(ok["resources"]["cpu_user_ms"].is_number(), "{ok:#}");
}

#[tokio::test]
async fn file_system_is_minimal_and_read_only() {
    let Some(d) = hostile_daemon(&[]).await else {
        return;
    };
    let state = d.dir().join("state");
    let payload = json!({"do": "fs", "db": state.join("registry.db"), "versions": state.join("versions"), "state": state});
    let rec = d.invoke_ok("hostile", payload).await;
    let r = &rec["result"];
    assert_eq!(r["tmp_fill"], 28, "ENOSPC in the size-limited /tmp: {r}");
    for key in ["var_task", "usr", "root", "proc_self_exe"] {
        assert_ne!(r[key], "ok", "{key} was writable: {r}");
    }
    for key in ["shadow", "db", "other_script"] {
        assert_eq!(r[key], 2, "{key} is reachable: {r}");
    }
    assert_eq!(r["state_dir"], false);
    assert!(!d.dir().join("state").join("evil").exists());
    // /proc/1 inside is the sandbox's own init, whose environment holds nothing of the host's.
    let init_environ = r["init_environ"].as_str().unwrap_or_default();
    assert!(!init_environ.contains(HOST_SECRET.1), "{r}");
    // Nothing is inherited beyond 0–3: above 3 a handler executor holds only its own copies of
    // the protocol pipes (the shim moves them off 0 and 1, away from user code) and the
    // directory listdir itself opened.
    let fds = r["fds"].as_object().unwrap();
    let above_3: Vec<&str> = fds
        .iter()
        .filter(|(fd, _)| fd.parse::<u32>().unwrap() > 3)
        .map(|(_, target)| target.as_str().unwrap_or("?"))
        .collect();
    let pipes = above_3.iter().filter(|t| t.starts_with("pipe:")).count();
    assert!(
        pipes <= 2 && above_3.len() <= pipes + 1,
        "handler executor has extra fds open: {fds:?}"
    );
}

#[tokio::test]
async fn dangerous_syscalls_get_eperm() {
    let Some(d) = hostile_daemon(&[]).await else {
        return;
    };
    // The victim of the ptrace attempt is another script's live executor (its host pid).
    let other = d.invoke_ok("hello-python", json!({})).await;
    let victim = other["executor"]["pid"].as_u64().unwrap();
    let rec = d
        .invoke_ok("hostile", json!({"do": "syscalls", "victim": victim}))
        .await;
    for key in [
        "ptrace",
        "mount",
        "unshare",
        "bpf",
        "keyctl",
        "setns",
        "personality",
        "name_to_handle_at",
        "quotactl",
    ] {
        assert_eq!(rec["result"][key], EPERM, "{key}: {rec:#}");
    }
    // ENOSYS: runtimes fall back to epoll; EAFNOSUPPORT: as if the kernel lacked the family.
    assert_eq!(rec["result"]["io_uring_setup"], 38, "{rec:#}");
    for key in ["vsock", "packet"] {
        assert_eq!(rec["result"][key], 97, "{key}: {rec:#}");
    }
}

#[tokio::test]
async fn host_processes_are_invisible_and_unsignallable() {
    let Some(d) = hostile_daemon(&[]).await else {
        return;
    };
    let rec = d
        .invoke_ok("hostile", json!({"do": "procs", "daemon_pid": d.pid()}))
        .await;
    let r = &rec["result"];
    assert_eq!(r["daemon_visible"], false, "{r}");
    assert_eq!(
        r["signal_daemon"], 3,
        "ESRCH: the daemon is not in this pid namespace: {r}"
    );
    assert_eq!(
        r["ppid"], 1,
        "the executor's parent is the sandbox init, which survived: {r}"
    );
    assert!(
        r["pids"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p.as_u64().unwrap() < 100),
        "{r}"
    );
    d.invoke_ok("hostile", json!({"do": "nothing"})).await;
}

#[tokio::test]
async fn network_is_loopback_only_unless_the_manifest_says_host() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let Some(d) = hostile_daemon(&[(
        "nethost",
        json!({"runtime": "python3", "entry": "main.py", "network": "host"}),
    )])
    .await
    else {
        return;
    };
    let closed = d
        .invoke_ok("hostile", json!({"do": "connect", "port": port}))
        .await;
    assert_ne!(closed["result"]["connect"], "ok", "{closed:#}");
    let open = d
        .invoke_ok("nethost", json!({"do": "connect", "port": port}))
        .await;
    assert_eq!(open["result"]["connect"], "ok", "{open:#}");
}

#[tokio::test]
async fn command_mode_scripts_see_only_fds_0_to_3() {
    let Some(d) = hostile_daemon(&[]).await else {
        return;
    };
    d.register(
        "fds",
        json!({"runtime": "python3", "mode": "command", "entry": "fds.py"}),
        json!({"fds.py": "import json, os\nprint(json.dumps(sorted(int(f) for f in os.listdir('/proc/self/fd'))))\n"}),
    )
    .await;
    let rec = d.invoke_ok("fds", json!({})).await;
    let fds: Vec<u64> = rec["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert!(fds.iter().all(|f| *f <= 3), "{fds:?}");
}

#[tokio::test]
async fn hostile_load_does_not_hurt_benign_callers() {
    let Some(d) = hostile_daemon(&[]).await else {
        return;
    };
    let hostile = (0..20).map(|i| {
        let d = &d;
        let what = ["memory", "spin", "fork"][i % 3];
        async move { d.invoke("hostile", "", json!({"do": what})).await }
    });
    let benign = (0..20).map(|i| {
        let d = &d;
        async move {
            d.invoke("hello-python", "", json!({"name": format!("b{i}")}))
                .await
        }
    });
    let (_, good) = futures_util::join!(
        futures_util::future::join_all(hostile),
        futures_util::future::join_all(benign)
    );
    for (status, rec) in good {
        assert_eq!(status, 200, "{rec}");
        assert_eq!(rec["state"], "completed", "{rec:#}");
    }
}
