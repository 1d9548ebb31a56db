//! HTTP routes: `/ws` (the signaling WebSocket), `/api/meetings`, `/healthz`, `/metrics`, and the
//! web UI (`/`, `/m/ROOM`, its assets).

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use confab_proto::{ErrorCode, RoomId};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::OwnedSemaphorePermit;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use crate::server::State;
use crate::{connection, ui};

pub type Body = Full<Bytes>;

/// Origins of the desktop app's webview (Linux/macOS, then Windows).
const DESKTOP_ORIGINS: [&str; 3] =
    ["tauri://localhost", "http://tauri.localhost", "https://tauri.localhost"];

pub async fn route(
    req: Request<Incoming>,
    address: IpAddr,
    state: Arc<State>,
    permit: Option<Arc<OwnedSemaphorePermit>>,
) -> Result<Response<Body>, Infallible> {
    let Some(permit) = permit else {
        let mut resp = text(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is at its connection limit; try again shortly\n",
        );
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        return Ok(resp);
    };
    let get = matches!(*req.method(), Method::GET | Method::HEAD);
    let mut resp = match req.uri().path() {
        "/ws" => websocket(req, address, state, permit),
        // Degraded still answers 200: the instance serves its own rooms, and a load balancer
        // that took every instance out while Redis is down would end every meeting.
        "/healthz" if get => match state.cluster_up() {
            Some(false) => text(StatusCode::OK, "degraded: Redis is unreachable\n"),
            _ => text(StatusCode::OK, "ok\n"),
        },
        "/metrics" if get => {
            let (rooms, peers) = state.relay.counts();
            let cluster_up = state.cluster_up();
            let mut resp = text(StatusCode::OK, state.metrics.render(rooms, peers, cluster_up));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            resp
        }
        "/api/meetings" if req.method() == Method::POST => {
            create_meeting(req.headers(), address, &state)
        }
        "/api/meetings" | "/healthz" | "/metrics" => {
            method_not_allowed(if get { "POST" } else { "GET, HEAD" })
        }
        path if get => ui::serve(path, &state.config.ui_dir).await,
        _ => method_not_allowed("GET, HEAD"),
    };
    let headers = resp.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Room ids are in our paths: never hand them to another site in a Referer.
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    Ok(resp)
}

pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    resp
}

fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut resp = text(StatusCode::METHOD_NOT_ALLOWED, format!("use {allow}\n"));
    resp.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
    resp
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// The token of an `Authorization: Bearer TOKEN` header.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = header_str(headers, header::AUTHORIZATION)?;
    let (scheme, token) = value.split_once(' ')?;
    Some(token.trim()).filter(|t| scheme.eq_ignore_ascii_case("bearer") && !t.is_empty())
}

/// 401, saying why and asking for a bearer token.
fn token_refused(why: &'static str) -> Response<Body> {
    let mut resp = text(StatusCode::UNAUTHORIZED, why);
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"confab\""));
    resp
}

/// `Host` if it is a plain `host[:port]`, else `None`.
fn request_host(headers: &HeaderMap) -> Option<&str> {
    header_str(headers, header::HOST).filter(|h| {
        !h.is_empty() && !h.contains(|c: char| c == '/' || c == '@' || c.is_whitespace())
    })
}

/// Whether a browser page from `origin` may open the signaling socket.
fn origin_allowed(origin: &str, headers: &HeaderMap, state: &State) -> bool {
    let origin = origin.trim_end_matches('/');
    let same = |a: &str, b: &str| a.trim_end_matches('/').eq_ignore_ascii_case(b);
    if DESKTOP_ORIGINS.iter().any(|o| same(o, origin))
        || state.config.allow_origins.iter().any(|o| same(o, origin))
    {
        return true;
    }
    match &state.config.public_url {
        // Configured: exactly the public origin.
        Some(public) => public_origin(public).is_some_and(|o| same(&o, origin)),
        // Not configured: the page must come from the host it asked for (scheme aside, so that a
        // TLS-terminating proxy in front still works).
        None => {
            let authority = origin.split_once("://").map_or("", |(_, rest)| rest);
            request_host(headers).is_some_and(|host| same(host, authority))
        }
    }
}

