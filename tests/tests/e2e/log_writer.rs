//! The daemon's log never holds up a call: when whatever reads its stderr stops reading (a
//! wedged journald, a paused pipe), calls go on, the lines beyond the buffer are dropped and
//! counted, and logging resumes once the reader does.

use std::io::Read;
use std::time::Duration;

use hyper::Method;
use runwarm_e2e::{Daemon, Need, require};
use serde_json::{Value, json};

/// Bytes of log the daemon keeps for a slow reader (`daemon::logging::BUFFER_BYTES`).
const BUFFER_BYTES: usize = 4 << 20;

async fn dropped_lines(d: &Daemon) -> f64 {
    let (status, body) = d.call(Method::GET, "/metrics", None).await;
    assert_eq!(status, 200, "{body}");
    let text = body.as_str().unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("runwarm_log_lines_dropped_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no runwarm_log_lines_dropped_total in\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_stops_reading_the_log_stalls_no_call() {
    if !require(&[Need::Program("python3")]) {
        return;
    }
    // The pipe holds 64 KiB, about a hundred lines; nobody reads it until the end.
    let (reader, writer) = nix::unistd::pipe().unwrap();
    let d = Daemon::builder()
        .without_samples()
        .stderr(writer)
        .start()
        .await;
    d.register(
        "echo",
        json!({"runtime": "python3", "entry": "main.py", "pool": {"max": 4}}),
        json!({"main.py": "def handler(event, context):\n    return event\n"}),
    )
    .await;
    assert_eq!(dropped_lines(&d).await, 0.0);

    // Every call logs a line of some 500 bytes at `info`: more calls than the pipe and the
    // buffer hold. Written in place, the first hundred or so filled the pipe and the next call
    // never came back.
    let calls = 12_000;
    let clients = 8;
    let all = async {
        let mut tasks = Vec::new();
        for c in 0..clients {
            let d = &d;
            tasks.push(async move {
                for n in (c..calls).step_by(clients) {
                    let rec = d.invoke_ok("echo", json!({ "n": n })).await;
                    assert_eq!(rec["result"], json!({ "n": n }), "{rec}");
                }
            });
        }
        futures_util::future::join_all(tasks).await;
    };
    tokio::time::timeout(Duration::from_secs(300), all)
        .await
        .unwrap_or_else(|_| panic!("calls stalled behind the unread log\n{}", d.report()));
    let dropped = dropped_lines(&d).await;
    assert!(
        dropped >= 500.0,
        "{dropped} lines dropped after {calls} calls with nobody reading"
    );

    // Once the reader reads again, the queued lines come out; after them (a line logged while
    // the buffer was still full was dropped), the next call's line arrives.
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut file = std::fs::File::from(reader);
        let mut buf = vec![0; 1 << 16];
        while let Ok(n) = file.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    // Drained when nothing more comes for half a second.
    while let Ok(chunk) = rx.recv_timeout(Duration::from_millis(500)) {
        seen.extend(chunk);
        assert!(
            std::time::Instant::now() < deadline,
            "the queued lines did not drain: {} bytes read\n{}",
            seen.len(),
            d.report()
        );
    }
    let drained = seen.len();
    let rec: Value = d.invoke_ok("echo", json!({"n": "after"})).await;
    let id = rec["id"].as_str().unwrap().to_owned();
    while !String::from_utf8_lossy(&seen[drained..]).contains(&id) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(chunk) => seen.extend(chunk),
            Err(_) => panic!(
                "the log did not resume: {} bytes read, no line about {id}\n{}",
                seen.len(),
                d.report()
            ),
        }
    }
    // What waited in the pipe and the buffer came out whole, line by line.
    assert!(
        seen.len() >= BUFFER_BYTES / 2,
        "{} bytes came out once read",
        seen.len()
    );
    let lines = String::from_utf8_lossy(&seen);
    let whole = lines
        .lines()
        .filter(|l| serde_json::from_str::<Value>(l).is_ok())
        .count();
    assert!(whole >= 4_000, "{whole} whole lines came out once read");
}
