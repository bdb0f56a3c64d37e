//! The history writer: one std thread that owns the write connection, gathers queued records
//! into batches (up to `batch_max`, or whatever arrived within `flush_interval`) and commits each
//! batch in one transaction.
//!
//! Records travel through the shared pending map, not the channel: the channel only says which
//! ids changed, so a record updated ten times before the writer gets to it is written once, in
//! its latest form. A failed batch is retried with backoff, never dropped, while the daemon runs.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dashmap::DashMap;
use rusqlite::Connection;

use super::queue::{Ack, Command, Pending, Signals};
use super::space::{Space, is_disk_full};
use super::{HistoryConfig, HistoryError, schema};
use crate::execution::ExecutionRecord;

/// How often retention runs at most.
const EXPIRY_EVERY: Duration = Duration::from_secs(60);
/// Longest a record owing a callback waits for others to share its commit: short enough that
/// the callback starts within a few milliseconds, long enough that under load the commits
/// stay batches (committed one by one, the writer's CPU per record grew by half).
const PROMPT_WINDOW: Duration = Duration::from_millis(2);
/// First retry delay after a failed batch; doubles up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// When stopping, a batch that keeps failing is given up after this many attempts, so a broken
/// disk cannot hang shutdown.
const ATTEMPTS_WHEN_STOPPING: u32 = 3;

#[derive(Default)]
struct Batch {
    ids: HashSet<String>,
    acks: Vec<Ack>,
    durable: bool,
    prompt: bool,
}

impl Batch {
    fn waited_on(&self) -> bool {
        !self.acks.is_empty()
    }
}

pub struct Writer {
    conn: Connection,
    rx: Receiver<Command>,
    pending: Arc<DashMap<String, Pending>>,
    cfg: HistoryConfig,
    last_expiry: Option<Instant>,
    /// Close was asked, or every handle is gone: write what is left, then stop.
    stopping: bool,
    close_acks: Vec<Ack>,
    /// Shared with the handle: counts failed write transactions for the metrics.
    errors: Arc<AtomicU64>,
    /// Told whether each commit found the disk full.
    space: Arc<Space>,
    /// Wakes the delivery worker after a commit that added deliveries, and is told of prompt
    /// records.
    signals: Arc<Signals>,
}

impl Writer {
    pub fn new(
        conn: Connection,
        rx: Receiver<Command>,
        pending: Arc<DashMap<String, Pending>>,
        cfg: HistoryConfig,
        errors: Arc<AtomicU64>,
        space: Arc<Space>,
        signals: Arc<Signals>,
    ) -> Self {
        Self {
            space,
            signals,
            conn,
            rx,
            pending,
            cfg,
            last_expiry: None,
            stopping: false,
            close_acks: Vec::new(),
            errors,
        }
    }

    pub fn run(mut self) {
        self.expire_if_due();
        let mut outcome = Ok(());
        while let Some(first) = self.next_command() {
            let mut batch = Batch::default();
            self.take(first, &mut batch);
            self.collect(&mut batch);
            let result = self.commit(&mut batch);
            for ack in batch.acks {
                // A waiter that stopped waiting is not an error.
                let _ = ack.send(result.as_ref().map(|_| ()).map_err(clone_error));
            }
            if let Err(e) = result {
                outcome = Err(e);
            }
            self.expire_if_due();
        }
        for ack in self.close_acks.drain(..) {
            let _ = ack.send(outcome.as_ref().map(|_| ()).map_err(clone_error));
        }
        tracing::debug!("history writer stopped");
    }

