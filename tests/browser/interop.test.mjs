// A browser and the Rust engine (`confab join --json`) in one meeting.
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  WAIT_MS,
  newMeeting,
  allowCuttingSignaling,
  cutSignaling,
  dropFile,
  joinAs,
  launchBrowser,
  newPage,
  notesText,
  savedFileSha256,
  sha256,
  startCli,
  startRedis,
  startServer,
  tempDir,
  waitConnected,
  waitForNotes,
  waitTransferDone,
} from "./harness.mjs";

test("a browser and a CLI peer: snapshot, chat both ways, notes converge", async (t) => {
  const server = await startServer(t);
  const link = await newMeeting(server, "q83vEjRWeJCrze8SNFZ4kA");

  const cli = startCli(t, link, "Cli");
  await cli.waitFor((e) => e.event === "joined", "joined");
  cli.send({ cmd: "notes_insert", pos: 0, text: "Written before the browser came.\n", ref: "first" });
  await cli.waitFor((e) => e.event === "applied" && e.ref === "first", "the first edit applied");

  const browser = await launchBrowser(t);
  const page = await newPage(browser);
  // With its camera and microphone on: the offer the CLI answers carries media too.
  await joinAs(page, link, "Browser", { mic: true, cam: true });
  await waitConnected(page, "Cli");
  await cli.waitFor((e) => e.event === "peer_connected" && e.name === "Browser", "the browser connecting");
  // The browser arrived with nothing and was sent the CLI's document.
  await waitForNotes(page, "Written before the browser came.\n");

  cli.send({ cmd: "say", text: "hello from the CLI" });
  await page.getByRole("log", { name: "Chat" }).getByText("hello from the CLI").waitFor({ timeout: WAIT_MS });
  await page.getByRole("textbox", { name: "Message" }).fill("hello from the browser");
  await page.getByRole("button", { name: "Send" }).click();
  const chat = await cli.waitFor((e) => e.event === "chat" && e.text === "hello from the browser", "the browser's chat");
  assert.equal(chat.author, "Browser");

  // Both edit at once, at both ends of the text.
  const notes = page.getByRole("textbox", { name: "Notes" });
  await notes.click();
  await page.keyboard.press("Control+End");
  await Promise.all([
    notes.pressSequentially("Typed in the browser."),
    (async () => {
      cli.send({ cmd: "notes_insert", pos: 0, text: "Agenda: " });
      cli.send({ cmd: "notes_delete", pos: 8, len: 8 });
    })(),
  ]);
  const expected = "Agenda: before the browser came.\nTyped in the browser.";
  await waitForNotes(page, expected);
  await cli.waitFor((e) => e.event === "notes" && e.text === expected, "the converged notes");
  assert.equal(await notesText(page), expected);

  // Positions on the CLI's JSON are UTF-16 units, as the browser's editor counts them: "😀" is
  // two long, so "x" at 2 lands right after it, and the patch the CLI reports says so too.
  cli.send({ cmd: "notes_insert", pos: 0, text: "😀" });
  cli.send({ cmd: "notes_insert", pos: 2, text: "x", ref: "after-emoji" });
  await cli.waitFor((e) => e.event === "applied" && e.ref === "after-emoji", "the edit after the emoji");
  const patched = await cli.waitFor((e) => e.event === "notes" && e.text === `😀x${expected}`, "the CLI's notes");
  assert.deepEqual(patched.patches, [{ op: "insert", pos: 2, text: "x" }]);
  await waitForNotes(page, `😀x${expected}`);
  // A position between the emoji's two halves is refused, not used to split it.
  cli.send({ cmd: "notes_insert", pos: 1, text: "!", ref: "inside" });
  const refused = await cli.waitFor((e) => e.event === "error" && e.ref === "inside", "the refusal");
  assert.match(refused.message, /inside a character/);
  // Deleting its two units removes it whole, in the browser too.
  cli.send({ cmd: "notes_delete", pos: 0, len: 2 });
  await waitForNotes(page, `x${expected}`);
  assert.equal(await notesText(page), `x${expected}`);
});

test("a browser and a CLI peer on two instances of the service, sharing rooms through Redis, meet", async (t) => {
  const redis = await startRedis(t);
  const one = await startServer(t, ["--redis-url", redis]);
  const two = await startServer(t, ["--redis-url", redis]);
  // One meeting, reached through each instance, as a load balancer would spread its people.
  const link = await newMeeting(one);
  const otherLink = link.replace(one, two);
  assert.notEqual(otherLink, link);

  const browser = await launchBrowser(t);
  const page = await newPage(browser);
  await joinAs(page, link, "Browser");
  const cli = startCli(t, otherLink, "Cli");
  await cli.waitFor((e) => e.event === "peer_connected" && e.name === "Browser", "the browser connecting");
  await waitConnected(page, "Cli");

  cli.send({ cmd: "say", text: "hello across instances" });
  await page.getByRole("log", { name: "Chat" }).getByText("hello across instances").waitFor({ timeout: WAIT_MS });
  await page.getByRole("textbox", { name: "Message" }).fill("and back");
  await page.getByRole("button", { name: "Send" }).click();
  await cli.waitFor((e) => e.event === "chat" && e.text === "and back", "the browser's chat");
});

