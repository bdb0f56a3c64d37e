//! Execution history: every execution record the daemon produces, kept in SQLite
//! (`<state_dir>/history.db`) off the hot path.
//!
//! [`History::record`] only puts the record into an in-memory pending map and wakes the writer
//! thread (`writer`), which commits batches in one transaction each. Reads answer from the pending
//! map first, so a caller always sees its own writes. Terminal records are immutable in both the
//! pending map and the database (`schema::UPSERT`). After a crash, `recovery` turns what a previous
//! daemon left in flight into `failed/E005`.

mod error;
mod query;
mod queue;
mod recovery;
mod schema;
mod space;
mod writer;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::execution::{ExecutionRecord, State};
use queue::{Command, Pending, Signals};
use writer::Writer;

pub use error::HistoryError;
pub use query::{DEFAULT_LIMIT, MAX_LIMIT};
pub use space::Space;

/// How the writer batches and how long terminal records are kept.
#[derive(Debug, Clone)]
pub struct HistoryConfig {
    /// Most records written in one transaction.
    pub batch_max: usize,
    /// Longest a record waits for others to share its transaction.
    pub flush_interval: Duration,
    /// Terminal records older than this are deleted (checked at most once a minute); `None`
    /// keeps everything.
    pub retention: Option<Duration>,
    /// Free bytes under the state directory below which durable work is refused.
    pub min_free_bytes: u64,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            batch_max: 256,
            flush_interval: Duration::from_millis(50),
            retention: None,
            min_free_bytes: 16 << 20,
        }
    }
}

/// Filters of [`History::list`] (`GET /v1/executions`).
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Only this script's executions.
    pub script: Option<String>,
    /// Only executions in this state.
    pub state: Option<State>,
    /// At most this many ([`DEFAULT_LIMIT`] when absent, capped at [`MAX_LIMIT`]).
    pub limit: Option<u32>,
    /// Only executions older than this id (UUIDv7 ids sort by time): the paging cursor.
    pub before: Option<String>,
    /// Only executions started by this uid (a caller who may not see everyone's).
    pub caller_uid: Option<u32>,
}

/// The history handle; cheap to clone.
#[derive(Clone)]
pub struct History {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    tx: Sender<Command>,
    pending: Arc<DashMap<String, Pending>>,
    seq: AtomicU64,
    /// Reads get their own connection so they never wait behind the writer's transaction (WAL
    /// lets readers and one writer run at once).
    reader: Arc<Mutex<Connection>>,
    closed: AtomicBool,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// The writer thread, woken for commands someone waits on (see `Writer::collect`).
    writer_thread: std::thread::Thread,
    /// Failed writes and records that could not be queued, for the metrics.
    write_errors: Arc<AtomicU64>,
    space: Arc<Space>,
    signals: Arc<Signals>,
    /// Held while subscriptions change, so that `Signals::subscriptions` is never left `false`
    /// by one change while another adds one.
    subscription_changes: Mutex<()>,
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("History")
            .field("path", &self.inner.path)
            .field("pending", &self.pending())
            .finish_non_exhaustive()
    }
}

impl History {
    /// Opens or creates `<state_dir>/history.db`, migrates it and starts the writer thread.
    pub fn open(state_dir: &Path, cfg: HistoryConfig) -> Result<History, HistoryError> {
        fs_err::create_dir_all(state_dir).map_err(|source| HistoryError::CreateDir {
            path: state_dir.to_path_buf(),
            source,
        })?;
        let path = state_dir.join(schema::DB_FILE);
        let write_conn = schema::open(&path)?;
        let reader = schema::open(&path)?;
        let subscriptions =
            crate::callbacks::outbox::any_subscription(&reader).map_err(HistoryError::Read)?;
        let pending = Arc::new(DashMap::new());
        let (tx, rx) = std::sync::mpsc::channel();
        let write_errors = Arc::new(AtomicU64::new(0));
        let space = Arc::new(Space::new(state_dir, cfg.min_free_bytes));
        let signals = Arc::new(Signals {
            subscriptions: AtomicBool::new(subscriptions),
            ..Signals::default()
        });
        let writer = Writer::new(
            write_conn,
            rx,
            Arc::clone(&pending),
            cfg,
            Arc::clone(&write_errors),
            Arc::clone(&space),
            Arc::clone(&signals),
        );
        let handle = std::thread::Builder::new()
            .name("history-writer".into())
            .spawn(move || writer.run())
            .map_err(HistoryError::SpawnWriter)?;
        Ok(History {
            inner: Arc::new(Inner {
                path,
                tx,
                pending,
                seq: AtomicU64::new(0),
                reader: Arc::new(Mutex::new(reader)),
                closed: AtomicBool::new(false),
                writer_thread: handle.thread().clone(),
                writer: Mutex::new(Some(handle)),
                write_errors,
                space,
                signals,
                subscription_changes: Mutex::new(()),
            }),
        })
    }

