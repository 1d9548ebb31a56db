//! Serves the built web UI from `--ui-dir`: `index.html` for `/` and for every valid `/m/ROOM`,
//! and the build's static files. Paths are checked segment by segment, so nothing outside the
//! directory can be named.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use confab_proto::RoomId;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};

use crate::http::{Body, text};

/// The page's policy: our own scripts (and the Automerge wasm), our own origin for signaling,
/// media from the browser itself.
const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; media-src 'self' blob: mediastream:; \
    connect-src 'self'; worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

pub async fn serve(path: &str, dir: &Path) -> Response<Body> {
    if path == "/" || path == "/index.html" {
        return index(dir).await;
    }
    if let Some(room) = path.strip_prefix("/m/") {
        return match room.trim_end_matches('/').parse::<RoomId>() {
            Ok(_) => index(dir).await,
            Err(_) => page(
                StatusCode::NOT_FOUND,
                "This meeting link is malformed",
                "The meeting id in the address is not valid. Check that you copied the whole link.",
            ),
        };
    }
    let Some(file) = safe_path(dir, path) else { return not_found() };
    match tokio::fs::read(&file).await {
        Ok(bytes) => {
            let mut resp = Response::new(Full::new(Bytes::from(bytes)));
            let h = resp.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(&file)));
            // Vite puts content-hashed names under assets/: they never change.
            let cache = if path.starts_with("/assets/") {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            };
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
            resp
        }
        Err(_) => not_found(),
    }
}

async fn index(dir: &Path) -> Response<Body> {
    match tokio::fs::read(dir.join("index.html")).await {
        Ok(bytes) => html(StatusCode::OK, Bytes::from(bytes)),
        Err(_) => page(
            StatusCode::SERVICE_UNAVAILABLE,
            "The Confab web UI is not built",
            "This server has no built web UI to serve. Build it with <code>npm run build -w ui</code> \
             (or start everything with <code>make run</code>), or point <code>--ui-dir</code> at a build.",
        ),
    }
}

fn html(status: StatusCode, body: Bytes) -> Response<Body> {
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    resp
}

/// A plain page of our own: a heading and one paragraph (trusted, static HTML).
fn page(status: StatusCode, title: &str, body: &str) -> Response<Body> {
    let doc = format!(
        "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · Confab</title>\
         <style>body{{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#1f2933}}\
         @media (prefers-color-scheme:dark){{body{{background:#111417;color:#e4e7eb}}}}</style>\
         <h1>{title}</h1><p>{body}</p></html>"
    );
    html(status, Bytes::from(doc))
}

fn not_found() -> Response<Body> {
    text(StatusCode::NOT_FOUND, "not found\n")
}

/// `dir` joined with the URL path, if every segment is a plain name (no `..`, no hidden files,
/// no escapes or separators of any platform).
fn safe_path(dir: &Path, url_path: &str) -> Option<PathBuf> {
    let mut out = dir.to_path_buf();
    for segment in url_path.strip_prefix('/')?.split('/') {
        let plain = !segment.is_empty()
            && !segment.starts_with('.')
            && segment
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~'));
        if !plain {
            return None;
        }
        out.push(segment);
    }
    Some(out)
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "wasm" => "application/wasm",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "webp" => "image/webp",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        "webmanifest" => "application/manifest+json",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_paths_inside_the_directory() {
        let dir = Path::new("/srv/ui");
        assert_eq!(
            safe_path(dir, "/assets/app-1x2.js"),
            Some(PathBuf::from("/srv/ui/assets/app-1x2.js"))
        );
        for bad in
            ["/../etc/passwd", "/assets/../../x", "/.env", "/a//b", "/a%2e%2e/b", "/a\\b", "/", "x"]
        {
            assert_eq!(safe_path(dir, bad), None, "{bad}");
        }
    }
}
