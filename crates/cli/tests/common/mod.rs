//! The harness for the CLI tests: `confab` as a real child process, driven through its stdin
//! and read through its stdout, with a generous deadline on every wait.
#![allow(dead_code, clippy::unwrap_used)]

pub mod impair;
pub mod meeting;
pub mod relay;
pub mod wayland;

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

pub const WAIT: Duration = Duration::from_secs(60);

/// One `confab` process.
pub struct Confab {
    pub name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::UnboundedReceiver<String>,
    /// Every stdout line so far.
    pub seen: Vec<String>,
    /// Those of them that are JSON events, parsed once as they arrive.
    events: Vec<Value>,
}

impl Confab {
    pub fn spawn<S: AsRef<std::ffi::OsStr>>(name: &str, args: &[S]) -> Self {
        Self::spawn_with_env(name, args, &[])
    }

    /// The same, with `env` added to its environment (a sound server's address).
    pub fn spawn_with_env<S: AsRef<std::ffi::OsStr>>(
        name: &str,
        args: &[S],
        env: &[(String, String)],
    ) -> Self {
        Self::spawn_inner(name, args, env, Stdio::inherit())
    }

    /// `confab ARGS` with every crate logging at its most verbose level into the file `log`.
    pub fn spawn_logging<S: AsRef<std::ffi::OsStr>>(name: &str, args: &[S], log: &Path) -> Self {
        // Everything, the WebRTC stack's traces too: they name every address and candidate.
        let filter = "trace";
        let env = [("CONFAB_LOG".to_owned(), filter.to_owned())];
        Self::spawn_inner(name, args, &env, std::fs::File::create(log).unwrap().into())
    }

    /// `confab ARGS` inside the network namespace `namespace` (as root, by `ip netns exec`).
    pub fn spawn_in_namespace<S: AsRef<std::ffi::OsStr>>(
        namespace: &str,
        name: &str,
        args: &[S],
    ) -> Self {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", namespace, env!("CARGO_BIN_EXE_confab")]).args(args);
        Self::start(name, command, &[], Stdio::inherit())
    }

