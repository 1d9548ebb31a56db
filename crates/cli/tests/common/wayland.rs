//! A headless Wayland desktop for one test: sway (wlroots' headless backend, rendering in
//! software), PipeWire, and xdg-desktop-portal with its wlroots backend, all in
//! a private D-Bus session. A `confab` started in it asks to share the screen as on a real
//! Wayland desktop: through the ScreenCast portal, whose dialog (the backend's output chooser)
//! the person cancels.
//!
//! The picture itself cannot be cast here: xdg-desktop-portal-wlr 0.7 starts a cast only where
//! wlroots can hand it DMA-BUF frames, which needs a GPU (`/dev/dri`); with software rendering
//! it refuses (its issue #289). So this desktop shows the handshake and its refusals, not frames.
//!
//! sway refuses to run as root, so as root (as CI runs) the session runs as `nobody`, in a
//! directory of its own with a copy of `confab`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tokio::process::Command;

use super::run_command_to_end;

/// Starts the desktop, runs its arguments in it, and ends it.
const SESSION: &str = r#"
set -eu
export XDG_RUNTIME_DIR="$HOME/run" XDG_CURRENT_DESKTOP=sway XDG_SESSION_TYPE=wayland
export WLR_BACKENDS=headless WLR_HEADLESS_OUTPUTS=1 WLR_LIBINPUT_NO_DEVICES=1 WLR_RENDERER=pixman
mkdir -m 700 -p "$XDG_RUNTIME_DIR"
waitfor() { i=0; until [ -e "$1" ]; do i=$((i + 1)); [ $i -lt 200 ] || { echo "session: no $1" >&2; exit 1; }; sleep 0.05; done; }
sway -c "$HOME/sway.conf" >"$HOME/sway.log" 2>&1 &
desktop=$!
waitfor "$XDG_RUNTIME_DIR/wayland-1"
export WAYLAND_DISPLAY=wayland-1
dbus-update-activation-environment WAYLAND_DISPLAY XDG_CURRENT_DESKTOP XDG_RUNTIME_DIR XDG_SESSION_TYPE HOME
pipewire >"$HOME/pipewire.log" 2>&1 &
desktop="$desktop $!"
waitfor "$XDG_RUNTIME_DIR/pipewire-0"
status=0
"$@" || status=$?
# The desktop ends with the command (the portals end with the bus, which ends with us).
kill $desktop 2>/dev/null || true
wait
exit $status
"#;

pub struct WaylandDesktop {
    /// The session's home: its configuration, logs and runtime directory.
    home: tempfile::TempDir,
    confab: PathBuf,
}

impl WaylandDesktop {
    /// A desktop of one output, where the person cancels the screen-sharing dialog.
    pub fn where_sharing_is_cancelled() -> Self {
        let home = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| std::fs::write(home.path().join(name), text).unwrap();
        write("sway.conf", "xwayland disable\noutput HEADLESS-1 resolution 1280x720\n");
        // The backend's output chooser is a command; one that chooses nothing is a cancel.
        std::fs::create_dir_all(home.path().join(".config/xdg-desktop-portal-wlr")).unwrap();
        write(
            ".config/xdg-desktop-portal-wlr/config",
            "[screencast]\nchooser_type=simple\nchooser_cmd=false\n",
        );
        write("session.sh", SESSION);
        let confab = home.path().join("confab");
        std::fs::copy(env!("CARGO_BIN_EXE_confab"), &confab).unwrap();
        if is_root() {
            std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
            let chown = std::process::Command::new("chown")
                .args(["-R", "nobody:nogroup"])
                .arg(home.path())
                .status()
                .unwrap();
            assert!(chown.success(), "chown of the session's home to nobody");
        }
        Self { home, confab }
    }

    /// A directory the session's user may write to.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// `confab ARGS` inside the session, to completion: (exit code, stderr).
    pub async fn run_confab(&self, args: &[String]) -> (Option<i32>, String) {
        let mut command = if is_root() {
            let mut setpriv = Command::new("setpriv");
            setpriv.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"]);
            setpriv.arg("dbus-run-session");
            setpriv
        } else {
            Command::new("dbus-run-session")
        };
        command
            .args(["--", "sh"])
            .arg(self.home.path().join("session.sh"))
            .arg(&self.confab)
            .args(args)
            .env_clear()
            .env("HOME", self.home.path())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default());
        run_command_to_end(command).await
    }

    /// What the session's sway and PipeWire logged: for a failure's message.
    pub fn logs(&self) -> String {
        ["sway.log", "pipewire.log"]
            .iter()
            .map(|name| {
                let text = std::fs::read_to_string(self.home.path().join(name)).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                format!("--- {name}\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}
