//! The outbox in `history.db`: standing subscriptions, one delivery row per (terminal
//! execution, receiver), and the log of every attempt.
//!
//! [`enqueue`] runs inside the transaction that writes a terminal record (`history::schema::
//! upsert` calls it), which is what makes a callback impossible to lose: the record and its
//! deliveries commit together or not at all. Everything else here runs on the worker's or the
//! API's own connection.

use rusqlite::{Connection, Transaction, params};
use serde::Serialize;

use crate::execution::ExecutionRecord;

mod due;
mod listing;

#[cfg(test)]
pub(crate) use due::DUE;
pub use due::{AttemptResult, Due, due, next_due_after, record_attempt};
pub use listing::{Attempt, Delivery, DeliveryQuery, get, list, redeliver};

/// History migration 3 (appended to `history::schema::MIGRATIONS`).
pub const SCHEMA: &str = "
    CREATE TABLE subscriptions (
        id          TEXT PRIMARY KEY NOT NULL,
        url         TEXT NOT NULL,
        script      TEXT,
        states      TEXT,
        secret      TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        created_uid INTEGER
    );
    CREATE TABLE deliveries (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        execution_id TEXT NOT NULL,
        url          TEXT NOT NULL,
        subscription TEXT,
        state        TEXT NOT NULL,
        attempts     INTEGER NOT NULL DEFAULT 0,
        base         INTEGER NOT NULL DEFAULT 0,
        next_ms      INTEGER NOT NULL,
        created_ms   INTEGER NOT NULL,
        delivered_ms INTEGER,
        last_status  INTEGER,
        last_error   TEXT
    );
    CREATE INDEX deliveries_due ON deliveries(next_ms) WHERE state = 'pending';
    CREATE INDEX deliveries_state ON deliveries(state, id);
    CREATE INDEX deliveries_execution ON deliveries(execution_id);
    CREATE TABLE delivery_attempts (
        delivery INTEGER NOT NULL,
        n        INTEGER NOT NULL,
        at_ms    INTEGER NOT NULL,
        status   INTEGER,
        error    TEXT,
        ms       REAL NOT NULL,
        PRIMARY KEY (delivery, n)
    );";

/// Adds the deliveries a record that just became terminal owes: its own `Runwarm-Callback`,
/// and every subscription matching its script and state. Called once per execution: only the
/// upsert that made the row terminal calls it (the terminal guard refuses a second).
/// `subscriptions` is whether any may exist: when none can, the query over them is skipped.
pub fn enqueue(
    tx: &Transaction<'_>,
    rec: &ExecutionRecord,
    now_ms: i64,
    subscriptions: bool,
) -> rusqlite::Result<usize> {
    let mut added = 0;
    if let Some(url) = &rec.lineage.callback {
        added += tx.prepare_cached(
            "INSERT INTO deliveries (execution_id, url, subscription, state, next_ms, created_ms)
             VALUES (?1, ?2, NULL, 'pending', ?3, ?3)",
        )?
        .execute(params![rec.id, url, now_ms])?;
    }
    if !subscriptions {
        return Ok(added);
    }
    added += tx
        .prepare_cached(
            "INSERT INTO deliveries (execution_id, url, subscription, state, next_ms, created_ms)
         SELECT ?1, url, id, 'pending', ?3, ?3 FROM subscriptions
         WHERE (script IS NULL OR script = ?2)
           AND (states IS NULL OR instr(',' || states || ',', ',' || ?4 || ',') > 0)",
        )?
        .execute(params![rec.id, rec.script, now_ms, rec.state.as_str()])?;
    Ok(added)
}

/// A standing subscription as the API shows it (never its secret, except once at creation).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Subscription {
    /// Its id.
    pub id: String,
    /// Where records go.
    pub url: String,
    /// Only this script's executions; all when absent.
    pub script: Option<String>,
    /// Only these terminal states; all when absent.
    pub states: Option<Vec<String>>,
    /// When it was made (RFC 3339).
    pub created_at: String,
    /// Who made it.
    pub created_uid: Option<u32>,
    /// The signing secret: only in the answer that creates it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// Stores a subscription.
pub fn insert_subscription(
    conn: &Connection,
    s: &Subscription,
    secret: &str,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO subscriptions (id, url, script, states, secret, created_at, created_uid)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            s.id,
            s.url,
            s.script,
            s.states.as_ref().map(|v| v.join(",")),
            secret,
            s.created_at,
            s.created_uid
        ],
    )?;
    Ok(())
}

/// Every subscription, oldest first.
pub fn subscriptions(conn: &Connection) -> rusqlite::Result<Vec<Subscription>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, url, script, states, created_at, created_uid FROM subscriptions ORDER BY id",
    )?;
    stmt.query_map([], |row| {
        let states: Option<String> = row.get(3)?;
        Ok(Subscription {
            id: row.get(0)?,
            url: row.get(1)?,
            script: row.get(2)?,
            states: states.map(|s| s.split(',').map(str::to_owned).collect()),
            created_at: row.get(4)?,
            created_uid: row.get(5)?,
            secret: None,
        })
    })?
    .collect()
}

/// Whether any subscription exists.
pub fn any_subscription(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row("SELECT EXISTS (SELECT 1 FROM subscriptions)", [], |row| {
        row.get(0)
    })
}

/// Removes a subscription; `false` if there was none. Its pending deliveries die when the
/// worker finds no secret to sign them with.
pub fn delete_subscription(conn: &Connection, id: &str) -> rusqlite::Result<bool> {
    Ok(conn.execute("DELETE FROM subscriptions WHERE id = ?1", [id])? > 0)
}

/// Deletes deliveries that are over (delivered or dead) and were created before
/// `cutoff_ms`, with their attempts; returns how many. Runs with history retention, so the
/// outbox does not outgrow the records it delivered. Pending ones stay whatever their age: they
/// are still owed.
pub fn expire_finished(conn: &Connection, cutoff_ms: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM delivery_attempts WHERE delivery IN
             (SELECT id FROM deliveries WHERE state != 'pending' AND created_ms < ?1)",
        [cutoff_ms],
    )?;
    conn.execute(
        "DELETE FROM deliveries WHERE state != 'pending' AND created_ms < ?1",
        [cutoff_ms],
    )
}

/// Milliseconds since the epoch as RFC 3339.
pub fn rfc3339(ms: i64) -> String {
    let ms = u64::try_from(ms).unwrap_or(0);
    humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
        .to_string()
}
