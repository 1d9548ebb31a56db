//! The HTTP side: health, metrics, meeting creation, the web UI, TLS, and logs without addresses.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use confab_proto::{ErrorCode, MeetingKey, MeetingLink, RoomId, ServerMessage};
use confab_signaling::{Config, TlsFiles};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

fn ui_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.html"), "<!doctype html><title>Confab UI</title>")
        .unwrap();
    std::fs::create_dir(dir.path().join("assets")).unwrap();
    std::fs::write(dir.path().join("assets/app-3f2a.js"), "console.log('hi')").unwrap();
    std::fs::write(dir.path().join(".env"), "SECRET=1").unwrap();
    dir
}

#[tokio::test]
async fn health_metrics_and_method_checks() {
    let server = TestServer::start(Config::default()).await;
    let health = http(server.addr, "GET", "/healthz", &[], b"").await;
    assert_eq!((health.status, health.body_text().as_str()), (200, "ok\n"));
    let metrics = http(server.addr, "GET", "/metrics", &[], b"").await;
    assert_eq!(metrics.status, 200);
    assert!(metrics.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"));
    let text = metrics.body_text();
    for name in [
        "confab_connections",
        "confab_websockets",
        "confab_rooms 0",
        "confab_messages_relayed_total 0",
        "confab_messages_rejected_total{reason=\"rate_limited\"} 0",
    ] {
        assert!(text.contains(name), "{name} missing from\n{text}");
    }
    let wrong = http(server.addr, "GET", "/api/meetings", &[], b"").await;
    assert_eq!((wrong.status, wrong.header("allow").as_deref()), (405, Some("POST")));
    assert_eq!(http(server.addr, "DELETE", "/m/x", &[], b"").await.status, 405);
}

#[tokio::test]
async fn creating_a_meeting_gives_a_link_people_can_open() {
    let dir = ui_dir();
    let server = TestServer::start(Config { ui_dir: dir.path().into(), ..Config::default() }).await;
    let resp = http(server.addr, "POST", "/api/meetings", &[], b"").await;
    assert_eq!(resp.status, 200);
    let body: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    let room: RoomId = body["room"].as_str().unwrap().parse().unwrap();
    let link = body["link"].as_str().unwrap();
    assert_eq!(link, format!("http://{}/m/{room}", server.addr));
    // The client appends the key; the result is a meeting link.
    let full: MeetingLink = format!("{link}#k={}", MeetingKey::random().as_str()).parse().unwrap();
    assert_eq!(full.room(), &room);
    assert_eq!(full.websocket_url(), server.ws_url());
    // Opening it serves the UI.
    let page = http(server.addr, "GET", &format!("/m/{room}"), &[], b"").await;
    assert_eq!(page.status, 200);
    assert!(page.body_text().contains("Confab UI"));
    assert!(page.header("content-security-policy").unwrap().contains("default-src 'self'"));
    assert_eq!(page.header("referrer-policy").as_deref(), Some("no-referrer"));
    // Two creations never give the same room.
    let again = http(server.addr, "POST", "/api/meetings", &[], b"").await;
    assert_ne!(again.body, resp.body);
}

#[tokio::test]
async fn public_url_makes_the_links_and_is_the_only_browser_origin() {
    let server = TestServer::start(Config {
        public_url: Some("https://meet.example.org/".into()),
        ..Config::default()
    })
    .await;
    let resp = http(server.addr, "POST", "/api/meetings", &[], b"").await;
    let body: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    assert!(body["link"].as_str().unwrap().starts_with("https://meet.example.org/m/"));
    let mut ok = Client::connect(&server, "public", Some("https://meet.example.org")).await;
    ok.join(&RoomId::random()).await;
    // The host the request came to no longer makes an origin acceptable by itself.
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        server.ws_url(),
    )
    .unwrap();
    req.headers_mut().insert("origin", format!("http://{}", server.addr).parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 403)
        }
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn the_ui_is_served_safely() {
    let dir = ui_dir();
    let server = TestServer::start(Config { ui_dir: dir.path().into(), ..Config::default() }).await;
    let home = http(server.addr, "GET", "/", &[], b"").await;
    assert_eq!(
        (home.status, home.header("content-type").as_deref()),
        (200, Some("text/html; charset=utf-8"))
    );
    let asset = http(server.addr, "GET", "/assets/app-3f2a.js", &[], b"").await;
    assert_eq!(asset.status, 200);
    assert_eq!(asset.header("content-type").as_deref(), Some("text/javascript; charset=utf-8"));
    assert!(asset.header("cache-control").unwrap().contains("immutable"));
    assert_eq!(asset.header("x-content-type-options").as_deref(), Some("nosniff"));
    // The page loads nothing from elsewhere, cannot be framed, and never sends its room id on.
    let csp = home.header("content-security-policy").expect("a CSP on the page");
    for rule in
        ["default-src 'self'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"]
    {
        assert!(csp.contains(rule), "the CSP lacks {rule}: {csp}");
    }
    assert_eq!(home.header("referrer-policy").as_deref(), Some("no-referrer"));
    for bad in ["/.env", "/assets/../.env", "/%2e%2e/etc/passwd", "/assets/nope.js", "/assets"] {
        let resp = http(server.addr, "GET", bad, &[], b"").await;
        assert_eq!(resp.status, 404, "{bad}");
        assert!(!resp.body_text().contains("SECRET"), "{bad}");
    }
    let malformed = http(server.addr, "GET", "/m/not-a-room", &[], b"").await;
    assert_eq!(malformed.status, 404);
    assert!(malformed.body_text().contains("meeting link is malformed"));
}

