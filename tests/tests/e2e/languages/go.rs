//! Go: builds, modules from the proxy, panicking lines, compile errors.

use super::*;

const GO_HANDLER: &str = "\
package main

import (
	\"context\"

	\"runwarm.dev/runwarm\"
)

type Event struct {
	N    int  `json:\"n\"`
	Fail bool `json:\"fail\"`
}

func handler(ctx context.Context, e Event) (map[string]int, error) {
	if e.Fail {
		panic(\"asked to fail\")
	}
	return map[string]int{\"double\": e.N * 2}, nil
}

func main() { runwarm.Start(handler) }
";

#[tokio::test]
async fn go_builds_runs_warm_and_names_the_panicking_line() {
    if !require(&[Need::Program("go")]) {
        return;
    }
    let d = daemon().await;
    let (_, p) = deploy(
        &d,
        "go",
        manifest("go", "main.go"),
        json!({"main.go": GO_HANDLER}),
    )
    .await;
    assert!(p["build"].is_object(), "{p:#}");
    let (a, b) = two_calls(&d, "go", json!({"n": 21}), json!({"n": 4})).await;
    assert_eq!(a["result"], json!({"double": 42}));
    assert_eq!(b["result"], json!({"double": 8}));
    timings("go", &p, &a, &b);
    let rec = script_error(&d, "go", json!({"fail": true})).await;
    assert_eq!(rec["error"]["kind"], "panic", "{rec:#}");
    assert_trace_has(&rec, "main.go:16");
}

#[tokio::test]
async fn go_compile_error_fails_the_prepare() {
    if !require(&[Need::Program("go")]) {
        return;
    }
    let d = daemon().await;
    let src = "\
package main

import \"runwarm.dev/runwarm\"

func handler() int {
	unused := 1
	return 2
}

func main() { runwarm.Start(handler) }
";
    expect_prepare_failure(
        &d,
        "gobad",
        manifest("go", "main.go"),
        json!({"main.go": src}),
        &["main.go:6:2:", "declared and not used"],
    )
    .await;
}

#[tokio::test]
async fn go_module_dependency_comes_from_the_proxy() {
    if !require(&[Need::Program("go")]) {
        return;
    }
    let d = daemon().await;
    let go_mod =
        "module example.com/uuidcheck\n\ngo 1.21\n\nrequire github.com/google/uuid v1.6.0\n";
    // `go mod download github.com/google/uuid` in a module like this one writes these lines.
    let go_sum = "\
github.com/google/uuid v1.6.0 h1:NIvaJDMOsjHA8n1jAhLSgzrAzy1Hgr+hNrb57e+94F0=
github.com/google/uuid v1.6.0/go.mod h1:TIyPZe4MgqvfeYDBFedMoGGpEw/LqOeaOT+nhxU+yHo=
";
    let src = "\
package main

import (
	\"github.com/google/uuid\"
	\"runwarm.dev/runwarm\"
)

func handler(e map[string]string) (map[string]string, error) {
	id := uuid.NewSHA1(uuid.NameSpaceDNS, []byte(e[\"name\"]))
	return map[string]string{\"id\": id.String()}, nil
}

func main() { runwarm.Start(handler) }
";
    let (_, p) = deploy(
        &d,
        "gouuid",
        manifest("go", "main.go"),
        json!({"main.go": src, "go.mod": go_mod, "go.sum": go_sum}),
    )
    .await;
    assert_eq!(p["dependencies"]["cached"], false, "{p:#}");
    let (a, b) = two_calls(
        &d,
        "gouuid",
        json!({"name": "runwarm.dev"}),
        json!({"name": "runwarm.dev"}),
    )
    .await;
    // Python's uuid.uuid5(uuid.NAMESPACE_DNS, "runwarm.dev").
    assert_eq!(
        a["result"],
        json!({"id": "adb1520f-7e2c-5e2a-8b63-89627e6859a5"})
    );
    assert_eq!(b["result"], a["result"]);
    timings("go (uuid)", &p, &a, &b);
}
