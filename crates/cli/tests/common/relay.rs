//! The relay the TURN tests put between peers: Debian's coturn (`use-auth-secret`) and `confab
//! serve` handing out its credentials.

use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::WAIT;

/// A child process killed on drop.
pub struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port(on: Ipv4Addr) -> u16 {
    UdpSocket::bind((on, 0)).unwrap().local_addr().unwrap().port()
}

/// A TCP port free on `on` now, for a service to listen on (a port free for UDP may not be).
pub fn free_tcp_port(on: Ipv4Addr) -> u16 {
    std::net::TcpListener::bind((on, 0)).unwrap().local_addr().unwrap().port()
}

/// coturn on this machine, listening on each of `listen` and relaying on `relay`.
pub fn start_coturn(
    listen: &[Ipv4Addr],
    relay: Ipv4Addr,
    port: u16,
    secret: &str,
    dir: &std::path::Path,
) -> Process {
    let relay_base = 45_000 + port % 10_000;
    let mut child = Command::new("turnserver")
        .args([
            "-n",
            "--no-tls",
            "--no-dtls",
            "--no-cli",
            "--use-auth-secret",
            "--realm=confab.test",
        ])
        .arg(format!("--static-auth-secret={secret}"))
        .args(listen.iter().map(|ip| format!("--listening-ip={ip}")))
        .arg(format!("--relay-ip={relay}"))
        .arg(format!("--listening-port={port}"))
        .arg(format!("--min-port={relay_base}"))
        .arg(format!("--max-port={}", relay_base + 200))
        .arg(format!("--db={}", dir.join("turndb").display()))
        .arg(format!("--pidfile={}", dir.join("turn.pid").display()))
        .arg("--log-file=stdout")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("turnserver not found: scripts/setup.sh installs coturn");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("Total General servers") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(WAIT).expect("coturn did not start");
    Process(child)
}

/// `confab serve` on every address of this machine, handing out credentials for the TURN
/// servers `turn` (none: no TURN); waits until it accepts connections.
pub fn start_signaling(port: u16, turn: &[String], secret: &str) -> Process {
    let secret = (!turn.is_empty()).then_some(["--turn-secret", secret]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_confab"))
        .args(["serve", "--listen", &format!("0.0.0.0:{port}")])
        .args(turn.iter().flat_map(|url| ["--turn-url", url.as_str()]))
        .args(secret.into_iter().flatten())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    // A server that cannot listen (its port taken meanwhile) says so at once, not after WAIT.
    wait_listening_while(port, || child.try_wait().ok().flatten());
    Process(child)
}

/// Waits until a service on this machine listens on `port`.
pub fn wait_listening(port: u16) {
    wait_listening_while(port, || None);
}

/// The same, failing as soon as `exited` says the service has.
fn wait_listening_while(port: u16, mut exited: impl FnMut() -> Option<std::process::ExitStatus>) {
    let deadline = Instant::now() + WAIT;
    while TcpStream::connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).is_err() {
        if let Some(status) = exited() {
            panic!("the service meant to listen on port {port} exited ({status})");
        }
        assert!(Instant::now() < deadline, "nothing listens on port {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
