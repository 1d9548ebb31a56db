// The desktop app as a person uses it: start a meeting in the app, have someone join from
// Chromium by its link, chat and write the notes together both ways, share the screen, see the
// browser's camera.
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  WAIT_MS,
  dropFile,
  inboundVideoStats,
  joinAs,
  launchBrowser,
  newMeeting,
  newPage,
  savedFileSha256,
  sha256,
  screenshot,
  startServer,
  tempDir,
  waitConnected,
  waitForNotesContaining,
  waitTransferDone,
  waitVideo,
} from "../browser/harness.mjs";
import { appNotes, launchApp } from "./app.mjs";

/** Whether the notes show `name`'s caret after `at` characters of its line. Runs in the page. */
function caretAt({ name, at }) {
  const caret = [...document.querySelectorAll(".cm-remote-caret")].find((c) => c.textContent === name);
  if (!caret) return false;
  const before = document.createRange();
  before.setStart(caret.closest(".cm-line"), 0);
  before.setEndBefore(caret);
  return before.toString().length === at;
}

test("a meeting started in the desktop app is joined from a browser: chat, notes and files both ways", async (t) => {
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

  // Each sees the other's caret, named, where it is: the browser's at the start, the app's at
  // the end.
  await page.keyboard.press("Control+Home");
  await app.waitFor(caretAt, "the browser's caret at the start", { name: "Browsa", at: 0 });
  await app.type('.cm-content[aria-label="Notes"]', "\uE010");
  await page.waitForFunction(caretAt, { name: "Desk", at: 45 }, { timeout: WAIT_MS });

  // A file chosen in the app (larger than one of the parts it crosses the IPC in): the browser
  // accepts it and saves the same bytes.
  const slides = randomBytes(9 * 1024 * 1024 + 5);
  const chosen = join(tempDir(t, "chosen"), "slides.pdf");
  writeFileSync(chosen, slides);
  const picker = await app.element('input[type="file"]');
  await app.request("POST", `${app.session}/element/${picker}/value`, { text: chosen });
  const offer = page.getByRole("list", { name: "Files" }).getByRole("listitem").filter({ hasText: "slides.pdf from Desk" });
  await offer.getByRole("button", { name: "Accept" }).click();
  await waitTransferDone(page, "slides.pdf from Desk");
  assert.equal(await savedFileSha256(page, "slides.pdf"), sha256(slides));
  await app.waitFor(() => document.querySelector('[aria-label="Files"]')?.textContent.includes("sent, 100%"), "the app's file sent");

  // A file dropped in the browser: the app offers it, the person accepts, and it is saved in
  // the download folder, verified.
  const dropped = await dropFile(page, "minutes.txt", 300 * 1024);
  await app.waitFor(() => document.querySelector('[aria-label="Files"]')?.textContent.includes("Browsa wants to send you this file"), "the browser's offer");
  await app.clickButton("Accept");
  const saved = join(app.downloadDir, "minutes.txt");
  await app.waitFor((saved) => document.querySelector('[aria-label="Files"]')?.textContent.includes(`received, saved as ${saved}`), "the browser's file saved", saved);
  assert.equal(sha256(readFileSync(saved)), dropped);
  await waitTransferDone(page, "minutes.txt to Desk");

  app.screenshot("desktop-meeting");
  await screenshot(page, "desktop-meeting-browser");
});

test("the app shares its screen with a browser, and shows the browser's camera", async (t) => {
  const { app, page } = await meetingWithBrowserCamera(t);

  // The browser's camera (Chromium's fake device: a moving pattern) in the app's tile for it,
  // decoded by the webview (WebCodecs).
  assert.equal(await cameraShown(app, "Browsa"), "webcodecs");

  // The app shares the screen it is on, picked by its picture; the browser decodes it at the
  // screen's size.
  await app.clickButton("Share screen");
  await app.waitFor(() => document.querySelector("dialog.picker canvas")?.dataset.shown === "true", "the picker's picture of the screen");
  const picture = await app.lumaOf("dialog.picker canvas");
  const seen = picture.reduce((sum, v) => sum + v, 0) / picture.length;
  assert.ok(seen > 40, `the picker shows the screen, the app's window on it (mean luma ${seen.toFixed(1)})`);
  assert.match(await app.evaluate(() => document.querySelector(".screen-choice").textContent), /1280\D+800/);
  app.screenshot("desktop-screen-picker");
  await app.click(".screen-choice");
  await app.waitFor(() => document.querySelector('button[title^="Share screen"]')?.getAttribute("aria-pressed") === "true", "the share button pressed");
  const box = await waitVideo(page, "Desk's screen");
  assert.ok(box.width > 100, "the shared screen is shown large");
  const stats = await inboundVideoStats(page, "Desk's screen");
  assert.deepEqual([stats.frameWidth, stats.frameHeight], [1280, 800], "the whole display, at its size");

  app.screenshot("desktop-media");
  await screenshot(page, "desktop-media-browser");
});

