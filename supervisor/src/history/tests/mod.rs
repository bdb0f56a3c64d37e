//! Tests of the history handle against real SQLite files in temporary directories.

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use runwarm_protocol::Caller;
use serde_json::{Value, json};

use super::*;
use crate::execution::{ErrorCode, ExecutionError};

mod durability;
mod recovery;
mod subscriptions;

fn rec(id: &str, script: &str, state: State) -> ExecutionRecord {
    let mut r = ExecutionRecord::queued(
        id.into(),
        script.into(),
        "sha256:abc".into(),
        runwarm_protocol::RawJson::from_value(&json!({"n": 1})),
        Caller::default(),
        "2025-01-01T00:00:00.000Z".into(),
    );
    r.state = state;
    if state == State::Completed {
        r.result = Some(runwarm_protocol::RawJson::from_value(&json!({"ok": true})));
        r.timings.finished_at = Some("2025-01-01T00:00:01.000Z".into());
    }
    r
}

/// Ids that sort like UUIDv7s: by creation order.
fn id(n: usize) -> String {
    format!("0193{n:08}-0000-7000-8000-000000000000")
}

/// A config whose flush interval is long enough that nothing is written unless asked.
fn lazy() -> HistoryConfig {
    HistoryConfig {
        flush_interval: Duration::from_secs(30),
        batch_max: 100_000,
        retention: None,
        min_free_bytes: 0,
    }
}

#[tokio::test]
async fn a_record_owing_a_callback_is_committed_at_once_and_wakes_the_delivery_worker() {
    let dir = tempfile::tempdir().unwrap();
    let h = History::open(dir.path(), lazy()).unwrap();
    let owed = h.deliveries_owed();
    h.record(rec("a", "s", State::Completed));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        h.count().await.unwrap(),
        0,
        "a record owing nothing waits for its batch"
    );
    let mut b = rec("b", "s", State::Completed);
    b.lineage.callback = Some("unix:/run/engine.sock/done".into());
    h.record(b);
    // The batch's interval is 30 s: within this bound only the prompt commit can have run.
    tokio::time::timeout(Duration::from_secs(10), owed.notified())
        .await
        .expect("the commit that added a delivery did not wake the worker");
    assert_eq!(
        h.count().await.unwrap(),
        2,
        "the batch waiting went with it"
    );
    assert_eq!(h.pending(), 0);
    h.close().await.unwrap();
}

#[tokio::test]
async fn get_reads_its_own_writes_before_and_after_the_flush() {
    let dir = tempfile::tempdir().unwrap();
    let h = History::open(dir.path(), lazy()).unwrap();
    h.record(rec("a", "s", State::Running));
    assert_eq!(h.pending(), 1);
    assert_eq!(h.get("a").await.unwrap().unwrap().state, State::Running);
    assert_eq!(
        h.count().await.unwrap(),
        0,
        "nothing is written before the flush"
    );

    h.record(rec("a", "s", State::Completed));
    h.flush().await.unwrap();
    assert_eq!(h.pending(), 0);
    assert_eq!(h.count().await.unwrap(), 1);
    let got = h.get("a").await.unwrap().unwrap();
    assert_eq!(got, rec("a", "s", State::Completed));
    assert!(h.get("missing").await.unwrap().is_none());
    h.close().await.unwrap();
}

#[tokio::test]
async fn the_writer_flushes_on_its_own_after_the_interval() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = HistoryConfig {
        flush_interval: Duration::from_millis(10),
        ..HistoryConfig::default()
    };
    let h = History::open(dir.path(), cfg).unwrap();
    h.record(rec("a", "s", State::Queued));
    let start = Instant::now();
    while h.pending() > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "writer never flushed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(h.count().await.unwrap(), 1);
    h.close().await.unwrap();
}

