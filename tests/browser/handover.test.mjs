// A network handover mid-meeting: the CLI peer, in a network namespace, loses its address and
// gets another (Wi-Fi to wired, a new DHCP lease). It restarts ICE from the new address and
// rejoins signaling under a new id; the browser takes that restart as the same connection
// (its DTLS fingerprint is the one already verified) and shows the CLI peer connected, once,
// and chat and notes flow as before.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  WAIT_MS,
  joinAs,
  launchBrowser,
  networkNamespace,
  newMeeting,
  newPage,
  startCli,
  startServer,
  waitConnected,
  waitForNotesContaining,
} from "./harness.mjs";

test("a peer whose address changes comes back as the same participant", async (t) => {
  const net = networkNamespace(t, 241 + (process.pid % 14));
  const server = await startServer(t, [], { everywhere: true });
  const link = await newMeeting(server);
  // The namespace reaches the service at this machine's address on its link.
  const cliLink = link.replace(/^http:\/\/127\.0\.0\.1:/, `http://${net.host}:`);
  const cli = startCli(t, cliLink, "Cli", { namespace: net.name });
  await cli.waitFor((e) => e.event === "joined", "joined");

  const browser = await launchBrowser(t);
  const page = await newPage(browser);
  await joinAs(page, link, "Browser");
  await waitConnected(page, "Cli");
  await cli.waitFor((e) => e.event === "peer_connected", "the browser connecting");

  const moved = Date.now();
  net.readdress(3);
  // The CLI peer restarts at once, so the browser may never see the path go; the CLI shows
  // the browser reconnecting, then back.
  await cli.waitFor((e) => e.event === "peer_connection" && e.up === false, "the browser reconnecting");
  await cli.waitFor((e) => e.event === "peer_connection" && e.up === true, "the browser back");
  console.log(`the CLI peer was back ${Date.now() - moved} ms after its address changed`);
  await waitConnected(page, "Cli");
  const cliItem = page.getByRole("list", { name: "Participants" }).getByRole("listitem").filter({ hasText: "Cli" });

  cli.send({ cmd: "say", text: "from my new address" });
  await page.getByRole("log", { name: "Chat" }).getByText("from my new address").waitFor({ timeout: WAIT_MS });
  const notes = page.getByRole("textbox", { name: "Notes" });
  await notes.click();
  await notes.pressSequentially("seen at your new address");
  await cli.waitFor((e) => e.event === "notes" && e.text.includes("seen at your new address"), "the browser's notes");
  cli.send({ cmd: "notes_append", text: " and back" });
  await waitForNotesContaining(page, "and back");

  // The same participant, once, and no second connection on either side.
  assert.equal(await cliItem.count(), 1, "the CLI peer is listed once");
  assert.equal(cli.events.filter((e) => e.event === "peer_connected").length, 1, "the CLI connected once");
  assert.ok(!cli.events.some((e) => e.event === "peer_failed" || e.event === "peer_left"), "the CLI lost nobody");
});
