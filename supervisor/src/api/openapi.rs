//! `GET /v1/openapi.json`: the OpenAPI 3.1 document of every route, built with utoipa.
//!
//! The route list here and the route table in `api/mod.rs` are kept in step by a test that reads
//! the table's source and checks every path and method appears in the document.

use axum::Json;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::{
    ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder, Required, ResponseBuilder,
};

/// One documented operation: method, path, tag, summary, whether it takes a JSON body, and its
/// answers (status, description).
struct Route {
    method: HttpMethod,
    path: &'static str,
    tag: &'static str,
    summary: &'static str,
    body: Option<&'static str>,
    query: &'static [(&'static str, &'static str)],
    answers: &'static [(&'static str, &'static str)],
}

const PROBLEM: (&str, &str) = (
    "4XX",
    "application/problem+json: type, title, status, detail, code, hint, violations",
);

const ROUTES: &[Route] = &[
    Route {
        method: HttpMethod::Get,
        path: "/healthz",
        tag: "health",
        summary: "Liveness: the daemon answers",
        body: None,
        query: &[],
        answers: &[("200", "{\"status\":\"ok\"}")],
    },
    Route {
        method: HttpMethod::Get,
        path: "/readyz",
        tag: "health",
        summary: "Readiness: 200 when taking work, 503 while starting or draining",
        body: None,
        query: &[],
        answers: &[("200", "ready"), ("503", "not ready")],
    },
    Route {
        method: HttpMethod::Get,
        path: "/metrics",
        tag: "health",
        summary: "Prometheus metrics (text format): invocations, durations, pools, queue, faults",
        body: None,
        query: &[],
        answers: &[("200", "text exposition format")],
    },
    Route {
        method: HttpMethod::Get,
        path: "/v1/info",
        tag: "health",
        summary: "Daemon version, uptime, worker budget, confinement layers",
        body: None,
        query: &[],
        answers: &[("200", "info object")],
    },
    Route {
        method: HttpMethod::Get,
        path: "/v1/runtimes",
        tag: "runtimes",
        summary: "Runtimes with availability, interpreter, version and prepare cache figures",
        body: None,
        query: &[],
        answers: &[("200", "array of runtimes")],
    },
    Route {
        method: HttpMethod::Get,
        path: "/v1/openapi.json",
        tag: "health",
        summary: "This document",
        body: None,
        query: &[],
        answers: &[("200", "OpenAPI document")],
    },
    Route {
        method: HttpMethod::Post,
        path: "/v1/scripts",
        tag: "scripts",
        summary: "Register a script version",
        body: Some(
            "{\"name\", \"manifest\": {runtime, entry, mode, handler, params, limits, pool, env, network, retry_safe, build: {flags}}, \"files\": {path: text | {text|base64, executable}}}",
        ),
        query: &[],
        answers: &[
            (
                "201",
                "new version: {name, version, created: true, prepare: pending|ready|failed} (prepare absent when the runtime prepares nothing)",
            ),
            (
                "200",
                "identical content already registered: created false (a failed prepare is retried)",
            ),
            PROBLEM,
        ],
    },
    Route {
        method: HttpMethod::Get,
        path: "/v1/scripts",
        tag: "scripts",
        summary: "List scripts",
        body: None,
        query: &[
            ("tag", "version tag or manifest label"),
            ("runtime", "runtime name"),
            ("q", "substring of name or description"),
        ],
        answers: &[("200", "array of script summaries")],
    },
    Route {
        method: HttpMethod::Get,
        path: "/v1/scripts/{name}",
        tag: "scripts",
        summary: "Show a script: tags, latest version, disabled",
        body: None,
        query: &[],
        answers: &[("200", "script detail"), PROBLEM],
    },
    Route {
        method: HttpMethod::Delete,
        path: "/v1/scripts/{name}",
        tag: "scripts",
        summary: "Disable a script (versions and history stay for audit)",
        body: None,
        query: &[],
        answers: &[("200", "script detail"), PROBLEM],
    },
    Route {
        method: HttpMethod::Post,
        path: "/v1/scripts/{name}/disable",
        tag: "scripts",
        summary: "Disable a script: new invocations are refused",
        body: None,
        query: &[],
        answers: &[("200", "script detail"), PROBLEM],
    },
    Route {
        method: HttpMethod::Post,
        path: "/v1/scripts/{name}/enable",
        tag: "scripts",
        summary: "Enable a disabled script",
        body: None,
        query: &[],
        answers: &[("200", "script detail"), PROBLEM],
    },
    Route {
        method: HttpMethod::Get,
        path: "/v1/scripts/{name}/versions",
        tag: "scripts",
        summary: "List versions, newest first",
        body: None,
        query: &[],
        answers: &[("200", "array of versions"), PROBLEM],
    },
    Route {
        method: HttpMethod::Get,
        path: "/v1/scripts/{name}/versions/{version}",
        tag: "scripts",
        summary: "Show one version: manifest, files and prepare (state, step, durations, cached, log, error)",
        body: None,
        query: &[],
        answers: &[("200", "version"), PROBLEM],
    },
    Route {
        method: HttpMethod::Put,
        path: "/v1/scripts/{name}/tags/{tag}",
        tag: "scripts",
        summary: "Point a tag at a version (atomic)",
        body: Some("{\"version\": \"sha256:…\"}"),
        query: &[],
        answers: &[("200", "script detail"), PROBLEM],
    },
    Route {
        method: HttpMethod::Post,
        path: "/v1/scripts/{name}/invoke",
        tag: "executions",
        summary: "Invoke a script; the body is the payload",
        body: Some("any JSON payload (validated against the version's params schema)"),
        query: &[
            ("version", "version id or unique prefix"),
            ("tag", "tag name"),
            ("timeout_ms", "time limit for this call"),
        ],
        answers: &[
            (
                "200",
                "execution record, whatever the outcome; header Runwarm-Outcome repeats its state",
            ),
            ("400", "invalid payload: problem with violations (E006)"),
            ("404", "unknown script, version or tag"),
            ("409", "script disabled"),
            ("413", "payload too large"),
            ("429", "queue full; Retry-After"),
            ("503", "no executor in time, or draining; Retry-After"),
        ],
    },
    Route {
        method: HttpMethod::Get,
        path: "/v1/executions",
        tag: "executions",
        summary: "List execution records, newest first",
        body: None,
        query: &[
            ("script", "script name"),
            (
                "state",
                "queued|provisioning|running|completed|failed|timeout|cancelled",
            ),
            ("limit", "1..1000, default 50"),
            ("before", "execution id: only older records (paging)"),
        ],
        answers: &[("200", "array of execution records")],
    },
    Route {
        method: HttpMethod::Get,
        path: "/v1/executions/{id}",
        tag: "executions",
        summary: "Show one execution record",
        body: None,
        query: &[],
        answers: &[("200", "execution record"), PROBLEM],
    },
    Route {
        method: HttpMethod::Get,
        path: "/v1/executions/{id}/events",
        tag: "executions",
        summary: "Server-Sent Events: state, stdout, stderr, log, end (live, replayed when late)",
        body: None,
        query: &[],
        answers: &[("200", "text/event-stream"), PROBLEM],
    },
    Route {
        method: HttpMethod::Post,
        path: "/v1/executions/{id}/cancel",
        tag: "executions",
        summary: "Cancel: a queued execution never runs, a running one's executor is killed",
        body: None,
        query: &[],
        answers: &[
            ("200", "the cancelled execution record"),
            ("409", "already ended"),
            PROBLEM,
        ],
    },
    Route {
        method: HttpMethod::Post,
        path: "/v1/executions/{id}/replay",
        tag: "executions",
        summary: "Run the same version with the same payload as a new execution (Prefer: respond-async)",
        body: None,
        query: &[],
        answers: &[
            ("200", "execution record"),
            ("202", "accepted: {\"id\"}"),
            PROBLEM,
        ],
    },
    Route {
        method: HttpMethod::Get,
        path: "/v1/pools",
        tag: "pools",
        summary: "Warm pools: idle, busy, starting, waiting, spawns, cold-start p50",
        body: None,
        query: &[],
        answers: &[("200", "array of pools")],
    },
    Route {
        method: HttpMethod::Post,
        path: "/v1/prewarm",
        tag: "pools",
        summary: "Start executors ahead of use",
        body: Some("{\"scripts\": [{\"name\", \"version\"?, \"tag\"?, \"count\"?}]}"),
        query: &[],
        answers: &[("202", "how many were started per script"), PROBLEM],
    },
    Route {
        method: HttpMethod::Get,
        path: "/v1/samples",
        tag: "samples",
        summary: "Bundled sample scripts",
        body: None,
        query: &[],
        answers: &[("200", "array of samples")],
    },
    Route {
        method: HttpMethod::Post,
        path: "/v1/samples/{id}/clone",
        tag: "samples",
        summary: "Register a sample, optionally under a new name",
        body: Some("{\"name\"?: \"new-name\"}"),
        query: &[],
        answers: &[
            ("201", "registered"),
            ("200", "already registered"),
            PROBLEM,
        ],
    },
];

