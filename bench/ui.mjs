// `make bench-ui`: how long a browser that opens a meeting link takes until it can talk to a
// peer (data channel open, hello verified) and until the first remote video frame is on screen,
// with a browser and with the CLI as that peer, in one run; and the UI's production bundle size.
// Writes bench/results/ui.json.
import { readdirSync, readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { percentile, scope } from "./common.mjs";
import { ROOT, joinAs, launchBrowser, newMeeting, newPage, startCli, startServer, waitConnected } from "../tests/browser/harness.mjs";

const RUNS = 7;

/** Opens `link` in a fresh page (camera on) and reads the page's own marks, in ms since the
 * navigation started. */
async function openLink(browser, link, peerName) {
  const page = await newPage(browser);
  await joinAs(page, link, "Newcomer", { cam: true, mic: true });
  await waitConnected(page, peerName);
  await page.waitForFunction(() => performance.getEntriesByName("confab:first-remote-frame").length > 0, null, {
    timeout: 30_000,
  });
  const marks = await page.evaluate(() =>
    Object.fromEntries(performance.getEntriesByType("mark").map((m) => [m.name, m.startTime])),
  );
  await page.context().close();
  return marks;
}

async function measure(kind) {
  const samples = [];
  for (let run = 0; run < RUNS; run++) {
    const t = scope();
    try {
      const server = await startServer(t);
      const link = await newMeeting(server);
      const browser = await launchBrowser(t);
      if (kind === "browser") {
        const host = await newPage(browser);
        await joinAs(host, link, "Host", { cam: true, mic: true });
      } else {
        // Its synthetic camera: 640×360 VP8 at 30 fps, like the browser's fake camera.
        const cli = startCli(t, link, "Host", { args: ["--synthetic-camera"] });
        await cli.waitFor((e) => e.event === "joined", "joined");
      }
      const marks = await openLink(browser, link, "Host");
      samples.push({
        channelOpenMs: marks["confab:first-peer-ready"],
        firstFrameMs: marks["confab:first-remote-frame"] ?? null,
        joinClickedMs: marks["confab:join-clicked"],
      });
    } finally {
      await t.close();
    }
  }
  const summary = (key) => {
    const values = samples.map((s) => s[key]).filter((v) => typeof v === "number");
    return values.length ? { p50: percentile(values, 50), max: Math.max(...values) } : null;
  };
  return { runs: RUNS, samples, channel_open_ms: summary("channelOpenMs"), first_frame_ms: summary("firstFrameMs"), join_clicked_ms: summary("joinClickedMs") };
}

function bundleSize() {
  const assets = join(ROOT, "ui/dist/assets");
  const files = readdirSync(assets).filter((f) => !f.endsWith(".wasm"));
  let raw = 0;
  let gzip = 0;
  for (const f of files) {
    const bytes = readFileSync(join(assets, f));
    raw += bytes.length;
    gzip += gzipSync(bytes, { level: 9 }).length;
  }
  const wasm = readdirSync(assets).filter((f) => f.endsWith(".wasm")).map((f) => readFileSync(join(assets, f)));
  return {
    files,
    bytes: raw,
    gzip_bytes: gzip,
    automerge_wasm_gzip_bytes: wasm.reduce((n, b) => n + gzipSync(b, { level: 9 }).length, 0),
    target_gzip_bytes: 400 * 1024,
    target_met: gzip < 400 * 1024,
  };
}

const fmt = (s) => (s ? `${s.p50.toFixed(0)} ms (max ${s.max.toFixed(0)})` : "n/a");
console.log(`opening a meeting link, ${RUNS} runs each…`);
const browserPeer = await measure("browser");
const cliPeer = await measure("cli");
const bundle = bundleSize();
console.log();
console.log("| link opened → | with a browser peer | with a CLI peer |");
console.log("|---|---|---|");
console.log(`| Join clicked (automated) | ${fmt(browserPeer.join_clicked_ms)} | ${fmt(cliPeer.join_clicked_ms)} |`);
console.log(`| data channel open, hello verified | ${fmt(browserPeer.channel_open_ms)} | ${fmt(cliPeer.channel_open_ms)} |`);
console.log(`| first remote video frame | ${fmt(browserPeer.first_frame_ms)} | ${fmt(cliPeer.first_frame_ms)} |`);
console.log();
console.log(
  `UI bundle without the Automerge wasm: ${(bundle.gzip_bytes / 1024).toFixed(1)} KiB gzipped ` +
    `(${(bundle.bytes / 1024).toFixed(0)} KiB raw; target < 400 KiB); the wasm is ${(bundle.automerge_wasm_gzip_bytes / 1024).toFixed(0)} KiB gzipped`,
);
const result = {
  benchmark: "ui",
  note: "times are from the start of navigation to the link, in one headless Chromium on this machine; the CLI peer sends its synthetic camera (--synthetic-camera)",
  browser_peer: browserPeer,
  cli_peer: cliPeer,
  bundle,
};
mkdirSync(join(ROOT, "bench/results"), { recursive: true });
writeFileSync(join(ROOT, "bench/results/ui.json"), JSON.stringify(result, null, 2) + "\n");
console.log("wrote bench/results/ui.json");
