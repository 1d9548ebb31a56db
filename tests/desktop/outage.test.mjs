// The signaling service going away mid-meeting, for the desktop app and a browser: the meeting
// goes on peer to peer, both say they are reconnecting, and once the service is back they are in
// the room again within 5 s, each showing the other once.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  WAIT_MS,
  newMeeting,
  startServer,
  startStoppableServer,
  waitConnected,
  waitForNotesContaining,
} from "../browser/harness.mjs";
import { appAndBrowserIn } from "./app.mjs";

/** Long enough for every client's wait between attempts to reach its cap. */
const OUTAGE_MS = 10_000;
const BACK_WITHIN_MS = 5_000;

/** In the page: notes the time the banner next reads "In the meeting" (`window.__back`). */
function watchForReturn() {
  window.__back = null;
  const banner = document.querySelector(".banner");
  const observer = new MutationObserver(() => {
    if (banner.textContent === "In the meeting") {
      window.__back = Date.now();
      observer.disconnect();
    }
  });
  observer.observe(banner, { childList: true, characterData: true, subtree: true });
}

/** In the page: the others listed, by name. */
function othersListed() {
  return [...document.querySelectorAll('[aria-label="Participants"] li:not(.self)')].map((li) => li.querySelector(".name")?.textContent);
}

test("a signaling outage: the app and a browser keep the meeting, and are back in the room within 5 s", async (t) => {
  const server = await startStoppableServer(t);
  const link = await newMeeting(server.url);
  const { app, page } = await appAndBrowserIn(t, link);

  await server.stop();
  const down = Date.now();
  await page.getByRole("status").filter({ hasText: "Reconnecting" }).waitFor({ timeout: WAIT_MS });
  await app.waitFor(() => document.querySelector(".banner")?.textContent.startsWith("Reconnecting"), "that it is reconnecting");
  // Peer to peer, the notes still go both ways.
  await app.type('.cm-content[aria-label="Notes"]', "typed offline");
  await waitForNotesContaining(page, "typed offline");
  await page.getByRole("textbox", { name: "Message" }).fill("no server, still talking");
  await page.getByRole("button", { name: "Send" }).click();
  await app.waitFor(() => document.querySelector('[aria-label="Chat"]')?.textContent.includes("no server, still talking"), "the chat without a server");

  await page.evaluate(watchForReturn);
  await app.evaluate(watchForReturn);
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, OUTAGE_MS - (Date.now() - down))));
  await startServer(t, [], { port: server.port });
  const up = Date.now();
  const pageBack = await page.waitForFunction(() => window.__back, null, { timeout: WAIT_MS }).then((h) => h.jsonValue());
  const appBack = await app.waitFor(() => window.__back, "that it is back in the meeting");
  assert.ok(pageBack - up <= BACK_WITHIN_MS, `the browser was back ${pageBack - up} ms after the service`);
  assert.ok(appBack - up <= BACK_WITHIN_MS, `the app was back ${appBack - up} ms after the service`);

  // No ghost and no double: each lists the other once, connected.
  await waitConnected(page, "Desk");
  await app.waitFor(
    () => [...document.querySelectorAll('[aria-label="Participants"] li')].some((li) => li.textContent.includes("Browsa") && li.textContent.includes("connected")),
    "the browser connected",
  );
  assert.deepEqual(await page.evaluate(othersListed), ["Desk"]);
  assert.deepEqual(await app.evaluate(othersListed), ["Browsa"]);
});