/// Builds the document.
pub fn document() -> OpenApi {
    let mut paths = PathsBuilder::new();
    for r in ROUTES {
        let mut op = OperationBuilder::new().summary(Some(r.summary)).tag(r.tag);
        for segment in r.path.split('/') {
            if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                op = op.parameter(
                    ParameterBuilder::new()
                        .name(name)
                        .parameter_in(ParameterIn::Path)
                        .required(Required::True),
                );
            }
        }
        for (name, desc) in r.query {
            op = op.parameter(
                ParameterBuilder::new()
                    .name(*name)
                    .parameter_in(ParameterIn::Query)
                    .required(Required::False)
                    .description(Some(*desc)),
            );
        }
        if let Some(desc) = r.body {
            op = op.request_body(Some(
                RequestBodyBuilder::new()
                    .description(Some(desc))
                    .content("application/json", ContentBuilder::new().build())
                    .build(),
            ));
        }
        for (status, desc) in r.answers {
            let content_type = if status.starts_with('4') || status.starts_with('5') {
                "application/problem+json"
            } else {
                "application/json"
            };
            op = op.response(
                *status,
                ResponseBuilder::new()
                    .description(*desc)
                    .content(content_type, ContentBuilder::new().build()),
            );
        }
        paths = paths.path(r.path, PathItem::new(r.method.clone(), op));
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("runwarm")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some("Warm script execution over a Unix socket. Errors are application/problem+json."))
                .build(),
        )
        .paths(paths.build())
        .build()
}

pub(crate) async fn serve() -> Response {
    Json(document()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_of_the_table_is_documented() {
        let doc = serde_json::to_value(document()).unwrap();
        let table = include_str!("mod.rs");
        let mut checked = 0;
        let table = table.split(".fallback(").next().unwrap();
        // rustfmt may wrap a `.route(…)` call over lines, so split on the call, not on lines.
        for line in table.split(".route(").skip(1) {
            let path = line.split('"').nth(1).unwrap();
            let item = doc["paths"]
                .get(path)
                .unwrap_or_else(|| panic!("{path} is not documented"));
            for (call, method) in [
                ("get(", "get"),
                ("post(", "post"),
                ("put(", "put"),
                ("delete(", "delete"),
            ] {
                if line.contains(call) {
                    assert!(
                        item.get(method).is_some(),
                        "{method} {path} is not documented"
                    );
                    checked += 1;
                }
            }
        }
        assert!(
            checked >= 20,
            "only {checked} operations found in the route table"
        );
    }
}
