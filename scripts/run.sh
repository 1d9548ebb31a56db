#!/usr/bin/env bash
# `make run`: with a display, opens the desktop app hosting a new meeting and prints its link for
# the others (on this machine's network address, so people on the LAN can join from a browser).
# Without one (or with CONFAB_NO_DESKTOP=1): starts the signaling service with the web UI on
# 127.0.0.1:8787, creates a meeting and prints its full link (key included). Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && [ -z "${CONFAB_NO_DESKTOP:-}" ]; then
  cargo build --quiet --release -p confab-desktop
  echo "Starting the Confab desktop app, hosting a new meeting (close its window to stop)."
  target/release/confab-desktop --host | while read -r link; do
    echo "Meeting link for the others: $link"
  done
  exit 0
fi

listen="${CONFAB_LISTEN:-127.0.0.1:8787}"
bin=target/release/confab-signaling

# Something already answering there would be mistaken for the server started below.
if curl -fsS --max-time 2 "http://$listen/healthz" >/dev/null 2>&1; then
  echo "run: something is already serving on $listen (an earlier 'make run'?). Stop it, or choose another address with CONFAB_LISTEN=host:port." >&2
  exit 1
fi

"$bin" --listen "$listen" --ui-dir ui/dist &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null' EXIT INT TERM

for _ in $(seq 1 100); do
  if curl -fsS "http://$listen/healthz" >/dev/null 2>&1; then break; fi
  if ! kill -0 $server 2>/dev/null; then echo "run: the signaling service did not start" >&2; exit 1; fi
  sleep 0.1
done

link=$(curl -fsS -X POST "http://$listen/api/meetings" | python3 -c 'import json,sys; print(json.load(sys.stdin)["link"])')
# The meeting key: 128 random bits, base64url. It lives only in the link's fragment.
key=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
echo
echo "Confab is running at http://$listen/"
echo "Meeting link: $link#k=$key"
echo "(Ctrl-C to stop)"
wait $server
