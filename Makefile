# The commands people type. `make run` and `make test` install what is missing first.
.PHONY: run test setup ui gen lint package bench-signaling bench-core bench-ui bench-media bench-desktop bench-reliability soak

CARGO ?= cargo
export PATH := $(HOME)/.cargo/bin:$(PATH)

UI_SOURCES := $(shell find ui/src ui/index.html ui/vite.config.ts ui/package.json -type f 2>/dev/null)

setup:
	@scripts/setup.sh

ui/dist/index.html: $(UI_SOURCES) package-lock.json
	@npm run build --silent -w ui >/dev/null

ui: setup ui/dist/index.html

## Build and start the signaling service with the web UI; print a meeting link.
run: ui
	@$(CARGO) build --quiet --release -p confab-signaling
	@scripts/run.sh

# A fresh clone gains nothing from incremental caches, and they double the debug target's size.
test: export CARGO_INCREMENTAL := 0

## Every test of every issue, plus formatting, lints and the UI's type check; browser tests in Chromium.
test: setup ui/dist/index.html
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --quiet --workspace --all-targets -- -D warnings
	$(CARGO) clippy --quiet -p confab-media --features scrap --all-targets -- -D warnings
	npm run --silent typecheck
	npm run --silent test:unit
	$(CARGO) test --workspace
	# The screen capture of Windows and macOS builds, here through scrap's X11 capture.
	$(CARGO) test -p confab-media --features scrap --lib --test scrap_screens
	# The binaries the browser and desktop tests start, built here rather than inside a test's
	# time limit, with the workspace's features (as `cargo test --workspace` built everything).
	$(CARGO) build --quiet --workspace --bins
	npm run --silent test:browser
	npm run --silent test:desktop

## The desktop app's release .deb, under target/release/bundle/deb/ (AppImage, .rpm, .msi and
## .dmg are built by .github/workflows/release.yml on their own platforms).
# Without debug info (the release binary with line tables made a 45 MiB .deb), and with
# whole-program optimisation, which drops the code no path reaches: 14.8 MiB without, 13.3 with.
package: setup ui/dist/index.html
	CARGO_PROFILE_RELEASE_STRIP=debuginfo CARGO_PROFILE_RELEASE_LTO=fat npx tauri build --ci --bundles deb

lint: setup ui/dist/index.html
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --quiet --workspace --all-targets -- -D warnings
	$(CARGO) clippy --quiet -p confab-media --features scrap --all-targets -- -D warnings
	npm run --silent typecheck

## Regenerate ui/src/gen/: protocol types and constants from confab-proto, the front-end API from confab-core.
gen:
	CONFAB_UPDATE_GEN=1 $(CARGO) test --quiet -p confab-proto --test typescript_bindings
	CONFAB_UPDATE_GEN=1 $(CARGO) test --quiet -p confab-core --test typescript_bindings

## Load benchmark of the signaling service against a bare tokio-tungstenite echo server.
bench-signaling: setup
	$(CARGO) bench -p confab-signaling --bench load

## The notes document: trace replay against raw automerge and @automerge/automerge, durable edits.
bench-core: setup
	$(CARGO) bench -p confab-core --bench core

## Three relay-only CLI peers through a signaling restart, a NAT forgetting every mapping and 10%
## loss, a flooding peer, garbage to every decoder; writes bench/results/reliability.json.
bench-reliability: setup
	$(CARGO) bench -p confab-cli --bench reliability

## The same meeting for MINUTES (30) with a random fault every 20–40 s: divergence, lost and
## doubled messages, memory and open files; writes bench/results/soak.json. Not part of CI.
MINUTES ?= 30
soak: setup
	CONFAB_SOAK_MINUTES=$(MINUTES) $(CARGO) bench -p confab-cli --bench reliability

## A meeting link opened in Chromium: time to a verified data channel and to the first remote
## video frame, with a browser and with the CLI as the peer; the UI bundle size.
bench-ui: setup ui/dist/index.html
	CONFAB_PROFILE=release node bench/ui.mjs

## Screen sharing from Rust on an Xvfb showing a page of code: colour conversion SIMD against the
## plain loop, the sender's fps and CPU while scrolling and when still, VP8 and VP9 screen modes;
## glass-to-glass delay Rust → Rust, Rust → Chromium and Chromium → Chromium.
bench-media: setup ui/dist/index.html
	CONFAB_PROFILE=release node bench/media.mjs

## The desktop app as packaged: cold start, memory, .deb size, keystroke latency to a browser,
## 1080p video on both of the window's paths; writes bench/results/desktop.json.
bench-desktop: package
	CONFAB_PROFILE=release node bench/desktop.mjs
