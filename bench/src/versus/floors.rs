//! The floors under a warm call, measured on the same host in the same run: how fast two
//! processes can possibly hand a turn to each other, so a reader sees how far each figure is
//! from the limit.
//!
//! - *pipe ping-pong*: one byte to a child process over a pipe and back, with blocking reads on
//!   both sides: two wake-ups of a sleeping process per round trip and nothing else.
//! - *JSON-lines echo*: what the daemon and a trivial Python executor must do at least per call:
//!   a request line like the protocol's out, `json.loads`, `json.dumps` and a response line
//!   back, over pipes, with the real interpreter the daemon runs.
//! - *JSON-lines echo, polling reader*: the same, with the reader polling its pipe instead of
//!   sleeping on it (the daemon's idle spin at its best) and the next request sent at once, so
//!   the executor is woken before its CPU has gone idle: the hop's own work, without the
//!   wake-ups. The distance between the two echo rows is what two wake-ups of a sleeping
//!   process cost on this host.

use std::io::{BufRead as _, BufReader, ErrorKind, Read as _, Write as _};
use std::os::fd::AsFd as _;
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use crate::measure::Summary;

/// The flag that makes `runwarm-bench` the echo child of the ping-pong.
pub const ECHO_FLAG: &str = "--floor-echo";

/// Round trips timed per floor, after a tenth as many unmeasured ones.
pub const ROUND_TRIPS: usize = 2000;

/// A trivial executor: one JSON line in, one JSON line out, flushed.
const PY_ECHO: &str = r#"import json, sys
out = sys.stdout.buffer
for line in sys.stdin.buffer:
    m = json.loads(line)
    r = {"type": "response", "id": m["id"], "success": True,
         "result": {"greeting": "hello " + m["payload"].get("name", "world")}}
    out.write(json.dumps(r).encode() + b"\n")
    out.flush()
"#;

/// The floors; each is `Err(why)` when it could not be measured.
pub struct Floors {
    pub pipe: Result<Summary, String>,
    pub json_lines: Result<Summary, String>,
    pub json_lines_polling: Result<Summary, String>,
}

pub fn measure(python: &Path) -> Floors {
    Floors {
        pipe: pipe_ping_pong().map_err(|e| format!("{e:#}")),
        json_lines: json_lines_echo(python).map_err(|e| format!("{e:#}")),
        json_lines_polling: polling_echo(python).map_err(|e| format!("{e:#}")),
    }
}

/// The child side of the ping-pong: echoes what it reads until its stdin closes.
pub fn echo_child() -> Result<()> {
    let mut stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    let mut buf = [0u8; 64];
    loop {
        let n = stdin.read(&mut buf).context("reading stdin")?;
        if n == 0 {
            return Ok(());
        }
        stdout.write_all(&buf[..n]).context("writing stdout")?;
        stdout.flush().context("flushing stdout")?;
    }
}

/// A child whose stdin and stdout are pipes to this process, killed when dropped.
struct Piped {
    child: Child,
}

impl Piped {
    fn spawn(command: &mut Command) -> Result<Piped> {
        let child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {:?}", command.get_program()))?;
        Ok(Piped { child })
    }
}

