use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::execution::{ExecutionRecord, State};
use crate::history::{History, HistoryConfig};
use runwarm_protocol::Caller;

/// Reads one HTTP request head and body from `stream` and answers 204.
async fn answer_one(mut stream: tokio::net::UnixStream) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "the worker hung up before its request was whole");
        seen.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&seen).into_owned();
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length = text[..head_end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if seen.len() >= head_end + 4 + length {
                stream
                    .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                    .await
                    .unwrap();
                return text;
            }
        }
    }
}

#[tokio::test]
async fn a_record_owing_a_callback_wakes_the_worker_without_waiting_for_a_read() {
    let dir = tempfile::tempdir().unwrap();
    let history = History::open(dir.path(), HistoryConfig::default()).unwrap();
    let socket = dir.path().join("receiver.sock");
    let receiver = tokio::net::UnixListener::bind(&socket).unwrap();
    let stop = CancellationToken::new();
    // An hour between reads of its own: within this test only a wake-up sends anything.
    let wake = Wake {
        owed: history.deliveries_owed(),
        fallback: Duration::from_secs(3600),
    };
    let worker = tokio::spawn(run(
        history.side_connection().unwrap(),
        CallbackSettings::default(),
        "test key".into(),
        DeliveryMetrics::default(),
        wake,
        stop.clone(),
    ));
    // Its first read, at start, finds nothing owed; the record comes after it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut rec = ExecutionRecord::queued(
        "0193aaaa-0000-7000-8000-000000000001".into(),
        "s".into(),
        "sha256:abc".into(),
        runwarm_protocol::RawJson::from_value(&json!({})),
        Caller::default(),
        "2025-01-01T00:00:00.000Z".into(),
    );
    rec.lineage.callback = Some(format!("unix:{}/done", socket.display()));
    assert!(rec.finish(State::Completed, None));
    history.record(rec);
    let (stream, _) = tokio::time::timeout(Duration::from_secs(20), receiver.accept())
        .await
        .expect("no callback within 20 s: the history writer's commit did not wake the worker")
        .unwrap();
    let request = answer_one(stream).await;
    assert!(request.starts_with("POST /done HTTP/1.1"), "{request}");
    assert!(
        request.contains("runwarm-execution-id: 0193aaaa-0000-7000-8000-000000000001"),
        "{request}"
    );
    stop.cancel();
    worker.await.unwrap();
    history.close().await.unwrap();
}
