// The chat as a person reads it in the browser.
// - A peer that floods the meeting with chat, far past what people type (its engine sends it
//   paced, so it is not cut off): the browser keeps up, the others are still heard at once, the
//   notes can still be typed, and the page's memory stays bounded. (Before chat was shown once
//   per frame, and before the page replied once per burst of sync frames, it froze for tens of
//   seconds.)
// - The log follows the newest message for someone at its bottom, and leaves alone someone
//   reading back.
import { test } from "node:test";
import assert from "node:assert/strict";
import { WAIT_MS, joinAs, launchBrowser, newMeeting, newPage, startCli, startServer, waitConnected } from "./harness.mjs";

const FLOOD = 3_000;

test("a flood of chat from one peer leaves the browser usable and the others heard", async (t) => {
  const server = await startServer(t);
  const link = await newMeeting(server);
  const browser = await launchBrowser(t);
  const [ada, bo] = [await newPage(browser), await newPage(browser)];
  await joinAs(ada, link, "Ada");
  await joinAs(bo, link, "Bo");
  const eve = startCli(t, link, "Eve");
  await waitConnected(ada, "Eve");
  await waitConnected(ada, "Bo");
  const heap = () => ada.evaluate(() => performance.memory.usedJSHeapSize / 2 ** 20);
  const before = await heap();

  for (let n = 0; n < FLOOD; n++) eve.send({ cmd: "say", text: `flood ${n}` });
  const chat = ada.getByRole("log", { name: "Chat" });
  await chat.getByText("flood 1000", { exact: true }).waitFor({ timeout: WAIT_MS });

  // In the middle of the flood, Bo is heard before it is over, not behind it.
  const said = performance.now();
  await bo.getByRole("textbox", { name: "Message" }).fill("heard through the flood");
  await bo.getByRole("textbox", { name: "Message" }).press("Enter");
  await chat.getByText("heard through the flood").waitFor({ timeout: WAIT_MS });
  const heardAfter = performance.now() - said;
  const floodOverFirst = await chat.getByText(`flood ${FLOOD - 1}`, { exact: true }).count();
  assert.equal(floodOverFirst, 0, `Bo was heard only after the whole flood, ${heardAfter.toFixed(0)} ms after speaking`);
  // Ada can still type her notes while it goes on.
  const notes = ada.getByRole("textbox", { name: "Notes" });
  await notes.click();
  await notes.pressSequentially("still typing");
  await bo.getByRole("textbox", { name: "Notes" }).getByText("still typing").waitFor({ timeout: WAIT_MS });

  // Every message arrives in the end, each once.
  await chat.getByText(`flood ${FLOOD - 1}`, { exact: true }).waitFor({ timeout: 4 * WAIT_MS });
  assert.equal(await chat.getByText(/^flood \d+$/).count(), FLOOD);
  const after = await heap();
  console.log(`Bo heard after ${heardAfter.toFixed(0)} ms in the flood; Ada's JS heap ${before.toFixed(1)} → ${after.toFixed(1)} MiB`);
  assert.ok(after - before < 100, `Ada's JS heap grew by ${(after - before).toFixed(1)} MiB for ${FLOOD} messages`);
});

test("a person at the bottom of the chat keeps seeing the newest message, long ones too; one reading back is left there", async (t) => {
  const server = await startServer(t);
  const link = await newMeeting(server);
  const browser = await launchBrowser(t);
  const ada = await newPage(browser);
  await joinAs(ada, link, "Ada");
  const eve = startCli(t, link, "Eve");
  await waitConnected(ada, "Eve");
  const chat = ada.getByRole("log", { name: "Chat" });
  // Where the newest message sits against the log's visible area, in CSS pixels.
  const newest = () =>
    chat.evaluate((log) => {
      const box = log.getBoundingClientRect();
      const last = log.lastElementChild.getBoundingClientRect();
      return { below: last.bottom - box.bottom, scrollTop: log.scrollTop };
    });

  for (let n = 0; n < 40; n++) {
    // Every fourth one wraps over several lines of the chat panel.
    const text = n % 4 === 3 ? `message ${n}: ${"words that wrap in the panel ".repeat(12)}` : `message ${n}`;
    eve.send({ cmd: "say", text });
    await chat.getByText(`message ${n}`).waitFor({ timeout: WAIT_MS });
    const { below } = await newest();
    assert.ok(below <= 2, `message ${n} is ${below.toFixed(0)} px below the visible chat`);
  }

  await chat.evaluate((log) => (log.scrollTop = 0));
  eve.send({ cmd: "say", text: "said while Ada reads back" });
  await chat.getByText("said while Ada reads back").waitFor({ timeout: WAIT_MS });
  assert.equal((await newest()).scrollTop, 0, "the log stays where Ada scrolled to");
});