test("a file goes both ways between a browser and a CLI peer", async (t) => {
  const server = await startServer(t);
  const link = await newMeeting(server, "ERERERERERERERERERERIg");
  const browser = await launchBrowser(t);
  const page = await newPage(browser);
  // The camera is on, so once connected the browser renegotiates to add it.
  await joinAs(page, link, "Browser", { cam: true });
  const cli = startCli(t, link, "Cli");
  await waitConnected(page, "Cli");

  // From the CLI: the browser is asked, accepts, and saves the same bytes.
  const dir = tempDir(t, "files");
  const report = randomBytes(2 * 1024 * 1024 + 7);
  writeFileSync(join(dir, "report.pdf"), report);
  cli.send({ cmd: "send_file", path: join(dir, "report.pdf") });
  const offer = page.getByRole("list", { name: "Files" }).getByRole("listitem").filter({ hasText: "report.pdf from Cli" });
  await offer.getByRole("button", { name: "Accept" }).click();
  await waitTransferDone(page, "report.pdf from Cli");
  assert.equal(await savedFileSha256(page, "report.pdf"), sha256(report));
  await cli.waitFor((e) => e.event === "file" && e.direction === "sending" && e.state === "done", "the file sent");

  // From the browser: the CLI takes it (it accepts files on its own) and verifies it.
  const sent = await dropFile(page, "photo.raw", 1536 * 1024);
  const received = await cli.waitFor(
    (e) => e.event === "file" && e.direction === "receiving" && ["done", "failed", "cancelled"].includes(e.state),
    "the browser's file",
  );
  assert.equal(received.state, "done", `the CLI reports: ${received.reason}`);
  assert.equal(sha256(readFileSync(received.path)), sent);
  await waitTransferDone(page, "photo.raw to Cli");
});

test("a browser and a CLI peer holding different keys each refuse the other", async (t) => {
  const server = await startServer(t);
  const link = await newMeeting(server);
  const browser = await launchBrowser(t);
  const page = await newPage(browser);
  await joinAs(page, link, "Browser");
  // The same room, another key.
  const cli = startCli(t, link.replace(/#k=.*$/, "#k=ERERERERERERERERERERIg"), "Cli");
  // The browser says so, and does not list the CLI as someone in the meeting.
  await page.getByText(/The connection to Cli may be intercepted/).waitFor({ timeout: WAIT_MS });
  await cli.waitFor((e) => e.event === "intercepted", "the browser refused");
  const listed = page.getByRole("list", { name: "Participants" }).getByRole("listitem").filter({ hasText: "Cli" });
  assert.equal(await listed.count(), 0);
  // Nothing crossed: the CLI never saw the browser as a connected peer.
  assert.equal(cli.events.filter((e) => e.event === "peer_connected").length, 0);
});

test("after the browser rejoins signaling alone, its renegotiation reaches the CLI's connection", async (t) => {
  const server = await startServer(t);
  const link = await newMeeting(server);
  const browser = await launchBrowser(t);
  const page = await newPage(browser);
  await allowCuttingSignaling(page);
  await joinAs(page, link, "Browser");
  const cli = startCli(t, link, "Cli");
  await waitConnected(page, "Cli");
  await cutSignaling(page);

  // Turning the camera on renegotiates; the CLI must answer on the live connection, not on a
  // new one for the browser's new signaling id (whose answer would not match and kill it).
  await page.getByRole("button", { name: "Camera" }).click();
  await cli.waitFor((e) => e.event === "media" && e.cam === true, "the camera turned on");
  const sent = await dropFile(page, "after-rejoin.bin", 1024 * 1024);
  const received = await cli.waitFor(
    (e) => e.event === "file" && e.direction === "receiving" && ["done", "failed", "cancelled"].includes(e.state),
    "the file",
  );
  assert.equal(received.state, "done", `the CLI reports: ${received.reason}`);
  assert.equal(sha256(readFileSync(received.path)), sent);
  await waitConnected(page, "Cli");
  assert.equal(await page.locator('[aria-label="Participants"] li:not(.self)').count(), 1);
});
