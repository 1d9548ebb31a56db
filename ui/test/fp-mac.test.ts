import assert from "node:assert/strict";
import { test } from "node:test";
import { sdpFingerprint } from "../src/link/fp-mac";

test("the fingerprint is read from an SDP as confab-core reads it", () => {
  const sdp = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\na=fingerprint:sha-256 AB:CD\r\na=setup:actpass\r\n";
  assert.equal(sdpFingerprint(sdp), "sha-256 AB:CD");
  assert.equal(sdpFingerprint("v=0\r\n"), null);
  assert.equal(sdpFingerprint(undefined), null);
});
