//! The SQLite side of the history: opening `history.db` with the pragmas the daemon relies on,
//! the schema and its migrations (tracked in `PRAGMA user_version`), and the guarded upsert that
//! keeps terminal records immutable.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use rusqlite::{Connection, Transaction, params};

use super::HistoryError;
use crate::execution::ExecutionRecord;

/// The file name inside the state directory.
pub const DB_FILE: &str = "history.db";

/// Migration `n` takes the schema from version `n` to `n + 1` ([`crate::sqlite::migrate`]).
const MIGRATIONS: &[&str] = &[
    // 1: the executions table. The full record is kept as JSON; the columns beside it exist only
    // to filter, sort and expire without parsing JSON.
    "CREATE TABLE executions (
        id          TEXT PRIMARY KEY NOT NULL,
        script      TEXT NOT NULL,
        version     TEXT NOT NULL,
        state       TEXT NOT NULL,
        terminal    INTEGER NOT NULL,
        queued_at   TEXT NOT NULL,
        finished_at TEXT,
        finished_ms INTEGER,
        error_code  TEXT,
        record      TEXT NOT NULL
    );
    CREATE INDEX executions_script_id ON executions(script, id);
    CREATE INDEX executions_state_id ON executions(state, id);
    CREATE INDEX executions_finished_ms ON executions(finished_ms)
        WHERE finished_ms IS NOT NULL;",
    // 2: lineage. `replay_of` and `retry_of` are columns so a record can list its replays and
    // its retry chain with an index lookup; rows from before have none to find (the JSON never
    // had the fields).
    "ALTER TABLE executions ADD COLUMN replay_of TEXT;
    CREATE INDEX executions_replay_of ON executions(replay_of) WHERE replay_of IS NOT NULL;
    ALTER TABLE executions ADD COLUMN retry_of TEXT;
    CREATE INDEX executions_retry_of ON executions(retry_of) WHERE retry_of IS NOT NULL;",
    // 3: the callback outbox, beside the records so that a terminal record and the deliveries
    // it owes commit in one transaction (see `callbacks::outbox`).
    crate::callbacks::outbox::SCHEMA,
];

/// The insert-or-update of one record. The `WHERE` on the update is what makes terminal records
/// immutable: once a row is terminal, neither a late non-terminal update nor a second terminal
/// one can replace it, whatever order the daemon's tasks report in.
const UPSERT: &str = "INSERT INTO executions
        (id, script, version, state, terminal, queued_at, finished_at, finished_ms, error_code,
         record, replay_of, retry_of)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
    ON CONFLICT(id) DO UPDATE SET
        script = excluded.script, version = excluded.version, state = excluded.state,
        terminal = excluded.terminal, queued_at = excluded.queued_at,
        finished_at = excluded.finished_at, finished_ms = excluded.finished_ms,
        error_code = excluded.error_code, record = excluded.record,
        replay_of = excluded.replay_of, retry_of = excluded.retry_of
    WHERE executions.terminal = 0";

/// Opens (creating if needed) the database at `path` and brings the schema up to date.
pub fn open(path: &Path) -> Result<Connection, HistoryError> {
    let open = || {
        // In WAL mode NORMAL is safe against application crashes; a power loss can lose the
        // last commits, which is why durable writes switch to FULL for their transaction.
        let mut conn = crate::sqlite::connect(
            path,
            &[("synchronous", "NORMAL", "set synchronous = NORMAL")],
        )?;
        crate::sqlite::migrate(&mut conn, MIGRATIONS)?;
        Ok(conn)
    };
    open().map_err(|source| HistoryError::Open {
        path: path.to_path_buf(),
        source,
    })
}

/// What [`upsert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upserted {
    /// Whether the row changed (not when the stored row is terminal and so kept).
    pub changed: bool,
    /// Callback deliveries the record now owes, added to the outbox in the same transaction.
    pub deliveries: usize,
}

/// Writes one record inside `tx`. `json` is the record already serialised; `now_ms` stamps
/// terminal rows for retention; `subscriptions` says whether a callback subscription may
/// exist (`Signals::subscriptions`), read only once the row is written: `tx` then holds the
/// database's write lock, so no subscription can commit between the read and the commit.
pub fn upsert(
    tx: &Transaction<'_>,
    rec: &ExecutionRecord,
    json: &str,
    now_ms: i64,
    subscriptions: &AtomicBool,
) -> rusqlite::Result<Upserted> {
    let terminal = rec.state.is_terminal();
    let mut stmt = tx.prepare_cached(UPSERT)?;
    let changed = stmt.execute(params![
        rec.id,
        rec.script,
        rec.version,
        rec.state.as_str(),
        terminal,
        rec.timings.queued_at,
        rec.timings.finished_at,
        terminal.then_some(now_ms),
        rec.error.as_ref().map(|e| e.code.as_str()),
        json,
        rec.lineage.replay_of,
        rec.lineage.retry_of,
    ])?;
    // Only the write that made the row terminal gets here with a change: the outbox rows are
    // part of that same transaction, so a crash keeps both or neither.
    let deliveries = if changed > 0 && terminal && rec.lineage.retried_by.is_none() {
        let any = subscriptions.load(Ordering::SeqCst);
        crate::callbacks::outbox::enqueue(tx, rec, now_ms, any)?
    } else {
        0
    };
    Ok(Upserted {
        changed: changed > 0,
        deliveries,
    })
}

