//! The console's page, embedded in the binary: nothing is fetched from anywhere at run time.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};

use super::Body;

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    path: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const ASSETS: [Asset; 4] = [
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        bytes: include_bytes!("assets/index.html"),
    },
    Asset {
        path: "/console.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("assets/console.js"),
    },
    Asset {
        path: "/console.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("assets/console.css"),
    },
    // Named by the page, so the browser asks for it instead of a 404 on /favicon.ico.
    Asset {
        path: "/favicon.svg",
        content_type: "image/svg+xml",
        bytes: include_bytes!("assets/favicon.svg"),
    },
];

/// Only the console's own files, no inline script, no framing by other sites.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The asset served at `path`.
pub fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// A 200 answer with the asset and headers that keep it from being framed or sniffed.
pub fn respond(asset: &'static Asset) -> Response<Body> {
    let body = Full::new(Bytes::from_static(asset.bytes))
        .map_err(|e| match e {})
        .boxed_unsync();
    let mut answer = Response::new(body);
    *answer.status_mut() = StatusCode::OK;
    let headers = answer.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_found_and_nothing_else() {
        for asset in &ASSETS {
            assert!(find(asset.path).is_some());
            assert!(!asset.bytes.is_empty());
        }
        assert!(find("/../Cargo.toml").is_none());
        assert!(find("/index.html").is_none());
        let page = String::from_utf8_lossy(ASSETS[0].bytes);
        assert!(
            !page.contains("http://") && !page.contains("https://"),
            "nothing remote"
        );
    }
}
