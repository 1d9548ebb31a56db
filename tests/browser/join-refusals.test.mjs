// A join the server would refuse is caught in the form, and one it does refuse ends on a screen
// that says what happened and what to do: never a page left on "Connecting…".
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { TEST_KEY, WAIT_MS, joinAs, launchBrowser, newMeeting, newPage, screenshot, startServer, startStoppableServer, tempDir, waitConnected } from "./harness.mjs";

test("the pre-join form refuses names the server would refuse, beside the field", async (t) => {
  const server = await startServer(t);
  const link = await newMeeting(server);
  const page = await newPage(await launchBrowser(t));
  await page.goto(link);
  const name = page.getByRole("textbox", { name: "Your name" });
  for (const [bad, char] of [["Ada\u200b", "U+200B"], ["evil\u202egnp.exe", "U+202E"], ["a\u0007b", "U+0007"]]) {
    await name.fill(bad);
    await page.getByRole("button", { name: "Join" }).click();
    // Described by the message right under it, naming the character to remove.
    await page.locator("#name-problem").getByText(char).waitFor({ timeout: WAIT_MS });
    assert.equal(await name.getAttribute("aria-invalid"), "");
  }
  await name.fill("x".repeat(65));
  await page.locator("#name-problem").getByText("at most 64 characters").waitFor({ timeout: WAIT_MS });
  await screenshot(page, "prejoin-bad-name");
  // Nothing was sent: still on the form, not connecting.
  assert.equal(await page.getByText("Connecting…").count(), 0);
  await name.fill("  Ada  ");
  assert.equal(await page.locator("#name-problem").isHidden(), true);
  await page.getByRole("button", { name: "Join" }).click();
  await page.getByRole("textbox", { name: "Notes" }).waitFor({ timeout: WAIT_MS });
});

test("a full meeting says so, and how to get in", async (t) => {
  const server = await startServer(t, ["--max-peers", "2"]);
  const link = await newMeeting(server);
  const browser = await launchBrowser(t);
  await joinAs(await newPage(browser), link, "First");
  await joinAs(await newPage(browser), link, "Second");
  const page = await newPage(browser);
  await page.goto(link);
  await page.getByRole("textbox", { name: "Your name" }).fill("Third");
  await page.getByRole("button", { name: "Join" }).click();
  await page.getByRole("heading", { name: "This meeting is full" }).waitFor({ timeout: WAIT_MS });
  await page.getByText("It already has 2 people. Ask the host").waitFor();
  await screenshot(page, "refused-room-full");
  // Trying again goes back to the form (and, the room still full, to the same answer).
  await page.getByRole("button", { name: "Try again" }).click();
  await page.getByRole("textbox", { name: "Your name" }).waitFor({ timeout: WAIT_MS });
});

test("a name refused by the server itself ends the join with the server's reason", async (t) => {
  const server = await startServer(t);
  const link = await newMeeting(server);
  const page = await newPage(await launchBrowser(t));
  // A reload rejoins with the name saved for this tab, skipping the form: here a name the
  // server refuses (as a page of an older build could have saved).
  const room = new URL(link).pathname.split("/").pop();
  await page.addInitScript(
    ([key, value]) => sessionStorage.setItem(key, value),
    [`confab.in-meeting.${room}`, JSON.stringify({ name: "Ada\u200b", mic: false, cam: false })],
  );
  await page.goto(link);
  await page.getByRole("heading", { name: "The server did not let you in" }).waitFor({ timeout: WAIT_MS });
  await page.getByText(/name must not contain control or text-direction characters/).waitFor();
  assert.equal(await page.getByText("Connecting…").count(), 0);
});

test("on a server with access tokens, the start page asks for one, and the link then lets others in", async (t) => {
  const tokens = join(tempDir(t, "tokens"), "tokens");
  writeFileSync(tokens, "team-token-0123456789\n");
  const service = await startStoppableServer(t, ["--token-file", tokens]);
  const server = service.url;
  const browser = await launchBrowser(t);
  const host = await newPage(browser);
  await host.goto(server);
  await host.getByRole("textbox", { name: "Your name" }).fill("Host");
  const make = host.getByRole("button", { name: "New meeting" });
  await make.click();
  // No token yet: the server's refusal becomes a field for one, with why.
  const token = host.getByLabel("Access token");
  await token.waitFor({ timeout: WAIT_MS });
  await host.getByText("only for people with an access token").waitFor();
  await token.fill("team-token-9876543210");
  await make.click();
  await host.getByText("The server refused this access token").waitFor({ timeout: WAIT_MS });
  await screenshot(host, "home-access-token");
  await token.fill("team-token-0123456789");
  await make.click();
  await host.waitForURL(/\/m\/[A-Za-z0-9_-]{22}#k=[A-Za-z0-9_-]{22}$/, { timeout: WAIT_MS });
  await host.getByRole("button", { name: "Join" }).click();
  await host.getByRole("textbox", { name: "Notes" }).waitFor({ timeout: WAIT_MS });

  // The meeting made is open to its link: a guest joins with it alone, and meets the host.
  const guest = await newPage(browser);
  await joinAs(guest, host.url(), "Guest");
  await waitConnected(guest, "Host");

  // A link to a meeting nobody with a token started ends on a screen saying so.
  const stranger = await newPage(browser);
  await stranger.goto(`${server}/m/AAAAAAAAAAAAAAAAAAAAAA#k=${TEST_KEY}`);
  await stranger.getByRole("textbox", { name: "Your name" }).fill("Stranger");
  await stranger.getByRole("button", { name: "Join" }).click();
  await stranger.getByRole("heading", { name: "This meeting has not started" }).waitFor({ timeout: WAIT_MS });
  await screenshot(stranger, "refused-bad-token");
  assert.equal(await stranger.getByText("Connecting…").count(), 0);

  // The server restarts and forgets which meetings were open, and the guest is gone: the host's
  // tab, which kept its token, opens the meeting again, and a newcomer with the link gets in.
  await guest.close();
  await service.stop();
  await host.getByText(/^Reconnecting/).waitFor({ timeout: WAIT_MS });
  await startStoppableServer(t, ["--token-file", tokens], { port: service.port });
  await host.getByText("In the meeting", { exact: true }).waitFor({ timeout: WAIT_MS });
  const newcomer = await newPage(browser);
  await joinAs(newcomer, host.url(), "Newcomer");
  await waitConnected(newcomer, "Host");
});
