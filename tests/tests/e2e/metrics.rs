//! Metrics an operator alerts on: the shipped Grafana dashboard and Prometheus alert rules name
//! only metrics a real daemon serves, every runwarm metric is on the dashboard, and promtool
//! accepts the rules, their unit tests and the dashboard's queries.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use hyper::Method;
use runwarm_e2e::{Daemon, Need, require};
use serde_json::{Value, json};

fn ops_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../ops")
        .join(rel)
}

fn read(rel: &str) -> String {
    let path = ops_file(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every PromQL expression of the dashboard: panel targets (`expr`) and the variables' queries
/// (`label_values(...)`, Grafana's, not PromQL) as `(is_promql, text)`.
fn dashboard_queries(dashboard: &Value) -> Vec<(bool, String)> {
    fn walk(v: &Value, in_templating: bool, out: &mut Vec<(bool, String)>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("expr", Value::String(e)) => out.push((!in_templating, e.clone())),
                        ("query" | "definition", Value::String(q)) if in_templating => {
                            out.push((false, q.clone()));
                        }
                        _ => walk(v, in_templating || k == "templating", out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, in_templating, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(dashboard, false, &mut out);
    out
}

/// The `expr` of every rule in a Prometheus rule file: a plain scalar on the line, or a block
/// scalar (`|`, `>`) on the lines indented below it. The rule files here use only these forms,
/// and promtool (below) parses the file for real.
fn rule_exprs(yaml: &str) -> Vec<String> {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let indent = line.len() - line.trim_start().len();
        let Some(rest) = line.trim_start().strip_prefix("expr:") else {
            continue;
        };
        let rest = rest.trim();
        if ["|", "|-", ">", ">-"].contains(&rest) {
            let block: Vec<&str> = lines[i + 1..]
                .iter()
                .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
                .map(|l| l.trim())
                .collect();
            out.push(block.join(" "));
        } else {
            out.push(rest.trim_matches(|c| c == '\'' || c == '"').to_owned());
        }
    }
    out
}

/// Metric names in a PromQL expression: identifiers outside string literals, not Grafana
/// variables, that start with one of the prefixes runwarm serves (`runwarm_`, `process_`).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let chars: Vec<char> = expr.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            // Skip the string literal (label values such as job="runwarm").
            i += 1;
            while i < chars.len() && chars[i] != c {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "_:".contains(chars[i])) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let variable = start > 0 && chars[start - 1] == '$';
            if !variable && (word.starts_with("runwarm_") || word.starts_with("process_")) {
                out.insert(word);
            }
            continue;
        }
        i += 1;
    }
    out
}

/// Names of the samples in an exposition (`name{labels} value` or `name value`).
fn served_samples(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

/// Metric families declared with `# TYPE`, and their type.
fn served_families(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(n, t)| (n.to_owned(), t.to_owned()))
        .collect()
}

