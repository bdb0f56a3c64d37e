use super::*;
use crate::execution::{ExecutionError, State};

fn record(script: &str, state: State) -> ExecutionRecord {
    let mut rec = ExecutionRecord::queued(
        "id".into(),
        script.into(),
        "sha256:0".into(),
        runwarm_protocol::RawJson::default(),
        runwarm_protocol::Caller::default(),
        String::new(),
    );
    rec.state = state;
    rec.timings.total_ms = 0.3;
    rec.timings.queue_ms = 0.02;
    rec
}

fn line<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.lines().find(|l| l.starts_with(prefix))
}

#[test]
fn warm_calls_land_in_sub_millisecond_buckets() {
    let m = Metrics::new();
    m.observe(&record("a", State::Completed), "python3", 1);
    let text = m.render();
    let bucket = |le: &str| {
        line(
            &text,
            &format!("runwarm_invocation_duration_seconds_bucket{{le=\"{le}\",script=\"a\"}}"),
        )
        .unwrap_or_else(|| panic!("no le={le} bucket in\n{text}"))
        .rsplit(' ')
        .next()
        .unwrap()
        .to_owned()
    };
    assert_eq!(bucket("0.0002"), "0");
    assert_eq!(bucket("0.0004"), "1");
    assert!(
        line(
            &text,
            "runwarm_queue_wait_seconds_bucket{le=\"0.00005\",script=\"a\"} 1"
        )
        .is_some(),
        "{text}"
    );
}

#[test]
fn outcomes_resources_retries_and_faults_are_counted() {
    let m = Metrics::new();
    let mut rec = record("a", State::Failed);
    rec.attempt = 3;
    rec.resources.cpu_user_ms = Some(1500.0);
    rec.resources.cpu_system_ms = Some(250.0);
    rec.resources.peak_memory_bytes = Some(64 << 20);
    rec.error = Some(ExecutionError::new(ErrorCode::E003, "MemoryLimit", "x"));
    m.observe(&rec, "node", 1);
    let text = m.render();
    for want in [
        "runwarm_invocations_total{script=\"a\",runtime=\"node\",outcome=\"failed\"} 1",
        "runwarm_invocations_total{script=\"a\",runtime=\"node\",outcome=\"completed\"} 0",
        "runwarm_script_cpu_seconds_total{script=\"a\",mode=\"user\"} 1.5",
        "runwarm_script_cpu_seconds_total{script=\"a\",mode=\"system\"} 0.25",
        "runwarm_script_peak_memory_bytes{script=\"a\"} 67108864",
        "runwarm_retries_total{script=\"a\"} 2",
        "runwarm_oom_kills_total 1",
    ] {
        assert!(
            text.lines().any(|l| l == want),
            "missing {want:?} in\n{text}"
        );
    }
}

#[test]
fn every_refusal_reason_is_listed_from_the_start() {
    let m = Metrics::new();
    m.refused(Refusal::RateLimit);
    let text = m.render();
    for r in Refusal::ALL {
        let want = format!(
            "runwarm_refusals_total{{reason=\"{}\",status=\"{}\"}} {}",
            r.reason(),
            r.status(),
            u8::from(r == Refusal::RateLimit)
        );
        assert!(
            text.lines().any(|l| l == want),
            "missing {want:?} in\n{text}"
        );
    }
}

#[test]
fn build_info_and_process_metrics_are_served() {
    let text = Metrics::new().render();
    let info = line(&text, "runwarm_build_info{").unwrap_or_else(|| panic!("{text}"));
    assert!(info.contains(&format!("version=\"{VERSION}\"")), "{info}");
    assert!(info.ends_with(" 1"), "{info}");
    for name in [
        "process_cpu_seconds_total ",
        "process_resident_memory_bytes ",
        "process_open_fds ",
        "process_start_time_seconds ",
    ] {
        assert!(line(&text, name).is_some(), "no {name} in\n{text}");
    }
}
