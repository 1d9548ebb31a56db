// `make bench-media`: screen sharing from Rust on a real X display. An Xvfb at 1920×1080 shows a
// page of our source code in Chromium (kiosk); confab-media's `screen` benchmark captures it and
// asks this driver to scroll the page or hold it still. Writes bench/results/media.json.
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { percentile, scope } from "./common.mjs";
import {
  ROOT,
  codePage,
  joinAs,
  launchBrowser,
  launchOnDisplay,
  newMeeting,
  newPage,
  stampDelays,
  startCli,
  startServer,
  startXvfb,
  useStampedCamera,
  waitVideo,
} from "../tests/browser/harness.mjs";

const [WIDTH, HEIGHT] = [1920, 1080];

const run = scope();

const xvfb = await startXvfb(run, WIDTH, HEIGHT);
const display = xvfb.display;
const page = await launchOnDisplay(run, xvfb, WIDTH, HEIGHT);
await page.setContent(codePage({ repeat: 3 }));

const actions = {
  "@scroll": () =>
    page.evaluate(() => {
      const step = () => {
        window.scrollBy(0, 4);
        window.__scrolling = requestAnimationFrame(step);
      };
      step();
    }),
  "@still": () => page.evaluate(() => cancelAnimationFrame(window.__scrolling)),
};

const bench = spawn("cargo", ["bench", "--quiet", "-p", "confab-media", "--bench", "screen"], {
  cwd: ROOT,
  env: { ...process.env, DISPLAY: display },
  stdio: ["pipe", "pipe", "inherit"],
});
let result;
for await (const line of createInterface({ input: bench.stdout })) {
  if (actions[line]) {
    await actions[line]();
    bench.stdin.write("ok\n");
  } else if (line.startsWith("{")) {
    result = JSON.parse(line);
  }
}
if (!result) throw new Error("the benchmark printed no result");
await page.context().close();

// Glass to glass: the synthetic camera's stamp (capture time by the wall clock) against the
// moment the receiver decodes (Rust) or presents (Chromium) the frame, on this machine's own
// address; one pair at a time, each in a meeting of its own, for SECONDS.
const SECONDS = 10;
const server = await startServer(run);
const browser = await launchBrowser(run);

function summary(delays) {
  return { p50: percentile(delays, 50), p95: percentile(delays, 95), count: delays.length };
}

async function rustToRust() {
  const link = await newMeeting(server);
  const sender = startCli(run, link, "RustSender", { args: ["--synthetic-camera"] });
  const receiver = startCli(run, link, "RustReceiver", { args: ["--receive-media"] });
  await receiver.waitFor((e) => e.event === "track" && e.frames_decoded > 30, "decoded video");
  const from = receiver.events.length;
  await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000));
  const delays = receiver.events.slice(from).flatMap((e) => (e.event === "track" ? e.stamp_delays_ms ?? [] : []));
  for (const cli of [sender, receiver]) cli.send({ cmd: "quit" });
  return summary(delays);
}

async function toChromium(startSender) {
  const link = await newMeeting(server);
  const stop = await startSender(link);
  const viewer = await newPage(browser);
  await joinAs(viewer, link, "Viewer");
  await waitVideo(viewer, "Sender");
  const delays = await stampDelays(viewer, "Sender", SECONDS * 1000);
  await viewer.context().close();
  await stop();
  return summary(delays);
}

/** Beeps on the wall clock's half seconds (`--synthetic-beeps`), heard by a CLI that plays
 * them: from a beep's start to the moment its sound leaves the jitter buffer for the speaker's
 * mix (the device's own buffer, 40 ms or so, comes after). */
async function audioRustToRust() {
  const link = await newMeeting(server);
  const sender = startCli(run, link, "RustSender", { args: ["--synthetic-beeps"] });
  const receiver = startCli(run, link, "RustReceiver", { args: ["--receive-media"] });
  await receiver.waitFor((e) => e.event === "track" && e.audio && e.beep_delays_ms.length > 0, "a beep heard");
  const from = receiver.events.length;
  await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000));
  const delays = receiver.events.slice(from).flatMap((e) => (e.event === "track" && e.audio ? e.beep_delays_ms : []));
  for (const cli of [sender, receiver]) cli.send({ cmd: "quit" });
  return summary(delays);
}

const audio = { rust_to_rust: await audioRustToRust() };
const glass = {
  rust_to_rust: await rustToRust(),
  rust_to_chromium: await toChromium(async (link) => {
    const cli = startCli(run, link, "Sender", { args: ["--synthetic-camera"] });
    await cli.waitFor((e) => e.event === "joined", "joined");
    return () => cli.send({ cmd: "quit" });
  }),
  chromium_to_chromium: await toChromium(async (link) => {
    const sender = await newPage(browser);
    await useStampedCamera(sender);
    await joinAs(sender, link, "Sender", { cam: true });
    return () => sender.context().close();
  }),
};
await run.close();

const machine = { cores: (await import("node:os")).cpus().length, date: new Date().toISOString() };
const out = { machine, screen_1080p: result, glass_to_glass_ms: glass, audio_one_way_ms: audio };
mkdirSync(join(ROOT, "bench/results"), { recursive: true });
writeFileSync(join(ROOT, "bench/results/media.json"), JSON.stringify(out, null, 2) + "\n");

const row = (name, value) => console.log(`${name.padEnd(44)} ${value}`);
row("BGRA→I420 1080p, SIMD / plain loop (ms)", `${result.convert_1080p_ms.simd} / ${result.convert_1080p_ms.plain_loop}`);
const ce = result.capture_encode_1080p;
row("capture + convert p50 / p95 (ms)", `${ce.capture_convert_ms.p50} / ${ce.capture_convert_ms.p95}`);
row("encode (VP8 screen) p50 / p95 (ms)", `${ce.encode_ms.p50} / ${ce.encode_ms.p95}`);
row("1080p fps on one core", ce.fps_on_one_core);
row("sender while scrolling: fps, CPU % of a core", `${result.sender_fps_1080p_scrolling}, ${result.sender_cpu_percent_1080p30}`);
row("static screen after 2 s: CPU % of a core", result.static_screen_cpu_percent);
row("bytes per second: scrolling / still", `${result.bytes_per_second.scrolling} / ${result.bytes_per_second.still}`);
row("text SSIM at 2.5 Mbit/s (still page)", result.text_ssim_at_2_5_mbps);
for (const [name, c] of Object.entries(result.codecs)) {
  row(`${name}: encode p50/p95 ms`, `${c.encode_ms_p50} / ${c.encode_ms_p95}`);
  row(`${name}: kbit/s, SSIM scrolling / still`, `${c.kbps_scrolling}, ${c.ssim_scrolling} / ${c.ssim_still}`);
}
for (const [pair, g] of Object.entries(glass)) {
  row(`glass to glass ${pair}: p50 / p95 ms (frames)`, `${g.p50} / ${g.p95} (${g.count})`);
}
row("audio one way rust_to_rust: p50 / p95 ms (beeps)", `${audio.rust_to_rust.p50} / ${audio.rust_to_rust.p95} (${audio.rust_to_rust.count})`);
console.log("wrote bench/results/media.json");
