//! The outbox in `history.db`: standing subscriptions, one delivery row per (terminal
//! execution, receiver), and the log of every attempt.
//!
//! [`enqueue`] runs inside the transaction that writes a terminal record (`history::schema::
//! upsert` calls it), which is what makes a callback impossible to lose: the record and its
//! deliveries commit together or not at all. Everything else here runs on the worker's or the
//! API's own connection.

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;

use crate::execution::ExecutionRecord;

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
pub fn enqueue(
    tx: &Transaction<'_>,
    rec: &ExecutionRecord,
    now_ms: i64,
) -> rusqlite::Result<usize> {
    let mut added = 0;
    if let Some(url) = &rec.lineage.callback {
        added += tx.prepare_cached(
            "INSERT INTO deliveries (execution_id, url, subscription, state, next_ms, created_ms)
             VALUES (?1, ?2, NULL, 'pending', ?3, ?3)",
        )?
        .execute(params![rec.id, url, now_ms])?;
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

/// Removes a subscription; `false` if there was none. Its pending deliveries die when the
/// worker finds no secret to sign them with.
pub fn delete_subscription(conn: &Connection, id: &str) -> rusqlite::Result<bool> {
    Ok(conn.execute("DELETE FROM subscriptions WHERE id = ?1", [id])? > 0)
}

/// One attempt, as `GET /v1/deliveries` shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Attempt {
    /// 1 for the first attempt.
    pub n: u32,
    /// When it started (RFC 3339).
    pub at: String,
    /// The receiver's HTTP status, when it answered.
    pub status: Option<u16>,
    /// What went wrong, when it did (connect refused, timeout, a non-2xx answer).
    pub error: Option<String>,
    /// How long it took, in milliseconds.
    pub ms: f64,
}

/// One delivery with its attempts.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    /// Its id (for redeliver).
    pub id: i64,
    /// The execution whose record it carries.
    pub execution_id: String,
    /// Where it goes.
    pub url: String,
    /// The subscription it comes from; absent for a `Runwarm-Callback` header.
    pub subscription: Option<String>,
    /// `pending`, `delivered` or `dead`.
    pub state: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due (pending only, RFC 3339).
    pub next_at: Option<String>,
    /// When the record became terminal (RFC 3339).
    pub created_at: String,
    /// When a receiver answered 2xx (RFC 3339).
    pub delivered_at: Option<String>,
    /// The last answer's HTTP status.
    pub last_status: Option<u16>,
    /// The last failure.
    pub last_error: Option<String>,
    /// Every attempt, oldest first.
    pub log: Vec<Attempt>,
}

/// Filters of [`list`].
#[derive(Debug, Clone, Default)]
pub struct DeliveryQuery {
    /// Only this state.
    pub state: Option<String>,
    /// Only this execution's.
    pub execution_id: Option<String>,
    /// Only deliveries of executions this uid started.
    pub caller_uid: Option<u32>,
    /// At most this many, newest first.
    pub limit: u32,
}

const DELIVERY_COLUMNS: &str = "d.id, d.execution_id, d.url, d.subscription, d.state, d.attempts,
    d.next_ms, d.created_ms, d.delivered_ms, d.last_status, d.last_error";

fn delivery_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Delivery> {
    let state: String = row.get(4)?;
    let next_ms: i64 = row.get(6)?;
    Ok(Delivery {
        id: row.get(0)?,
        execution_id: row.get(1)?,
        url: row.get(2)?,
        subscription: row.get(3)?,
        next_at: (state == "pending").then(|| rfc3339(next_ms)),
        state,
        attempts: row.get(5)?,
        created_at: rfc3339(row.get(7)?),
        delivered_at: row.get::<_, Option<i64>>(8)?.map(rfc3339),
        last_status: row.get(9)?,
        last_error: row.get(10)?,
        log: Vec::new(),
    })
}

/// Deliveries newest first, each with its attempt log.
pub fn list(conn: &Connection, q: &DeliveryQuery) -> rusqlite::Result<Vec<Delivery>> {
    let mut sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries d LEFT JOIN executions e ON e.id = d.execution_id
         WHERE 1 = 1"
    );
    let mut args: Vec<&dyn rusqlite::ToSql> = Vec::new();
    if let Some(state) = &q.state {
        sql.push_str(" AND d.state = ?");
        args.push(state);
    }
    if let Some(id) = &q.execution_id {
        sql.push_str(" AND d.execution_id = ?");
        args.push(id);
    }
    if let Some(uid) = &q.caller_uid {
        sql.push_str(" AND json_extract(e.record, '$.caller.uid') = ?");
        args.push(uid);
    }
    sql.push_str(" ORDER BY d.id DESC LIMIT ?");
    args.push(&q.limit);
    let mut out: Vec<Delivery> = conn
        .prepare_cached(&sql)?
        .query_map(args.as_slice(), delivery_row)?
        .collect::<Result<_, _>>()?;
    let mut attempts = conn.prepare_cached(
        "SELECT n, at_ms, status, error, ms FROM delivery_attempts WHERE delivery = ?1 ORDER BY n",
    )?;
    for d in &mut out {
        d.log = attempts
            .query_map([d.id], |row| {
                Ok(Attempt {
                    n: row.get(0)?,
                    at: rfc3339(row.get(1)?),
                    status: row.get(2)?,
                    error: row.get(3)?,
                    ms: row.get(4)?,
                })
            })?
            .collect::<Result<_, _>>()?;
    }
    Ok(out)
}

