//! Reads of the history: one record by id, filtered pages newest first, and the count.
//!
//! Paging uses the execution id as the cursor: UUIDv7 ids start with their timestamp, so their
//! text order is their time order and `id < before` is the next (older) page.

use rusqlite::{Connection, OptionalExtension, ToSql};

use super::{HistoryError, ListQuery};
use crate::execution::ExecutionRecord;

/// Page size when the query names none.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page.
pub const MAX_LIMIT: u32 = 1000;

pub fn get(conn: &Connection, id: &str) -> Result<Option<ExecutionRecord>, HistoryError> {
    let json: Option<String> = conn
        .prepare_cached("SELECT record FROM executions WHERE id = ?1")
        .and_then(|mut stmt| stmt.query_row([id], |row| row.get(0)).optional())
        .map_err(HistoryError::Read)?;
    json.map(|json| decode(id, &json)).transpose()
}

pub fn list(conn: &Connection, q: &ListQuery) -> Result<Vec<ExecutionRecord>, HistoryError> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let state = q.state.map(|s| s.as_str());
    let mut sql = String::from("SELECT id, record FROM executions WHERE 1 = 1");
    let mut args: Vec<&dyn ToSql> = Vec::new();
    if let Some(script) = &q.script {
        sql.push_str(" AND script = ?");
        args.push(script);
    }
    if let Some(state) = &state {
        sql.push_str(" AND state = ?");
        args.push(state);
    }
    if let Some(uid) = &q.caller_uid {
        // The owner lives in the record's JSON; no column of its own, so no schema change.
        sql.push_str(" AND json_extract(record, '$.caller.uid') = ?");
        args.push(uid);
    }
    if let Some(before) = &q.before {
        sql.push_str(" AND id < ?");
        args.push(before);
    }
    sql.push_str(" ORDER BY id DESC LIMIT ?");
    args.push(&limit);

    let mut stmt = conn.prepare_cached(&sql).map_err(HistoryError::Read)?;
    let rows = stmt
        .query_map(args.as_slice(), |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })
        .map_err(HistoryError::Read)?;
    let mut out = Vec::new();
    for row in rows {
        let (id, json) = row.map_err(HistoryError::Read)?;
        match decode(&id, &json) {
            Ok(rec) => out.push(rec),
            // One unreadable row must not hide the whole page.
            Err(e) => tracing::warn!(execution_id = %id, error = %e, "skipping unreadable record"),
        }
    }
    Ok(out)
}

pub fn count(conn: &Connection) -> Result<u64, HistoryError> {
    let n: i64 = conn
        .query_row("SELECT count(*) FROM executions", [], |row| row.get(0))
        .map_err(HistoryError::Read)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

pub fn decode(id: &str, json: &str) -> Result<ExecutionRecord, HistoryError> {
    serde_json::from_str(json).map_err(|source| HistoryError::Decode {
        id: id.to_owned(),
        source,
    })
}