    fn spawn_inner<S: AsRef<std::ffi::OsStr>>(
        name: &str,
        args: &[S],
        env: &[(String, String)],
        stderr: Stdio,
    ) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_confab"));
        command.args(args);
        Self::start(name, command, env, stderr)
    }

    fn start(name: &str, mut command: Command, env: &[(String, String)], stderr: Stdio) -> Self {
        let mut child = command
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        Self { name: name.into(), child, stdin, lines, seen: vec![], events: vec![] }
    }

    /// `confab host --json` as `name`, with its own directories under `dir`; returns it and the
    /// link it printed first.
    pub async fn host(name: &str, dir: &Path) -> (Self, String) {
        let mut host =
            Self::spawn(name, &participant_args(&["host", "--listen", "127.0.0.1:0"], name, dir));
        let link = host.next_line().await;
        assert!(link.starts_with("http://127.0.0.1:") && link.contains("#k="), "{link}");
        (host, link)
    }

    /// `confab join LINK --json` with `extra` arguments, whose sound devices are those of
    /// `sound`.
    pub fn join_with_sound(
        link: &str,
        name: &str,
        dir: &Path,
        extra: &[&str],
        sound: &PulseAudio,
    ) -> Self {
        let mut args = participant_args(&["join", link], name, dir);
        args.extend(extra.iter().map(|a| a.to_string()));
        Self::spawn_with_env(name, &args, &sound.env())
    }

    /// `confab join LINK --json` as `name`, with its own directories under `dir`.
    pub fn join(link: &str, name: &str, dir: &Path) -> Self {
        Self::join_with(link, name, dir, &[])
    }

    /// The same, with `extra` arguments (`--synthetic-camera`, `--record FILE`…).
    pub fn join_with(link: &str, name: &str, dir: &Path, extra: &[&str]) -> Self {
        let mut args = participant_args(&["join", link], name, dir);
        args.extend(extra.iter().map(|a| a.to_string()));
        Self::spawn(name, &args)
    }

    pub async fn next_line(&mut self) -> String {
        let line = tokio::time::timeout(WAIT, self.lines.recv())
            .await
            .unwrap_or_else(|_| panic!("{}: no output in time", self.name))
            .unwrap_or_else(|| panic!("{}: stdout closed", self.name));
        self.record(line.clone());
        line
    }

    /// Takes whatever output is already there without waiting.
    pub fn drain(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            self.record(line);
        }
    }

    /// Keeps a line of output, and the event it holds.
    fn record(&mut self, line: String) {
        self.events.extend(serde_json::from_str::<Value>(&line).ok());
        self.seen.push(line);
    }

    /// Every JSON event seen so far.
    pub fn events(&self) -> &[Value] {
        &self.events
    }

    /// Waits until some event (seen before or arriving now) satisfies `matches`.
    pub async fn wait_for(&mut self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        self.wait_for_n(what, 1, matches).await.remove(0)
    }

    /// Waits until `n` events (seen before or arriving now) satisfy `matches`.
    pub async fn wait_for_n(
        &mut self,
        what: &str,
        n: usize,
        matches: impl Fn(&Value) -> bool,
    ) -> Vec<Value> {
        self.wait_until(what, |events| events.iter().filter(|e| matches(e)).count() >= n).await;
        self.events.iter().filter(|e| matches(e)).cloned().collect()
    }

    /// Waits until the events so far (seen before or arriving now) satisfy `done`.
    pub async fn wait_until(&mut self, what: &str, done: impl Fn(&[Value]) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            self.drain();
            if done(&self.events) {
                return;
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.lines.recv()).await {
                Ok(Some(line)) => self.record(line),
                Ok(None) => panic!("{}: exited while waiting for {what}", self.name),
                Err(_) => {
                    panic!("{}: timed out waiting for {what}; saw {:#?}", self.name, self.seen)
                }
            }
        }
    }

    /// The latest `notes` text, after waiting until it satisfies `matches`.
    pub async fn wait_notes(&mut self, what: &str, matches: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            self.drain();
            let latest = self.events.iter().rev().find(|e| e["event"] == "notes").cloned();
            if let Some(text) = latest.as_ref().and_then(|e| e["text"].as_str())
                && matches(text)
            {
                return text.to_owned();
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.lines.recv()).await {
                Ok(Some(line)) => self.record(line),
                Ok(None) => panic!("{}: exited while waiting for {what}", self.name),
                Err(_) => {
                    panic!("{}: timed out waiting for {what}; last notes {latest:?}", self.name)
                }
            }
        }
    }

    /// Reads what is left of stdout once the process is gone.
    pub async fn read_to_end(&mut self) {
        while let Ok(Some(line)) = tokio::time::timeout(WAIT, self.lines.recv()).await {
            self.record(line);
        }
    }

    pub async fn send(&mut self, command: Value) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(format!("{command}\n").as_bytes()).await.unwrap();
        stdin.flush().await.unwrap();
    }

    /// Hands stdin to a task that writes `lines` at the process's own pace.
    pub fn feed(&mut self, lines: Vec<String>) {
        let mut stdin = self.stdin.take().unwrap();
        tokio::spawn(async move {
            for line in lines {
                if stdin.write_all(format!("{line}\n").as_bytes()).await.is_err() {
                    return; // the process is gone
                }
            }
        });
    }

    pub async fn exit_status(&mut self) -> ExitStatus {
        tokio::time::timeout(WAIT, self.child.wait()).await.unwrap().unwrap()
    }

    /// The process's id while it runs (to read its memory and files in /proc).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// SIGKILL: no chance to flush or say goodbye.
    pub async fn kill(&mut self) {
        self.child.kill().await.unwrap();
    }
}

pub fn participant_args(mode: &[&str], name: &str, dir: &Path) -> Vec<String> {
    let mut args: Vec<String> = mode.iter().map(|s| s.to_string()).collect();
    let data = dir.join("data");
    let downloads = dir.join("downloads");
    args.extend(["--name", name, "--json", "--data-dir"].map(String::from));
    args.push(data.display().to_string());
    args.push("--download-dir".into());
    args.push(downloads.display().to_string());
    args
}

