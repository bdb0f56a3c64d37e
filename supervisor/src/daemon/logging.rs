//! The daemon's log: tracing events formatted on the thread that logs them, appended to a
//! buffer in memory, and written to stderr in batches by a thread of their own, so that a
//! reader that stops reading (a wedged journald, a paused `| less`, a log shipper that blocks)
//! never stalls the thread serving invocations. Written in place, one blocked `write` on the
//! runtime thread stopped every call: with stderr in a pipe nobody read, the daemon stopped
//! answering after 137 warm calls (each finished execution logs a line at `info`).
//!
//! The writer wakes once per batch, not per line: the first line into an empty buffer wakes
//! it, it waits [`BATCH_DELAY`] for more, then writes them all with one `write`. A writer
//! thread woken for every line (`tracing-appender`'s) cost 10 µs of CPU per warm call more
//! than writing in place (docs/design/0007-hot-path.md); a batch costs less than in place.
//! Up to [`BUFFER_BYTES`] wait for a slow reader; lines beyond that are dropped and counted
//! ([`dropped_lines`], `runwarm_log_lines_dropped_total`). Under systemd each line carries its
//! syslog priority, as sd-daemon(3) describes.

use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::{JoinHandle, Thread};
use std::time::Duration;

use tracing::Level;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::{Config, LogFormat};

/// Bytes of log that may wait for a slow reader: some 7,000 `execution finished` lines.
pub const BUFFER_BYTES: usize = 4 << 20;

/// How long the writer, once woken, waits for more lines before writing: a line reaches
/// stderr this much later at most (while the reader keeps up).
pub const BATCH_DELAY: Duration = Duration::from_millis(2);

/// How long stopping waits for the last lines to be written to a reader that does not read.
const FLUSH_BOUND: Duration = Duration::from_secs(1);

static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Lines dropped because stderr's reader fell [`BUFFER_BYTES`] behind.
pub fn dropped_lines() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// What the logging threads and the writer share.
struct Shared {
    pending: Mutex<Vec<u8>>,
    stopping: AtomicBool,
    writer: OnceLock<Thread>,
}

impl Shared {
    fn pending(&self) -> MutexGuard<'_, Vec<u8>> {
        // A thread that panicked while appending left whole lines behind or none.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues one event's lines, or drops them when the buffer is full.
    fn push(&self, lines: &[u8]) {
        let was_empty = {
            let mut pending = self.pending();
            if pending.len() + lines.len() > BUFFER_BYTES {
                DROPPED.fetch_add(1, Ordering::Relaxed);
                return;
            }
            let was_empty = pending.is_empty();
            pending.extend_from_slice(lines);
            was_empty
        };
        if was_empty && let Some(writer) = self.writer.get() {
            writer.unpark();
        }
    }

    /// The writer thread: sleeps while there is nothing to write, then writes in batches.
    fn run(&self) {
        let mut batch = Vec::new();
        loop {
            std::mem::swap(&mut batch, &mut *self.pending());
            if batch.is_empty() {
                if self.stopping.load(Ordering::Acquire) {
                    return;
                }
                std::thread::park();
                if !self.stopping.load(Ordering::Acquire) {
                    std::thread::sleep(BATCH_DELAY);
                }
                continue;
            }
            // Nowhere left to report a failing stderr; the lines are gone either way.
            let _ = io::stderr().lock().write_all(&batch);
            batch.clear();
        }
    }
}

/// Keeps the writer until the end: dropping it writes what is still queued, waiting at most a
/// second for a reader that does not read.
pub struct LogGuard {
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::Release);
        let Some(writer) = self.writer.take() else {
            return;
        };
        writer.thread().unpark();
        let until = std::time::Instant::now() + FLUSH_BOUND;
        while !writer.is_finished() && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        if writer.is_finished() {
            let _ = writer.join();
        }
    }
}

