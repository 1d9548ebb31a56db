// `make bench-desktop`: the desktop app as shipped (the binary inside the `.deb` that `make
// package` built), under Xvfb with a D-Bus session and an unlocked GNOME Keyring, as the desktop
// tests run it. Measures cold start, memory idle (beside WebKitGTK's own MiniBrowser on a blank
// page, the floor under any app on this WebKitGTK) and in a 3-peer meeting with a screen share, the
// `.deb`'s size, keystroke-to-remote latency (desktop → browser), and 1080p video shown by each
// of the window's two video paths. Writes bench/results/desktop.json.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, realpathSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { percentile, scope } from "./common.mjs";
import {
  ROOT,
  joinAs,
  launchBrowser,
  newMeeting,
  newPage,
  startCli,
  startServer,
  startXvfb,
  tempDir,
  waitConnected,
  waitVideo,
} from "../tests/browser/harness.mjs";
import { SESSION_BUS, UNLOCK_KEYRING, appEnvironment, launchApp } from "../tests/desktop/app.mjs";

const TARGETS = { coldStartMs: 1500, idleRssMb: 200, debMb: 15, keystrokeP99Ms: 30, fps1080: 30 };
const COLD_STARTS = 5;
// Enough that the 99th percentile is not just the second-slowest keystroke.
const KEYSTROKES = 300;
const VIDEO_SECONDS = 20;

const run = scope();
const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const round = (ms) => Math.round(ms * 10) / 10;
const mb = (bytes) => Math.round((bytes / 2 ** 20) * 10) / 10;

// The shipped binary, unpacked from the newest .deb (or, to try a build without packaging it,
// the one CONFAB_DESKTOP_BIN names).
const debDir = join(ROOT, "target/release/bundle/deb");
const deb = readdirSync(debDir, { withFileTypes: true })
  .filter((entry) => entry.isFile() && entry.name.endsWith(".deb"))
  .map((entry) => join(debDir, entry.name))
  .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
if (!deb) throw new Error(`no .deb in ${debDir}: run make package`);
if (!process.env.CONFAB_DESKTOP_BIN) {
  const unpacked = tempDir(run, "deb");
  const unpack = spawnSync("dpkg-deb", ["-x", deb, unpacked]);
  if (unpack.status !== 0) throw new Error(`dpkg-deb -x ${deb}: ${unpack.stderr}`);
  // Every launch below, through tauri-driver too, runs this one.
  process.env.CONFAB_DESKTOP_BIN = join(unpacked, "usr/bin/confab-desktop");
}
const app = process.env.CONFAB_DESKTOP_BIN;

/** Each process's children, as /proc has them now. */
function processChildren() {
  const children = new Map();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // The parent is the fourth field, after the command in parentheses.
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const parent = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(parent, [...(children.get(parent) ?? []), Number(entry)]);
    } catch {
      // Gone meanwhile.
    }
  }
  return children;
}

/** A process's name, or null once it is gone. */
function processName(pid) {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return null;
  }
}

/** Process `root` and everything it started, depth first. */
function descendants(root) {
  const children = processChildren();
  const found = [];
  const visit = (pid) => {
    found.push(pid);
    for (const child of children.get(pid) ?? []) visit(child);
  };
  visit(root);
  return found;
}

/** The process running `executable` among those `root` started. */
function processOf(root, executable = app) {
  const target = realpathSync(executable);
  const pid = descendants(root).find((pid) => {
    try {
      return realpathSync(`/proc/${pid}/exe`) === target;
    } catch {
      return false;
    }
  });
  if (pid === undefined) throw new Error(`${executable} is not running`);
  return pid;
}

/** RSS and PSS (MiB) of process `root` and all it started (the webview's processes). */
function treeMemory(root) {
  const total = { rssMb: 0, pssMb: 0, processes: 0, rssMbByProcess: {}, pssMbByProcess: {} };
  for (const pid of descendants(root)) {
    try {
      const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
      const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(rollup)?.[1] ?? 0) * 1024;
      total.rssMb += mb(field("Rss"));
      total.pssMb += mb(field("Pss"));
      total.processes += 1;
      const name = processName(pid) ?? String(pid);
      total.rssMbByProcess[name] = Math.round(mb(field("Rss")));
      total.pssMbByProcess[name] = Math.round(mb(field("Pss")));
    } catch {
      // Gone meanwhile.
    }
  }
  return { ...total, rssMb: Math.round(total.rssMb), pssMb: Math.round(total.pssMb) };
}

/** Types KEYSTROKES characters in the notes of `typist` (see `appTypist`, `pageTypist`), one at
 * a time, each timed from its keydown there to `watcher`'s editor showing it (both read the same
 * wall clock). */