#[tokio::test]
async fn without_a_built_ui_the_page_says_so() {
    let empty = tempfile::tempdir().unwrap();
    let server =
        TestServer::start(Config { ui_dir: empty.path().join("dist"), ..Config::default() }).await;
    let page = http(server.addr, "GET", &format!("/m/{}", RoomId::random()), &[], b"").await;
    assert_eq!(page.status, 503);
    assert!(page.body_text().contains("web UI is not built"), "{}", page.body_text());
}

#[tokio::test]
async fn tls_serves_https_and_wss() {
    use tokio_rustls::rustls;
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let server = TestServer::start(Config {
        tls: Some(TlsFiles { cert: cert_path, key: key_path }),
        ..Config::default()
    })
    .await;

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client_config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config));
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();

    // wss: join over TLS.
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let tls = connector.connect(name.clone(), tcp).await.unwrap();
    let url = format!("wss://localhost:{}/ws", server.addr.port());
    let (mut ws, _) = tokio_tungstenite::client_async(url, tls).await.unwrap();
    let room = RoomId::random();
    futures_util::SinkExt::send(&mut ws, text(join_msg(&room, "secure").to_string()))
        .await
        .unwrap();
    let Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t))) =
        futures_util::StreamExt::next(&mut ws).await
    else {
        panic!("no welcome over wss")
    };
    assert!(matches!(ServerMessage::decode(&t).unwrap(), ServerMessage::Welcome { .. }));

    // https: meeting links say https.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    tls.write_all(b"POST /api/meetings HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").await.unwrap();
    let mut raw = Vec::new();
    let _ = tls.read_to_end(&mut raw).await;
    let resp = parse_response(&raw);
    assert_eq!(resp.status, 200);
    assert!(resp.body_text().contains("\"link\":\"https://localhost/m/"), "{}", resp.body_text());

    // Plain HTTP to the TLS port gets no HTTP answer.
    let mut plain = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    plain.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(WAIT, plain.read_to_end(&mut raw)).await.unwrap();
    assert!(!raw.starts_with(b"HTTP/"), "{raw:?}");
}

#[tokio::test]
async fn bad_tls_files_fail_to_start_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cert.pem"), "not a cert").unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let files = TlsFiles { cert: dir.path().join("cert.pem"), key: dir.path().join("missing.pem") };
    let err =
        confab_signaling::run(listener, Config { tls: Some(files), ..Config::default() }, async {})
            .await
            .unwrap_err();
    assert!(err.to_string().contains("cert.pem"), "{err}");
}

/// A writer that keeps everything logged, to search it afterwards.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every task of this test runs on one thread, so the subscriber set here sees all the server's
/// logs, at the most verbose level.
#[tokio::test(flavor = "current_thread")]
async fn logs_never_hold_addresses_or_candidates() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = TestServer::start(Config::default()).await;
    let room = RoomId::random();
    let (mut a, wa) = server.join(&room, "a").await;
    let (mut b, wb) = server.join(&room, "b").await;
    a.recv().await;
    b.signal(&wa.you, "198.51.100.7").await;
    a.expect_signal(&wb.you, "198.51.100.7").await;
    a.send_json(serde_json::json!({"type": "signal", "to": wb.you, "data": {"sdp": {"type": "answer", "sdp": "c=IN IP4 203.0.113.9\r\n"}}})).await;
    b.recv().await;
    a.send(text("garbage")).await;
    a.recv().await;
    drop(b);
    a.recv().await;
    let _ = http(server.addr, "GET", "/healthz", &[], b"").await;
    server.stop().await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("joined"), "the test must see the server's logs:\n{logs}");
    for secret in ["127.0.0.1", "198.51.100.7", "203.0.113.9", "candidate:"] {
        assert!(!logs.contains(secret), "logs contain {secret}:\n{logs}");
    }
}

/// This machine's address towards the rest of the world (connecting a UDP socket sends nothing).
fn own_address() -> std::net::IpAddr {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    socket.connect("192.0.2.1:9").unwrap();
    socket.local_addr().unwrap().ip()
}

