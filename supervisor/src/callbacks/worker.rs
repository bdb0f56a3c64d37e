//! The delivery worker: one task that reads the outbox for due deliveries and sends each in
//! its own task, bounded per receiver, so one slow or dead receiver holds at most
//! `per_receiver` attempts (each cut off after `timeout`) and never the others' or the
//! invocations'. Database work runs on the blocking pool, on the worker's own connection.
//!
//! It reads the outbox when told something is owed (the history writer's commit that added
//! deliveries, a redeliver), when an attempt ends (its receiver has room again, or its retry is
//! scheduled), and when the next scheduled retry falls due; otherwise once every
//! `FALLBACK`, for a delivery made due behind its back (an edit by hand, a clock step).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use hyper_util::rt::TokioIo;
use rusqlite::Connection;
use tokio_util::sync::CancellationToken;

use super::outbox::{self, AttemptResult, Due};
use super::{CallbackSettings, CallbackTarget, DeliveryMetrics, sign};

/// The longest the worker goes without reading the outbox.
const FALLBACK: Duration = Duration::from_secs(1);
/// Most due rows read per poll (at most `per_receiver` of them per address).
const BATCH: u32 = 1024;

/// What the worker shares with its delivery tasks.
struct Shared {
    conn: Mutex<Connection>,
    settings: CallbackSettings,
    key: String,
    /// Deliveries being attempted now (so a poll does not start them twice).
    inflight: Mutex<HashSet<i64>>,
    /// Deliveries whose attempt ended since the current poll began. A poll may have read such a
    /// row before the attempt's outcome was committed, so it must not start it again: that
    /// would be a duplicate delivery. Cleared before each read, which sees every earlier commit.
    settled: Mutex<HashSet<i64>>,
    /// Attempts in flight per receiver.
    per_receiver: Mutex<HashMap<String, usize>>,
    /// Woken when an attempt ends: its receiver has room again, so a backlog to one receiver
    /// drains at the receiver's pace rather than `per_receiver` attempts per poll.
    room: tokio::sync::Notify,
    metrics: DeliveryMetrics,
}

/// What wakes the worker besides its own attempts ending.
pub struct Wake {
    /// Notified when deliveries are added or made due again.
    owed: Arc<tokio::sync::Notify>,
    /// The longest wait between two reads of the outbox.
    fallback: Duration,
}

impl Wake {
    /// Woken by `owed`, and at least every `FALLBACK`.
    pub fn new(owed: Arc<tokio::sync::Notify>) -> Self {
        Wake {
            owed,
            fallback: FALLBACK,
        }
    }
}

/// Runs until `stop` is cancelled. Deliveries cut off by the stop stay `pending` in the
/// outbox and are attempted again by the next daemon: at least once, never lost.
pub async fn run(
    conn: Connection,
    settings: CallbackSettings,
    key: String,
    metrics: DeliveryMetrics,
    wake: Wake,
    stop: CancellationToken,
) {
    let shared = Arc::new(Shared {
        conn: Mutex::new(conn),
        settings,
        key,
        inflight: Mutex::new(HashSet::new()),
        settled: Mutex::new(HashSet::new()),
        per_receiver: Mutex::new(HashMap::new()),
        room: tokio::sync::Notify::new(),
        metrics,
    });
    // The first read is at once: a previous daemon may have left deliveries owed.
    let mut wait = Duration::ZERO;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
            () = shared.room.notified() => {}
            () = wake.owed.notified() => {}
        }
        wait = wake.fallback;
        lock(&shared.settled).clear();
        let reader = Arc::clone(&shared);
        let per_url = u32::try_from(reader.settings.per_receiver).unwrap_or(u32::MAX);
        let read = tokio::task::spawn_blocking(move || {
            let conn = lock(&reader.conn);
            let now = now_ms();
            let due = outbox::due(&conn, now, per_url, BATCH)?;
            let next = outbox::next_due_after(&conn, now)?;
            Ok::<_, rusqlite::Error>((due, next.map(|at| at.saturating_sub(now))))
        })
        .await;
        let due = match read {
            Ok(Ok((due, next_in_ms))) => {
                if let Some(ms) = next_in_ms {
                    wait = wait.min(Duration::from_millis(u64::try_from(ms).unwrap_or(0)));
                }
                due
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "reading the callback outbox failed; will retry");
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "the callback outbox read task failed");
                continue;
            }
        };
        for d in due {
            start(&shared, d, &stop);
        }
    }
}

/// Starts one attempt unless it is already running or its receiver is at its share.
fn start(shared: &Arc<Shared>, d: Due, stop: &CancellationToken) {
    let receiver = CallbackTarget::parse(&d.url, &shared.settings.allow_hosts)
        .map(|t| t.receiver())
        .unwrap_or_else(|_| d.url.clone());
    {
        let mut inflight = lock(&shared.inflight);
        let settled = lock(&shared.settled);
        let mut counts = lock(&shared.per_receiver);
        let count = counts.entry(receiver.clone()).or_insert(0);
        if inflight.contains(&d.id)
            || settled.contains(&d.id)
            || *count >= shared.settings.per_receiver
        {
            return;
        }
        inflight.insert(d.id);
        *count += 1;
    }
    let shared = Arc::clone(shared);
    let stop = stop.clone();
    tokio::spawn(async move {
        let id = d.id;
        // A stop mid-attempt leaves the row pending: the next daemon sends it again.
        let result = tokio::select! {
            r = attempt(&shared, &d) => Some(r),
            () = stop.cancelled() => None,
        };
        if let Some(result) = result {
            shared.metrics.attempt(result.next_state);
            let writer = Arc::clone(&shared);
            let written = tokio::task::spawn_blocking(move || {
                outbox::record_attempt(&mut lock(&writer.conn), id, &result)
            })
            .await;
            if !matches!(written, Ok(Ok(()))) {
                tracing::warn!(
                    delivery = id,
                    "recording a callback attempt failed; it will be sent again"
                );
            }
        }
        {
            // The same lock order as `start`: inflight, then settled.
            let mut inflight = lock(&shared.inflight);
            inflight.remove(&id);
            lock(&shared.settled).insert(id);
        }
        if let Some(n) = lock(&shared.per_receiver).get_mut(&receiver) {
            *n = n.saturating_sub(1);
        }
        shared.room.notify_one();
    });
}