test("a webview without WebCodecs shows the browser's camera from pictures decoded in Rust", async (t) => {
  const { app } = await meetingWithBrowserCamera(t, { withoutWebCodecs: true });
  assert.equal(await cameraShown(app, "Browsa"), "engine");
  app.screenshot("desktop-decoded-in-rust");
});

/** The app starts a meeting as "Desk", and a browser joins it as "Browsa" with its camera on.
 * `withoutWebCodecs`: the app's webview is made one that has none. */
async function meetingWithBrowserCamera(t, { withoutWebCodecs = false } = {}) {
  const app = await launchApp(t);
  if (withoutWebCodecs) await app.evaluate(() => void Object.defineProperty(window, "VideoDecoder", { value: undefined }));
  const link = await app.newMeeting("Desk");
  const browser = await launchBrowser(t);
  const page = await newPage(browser, { selfSigned: true });
  await joinAs(page, link, "Browsa", { cam: true });
  await waitConnected(page, "Desk");
  return { app, page };
}

/** Waits until `name`'s camera tile in the app shows a moving, non-black picture (read off the
 * display); answers the path its frames took (`webcodecs` or `engine`). */
async function cameraShown(app, name) {
  const tile = `figure[aria-label="${name}"] canvas`;
  const framesShown = () => app.evaluate((css) => Number(document.querySelector(css)?.dataset.framesDecoded ?? 0), tile);
  await app.waitFor((css) => Number(document.querySelector(css)?.dataset.framesDecoded ?? 0) > 0, `${name}'s camera decoded`, tile);
  const before = await app.lumaOf(tile);
  const mean = (luma) => luma.reduce((sum, v) => sum + v, 0) / luma.length;
  assert.ok(mean(before) > 20, `the camera's tile is not black (mean luma ${mean(before).toFixed(1)})`);
  // Chromium's fake camera turns a shape in a cycle: a picture taken at the same point of it
  // looks the same, so the pictures that come are compared with the first until one differs.
  const deadline = Date.now() + WAIT_MS;
  let changed = 0;
  while (changed <= 0.01) {
    assert.ok(Date.now() < deadline, `the camera's picture moves (${(changed * 100).toFixed(1)}% of pixels changed at most)`);
    const shown = await framesShown();
    await app.waitFor((css, n) => Number(document.querySelector(css)?.dataset.framesDecoded ?? 0) > n + 5, "more frames of the camera", tile, shown);
    const after = await app.lumaOf(tile);
    changed = Math.max(changed, after.filter((v, i) => Math.abs(v - before[i]) > 8).length / after.length);
  }
  return app.evaluate((css) => document.querySelector(css).dataset.path, tile);
}

test("the app's camera (its test pattern, on a machine without one) shows in its own tile and reaches the browser", async (t) => {
  const app = await launchApp(t);
  await app.clickButton("Settings");
  await app.click('#camera option[value="test-pattern"]');
  await app.clickButton("Save");
  await app.waitFor(() => document.querySelector(".status")?.textContent === "Saved.", "the settings saved");
  await app.clickButton("Back");
  const link = await app.newMeeting("Desk");
  const browser = await launchBrowser(t);
  const page = await newPage(browser, { selfSigned: true });
  await joinAs(page, link, "Browsa");
  await waitConnected(page, "Desk");

  await app.clickButton("Camera");
  assert.equal(await cameraShown(app, "Desk (you)"), "webcodecs");
  await waitVideo(page, "Desk");
  app.screenshot("desktop-own-camera");
  // Turned off, the camera stops, and its tile has no picture left.
  await app.clickButton("Camera");
  await app.waitFor(() => document.querySelector('figure[aria-label="Desk (you)"] canvas') === null, "the own camera's tile emptied");
});