    /// Blocks until there is work; `None` when it is time to stop. While stopping, only what is
    /// already in the channel counts.
    fn next_command(&mut self) -> Option<Command> {
        if self.stopping {
            return self.rx.try_recv().ok();
        }
        loop {
            let wait = match (self.cfg.retention, self.last_expiry) {
                (Some(_), Some(last)) => EXPIRY_EVERY.saturating_sub(last.elapsed()),
                (Some(_), None) => Duration::ZERO,
                (None, _) => Duration::MAX,
            };
            match self.rx.recv_timeout(wait) {
                Ok(cmd) => return Some(cmd),
                Err(RecvTimeoutError::Timeout) => self.expire_if_due(),
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// Adds more commands to `batch` until it is full, its time is up, or someone waits on it;
    /// a waiting batch still takes what is already queued (a group commit).
    ///
    /// Between looks at the channel the writer parks instead of blocking in `recv`: a sender
    /// wakes a receiver blocked in `recv` on every record, which on a busy daemon is a futex wake
    /// and a context switch per invocation on the hot path. Parked, only the commands someone
    /// waits on wake it, and the first prompt one of a batch (`History::send` unparks for
    /// those).
    fn collect(&mut self, batch: &mut Batch) {
        let mut deadline = Instant::now() + self.cfg.flush_interval;
        let mut prompt = false;
        loop {
            self.drain_into(batch);
            if batch.ids.len() >= self.cfg.batch_max || batch.waited_on() || self.stopping {
                break;
            }
            if batch.prompt && !prompt {
                prompt = true;
                deadline = deadline.min(Instant::now() + PROMPT_WINDOW);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            std::thread::park_timeout(left);
        }
        // A prompt record from now on belongs to the next batch and wakes the writer for it.
        self.signals.prompt_pending.store(false, Ordering::Release);
    }

    /// Takes what is already queued, up to a full batch.
    fn drain_into(&mut self, batch: &mut Batch) {
        while batch.ids.len() < self.cfg.batch_max {
            match self.rx.try_recv() {
                Ok(cmd) => self.take(cmd, batch),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    self.stopping = true;
                    break;
                }
            }
        }
    }

    fn take(&mut self, cmd: Command, batch: &mut Batch) {
        match cmd {
            Command::Write { id, ack, prompt } => {
                batch.ids.insert(id);
                batch.prompt |= prompt;
                if let Some(ack) = ack {
                    batch.durable = true;
                    batch.acks.push(ack);
                }
            }
            Command::Flush(ack) => batch.acks.push(ack),
            Command::Close(ack) => {
                self.stopping = true;
                batch.durable = true;
                self.close_acks.push(ack);
            }
        }
    }

    /// Commits the batch, retrying with backoff; while waiting it keeps taking commands into the
    /// batch so nothing queued meanwhile is lost and a close request is noticed.
    ///
    /// On a full disk the waiters are answered `DiskFull` at once instead of after the retries
    /// succeed (which may be never): an asynchronous accept then refuses its execution and
    /// withdraws the record before the next attempt, so a caller is never told "no" for work
    /// that later runs. Records nobody waits on stay and are written once space returns.
    fn commit(&mut self, batch: &mut Batch) -> Result<(), HistoryError> {
        let mut ids = batch.ids.clone();
        // Commands that arrive while a failed batch waits to be retried join it.
        let mut extra = Batch::default();
        let mut attempt = 0u32;
        let result = loop {
            attempt += 1;
            let durable = batch.durable || extra.durable || self.stopping;
            let err = match self.write(&ids, durable) {
                Ok(written) => {
                    self.space.note_write(false);
                    for (id, seq) in written {
                        self.pending.remove_if(&id, |_, p| p.seq == seq);
                    }
                    break Ok(());
                }
                Err(e) => e,
            };
            self.errors.fetch_add(1, Ordering::Relaxed);
            if is_disk_full(&err) {
                self.space.note_write(true);
                for ack in batch.acks.drain(..).chain(extra.acks.drain(..)) {
                    let _ = ack.send(Err(HistoryError::DiskFull {
                        dir: self.space.dir().to_path_buf(),
                    }));
                }
            }
            if self.stopping && attempt >= ATTEMPTS_WHEN_STOPPING {
                tracing::error!(error = %err, records = ids.len(), attempt,
                    "giving up writing execution history while stopping; these records are lost");
                break Err(HistoryError::Write(Arc::new(err)));
            }
            let backoff = FIRST_BACKOFF
                .saturating_mul(2u32.saturating_pow(attempt - 1))
                .min(MAX_BACKOFF);
            tracing::error!(error = %err, records = ids.len(), attempt,
                retry_in_ms = backoff.as_millis(), "writing execution history failed; will retry");
            self.wait_taking(backoff, &mut extra);
            ids.extend(extra.ids.drain());
        };
        for ack in extra.acks {
            let _ = ack.send(result.as_ref().map(|_| ()).map_err(clone_error));
        }
        result
    }

    /// Sleeps for `d` (no busy loop, no blocked senders) while adding what arrives to `batch`.
    fn wait_taking(&mut self, d: Duration, batch: &mut Batch) {
        let until = Instant::now() + d;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            match self.rx.recv_timeout(left) {
                Ok(cmd) => self.take(cmd, batch),
                Err(RecvTimeoutError::Timeout) => return,
                Err(RecvTimeoutError::Disconnected) => {
                    // No handle is left to send anything: the backoff becomes a plain sleep on
                    // this dedicated thread.
                    self.stopping = true;
                    std::thread::sleep(left);
                    return;
                }
            }
        }
    }

    /// One transaction with the current pending version of each id; returns the (id, seq) pairs
    /// written so the caller can clear exactly those.
    fn write(
        &mut self,
        ids: &HashSet<String>,
        durable: bool,
    ) -> rusqlite::Result<Vec<(String, u64)>> {
        let records: Vec<(u64, Arc<ExecutionRecord>, Option<bytes::Bytes>)> = ids
            .iter()
            .filter_map(|id| {
                self.pending
                    .get(id)
                    .map(|p| (p.seq, Arc::clone(&p.rec), p.json.clone()))
            })
            .collect();
        if records.is_empty() {
            return Ok(Vec::new());
        }
        if durable {
            self.conn.pragma_update(None, "synchronous", "FULL")?;
        }
        let result = write_records(&mut self.conn, &records, &self.signals.subscriptions);
        if durable && let Err(e) = self.conn.pragma_update(None, "synchronous", "NORMAL") {
            tracing::warn!(error = %e, "cannot restore synchronous=NORMAL on the history database");
        }
        if result? > 0 {
            self.signals.deliveries_owed.notify_one();
        }
        Ok(records
            .into_iter()
            .map(|(seq, rec, _)| (rec.id.clone(), seq))
            .collect())
    }

    fn expire_if_due(&mut self) {
        let Some(retention) = self.cfg.retention else {
            return;
        };
        if self.last_expiry.is_some_and(|t| t.elapsed() < EXPIRY_EVERY) {
            return;
        }
        self.last_expiry = Some(Instant::now());
        let cutoff =
            now_ms().saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX));
        match schema::expire(&self.conn, cutoff) {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "expired old execution records"),
            Err(e) => tracing::warn!(error = %e, "expiring old execution records failed"),
        }
        match crate::callbacks::outbox::expire_finished(&self.conn, cutoff) {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "expired old callback deliveries"),
            Err(e) => tracing::warn!(error = %e, "expiring old callback deliveries failed"),
        }
    }
}

