import assert from "node:assert/strict";
import { test } from "node:test";
import { base64url, desktopLinkText, fromBase64url, meetingLinkText, parseMeetingLink, randomKey } from "../src/link/meeting-url";

test("a link made here reads back as the same meeting", () => {
  const key = randomKey();
  const text = meetingLinkText({ base: "https://h.example/prefix", room: "q83vEjRWeJCrze8SNFZ4kA", key });
  assert.deepEqual(parseMeetingLink(text), { base: "https://h.example/prefix", room: "q83vEjRWeJCrze8SNFZ4kA", key });
});

test("base64url has one spelling per value", () => {
  const bytes = Uint8Array.from({ length: 16 }, (_, i) => i * 17);
  assert.deepEqual(fromBase64url(base64url(bytes)), bytes);
  for (const bad of ["AAAAAAAAAAAAAAAAAAAAAB", "AAAAAAAAAAAAAAAAAAAAAA==", "AAAAAAAAAAAAAAAAAAAA+A", "A A"]) {
    assert.throws(() => fromBase64url(bad), bad);
  }
});

test("the desktop app's link for a meeting names its server, prefix and plain http", () => {
  const key = "AQIDBAUGBwgJCgsMDQ4PEA";
  const room = "AAAAAAAAAAAAAAAAAAAAAA";
  assert.equal(
    desktopLinkText({ room, key, base: "http://192.168.1.5:8787" }),
    `confab://m/${room}?h=192.168.1.5%3A8787&s=http#k=${key}`,
  );
  assert.equal(desktopLinkText({ room, key, base: "https://meet.example.org/confab" }), `confab://m/${room}?h=meet.example.org&p=%2Fconfab#k=${key}`);
});
