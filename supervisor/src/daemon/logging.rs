//! The daemon's log: tracing events formatted on the thread that logs them and written to
//! stderr by a thread of their own, so that a reader that stops reading (a wedged journald, a
//! paused `| less`, a log shipper that blocks) never stalls the thread serving invocations.
//! Written in place, one blocked `write` on the runtime thread stopped every call: with stderr
//! in a pipe nobody read, the daemon stopped answering after 137 warm calls (each finished
//! execution logs a line at `info`).
//!
//! Up to [`BUFFERED_LINES`] events wait in memory for a slow reader; beyond that new ones are
//! dropped and counted ([`dropped_lines`], `runwarm_log_lines_dropped_total`). Under systemd
//! each line carries its syslog priority, as sd-daemon(3) describes.

use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::sync::OnceLock;

use tracing::Level;
use tracing_appender::non_blocking::{ErrorCounter, NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::fmt::MakeWriter;

use crate::config::{Config, LogFormat};

/// Events that may wait for a slow reader: at the ~600 bytes of an `execution finished` line,
/// about 5 MiB at most.
pub const BUFFERED_LINES: usize = 8192;

static DROPPED: OnceLock<ErrorCounter> = OnceLock::new();

/// Events dropped because stderr's reader fell [`BUFFERED_LINES`] behind; 0 before [`init`].
pub fn dropped_lines() -> u64 {
    DROPPED
        .get()
        .map_or(0, |c| u64::try_from(c.dropped_lines()).unwrap_or(u64::MAX))
}

/// Installs the subscriber for `config`. Keep the guard until the end: dropping it writes what
/// is still queued (waiting at most a second for a reader that does not read).
pub fn init(config: &Config) -> WorkerGuard {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let json = match config.log_format {
        LogFormat::Json => true,
        LogFormat::Human => false,
        LogFormat::Auto => !io::stderr().is_terminal(),
    };
    let (out, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(BUFFERED_LINES)
        .thread_name("log-writer")
        .finish(io::stderr());
    let _ = DROPPED.set(out.error_counter());
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    // Under systemd the lines go to the journal: each starts with its syslog priority, so
    // `journalctl -u runwarm -p err` shows errors only. The journal stamps every line itself.
    if stderr_is_journal() {
        let builder = builder.with_writer(Journal { out });
        if json {
            builder.json().flatten_event(true).init();
        } else {
            builder.without_time().with_ansi(false).init();
        }
    } else if json {
        builder.with_writer(out).json().flatten_event(true).init();
    } else {
        builder.with_writer(out).init();
    }
    guard
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

/// A `MakeWriter` whose writer collects one event and queues it, each line prefixed with the
/// event's priority, as one message when dropped (lines of concurrent events never interleave).
struct Journal {
    out: NonBlocking,
}

struct EventWriter {
    prefix: &'static str,
    buf: Vec<u8>,
    out: NonBlocking,
}

impl Write for EventWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for EventWriter {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            // A full queue drops and counts the event; there is nowhere else to report it.
            let _ = self.out.write(&prefix_lines(self.prefix, &self.buf));
        }
    }
}

impl<'a> MakeWriter<'a> for Journal {
    type Writer = EventWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.event_writer(Level::INFO)
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        self.event_writer(*meta.level())
    }
}

impl Journal {
    fn event_writer(&self, level: Level) -> EventWriter {
        EventWriter {
            prefix: priority_prefix(level),
            buf: Vec::new(),
            out: self.out.clone(),
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