#[tokio::test]
async fn list_pages_newest_first_with_filters() {
    let dir = tempfile::tempdir().unwrap();
    let h = History::open(dir.path(), HistoryConfig::default()).unwrap();
    // 25 records: even ones of script "a" completed, odd ones of script "b" running.
    for n in 0..25 {
        let (script, state) = if n % 2 == 0 {
            ("a", State::Completed)
        } else {
            ("b", State::Running)
        };
        h.record(rec(&id(n), script, state));
    }

    let all = h.list(&ListQuery::default()).await.unwrap();
    let ids: Vec<String> = all.iter().map(|r| r.id.clone()).collect();
    let expected: Vec<String> = (0..25).rev().map(id).collect();
    assert_eq!(ids, expected, "newest first");

    // Three pages of script "a" (13 records) with 5 per page: 5, 5, 3.
    let mut q = ListQuery {
        script: Some("a".into()),
        limit: Some(5),
        ..ListQuery::default()
    };
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = h.list(&q).await.unwrap();
        if page.is_empty() {
            break;
        }
        pages += 1;
        assert!(page.iter().all(|r| r.script == "a"));
        q.before = page.last().map(|r| r.id.clone());
        seen.extend(page.into_iter().map(|r| r.id));
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..25).rev().filter(|n| n % 2 == 0).map(id).collect();
    assert_eq!(seen, expected);

    let running = ListQuery {
        state: Some(State::Running),
        limit: Some(1000),
        ..ListQuery::default()
    };
    let running = h.list(&running).await.unwrap();
    assert_eq!(running.len(), 12);
    assert!(
        running
            .iter()
            .all(|r| r.state == State::Running && r.script == "b")
    );

    let none = ListQuery {
        script: Some("a".into()),
        state: Some(State::Running),
        ..ListQuery::default()
    };
    assert!(h.list(&none).await.unwrap().is_empty());
    h.close().await.unwrap();
}

#[tokio::test]
async fn list_limit_defaults_to_50_and_is_capped() {
    let dir = tempfile::tempdir().unwrap();
    let h = History::open(dir.path(), HistoryConfig::default()).unwrap();
    for n in 0..1100 {
        h.record(rec(&id(n), "s", State::Completed));
    }
    assert_eq!(h.list(&ListQuery::default()).await.unwrap().len(), 50);
    let huge = ListQuery {
        limit: Some(u32::MAX),
        ..ListQuery::default()
    };
    assert_eq!(h.list(&huge).await.unwrap().len(), 1000);
    h.close().await.unwrap();
}

#[tokio::test]
async fn terminal_records_stay_terminal_in_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let h = History::open(dir.path(), HistoryConfig::default()).unwrap();
    h.record(rec("x", "s", State::Completed));
    h.flush().await.unwrap();
    // A late report from a slower task, written in a later batch than the terminal one.
    h.record(rec("x", "s", State::Running));
    h.flush().await.unwrap();
    let mut failed = rec("x", "s", State::Failed);
    failed.error = Some(ExecutionError::new(ErrorCode::E005, "Crash", "late"));
    h.record(failed);
    h.flush().await.unwrap();
    assert_eq!(
        h.get("x").await.unwrap().unwrap(),
        rec("x", "s", State::Completed)
    );
    h.close().await.unwrap();

    // And from the file itself, not just through the handle.
    let h = History::open(dir.path(), HistoryConfig::default()).unwrap();
    assert_eq!(h.get("x").await.unwrap().unwrap().state, State::Completed);
    h.close().await.unwrap();
}

#[tokio::test]
async fn terminal_records_stay_terminal_in_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let h = History::open(dir.path(), lazy()).unwrap();
    h.record(rec("x", "s", State::Completed));
    h.record(rec("x", "s", State::Running));
    assert_eq!(h.get("x").await.unwrap().unwrap().state, State::Completed);
    h.flush().await.unwrap();
    assert_eq!(h.get("x").await.unwrap().unwrap().state, State::Completed);
    h.close().await.unwrap();
}