/// Writes `records` in one transaction; returns how many callback deliveries they added.
fn write_records(
    conn: &mut Connection,
    records: &[(u64, Arc<ExecutionRecord>, Option<bytes::Bytes>)],
    subscriptions: &AtomicBool,
) -> rusqlite::Result<usize> {
    let now = now_ms();
    let tx = conn.transaction()?;
    let mut deliveries = 0;
    for (_, rec, json) in records {
        // serde_json writes UTF-8; the check costs far less than serialising again.
        if let Some(json) = json.as_deref().and_then(|b| std::str::from_utf8(b).ok()) {
            deliveries += schema::upsert(&tx, rec, json, now, subscriptions)?.deliveries;
            continue;
        }
        // Serialising an ExecutionRecord cannot fail (string keys, no foreign types); should it
        // ever, skipping that record beats failing the batch forever.
        let json = match serde_json::to_string(rec) {
            Ok(json) => json,
            Err(e) => {
                tracing::error!(execution_id = %rec.id, error = %e, "cannot serialise record");
                continue;
            }
        };
        deliveries += schema::upsert(&tx, rec, &json, now, subscriptions)?.deliveries;
    }
    tx.commit()?;
    Ok(deliveries)
}

/// Milliseconds since the Unix epoch, the stamp retention compares against.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn clone_error(e: &HistoryError) -> HistoryError {
    match e {
        HistoryError::Write(source) => HistoryError::Write(Arc::clone(source)),
        _ => HistoryError::WriterStopped,
    }
}
