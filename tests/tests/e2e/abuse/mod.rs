//! The daemon keeps serving its socket under abuse (issue 11, section 5). Each flood comes from
//! an unprivileged uid (a Python client under `setpriv`), and another unprivileged uid and root
//! must still be served while it lasts; each failed before the fix: 300 slow-header or 2,000
//! idle connections locked everyone out, slow bodies held their slots for as long as they liked,
//! `Content-Length: 10 GiB` waited for the body, and a full disk left an async invoke hanging
//! with `/readyz` at 200.

mod disk;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use hyper::Method;
use nix::sys::signal::Signal;
use runwarm_e2e::{Daemon, Need, require};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The flooding uid.
const NOBODY: u32 = 65534;
/// Another unprivileged caller, who must still be served.
const OTHER: u32 = 65533;
/// Debian's interpreter: readable by every uid (the pyenv shim lives under /root).
const PYTHON: &str = "/usr/bin/python3";

/// The flooding client. Modes: `headers` (a request line, then a header byte a second),
/// `idle` (nothing), `keepalive` (one complete request each, then idle), `body` (a POST that
/// declares 1,000 bytes and sends one a second). It reports as JSON lines on stdout and, for
/// `keepalive`, answers a `check` line on stdin with how many connections the server closed.
const FLOOD_PY: &str = r#"
import json, resource, select, socket, sys, time
mode, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
def say(**kw):
    print(json.dumps(kw), flush=True)
socks, failed = [], 0
for _ in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        socks.append(s)
    except OSError:
        failed += 1
        s.close()
head = {
    "headers": b"GET /healthz HTTP/1.1\r\n",
    "idle": b"",
    "keepalive": b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    "body": b"POST /v1/scripts/echo/invoke HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n",
}[mode]
for s in socks:
    try:
        if head:
            s.sendall(head)
    except OSError:
        pass
def closed(s):
    s.setblocking(False)
    try:
        return s.recv(65536) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
if mode == "keepalive":
    served = 0
    for s in socks:
        s.settimeout(10)
        try:
            if s.recv(4096).startswith(b"HTTP/1.1 200"):
                served += 1
        except OSError:
            pass
    say(served=served, failed=failed)
    for line in sys.stdin:
        say(closed=sum(1 for s in socks if closed(s)))
    sys.exit(0)
if mode == "body":
    start, answers = time.monotonic(), {}
    say(started=len(socks), failed=failed)
    while len(answers) < len(socks) and time.monotonic() - start < 60:
        time.sleep(1)
        for i, s in enumerate(socks):
            if i in answers:
                continue
            s.setblocking(False)
            try:
                data = s.recv(65536)
                answers[i] = (data.split(b"\r\n", 1)[0].decode(errors="replace") or "closed",
                              time.monotonic() - start)
                continue
            except BlockingIOError:
                pass
            except OSError:
                answers[i] = ("reset", time.monotonic() - start)
                continue
            try:
                s.sendall(b" ")
            except OSError:
                pass
    lines = sorted(set(a for a, _ in answers.values()))
    say(answered=len(answers), lines=lines, max_s=max([t for _, t in answers.values()] or [0]))
    sys.exit(0)
time.sleep(1)
still = [s for s in socks if not closed(s)]
say(open=len(still), closed=len(socks) - len(still), failed=failed)
while True:
    r, _, _ = select.select([sys.stdin], [], [], 1)
    if r:
        break
    for s in still:
        try:
            s.send(b"X")
        except OSError:
            pass
"#;

