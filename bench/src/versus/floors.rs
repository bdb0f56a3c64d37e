//! The floors under a warm call, measured on the same host in the same run: how fast two
//! processes can possibly hand a turn to each other, so a reader sees how far each figure is
//! from the limit.
//!
//! - *pipe ping-pong*: one byte to a child process over a pipe and back, with blocking reads on
//!   both sides: two wake-ups of a sleeping process per round trip and nothing else.
//! - *JSON-lines echo*: what the daemon and a trivial Python executor must do at least per call:
//!   a request line like the protocol's out, `json.loads`, `json.dumps` and a response line
//!   back, over pipes, with the real interpreter the daemon runs.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

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

/// Both floors; each is `Err(why)` when it could not be measured.
pub struct Floors {
    pub pipe: Result<Summary, String>,
    pub json_lines: Result<Summary, String>,
}

pub fn measure(python: &Path) -> Floors {
    Floors {
        pipe: pipe_ping_pong().map_err(|e| format!("{e:#}")),
        json_lines: json_lines_echo(python).map_err(|e| format!("{e:#}")),
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

fn pipe_ping_pong() -> Result<Summary> {
    let exe = std::env::current_exe().context("finding the benchmark's own executable")?;
    let mut child = Piped::spawn(Command::new(exe).arg(ECHO_FLAG))?;
    let mut to = child.child.stdin.take().context("the echo child's stdin")?;
    let mut from = child
        .child
        .stdout
        .take()
        .context("the echo child's stdout")?;
    let mut samples = Vec::with_capacity(ROUND_TRIPS);
    let mut byte = [0u8; 1];
    for i in 0..ROUND_TRIPS + ROUND_TRIPS / 10 {
        let started = Instant::now();
        to.write_all(b"x").context("writing to the echo child")?;
        from.read_exact(&mut byte)
            .context("reading from the echo child")?;
        if i >= ROUND_TRIPS / 10 {
            samples.push(started.elapsed());
        }
    }
    ensure!(byte == *b"x", "the echo child answered {byte:?}");
    drop(to);
    Summary::of_durations(&samples).context("no round trips")
}

fn json_lines_echo(python: &Path) -> Result<Summary> {
    let mut child = Piped::spawn(Command::new(python).args(["-u", "-c", PY_ECHO]))?;
    let mut to = child.child.stdin.take().context("the executor's stdin")?;
    let mut from = BufReader::new(child.child.stdout.take().context("the executor's stdout")?);
    let mut samples = Vec::with_capacity(ROUND_TRIPS);
    let mut line = String::new();
    for i in 0..ROUND_TRIPS + ROUND_TRIPS / 10 {
        // A request line of the protocol's shape and size.
        let request = format!(
            "{{\"type\":\"request\",\"id\":\"0190b7e4-8c1a-7c2e-9d3f-{i:012}\",\
             \"payload\":{{\"name\":\"bench\"}},\"context\":{{\"execution_id\":\"x\",\
             \"deadline_ms\":0,\"attempt\":1,\"caller\":{{\"uid\":0,\"gid\":0,\"pid\":1}}}}}}\n"
        );
        let started = Instant::now();
        to.write_all(request.as_bytes())
            .context("writing to the executor")?;
        line.clear();
        from.read_line(&mut line)
            .context("reading from the executor")?;
        let took = started.elapsed();
        if !line.contains("hello bench") {
            bail!("the trivial executor answered {line:?}");
        }
        if i >= ROUND_TRIPS / 10 {
            samples.push(took);
        }
    }
    Summary::of_durations(&samples).context("no round trips")
}
