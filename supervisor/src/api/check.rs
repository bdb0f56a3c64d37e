//! `POST /v1/check` and `POST /v1/format`: the console editor's diagnostics and formatting
//! (`crate::check`). Both take the administrator role, as registration does: they run the
//! runtime's tools over code the caller sends, which only those who may register code should
//! be able to make the daemon do.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::AppState;
use super::body::{from_object, json_body};
use super::openapi::{Forbidden, Internal, SlowBody};
use super::problem::Problem;
use crate::check::{
    CheckAnswer, CheckRequest, FormatAnswer, FormatError, FormatRequest, RequestError, ToolError,
};
use crate::execution::ErrorCode;

#[utoipa::path(
    post,
    path = "/v1/check",
    operation_id = "check_source",
    tag = "editor",
    summary = "Check source files with the runtime's own checkers",
    description = "Runs every installed checker the runtime declares (`[[check]]` in its \
        definition: the interpreter's compile, pyflakes/ruff, `bash -n`, shellcheck, gofmt, \
        javac, mcs, gcc/g++ `-fsyntax-only`, `node --check`, esbuild) over the files sent, \
        confined like a prepare step but without network, within `[check] timeout_s` for the \
        whole request. Lines and columns are 1-based. `checkers` says for each declared checker \
        whether it ran, and if not why (not installed, timed out, failed): a checker that timed \
        out is reported there, not as an error of the request. Administrators only (it runs \
        tools over the code sent, as registering does).",
    request_body(content = CheckRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "What the checkers found", body = CheckAnswer),
        (status = 400, description = "Not the documented body, an unsafe path, a `path` not \
            among `files`, no files, or an unknown runtime (E006)", body = Problem,
            content_type = "application/problem+json"),
        Forbidden,
        (status = 413, description = "The body, the number of files or their size is over \
            `[check]`'s limits", body = Problem, content_type = "application/problem+json"),
        SlowBody,
        (status = 422, description = "The runtime is not available on this host", body = Problem,
            content_type = "application/problem+json"),
        Internal,
    )
)]
pub(crate) async fn check(State(app): State<AppState>, body: Body) -> Result<Response, Problem> {
    let limit = app.checks.settings().max_body_bytes();
    let body = json_body(body, limit, Value::Null, app.config.body_rate).await?;
    let req: CheckRequest = from_object(
        body,
        "{\"runtime\": …, \"files\": {\"path\": \"content\", …}, \"path\"?: …}",
    )?;
    let answer = app
        .checks
        .check(app.pools.launcher(), req)
        .await
        .map_err(|e| Problem::from(&e))?;
    Ok(Json(answer).into_response())
}

#[utoipa::path(
    post,
    path = "/v1/format",
    operation_id = "format_source",
    tag = "editor",
    summary = "Format one file with the runtime's formatter",
    description = "Runs the first installed formatter the runtime declares for the file's \
        extension (`[[format]]`: ruff format, prettier, gofmt, shfmt, clang-format) on the \
        content, confined as a check is. A content the formatter refuses is 422 `syntax-error`; \
        no formatter installed is 422 `formatter-unavailable` with what to install in the hint. \
        Administrators only.",
    request_body(content = FormatRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The formatted content", body = FormatAnswer),
        (status = 400, description = "Not the documented body, an unsafe path or an unknown \
            runtime (E006)", body = Problem, content_type = "application/problem+json"),
        Forbidden,
        (status = 413, description = "The body or the content is over `[check]`'s limits",
            body = Problem, content_type = "application/problem+json"),
        SlowBody,
        (status = 422, description = "The formatter found a syntax error (`syntax-error`, E001), \
            none is installed for the file (`formatter-unavailable`), it ran over its time \
            (`format-timeout`, E004) or failed otherwise, or the runtime is not available",
            body = Problem, content_type = "application/problem+json"),
        Internal,
    )
)]
pub(crate) async fn format(State(app): State<AppState>, body: Body) -> Result<Response, Problem> {
    let limit = app.checks.settings().max_body_bytes();
    let body = json_body(body, limit, Value::Null, app.config.body_rate).await?;
    let req: FormatRequest = from_object(body, "{\"runtime\": …, \"path\": …, \"content\": …}")?;
    let answer = app
        .checks
        .format(app.pools.launcher(), req)
        .await
        .map_err(|e| Problem::from(&e))?;
    Ok(Json(answer).into_response())
}

impl From<&ToolError> for Problem {
    fn from(e: &ToolError) -> Self {
        let (status, slug, hint) = match e {
            ToolError::Request(r) => match r {
                RequestError::InvalidPath { .. } => (
                    StatusCode::BAD_REQUEST,
                    "invalid-path",
                    Some("send plain relative paths such as `main.py` or `lib/util.py`"),
                ),
                RequestError::PathNotSent(_) => (StatusCode::BAD_REQUEST, "path-not-sent", None),
                RequestError::NoFiles => (StatusCode::BAD_REQUEST, "no-files", None),
                RequestError::TooManyFiles { .. } => (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too-many-files",
                    Some("check fewer files at once, or raise check.max_files"),
                ),
                RequestError::TooLarge { .. } => (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "source-too-large",
                    Some("check fewer files at once, or raise check.max_kb"),
                ),
            },
            ToolError::UnknownRuntime { .. } => (
                StatusCode::BAD_REQUEST,
                "unknown-runtime",
                Some("GET /v1/runtimes lists the runtimes"),
            ),
            ToolError::RuntimeUnavailable { .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "runtime-unavailable",
                Some(
                    "install the runtime's toolchain; GET /v1/runtimes shows what its probe found",
                ),
            ),
            ToolError::Scratch { .. } => {
                return Problem::internal(super::problem::error_chain(e));
            }
        };
        Problem::new(status, slug, e.to_string())
            .code(ErrorCode::E006)
            .hint(hint.map(str::to_owned))
    }
}

impl From<&FormatError> for Problem {
    fn from(e: &FormatError) -> Self {
        let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
        match e {
            FormatError::Tool(inner) => Problem::from(inner),
            FormatError::Unavailable { install, .. } => {
                let hint = if install.is_empty() {
                    "this runtime declares no formatter for files with this extension".to_owned()
                } else {
                    format!("install one: {}", install.join("; or "))
                };
                Problem::new(unprocessable, "formatter-unavailable", e.to_string())
                    .code(ErrorCode::E006)
                    .hint(Some(hint))
            }
            FormatError::Syntax { .. } => {
                Problem::new(unprocessable, "syntax-error", e.to_string())
                    .code(ErrorCode::E001)
                    .hint(Some(
                        "fix the syntax error first; POST /v1/check shows where it is".into(),
                    ))
            }
            FormatError::Limit { time: true, .. } => {
                Problem::new(unprocessable, "format-timeout", e.to_string())
                    .code(ErrorCode::E004)
                    .hint(Some(
                        "raise check.timeout_s if the file is really that large".into(),
                    ))
            }
            FormatError::Limit { time: false, .. } => {
                Problem::new(unprocessable, "format-failed", e.to_string()).code(ErrorCode::E005)
            }
        }
    }
}
