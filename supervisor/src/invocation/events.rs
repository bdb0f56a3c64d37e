//! Live events of async executions (`GET /v1/executions/{id}/events`).
//!
//! Each async execution gets an [`EventLog`]: a bounded in-memory list of what happened (state
//! changes, output lines, log records, the end) plus a broadcast channel for live subscribers.
//! A subscriber takes a snapshot and a receiver under one lock, so it sees every event exactly
//! once whether it came early or late. Logs stay in the [`EventHub`] for [`KEEP_AFTER_END`]
//! after the end; later subscribers get events synthesized from the stored record instead.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use serde_json::json;
use tokio::sync::broadcast;

use crate::execution::{ExecutionRecord, LogRecord, State};
use crate::worker::OutputChunk;

/// Events kept per execution; older ones are dropped first (the end is always kept).
pub const MAX_EVENTS: usize = 2000;
/// Bytes of event data kept per execution.
pub const MAX_BYTES: usize = 256 * 1024;
/// How long a finished execution's log stays for late subscribers.
pub const KEEP_AFTER_END: Duration = Duration::from_secs(60);
/// A line longer than this is sent in pieces.
const MAX_LINE: usize = 64 * 1024;

/// One server-sent event: its name and its JSON data.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `state`, `stdout`, `stderr`, `log` or `end`.
    pub name: &'static str,
    /// The `data:` payload (one line of JSON).
    pub data: String,
}

/// The data of a `state` event.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StateData {
    /// The state entered.
    pub state: State,
}

/// The data of a `stdout` or `stderr` event: one line, or a piece of a line longer than 64 KiB.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TextData {
    /// The text, its newline included.
    pub text: String,
}

impl Event {
    fn new(name: &'static str, data: &impl Serialize) -> Self {
        Event {
            name,
            // Every data type here has string keys only, so this does not fail; an empty object
            // would still be one line of JSON.
            data: serde_json::to_string(data).unwrap_or_else(|_| "{}".to_owned()),
        }
    }

    /// A state change.
    pub fn state(state: State) -> Self {
        Event::new("state", &StateData { state })
    }

    /// A line of output (`stdout` or `stderr`).
    fn text(name: &'static str, text: String) -> Self {
        Event::new(name, &TextData { text })
    }

    /// The final event, carrying the record.
    pub fn end(rec: &ExecutionRecord) -> Self {
        Event::new(
            "end",
            &serde_json::to_value(rec).unwrap_or_else(|_| json!({"id": rec.id})),
        )
    }

    /// Whether this ends the stream.
    pub fn is_end(&self) -> bool {
        self.name == "end"
    }
}

/// The events of a finished execution, made from its stored record.
pub fn synthesize(rec: &ExecutionRecord) -> Vec<Event> {
    let mut out = vec![Event::state(State::Running)];
    for (name, text) in [("stdout", &rec.stdout), ("stderr", &rec.stderr)] {
        for line in text.split_inclusive('\n') {
            out.push(Event::text(name, line.to_owned()));
        }
    }
    for log in &rec.logs {
        out.push(Event::new("log", log));
    }
    out.push(Event::state(rec.state));
    out.push(Event::end(rec));
    out
}

/// The event log of one execution.
#[derive(Debug)]
pub struct EventLog {
    inner: Mutex<LogInner>,
    tx: broadcast::Sender<Event>,
}

#[derive(Debug, Default)]
struct LogInner {
    events: VecDeque<Event>,
    bytes: usize,
    dropped: u64,
    ended: bool,
    partial_out: Vec<u8>,
    partial_err: Vec<u8>,
}

impl Default for EventLog {
    fn default() -> Self {
        // Live subscribers that fall this far behind skip events (they are told so).
        let (tx, _) = broadcast::channel(256);
        EventLog {
            inner: Mutex::default(),
            tx,
        }
    }
}

impl EventLog {
    fn lock(&self) -> MutexGuard<'_, LogInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends an event and sends it to live subscribers; ignored after the end.
    pub fn publish(&self, event: Event) {
        let mut inner = self.lock();
        self.push_locked(&mut inner, event);
    }

    fn push_locked(&self, inner: &mut LogInner, event: Event) {
        if inner.ended {
            return;
        }
        if event.is_end() {
            // Whatever is left of an unterminated line goes out before the end.
            for (name, rest) in [
                ("stdout", std::mem::take(&mut inner.partial_out)),
                ("stderr", std::mem::take(&mut inner.partial_err)),
            ] {
                if !rest.is_empty() {
                    let text = String::from_utf8_lossy(&rest).into_owned();
                    self.push_locked(inner, Event::text(name, text));
                }
            }
            inner.ended = true;
        }
        inner.bytes += event.data.len();
        while (inner.events.len() >= MAX_EVENTS || inner.bytes > MAX_BYTES)
            && let Some(old) = inner.events.pop_front()
        {
            inner.bytes -= old.data.len();
            inner.dropped += 1;
        }
        // No receiver is not an error: nobody is listening right now.
        let _ = self.tx.send(event.clone());
        inner.events.push_back(event);
    }

    /// Output of the executor, cut into lines.
    pub fn output(&self, chunk: OutputChunk<'_>) {
        let mut inner = self.lock();
        match chunk {
            OutputChunk::Log(rec) => self.push_locked(&mut inner, log_event(rec)),
            OutputChunk::Stdout(bytes) => self.lines(&mut inner, "stdout", bytes),
            OutputChunk::Stderr(bytes) => self.lines(&mut inner, "stderr", bytes),
        }
    }

