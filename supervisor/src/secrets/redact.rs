//! Replacing secret values with `***` in what a script outputs, before it is stored or streamed.
//!
//! Values shorter than [`MIN_REDACTED`] bytes are left alone: replacing every `abc` or `1` in
//! a script's output would mangle it while protecting nothing (such a value is not a secret
//! worth the name).

use std::sync::Arc;

use runwarm_protocol::RawJson;
use serde_json::{Map, Value};

use crate::execution::{ExecutionRecord, LogRecord};

/// Shortest value that is redacted.
pub const MIN_REDACTED: usize = 4;
/// What a value is replaced with.
const MASK: &[u8] = b"***";

/// The values to hide from one version's output.
#[derive(Clone, Default)]
pub struct Redactor {
    /// Longest first, so a value that contains another is replaced whole.
    values: Arc<Vec<Vec<u8>>>,
}

impl std::fmt::Debug for Redactor {
    // By hand: the derived one would print the values.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("values", &self.values.len())
            .finish()
    }
}

impl Redactor {
    /// Hides `values` (those shorter than `MIN_REDACTED` bytes are dropped).
    pub fn new(values: impl IntoIterator<Item = String>) -> Self {
        let mut values: Vec<Vec<u8>> = values
            .into_iter()
            .filter(|v| v.len() >= MIN_REDACTED)
            .map(String::into_bytes)
            .collect();
        values.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        values.dedup();
        Redactor {
            values: Arc::new(values),
        }
    }

    /// Whether there is nothing to hide.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    fn longest(&self) -> usize {
        self.values.first().map_or(0, Vec::len)
    }

    /// `bytes` with every value replaced.
    pub fn bytes(&self, bytes: &[u8]) -> Vec<u8> {
        let mut out = bytes.to_vec();
        for v in self.values.iter() {
            out = replace(&out, v);
        }
        out
    }

    /// `text` with every value replaced.
    pub fn text(&self, text: &str) -> String {
        if self.is_empty() {
            return text.to_owned();
        }
        let mut out = text.to_owned();
        for v in self.values.iter() {
            // Values are valid UTF-8 (they were `String`s), so `str::replace` sees them whole.
            if let Ok(v) = std::str::from_utf8(v) {
                out = out.replace(v, "***");
            }
        }
        out
    }

    /// A JSON value with every string (and key) redacted; a number whose digits contain a
    /// value becomes the string `***`, since the digits are the secret.
    pub fn json(&self, value: Value) -> Value {
        if self.is_empty() {
            return value;
        }
        match value {
            Value::String(s) => Value::String(self.text(&s)),
            Value::Number(n) => {
                let text = n.to_string();
                if self.text(&text) == text {
                    Value::Number(n)
                } else {
                    Value::String("***".into())
                }
            }
            Value::Array(items) => Value::Array(items.into_iter().map(|v| self.json(v)).collect()),
            Value::Object(map) => Value::Object(self.map(map)),
            other => other,
        }
    }

    /// [`Redactor::json`] on JSON text. A result that cannot be read back (it was checked
    /// when it arrived, so this does not happen) is withheld rather than passed on unredacted.
    fn raw_json(&self, raw: &RawJson) -> Option<RawJson> {
        match raw.to_value() {
            Ok(value) => Some(RawJson::from_value(&self.json(value))),
            Err(e) => {
                tracing::warn!(error = %e, "a result that cannot be redacted is withheld");
                None
            }
        }
    }

    fn map(&self, map: Map<String, Value>) -> Map<String, Value> {
        map.into_iter()
            .map(|(k, v)| (self.text(&k), self.json(v)))
            .collect()
    }

    /// A log record with its message and fields redacted.
    pub fn log(&self, rec: LogRecord) -> LogRecord {
        if self.is_empty() {
            return rec;
        }
        LogRecord {
            level: self.text(&rec.level),
            message: self.text(&rec.message),
            fields: self.map(rec.fields),
        }
    }

    /// An execution record with everything the script produced redacted: output, logs,
    /// result and error. The payload is the caller's, not the script's, and is left alone.
    pub fn record(&self, mut rec: ExecutionRecord) -> ExecutionRecord {
        if self.is_empty() {
            return rec;
        }
        rec.stdout = self.text(&rec.stdout);
        rec.stderr = self.text(&rec.stderr);
        rec.logs = std::mem::take(&mut rec.logs)
            .into_iter()
            .map(|l| self.log(l))
            .collect();
        rec.result = rec.result.take().and_then(|raw| self.raw_json(&raw));
        if let Some(e) = rec.error.as_mut() {
            e.kind = self.text(&e.kind);
            e.message = self.text(&e.message);
            e.trace = e.trace.as_deref().map(|t| self.text(t));
        }
        rec
    }
}

/// Redacts a byte stream that arrives in chunks: a value split across two chunks is still
/// found, because the last `longest - 1` bytes are held back until more arrive (or the stream
/// ends). A match cannot start before that tail without ending inside what was seen.
#[derive(Debug, Default)]
pub struct StreamRedactor {
    redactor: Redactor,
    held: Vec<u8>,
}

impl StreamRedactor {
    /// A stream over `redactor`'s values.
    pub fn new(redactor: Redactor) -> Self {
        StreamRedactor {
            redactor,
            held: Vec::new(),
        }
    }

    /// Takes a chunk; returns what may be passed on now.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        if self.redactor.is_empty() {
            return chunk.to_vec();
        }
        self.held.extend_from_slice(chunk);
        let redacted = self.redactor.bytes(&self.held);
        let keep = self
            .redactor
            .longest()
            .saturating_sub(1)
            .min(redacted.len());
        let cut = redacted.len() - keep;
        self.held = redacted[cut..].to_vec();
        redacted[..cut].to_vec()
    }

    /// The stream ended: the rest, redacted.
    pub fn finish(&mut self) -> Vec<u8> {
        let rest = std::mem::take(&mut self.held);
        self.redactor.bytes(&rest)
    }
}

/// `hay` with every non-overlapping occurrence of `needle` replaced by [`MASK`].
fn replace(hay: &[u8], needle: &[u8]) -> Vec<u8> {
    if needle.is_empty() || hay.len() < needle.len() {
        return hay.to_vec();
    }
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(needle) {
            out.extend_from_slice(MASK);
            i += needle.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}
