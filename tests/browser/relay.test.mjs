// A TURN relay that refuses the meeting's credentials (the signaling server's TURN secret is not
// the relay's, or the credentials expired) leaves the peers that can meet only through it
// unreachable. The person in the browser is told which relay, and why. (Chromium says so only
// while it has no other way to the peer: here the other peer takes relayed paths only, and the
// relay refuses it too.)
import { test } from "node:test";
import assert from "node:assert/strict";
import { WAIT_MS, joinAs, launchBrowser, machineAddress, newMeeting, newPage, startCli, startCoturn, startServer } from "./harness.mjs";

test("a relay that refuses the meeting's credentials is named, with why, in the browser", async (t) => {
  const relay = await startCoturn(t, machineAddress(), "the relay's secret");
  const server = await startServer(t, ["--turn-url", relay, "--turn-secret", "another secret"]);
  const link = await newMeeting(server);
  startCli(t, link, "Cli", { args: ["--relay-only"] });
  const browser = await launchBrowser(t);
  const page = await newPage(browser);
  await joinAs(page, link, "Ana");
  const banner = page.getByText(`The relay ${relay}`);
  await banner.waitFor({ timeout: WAIT_MS });
  assert.match(
    await banner.textContent(),
    /refused this meeting's credentials \(401[^)]*\): they have expired, or the signaling server's TURN secret is not the relay's/,
  );
});