async function keystrokes(typist, watcher) {
  await watcher.evaluate(() => {
    const editor = document.querySelector('.cm-content[aria-label="Notes"]');
    // The text's length as shown, without widgets (the placeholder, others' carets).
    const length = () =>
      Array.from(editor.querySelectorAll(".cm-line"), (line) => {
        const copy = line.cloneNode(true);
        for (const widget of copy.querySelectorAll('[contenteditable="false"], .cm-remote-caret')) widget.remove();
        return copy.textContent.length + 1;
      }).reduce((sum, n) => sum + n, -1);
    window.__notesLength = length;
    window.__shown = [];
    window.__observer?.disconnect();
    window.__observer = new MutationObserver(() => window.__shown.push({ at: Date.now(), length: length() }));
    window.__observer.observe(editor, { subtree: true, childList: true, characterData: true });
  });
  const timeKeys = () => {
    window.__keydowns = [];
    if (!window.__timingKeys) addEventListener("keydown", () => window.__keydowns.push(Date.now()), { capture: true });
    window.__timingKeys = true;
  };
  await typist.evaluate(timeKeys);
  const startLength = await watcher.evaluate(() => window.__notesLength());
  for (let i = 1; i <= KEYSTROKES; i++) {
    await typist.type(String(i % 10));
    await watcher.waitForFunction((length) => window.__shown.some((s) => s.length >= length), startLength + i, { timeout: 30_000, polling: 5 });
  }
  const keydowns = await typist.evaluate(() => window.__keydowns);
  const shown = await watcher.evaluate(() => window.__shown);
  const delays = keydowns.slice(0, KEYSTROKES).map((at, i) => shown.find((s) => s.length >= startLength + i + 1).at - at);
  return { p50: percentile(delays, 50), p99: percentile(delays, 99), max: Math.max(...delays), count: delays.length };
}

/** Typing in the app's notes, key by key, through WebDriver. */
async function appTypist(app) {
  const notes = await app.element('.cm-content[aria-label="Notes"]');
  return {
    evaluate: (fn) => app.evaluate(fn),
    type: (key) => app.request("POST", `${app.session}/element/${notes}/value`, { text: key }),
  };
}

/** Typing in a browser's notes, at their end. */
async function pageTypist(page) {
  await page.getByRole("textbox", { name: "Notes" }).click();
  await page.keyboard.press("Control+End");
  return { evaluate: (fn) => page.evaluate(fn), type: (key) => page.keyboard.type(key) };
}

/** WebKitGTK's MiniBrowser (shipped with the library the app runs on): the reference for memory. */
function miniBrowser() {
  const libdir = spawnSync("pkg-config", ["--variable=libdir", "webkit2gtk-4.1"], { encoding: "utf8" }).stdout?.trim();
  const path = join(libdir ?? "", "webkit2gtk-4.1/MiniBrowser");
  if (!libdir || !existsSync(path)) throw new Error(`no WebKitGTK MiniBrowser at ${path}: install libwebkit2gtk-4.1-0`);
  return path;
}

