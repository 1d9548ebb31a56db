#!/usr/bin/env bash
# Installs what Confab needs to build, run and test, on Debian or Ubuntu. Idempotent and quiet
# when everything is there already; run by `make run` and `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
# sudo resets the environment, so the variable goes on the command itself.
apt_install() { as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null; }
# True when version $1 is at least $2 (dotted numbers).
at_least() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

# Debian packages. coturn is for the TURN tests (they start their own turnserver); iproute2's
# `ip` makes the network namespaces of the relay-only test.
# chromium runs the browser tests (driven by playwright-core; no browser download).
# libvpx-dev is the VP8 codec confab-media links (its Rust bindings match Debian 12's 1.12);
# libopus-dev its Opus codec (found with pkg-config). ffmpeg gives the tests ffprobe, which reads
# recordings as a player would. xvfb is the X server the screen-sharing tests capture (and show
# a headful Chromium on); imagemagick's `import` reads that screen independently of our capture.
# libasound2-dev is ALSA, through which confab-media's cpal reaches microphones and speakers;
# the sound tests start a private pulseaudio (pactl from pulseaudio-utils checks it is up) with a
# null sink for a room, reached through ALSA's pulse plugin (libasound2-plugins). libclang-dev
# lets the camera feature's V4L2 bindings be generated (bindgen) when it is built.
# The desktop app (Tauri 2) builds against WebKitGTK 4.1 and GTK 3 (with librsvg, libxdo and
# the appindicator for its tray); its tests drive it with Debian's WebKitWebDriver
# (webkit2gtk-driver) inside a private D-Bus session (dbus-daemon's dbus-run-session); its
# keyring tests use gnome-keyring (the Secret Service) and keyutils' keyctl. redis-server is for
# the tests of several signaling instances sharing rooms (each test starts its own on a free
# port; the system service, where one starts, is never used). libpipewire-0.3-dev is for
# screen sharing in Wayland sessions (the desktop portal streams through PipeWire); sway and
# xdg-desktop-portal-wlr (which brings xdg-desktop-portal and pipewire) make the headless
# Wayland desktop its test asks; wireplumber, and GStreamer's tools, base plugins and PipeWire
# sink, make the PipeWire screen the capture's test reads. libxcb's shm and randr headers let
# the test of the Windows and macOS screen capture (scrap) build against X11 here.
APT_PACKAGES=(build-essential pkg-config curl ca-certificates git python3 coturn redis-server chromium libvpx-dev libopus-dev ffmpeg xvfb imagemagick libasound2-dev pulseaudio pulseaudio-utils libasound2-plugins libclang-dev
  libwebkit2gtk-4.1-dev libgtk-3-dev libayatana-appindicator3-dev librsvg2-dev libxdo-dev libssl-dev webkit2gtk-driver dbus-daemon gnome-keyring keyutils iproute2
  libpipewire-0.3-dev sway xdg-desktop-portal-wlr wireplumber gstreamer1.0-tools
  gstreamer1.0-plugins-base gstreamer1.0-pipewire libxcb1-dev libxcb-shm0-dev libxcb-randr0-dev)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
command -v node >/dev/null && command -v npm >/dev/null || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  as_root apt-get update -qq
  apt_install "${missing[@]}"
fi

# Debian starts coturn as a system service whose stock configuration authenticates nobody: an
# open relay on every interface. The tests run a turnserver of their own, so such a service is
# turned off. One configured with authentication (someone's real TURN server) is left alone.
coturn_is_open() { ! grep -Eqs '^[[:space:]]*(use-auth-secret|lt-cred-mech|static-auth-secret)' /etc/turnserver.conf; }
if command -v systemctl >/dev/null && [ -d /run/systemd/system ] && coturn_is_open; then
  if systemctl is-enabled --quiet coturn 2>/dev/null || systemctl is-active --quiet coturn 2>/dev/null; then
    say "disabling the coturn system service: its configuration authenticates nobody"
    as_root systemctl disable --now coturn >/dev/null 2>&1 || true
  fi
fi

# Node.js: the UI build (Vite 8) needs 20.19+ or 22.12+.
node_ok() {
  local v; v=$(node -p 'process.versions.node' 2>/dev/null) || return 1
  case "$v" in
    20.*) at_least "$v" 20.19.0 ;;
    21.*) return 1 ;;
    *) at_least "$v" 22.12.0 ;;
  esac
}
if ! node_ok; then
  say "Node.js $(node --version 2>/dev/null || echo missing) is too old for the UI build; installing Node.js 22 from NodeSource"
  curl -fsSL https://deb.nodesource.com/setup_22.x | as_root bash - >/dev/null
  apt_install nodejs
  node_ok || { say "could not install a recent Node.js; install Node 22 and retry"; exit 1; }
fi

# Rust: the workspace needs rustc 1.95 or newer (Debian's own cargo is older), through rustup.
export PATH="$HOME/.cargo/bin:$PATH"
rust_ok() { command -v rustc >/dev/null && at_least "$(rustc --version | cut -d' ' -f2)" 1.95.0; }
if ! rust_ok; then
  if command -v rustup >/dev/null; then
    say "updating Rust (rustup, stable)"
    rustup update stable >/dev/null 2>&1 && rustup default stable >/dev/null
  else
    say "installing Rust (rustup, stable)"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c rustfmt,clippy >/dev/null
  fi
  rust_ok || { say "could not get Rust 1.95 or newer"; exit 1; }
fi
for component in rustfmt clippy; do
  command=${component/rustfmt/fmt}
  if ! cargo "$command" --version >/dev/null 2>&1 && command -v rustup >/dev/null; then
    say "adding the Rust component $component"
    rustup component add "$component" >/dev/null 2>&1 || true
  fi
done

# tauri-driver: the WebDriver front the desktop tests talk to (it starts WebKitWebDriver).
if ! command -v tauri-driver >/dev/null; then
  say "installing tauri-driver (cargo install)"
  cargo install --quiet --locked tauri-driver --version '^2' >/dev/null 2>&1 \
    || { say "could not install tauri-driver"; exit 1; }
fi

# npm packages, when the lock file changed since the last install.
stamp=node_modules/.confab-lock-stamp
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  say "installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
  cp package-lock.json "$stamp"
fi
