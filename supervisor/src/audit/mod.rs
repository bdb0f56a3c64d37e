//! The audit trail: one durable row per administrative action (register, tag move, disable,
//! enable, delete, prewarm, sample clone, reload, and the secret store's `secret.set` and
//! `secret.rm`): who did it, when, what, and the state before and after where it applies.
//!
//! # Where it lives
//!
//! Its own SQLite database, `<state_dir>/audit.db`, rather than a table in the registry's:
//! half the actions it records are not registry writes (prewarm, reload, secrets), and a caller
//! such as the secret store should not have to reach through the registry's lock to record
//! one. The price is that an action and its row are two commits, not one; see "When the row
//! cannot be written" for how that gap is closed. The trail is append-only: nothing here
//! updates or deletes a row.
//!
//! # Written synchronously
//!
//! Administrative actions are rare (a deployment, a rollback), so each row is committed with
//! `synchronous = FULL` (fsync at every commit, even in WAL mode) before the action's answer
//! goes out: durability matters more here than the milliseconds. Handlers call it off the async
//! runtime (see [`AuditLog::record_async`]).
//!
//! # When the row cannot be written
//!
//! The action is applied first, because what the row says (a registration's version and whether
//! it was new, the tag's previous version) is only known once it is applied, and a row written
//! ahead for an action that then fails would record something that never happened. If the row
//! then cannot be written, the API answers **500** (`audit-failed`) saying the action was applied
//! but not recorded, and logs it at error level. Every audited API action is idempotent (the same
//! registration names the same version, the same tag move or disable changes nothing), so the
//! caller's retry is harmless and is recorded once the store works again: nothing applied goes
//! unrecorded without a loud error. A reload has no caller to answer, so it logs the error.
//!
//! # For other modules (secrets)
//!
//! From a handler, after the action is applied (`caller` from `ConnectInfo<Peer>`):
//!
//! ```ignore
//! let event = Event::new("secret.set")
//!     .target("DB_PASSWORD") // the name, never the value
//!     .before(json!({ "existed": existed }))
//!     .after(json!({ "existed": true }));
//! crate::api::audited(&app, caller, event).await?; // a failed row is the documented 500
//! ```
//!
//! Outside a handler, [`AuditLog::record`] (blocking) or [`AuditLog::record_async`] return the
//! error for the caller to handle.

mod event;

pub use event::{Event, Via};

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use runwarm_protocol::Caller;
use rusqlite::{Connection, OptionalExtension as _, params};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// `PRAGMA user_version` of the schema this build writes.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS audit (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      TEXT NOT NULL,
    uid     INTEGER NOT NULL,
    gid     INTEGER NOT NULL,
    pid     INTEGER NOT NULL,
    via     TEXT NOT NULL,
    action  TEXT NOT NULL,
    script  TEXT,
    target  TEXT,
    before  TEXT,
    after   TEXT
);
CREATE INDEX IF NOT EXISTS audit_script ON audit (script, id);
CREATE INDEX IF NOT EXISTS audit_action ON audit (action, id);
";

/// The most rows one query returns.
pub const MAX_LIMIT: u32 = 1000;
/// Rows a query returns when it does not say.
pub const DEFAULT_LIMIT: u32 = 100;

/// One row of the trail, as `GET /v1/audit` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AuditEntry {
    /// Increasing id; page with `before=<id>`.
    pub id: i64,
    /// When the action was recorded (RFC 3339, UTC, milliseconds).
    pub at: String,
    /// The actor's uid (`SO_PEERCRED`; 0 for a signal).
    pub uid: u32,
    /// The actor's primary gid.
    pub gid: u32,
    /// The actor's pid at the time of the connection (0 for a signal).
    pub pid: i32,
    /// `socket` (an API call) or `signal` (SIGHUP).
    pub via: String,
    /// What was done.
    pub action: String,
    /// The script acted on.
    pub script: Option<String>,
    /// The tag, version, sample or secret name acted on.
    pub target: Option<String>,
    /// State before, where it applies.
    #[schema(value_type = Option<Object>)]
    pub before: Option<Value>,
    /// State after, where it applies.
    #[schema(value_type = Option<Object>)]
    pub after: Option<Value>,
}

/// A query of the trail: newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only rows about this script.
    pub script: Option<String>,
    /// Only rows of this action.
    pub action: Option<String>,
    /// At most this many rows ([`DEFAULT_LIMIT`] when unset, capped at [`MAX_LIMIT`]).
    pub limit: Option<u32>,
    /// Only rows older than this id.
    pub before: Option<i64>,
}

