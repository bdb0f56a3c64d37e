//! The console's page, embedded in the binary: nothing is fetched from anywhere at run time.
//!
//! `assets/dist/` is the bundle `console-ui/` builds (committed; `tests/tests/e2e/
//! console_bundle.rs` proves it matches its sources). Entries keep plain names and are
//! revalidated on each load; split chunks, Monaco's workers' imports and fonts carry a content
//! hash in their names, so they are cached for good.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use include_dir::{Dir, include_dir};

use super::Body;

static DIST: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/src/console/assets/dist");

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    content_type: &'static str,
    bytes: &'static [u8],
    immutable: bool,
}

/// Only the console's own files, no inline script, no framing by other sites. Styles allow
/// `'unsafe-inline'` because Monaco writes `<style>` elements at run time (theme colours,
/// decorations) and has no nonce hook; scripts, workers, fonts and connections stay `'self'`
/// (which, in CSP level 3, also covers the console's own `ws:` language-server socket). Images
/// may be `data:` URLs, which Monaco's stylesheet uses for a few icons.
const CSP: &str = "default-src 'self'; script-src 'self'; worker-src 'self'; \
                   style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
                   form-action 'self'";

/// The asset served at `path`: `/` is the page, anything else a file of the bundle.
pub fn find(path: &str) -> Option<Asset> {
    let name = match path {
        "/" => "index.html",
        // The page is served at `/` only, so there is one URL to hold the token exchange.
        "/index.html" => return None,
        p => p.strip_prefix('/')?,
    };
    let file = DIST.get_file(name)?;
    Some(Asset {
        content_type: content_type(name),
        bytes: file.contents(),
        immutable: name.starts_with("chunks/") || name.starts_with("assets/"),
    })
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("ttf") => "font/ttf",
        Some("woff2") => "font/woff2",
        Some("json") => "application/json",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    }
}

/// A 200 answer with the asset and headers that keep it from being framed or sniffed.
pub fn respond(asset: &Asset) -> Response<Body> {
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
    // Hashed names never change content: cache them for good. The page and the entries keep
    // their names across builds, so the browser asks again each time (a loopback round trip).
    let cache = if asset.immutable {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_file(dir: &'static Dir<'static>, out: &mut Vec<&'static include_dir::File<'static>>) {
        out.extend(dir.files());
        for d in dir.dirs() {
            every_file(d, out);
        }
    }

    #[test]
    fn every_bundled_file_is_served_with_a_known_type() {
        let mut files = Vec::new();
        every_file(&DIST, &mut files);
        assert!(files.len() > 5, "the bundle is in assets/dist");
        for f in files {
            let name = f.path().display().to_string();
            let path = if name == "index.html" {
                "/".to_owned()
            } else {
                format!("/{name}")
            };
            let asset = find(&path).unwrap_or_else(|| panic!("{path} is not served"));
            assert_ne!(asset.content_type, "application/octet-stream", "{path}");
            assert!(!asset.bytes.is_empty(), "{path}");
        }
    }

    #[test]
    fn the_page_is_at_the_root_only_and_nothing_outside_the_bundle() {
        let page = find("/").unwrap();
        assert_eq!(page.content_type, "text/html; charset=utf-8");
        assert!(find("/index.html").is_none());
        assert!(find("/../Cargo.toml").is_none());
        assert!(find("/chunks/../../assets.rs").is_none());
        assert!(find("/nope.js").is_none());
        let text = String::from_utf8_lossy(page.bytes);
        assert!(
            !text.contains("http://") && !text.contains("https://"),
            "nothing remote"
        );
        assert!(find("/app.js").is_some_and(|a| !a.immutable));
        assert!(find("/monaco.js").is_some_and(|a| !a.immutable));
    }
}
