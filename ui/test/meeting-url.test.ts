import assert from "node:assert/strict";
import { test } from "node:test";
import { base64url, fromBase64url, meetingLinkText, parseMeetingLink, randomKey } from "../src/link/meeting-url";

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
