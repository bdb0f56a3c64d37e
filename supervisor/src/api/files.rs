//! `GET /v1/scripts/{name}/versions/{version}/files/{path}`: one file of a version, raw.
//!
//! What runs can be read back by those who may run it (the access middleware gives this route
//! the script's invoke role). The path is looked up among the version's own file paths as a
//! string, so nothing is joined onto the disk; `..`, absolute and empty segments are refused
//! before the lookup all the same, so a traversal attempt gets a 400 that says so rather than
//! an ordinary 404.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::openapi::{Forbidden, Internal};
use super::problem::Problem;

#[utoipa::path(
    get,
    path = "/v1/scripts/{name}/versions/{version}/files/{path}",
    operation_id = "get_version_file",
    tag = "scripts",
    summary = "Read one file of a version: its raw content with its content type",
    description = "The file as registered, byte for byte. `path` is relative to the version's root; \
        its `/` may be sent as is or as `%2F`. `ETag` is the file's sha256 and \
        `Runwarm-Executable` says whether it is materialised executable.",
    params(
        ("name" = String, Path, description = "Script name"),
        ("version" = String, Path, description = "Version id, unique prefix of at least 7 hex digits, or manifest label"),
        ("path" = String, Path, description = "The file's path in the version, e.g. `lib/util.py`"),
    ),
    responses(
        (status = 200, description = "The file's content",
            // Every type `content_type` below can answer with (each text type with
            // `charset=utf-8`).
            content(
                (Vec<u8> = "application/octet-stream"),
                (String = "text/plain"),
                (String = "text/x-python"),
                (String = "text/javascript"),
                (String = "text/x-shellscript"),
                (String = "text/markdown"),
                (String = "text/html"),
                (String = "text/css"),
                (String = "text/csv"),
                (String = "application/json"),
                (String = "application/toml"),
                (String = "application/yaml"),
                (Vec<u8> = "application/wasm"),
                (Vec<u8> = "application/zip"),
                (Vec<u8> = "image/png"),
            ),
            headers(
                ("ETag" = String, description = "The file's sha256, quoted"),
                ("Runwarm-Executable" = bool, description = "Whether the file is executable"),
            )),
        (status = 400, description = "A path with `..`, `.` or empty segments, or an ambiguous version prefix or label",
            body = Problem, content_type = "application/problem+json"),
        Forbidden,
        (status = 404, description = "Unknown script, version or file", body = Problem,
            content_type = "application/problem+json"),
        Internal,
    )
)]
pub(crate) async fn read(
    State(app): State<AppState>,
    Path((name, version, path)): Path<(String, String, String)>,
) -> Result<Response, Problem> {
    if path
        .split('/')
        .any(|segment| segment.is_empty() || segment == "." || segment == "..")
    {
        return Err(Problem::bad_request(format!(
            "file path {path:?} is not a relative path inside the version"
        ))
        .hint(Some(
            "paths are relative, `/`-separated, without `.`, `..` or empty segments".into(),
        )));
    }
    let (_, info, bytes) = app
        .registry
        .read_file(&name, &version, &path)
        .map_err(|e| Problem::from(&e))?;
    let kind = content_type(&info.path, &bytes);
    let mut resp = (StatusCode::OK, bytes).into_response();
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", info.sha256)) {
        headers.insert(header::ETAG, etag);
    }
    headers.insert(
        "runwarm-executable",
        HeaderValue::from_static(if info.executable { "true" } else { "false" }),
    );
    Ok(resp)
}

/// The content type of a script file: from its extension for the languages runwarm runs and
/// their usual companions, else `text/plain` when it is UTF-8 and `application/octet-stream`
/// when it is not. Text types always say `charset=utf-8`, which is what a bundle's text is.
fn content_type(path: &str, bytes: &[u8]) -> &'static str {
    let extension = path
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    let text = std::str::from_utf8(bytes).is_ok();
    match extension.as_str() {
        "json" => "application/json",
        "toml" => "application/toml",
        "js" | "mjs" | "cjs" => "text/javascript; charset=utf-8",
        "py" => "text/x-python; charset=utf-8",
        "sh" | "bash" => "text/x-shellscript; charset=utf-8",
        "md" => "text/markdown; charset=utf-8",
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        "yaml" | "yml" => "application/yaml",
        "wasm" => "application/wasm",
        "zip" | "jar" => "application/zip",
        "png" => "image/png",
        _ if text => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::content_type;

    #[test]
    fn content_types_follow_the_extension_then_the_bytes() {
        assert_eq!(
            content_type("main.py", b"x"),
            "text/x-python; charset=utf-8"
        );
        assert_eq!(content_type("lib/DATA.JSON", b"{}"), "application/json");
        assert_eq!(
            content_type("README", b"hello"),
            "text/plain; charset=utf-8"
        );
        assert_eq!(
            content_type("blob.bin", &[0xff, 0xfe]),
            "application/octet-stream"
        );
    }
}
