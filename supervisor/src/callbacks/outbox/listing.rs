//! The outbox as the API shows it: deliveries with their attempt logs, and redeliver.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::rfc3339;

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