let coldStartMs, idle, webkitFloor, meetingMemory, keystrokeMs, ipcRoundTripMs, video;
// Whatever fails, nothing this started is left running.
try {
  // Cold start: from exec to the window asking for its start page (the `startup` command, after
  // which the page renders it in the same task), each launch with a fresh home. The first launch
  // reads the binary from disk; the others find it in the page cache.
  const xvfb = await startXvfb(run, 1280, 800);
  async function coldStart() {
    const home = tempDir(run, "cold-home");
    const script = [
      UNLOCK_KEYRING,
      // The moment of exec, in ns, then the app itself in this process.
      'echo "exec $(date +%s%N)" >&2',
      'exec "$0"',
    ].join("; ");
    const [bus, ...busArgs] = SESSION_BUS;
    const child = spawn(bus, [...busArgs, "sh", "-c", script, app], {
      env: { ...appEnvironment(home, xvfb.display), CONFAB_LOG: "confab_desktop=info", NO_COLOR: "1" },
      stdio: ["ignore", "ignore", "pipe"],
      detached: true,
    });
    let launched = 0;
    const ready = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("the window never came up")), 30_000);
      createInterface({ input: child.stderr }).on("line", (line) => {
        if (line.startsWith("exec ")) launched = Number(BigInt(line.slice(5)) / 1000n) / 1000;
        if (line.includes("the window asked for its start page")) {
          clearTimeout(timer);
          resolve(performance.timeOrigin + performance.now());
        }
      });
    });
    const startMs = ready - launched;
    // Idle: nothing happening, the start page shown.
    await delay(5000);
    const idle = treeMemory(processOf(child.pid));
    process.kill(-child.pid, "SIGTERM");
    await new Promise((resolve) => child.once("exit", resolve));
    return { startMs, idle };
  }
  const starts = [];
  for (let i = 0; i < COLD_STARTS; i++) starts.push(await coldStart());
  const startTimes = starts.map((s) => Math.round(s.startMs));
  coldStartMs = { first: startTimes[0], median: percentile(startTimes, 50), all: startTimes };
  idle = starts.at(-1).idle;

  // What WebKitGTK alone holds here: its MiniBrowser on a blank page, started as the app is
  // (same X server, environment and kind of D-Bus session), measured once it has settled as long.
  {
    const browserPath = miniBrowser();
    const [bus, ...busArgs] = SESSION_BUS;
    const child = spawn(bus, [...busArgs, browserPath, "about:blank"], {
      env: appEnvironment(tempDir(run, "floor-home"), xvfb.display),
      stdio: "ignore",
      detached: true,
    });
    const exited = new Promise((resolve) => child.once("exit", resolve));
    const deadline = Date.now() + 30_000;
    // Settled: the page has its web process.
    while (!descendants(child.pid).some((pid) => processName(pid)?.startsWith("WebKitWebProces"))) {
      if (Date.now() > deadline) throw new Error("MiniBrowser never started a web process");
      await delay(100);
    }
    await delay(5000);
    webkitFloor = treeMemory(processOf(child.pid, browserPath));
    process.kill(-child.pid, "SIGTERM");
    await exited;
  }

  // A 3-peer meeting: the app hosts, two browsers join. Keystrokes are timed while it is quiet,
  // then again once the app shares its screen and both browsers send their cameras.
  const browser = await launchBrowser(run);
  const desk = await launchApp(run);
  const link = await desk.newMeeting("Desk");
  const pages = [];
  for (const name of ["Ana", "Bo"]) {
    const page = await newPage(browser, { selfSigned: true });
    await joinAs(page, link, name);
    await waitConnected(page, "Desk");
    pages.push(page);
  }
  const [watcher, other] = pages;
  // The IPC under the typing path: a command to the engine and its answer, from the page.
  await desk.evaluate(() => {
    window.__roundTrips = null;
    void (async () => {
      const times = [];
      for (let i = 0; i < 200; i++) {
        const start = performance.now();
        await window.__TAURI_INTERNALS__.invoke("meeting_command", { command: { cmd: "notes" } });
        times.push(performance.now() - start);
      }
      window.__roundTrips = times;
    })();
  });
  const trips = await desk.waitFor(() => window.__roundTrips, "200 commands answered");
  ipcRoundTripMs = { p50: round(percentile(trips, 50)), p99: round(percentile(trips, 99)), count: trips.length };
  keystrokeMs = {
    quiet: await keystrokes(await appTypist(desk), watcher),
    // The reference: the same from one browser to the other, in the same meeting.
    browserToBrowserQuiet: await keystrokes(await pageTypist(other), watcher),
  };
  await desk.clickButton("Share screen");
  await desk.click(".screen-choice");
  for (const page of pages) {
    await page.getByRole("button", { name: "Camera" }).click();
    await waitVideo(page, "Desk's screen");
  }
  await desk.waitFor(() => document.querySelectorAll("figure canvas[data-frames-decoded]").length >= 2, "both cameras");
  await delay(10_000);
  meetingMemory = treeMemory(processOf(desk.driverPid));
  keystrokeMs.withShareAndCameras = await keystrokes(await appTypist(desk), watcher);
  for (const page of pages) await page.close();
  await desk.close();

  // 1080p30 into the app, from a CLI peer's synthetic camera, on each video path in turn: frames
  // shown per second, frames that reached the window but were not shown, and the latency the
  // window adds (from the engine having the frame whole to its picture drawn).
  const server = await startServer(run);
  async function videoPath(path) {
    // Its own sender and window, stopped before the next path's start.
    const part = scope();
    const link = await newMeeting(server);
    startCli(part, link, "Camera", { args: ["--synthetic-camera=1920x1080"] });
    const viewer = await launchApp(part, { width: 1920, height: 1080 });
    if (path === "engine") await viewer.evaluate(() => void Object.defineProperty(window, "VideoDecoder", { value: undefined }));
    await viewer.joinByLink("Viewer", link);
    const tile = 'figure[aria-label="Camera"] canvas';
    const figures = () => viewer.evaluate((css) => ({ ...document.querySelector(css)?.dataset, at: performance.now() }), tile);
    await viewer.waitFor((css) => Number(document.querySelector(css)?.dataset.framesDecoded ?? 0) > 30, "the camera shown", tile);
    await delay(3000);
    const before = await figures();
    await delay(VIDEO_SECONDS * 1000);
    const after = await figures();
    await part.close();
    const seconds = (after.at - before.at) / 1000;
    const shown = Number(after.framesDecoded) - Number(before.framesDecoded);
    const received = Number(after.framesReceived) - Number(before.framesReceived);
    if (after.path !== path) throw new Error(`the video took the ${after.path} path, not ${path}`);
    return {
      size: after.size,
      fpsShown: Math.round((shown / seconds) * 10) / 10,
      fpsReceived: Math.round((received / seconds) * 10) / 10,
      notShown: received - shown,
      addedLatencyMs: { p50: Number(after.latencyP50), p99: Number(after.latencyP99) },
    };
  }
  video = { webcodecs: await videoPath("webcodecs"), engine: await videoPath("engine") };
} finally {
  await run.close();
}

