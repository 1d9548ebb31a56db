//! The `confab-signaling` program itself: flags and their environment variables, logs, and a
//! clean exit on SIGTERM that tells every client why.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::*;
use confab_proto::{ErrorCode, RoomId, ServerMessage};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

struct Program {
    child: Child,
    port: u16,
    logs: std::sync::mpsc::Receiver<String>,
}

/// Starts the program on an ephemeral port and reads the port from its JSON log.
fn start(args: &[&str], env: &[(&str, &str)]) -> Program {
    let mut child = Command::new(env!("CARGO_BIN_EXE_confab-signaling"))
        .args(["--listen", "127.0.0.1:0", "--log-json"])
        .args(args)
        .envs(env.iter().copied())
        .env("RUST_LOG", "debug")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, logs) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let port = loop {
        let line = logs.recv_timeout(WAIT).expect("no 'listening' log line");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        if v["fields"]["message"] == "listening" {
            break v["fields"]["port"].as_u64().unwrap() as u16;
        }
    };
    Program { child, port, logs }
}

async fn connect(port: u16, name: &str) -> Client {
    let url = format!("ws://127.0.0.1:{port}/ws");
    let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    Client { name: name.into(), ws, span: tracing::info_span!("peer", name) }
}

#[tokio::test]
async fn environment_configures_and_sigterm_closes_every_socket_then_exits_0() {
    let mut program = start(
        &[],
        &[("CONFAB_MAX_PEERS", "2"), ("CONFAB_STUN_URL", "stun:a.test:3478,stun:b.test:3478")],
    );
    let room = RoomId::random();
    let mut a = connect(program.port, "a").await;
    let welcome = a.join(&room).await;
    let ServerMessage::Welcome { limits, ice_servers, .. } = welcome.raw else { unreachable!() };
    assert_eq!(limits.max_peers, 2);
    assert_eq!(ice_servers[0].urls, vec!["stun:a.test:3478", "stun:b.test:3478"]);
    let mut b = connect(program.port, "b").await;
    b.join(&room).await;
    let mut c = connect(program.port, "c").await;
    c.send_json(join_msg(&room, "c")).await;
    c.expect_error_and_close(ErrorCode::RoomFull, CloseCode::Policy).await;

    assert!(
        Command::new("kill")
            .args(["-TERM", &program.child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    a.expect_error_and_close(ErrorCode::ShuttingDown, CloseCode::Away).await;
    b.expect_error_and_close(ErrorCode::ShuttingDown, CloseCode::Away).await;
    let status = tokio::task::spawn_blocking(move || program.child.wait()).await.unwrap().unwrap();
    assert_eq!(status.code(), Some(0));

    let logs: Vec<String> = program.logs.try_iter().collect();
    assert!(logs.iter().any(|l| l.contains("joined")), "{logs:?}");
    assert!(!logs.iter().any(|l| l.contains("127.0.0.1")), "an address in the logs: {logs:?}");
}

#[test]
fn bad_flags_and_unusable_addresses_fail_clearly() {
    let out = Command::new(env!("CARGO_BIN_EXE_confab-signaling"))
        .args(["--max-peers", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--max-peers"));

    let out = Command::new(env!("CARGO_BIN_EXE_confab-signaling"))
        .args(["--turn-url", "turn:x.test"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a TURN URL without its secret is refused");

    let out = Command::new(env!("CARGO_BIN_EXE_confab-signaling"))
        .args(["--listen", "127.0.0.1:0", "--ping-interval", "30", "--idle-timeout", "20"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("idle_timeout must be longer"));

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_confab-signaling"))
        .args(["--listen", &addr])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot listen on"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