/// Installs the subscriber for `config` and starts the writer thread (without one, lines are
/// written in place).
pub fn init(config: &Config) -> LogGuard {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let json = match config.log_format {
        LogFormat::Json => true,
        LogFormat::Human => false,
        LogFormat::Auto => !io::stderr().is_terminal(),
    };
    let shared = Arc::new(Shared {
        pending: Mutex::new(Vec::new()),
        stopping: AtomicBool::new(false),
        writer: OnceLock::new(),
    });
    let writer = {
        let shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || shared.run())
            .ok()
    };
    if let Some(w) = &writer {
        let _ = shared.writer.set(w.thread().clone());
    }
    // Under systemd the lines go to the journal: each starts with its syslog priority, so
    // `journalctl -u runwarm -p err` shows errors only. The journal stamps every line itself.
    let journal = stderr_is_journal();
    let out = LogWriter {
        shared: writer.is_some().then(|| Arc::clone(&shared)),
        journal,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(out);
    if json {
        builder.json().flatten_event(true).init();
    } else if journal {
        builder.without_time().with_ansi(false).init();
    } else {
        builder.init();
    }
    LogGuard { shared, writer }
}

/// Writes a message that ends the process straight to stderr, at error priority in the
/// journal. After [`init`], drop its guard first, so the message comes after the queued lines.
pub fn fatal(message: &str) {
    let prefix = if stderr_is_journal() {
        priority_prefix(Level::ERROR)
    } else {
        ""
    };
    // Nowhere left to report a failing stderr.
    let _ = io::stderr()
        .lock()
        .write_all(&prefix_lines(prefix, format!("{message}\n").as_bytes()));
}

/// Whether stderr is the journal stream systemd connected (`JOURNAL_STREAM` is `DEVICE:INODE`
/// of it); a daemon started from a shell under a unit inherits the variable with another
/// stderr, so the variable alone does not say.
fn stderr_is_journal() -> bool {
    let Some((dev, ino)) = std::env::var("JOURNAL_STREAM").ok().and_then(|v| {
        let (d, i) = v.split_once(':')?;
        Some((d.parse::<u64>().ok()?, i.parse::<u64>().ok()?))
    }) else {
        return false;
    };
    io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .and_then(|f| f.metadata())
        .is_ok_and(|m| m.dev() == dev && m.ino() == ino)
}

/// The syslog priority of a tracing level: err, warning, info, debug.
fn priority_prefix(level: Level) -> &'static str {
    match level {
        Level::ERROR => "<3>",
        Level::WARN => "<4>",
        Level::INFO => "<6>",
        Level::DEBUG | Level::TRACE => "<7>",
    }
}

/// `text` with `prefix` before each of its lines: the journal splits a message at newlines and
/// would store the continuation lines at the default priority.
fn prefix_lines(prefix: &str, text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + prefix.len());
    for line in text.split_inclusive(|b| *b == b'\n') {
        out.extend_from_slice(prefix.as_bytes());
        out.extend_from_slice(line);
    }
    out
}

/// A `MakeWriter` whose writer collects one event and queues it as one piece when dropped, so
/// lines of concurrent events never interleave; under the journal each line is prefixed with
/// the event's priority.
struct LogWriter {
    /// `None` when the writer thread could not be started: lines are written in place.
    shared: Option<Arc<Shared>>,
    journal: bool,
}

struct EventWriter<'a> {
    prefix: &'static str,
    buf: Vec<u8>,
    shared: Option<&'a Shared>,
}

impl Write for EventWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for EventWriter<'_> {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let prefixed;
        let lines = if self.prefix.is_empty() {
            &self.buf
        } else {
            prefixed = prefix_lines(self.prefix, &self.buf);
            &prefixed
        };
        match self.shared {
            Some(shared) => shared.push(lines),
            // Nowhere left to report a failing stderr.
            None => drop(io::stderr().lock().write_all(lines)),
        }
    }
}

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = EventWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        self.event_writer(Level::INFO)
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        self.event_writer(*meta.level())
    }
}

impl LogWriter {
    fn event_writer(&self, level: Level) -> EventWriter<'_> {
        EventWriter {
            prefix: if self.journal {
                priority_prefix(level)
            } else {
                ""
            },
            buf: Vec::new(),
            shared: self.shared.as_deref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_of_an_event_carries_its_priority() {
        assert_eq!(priority_prefix(Level::ERROR), "<3>");
        assert_eq!(priority_prefix(Level::WARN), "<4>");
        assert_eq!(
            prefix_lines("<3>", b"failed\nhint: x\n"),
            b"<3>failed\n<3>hint: x\n"
        );
        assert_eq!(prefix_lines("<6>", b"{}\n"), b"<6>{}\n");
    }
}
