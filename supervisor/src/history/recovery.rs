//! Startup recovery: what a previous daemon left in flight. Its executors died with it, so a
//! record still `provisioning` or `running` can never finish and becomes `failed/E005`; `queued`
//! records either fail the same way or, for a daemon that re-runs accepted work, are handed back.
//!
//! These run on their own short-lived connection, before the daemon serves, so they neither wait
//! for nor race the writer thread; the upsert's terminal guard still holds if they do.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::SystemTime;

use rusqlite::Connection;

use super::{HistoryError, query, schema, writer};
use crate::execution::{ErrorCode, ExecutionError, ExecutionRecord, State};

/// Everything not terminal.
pub const INTERRUPTED: &[State] = &[State::Queued, State::Provisioning, State::Running];
/// What had reached an executor.
pub const STARTED: &[State] = &[State::Provisioning, State::Running];

/// Marks every record in one of `states` as `failed/E005 SupervisorRestarted`; returns how many.
pub fn fail_interrupted(path: &Path, states: &[State]) -> Result<usize, HistoryError> {
    let mut conn = schema::open(path)?;
    let records = select(&conn, states, false)?;
    let finished_at = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
    let now_ms = writer::now_ms();
    // Once at start, before the API serves: whatever subscriptions there are get their query.
    let may_have_subscriptions = AtomicBool::new(true);
    let write = |conn: &mut Connection| -> rusqlite::Result<usize> {
        let tx = conn.transaction()?;
        let mut changed = 0;
        for mut rec in records {
            let error = ExecutionError::new(
                ErrorCode::E005,
                "SupervisorRestarted",
                "supervisor restarted",
            );
            if !rec.finish(State::Failed, Some(error)) {
                continue;
            }
            rec.timings.finished_at = Some(finished_at.clone());
            let Ok(json) = serde_json::to_string(&rec) else {
                continue;
            };
            if schema::upsert(&tx, &rec, &json, now_ms, &may_have_subscriptions)?.changed {
                changed += 1;
            }
        }
        tx.commit()?;
        Ok(changed)
    };
    let changed = write(&mut conn).map_err(|e| HistoryError::Write(e.into()))?;
    if changed > 0 {
        tracing::warn!(
            count = changed,
            "executions interrupted by a supervisor restart marked failed"
        );
    }
    Ok(changed)
}

/// Records stored as `queued`, oldest first.
pub fn queued(path: &Path) -> Result<Vec<ExecutionRecord>, HistoryError> {
    let conn = schema::open(path)?;
    select(&conn, &[State::Queued], true)
}

/// Records in one of `states`, ordered by id; unreadable rows are logged and skipped.
fn select(
    conn: &Connection,
    states: &[State],
    oldest_first: bool,
) -> Result<Vec<ExecutionRecord>, HistoryError> {
    let order = if oldest_first { "ASC" } else { "DESC" };
    let marks = vec!["?"; states.len()].join(", ");
    let sql =
        format!("SELECT id, record FROM executions WHERE state IN ({marks}) ORDER BY id {order}");
    let names: Vec<&str> = states.iter().map(|s| s.as_str()).collect();
    let mut stmt = conn.prepare(&sql).map_err(HistoryError::Read)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(names), |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })
        .map_err(HistoryError::Read)?;
    let mut out = Vec::new();
    for row in rows {
        let (id, json) = row.map_err(HistoryError::Read)?;
        match query::decode(&id, &json) {
            Ok(rec) => out.push(rec),
            Err(e) => tracing::warn!(execution_id = %id, error = %e, "skipping unreadable record"),
        }
    }
    Ok(out)
}