/// A daemon whose socket every local uid may open; `None` (the test is skipped) when this host
/// cannot act as another uid.
async fn daemon(config: &str) -> Option<Daemon> {
    if !require(&[
        Need::Root,
        Need::Program("setpriv"),
        Need::Program("curl"),
        Need::Program(PYTHON),
    ]) {
        return None;
    }
    let d = Daemon::builder()
        .without_samples()
        .config(&format!("{config}\n[access]\nsocket_mode = 0o666\n"))
        .start()
        .await;
    std::fs::set_permissions(d.dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(d.dir().join("flood.py"), FLOOD_PY).unwrap();
    // A script whose invoke route reads a body (an unknown one is answered 404 before).
    d.register(
        "echo",
        json!({"runtime": "bash", "entry": "main.sh"}),
        json!({"main.sh": "echo '{}'\n"}),
    )
    .await;
    Some(d)
}

/// A running flood client as `NOBODY`; killed when dropped.
struct Flood {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Flood {
    fn start(d: &Daemon, mode: &str, n: usize) -> Flood {
        let mut child = Command::new("setpriv")
            .args([
                &format!("--reuid={NOBODY}"),
                &format!("--regid={NOBODY}"),
                "--clear-groups",
                PYTHON,
            ])
            .arg(d.dir().join("flood.py"))
            .arg(mode)
            .arg(d.socket())
            .arg(n.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the flood client");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        Flood {
            child,
            stdin,
            stdout,
        }
    }

    /// The client's next report.
    fn report(&mut self) -> Value {
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .expect("read the flood report");
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("flood client said {line:?}"))
    }

    fn ask(&mut self) -> Value {
        let stdin = self.stdin.as_mut().expect("stdin");
        stdin.write_all(b"check\n").unwrap();
        stdin.flush().unwrap();
        self.report()
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What another unprivileged uid and root get from `/healthz` while a flood holds connections.
async fn others_are_served(d: &Daemon, during: &str) {
    let (status, body) = d.call_as(OTHER, &[], "GET", "/healthz", None, &[]);
    assert_eq!(
        status,
        200,
        "uid {OTHER} during {during}: {body}\n{}",
        d.report()
    );
    let (status, body) = d.call(Method::GET, "/healthz", None).await;
    assert_eq!(status, 200, "root during {during}: {body}");
}

#[tokio::test]
async fn slow_header_connections_of_one_uid_do_not_lock_out_the_others() {
    let Some(d) = daemon("[server]\nheader_read_timeout_ms = 60000\n").await else {
        return;
    };
    let mut flood = Flood::start(&d, "headers", 300);
    let r = flood.report();
    eprintln!("300 slow-header connections of uid {NOBODY}: {r}");
    let open = r["open"].as_u64().unwrap();
    assert!(open <= 64, "one uid holds at most its share: {r}");
    assert!(open >= 32, "the flood did get its share: {r}");
    others_are_served(&d, "a slow-header flood").await;
}

#[tokio::test]
async fn two_thousand_idle_connections_do_not_lock_out_the_others() {
    let Some(d) = daemon("").await else {
        return;
    };
    let mut flood = Flood::start(&d, "idle", 2000);
    let r = flood.report();
    eprintln!("2,000 idle connections of uid {NOBODY}: {r}");
    assert!(r["open"].as_u64().unwrap() <= 64, "{r}");
    others_are_served(&d, "an idle flood").await;
}

#[tokio::test]
async fn idle_keep_alive_connections_make_room_when_the_slots_run_out() {
    // One uid may fill every slot here, so only closing idle connections lets others in.
    let cfg = "[server]\nmax_connections = 16\nmax_connections_per_uid = 16\n";
    let Some(d) = daemon(cfg).await else {
        return;
    };
    let mut flood = Flood::start(&d, "keepalive", 16);
    let r = flood.report();
    assert!(r["served"].as_u64().unwrap() >= 12, "{r}");
    let before = flood.ask()["closed"].as_u64().unwrap();
    others_are_served(&d, "16 idle keep-alive connections").await;
    let after = flood.ask()["closed"].as_u64().unwrap();
    eprintln!("keep-alive flood: {r}, closed by the server before {before}, after {after}");
    assert!(
        after > before,
        "an idle keep-alive connection was closed to make room"
    );
}

#[tokio::test]
async fn slow_bodies_are_cut_off_with_408() {
    let cfg = "[server]\nbody_read_timeout_ms = 2000\nbody_min_bytes_per_s = 100\n";
    let Some(d) = daemon(cfg).await else {
        return;
    };
    let mut flood = Flood::start(&d, "body", 60);
    let started = flood.report();
    assert_eq!(started["started"], 60, "{started}");
    others_are_served(&d, "60 bodies at 1 byte/s").await;
    let r = flood.report();
    eprintln!("60 bodies at 1 byte/s: {r}");
    assert_eq!(r["answered"], 60, "every slow body got an answer: {r}");
    assert_eq!(r["lines"], json!(["HTTP/1.1 408 Request Timeout"]), "{r}");
    assert!(
        r["max_s"].as_f64().unwrap() < 30.0,
        "cut off after the 2 s grace, not held open: {r}"
    );
}

#[tokio::test]
async fn a_declared_body_over_the_limit_is_refused_from_the_header() {
    let Some(d) = daemon("").await else {
        return;
    };
    let mut s = tokio::net::UnixStream::connect(d.socket()).await.unwrap();
    s.write_all(
        b"POST /v1/scripts/echo/invoke HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 10737418240\r\n\r\n",
    )
    .await
    .unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut answer))
        .await
        .expect("answered without the body")
        .unwrap();
    let text = String::from_utf8_lossy(&answer[..n]);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("Content-Length: 10737418240"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );
}

/// A tmpfs of `mb` MiB, unmounted when dropped.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(mb: u32) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mb}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount a tmpfs");
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

#[tokio::test]
async fn sigquit_reaches_a_command_mode_script() {
    if !require(&[Need::Program("bash")]) {
        return;
    }
    let d = Daemon::builder().without_samples().start().await;
    let script = "trap 'echo \"{\\\"quit\\\": true}\"; exit 0' QUIT\n\
                  if [ -n \"${PARAM_WAIT:-}\" ]; then for i in $(seq 300); do sleep 0.1; done; fi\n\
                  echo '{\"quit\": false}'\n";
    d.register(
        "quitter",
        json!({"runtime": "bash", "entry": "main.sh", "mode": "command"}),
        json!({"main.sh": script}),
    )
    .await;
    let (status, accepted) = d
        .raw(
            Method::POST,
            "/v1/scripts/quitter/invoke",
            &[("prefer", "respond-async")],
            Some(br#"{"wait": 1}"#.to_vec()),
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["id"].as_str().unwrap().to_owned();
    // Wait until the script runs, then signal the executor as an operator would.
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, rec) = d
            .call(Method::GET, &format!("/v1/executions/{id}"), None)
            .await;
        if rec["state"] == "running" {
            break;
        }
        assert!(Instant::now() < until, "never ran: {rec}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let executors: Vec<i32> = d
        .instance_processes()
        .into_iter()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim_end().starts_with("runwarm-exec"))
        })
        .collect();
    assert!(!executors.is_empty(), "no executor found");
    for pid in &executors {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid), Signal::SIGQUIT);
    }
    let rec = d.wait_terminal(&id).await;
    assert_eq!(rec["state"], "completed", "{rec}");
    assert_eq!(
        rec["result"],
        json!({"quit": true}),
        "the script's trap ran: {rec}"
    );
    // The executor lives on and serves the next call.
    let (status, next) = d.invoke("quitter", "", json!({})).await;
    assert_eq!(status, 200, "{next}");
    assert_eq!(next["result"], json!({"quit": false}), "{next}");
}