const debMb = mb(statSync(deb).size);
const result = {
  when: new Date().toISOString(),
  deb: { file: deb.slice(ROOT.length + 1), mb: debMb },
  coldStartMs,
  idle,
  webkitFloor,
  threePeerMeetingWithShare: meetingMemory,
  keystrokeToBrowserMs: keystrokeMs,
  ipcRoundTripMs,
  video1080p: video,
  targets: TARGETS,
  met: {
    coldStart: coldStartMs.median < TARGETS.coldStartMs,
    idleRss: idle.rssMb < TARGETS.idleRssMb,
    // The processes share WebKit's libraries: summed RSS counts them thrice, PSS once.
    idlePss: idle.pssMb < TARGETS.idleRssMb,
    deb: debMb < TARGETS.debMb,
    keystrokeP99: keystrokeMs.quiet.p99 < TARGETS.keystrokeP99Ms,
    // One frame may be in the decoder as the figures are read.
    video1080p30: Object.values(video).some((v) => v.fpsShown >= TARGETS.fps1080 - 1 && v.notShown <= 1),
  },
  note:
    "sizes and memory in MiB (2^20 bytes); release build from the .deb, under Xvfb on this 2-core machine without a GPU (so the app composites in software; its UI and web processes each map Mesa's llvmpipe, whose LLVM is about 43 MB of RSS); memory is the app with its WebKit processes; 'webkitFloor' is WebKitGTK's own MiniBrowser showing a blank page under the same conditions, the least any app on this WebKitGTK holds here; " +
    "the video's sender is a CLI peer on the same machine encoding its synthetic camera at 1920×1080, 30 fps; 'not shown' counts frames that reached the window but were not drawn",
};

console.log(`
| what                                   | measured | target |
|----------------------------------------|----------|--------|
| cold start, median of ${COLD_STARTS} (first)         | ${coldStartMs.median} ms (${coldStartMs.first}) | < ${TARGETS.coldStartMs} ms |
| idle RSS (PSS), ${idle.processes} processes          | ${idle.rssMb} MB (${idle.pssMb}) | < ${TARGETS.idleRssMb} MB |
| WebKitGTK alone: MiniBrowser, blank page, RSS (PSS) | ${webkitFloor.rssMb} MB (${webkitFloor.pssMb}) | (reference) |
| the app above WebKitGTK alone, RSS (PSS) | ${idle.rssMb - webkitFloor.rssMb} MB (${idle.pssMb - webkitFloor.pssMb}) | |
| 3-peer meeting + share RSS (PSS)       | ${meetingMemory.rssMb} MB (${meetingMemory.pssMb}) | |
| .deb                                   | ${debMb} MiB | < ${TARGETS.debMb} MB |
| keystroke → browser p50 / p99, quiet   | ${keystrokeMs.quiet.p50} / ${keystrokeMs.quiet.p99} ms | p99 < ${TARGETS.keystrokeP99Ms} ms |
| IPC: a command and its answer p50 / p99 | ${ipcRoundTripMs.p50} / ${ipcRoundTripMs.p99} ms | |
| browser → browser, quiet (reference)   | ${keystrokeMs.browserToBrowserQuiet.p50} / ${keystrokeMs.browserToBrowserQuiet.p99} ms | |
| keystroke → browser, share + 2 cameras | ${keystrokeMs.withShareAndCameras.p50} / ${keystrokeMs.withShareAndCameras.p99} ms | |
| 1080p WebCodecs: fps shown, not shown, added p50/p99 | ${video.webcodecs.fpsShown}, ${video.webcodecs.notShown}, ${video.webcodecs.addedLatencyMs.p50}/${video.webcodecs.addedLatencyMs.p99} ms | 30 fps, 0 |
| 1080p decoded in Rust: fps shown, not shown, added p50/p99 | ${video.engine.fpsShown}, ${video.engine.notShown}, ${video.engine.addedLatencyMs.p50}/${video.engine.addedLatencyMs.p99} ms | |
`);
mkdirSync(join(ROOT, "bench/results"), { recursive: true });
writeFileSync(join(ROOT, "bench/results/desktop.json"), `${JSON.stringify(result, null, 2)}\n`);