/// Why the trail could not be opened, written or read.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A SQLite operation failed.
    #[error("audit store: cannot {operation}: {source}")]
    Db {
        /// What was being done.
        operation: &'static str,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// The database could not be opened or brought to this build's schema.
    #[error("audit store: {0}")]
    Open(#[from] crate::sqlite::OpenError),
    /// The blocking task running the write died.
    #[error("audit store: the write task failed: {0}")]
    Task(String),
}

fn db_error(operation: &'static str) -> impl FnOnce(rusqlite::Error) -> AuditError {
    move |source| AuditError::Db { operation, source }
}

/// The trail: a handle shared by the API and the daemon (cheap to clone).
#[derive(Debug, Clone)]
pub struct AuditLog {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
}

impl AuditLog {
    /// Opens (creating) `<state_dir>/audit.db`.
    pub fn open(state_dir: &Path) -> Result<AuditLog, AuditError> {
        Self::open_file(&state_dir.join("audit.db"))
    }

    /// Opens (creating) the database at `path`.
    pub fn open_file(path: &Path) -> Result<AuditLog, AuditError> {
        let schema = crate::sqlite::Schema {
            sql: SCHEMA,
            version: SCHEMA_VERSION,
            // NORMAL (the WAL default) may lose the last commits on power loss; a trail must
            // not.
            pragmas: &[("synchronous", "FULL", "set synchronous = FULL")],
        };
        let conn = crate::sqlite::open(path, &schema, |_| Ok::<(), AuditError>(()))?;
        Ok(AuditLog {
            conn: Arc::new(Mutex::new(conn)),
            path: path.to_path_buf(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a half-written row (each write is one
        // statement), so the connection stays usable.
        match self.conn.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Records `event` done by `caller` (through `via`), committed and fsync'd before it
    /// returns, and logs it (one `info` line with fields). Blocks: from async code use
    /// [`AuditLog::record_async`].
    pub fn record(
        &self,
        caller: &Caller,
        via: Via,
        event: &Event,
    ) -> Result<AuditEntry, AuditError> {
        let at = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        let json = |v: &Option<Value>| v.as_ref().map(Value::to_string);
        let id = {
            let conn = self.lock();
            conn.execute(
                "INSERT INTO audit (at, uid, gid, pid, via, action, script, target, before, after)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    at,
                    caller.uid,
                    caller.gid,
                    caller.pid,
                    via.as_str(),
                    event.action,
                    event.script,
                    event.target,
                    json(&event.before),
                    json(&event.after),
                ],
            )
            .map_err(db_error("write an audit row"))?;
            conn.last_insert_rowid()
        };
        let entry = AuditEntry {
            id,
            at,
            uid: caller.uid,
            gid: caller.gid,
            pid: caller.pid,
            via: via.as_str().to_owned(),
            action: event.action.clone(),
            script: event.script.clone(),
            target: event.target.clone(),
            before: event.before.clone(),
            after: event.after.clone(),
        };
        tracing::info!(
            audit_id = entry.id,
            action = %entry.action,
            script = entry.script.as_deref().unwrap_or(""),
            target = entry.target.as_deref().unwrap_or(""),
            caller_uid = entry.uid,
            caller_gid = entry.gid,
            caller_pid = entry.pid,
            via = %entry.via,
            before = %json(&entry.before).unwrap_or_default(),
            after = %json(&entry.after).unwrap_or_default(),
            "administrative action"
        );
        Ok(entry)
    }

    /// [`AuditLog::record`] on a blocking thread.
    pub async fn record_async(
        &self,
        caller: Caller,
        via: Via,
        event: Event,
    ) -> Result<AuditEntry, AuditError> {
        let log = self.clone();
        tokio::task::spawn_blocking(move || log.record(&caller, via, &event))
            .await
            .map_err(|e| AuditError::Task(e.to_string()))?
    }

    /// Records a reload by SIGHUP (uid 0, `via = "signal"`).
    pub fn record_signal(&self, event: &Event) -> Result<AuditEntry, AuditError> {
        let nobody_known = Caller {
            uid: 0,
            gid: 0,
            pid: 0,
        };
        self.record(&nobody_known, Via::Signal, event)
    }

    /// Rows matching `filter`, newest first.
    pub fn list(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, AuditError> {
        let limit = filter.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT);
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, at, uid, gid, pid, via, action, script, target, before, after
                 FROM audit
                 WHERE (?1 IS NULL OR script = ?1)
                   AND (?2 IS NULL OR action = ?2)
                   AND (?3 IS NULL OR id < ?3)
                 ORDER BY id DESC
                 LIMIT ?4",
            )
            .map_err(db_error("prepare the audit query"))?;
        let rows = stmt
            .query_map(
                params![filter.script, filter.action, filter.before, limit],
                |row| {
                    let before: Option<String> = row.get(9)?;
                    let after: Option<String> = row.get(10)?;
                    Ok(AuditEntry {
                        id: row.get(0)?,
                        at: row.get(1)?,
                        uid: row.get(2)?,
                        gid: row.get(3)?,
                        pid: row.get(4)?,
                        via: row.get(5)?,
                        action: row.get(6)?,
                        script: row.get(7)?,
                        target: row.get(8)?,
                        before: before.map(|t| parse_stored(&t)),
                        after: after.map(|t| parse_stored(&t)),
                    })
                },
            )
            .map_err(db_error("read the audit trail"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(db_error("read an audit row"))
    }

    /// The newest row, if any (for tests and tools).
    pub fn last(&self) -> Result<Option<AuditEntry>, AuditError> {
        let conn = self.lock();
        let id: Option<i64> = conn
            .query_row("SELECT MAX(id) FROM audit", [], |r| r.get(0))
            .optional()
            .map_err(db_error("read the newest audit id"))?
            .flatten();
        drop(conn);
        match id {
            None => Ok(None),
            Some(id) => Ok(self
                .list(&AuditFilter {
                    before: Some(id + 1),
                    limit: Some(1),
                    ..AuditFilter::default()
                })?
                .into_iter()
                .next()),
        }
    }
}

/// A stored before/after: JSON this module wrote; text edited by hand into something else is
/// shown as the string it is rather than failing the whole query.
fn parse_stored(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

#[cfg(test)]
mod tests;
