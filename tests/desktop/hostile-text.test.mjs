// Text from people is shown as text, in the browser and in the desktop app: a peer (a CLI, so
// nothing in a UI cleans its input first) joins with a name, chat, notes, a title and a file name
// made of markup, script and a `javascript:` link, and neither page builds an element from them
// or runs them. Each payload, if it ran, would set `window.__pwned`.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  WAIT_MS,
  newMeeting,
  startCli,
  startServer,
  tempDir,
  waitConnected,
  waitForNotesContaining,
} from "../browser/harness.mjs";
import { appAndBrowserIn } from "./app.mjs";

const NAME = "<img src=x onerror=window.__pwned=1>";
const CHAT = "<script>window.__pwned=1</script> javascript:window.__pwned=1";
const NOTES = "<b onmouseover=window.__pwned=1>bold?</b>";
const TITLE = "</title><img src=x onerror=window.__pwned=1>";
// A file name that would reverse what follows it (".exe" read as "txt.") if the right-to-left
// override were shown; it is made a safe file name (no override, no characters Windows refuses)
// before it is shown or saved.
const FILE = "<svg onload=window.__pwned=1>\u202Etxt.exe";

/** What a page holds that the payloads could have made: elements, or a flag set by script. */
function injected() {
  return {
    pwned: window.__pwned !== undefined,
    elements: document.querySelectorAll("img[src=x], svg[onload], b[onmouseover], [aria-label='Chat'] script").length,
    links: [...document.querySelectorAll("a[href]")].filter((a) => a.href.startsWith("javascript:")).length,
  };
}

/** Whether long unbroken text left every control in reach: the offer's "Accept" inside the
 * window, and the chat and files not wider than their column. */
function fitsTheWindow() {
  const accept = [...document.querySelectorAll("button")].find((b) => b.textContent === "Accept");
  const notWider = (e) => e.scrollWidth <= e.clientWidth;
  return (
    accept !== undefined &&
    accept.getBoundingClientRect().right <= innerWidth &&
    notWider(document.querySelector("[aria-label='Chat']")) &&
    notWider(document.querySelector("[aria-label='Files']"))
  );
}

/** The text of the first element `css` matches whose text contains `part`. */
function textHolding({ css, part }) {
  return [...document.querySelectorAll(css)].map((e) => e.textContent).find((t) => t.includes(part)) ?? null;
}

test("names, chat, notes, titles and file names of markup and script are shown as text, in the browser and the app", async (t) => {
  // A server of its own (the CLI does not take the certificate of a meeting hosted in the app).
  const link = await newMeeting(await startServer(t));
  const { app, page } = await appAndBrowserIn(t, link);

  const files = tempDir(t, "hostile-file");
  const path = join(files, FILE);
  writeFileSync(path, "not really an exe");
  const peer = startCli(t, link, NAME);
  await waitConnected(page, NAME);
  await peer.waitFor((e) => e.event === "peer_connected" && e.name === "Desk", "the app connected");
  peer.send({ cmd: "say", text: CHAT });
  peer.send({ cmd: "notes_insert", pos: 0, text: NOTES });
  peer.send({ cmd: "title", text: TITLE });
  peer.send({ cmd: "send_file", path });

  await t.test("the browser", async () => {
    await page.getByRole("log", { name: "Chat" }).getByText(CHAT).waitFor({ timeout: WAIT_MS });
    await waitForNotesContaining(page, NOTES);
    await page.waitForFunction((title) => document.title === `${title} · Confab`, TITLE, { timeout: WAIT_MS });
    const offer = page.getByRole("list", { name: "Files" }).getByRole("listitem").filter({ hasText: "wants to send you" });
    await offer.waitFor({ timeout: WAIT_MS });
    assert.match(await page.evaluate(textHolding, { css: "[aria-label='Participants'] li", part: "img" }), /^<img src=x onerror=window.__pwned=1>connected/);
    assert.equal(await page.evaluate(textHolding, { css: "[aria-label='Chat'] .author", part: "img" }), NAME);
    const offered = await offer.locator(".file-name").textContent();
    assert.equal(offered, `_svg onload=window.__pwned=1_txt.exe from ${NAME}`, "made a safe file name");
    assert.deepEqual(await page.evaluate(injected), { pwned: false, elements: 0, links: 0 });
    assert.ok(await page.evaluate(fitsTheWindow), "long names and file names wrap");
  });

  await t.test("the desktop app", async () => {
    await app.waitFor((chat) => document.querySelector("[aria-label='Chat']")?.textContent.includes(chat), "the chat message", CHAT);
    await app.waitFor((notes) => document.querySelector("[aria-label='Notes']")?.textContent.includes(notes), "the notes", NOTES);
    await app.waitFor((title) => document.title === `${title} · Confab`, "the title", TITLE);
    await app.waitFor(() => document.querySelector("[aria-label='Files']")?.textContent.includes("wants to send you"), "the file offer");
    assert.match(await app.evaluate(textHolding, { css: "[aria-label='Participants'] li", part: "img" }), /^<img src=x onerror=window.__pwned=1>connected/);
    assert.equal(await app.evaluate(textHolding, { css: "[aria-label='Chat'] .author", part: "img" }), NAME);
    const offered = await app.evaluate(textHolding, { css: "[aria-label='Files'] .file-name", part: "svg" });
    assert.equal(offered, `_svg onload=window.__pwned=1_txt.exe from ${NAME}`, "made a safe file name");
    assert.deepEqual(await app.evaluate(injected), { pwned: false, elements: 0, links: 0 });
    assert.ok(await app.evaluate(fitsTheWindow), "long names and file names wrap");
    app.screenshot("desktop-hostile-text");

    // The title is kept with the meeting: the start page lists it, as text too.
    await app.clickButton("Leave");
    await app.waitFor((title) => document.querySelector("[aria-label='Recent meetings']")?.textContent.includes(title), "the recent meeting", TITLE);
    assert.deepEqual(await app.evaluate(injected), { pwned: false, elements: 0, links: 0 });
  });
});