    fn lines(&self, inner: &mut LogInner, name: &'static str, bytes: &[u8]) {
        let mut buf = std::mem::take(if name == "stdout" {
            &mut inner.partial_out
        } else {
            &mut inner.partial_err
        });
        buf.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(pos) = buf[start..].iter().position(|b| *b == b'\n') {
            let end = start + pos + 1;
            let text = String::from_utf8_lossy(&buf[start..end]).into_owned();
            self.push_locked(inner, Event::text(name, text));
            start = end;
        }
        while buf.len() - start > MAX_LINE {
            let end = start + MAX_LINE;
            let text = String::from_utf8_lossy(&buf[start..end]).into_owned();
            self.push_locked(inner, Event::text(name, text));
            start = end;
        }
        buf.drain(..start);
        if name == "stdout" {
            inner.partial_out = buf;
        } else {
            inner.partial_err = buf;
        }
    }

    /// What happened so far, and a receiver of what comes next (none once ended).
    pub fn subscribe(&self) -> (Vec<Event>, Option<broadcast::Receiver<Event>>, u64) {
        let inner = self.lock();
        let rx = (!inner.ended).then(|| self.tx.subscribe());
        (inner.events.iter().cloned().collect(), rx, inner.dropped)
    }
}

fn log_event(rec: &LogRecord) -> Event {
    Event::new("log", rec)
}

/// Event logs of the async executions in flight or recently finished.
#[derive(Debug, Default)]
pub struct EventHub {
    logs: Mutex<HashMap<String, Arc<EventLog>>>,
}

impl EventHub {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<EventLog>>> {
        self.logs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new log for `id`.
    pub fn create(&self, id: &str) -> Arc<EventLog> {
        let log = Arc::new(EventLog::default());
        self.lock().insert(id.to_owned(), Arc::clone(&log));
        log
    }

    /// The log of `id`, while it is kept.
    pub fn get(&self, id: &str) -> Option<Arc<EventLog>> {
        self.lock().get(id).cloned()
    }

    /// Publishes the end and forgets the log after [`KEEP_AFTER_END`].
    pub fn end(self: &Arc<Self>, id: &str, rec: &ExecutionRecord) {
        if let Some(log) = self.get(id) {
            log.publish(Event::end(rec));
        }
        let hub = Arc::clone(self);
        let id = id.to_owned();
        tokio::spawn(async move {
            tokio::time::sleep(KEEP_AFTER_END).await;
            hub.lock().remove(&id);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .map(|e| format!("{} {}", e.name, e.data))
            .collect()
    }

    #[test]
    fn output_is_cut_into_lines_and_the_rest_flushed_at_the_end() {
        let log = EventLog::default();
        log.output(OutputChunk::Stdout(b"a\nb"));
        log.output(OutputChunk::Stdout(b"c\nd"));
        log.output(OutputChunk::Stderr(b"e\n"));
        log.publish(Event::new("end", &json!({})));
        let (events, rx, _) = log.subscribe();
        assert!(rx.is_none(), "an ended log has no live part");
        assert_eq!(
            texts(&events),
            [
                r#"stdout {"text":"a\n"}"#,
                r#"stdout {"text":"bc\n"}"#,
                r#"stderr {"text":"e\n"}"#,
                r#"stdout {"text":"d"}"#,
                "end {}",
            ]
        );
    }

    #[test]
    fn the_log_is_bounded_and_keeps_the_newest() {
        let log = EventLog::default();
        for i in 0..MAX_EVENTS + 10 {
            log.publish(Event::new("stdout", &json!({"text": i.to_string()})));
        }
        let (events, _, dropped) = log.subscribe();
        assert_eq!(events.len(), MAX_EVENTS);
        assert_eq!(dropped, 10);
        assert_eq!(events[0].data, r#"{"text":"10"}"#);
    }

    #[test]
    fn the_log_is_bounded_in_bytes_too() {
        let log = EventLog::default();
        let line = "y".repeat(10 * 1024) + "\n";
        for _ in 0..100 {
            log.output(OutputChunk::Stdout(line.as_bytes()));
        }
        let (events, _, dropped) = log.subscribe();
        let bytes: usize = events.iter().map(|e| e.data.len()).sum();
        assert!(bytes <= MAX_BYTES, "{bytes}");
        assert_eq!(events.len() as u64 + dropped, 100);
    }

    #[test]
    fn a_long_line_is_split() {
        let log = EventLog::default();
        log.output(OutputChunk::Stdout(&vec![b'x'; MAX_LINE * 2 + 5]));
        let (events, _, _) = log.subscribe();
        assert_eq!(events.len(), 2);
    }

    #[tokio::test]
    async fn a_subscriber_gets_the_past_then_the_live_events() {
        let log = EventLog::default();
        log.publish(Event::state(State::Running));
        let (past, rx, _) = log.subscribe();
        let mut rx = rx.unwrap();
        log.output(OutputChunk::Stdout(b"live\n"));
        assert_eq!(past.len(), 1);
        assert_eq!(rx.recv().await.unwrap().data, r#"{"text":"live\n"}"#);
        log.publish(Event::new("end", &json!({})));
        log.publish(Event::state(State::Running));
        assert!(rx.recv().await.unwrap().is_end());
        assert_eq!(log.subscribe().0.len(), 3, "nothing after the end");
    }
}