/// `confab ARGS` to completion, its stdin open but silent: (exit code, stderr).
pub async fn run_to_end(args: &[&str]) -> (Option<i32>, String) {
    run_to_end_with_env(args, &[]).await
}

/// The same, with `env` added to its environment.
pub async fn run_to_end_with_env<S: AsRef<std::ffi::OsStr>>(
    args: &[S],
    env: &[(&str, &str)],
) -> (Option<i32>, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_confab"));
    command.args(args).envs(env.iter().copied());
    run_command_to_end(command).await
}

/// `command` (a `confab`, perhaps through a wrapper) to completion, its stdin open but silent:
/// (exit code, stderr).
pub async fn run_command_to_end(mut command: Command) -> (Option<i32>, String) {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let _stdin = child.stdin.take();
    let mut stderr = String::new();
    let mut pipe = child.stderr.take().unwrap();
    let status = tokio::time::timeout(WAIT, async {
        tokio::io::AsyncReadExt::read_to_string(&mut pipe, &mut stderr).await.unwrap();
        child.wait().await.unwrap()
    })
    .await
    .expect("confab did not exit in time");
    (status.code(), stderr)
}

/// A private PulseAudio server for one test, with a null sink as the default speaker and its
/// monitor as the default microphone: what is played there is heard there, like a speaker and
/// a microphone in one quiet room. `confab` reaches it through ALSA's pulse plugin; only the
/// processes given [`PulseAudio::env`] use it. Stopped when dropped.
pub struct PulseAudio {
    child: std::process::Child,
    dir: tempfile::TempDir,
}

impl PulseAudio {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path();
        for sub in ["home", "xdg"] {
            std::fs::create_dir_all(path.join(sub)).unwrap();
        }
        // The second sink, fed from the first's monitor with a short latency, keeps the first
        // in low-latency mode between clients; the suspends drop the 2 s block a new null sink
        // renders ahead, which would otherwise stall the first client.
        let script = format!(
            "load-module module-native-protocol-unix socket={socket} auth-anonymous=1\n\
             load-module module-null-sink sink_name=room rate=48000 channels=2\n\
             load-module module-null-sink sink_name=keepalive rate=48000 channels=2\n\
             load-module module-loopback source=room.monitor sink=keepalive latency_msec=20\n\
             suspend-sink room 1\nsuspend-sink room 0\n\
             suspend-sink keepalive 1\nsuspend-sink keepalive 0\n\
             set-default-sink room\nset-default-source room.monitor\n",
            socket = path.join("native").display()
        );
        std::fs::write(path.join("test.pa"), script).unwrap();
        let child = std::process::Command::new("pulseaudio")
            .args(["-n", "-F"])
            .arg(path.join("test.pa"))
            .args(["--daemonize=no", "--exit-idle-time=-1", "--use-pid-file=no"])
            .arg(format!("--log-target=file:{}", path.join("pulse.log").display()))
            .env("HOME", path.join("home"))
            .env("XDG_RUNTIME_DIR", path.join("xdg"))
            .env("XDG_CONFIG_HOME", path.join("home"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pulseaudio (Debian's pulseaudio package, installed by make test)");
        let server = Self { child, dir };
        let deadline = std::time::Instant::now() + WAIT;
        while !server.answers() {
            assert!(
                std::time::Instant::now() < deadline,
                "pulseaudio did not start: {}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// What a process needs in its environment to use this server.
    pub fn env(&self) -> Vec<(String, String)> {
        let path = self.dir.path();
        vec![
            ("PULSE_SERVER".into(), format!("unix:{}", path.join("native").display())),
            ("PULSE_COOKIE".into(), path.join("cookie").display().to_string()),
        ]
    }

    fn answers(&self) -> bool {
        std::process::Command::new("pactl")
            .arg("info")
            .envs(self.env())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pulse.log")).unwrap_or_default()
    }
}

impl Drop for PulseAudio {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `event` is a JSON event of `kind`.
pub fn is(event: &Value, kind: &str) -> bool {
    event["event"] == kind
}