/// One delivery by id, with the uid of its execution's caller (for access checks).
pub fn get(conn: &Connection, id: i64) -> rusqlite::Result<Option<(Delivery, Option<u32>)>> {
    conn.query_row(
        &format!(
            "SELECT {DELIVERY_COLUMNS}, json_extract(e.record, '$.caller.uid')
             FROM deliveries d LEFT JOIN executions e ON e.id = d.execution_id WHERE d.id = ?1"
        ),
        [id],
        |row| Ok((delivery_row(row)?, row.get(11)?)),
    )
    .optional()
}

/// Makes a delivery pending again, due now, with a fresh attempt budget. Delivered ones too:
/// a receiver that lost what it got may ask for it again.
pub fn redeliver(conn: &Connection, id: i64, now_ms: i64) -> rusqlite::Result<bool> {
    Ok(conn.execute(
        "UPDATE deliveries SET state = 'pending', next_ms = ?2, base = attempts WHERE id = ?1",
        params![id, now_ms],
    )? > 0)
}

/// A delivery due now, with what sending it needs.
#[derive(Debug, Clone)]
pub struct Due {
    /// Delivery id.
    pub id: i64,
    /// The execution.
    pub execution_id: String,
    /// Where it goes.
    pub url: String,
    /// Attempts since the last redeliver.
    pub attempts_in_round: u32,
    /// Attempts ever (the next attempt's number is this plus one).
    pub attempts: u32,
    /// The terminal record, as stored; `None` when retention removed it.
    pub record: Option<String>,
    /// The subscription's secret; `None` for a header callback.
    pub subscription_secret: Option<String>,
    /// Whether it came from a subscription (which may have been deleted since).
    pub from_subscription: bool,
    /// The uid that started the execution (header callbacks are signed with its secret).
    pub caller_uid: Option<u32>,
}

/// [`due`]'s statement. The limit is a scalar subquery, not a bare `LIMIT ?3`: over a window
/// subquery SQLite's planner reads a bare limit parameter's value, which marks the prepared
/// statement expired whenever the parameter is bound, so the cached statement was compiled
/// again on every poll (ten times a second, idle or not).
pub(crate) const DUE: &str = "WITH ranked AS (
         SELECT id, ROW_NUMBER() OVER (PARTITION BY url ORDER BY next_ms, id) AS rank
         FROM deliveries WHERE state = 'pending' AND next_ms <= ?1
     )
     SELECT d.id, d.execution_id, d.url, d.attempts - d.base, d.attempts, e.record, s.secret,
            d.subscription IS NOT NULL, json_extract(e.record, '$.caller.uid')
     FROM ranked r
     JOIN deliveries d ON d.id = r.id
     LEFT JOIN executions e ON e.id = d.execution_id
     LEFT JOIN subscriptions s ON s.id = d.subscription
     WHERE r.rank <= ?2
     ORDER BY d.next_ms LIMIT (SELECT ?3)";

/// When the next pending delivery not yet due at `now_ms` falls due, if any: the worker sleeps
/// until then unless something new is owed first.
pub fn next_due_after(conn: &Connection, now_ms: i64) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached(
        "SELECT MIN(next_ms) FROM deliveries WHERE state = 'pending' AND next_ms > ?1",
    )?
    .query_row([now_ms], |row| row.get(0))
}

/// Pending deliveries due at `now_ms`, most overdue first: at most `per_url` per address and
/// `limit` in all. The per-address bound is what keeps a dead receiver's backlog (all of it due,
/// none of it startable while its attempts hang) from filling every batch and starving the
/// deliveries to other receivers behind it.
pub fn due(conn: &Connection, now_ms: i64, per_url: u32, limit: u32) -> rusqlite::Result<Vec<Due>> {
    conn.prepare_cached(DUE)?
        .query_map(params![now_ms, per_url, limit], |row| {
            Ok(Due {
                id: row.get(0)?,
                execution_id: row.get(1)?,
                url: row.get(2)?,
                attempts_in_round: row.get(3)?,
                attempts: row.get(4)?,
                record: row.get(5)?,
                subscription_secret: row.get(6)?,
                from_subscription: row.get(7)?,
                caller_uid: row.get(8)?,
            })
        })?
        .collect()
}

/// What became of one attempt.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    /// The attempt's number.
    pub n: u32,
    /// When it started (ms since the epoch).
    pub at_ms: i64,
    /// The answer's status, when there was one.
    pub status: Option<u16>,
    /// The failure, when it failed.
    pub error: Option<String>,
    /// How long it took.
    pub ms: f64,
    /// The delivery's next state: `delivered`, `pending` (with `next_ms`) or `dead`.
    pub next_state: &'static str,
    /// When to try again (pending only).
    pub next_ms: i64,
}

/// Logs an attempt and moves the delivery on, in one transaction.
pub fn record_attempt(conn: &mut Connection, id: i64, r: &AttemptResult) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    tx.execute(
        "INSERT OR REPLACE INTO delivery_attempts (delivery, n, at_ms, status, error, ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![id, r.n, r.at_ms, r.status, r.error, r.ms],
    )?;
    let done_ms = r.at_ms + r.ms.round() as i64;
    tx.execute(
        "UPDATE deliveries SET attempts = ?2, state = ?3, next_ms = ?4, last_status = ?5,
             last_error = ?6, delivered_ms = CASE WHEN ?3 = 'delivered' THEN ?7 ELSE delivered_ms END
         WHERE id = ?1",
        params![id, r.n, r.next_state, r.next_ms, r.status, r.error, done_ms],
    )?;
    tx.commit()
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
