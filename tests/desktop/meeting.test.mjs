// The desktop app as a person uses it: start a meeting in the app, have someone join from
// Chromium by its link, chat and write the notes together both ways, share the screen, see the
// browser's camera.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  WAIT_MS,
  inboundVideoStats,
  joinAs,
  launchBrowser,
  newMeeting,
  newPage,
  screenshot,
  startServer,
  waitConnected,
  waitForNotesContaining,
  waitVideo,
} from "../browser/harness.mjs";
import { appNotes, launchApp } from "./app.mjs";

test("a meeting started in the desktop app is joined from a browser: chat and notes both ways", async (t) => {
  const app = await launchApp(t);
  const link = await app.newMeeting("Desk");
  assert.match(link, /^https:\/\/[^/]+\/m\/[A-Za-z0-9_-]{22}#k=[A-Za-z0-9_-]{22}$/);

  const browser = await launchBrowser(t);
  const page = await newPage(browser, { selfSigned: true });
  await joinAs(page, link, "Browsa");
  await waitConnected(page, "Desk");
  await app.waitFor(
    () => [...document.querySelectorAll('[aria-label="Participants"] li')].some((li) => li.textContent.includes("Browsa") && li.textContent.includes("connected")),
    "the browser's participant connected",
  );

  // Chat, from the app to the browser and back.
  await app.type('input[aria-label="Message"]', "Hello from the desktop");
  await app.clickButton("Send");
  await page.getByRole("log", { name: "Chat" }).getByText("Hello from the desktop").waitFor({ timeout: WAIT_MS });
  await page.getByRole("textbox", { name: "Message" }).fill("Hello from the browser");
  await page.getByRole("button", { name: "Send" }).click();
  await app.waitFor(() => document.querySelector('[aria-label="Chat"]')?.textContent.includes("Hello from the browser"), "the browser's message");

  // The notes, typed in the app and in the browser.
  await app.type('.cm-content[aria-label="Notes"]', "Agenda from the app");
  await waitForNotesContaining(page, "Agenda from the app");
  await page.getByRole("textbox", { name: "Notes" }).click();
  await page.keyboard.press("Control+End");
  await page.keyboard.type(" and more from the browser");
  await app.waitFor(
    () => document.querySelector('[aria-label="Notes"]')?.textContent.includes("and more from the browser"),
    "the browser's notes",
  );
  assert.equal(await appNotes(app), "Agenda from the app and more from the browser");

  app.screenshot("desktop-meeting");
  await screenshot(page, "desktop-meeting-browser");
});

test("the app shares its screen with a browser, and shows the browser's camera", async (t) => {
  const app = await launchApp(t);
  const link = await app.newMeeting("Desk");

  const browser = await launchBrowser(t);
  const page = await newPage(browser, { selfSigned: true });
  await joinAs(page, link, "Browsa", { cam: true });
  await waitConnected(page, "Desk");

  // The browser's camera (Chromium's fake device: a moving pattern) in the app's tile for it,
  // decoded by the webview (WebCodecs).
  assert.equal(await cameraShown(app, "Browsa"), "webcodecs");

  // The app shares the screen it is on; the browser decodes it at the screen's size.
  await app.clickButton("Share screen");
  await app.waitFor(() => document.querySelector('button[title^="Share screen"]')?.getAttribute("aria-pressed") === "true", "the share button pressed");
  const box = await waitVideo(page, "Desk's screen");
  assert.ok(box.width > 100, "the shared screen is shown large");
  const stats = await inboundVideoStats(page, "Desk's screen");
  assert.deepEqual([stats.frameWidth, stats.frameHeight], [1280, 800], "the whole display, at its size");

  app.screenshot("desktop-media");
  await screenshot(page, "desktop-media-browser");
});

test("a webview without WebCodecs shows the browser's camera from pictures decoded in Rust", async (t) => {
  const app = await launchApp(t);
  await app.evaluate(() => void Object.defineProperty(window, "VideoDecoder", { value: undefined }));
  const link = await app.newMeeting("Desk");
  const browser = await launchBrowser(t);
  const page = await newPage(browser, { selfSigned: true });
  await joinAs(page, link, "Browsa", { cam: true });
  await waitConnected(page, "Desk");
  assert.equal(await cameraShown(app, "Browsa"), "engine");
  app.screenshot("desktop-decoded-in-rust");
});

/** Waits until `name`'s camera tile in the app shows a moving, non-black picture (read off the
 * display); answers the path its frames took (`webcodecs` or `engine`). */
async function cameraShown(app, name) {
  const tile = `figure[aria-label="${name}"] canvas`;
  const framesShown = () => app.evaluate((css) => Number(document.querySelector(css)?.dataset.framesDecoded ?? 0), tile);
  await app.waitFor((css) => Number(document.querySelector(css)?.dataset.framesDecoded ?? 0) > 0, `${name}'s camera decoded`, tile);
  const first = await framesShown();
  const before = await app.lumaOf(tile);
  await app.waitFor((css, n) => Number(document.querySelector(css)?.dataset.framesDecoded ?? 0) > n + 30, "more frames of the camera", tile, first);
  const after = await app.lumaOf(tile);
  const mean = (luma) => luma.reduce((sum, v) => sum + v, 0) / luma.length;
  assert.ok(mean(after) > 20, `the camera's tile is not black (mean luma ${mean(after).toFixed(1)})`);
  const changed = after.filter((v, i) => Math.abs(v - before[i]) > 8).length / after.length;
  assert.ok(changed > 0.01, `the camera's picture moves (${(changed * 100).toFixed(1)}% of pixels changed)`);
  return app.evaluate((css) => document.querySelector(css).dataset.path, tile);
}

test("a confab:// link opens its meeting in the app already running", async (t) => {
  const server = await startServer(t);
  const link = await newMeeting(server);
  const app = await launchApp(t);
  // Known by name already, the app goes straight in.
  await app.evaluate(() => localStorage.setItem("confab.name", "Desk"));
  await app.element("#name");
  const browser = await launchBrowser(t);
  const page = await newPage(browser);
  await joinAs(page, link, "Browsa");

  const url = new URL(link);
  const [room, key] = [url.pathname.split("/").pop(), new URLSearchParams(url.hash.slice(1)).get("k")];
  const deepLink = `confab://m/${room}?h=${url.host}&s=http#k=${key}`;
  const second = await app.launchAgain([deepLink]);
  assert.equal(second.code, 0, `the second launch hands over its link and exits: ${second.errors}`);
  await waitConnected(page, "Desk");
  await app.waitFor(
    () => [...document.querySelectorAll('[aria-label="Participants"] li')].some((li) => li.textContent.includes("Browsa")),
    "the meeting of the link, with the browser in it",
  );
  app.screenshot("desktop-deep-link");
});