    /// Notified after each commit that added callback deliveries to the outbox (see
    /// `callbacks::worker`).
    pub fn deliveries_owed(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.inner.signals.deliveries_owed)
    }

    /// Runs `change`, which adds or removes callback subscriptions on `conn`, and keeps the
    /// writer's knowledge of whether any exist true throughout: the flag goes up before the
    /// change can commit and down only after a count finds none, one change at a time. The
    /// writer reads it while it holds the database's write lock, so a subscription committed
    /// before a record's transaction is always seen (see `schema::upsert`).
    pub fn change_subscriptions<T>(
        &self,
        conn: &Connection,
        change: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        let _one_at_a_time = self
            .inner
            .subscription_changes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let flag = &self.inner.signals.subscriptions;
        flag.store(true, Ordering::SeqCst);
        let out = change(conn);
        // When the count fails the flag stays up: a needless query per record, never a lost
        // delivery.
        if let Ok(any) = crate::callbacks::outbox::any_subscription(conn) {
            flag.store(any, Ordering::SeqCst);
        }
        out
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// A new connection to the history database with the daemon's pragmas, for a component
    /// that keeps its own tables there (the callback outbox).
    pub fn side_connection(&self) -> Result<Connection, HistoryError> {
        schema::open(&self.inner.path)
    }

    /// Queues the record for the writer; never waits on SQLite. A later record for the same id
    /// replaces an earlier one, unless the earlier one is terminal.
    pub fn record(&self, rec: impl Into<Arc<ExecutionRecord>>) {
        self.record_as(rec.into(), None);
    }

    /// Like [`History::record`], with the record's JSON (`serde_json` of the same record) when
    /// the caller has serialised it anyway: the writer stores that instead of serialising again.
    pub fn record_as(&self, rec: Arc<ExecutionRecord>, json: Option<bytes::Bytes>) {
        let id = rec.id.clone();
        if let Err(e) = self.enqueue(rec, json, None) {
            self.inner.write_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(execution_id = %id, error = %e, "execution record not kept");
        }
    }

    /// Writes the record and returns once it is committed with a full fsync, for work accepted
    /// asynchronously that must survive a crash.
    pub async fn record_durable(
        &self,
        rec: impl Into<Arc<ExecutionRecord>>,
    ) -> Result<(), HistoryError> {
        let rec = rec.into();
        let (ack, done) = oneshot::channel();
        if let Err(e) = self.enqueue(rec, None, Some(ack)) {
            self.inner.write_errors.fetch_add(1, Ordering::Relaxed);
            return Err(e);
        }
        done.await.map_err(|_| HistoryError::WriterStopped)?
    }

    /// Returns once everything queued before the call is committed.
    pub async fn flush(&self) -> Result<(), HistoryError> {
        if self.inner.closed.load(Ordering::Acquire) {
            // The close already wrote everything it could; only what it failed to write is left.
            return if self.inner.pending.is_empty() {
                Ok(())
            } else {
                Err(HistoryError::Closed)
            };
        }
        let (ack, done) = oneshot::channel();
        self.send(Command::Flush(ack))?;
        done.await.map_err(|_| HistoryError::WriterStopped)?
    }

    /// Startup recovery: every record a previous daemon left `queued`, `provisioning` or
    /// `running` becomes `failed` with `E005 SupervisorRestarted`. Returns how many. Call it
    /// before serving.
    pub fn recover_interrupted(&self) -> Result<usize, HistoryError> {
        recovery::fail_interrupted(&self.inner.path, recovery::INTERRUPTED)
    }

    /// Like [`History::recover_interrupted`] but leaves `queued` records alone, for a daemon
    /// that re-runs them (see [`History::queued`]).
    pub fn recover_started(&self) -> Result<usize, HistoryError> {
        recovery::fail_interrupted(&self.inner.path, recovery::STARTED)
    }

    /// Records stored as `queued`, oldest first: accepted work a previous daemon never started.
    pub fn queued(&self) -> Result<Vec<ExecutionRecord>, HistoryError> {
        recovery::queued(&self.inner.path)
    }

    /// Writes everything queued, then stops the writer. Later calls return at once.
    pub async fn close(&self) -> Result<(), HistoryError> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let (ack, done) = oneshot::channel();
        let result = match self.send(Command::Close(ack)) {
            Ok(()) => done.await.unwrap_or(Err(HistoryError::WriterStopped)),
            Err(e) => Err(e),
        };
        let handle = lock(&self.inner.writer).take();
        if let Some(handle) = handle {
            // Joining makes sure the writer's connection is closed (and the WAL checkpointed)
            // before the caller goes on, e.g. to exit.
            let joined = tokio::task::spawn_blocking(move || handle.join()).await;
            if !matches!(joined, Ok(Ok(()))) {
                tracing::error!("history writer thread panicked");
            }
        }
        result
    }

    /// Records queued but not yet written (the writer's lag, for the metrics).
    pub fn pending(&self) -> usize {
        self.inner.pending.len()
    }

    /// Failed write transactions (each retry counts) and records that could not be queued,
    /// since the daemon started (for the metrics).
    pub fn write_errors(&self) -> u64 {
        self.inner.write_errors.load(Ordering::Relaxed)
    }

    /// Free space under the state directory, as admission sees it.
    pub fn space(&self) -> &Space {
        &self.inner.space
    }

    /// Like [`History::record_durable`], but refuses at once when the disk is full, and on a
    /// refusal withdraws the record so that work the caller was told was refused never runs.
    pub async fn record_accepted(&self, rec: ExecutionRecord) -> Result<(), HistoryError> {
        let space = &self.inner.space;
        if space.is_full() {
            return Err(HistoryError::DiskFull {
                dir: space.dir().to_path_buf(),
            });
        }
        let id = rec.id.clone();
        let result = self.record_durable(rec).await;
        if matches!(result, Err(HistoryError::DiskFull { .. })) {
            // The writer retries only after a backoff of at least 100 ms and reads the pending
            // map again then; removing the entry now takes the record out of that retry.
            self.inner.pending.remove(&id);
        }
        result
    }

    fn enqueue(
        &self,
        rec: Arc<ExecutionRecord>,
        json: Option<bytes::Bytes>,
        ack: Option<queue::Ack>,
    ) -> Result<(), HistoryError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(HistoryError::Closed);
        }
        let id = rec.id.clone();
        // A record that owes a callback is committed promptly rather than with its batch: the
        // delivery worker can only send what is committed. With a subscription, any terminal
        // record may match it (which ones do is known inside the writer's transaction).
        let prompt = rec.state.is_terminal()
            && rec.lineage.retried_by.is_none()
            && (rec.lineage.callback.is_some()
                || self.inner.signals.subscriptions.load(Ordering::Relaxed));
        // The sequence number is taken under the entry lock so that, per id, it grows in the
        // order the map was updated; the writer clears an entry only if it still holds the
        // sequence it wrote.
        match self.inner.pending.entry(id.clone()) {
            Entry::Occupied(mut e) => {
                if e.get().rec.state.is_terminal() {
                    tracing::debug!(execution_id = %id, state = rec.state.as_str(),
                        "ignoring an update of a terminal execution");
                } else {
                    let seq = self.inner.seq.fetch_add(1, Ordering::Relaxed);
                    e.insert(Pending { seq, rec, json });
                }
            }
            Entry::Vacant(e) => {
                let seq = self.inner.seq.fetch_add(1, Ordering::Relaxed);
                e.insert(Pending { seq, rec, json });
            }
        }
        self.send(Command::Write { id, ack, prompt })
    }

    fn send(&self, cmd: Command) -> Result<(), HistoryError> {
        let wake = cmd.is_waited_on()
            || (cmd.is_prompt()
                && !self
                    .inner
                    .signals
                    .prompt_pending
                    .swap(true, Ordering::AcqRel));
        self.inner
            .tx
            .send(cmd)
            .map_err(|_| HistoryError::WriterStopped)?;
        if wake {
            self.inner.writer_thread.unpark();
        }
        Ok(())
    }
}

/// A poisoned lock only means another thread panicked while holding it; the connection or
/// handle inside is still usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
