//! A full disk: async work is refused at once with a reason, `/readyz` says so, and nothing
//! already accepted is lost.

use super::*;

/// Writes zeros into `path` until the file system says no more.
fn fill(path: &std::path::Path) {
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 1 << 20];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
}

async fn wait_ready_status(d: &Daemon, want: u16) -> Value {
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = d.call(Method::GET, "/readyz", None).await;
        if status == want || Instant::now() > until {
            assert_eq!(status, want, "/readyz: {body}");
            return body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_full_disk_refuses_async_work_at_once_and_loses_nothing() {
    if !require(&[Need::Root, Need::Program("mount")]) {
        return;
    }
    let disk = Tmpfs::mount(64);
    let mut d = Daemon::builder()
        .without_samples()
        .state_dir(&disk.0.path().join("state"))
        .start()
        .await;
    let files = json!({"main.sh": "sleep \"${PARAM_SLEEP:-0}\"\necho '{\"slept\": true}'\n"});
    d.register(
        "sleeper",
        json!({"runtime": "bash", "entry": "main.sh"}),
        files,
    )
    .await;
    let accept = |payload: &'static str| {
        d.raw(
            Method::POST,
            "/v1/scripts/sleeper/invoke",
            &[("prefer", "respond-async")],
            Some(payload.as_bytes().to_vec()),
        )
    };
    let (status, first) = accept(r#"{"sleep": 3}"#).await;
    assert_eq!(status, 202, "{first}");

    fill(&disk.0.path().join("filler"));
    let not_ready = wait_ready_status(&d, 503).await;
    assert!(
        not_ready["type"].as_str().unwrap().ends_with("/disk-full"),
        "{not_ready}"
    );
    let asked = Instant::now();
    let (status, refused) = accept(r#"{"sleep": 0}"#).await;
    let took = asked.elapsed();
    eprintln!("async invoke on a full disk: {status} after {took:?}: {refused}");
    assert_eq!(status, 507, "{refused}");
    assert!(
        refused["type"].as_str().unwrap().ends_with("/disk-full"),
        "{refused}"
    );
    let (status, sync) = d.invoke("sleeper", "", json!({"sleep": 0})).await;
    assert_eq!(status, 200, "sync calls keep working: {sync}");
    assert_eq!(sync["state"], "completed", "{sync}");

    std::fs::remove_file(disk.0.path().join("filler")).unwrap();
    wait_ready_status(&d, 200).await;
    let (status, again) = accept(r#"{"sleep": 0}"#).await;
    assert_eq!(status, 202, "accepting again once space returned: {again}");
    // Everything accepted, and the sync record written while the disk was full, is on disk:
    // read back by a fresh daemon.
    let first_id = first["id"].as_str().unwrap().to_owned();
    let ran = d.wait_terminal(&first_id).await;
    assert_eq!(ran["state"], "completed", "{ran}");
    d.stop();
    d.restart().await;
    for id in [&first_id, sync["id"].as_str().unwrap()] {
        let (status, rec) = d
            .call(Method::GET, &format!("/v1/executions/{id}"), None)
            .await;
        assert_eq!(
            (status, rec["state"].as_str()),
            (200, Some("completed")),
            "{rec}"
        );
    }
    let (status, listed) = d
        .call(Method::GET, "/v1/executions?script=sleeper", None)
        .await;
    assert_eq!(status, 200);
    // The first async call, the sync one and the last async one; the refused one never ran.
    assert_eq!(listed.as_array().map(Vec::len), Some(3), "{listed}");
}