#[tokio::test]
async fn dashboard_and_alerts_use_only_served_metrics() {
    if !require(&[Need::Program("bash")]) {
        return;
    }
    let d = Daemon::builder().without_samples().start().await;
    d.register(
        "m",
        json!({"runtime": "bash", "entry": "main.sh"}),
        json!({"main.sh": "echo '{\"ok\": 1}'\n"}),
    )
    .await;
    for _ in 0..3 {
        d.invoke_ok("m", json!({})).await;
    }
    // Refusals of two kinds, so their counters move too.
    let (status, _) = d.invoke("no-such-script", "", json!({})).await;
    assert_eq!(status, 404);
    let (status, _) = d
        .raw(
            Method::POST,
            "/v1/scripts/m/invoke",
            &[],
            Some(b"{not json".to_vec()),
        )
        .await;
    assert_eq!(status, 400);

    let r = d.client().get("/metrics").await.unwrap();
    assert_eq!(r.status, 200);
    let text = String::from_utf8_lossy(&r.body).into_owned();
    let samples = served_samples(&text);
    for (line, want) in [
        (
            "runwarm_refusals_total{reason=\"not_found\",status=\"404\"}",
            " 1",
        ),
        (
            "runwarm_refusals_total{reason=\"bad_request\",status=\"400\"}",
            " 1",
        ),
        (
            "runwarm_invocations_total{script=\"m\",runtime=\"bash\",outcome=\"completed\"}",
            " 3",
        ),
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(line) && l.ends_with(want)),
            "no `{line}{want}` in\n{text}"
        );
    }
    assert!(
        text.lines()
            .any(|l| l.starts_with("runwarm_build_info{") && l.ends_with(" 1")),
        "{text}"
    );

    let dashboard: Value = serde_json::from_str(&read("grafana/runwarm.json")).unwrap();
    let queries = dashboard_queries(&dashboard);
    let on_dashboard: BTreeSet<String> =
        queries.iter().flat_map(|(_, q)| metric_names(q)).collect();
    let rules = read("prometheus/runwarm-alerts.yml");
    let exprs = rule_exprs(&rules);
    let in_alerts: BTreeSet<String> = exprs.iter().flat_map(|e| metric_names(e)).collect();
    // Guards against the extraction itself going blind.
    assert!(queries.len() >= 30, "{queries:?}");
    assert!(exprs.len() >= 10, "{exprs:?}");
    assert!(on_dashboard.len() >= 25, "{on_dashboard:?}");

    for (source, names) in [("dashboard", &on_dashboard), ("alert rules", &in_alerts)] {
        let missing: Vec<&String> = names.iter().filter(|n| !samples.contains(*n)).collect();
        assert!(
            missing.is_empty(),
            "the {source} use metrics the daemon does not serve: {missing:?}\nserved: {samples:?}"
        );
    }

    // Every runwarm metric family is on the dashboard in some form, so a new metric comes with
    // a panel (histograms as _bucket/_sum/_count, counters as _total).
    for (family, kind) in served_families(&text) {
        if !family.starts_with("runwarm_") {
            continue;
        }
        let forms = match kind.as_str() {
            "histogram" => vec![
                format!("{family}_bucket"),
                format!("{family}_sum"),
                format!("{family}_count"),
            ],
            "counter" => vec![format!("{family}_total")],
            _ => vec![family.clone()],
        };
        assert!(
            forms.iter().any(|f| on_dashboard.contains(f)),
            "{family} ({kind}) is served but on no dashboard panel"
        );
    }
}

/// promtool parses the rules, runs their unit tests, and parses every dashboard query (as a
/// recording rule, with Grafana's variables filled in).
#[test]
fn promtool_accepts_the_rules_and_the_dashboard_queries() {
    if !require(&[Need::Program("promtool")]) {
        return;
    }
    let run = |args: &[&str], dir: &Path| {
        let out = Command::new("promtool")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run promtool");
        assert!(
            out.status.success(),
            "promtool {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let rules_dir = ops_file("prometheus");
    run(&["check", "rules", "runwarm-alerts.yml"], &rules_dir);
    run(&["test", "rules", "runwarm-alerts.test.yml"], &rules_dir);

    let dashboard: Value = serde_json::from_str(&read("grafana/runwarm.json")).unwrap();
    let mut file = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, (_, q)) in dashboard_queries(&dashboard)
        .iter()
        .filter(|(promql, _)| *promql)
        .enumerate()
    {
        let q = q
            .replace("$__rate_interval", "5m")
            .replace("$instance", ".*")
            .replace("$script", ".*");
        // A JSON string is a valid YAML double-quoted scalar.
        let quoted = serde_json::to_string(&q).unwrap();
        file.push_str(&format!(
            "      - record: dashboard:query_{i}\n        expr: {quoted}\n"
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dashboard.yml"), file).unwrap();
    run(&["check", "rules", "dashboard.yml"], dir.path());
}

#[test]
fn metric_names_skip_strings_and_variables() {
    let names = metric_names(
        r#"sum by (le) (rate(runwarm_x_bucket{job="runwarm_not_a_metric", i=~"$instance"}[$__rate_interval])) / process_open_fds"#,
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["process_open_fds", "runwarm_x_bucket"]
    );
    let exprs = rule_exprs(
        "  - alert: A\n    expr: |\n      a_total\n      > 1\n    for: 1m\n  - alert: B\n    expr: up == 0\n",
    );
    assert_eq!(exprs, ["a_total > 1", "up == 0"]);
}