/// One attempt, and what the delivery becomes after it.
async fn attempt(shared: &Shared, d: &Due) -> AttemptResult {
    let started = Instant::now();
    let at_ms = now_ms();
    let n = d.attempts + 1;
    let settings = &shared.settings;
    let outcome = send(shared, d).await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let (status, error, retry) = match outcome {
        Ok(status) if (200..300).contains(&status) => (Some(status), None, false),
        Ok(status) => (
            Some(status),
            Some(format!("the receiver answered {status}")),
            true,
        ),
        Err(Failure::Retry(e)) => (None, Some(e), true),
        Err(Failure::Never(e)) => (None, Some(e), false),
    };
    let next_state = match (&error, retry) {
        (None, _) => "delivered",
        (Some(_), true) if d.attempts_in_round + 1 < settings.max_attempts => "pending",
        (Some(_), _) => "dead",
    };
    let backoff = settings.backoff(d.attempts_in_round + 1);
    if next_state == "dead" {
        tracing::warn!(delivery = d.id, execution_id = %d.execution_id, url = %d.url,
            attempts = n, error = ?error, "callback dead-lettered");
    }
    AttemptResult {
        n,
        at_ms,
        status,
        error,
        ms,
        next_state,
        next_ms: at_ms + i64::try_from(backoff.as_millis()).unwrap_or(i64::MAX / 2),
    }
}

enum Failure {
    /// Worth another attempt (connection refused, timeout).
    Retry(String),
    /// No attempt can succeed (the record or the subscription is gone, the address is bad).
    Never(String),
}

async fn send(shared: &Shared, d: &Due) -> Result<u16, Failure> {
    let Some(record) = &d.record else {
        return Err(Failure::Never(
            "the execution record is no longer kept (history retention)".into(),
        ));
    };
    let secret = match (&d.subscription_secret, d.from_subscription, d.caller_uid) {
        (Some(secret), _, _) => secret.clone(),
        (None, true, _) => return Err(Failure::Never("the subscription was deleted".into())),
        (None, false, Some(uid)) => sign::caller_secret(&shared.key, uid),
        (None, false, None) => return Err(Failure::Never("the record names no caller".into())),
    };
    let target = CallbackTarget::parse(&d.url, &shared.settings.allow_hosts)
        .map_err(|e| Failure::Never(e.to_string()))?;
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |t| t.as_secs());
    let body = Bytes::from(record.clone().into_bytes());
    let headers = [
        ("runwarm-timestamp", timestamp.to_string()),
        (
            "runwarm-signature",
            sign::signature(&secret, timestamp, &body),
        ),
        ("runwarm-execution-id", d.execution_id.clone()),
        ("runwarm-delivery", d.id.to_string()),
        ("runwarm-attempt", (d.attempts + 1).to_string()),
    ];
    match tokio::time::timeout(shared.settings.timeout, post(&target, body, &headers)).await {
        Ok(result) => result.map_err(Failure::Retry),
        Err(_) => Err(Failure::Retry(format!(
            "no answer within {} ms",
            shared.settings.timeout.as_millis()
        ))),
    }
}

/// POSTs `body` and returns the answer's status; the answer's body is not read.
async fn post(
    target: &CallbackTarget,
    body: Bytes,
    headers: &[(&str, String)],
) -> Result<u16, String> {
    match target {
        CallbackTarget::Unix { socket, path } => {
            let stream = tokio::net::UnixStream::connect(socket)
                .await
                .map_err(|e| format!("connecting to {}: {e}", socket.display()))?;
            exchange(TokioIo::new(stream), "localhost", path, body, headers).await
        }
        CallbackTarget::Http { host, port, path } => {
            let stream = tokio::net::TcpStream::connect((host.as_str(), *port))
                .await
                .map_err(|e| format!("connecting to {host}:{port}: {e}"))?;
            exchange(
                TokioIo::new(stream),
                &format!("{host}:{port}"),
                path,
                body,
                headers,
            )
            .await
        }
    }
}

async fn exchange<I>(
    io: I,
    authority: &str,
    path: &str,
    body: Bytes,
    headers: &[(&str, String)],
) -> Result<u16, String>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Full<Bytes>>(io)
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    // The connection task ends when the sender is dropped after the answer.
    let driver = tokio::spawn(conn);
    let mut request = Request::post(path)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::CONTENT_TYPE, "application/json");
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let request = request
        .body(Full::new(body))
        .map_err(|e| format!("building the request: {e}"))?;
    let answer = sender.send_request(request).await;
    drop(sender);
    driver.abort();
    answer
        .map(|a| a.status().as_u16())
        .map_err(|e| format!("sending: {e}"))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Each guarded value is consistent between statements; a panic elsewhere leaves it usable.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests;