/// `scheme://host[:port]` of a URL.
fn public_origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split('/').next()?;
    Some(format!("{scheme}://{authority}"))
}

fn websocket(
    req: Request<Incoming>,
    address: IpAddr,
    state: Arc<State>,
    permit: Arc<OwnedSemaphorePermit>,
) -> Response<Body> {
    let headers = req.headers();
    let is_upgrade = req.method() == Method::GET
        && has_token(headers, header::CONNECTION, "upgrade")
        && has_token(headers, header::UPGRADE, "websocket");
    if !is_upgrade {
        let mut resp = text(
            StatusCode::UPGRADE_REQUIRED,
            "this is Confab's signaling endpoint: connect with a WebSocket (GET with Upgrade: websocket)\n",
        );
        resp.headers_mut().insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        return resp;
    }
    if header_str(headers, header::SEC_WEBSOCKET_VERSION) != Some("13") {
        let mut resp =
            text(StatusCode::UPGRADE_REQUIRED, "only WebSocket version 13 is supported\n");
        resp.headers_mut().insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        return resp;
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return text(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key\n");
    };
    // Browsers always send Origin; native clients (the CLI, the desktop core) send none.
    if let Some(origin) = headers.get(header::ORIGIN) {
        let allowed = origin.to_str().is_ok_and(|o| origin_allowed(o, headers, &state));
        if !allowed {
            return text(StatusCode::FORBIDDEN, "this origin may not use this signaling server\n");
        }
    }
    let accept = derive_accept_key(key.as_bytes());
    let max = state.config.max_message_bytes;
    let ws_config = WebSocketConfig::default()
        // Small buffers: ten thousand idle sockets must not cost 128 KiB each.
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_write_buffer_size(max.saturating_mul(4).max(64 * 1024))
        .max_frame_size(Some(max))
        .max_message_size(Some(max));
    tokio::spawn(async move {
        let _permit = permit;
        match hyper::upgrade::on(req).await {
            Ok(upgraded) => {
                let io = TokioIo::new(upgraded);
                let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(ws_config)).await;
                connection::serve(ws, address, state).await;
            }
            Err(e) => tracing::debug!(error = %e, "upgrade failed"),
        }
    });
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    resp
}

/// `POST /api/meetings`: a fresh room id and its link (without the key, which the client makes
/// and appends to the fragment).
fn create_meeting(headers: &HeaderMap, address: IpAddr, state: &State) -> Response<Body> {
    if state.relay.tokens_required() && bearer_token(headers).is_none() {
        return token_refused("this server makes meetings only for holders of an access token\n");
    }
    let mut meetings = state.meetings.lock().unwrap_or_else(|e| e.into_inner());
    if !meetings.allow(std::time::Instant::now(), address) {
        let wait = meetings.retry_after().as_secs().max(1);
        drop(meetings);
        state.metrics.rejected(ErrorCode::RateLimited);
        let mut resp = text(
            StatusCode::TOO_MANY_REQUESTS,
            "too many meetings made from your address; try again in a minute\n",
        );
        if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return resp;
    }
    drop(meetings);
    let base = match (&state.config.public_url, request_host(headers)) {
        (Some(public), _) => public.trim_end_matches('/').to_owned(),
        (None, Some(host)) => format!("{}://{host}", if state.secure { "https" } else { "http" }),
        (None, None) => return text(StatusCode::BAD_REQUEST, "missing or malformed Host header\n"),
    };
    let room = RoomId::random();
    if !state.relay.make(&room, bearer_token(headers), &state.metrics) {
        return token_refused("this server refused your access token\n");
    }
    let body = serde_json::json!({ "room": room, "link": format!("{base}/m/{room}") });
    let mut resp = text(StatusCode::OK, body.to_string());
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
