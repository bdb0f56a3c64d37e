//! The event stream's side of a secret-naming version's output: chunks pass through a redactor
//! on their way to live followers, so a value never reaches them even split across writes.

use std::sync::{Arc, Mutex};

use crate::invocation::events::EventLog;
use crate::secrets::{Redactor, StreamRedactor};
use crate::worker::OutputChunk;

/// Passes a worker's output on to the event stream with secret values replaced by `***`. A
/// value split across chunks is still found: each stream's redactor holds back a short tail
/// until more arrives or [`RedactedSink::flush`] passes it on at the end of the request.
pub(super) struct RedactedSink {
    events: Arc<EventLog>,
    redactor: Redactor,
    stdout: Mutex<StreamRedactor>,
    stderr: Mutex<StreamRedactor>,
}

impl RedactedSink {
    pub(super) fn new(events: Arc<EventLog>, redactor: Redactor) -> Self {
        RedactedSink {
            events,
            stdout: Mutex::new(StreamRedactor::new(redactor.clone())),
            stderr: Mutex::new(StreamRedactor::new(redactor.clone())),
            redactor,
        }
    }

    fn lock(m: &Mutex<StreamRedactor>) -> std::sync::MutexGuard<'_, StreamRedactor> {
        // A redactor's state is a byte buffer, consistent between calls.
        m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn emit(&self, chunk: OutputChunk<'_>) {
        match chunk {
            OutputChunk::Stdout(bytes) => {
                let pass = Self::lock(&self.stdout).push(bytes);
                if !pass.is_empty() {
                    self.events.output(OutputChunk::Stdout(&pass));
                }
            }
            OutputChunk::Stderr(bytes) => {
                let pass = Self::lock(&self.stderr).push(bytes);
                if !pass.is_empty() {
                    self.events.output(OutputChunk::Stderr(&pass));
                }
            }
            OutputChunk::Log(rec) => {
                let rec = self.redactor.log(rec.clone());
                self.events.output(OutputChunk::Log(&rec));
            }
        }
    }

    pub(super) fn flush(&self) {
        let out = Self::lock(&self.stdout).finish();
        if !out.is_empty() {
            self.events.output(OutputChunk::Stdout(&out));
        }
        let err = Self::lock(&self.stderr).finish();
        if !err.is_empty() {
            self.events.output(OutputChunk::Stderr(&err));
        }
    }
}