/// One client address may make and join only so many meetings a minute: past the limit a join
/// is refused with `rate_limited` and closed, a meeting with 429. Another address (loopback,
/// here: this machine itself) is not affected.
#[tokio::test]
async fn one_address_may_make_and_join_only_so_many_meetings_a_minute() {
    let config = Config { joins_per_minute: 3, meetings_per_minute: 2, ..Config::default() };
    let server = TestServer::start_on(config, std::net::Ipv4Addr::UNSPECIFIED.into()).await;
    let port = server.addr.port();
    let own = std::net::SocketAddr::new(own_address(), port);
    let local = std::net::SocketAddr::from(([127, 0, 0, 1], port));

    for _ in 0..2 {
        assert_eq!(http(own, "POST", "/api/meetings", &[], b"").await.status, 200);
    }
    let refused = http(own, "POST", "/api/meetings", &[], b"").await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.header("retry-after").as_deref(), Some("30"));
    assert_eq!(http(local, "POST", "/api/meetings", &[], b"").await.status, 200);

    let room = RoomId::random();
    let mut joined = Vec::new();
    for n in 0..3 {
        let mut client =
            Client::connect_url(&format!("ws://{own}/ws"), &format!("p{n}"), None).await;
        client.join(&room).await;
        joined.push(client);
    }
    let mut fourth = Client::connect_url(&format!("ws://{own}/ws"), "p3", None).await;
    fourth.send_json(join_msg(&room, "p3")).await;
    fourth.expect_error_and_close(ErrorCode::RateLimited, CloseCode::Policy).await;
    let mut from_here = Client::connect_url(&format!("ws://{local}/ws"), "here", None).await;
    from_here.join(&room).await;
    let metrics = server.metrics().await;
    let counted = "confab_messages_rejected_total{reason=\"rate_limited\"} 2";
    assert!(metrics.contains(counted), "the two refusals are counted:\n{metrics}");
}

/// With access tokens, a stranger who reaches the server can neither make a meeting nor open a
/// room by joining it; a token holder can, and then the meeting's link alone lets others in.
#[tokio::test]
async fn with_access_tokens_only_a_holder_opens_a_meeting_and_then_its_link_suffices() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "# the team's\nteam-token-0123456789\n").unwrap();
    let config = Config { token_file: Some(tokens), ..Config::default() };
    let server = TestServer::start(config).await;
    let bearer = |token: &'static str| [("Authorization", token)];

    // Making a meeting: refused without a token or with a wrong one, saying why.
    let anonymous = http(server.addr, "POST", "/api/meetings", &[], b"").await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.header("www-authenticate").as_deref(), Some("Bearer realm=\"confab\""));
    assert!(anonymous.body_text().contains("access token"), "{}", anonymous.body_text());
    let wrong = bearer("Bearer team-token-9876543210");
    assert_eq!(http(server.addr, "POST", "/api/meetings", &wrong, b"").await.status, 401);
    let made =
        http(server.addr, "POST", "/api/meetings", &bearer("Bearer team-token-0123456789"), b"")
            .await;
    assert_eq!(made.status, 200);
    let made: serde_json::Value = serde_json::from_slice(&made.body).unwrap();
    let room: RoomId = made["room"].as_str().unwrap().parse().unwrap();

    // The meeting made is open to its link: no token needed.
    let (_first, _) = server.join(&room, "guest").await;

    // A room nobody opened: a stranger is refused, with a reason, and the socket closes.
    let unopened = RoomId::random();
    let mut stranger = server.connect("stranger").await;
    stranger.send_json(join_msg(&unopened, "stranger")).await;
    let why = stranger.expect_error(ErrorCode::BadToken).await;
    assert!(why.contains("access token"), "{why}");
    stranger.expect_close(CloseCode::Policy).await;
    let mut forger = server.connect("forger").await;
    let mut forged = join_msg(&unopened, "forger");
    forged["token"] = "team-token-9876543210".into();
    forger.send_json(forged).await;
    assert!(forger.expect_error(ErrorCode::BadToken).await.contains("refused your access token"));

    // A holder opens it by joining with the token; then the link is enough.
    let mut holder = server.connect("holder").await;
    let mut with_token = join_msg(&unopened, "holder");
    with_token["token"] = "team-token-0123456789".into();
    holder.send_json(with_token).await;
    assert!(matches!(holder.recv().await, ServerMessage::Welcome { .. }));
    let (_guest, welcome) = server.join(&unopened, "guest").await;
    assert_eq!(welcome.peers.len(), 1, "the guest meets the holder");

    let metrics = server.metrics().await;
    let counted = "confab_messages_rejected_total{reason=\"bad_token\"} 2";
    assert!(metrics.contains(counted), "the two refused joins are counted:\n{metrics}");
}

#[tokio::test]
async fn a_bad_token_file_stops_the_server_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "short\n").unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = Config { token_file: Some(tokens), ..Config::default() };
    let error = confab_signaling::run(listener, config, std::future::pending()).await.unwrap_err();
    assert!(error.to_string().contains("line 1: a token must be at least 16 bytes"), "{error}");
}
