//! Reads of the history: one record by id, filtered pages newest first, lineage, and the
//! count; [`History`]'s read methods, which look at the pending queue before the database.
//!
//! Paging uses the execution id as the cursor: UUIDv7 ids start with their timestamp, so their
//! text order is their time order and `id < before` is the next (older) page.

use rusqlite::{Connection, OptionalExtension, ToSql};

use std::sync::Arc;

use super::schema::{self, Link};
use super::{History, HistoryError, ListQuery, lock};
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

/// Reads: the pending queue first, then the database on the reader connection, off the
/// runtime.
impl History {
    /// The record with this id, from the queue when it is newer than the database.
    pub async fn get(&self, id: &str) -> Result<Option<ExecutionRecord>, HistoryError> {
        // The queue is read before the database: read the other way round, a commit landing in
        // between could hide a record the caller has just written.
        let queued = self.inner.pending.get(id).map(|p| (*p.rec).clone());
        if let Some(rec) = &queued
            && rec.state.is_terminal()
        {
            return Ok(queued);
        }
        let id = id.to_owned();
        let stored = self.read(move |conn| get(conn, &id)).await?;
        Ok(match (stored, queued) {
            // A late non-terminal update in the queue never hides a terminal stored record.
            (Some(stored), _) if stored.state.is_terminal() => Some(stored),
            (stored, queued) => queued.or(stored),
        })
    }

    /// Executions newest first, filtered by `q`; writes what is queued first so pages are
    /// consistent.
    pub async fn list(&self, q: &ListQuery) -> Result<Vec<ExecutionRecord>, HistoryError> {
        self.flush().await?;
        let q = q.clone();
        self.read(move |conn| list(conn, &q)).await
    }

    /// Ids of the executions that replay `id`, oldest first, queued ones included (the queue
    /// is scanned rather than flushed: it is short, and a read should not wait for a commit).
    pub async fn replays_of(&self, id: &str) -> Result<Vec<String>, HistoryError> {
        self.linked_to(Link::Replay, id).await
    }

    /// Ids of the later attempts of the chain `first` started, oldest first.
    pub async fn retries_of(&self, first: &str) -> Result<Vec<String>, HistoryError> {
        self.linked_to(Link::Retry, first).await
    }

    async fn linked_to(&self, link: Link, id: &str) -> Result<Vec<String>, HistoryError> {
        let queued: Vec<String> = self
            .inner
            .pending
            .iter()
            .filter(|p| {
                let l = &p.rec.lineage;
                match link {
                    Link::Replay => l.replay_of.as_deref() == Some(id),
                    Link::Retry => l.retry_of.as_deref() == Some(id),
                }
            })
            .map(|p| p.rec.id.clone())
            .collect();
        let owned = id.to_owned();
        let mut ids = self
            .read(move |conn| schema::linked_to(conn, link, &owned).map_err(HistoryError::Read))
            .await?;
        ids.extend(queued);
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    /// How many executions are stored (queued ones not counted until written).
    pub async fn count(&self) -> Result<u64, HistoryError> {
        self.read(count).await
    }

    async fn read<T, F>(&self, f: F) -> Result<T, HistoryError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, HistoryError> + Send + 'static,
    {
        let reader = Arc::clone(&self.inner.reader);
        tokio::task::spawn_blocking(move || f(&lock(&reader)))
            .await
            .map_err(HistoryError::ReadTask)?
    }
}
