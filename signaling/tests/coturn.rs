//! The TURN credentials in `welcome` work against a real coturn (`use-auth-secret`), and a
//! tampered or expired one is refused. coturn comes from Debian (`scripts/setup.sh`).
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use common::*;
use confab_proto::{RoomId, ServerMessage};
use confab_signaling::{Config, TurnConfig};

struct Coturn {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A coturn of our own on loopback: its own port, relay range, database and pid file.
fn start_coturn(secret: &str) -> Coturn {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let relay_base = 40_000 + (u32::from(port) * 7 % 20_000) as u16;
    let arg = |k: &str, v: String| format!("--{k}={v}");
    let mut child = Command::new("turnserver")
        .args([
            "-n",
            "--no-tls",
            "--no-dtls",
            "--no-cli",
            "--allow-loopback-peers",
            "--use-auth-secret",
        ])
        .arg(arg("static-auth-secret", secret.into()))
        .arg(arg("realm", "confab.test".into()))
        .arg(arg("listening-ip", "127.0.0.1".into()))
        .arg(arg("relay-ip", "127.0.0.1".into()))
        .arg(arg("listening-port", port.to_string()))
        .arg(arg("min-port", relay_base.to_string()))
        .arg(arg("max-port", (relay_base + 200).to_string()))
        .arg(arg("db", dir.path().join("turndb").display().to_string()))
        .arg(arg("pidfile", dir.path().join("turn.pid").display().to_string()))
        .arg("--log-file=stdout")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("turnserver not found: scripts/setup.sh installs coturn");
    // Ready once it has created its servers.
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("Total General servers") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(WAIT).expect("coturn did not start");
    wait_answering(port);
    Coturn { child, port, _dir: dir }
}

/// Waits until coturn answers a STUN binding request on `port`: the line awaited above says its
/// servers exist, not that its listener and authentication serve yet.
fn wait_answering(port: u16) {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    // A binding request: type 1, no attributes, the magic cookie, a transaction id.
    let mut request = vec![0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42];
    request.extend_from_slice(b"confab-ready");
    let deadline = std::time::Instant::now() + WAIT;
    let mut answer = [0; 512];
    loop {
        socket.send_to(&request, ("127.0.0.1", port)).unwrap();
        if socket.recv(&mut answer).is_ok_and(|n| n >= 20 && answer[8..20] == request[8..20]) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "coturn never answered on its port");
    }
}

/// Allocates on coturn with these credentials and relays a little data between two allocations.
/// turnutils_uclient now and then waits forever for its one message; it gets three tries of
/// 10 s (a refusal is prompt, so a refused credential is never accepted by trying again).
fn allocate(coturn: &Coturn, username: &str, credential: &str) -> bool {
    (0..3).any(|_| allocate_once(coturn, username, credential))
}

fn allocate_once(coturn: &Coturn, username: &str, credential: &str) -> bool {
    let status = Command::new("timeout")
        .args(["10", "turnutils_uclient", "-y", "-n", "1", "-m", "1", "-l", "100"])
        .args(["-u", username, "-w", credential, "-p", &coturn.port.to_string(), "127.0.0.1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    status.success()
}

#[tokio::test]
async fn coturn_accepts_welcome_credentials_and_refuses_tampered_or_expired_ones() {
    let secret = "a-shared-secret-for-this-test";
    let coturn = start_coturn(secret);
    let server = TestServer::start(Config {
        turn: Some(TurnConfig {
            urls: vec![format!("turn:127.0.0.1:{}?transport=udp", coturn.port)],
            secret: secret.into(),
            ttl: Duration::from_secs(3600),
        }),
        ..Config::default()
    })
    .await;
    let (_client, welcome) = server.join(&RoomId::random(), "turn-user").await;
    let ServerMessage::Welcome { ice_servers, .. } = welcome.raw else { unreachable!() };
    let turn = &ice_servers[0];
    let (username, credential) = (turn.username.clone().unwrap(), turn.credential.clone().unwrap());

    assert!(
        allocate(&coturn, &username, &credential),
        "coturn refused the credentials from welcome"
    );

    let mut tampered = credential.clone();
    tampered.replace_range(0..1, if tampered.starts_with('A') { "B" } else { "A" });
    assert!(!allocate(&coturn, &username, &tampered), "coturn accepted a tampered credential");

    let past = SystemTime::now() - Duration::from_secs(60);
    let (old_user, old_cred) = confab_signaling::turn::credentials(secret, &welcome.you, past);
    assert!(!allocate(&coturn, &old_user, &old_cred), "coturn accepted an expired credential");
}
