// The shared harness of the browser tests: the real signaling service serving the built UI,
// Debian's Chromium through playwright-core, and `confab join --json` peers.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { networkInterfaces, tmpdir } from "node:os";
import { createSocket } from "node:dgram";
import { join, dirname } from "node:path";
import { createServer } from "node:net";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "../..");
export const SCREENSHOTS = join(ROOT, "tests/artifacts/screenshots");
/** Generous: a loaded 2-core CI machine is slow, and every wait ends on an event anyway. */
export const WAIT_MS = 30_000;

const target = process.env.CARGO_TARGET_DIR ?? join(ROOT, "target");
/** `release` for benchmarks; tests use the debug build `cargo test` makes anyway. */
const profile = process.env.CONFAB_PROFILE === "release" ? "release" : "debug";
export const bin = (name) => join(target, profile, name);

let built = false;
/** Builds the binaries the tests run (quick when cargo has them already): every one of the
 * workspace, with its features unified as `make test` builds them, so nothing is rebuilt. */
export function ensureBuilt() {
  if (built) return;
  const release = profile === "release" ? ["--release"] : [];
  const result = spawnSync("cargo", ["build", "--quiet", ...release, "--workspace", "--bins"], {
    cwd: ROOT,
    stdio: "inherit",
  });
  if (result.status !== 0) throw new Error("cargo build failed");
  if (!existsSync(join(ROOT, "ui/dist/index.html"))) throw new Error("build the UI first: npm run build -w ui");
  built = true;
}

/** A temporary directory removed after the test. */
export function tempDir(t, prefix) {
  const dir = mkdtempSync(join(tmpdir(), `confab-${prefix}-`));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Waits for a line of `stream` that matches `pattern`; resolves with the match. */
function waitForLine(stream, pattern, what) {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: stream });
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), WAIT_MS);
    lines.on("line", (line) => {
      const match = pattern.exec(line.replace(/\x1b\[[0-9;]*m/g, ""));
      if (match) {
        clearTimeout(timer);
        resolve(match);
      }
    });
    lines.on("close", () => reject(new Error(`ended before ${what}`)));
  });
}

/** `confab-signaling` on a free loopback port (or `port`), serving ui/dist; stopped after the
 * test. `everywhere`: listening on every address, for peers in network namespaces. */
export async function startServer(t, extraArgs = [], { port = 0, everywhere = false } = {}) {
  return (await startStoppableServer(t, extraArgs, { port, everywhere })).url;
}

/** Like `startServer`, with `stop()` to take the service away mid-test. */
export async function startStoppableServer(t, extraArgs = [], { port = 0, everywhere = false } = {}) {
  ensureBuilt();
  const listen = `${everywhere ? "0.0.0.0" : "127.0.0.1"}:${port}`;
  const server = spawn(
    bin("confab-signaling"),
    ["--listen", listen, "--ui-dir", join(ROOT, "ui/dist"), ...extraArgs],
    { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, RUST_LOG: "info" } },
  );
  const exited = new Promise((resolve) => server.once("exit", resolve));
  t.after(() => server.kill("SIGTERM"));
  const [, bound] = await waitForLine(server.stderr, /listening.*port=(\d+)/, "the signaling service to listen");
  server.stderr.resume();
  return {
    url: `http://127.0.0.1:${bound}`,
    port: Number(bound),
    stop: () => {
      server.kill("SIGTERM");
      return exited;
    },
  };
}

/** A `redis-server` of the test's own on a free loopback port, keeping nothing on disk; its
 * `redis://` URL. Stopped after the test. */
