//! A disk that refuses writes: the batch is retried, never dropped, and closing gives up
//! rather than hanging.

use super::*;

/// Makes every insert fail, as a full or broken disk would, until `heal` drops the trigger.
fn break_inserts(dir: &std::path::Path) -> Connection {
    let conn = schema::open(&dir.join(schema::DB_FILE)).unwrap();
    conn.execute_batch(
        "CREATE TRIGGER broken BEFORE INSERT ON executions
         BEGIN SELECT RAISE(ABORT, 'disk on fire'); END;",
    )
    .unwrap();
    conn
}

fn heal(conn: &Connection) {
    conn.execute_batch("DROP TRIGGER broken").unwrap();
}

#[tokio::test]
async fn a_failed_batch_is_retried_not_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let h = History::open(dir.path(), HistoryConfig::default()).unwrap();
    let saboteur = break_inserts(dir.path());
    h.record(rec("a", "s", State::Completed));
    let flushing = tokio::spawn({
        let h = h.clone();
        async move { h.flush().await }
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        !flushing.is_finished(),
        "flush returned while the disk was failing"
    );
    assert_eq!(h.pending(), 1);
    // Still readable from the queue while the disk fails.
    assert_eq!(h.get("a").await.unwrap().unwrap().state, State::Completed);

    heal(&saboteur);
    tokio::time::timeout(Duration::from_secs(10), flushing)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(h.pending(), 0);
    assert_eq!(h.count().await.unwrap(), 1);
    h.close().await.unwrap();
}

#[tokio::test]
async fn close_gives_up_on_a_broken_disk_instead_of_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let h = History::open(dir.path(), lazy()).unwrap();
    let _saboteur = break_inserts(dir.path());
    h.record(rec("a", "s", State::Completed));
    let closed = tokio::time::timeout(Duration::from_secs(10), h.close())
        .await
        .unwrap();
    assert!(matches!(closed, Err(HistoryError::Write(_))), "{closed:?}");
}
