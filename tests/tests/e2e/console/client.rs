//! A `runwarm console` child and a raw HTTP/1.1 client for it, so the tests can send the
//! Host and Origin a hostile page would.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use runwarm_e2e::{Daemon, bin_dir};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bound on any one exchange (a first invoke includes the Python prepare).
pub(super) const EXCHANGE: Duration = Duration::from_secs(180);

/// A `runwarm console` child, killed by its pid when dropped.
pub(crate) struct ConsoleChild {
    child: Child,
    pub(super) port: u16,
    pub(super) token: String,
}

impl ConsoleChild {
    pub(crate) fn start(d: &Daemon) -> Self {
        Self::start_as(d, None)
    }

    /// A console started by `uid` (under `setpriv`, no supplementary groups) when given.
    pub(super) fn start_as(d: &Daemon, uid: Option<u32>) -> Self {
        Self::start_with(d, uid, &[])
    }

    /// A console with extra `runwarm console` arguments.
    pub(super) fn start_with(d: &Daemon, uid: Option<u32>, extra: &[&str]) -> Self {
        let mut cmd = match uid {
            Some(uid) => {
                let mut c = Command::new("setpriv");
                c.args([
                    format!("--reuid={uid}"),
                    format!("--regid={uid}"),
                    "--clear-groups".to_owned(),
                ])
                .arg(bin_dir().join("runwarm"));
                c
            }
            None => Command::new(bin_dir().join("runwarm")),
        };
        let mut child = cmd
            .arg("--socket")
            .arg(d.socket())
            .args(["console", "--port", "0", "--no-open"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start runwarm console");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let rest = line
            .trim()
            .strip_prefix("http://127.0.0.1:")
            .unwrap_or_else(|| panic!("not a console URL: {line:?}"));
        let (port, token) = rest.split_once("/?token=").unwrap();
        Self {
            port: port.parse().unwrap(),
            token: token.to_owned(),
            child,
        }
    }

    /// The URL `runwarm console` printed, with its one-time token.
    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}/?token={}", self.port, self.token)
    }

    /// The console's pid.
    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(super) fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub(super) fn origin(&self) -> String {
        format!("http://{}", self.host())
    }

    /// Redeems the token and returns the `name=value` of the session cookie.
    pub(super) async fn login(&self) -> String {
        let a = self
            .send("GET", &format!("/?token={}", self.token), &[], b"")
            .await;
        assert_eq!(a.status, 303, "{}", a.text());
        assert_eq!(a.header("location"), Some("/"));
        let cookie = a.header("set-cookie").unwrap().to_owned();
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
            "{cookie}"
        );
        cookie.split(';').next().unwrap().to_owned()
    }

    /// One request on its own connection; `Host` is the console's unless `headers` has one.
    pub(super) async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Answer {
        let mut stream = self.open(method, path, headers, body).await;
        let mut raw = Vec::new();
        tokio::time::timeout(EXCHANGE, stream.read_to_end(&mut raw))
            .await
            .expect("console answered in time")
            .unwrap();
        Answer::parse(&raw)
    }

    pub(super) async fn open(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> TcpStream {
        let mut head = format!("{method} {path} HTTP/1.1\r\n");
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            head.push_str(&format!("Host: {}\r\n", self.host()));
        }
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        ));
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(body).await.unwrap();
        stream
    }
}

impl Drop for ConsoleChild {
    fn drop(&mut self) {
        // By its pid (std's kill), never by name: other consoles may be running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A parsed answer.
pub(super) struct Answer {
    pub(super) status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn parse(raw: &[u8]) -> Self {
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no header end: {}", String::from_utf8_lossy(raw)));
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let mut body = raw[split + 4..].to_vec();
        if headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v == "chunked")
        {
            body = dechunk(&body);
        }
        Self {
            status,
            headers,
            body,
        }
    }

    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub(super) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.text()))
    }
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = body.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(std::str::from_utf8(&body[..eol]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        out.extend_from_slice(&body[eol + 2..eol + 2 + size]);
        body = &body[eol + 2 + size + 2..];
    }
    out
}

/// Runs a Playwright driver script with node (`node SCRIPT ARGS…` in `dir`) in its own process
/// group, so a driver that hangs goes with its browser: its output, or a panic naming `bound`
/// and the daemon's report once it takes longer than that.
pub(crate) async fn run_driver(
    d: &Daemon,
    dir: &std::path::Path,
    script: &std::path::Path,
    args: &[&std::ffi::OsStr],
    bound: Duration,
) -> std::process::Output {
    let node = tokio::process::Command::new("node")
        .arg(script)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pgid = nix::unistd::Pid::from_raw(node.id().unwrap() as i32);
    match tokio::time::timeout(bound, node.wait_with_output()).await {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
            panic!("the browser driver took over {bound:?}\n{}", d.report());
        }
    }
}