export async function startRedis(t) {
  const port = await new Promise((resolve) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
  const dir = tempDir(t, "redis");
  const redis = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  t.after(() => redis.kill("SIGKILL"));
  await waitForLine(redis.stdout, /Ready to accept connections/, "redis-server to start");
  redis.stdout.resume();
  return `redis://127.0.0.1:${port}/`;
}

/** This machine's first IPv4 address off loopback: what Chromium gathers candidates on. */
export function machineAddress() {
  const found = Object.values(networkInterfaces())
    .flat()
    .find((a) => a.family === "IPv4" && !a.internal);
  if (!found) throw new Error("this machine has no IPv4 address off loopback");
  return found.address;
}

/** Debian's coturn, of the test's own, on a free UDP port of `address`, taking credentials made
 * with `secret` (coturn's use-auth-secret); its `turn:` URL. Stopped after the test. */
export async function startCoturn(t, address, secret) {
  const port = await new Promise((resolve) => {
    const probe = createSocket("udp4").bind(0, address, () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
  const dir = tempDir(t, "coturn");
  const relayBase = 45_000 + (port % 10_000);
  const coturn = spawn(
    "turnserver",
    [
      "-n", "--no-tls", "--no-dtls", "--no-cli", "--use-auth-secret", "--realm=confab.test",
      `--static-auth-secret=${secret}`, `--listening-ip=${address}`, `--relay-ip=${address}`,
      `--listening-port=${port}`, `--min-port=${relayBase}`, `--max-port=${relayBase + 200}`,
      `--db=${join(dir, "turndb")}`, `--pidfile=${join(dir, "turn.pid")}`, "--log-file=stdout",
    ],
    { stdio: ["ignore", "pipe", "ignore"] },
  );
  t.after(() => coturn.kill("SIGKILL"));
  await waitForLine(coturn.stdout, /Total General servers/, "coturn to start");
  coturn.stdout.resume();
  return `turn:${address}:${port}`;
}

/** A key for tests that do not care which (22 base64url characters, 16 bytes). */
export const TEST_KEY = "AQIDBAUGBwgJCgsMDQ4PEA";

/** A new meeting on `server`: its whole link, with `key` in the fragment. */
export async function newMeeting(server, key = TEST_KEY) {
  const response = await fetch(`${server}/api/meetings`, { method: "POST" });
  assert.equal(response.status, 200, "the server creates a meeting");
  const { link } = await response.json();
  return `${link}#k=${key}`;
}

/** A Chromium of its own (fresh profile), closed after the test. */
export async function launchBrowser(t) {
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--use-fake-ui-for-media-stream",
      "--use-fake-device-for-media-stream",
      // Host candidates as addresses, not mDNS names: the CLI peer and this VM do no mDNS.
      "--disable-features=WebRtcHideLocalIpsWithMdns",
    ],
  });
  t.after(() => browser.close());
  return browser;
}

/** A new page in a context of its own (its own storage), at `width`×`height`, light or dark.
 * `selfSigned`: the person accepted the certificate of a meeting hosted on someone's machine
 * (the desktop app's own). */
export async function newPage(browser, { width = 1280, height = 720, colorScheme = "light", selfSigned = false } = {}) {
  const context = await browser.newContext({
    viewport: { width, height },
    colorScheme,
    permissions: ["clipboard-read", "clipboard-write"],
    acceptDownloads: true,
    ignoreHTTPSErrors: selfSigned,
  });
  // Lets the tests read `getStats()` of the page's connections (`framesDecoded`).
  await recordInstances(context, "RTCPeerConnection", "__confabPeerConnections");
  await context.addInitScript(installPageHelpers);
  const page = await context.newPage();
  page.on("pageerror", (e) => console.error(`page error: ${e.message}`));
  if (process.env.CONFAB_TEST_LOG) page.on("console", (m) => console.error(`page ${m.type()}: ${m.text()}`));
  return page;
}

export async function screenshot(page, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`) });
}

/** Opens `link`, gives `name` on the pre-join screen (microphone and camera on when asked) and
 * joins. */
export async function joinAs(page, link, name, { mic = false, cam = false } = {}) {
  await page.goto(link);
  await page.getByRole("textbox", { name: "Your name" }).fill(name);
  if (mic) await page.getByRole("button", { name: "Microphone" }).click();
  if (cam) await page.getByRole("button", { name: "Camera" }).click();
  await page.getByRole("button", { name: "Join" }).click();
  await page.getByRole("textbox", { name: "Notes" }).waitFor({ timeout: WAIT_MS });
}

/** Test instrumentation, not app code, run in every test page: what the helpers below ask of
 * a video element. */
function installPageHelpers() {
  /** The `inbound-rtp` stats of the `kind` ("video" or "audio") track `video` plays, or null. */
  window.__confabInbound = async (video, kind) => {
    const track = (kind === "audio" ? video.srcObject?.getAudioTracks() : video.srcObject?.getVideoTracks())?.[0];
    if (!track) return null;
    for (const pc of window.__confabPeerConnections) {
      for (const s of (await pc.getStats()).values()) {
        if (s.type === "inbound-rtp" && s.kind === kind && s.trackIdentifier === track.id) return s;
      }
    }
    return null;
  };
  /** Row `row` of the synthetic camera's stamp (confab-media's `SyntheticCamera`: rows of 32
   * black or white blocks, each a fortieth of the width, one block in from the top-left corner)
   * in the picture `video` shows now, or null if there is none: a block whose luma is neither
   * clearly dark nor clearly light (wider than Rust's `read_stamp`, to be sure of a match). */
  window.__confabStampRow = (video, row) => {
    const canvas = document.createElement("canvas");
    [canvas.width, canvas.height] = [video.videoWidth, video.videoHeight];
    const context = canvas.getContext("2d", { willReadFrequently: true });
    context.drawImage(video, 0, 0);
    const block = Math.floor(video.videoWidth / 40) & ~1;
    let value = 0;
    for (let bit = 0; bit < 32; bit++) {
      const [r, g, b] = context.getImageData(block * (1 + bit) + block / 2, block * (1 + row) + block / 2, 1, 1).data;
      const luma = 0.299 * r + 0.587 * g + 0.114 * b;
      if (luma > 60 && luma < 190) return null;
      value = value * 2 + (luma >= 128 ? 1 : 0);
    }
    return value;
  };
}

/** Test instrumentation, not app code: every `window[constructor]` the pages of `target` (a
 * page or a context) create is also kept in `window[list]`. */
function recordInstances(target, constructor, list) {
  return target.addInitScript(
    ([constructor, list]) => {
      const Native = window[constructor];
      window[list] = [];
      window[constructor] = class extends Native {
        constructor(...args) {
          super(...args);
          window[list].push(this);
        }
      };
    },
    [constructor, list],
  );
}

/** Lets the test cut `page`'s signaling socket later (`cutSignaling`), as a network blip would. */
export async function allowCuttingSignaling(page) {
  await recordInstances(page, "WebSocket", "__confabSockets");
}

/** Closes `page`'s signaling socket and waits until the page is back in the meeting. */
export async function cutSignaling(page) {
  await page.evaluate(() => {
    for (const socket of window.__confabSockets) socket.close();
  });
  await page.getByRole("status").filter({ hasText: "Reconnecting" }).waitFor({ timeout: WAIT_MS });
  await page.getByRole("status").filter({ hasText: "In the meeting" }).waitFor({ timeout: WAIT_MS });
}

/** Resolves once `page` plays decoded video frames in the tile named `label` (a person's name, or
 * "NAME's screen"): the tile's element presents frames, and the `inbound-rtp` stats of the track
 * it shows count `framesDecoded > 0`. Returns the tile's rendered size. */
export async function waitVideo(page, label) {
  const video = page.getByRole("figure", { name: label, exact: true }).locator("video");
  await video.waitFor({ timeout: WAIT_MS });
  const element = await video.elementHandle();
  await page.waitForFunction((v) => v.videoWidth > 0 && v.getVideoPlaybackQuality().totalVideoFrames > 0, element, {
    timeout: WAIT_MS,
  });
  await page.waitForFunction(async (v) => (await window.__confabInbound(v, "video"))?.framesDecoded > 0, element, {
    timeout: WAIT_MS,
    polling: 250,
  });
  return video.boundingBox();
}

/** Resolves once `page` decodes sound from the tile named `label`: the `inbound-rtp` stats of the
 * audio track that tile plays count decoded audio energy above silence. */
export async function waitAudio(page, label) {
  const video = page.getByRole("figure", { name: label, exact: true }).locator("video");
  // Attached, not visible: a tile with sound and no picture hides its video element.
  await video.waitFor({ state: "attached", timeout: WAIT_MS });
  await page.waitForFunction(async (v) => (await window.__confabInbound(v, "audio"))?.totalAudioEnergy > 0, await video.elementHandle(), {
    timeout: WAIT_MS,
    polling: 250,
  });
}

/** The frame number the synthetic camera (confab-media's `SyntheticCamera`) stamped on the
 * picture the tile named `label` shows now, or null if it carries no stamp. */
export async function syntheticFrameNumber(page, label) {
  const video = page.getByRole("figure", { name: label, exact: true }).locator("video");
  return video.evaluate((v) => window.__confabStampRow(v, 0));
}

/** Resolves once `peerName` shows as connected in `page`'s participant list. */
export async function waitConnected(page, peerName) {
  try {
    await page
    .getByRole("list", { name: "Participants" })
    .getByRole("listitem")
    .filter({ hasText: peerName })
    .filter({ hasText: "connected" })
    .waitFor({ timeout: WAIT_MS });
  } catch (e) {
    const list = await page.getByRole("list", { name: "Participants" }).innerText();
    throw new Error(`${peerName} never showed as connected; the list reads: ${list.replaceAll("\n", " | ")}`, { cause: e });
  }
}

/** The notes as the editor in `page` shows them: its lines, joined (every line of a short text
 * is rendered), without others' carets. Self-contained, as it runs in the page (the browser's,
 * or the desktop app's). */
export function notesMatch({ expected, containing }) {
  // Widgets (others' carets with their names) are not part of the text.
  const lineText = (line) => {
    const copy = line.cloneNode(true);
    for (const widget of copy.querySelectorAll('[contenteditable="false"], .cm-remote-caret')) widget.remove();
    return copy.textContent;
  };
  const lines = document.querySelectorAll('[aria-label="Notes"] .cm-line');
  const text = Array.from(lines, lineText).join("\n");
  if (expected !== undefined) return text === expected;
  if (containing !== undefined) return text.includes(containing);
  return text;
}

export function notesText(page) {
  return page.evaluate(notesMatch, {});
}

/** Waits until the editor in `page` shows exactly `text`. */
export function waitForNotes(page, text) {
  return page.waitForFunction(notesMatch, { expected: text }, { timeout: WAIT_MS });
}

/** Waits until the notes in `page` contain `part`. */
export function waitForNotesContaining(page, part) {
  return page.waitForFunction(notesMatch, { containing: part }, { timeout: WAIT_MS });
}

/** Drops a file of `size` pseudo-random bytes named `name` onto the meeting in `page`, as a
 * person dragging it from their desktop would; returns its sha256. */
export async function dropFile(page, name, size) {
  const transfer = await page.evaluateHandle(
    ({ name, size }) => {
      const bytes = new Uint8Array(size);
      let x = 0x2545f491;
      for (let i = 0; i < size; i++) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        bytes[i] = x & 0xff;
      }
      const data = new DataTransfer();
      data.items.add(new File([bytes], name, { type: "application/octet-stream" }));
      return data;
    },
    { name, size },
  );
  const meeting = page.locator(".meeting");
  await meeting.dispatchEvent("dragover", { dataTransfer: transfer });
  await meeting.dispatchEvent("drop", { dataTransfer: transfer });
  return page.evaluate(async (data) => {
    const digest = await crypto.subtle.digest("SHA-256", await data.files[0].arrayBuffer());
    return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
  }, transfer);
}

/** Clicks "Save NAME" in `page` and returns the sha256 of the file the browser saves. */
export async function savedFileSha256(page, name) {
  const [download] = await Promise.all([
    page.waitForEvent("download", { timeout: WAIT_MS }),
    page.getByRole("link", { name: `Save ${name}` }).click(),
  ]);
  assert.equal(download.suggestedFilename(), name);
  return sha256(readFileSync(await download.path()));
}

/** The sha256 of `bytes`, in hex. */
export const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");

/** Waits until the transfer of `name` in `page` is complete at 100%: sent and confirmed by the
 * receiver, or received and verified. */
export async function waitTransferDone(page, name) {
  const item = page.getByRole("list", { name: "Files" }).getByRole("listitem").filter({ hasText: name });
  try {
    await item.filter({ hasText: /(sent|received), 100%/ }).waitFor({ timeout: WAIT_MS });
  } catch (e) {
    // Where it stood says whether it stalled, crawled or failed.
    const shown = await item.allTextContents().catch(() => []);
    throw new Error(`${name} not done within ${WAIT_MS} ms; the list shows ${JSON.stringify(shown)}`, { cause: e });
  }
}

/** A `confab join --json` process (with extra `args`, e.g. `--synthetic-camera`): send commands,
 * wait for events. Killed after the test. */
export function startCli(t, link, name, { args = [], env = {}, namespace = null } = {}) {
  ensureBuilt();
  const dataDir = tempDir(t, "cli");
  // In a network namespace (see `NetworkNamespace`), through `ip netns exec`.
  const [program, ...prefix] = namespace ? ["ip", "netns", "exec", namespace, bin("confab")] : [bin("confab")];
  const child = spawn(
    program,
    [
      ...prefix,
      "join",
      link,
      "--name",
      name,
      "--json",
      "--data-dir",
      join(dataDir, "data"),
      "--download-dir",
      join(dataDir, "downloads"),
      ...args,
    ],
    { stdio: ["pipe", "pipe", "inherit"], env: { ...process.env, ...env } },
  );
  t.after(() => child.kill("SIGKILL"));
  const events = [];
  const waiters = [];
  createInterface({ input: child.stdout }).on("line", (line) => {
    if (process.env.CONFAB_TEST_LOG) console.error(`cli ${name}: ${line}`);
    let event;
    try {
      event = JSON.parse(line);
    } catch {
      return;
    }
    events.push(event);
    for (const w of [...waiters]) {
      if (w.pick(event)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(event);
      }
    }
  });
  return {
    events,
    send(command) {
      child.stdin.write(JSON.stringify(command) + "\n");
    },
    /** The first event (already seen or still to come) that `pick` accepts. */
    waitFor(pick, what) {
      const seen = events.find(pick);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`the CLI peer never reported ${what}`)), WAIT_MS);
        waiters.push({ pick, resolve: (e) => (clearTimeout(timer), resolve(e)) });
      });
    },
  };
}

/** A private X server (Xvfb) of `width`×`height` on a display number it picks itself. Returns
 * `{ display }` (the `DISPLAY` value); the server is stopped after the test, once the windows on
 * it (`launchOnDisplay`) are closed: a window whose X server is gone cannot close cleanly. */
export async function startXvfb(t, width, height) {
  const child = spawn("Xvfb", ["-displayfd", "1", "-nolisten", "tcp", "-noreset", "-screen", "0", `${width}x${height}x24`], {
    stdio: ["ignore", "pipe", "ignore"],
  });
  const windows = [];
  t.after(async () => {
    for (const close of windows) await close();
    child.kill("SIGKILL");
  });
  const line = await new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).once("line", resolve);
    child.once("exit", (code) => reject(new Error(`Xvfb exited (${code}) before it started`)));
  });
  return { display: `:${line.trim()}`, windows };
}

/** A Chromium window filling the X server `xvfb` (kiosk mode, no browser frame), for what a
 * person would share; its own profile, removed after the test. Closed before the server stops.
 * A persistent context, because only the window Chromium opens at launch is in kiosk mode: a
 * context made afterwards opens an ordinary window with tabs and an address bar. */
export async function launchOnDisplay(t, xvfb, width, height) {
  const context = await chromium.launchPersistentContext(tempDir(t, "kiosk"), {
    executablePath: "/usr/bin/chromium",
    headless: false,
    viewport: null,
    env: { ...process.env, DISPLAY: xvfb.display },
    args: [
      "--kiosk",
      "--test-type",
      `--window-size=${width},${height}`,
      "--window-position=0,0",
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  xvfb.windows.push(() => context.close());
  return context.pages()[0] ?? context.newPage();
}

/** A page of our own source code (`repeat` times over), as an editor shows it: monospace,
 * dark on light; what the screen-sharing test and benchmark share. */
export function codePage({ repeat = 1 } = {}) {
  const code = ["crates/core/src/engine.rs", "crates/media/src/screen.rs", "crates/core/src/peer/sending.rs"]
    .map((file) => readFileSync(join(ROOT, file), "utf8"))
    .join("\n")
    .repeat(repeat)
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;");
  return `<!doctype html><html><body style="margin:0;background:#fff;color:#1f2328">
<pre style="margin:0;padding:16px 24px;font:14px/20px 'DejaVu Sans Mono',monospace">${code}</pre></body></html>`;
}

/** The X display `display` as read by ImageMagick's `import` (not by our capture): the BT.601
 * luma of every pixel, row by row. */
export function screenLuma(display, width, height) {
  const grab = spawnSync("import", ["-silent", "-window", "root", "-display", display, "-depth", "8", "rgb:-"], {
    maxBuffer: width * height * 4,
  });
  assert.equal(grab.status, 0, `import: ${grab.stderr}`);
  return lumaOfRgb(grab.stdout, width * height, 3);
}

/** BT.601 luma of `pixels` pixels of `step` bytes each (RGB or RGBA). */
export function lumaOfRgb(bytes, pixels, step) {
  const luma = new Float64Array(pixels);
  for (let i = 0; i < pixels; i++) {
    luma[i] = 0.299 * bytes[i * step] + 0.587 * bytes[i * step + 1] + 0.114 * bytes[i * step + 2];
  }
  return luma;
}

/** Mean SSIM of two luma pictures, over 8×8 windows every 4 pixels (as libvpx measures it). */
export function ssim(a, b, width, height) {
  const [c1, c2] = [(0.01 * 255) ** 2, (0.03 * 255) ** 2];
  let [sum, windows] = [0, 0];
  for (let y = 0; y + 8 <= height; y += 4) {
    for (let x = 0; x + 8 <= width; x += 4) {
      let [sa, sb, saa, sbb, sab] = [0, 0, 0, 0, 0];
      for (let dy = 0; dy < 8; dy++) {
        for (let dx = 0; dx < 8; dx++) {
          const i = (y + dy) * width + x + dx;
          const [p, q] = [a[i], b[i]];
          sa += p;
          sb += q;
          saa += p * p;
          sbb += q * q;
          sab += p * q;
        }
      }
      const [ma, mb] = [sa / 64, sb / 64];
      const [va, vb, cov] = [saa / 64 - ma * ma, sbb / 64 - mb * mb, sab / 64 - ma * mb];
      sum += ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2));
      windows++;
    }
  }
  return sum / windows;
}

/** The `inbound-rtp` stats of the video track the tile named `label` shows in `page`. */
export async function inboundVideoStats(page, label) {
  const video = page.getByRole("figure", { name: label, exact: true }).locator("video");
  const stats = await video.evaluate(async (v) => ({ ...(await window.__confabInbound(v, "video")) }));
  assert.ok(stats.framesDecoded !== undefined, `no incoming video stats for ${label}`);
  return stats;
}

/** Replaces the camera a page's `getUserMedia` returns with a canvas that carries the synthetic
 * camera's stamp (confab-media's `SyntheticCamera`: two rows of 32 blocks, the frame number and
 * the wall clock in ms modulo 2³²), so that the glass-to-glass delay of a browser sender can be
 * read like a Rust sender's. Call before the page opens the meeting. */
export async function useStampedCamera(page, { width = 640, height = 360, fps = 30 } = {}) {
  await page.addInitScript(
    ([width, height, fps]) => {
      const original = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
      navigator.mediaDevices.getUserMedia = async (constraints = {}) => {
        if (!constraints.video) return original(constraints);
        const stream = constraints.audio ? await original({ audio: constraints.audio }) : new MediaStream();
        const canvas = Object.assign(document.createElement("canvas"), { width, height });
        const context = canvas.getContext("2d");
        const block = Math.floor(width / 40) & ~1;
        let frame = 0;
        const draw = () => {
          context.fillStyle = "#406080";
          context.fillRect(0, 0, width, height);
          context.fillStyle = "#808080";
          context.fillRect((frame * 4) % (width - height / 4), height / 2, height / 4, height / 4);
          context.fillRect(0, 0, block * 34, block * 4);
          const millis = Date.now() % 2 ** 32;
          [frame, millis].forEach((value, row) => {
            for (let bit = 0; bit < 32; bit++) {
              const one = Math.floor(value / 2 ** (31 - bit)) % 2 === 1;
              context.fillStyle = one ? "#ebebeb" : "#101010";
              context.fillRect(block * (1 + bit), block * (1 + row), block, block);
            }
          });
          frame++;
        };
        draw();
        setInterval(draw, 1000 / fps);
        stream.addTrack(canvas.captureStream(fps).getVideoTracks()[0]);
        return stream;
      };
    },
    [width, height, fps],
  );
}

/** For `ms` milliseconds, the delay of every stamped frame the tile named `label` presents:
 * from the sender's capture (the stamp's wall-clock ms) to the frame being shown here. */
export async function stampDelays(page, label, ms) {
  const video = page.getByRole("figure", { name: label, exact: true }).locator("video");
  return video.evaluate(
    (v, ms) =>
      new Promise((resolve) => {
        const delays = [];
        const started = performance.now();
        const onFrame = () => {
          const now = Date.now() % 2 ** 32;
          const millis = window.__confabStampRow(v, 1);
          if (millis !== null) delays.push(((now - millis + 2 ** 32) % 2 ** 32) | 0);
          if (performance.now() - started < ms) v.requestVideoFrameCallback(onFrame);
          else resolve(delays);
        };
        v.requestVideoFrameCallback(onFrame);
      }),
    ms,
  );
}

/** Runs `ip ARGS`, which must succeed. */
function ip(...args) {
  const result = spawnSync("ip", args, { encoding: "utf8" });
  if (result.status !== 0) throw new Error(`ip ${args.join(" ")}: ${result.stderr || result.error}`);
}

/** A network namespace joined to this machine by a veth pair: this machine is `198.18.TAG.1`,
 * the namespace `198.18.TAG.2` (RFC 2544's range for network tests). Removed after the test.
 * Needs root, as CI has: without it the test fails, saying so. */
export function networkNamespace(t, tag) {
  assert.equal(process.getuid(), 0, "this test makes a network namespace, which needs root (CI runs as root)");
  const name = `cfbrowser${tag}`;
  const [outer, inner] = [`cfb${tag}h`, `cfb${tag}n`];
  spawnSync("ip", ["netns", "del", name]); // left over from a run that was killed
  ip("netns", "add", name);
  t.after(() => spawnSync("ip", ["netns", "del", name]));
  ip("link", "add", outer, "type", "veth", "peer", "name", inner);
  ip("link", "set", inner, "netns", name);
  ip("addr", "add", `198.18.${tag}.1/24`, "dev", outer);
  ip("link", "set", outer, "up");
  ip("-n", name, "addr", "add", `198.18.${tag}.2/24`, "dev", inner);
  ip("-n", name, "link", "set", inner, "up");
  ip("-n", name, "link", "set", "lo", "up");
  // Removing the subnet's first address must not take a second one with it (see `readdress`).
  // (Written to /proc directly: a minimal machine may have no `sysctl`.)
  ip("netns", "exec", name, "sh", "-c", `echo 1 > /proc/sys/net/ipv4/conf/${inner}/promote_secondaries`);
  let address = `198.18.${tag}.2`;
  return {
    name,
    host: `198.18.${tag}.1`,
    /** Moves the namespace to `198.18.TAG.last`, as a network handover would. */
    readdress(last) {
      const next = `198.18.${tag}.${last}`;
      ip("-n", name, "addr", "add", `${next}/24`, "dev", inner);
      ip("-n", name, "addr", "del", `${address}/24`, "dev", inner);
      address = next;
    },
  };
}
