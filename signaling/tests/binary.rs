//! The `confab-signaling` program itself: flags and their environment variables, logs, and a
//! clean exit on SIGTERM that tells every client why.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::*;
use confab_proto::{ErrorCode, RoomId, ServerMessage};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

#[tokio::test]
async fn environment_configures_and_sigterm_closes_every_socket_then_exits_0() {
    let mut program = Program::start(
        &[],
        &[("CONFAB_MAX_PEERS", "2"), ("CONFAB_STUN_URL", "stun:a.test:3478,stun:b.test:3478")],
    );
    let room = RoomId::random();
    let mut a = program.connect("a").await;
    let welcome = a.join(&room).await;
    let ServerMessage::Welcome { limits, ice_servers, .. } = welcome.raw else { unreachable!() };
    assert_eq!(limits.max_peers, 2);
    assert_eq!(ice_servers[0].urls, vec!["stun:a.test:3478", "stun:b.test:3478"]);
    let mut b = program.connect("b").await;
    b.join(&room).await;
    let mut c = program.connect("c").await;
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
    let (status, program) = tokio::task::spawn_blocking(move || {
        let status = program.child.wait();
        (status, program)
    })
    .await
    .unwrap();
    assert_eq!(status.unwrap().code(), Some(0));

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
