//! Ruby and PHP: no prepare, warm calls and failing lines.

use super::*;

#[tokio::test]
async fn ruby_runs_warm_and_names_the_failing_line() {
    if !require(&[Need::Program("ruby")]) {
        return;
    }
    let d = daemon().await;
    let src = "\
def handler(event, context)
  raise ArgumentError, \"asked to fail\" if event[\"fail\"]
  { \"double\" => event[\"n\"] * 2 }
end
";
    let (_, p) = deploy(
        &d,
        "rb",
        manifest("ruby", "main.rb"),
        json!({"main.rb": src}),
    )
    .await;
    assert_eq!(p, Value::Null, "ruby prepares nothing");
    let (a, b) = two_calls(&d, "rb", json!({"n": 21}), json!({"n": 4})).await;
    assert_eq!(a["result"], json!({"double": 42}));
    assert_eq!(b["result"], json!({"double": 8}));
    timings("ruby", &p, &a, &b);
    let rec = script_error(&d, "rb", json!({"fail": true})).await;
    assert_eq!(rec["error"]["kind"], "ArgumentError", "{rec:#}");
    assert_trace_has(&rec, "main.rb:2");
}

#[tokio::test]
async fn php_runs_warm_and_names_the_failing_line() {
    if !require(&[Need::Program("php")]) {
        return;
    }
    let d = daemon().await;
    let src = "\
<?php
function handler(array $event, $context): array
{
    if (!empty($event['fail'])) {
        throw new RuntimeException('asked to fail');
    }
    return ['double' => $event['n'] * 2];
}
";
    let (_, p) = deploy(
        &d,
        "php",
        manifest("php", "main.php"),
        json!({"main.php": src}),
    )
    .await;
    assert_eq!(p, Value::Null, "php prepares nothing");
    let (a, b) = two_calls(&d, "php", json!({"n": 21}), json!({"n": 4})).await;
    assert_eq!(a["result"], json!({"double": 42}));
    assert_eq!(b["result"], json!({"double": 8}));
    timings("php", &p, &a, &b);
    let rec = script_error(&d, "php", json!({"fail": true})).await;
    assert_eq!(rec["error"]["kind"], "RuntimeException", "{rec:#}");
    assert_trace_has(&rec, "main.php:5");
}
