//! Errors as `application/problem+json` (RFC 9457), with runwarm's error code and a hint.
//!
//! Every domain error the API can meet is mapped to a [`Problem`] here, in one place per error
//! type, so the status codes stay consistent across routes.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::execution::ErrorCode;

/// One violation of a request's schema.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ViolationView {
    /// JSON pointer into the payload.
    pub pointer: String,
    /// What is wrong there.
    pub message: String,
}

/// A problem answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI-ish identifier of the problem kind.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// What happened in this case.
    pub detail: String,
    /// runwarm error code, when one applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<ErrorCode>,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Schema violations.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<ViolationView>,
    /// Seconds after which a retry may succeed (also sent as `Retry-After`).
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

impl Problem {
    /// A problem with a status, a short slug for `type`, and a detail.
    pub fn new(status: StatusCode, slug: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("https://runwarm.dev/problems/{slug}"),
            title: status.canonical_reason().unwrap_or("error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            code: None,
            hint: None,
            violations: Vec::new(),
            retry_after: None,
        }
    }

    /// Sets the error code.
    pub fn code(mut self, code: ErrorCode) -> Self {
        self.code = Some(code);
        self
    }

    /// Sets a hint.
    pub fn hint(mut self, hint: Option<String>) -> Self {
        self.hint = hint;
        self
    }

    /// Sets `Retry-After`.
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// 400 for a body that is not what the route takes.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", detail)
    }

    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", detail)
    }

    /// 507 while the disk under the state directory is full: durable work cannot be promised.
    pub fn disk_full(space: &crate::history::Space) -> Self {
        Self::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "disk-full",
            format!(
                "the disk under the state directory {} is full ({} bytes free): asynchronous \
                 invocations are refused until space returns",
                space.dir().display(),
                space.free_bytes()
            ),
        )
        .retry_after(5)
        .hint(Some(
            "free space on that file system; synchronous invocations keep working and nothing \
             already accepted is lost"
                .into(),
        ))
    }

    /// 500 for faults of the daemon itself.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", detail).code(ErrorCode::E005)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut resp = (status, body).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        // The body was not read to its end: the connection cannot carry another request.
        if matches!(
            status,
            StatusCode::REQUEST_TIMEOUT | StatusCode::PAYLOAD_TOO_LARGE
        ) {
            h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        resp
    }
}

// === registry errors ===

use crate::registry::{FileError, RegisterError, RegistryError, ResolveError, TagError};

impl From<&RegistryError> for Problem {
    fn from(e: &RegistryError) -> Self {
        Problem::internal(error_chain(e)).hint(e.hint())
    }
}

impl From<&RegisterError> for Problem {
    fn from(e: &RegisterError) -> Self {
        let (status, slug) = match e {
            RegisterError::InvalidBody { .. } => (StatusCode::BAD_REQUEST, "invalid-body"),
            RegisterError::InvalidName { .. } => (StatusCode::BAD_REQUEST, "invalid-name"),
            RegisterError::InvalidPath { .. } => (StatusCode::BAD_REQUEST, "invalid-path"),
            RegisterError::InvalidFile { .. } => (StatusCode::BAD_REQUEST, "invalid-file"),
            RegisterError::TooManyFiles { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too-many-files"),
            RegisterError::FileTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "file-too-large"),
            RegisterError::BundleTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "bundle-too-large")
            }
            RegisterError::EntryMissing { .. } => (StatusCode::BAD_REQUEST, "entry-missing"),
            RegisterError::InvalidManifest { .. } => (StatusCode::BAD_REQUEST, "invalid-manifest"),
            RegisterError::UnknownRuntime { .. } => (StatusCode::BAD_REQUEST, "unknown-runtime"),
            RegisterError::InvalidSchema { .. } => (StatusCode::BAD_REQUEST, "invalid-schema"),
            RegisterError::Storage(inner) => return Problem::from(inner),
        };
        Problem::new(status, slug, e.to_string())
            .code(ErrorCode::E006)
            .hint(e.hint())
    }
}

impl From<&ResolveError> for Problem {
    fn from(e: &ResolveError) -> Self {
        let (status, slug) = match e {
            ResolveError::UnknownScript { .. } => (StatusCode::NOT_FOUND, "unknown-script"),
            ResolveError::UnknownVersion { .. } => (StatusCode::NOT_FOUND, "unknown-version"),
            ResolveError::AmbiguousVersion { .. } => (StatusCode::BAD_REQUEST, "ambiguous-version"),
            ResolveError::AmbiguousLabel { .. } => (StatusCode::BAD_REQUEST, "ambiguous-label"),
            ResolveError::UnknownTag { .. } => (StatusCode::NOT_FOUND, "unknown-tag"),
            ResolveError::Disabled { .. } => (StatusCode::CONFLICT, "script-disabled"),
            ResolveError::Storage(inner) => return Problem::from(inner),
        };
        Problem::new(status, slug, e.to_string())
            .code(ErrorCode::E006)
            .hint(e.hint())
    }
}

impl From<&FileError> for Problem {
    fn from(e: &FileError) -> Self {
        match e {
            FileError::Version(inner) => Problem::from(inner),
            FileError::UnknownFile { .. } => {
                Problem::new(StatusCode::NOT_FOUND, "unknown-file", e.to_string()).hint(e.hint())
            }
            FileError::Storage(inner) => Problem::from(inner),
        }
    }
}

impl From<&TagError> for Problem {
    fn from(e: &TagError) -> Self {
        let (status, slug) = match e {
            TagError::InvalidTag { .. } => (StatusCode::BAD_REQUEST, "invalid-tag"),
            TagError::Target(inner) => return Problem::from(inner),
            TagError::Storage(inner) => return Problem::from(inner),
        };
        Problem::new(status, slug, e.to_string()).hint(e.hint())
    }
}

/// An error and its sources, joined with `: `, for details of internal errors.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}
