//! A callback receiver for the tests: HTTP/1.1 on a Unix socket, one request per connection
//! (what runwarmd's worker sends), written by hand so the test sees exactly what arrives.
//! It verifies every signature, counts what it got, and can be told to fail its next answers,
//! to stop (its socket gone: connections refused) or never to answer.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;

/// What the receiver saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// Requests that reached the receiver (every attempt it answered, 2xx or not).
    pub requests: usize,
    /// Answers it failed on purpose.
    pub failed_on_purpose: usize,
    /// Accepted deliveries per execution id (more than one: a duplicate).
    pub accepted: HashMap<String, usize>,
    /// Bodies whose signature or timestamp did not verify.
    pub bad_signatures: Vec<String>,
    /// When the last new execution id was accepted.
    pub last_new: Option<Instant>,
    /// Terminal states of the accepted records.
    pub states: HashMap<String, String>,
}

/// How the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 200 (after failing the configured number of answers with 503).
    Answer,
    /// Reads the request and never answers.
    Silent,
}

/// A running receiver.
pub struct Receiver {
    pub socket: PathBuf,
    pub seen: Arc<Mutex<Seen>>,
    fail_next: Arc<Mutex<usize>>,
    secret: String,
    task: Option<JoinHandle<()>>,
}

impl Receiver {
    /// Starts on `socket`, verifying with `secret`, failing its first `fail_first` answers.
    pub fn start(socket: &Path, secret: &str, fail_first: usize, mode: Mode) -> Receiver {
        let mut r = Receiver {
            socket: socket.to_owned(),
            seen: Arc::default(),
            fail_next: Arc::new(Mutex::new(fail_first)),
            secret: secret.to_owned(),
            task: None,
        };
        r.resume(mode);
        r
    }

    /// The `unix:` callback address of `path` on this receiver.
    pub fn url(&self, path: &str) -> String {
        format!("unix:{}{path}", self.socket.display())
    }

    /// Stops answering: the listener is closed and its socket removed.
    pub fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        let _ = std::fs::remove_file(&self.socket);
    }

    /// Listens again (after [`Receiver::stop`]).
    pub fn resume(&mut self, mode: Mode) {
        self.stop();
        let listener = UnixListener::bind(&self.socket).expect("bind the receiver socket");
        let seen = Arc::clone(&self.seen);
        let fail_next = Arc::clone(&self.fail_next);
        let secret = self.secret.clone();
        self.task = Some(tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                if mode == Mode::Silent {
                    // Keep the connection open and say nothing.
                    held.push(stream);
                    continue;
                }
                let (seen, fail_next, secret) =
                    (Arc::clone(&seen), Arc::clone(&fail_next), secret.clone());
                tokio::spawn(async move {
                    let _ = serve(stream, &seen, &fail_next, &secret).await;
                });
            }
        }));
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn serve(
    mut stream: UnixStream,
    seen: &Mutex<Seen>,
    fail_next: &Mutex<usize>,
    secret: &str,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    };
    let length: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = &buf[head_end..head_end + length];
    let fail = {
        let mut left = fail_next.lock().unwrap();
        let fail = *left > 0;
        *left = left.saturating_sub(1);
        fail
    };
    {
        let mut s = seen.lock().unwrap();
        s.requests += 1;
        if fail {
            s.failed_on_purpose += 1;
        } else {
            let record: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let id = record["id"].as_str().unwrap_or_default().to_owned();
            let verified = verify(
                secret,
                header("runwarm-timestamp").as_deref(),
                header("runwarm-signature").as_deref(),
                body,
            ) && header("runwarm-execution-id").as_deref() == Some(id.as_str());
            if !verified {
                s.bad_signatures.push(id.clone());
            }
            let n = s.accepted.entry(id.clone()).or_insert(0);
            *n += 1;
            if *n == 1 {
                s.last_new = Some(Instant::now());
            }
            s.states
                .insert(id, record["state"].as_str().unwrap_or_default().to_owned());
        }
    }
    let answer: &[u8] = if fail {
        b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    } else {
        b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    };
    stream.write_all(answer).await?;
    stream.shutdown().await
}

/// What a receiver does with the two headers (the README's Python does the same).
pub fn verify(secret: &str, timestamp: Option<&str>, signature: Option<&str>, body: &[u8]) -> bool {
    let (Some(ts), Some(sig)) = (timestamp, signature) else {
        return false;
    };
    let Ok(t) = ts.parse::<u64>() else {
        return false;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if now.abs_diff(t) > 300 {
        return false;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(ts.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes())) == sig
}