#[tokio::test]
async fn the_upsert_guard_itself_refuses_to_overwrite_terminal_rows() {
    let dir = tempfile::tempdir().unwrap();
    let mut conn = schema::open(&dir.path().join(schema::DB_FILE)).unwrap();
    let write = |conn: &mut Connection, r: &ExecutionRecord| {
        let tx = conn.transaction().unwrap();
        let json = serde_json::to_string(r).unwrap();
        let changed = schema::upsert(&tx, r, &json, 1, &AtomicBool::new(true))
            .unwrap()
            .changed;
        tx.commit().unwrap();
        changed
    };
    assert!(write(&mut conn, &rec("x", "s", State::Running)));
    assert!(write(&mut conn, &rec("x", "s", State::Completed)));
    assert!(!write(&mut conn, &rec("x", "s", State::Running)));
    assert!(!write(&mut conn, &rec("x", "s", State::Failed)));
    let state: String = conn
        .query_row("SELECT state FROM executions WHERE id = 'x'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(state, "completed");
}

#[tokio::test]
async fn a_durable_write_wakes_a_writer_gathering_a_lazy_batch() {
    let dir = tempfile::tempdir().unwrap();
    let h = History::open(dir.path(), lazy()).unwrap();
    // The writer takes this one and then parks, gathering a batch for up to 30 s.
    h.record(rec("lazy", "s", State::Running));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(h.pending(), 1, "a lazy record waits for its interval");
    tokio::time::timeout(
        Duration::from_secs(5),
        h.record_durable(rec("durable", "s", State::Queued)),
    )
    .await
    .expect("the durable write woke the parked writer")
    .unwrap();
    // Group commit: the lazy record went with it.
    assert_eq!(h.pending(), 0);
    assert_eq!(h.count().await.unwrap(), 2);
    h.close().await.unwrap();
}

#[tokio::test]
async fn a_durable_write_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let h = History::open(dir.path(), lazy()).unwrap();
    // The lazy config would hold this for 30 s: returning at all proves the durable path
    // does not wait for the interval.
    tokio::time::timeout(
        Duration::from_secs(5),
        h.record_durable(rec("d", "s", State::Queued)),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(h.pending(), 0);
    // Read it back through a fresh connection while the first handle is still open.
    let conn = schema::open(&dir.path().join(schema::DB_FILE)).unwrap();
    assert_eq!(
        query::get(&conn, "d").unwrap().unwrap().state,
        State::Queued
    );
    h.close().await.unwrap();
    let h = History::open(dir.path(), lazy()).unwrap();
    assert_eq!(h.get("d").await.unwrap().unwrap().state, State::Queued);
    h.close().await.unwrap();
}

#[tokio::test]
async fn close_writes_everything_queued() {
    let dir = tempfile::tempdir().unwrap();
    let h = History::open(dir.path(), lazy()).unwrap();
    for n in 0..1000 {
        h.record(rec(&id(n), "s", State::Completed));
    }
    h.close().await.unwrap();
    h.close().await.unwrap();
    h.record(rec("late", "s", State::Running));
    assert!(matches!(
        h.record_durable(rec("late", "s", State::Running)).await,
        Err(HistoryError::Closed)
    ));
    drop(h);
    let h = History::open(dir.path(), lazy()).unwrap();
    assert_eq!(h.count().await.unwrap(), 1000);
    h.close().await.unwrap();
}

#[tokio::test]
async fn ten_thousand_records_write_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let h = History::open(dir.path(), HistoryConfig::default()).unwrap();
    let mut r = rec("", "s", State::Completed);
    r.stdout = "x".repeat(200);
    r.payload = runwarm_protocol::RawJson::from_value(&Value::String("p".repeat(200))).into();
    let start = Instant::now();
    for n in 0..10_000 {
        r.id = id(n);
        h.record(r.clone());
    }
    let queued = start.elapsed();
    h.flush().await.unwrap();
    let total = start.elapsed();
    println!("10000 records: queued in {queued:?}, committed in {total:?}");
    assert_eq!(h.count().await.unwrap(), 10_000);
    assert!(total < Duration::from_secs(30), "took {total:?}");
    h.close().await.unwrap();
}

#[tokio::test]
async fn a_record_given_with_its_json_is_stored_as_that_json() {
    let dir = tempfile::tempdir().unwrap();
    let h = History::open(dir.path(), lazy()).unwrap();
    let done = std::sync::Arc::new(rec("a", "s", State::Completed));
    let json = serde_json::to_vec(&*done).unwrap();
    h.record_as(std::sync::Arc::clone(&done), Some(json.clone().into()));
    // Without its JSON, a record is serialised by the writer: the same text either way.
    let other = rec("b", "s", State::Completed);
    h.record(other.clone());
    h.flush().await.unwrap();
    let stored: Vec<String> = {
        let conn = rusqlite::Connection::open(dir.path().join("history.db")).unwrap();
        let mut stmt = conn
            .prepare("SELECT record FROM executions ORDER BY id")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(stored[0].as_bytes(), json.as_slice());
    assert_eq!(stored[1], serde_json::to_string(&other).unwrap());
    assert_eq!(h.get("a").await.unwrap().unwrap(), *done);
}
