//! What a start finds: interrupted records failed or handed back, old terminal records
//! deleted by retention.

use super::*;

#[tokio::test]
async fn recovery_fails_interrupted_records_and_leaves_terminal_ones() {
    let dir = tempfile::tempdir().unwrap();
    let h = History::open(dir.path(), HistoryConfig::default()).unwrap();
    h.record(rec("q", "s", State::Queued));
    h.record(rec("p", "s", State::Provisioning));
    h.record(rec("r", "s", State::Running));
    h.record(rec("c", "s", State::Completed));
    h.close().await.unwrap();

    let h = History::open(dir.path(), HistoryConfig::default()).unwrap();
    assert_eq!(h.recover_interrupted().unwrap(), 3);
    for id in ["q", "p", "r"] {
        let got = h.get(id).await.unwrap().unwrap();
        assert_eq!(got.state, State::Failed, "{id}");
        let err = got.error.unwrap();
        assert_eq!(err.code, ErrorCode::E005);
        assert_eq!(err.kind, "SupervisorRestarted");
        assert_eq!(err.message, "supervisor restarted");
        assert!(got.timings.finished_at.is_some());
    }
    assert_eq!(
        h.get("c").await.unwrap().unwrap(),
        rec("c", "s", State::Completed)
    );
    assert_eq!(
        h.recover_interrupted().unwrap(),
        0,
        "recovery is idempotent"
    );
    let failed = ListQuery {
        state: Some(State::Failed),
        ..ListQuery::default()
    };
    assert_eq!(h.list(&failed).await.unwrap().len(), 3);
    h.close().await.unwrap();
}

#[tokio::test]
async fn recover_started_hands_queued_records_back() {
    let dir = tempfile::tempdir().unwrap();
    let h = History::open(dir.path(), HistoryConfig::default()).unwrap();
    h.record(rec(&id(2), "s", State::Queued));
    h.record(rec(&id(1), "s", State::Queued));
    h.record(rec(&id(3), "s", State::Running));
    h.flush().await.unwrap();
    assert_eq!(h.recover_started().unwrap(), 1);
    let queued: Vec<String> = h.queued().unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(queued, vec![id(1), id(2)], "oldest first");
    assert_eq!(h.get(&id(3)).await.unwrap().unwrap().state, State::Failed);
    h.close().await.unwrap();
}

#[tokio::test]
async fn retention_deletes_old_terminal_records_only() {
    let dir = tempfile::tempdir().unwrap();
    let h = History::open(dir.path(), HistoryConfig::default()).unwrap();
    h.record(rec("done", "s", State::Completed));
    h.record(rec("busy", "s", State::Running));
    h.close().await.unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;

    let cfg = HistoryConfig {
        retention: Some(Duration::from_millis(10)),
        ..HistoryConfig::default()
    };
    // Retention runs when the writer starts; the flush is queued behind it.
    let h = History::open(dir.path(), cfg).unwrap();
    h.flush().await.unwrap();
    assert!(h.get("done").await.unwrap().is_none());
    assert!(h.get("busy").await.unwrap().is_some());
    h.close().await.unwrap();
}
