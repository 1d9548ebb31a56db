// A browser and the Rust engine (`confab join --json`) in one meeting.
import { test } from "node:test";
import assert from "node:assert/strict";
import { WAIT_MS, joinAs, launchBrowser, newPage, notesText, startCli, startServer, waitConnected, waitForNotes } from "./harness.mjs";

test("a browser and a CLI peer: snapshot, chat both ways, notes converge", async (t) => {
  const server = await startServer(t);
  const { link: room } = await (await fetch(`${server}/api/meetings`, { method: "POST" })).json();
  const link = `${room}#k=q83vEjRWeJCrze8SNFZ4kA`;

  const cli = startCli(t, link, "Cli");
  await cli.waitFor((e) => e.event === "joined", "joined");
  cli.send({ cmd: "notes_insert", pos: 0, text: "Written before the browser came.\n", ref: "first" });
  await cli.waitFor((e) => e.event === "applied" && e.ref === "first", "the first edit applied");

  const browser = await launchBrowser(t);
  const page = await newPage(browser);
  await joinAs(page, link, "Browser");
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
});
