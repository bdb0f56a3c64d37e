//! The delivery worker's side of the outbox: what is due, when the next retry falls due, and
//! each attempt's outcome.

use rusqlite::{Connection, params};

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