impl Drop for Piped {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Times `round_trip` [`ROUND_TRIPS`] times, after a tenth as many unmeasured ones.
fn timed(mut round_trip: impl FnMut(u64) -> Result<()>) -> Result<Summary> {
    let mut samples = Vec::with_capacity(ROUND_TRIPS);
    for i in 0..ROUND_TRIPS + ROUND_TRIPS / 10 {
        let started = Instant::now();
        round_trip(i as u64)?;
        if i >= ROUND_TRIPS / 10 {
            samples.push(started.elapsed());
        }
    }
    Summary::of_durations(&samples).context("no round trips")
}

fn pipe_ping_pong() -> Result<Summary> {
    let exe = std::env::current_exe().context("finding the benchmark's own executable")?;
    let mut child = Piped::spawn(Command::new(exe).arg(ECHO_FLAG))?;
    let mut to = child.child.stdin.take().context("the echo child's stdin")?;
    let mut from = child
        .child
        .stdout
        .take()
        .context("the echo child's stdout")?;
    let mut byte = [0u8; 1];
    timed(|_| {
        to.write_all(b"x").context("writing to the echo child")?;
        from.read_exact(&mut byte)
            .context("reading from the echo child")?;
        ensure!(byte == *b"x", "the echo child answered {byte:?}");
        Ok(())
    })
}

/// A request line of the protocol's shape and size, numbered `i`.
fn request_line(i: u64) -> String {
    format!(
        "{{\"type\":\"request\",\"id\":\"0190b7e4-8c1a-7c2e-9d3f-{i:012}\",\
         \"payload\":{{\"name\":\"bench\"}},\"context\":{{\"execution_id\":\"x\",\
         \"deadline_ms\":0,\"attempt\":1,\"caller\":{{\"uid\":0,\"gid\":0,\"pid\":1}}}}}}\n"
    )
}

/// The trivial executor driven by a reader that polls its pipe (non-blocking reads in a spin)
/// instead of sleeping on it.
struct PollingEcho {
    _child: Piped,
    to: ChildStdin,
    from: ChildStdout,
    pending: Vec<u8>,
}

/// Longest a polling round trip may take before it is an error rather than a hang.
const POLL_LIMIT: Duration = Duration::from_secs(5);

impl PollingEcho {
    fn start(python: &Path) -> Result<PollingEcho> {
        let mut child = Piped::spawn(Command::new(python).args(["-u", "-c", PY_ECHO]))?;
        let to = child.child.stdin.take().context("the executor's stdin")?;
        let from = child.child.stdout.take().context("the executor's stdout")?;
        let flags = nix::fcntl::fcntl(from.as_fd(), nix::fcntl::FcntlArg::F_GETFL)
            .context("reading the executor pipe's flags")?;
        let flags = nix::fcntl::OFlag::from_bits_truncate(flags) | nix::fcntl::OFlag::O_NONBLOCK;
        nix::fcntl::fcntl(from.as_fd(), nix::fcntl::FcntlArg::F_SETFL(flags))
            .context("making the executor pipe non-blocking")?;
        Ok(PollingEcho {
            _child: child,
            to,
            from,
            pending: Vec::with_capacity(256),
        })
    }

    /// Request line `i` out and its answer back, the reader spinning until it is whole.
    fn round_trip(&mut self, i: u64) -> Result<()> {
        self.to
            .write_all(request_line(i).as_bytes())
            .context("writing to the executor")?;
        self.pending.clear();
        let started = Instant::now();
        let mut buf = [0u8; 512];
        loop {
            match self.from.read(&mut buf) {
                Ok(0) => bail!("the trivial executor closed its stdout"),
                Ok(n) => {
                    self.pending.extend_from_slice(&buf[..n]);
                    if self.pending.ends_with(b"\n") {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    ensure!(
                        started.elapsed() < POLL_LIMIT,
                        "the trivial executor did not answer within {} s",
                        POLL_LIMIT.as_secs()
                    );
                    std::hint::spin_loop();
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e).context("reading from the executor"),
            }
        }
        ensure!(
            self.pending.windows(11).any(|w| w == b"hello bench"),
            "the trivial executor answered {:?}",
            String::from_utf8_lossy(&self.pending)
        );
        Ok(())
    }
}

fn polling_echo(python: &Path) -> Result<Summary> {
    let mut echo = PollingEcho::start(python)?;
    timed(|i| echo.round_trip(i))
}

fn json_lines_echo(python: &Path) -> Result<Summary> {
    let mut child = Piped::spawn(Command::new(python).args(["-u", "-c", PY_ECHO]))?;
    let mut to = child.child.stdin.take().context("the executor's stdin")?;
    let mut from = BufReader::new(child.child.stdout.take().context("the executor's stdout")?);
    let mut line = String::new();
    timed(|i| {
        to.write_all(request_line(i).as_bytes())
            .context("writing to the executor")?;
        line.clear();
        from.read_line(&mut line)
            .context("reading from the executor")?;
        ensure!(
            line.contains("hello bench"),
            "the trivial executor answered {line:?}"
        );
        Ok(())
    })
}
