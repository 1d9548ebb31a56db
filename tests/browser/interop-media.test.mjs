// Media between browsers and the Rust engine (`confab join --json`): the CLI's camera, screen and
// microphone, however the connection was negotiated, and changed on live connections through the
// JSON API. Apart from
// interop.test.mjs so that each file keeps within the runner's per-file time limit.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  WAIT_MS,
  joinAs,
  launchBrowser,
  newMeeting,
  newPage,
  screenshot,
  startCli,
  startServer,
  syntheticFrameNumber,
  waitAudio,
  waitConnected,
  waitVideo,
} from "./harness.mjs";

test("browsers show the CLI's synthetic camera, live, however the connection was negotiated", async (t) => {
  const server = await startServer(t);
  const link = await newMeeting(server);
  const browser = await launchBrowser(t);
  // Three ways the CLI's track can be negotiated: the CLI offers it (it joins after "Early"); it
  // answers an offer that carries the browser's microphone and camera ("Late"); the browser offers no video at
  // all, so the CLI must offer its camera after answering ("Quiet").
  const early = await newPage(browser);
  await joinAs(early, link, "Early");
  const cli = startCli(t, link, "Cli", { args: ["--synthetic-camera"] });
  await cli.waitFor((e) => e.event === "joined", "joined");
  const late = await newPage(browser);
  await joinAs(late, link, "Late", { mic: true, cam: true });
  const quiet = await newPage(browser);
  await joinAs(quiet, link, "Quiet");

  for (const page of [early, late, quiet]) {
    await waitConnected(page, "Cli");
    const tile = await waitVideo(page, "Cli");
    assert.ok(tile.width > 0 && tile.height > 0);
    // The CLI announces its camera: no "camera off" badge on its tile.
    await page.getByRole("figure", { name: "Cli", exact: true }).getByText("camera off").waitFor({ state: "detached", timeout: WAIT_MS });
    // Live: the frame number stamped by the CLI's camera goes on rising.
    const first = await syntheticFrameNumber(page, "Cli");
    assert.notEqual(first, null, "the picture is the CLI's synthetic camera");
    const video = page.getByRole("figure", { name: "Cli", exact: true }).locator("video");
    const shown = await video.evaluate((v) => v.getVideoPlaybackQuality().totalVideoFrames);
    await page.waitForFunction(([v, n]) => v.getVideoPlaybackQuality().totalVideoFrames > n + 10, [await video.elementHandle(), shown], {
      timeout: WAIT_MS,
    });
    const later = await syntheticFrameNumber(page, "Cli");
    assert.ok(later > first, `frame ${later} after frame ${first}`);
  }
  // The browser's own camera still reaches the others alongside.
  await waitVideo(early, "Late");
  await screenshot(early, "meeting-cli-synthetic-camera-desktop");

  // Tracks as a set, through the front-end API: the CLI shares its (synthetic) screen beside the
  // camera, on the live connections, and every browser shows it large as a screen.
  cli.send({ cmd: "set_media", mic: false, cam: true, screen: true });
  for (const page of [early, late, quiet]) {
    await waitVideo(page, "Cli's screen");
    assert.notEqual(await syntheticFrameNumber(page, "Cli's screen"), null, "the CLI's screen twin");
  }
  // Then stops its camera, keeps sharing and turns its microphone on (the synthetic tone): the
  // camera tile says the camera is off and is no longer muted, every browser decodes the CLI's
  // Opus into sound, and the screen plays on.
  cli.send({ cmd: "set_media", mic: true, cam: false, screen: true });
  for (const page of [early, late, quiet]) {
    const tile = page.getByRole("figure", { name: "Cli", exact: true });
    await tile.getByText("camera off").waitFor({ timeout: WAIT_MS });
    await tile.getByText("muted").waitFor({ state: "detached", timeout: WAIT_MS });
    await waitAudio(page, "Cli");
    await waitVideo(page, "Cli's screen");
  }
});

test("the CLI takes a browser's camera, microphone and screen, and decodes them", async (t) => {
  const server = await startServer(t);
  const link = await newMeeting(server);
  const browser = await launchBrowser(t);
  const cli = startCli(t, link, "Cli", { args: ["--receive-media"] });
  await cli.waitFor((e) => e.event === "joined", "joined");
  const page = await newPage(browser);
  await joinAs(page, link, "Web", { mic: true, cam: true });
  await waitConnected(page, "Cli");

  // Chromium's fake devices: a camera pattern, and a microphone that beeps. The CLI reports each
  // track it decodes once a second.
  const playing = (pick) => (e) => e.event === "track" && !e.ended && pick(e);
  const camera = await cli.waitFor(
    playing((e) => !e.audio && e.codec.toLowerCase() === "video/vp8" && e.frames_decoded >= 30 && e.width > 0 && e.height > 0),
    "the browser's camera, decoded",
  );
  await cli.waitFor(
    playing((e) => e.audio && e.codec.toLowerCase() === "audio/opus" && e.frames_decoded >= 50 && e.audio_level > 0.001),
    "the browser's microphone, heard",
  );
  // Sharing a screen renegotiates from the browser; the CLI decodes it as a second picture.
  await page.getByRole("button", { name: "Share screen" }).click();
  await cli.waitFor(
    playing((e) => !e.audio && e.frames_decoded >= 10 && e.width > 0 && e.streams.join() !== camera.streams.join()),
    "the browser's screen, decoded",
  );
});