test("settings: new meetings on a server of yours, with its access token, devices to choose, kept across a restart", async (t) => {
  // A server that makes meetings only for holders of an access token.
  const tokens = join(tempDir(t, "tokens"), "tokens");
  writeFileSync(tokens, "team-token-0123456789\n");
  const server = await startServer(t, ["--token-file", tokens]);
  const app = await launchApp(t);
  await app.clickButton("Settings");
  await app.element("#server-url");
  // Every device list starts with the system's default, the choice until another is made.
  const choices = await app.evaluate(() => ["microphone", "speaker", "camera"].map((id) => document.getElementById(id).options[0].textContent));
  assert.deepEqual(choices, ["System default", "System default", "System default"]);

  // A server address that is not one is refused, and says why.
  await app.click("#server-remote");
  await app.type("#server-url", "not a server");
  await app.clickButton("Save");
  await app.waitFor(() => document.querySelector(".status.error")?.textContent.includes("is not a server's address"), "the refusal");
  await app.evaluate(() => void (document.getElementById("server-url").value = ""));
  await app.type("#server-url", `${server}/`);
  await app.type("#access-token", "team-token-0123456789");
  // ALSA's null devices, which every Linux has.
  await app.click('#microphone option[value="null"]');
  await app.click('#speaker option[value="null"]');
  await app.clickButton("Save");
  await app.waitFor(() => document.querySelector(".status")?.textContent === "Saved.", "the settings saved");
  // The token went to the keyring, not back into the page.
  await app.waitFor(() => document.getElementById("access-token-note")?.textContent.includes("A token is kept"), "the token kept");
  assert.equal(await app.evaluate(() => document.getElementById("access-token").value), "");
  app.screenshot("desktop-settings");

  // Kept on disk: the app started again on the same data shows them.
  const again = await launchApp(t, { env: { CONFAB_DATA_DIR: app.env.CONFAB_DATA_DIR } });
  await again.clickButton("Settings");
  await again.waitFor((url) => document.getElementById("server-url")?.value === url, "the server kept", server);
  const devices = await again.evaluate(() => ["microphone", "speaker", "camera"].map((id) => document.getElementById(id).value));
  assert.deepEqual(devices, ["null", "null", ""], "the devices kept, the camera left to the default");
  await again.clickButton("Back");
  await again.close();

  // A new meeting is made on that server, opened with the token (the browser could not open
  // it), and a browser meets the app there by its link alone.
  await app.clickButton("Back");
  const link = await app.newMeeting("Desk");
  assert.ok(link.startsWith(`${server}/m/`), `the meeting is on the server set: ${link}`);
  const browser = await launchBrowser(t);
  const page = await newPage(browser);
  await joinAs(page, link, "Browsa");
  await waitConnected(page, "Desk");
});

test("a meeting hosted in the app reopens after a restart, and its link still works", async (t) => {
  const app = await launchApp(t);
  const link = await app.newMeeting("Desk");
  await app.type('.cm-content[aria-label="Notes"]', "Kept across a restart");
  // Stored, as the page says once the engine has the last keystroke and has answered for it:
  // what is typed in the moment of quitting may be lost, what is reported saved may not.
  await app.waitFor(() => {
    const asking = window.__TAURI_INTERNALS__.invoke("meeting_command", { command: { cmd: "markdown" } });
    void asking.then((answer) => (window.__engineNotes = answer.markdown));
    return window.__engineNotes?.includes("Kept across a restart") && document.body.innerText.includes("Saved on this device");
  }, "the notes stored");
  await app.close();
  await portClosed(new URL(link).port);

  // The same person starts the app again, and reopens the meeting from the start page.
  const again = await launchApp(t, { home: app.home });
  await again.waitFor(() => document.querySelector('[aria-label="Recent meetings"] button') !== null, "the recent meeting");
  await again.click('[aria-label="Recent meetings"] button');
  await again.waitFor(() => document.querySelector('[aria-label="Notes"]')?.textContent.includes("Kept across a restart"), "the notes kept");
  // Someone with the link from before meets the app there.
  const browser = await launchBrowser(t);
  const page = await newPage(browser, { selfSigned: true });
  await joinAs(page, link, "Browsa");
  await waitConnected(page, "Desk");
  await waitForNotesContaining(page, "Kept across a restart");
});

/** Resolves once nothing listens on `port` of this machine any more (the app has quit). */
async function portClosed(port) {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const open = await new Promise((resolve) => {
      const socket = connect({ port: Number(port), host: "127.0.0.1" }, () => (socket.destroy(), resolve(true)));
      socket.once("error", () => resolve(false));
    });
    if (!open) return;
    if (Date.now() > deadline) throw new Error(`port ${port} is still open: the app did not quit`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

test("the app killed (kill -9) in a burst of edits keeps every edit it had answered for", async (t) => {
  const app = await launchApp(t);
  await app.newMeeting("Desk");
  // Edits one after another through the window's API, as typing sends them; each is counted
  // once the engine has answered for it (stored).
  await app.evaluate(() => {
    window.__answered = 0;
    void (async () => {
      for (let i = 0; ; i++) {
        await window.__TAURI_INTERNALS__.invoke("meeting_command", { command: { cmd: "notes_append", text: `<${i}>` } });
        window.__answered = i + 1;
      }
    })();
  });
  const answered = await app.waitFor(() => window.__answered >= 200 && window.__answered, "200 edits answered");
  const pid = spawnSync("pgrep", ["-g", String(app.driverPid), "-x", "confab-desktop"], { encoding: "utf8" }).stdout.trim();
  assert.match(pid, /^\d+$/, "the app's process");
  process.kill(Number(pid), "SIGKILL");
  await app.close();

  const again = await launchApp(t, { home: app.home });
  await again.waitFor(() => document.querySelector('[aria-label="Recent meetings"] button') !== null, "the recent meeting");
  await again.click('[aria-label="Recent meetings"] button');
  await again.waitFor((n) => document.querySelector('[aria-label="Notes"]')?.textContent.includes(`<${n - 1}>`), "the last edit answered for", answered);
  // Kept in order, with nothing missing before the last one stored.
  const kept = (await appNotes(again)).match(/<\d+>/g);
  assert.ok(kept.length >= answered, `${kept.length} edits kept of ${answered} answered for`);
  assert.deepEqual(kept, kept.map((_, i) => `<${i}>`));
});

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