/// How an execution links to an earlier one.
#[derive(Debug, Clone, Copy)]
pub enum Link {
    /// `replay_of`.
    Replay,
    /// `retry_of`.
    Retry,
}

/// Ids of the executions linked to `id` by `link`, oldest first (ids are UUIDv7: they sort by
/// time).
pub fn linked_to(conn: &Connection, link: Link, id: &str) -> rusqlite::Result<Vec<String>> {
    // The column comes from this fixed list, never from a caller.
    let sql = match link {
        Link::Replay => "SELECT id FROM executions WHERE replay_of = ?1 ORDER BY id",
        Link::Retry => "SELECT id FROM executions WHERE retry_of = ?1 ORDER BY id",
    };
    let mut stmt = conn.prepare_cached(sql)?;
    stmt.query_map([id], |row| row.get(0))?.collect()
}

/// Deletes terminal records stamped before `cutoff_ms`; returns how many.
pub fn expire(conn: &Connection, cutoff_ms: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM executions WHERE finished_ms IS NOT NULL AND finished_ms < ?1",
        [cutoff_ms],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_removes_old_finished_deliveries_and_keeps_owed_ones() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(&dir.path().join(DB_FILE)).unwrap();
        for (id, state, created) in [
            (1, "delivered", 100),
            (2, "dead", 100),
            (3, "pending", 100),
            (4, "delivered", 900),
        ] {
            conn.execute(
                "INSERT INTO deliveries (id, execution_id, url, state, next_ms, created_ms)
                 VALUES (?1, 'e', 'http://127.0.0.1:9/x', ?2, 0, ?3)",
                rusqlite::params![id, state, created],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO delivery_attempts (delivery, n, at_ms, ms) VALUES (?1, 1, 0, 1.0)",
                [id],
            )
            .unwrap();
        }
        let deleted = crate::callbacks::outbox::expire_finished(&conn, 500).unwrap();
        assert_eq!(deleted, 2);
        let left = |sql: &str| -> Vec<i64> {
            let mut stmt = conn.prepare(sql).unwrap();
            stmt.query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        assert_eq!(left("SELECT id FROM deliveries ORDER BY id"), [3, 4]);
        assert_eq!(
            left("SELECT delivery FROM delivery_attempts ORDER BY delivery"),
            [3, 4]
        );
    }

    #[test]
    fn the_outbox_poll_keeps_its_compiled_statement_across_polls() {
        use crate::callbacks::outbox;
        let dir = tempfile::tempdir().unwrap();
        let conn = open(&dir.path().join(DB_FILE)).unwrap();
        for (id, url, next) in [(1, "a", 10), (2, "b", 20), (3, "a", 30)] {
            conn.execute(
                "INSERT INTO deliveries (id, execution_id, url, state, next_ms, created_ms)
                 VALUES (?1, 'e', ?2, 'pending', ?3, 0)",
                rusqlite::params![id, format!("http://127.0.0.1:9/{url}"), next],
            )
            .unwrap();
        }
        let ids = |now, per_url, limit| -> Vec<i64> {
            outbox::due(&conn, now, per_url, limit)
                .unwrap()
                .iter()
                .map(|d| d.id)
                .collect()
        };
        assert_eq!(ids(5, 8, 1024), [0; 0]);
        assert_eq!(ids(25, 8, 1024), [1, 2]);
        assert_eq!(ids(35, 1, 1024), [1, 2], "one per address");
        assert_eq!(ids(35, 8, 2), [1, 2], "the limit holds");
        assert_eq!(ids(35, 8, 1024), [1, 2, 3]);
        let stmt = conn.prepare_cached(outbox::DUE).unwrap();
        assert_eq!(
            stmt.get_status(rusqlite::StatementStatus::RePrepare),
            0,
            "the poll's statement was compiled again after a bind"
        );
    }

    #[test]
    fn migrations_run_once_and_set_user_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        drop(open(&path).unwrap());
        // A second open must not re-run migration 1 (it would fail: the table exists).
        let conn = open(&path).unwrap();
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, MIGRATIONS.len() as i64);
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn a_schema_1_database_is_upgraded_and_keeps_its_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        // What a schema-1 build left: the first migration only, one record in it.
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.execute(
                "INSERT INTO executions (id, script, version, state, terminal, queued_at, record)
                 VALUES ('old', 's', 'sha256:0', 'completed', 1, 't', '{}')",
                [],
            )
            .unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
        }
        let conn = open(&path).unwrap();
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, MIGRATIONS.len() as i64);
        let kept: String = conn
            .query_row("SELECT state FROM executions WHERE id = 'old'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(kept, "completed");
        assert!(linked_to(&conn, Link::Replay, "old").unwrap().is_empty());
    }

    #[test]
    fn a_database_from_a_newer_build_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        let conn = open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        match open(&path) {
            Err(HistoryError::Open {
                source: crate::sqlite::OpenError::SchemaTooNew { found: 99, .. },
                ..
            }) => {}
            other => panic!("expected SchemaTooNew, got {other:?}"),
        }
    }
}
