// Every screen at desktop and phone widths, light and dark: screenshots for people to look at
// (tests/artifacts/screenshots), and a check that nothing runs off the side of a phone.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  WAIT_MS,
  newMeeting,
  joinAs,
  launchBrowser,
  newPage,
  screenshot,
  startServer,
  waitConnected,
  waitForNotes,
  waitVideo,
} from "./harness.mjs";

const SIZES = { desktop: { width: 1280, height: 720 }, phone: { width: 390, height: 844 } };

async function assertFitsWidth(page, what) {
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `${what} is ${overflow}px wider than the screen`);
}

for (const colorScheme of ["light", "dark"]) {
  test(`home, pre-join and meeting screens, ${colorScheme}`, async (t) => {
    const server = await startServer(t);
    const link = await newMeeting(server);
    const browser = await launchBrowser(t);
    const other = await newPage(browser, { colorScheme });
    await joinAs(other, link, "Grace Hopper", { cam: true });

    for (const [size, viewport] of Object.entries(SIZES)) {
      const page = await newPage(browser, { ...viewport, colorScheme });
      await page.goto(server);
      await page.getByRole("button", { name: "New meeting" }).waitFor();
      await assertFitsWidth(page, `home at ${size} width`);
      await screenshot(page, `home-${size}-${colorScheme}`);

      await page.goto(link);
      await page.getByRole("textbox", { name: "Your name" }).fill(`Ada (${size})`);
      await page.getByRole("button", { name: "Camera" }).click();
      await page.waitForFunction(() => document.querySelector("video.preview")?.videoWidth > 0, null, { timeout: WAIT_MS });
      await assertFitsWidth(page, `pre-join at ${size} width`);
      await screenshot(page, `prejoin-${size}-${colorScheme}`);

      await page.getByRole("button", { name: "Join" }).click();
      await waitConnected(page, "Grace Hopper");
      await waitVideo(page, "Grace Hopper");
      await page.getByRole("textbox", { name: "Message" }).fill("The agenda is in the notes.");
      await page.getByRole("button", { name: "Send" }).click();
      if (size === "desktop") {
        const notes = page.getByRole("textbox", { name: "Notes" });
        await notes.click();
        // The editor continues a Markdown list on Enter, as people expect.
        await notes.pressSequentially("# Weekly sync\n\n- Release date\nHiring");
        await page.getByText("Saved in this browser").waitFor({ timeout: WAIT_MS });
      } else {
        await waitForNotes(page, "# Weekly sync\n\n- Release date\n- Hiring");
      }
      await page.evaluate(() => window.scrollTo(0, 0));
      await assertFitsWidth(page, `meeting at ${size} width`);
      await screenshot(page, `meeting-${size}-${colorScheme}`);
      await page.getByRole("button", { name: "Shortcuts" }).click();
      await page.getByRole("dialog", { name: "Keyboard shortcuts" }).waitFor();
      if (size === "desktop") await screenshot(page, `shortcuts-${colorScheme}`);
      await page.context().close();
    }
  });
}
