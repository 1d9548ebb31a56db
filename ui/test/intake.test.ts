// The browser's flood limit, as confab-core's (crates/core/src/mesh/intake.rs tests the same).
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  PEER_BYTE_BURST,
  PEER_MESSAGE_BURST,
  PEER_MESSAGES_PER_SECOND,
  SYNC_MESSAGE_BURST,
  SYNC_MESSAGES_PER_SECOND,
} from "../src/gen/constants";
import { Intake, Pace } from "../src/link/intake";

test("a burst passes, more is refused, and time gives some back", () => {
  const intake = new Intake(0);
  for (let i = 0; i < PEER_MESSAGE_BURST; i++) assert.ok(intake.take(0, 10), `message ${i}`);
  assert.equal(intake.take(0, 10), false, "one more at the same instant");
  let refilled = 0;
  while (intake.take(100, 10)) refilled++;
  assert.equal(refilled, PEER_MESSAGES_PER_SECOND / 10, "a tenth of a second's worth");
});

test("bytes are limited apart from messages", () => {
  const intake = new Intake(0);
  const mib = 1024 * 1024;
  for (let i = 0; i < PEER_BYTE_BURST / mib; i++) assert.ok(intake.take(0, mib));
  assert.equal(intake.take(0, mib), false);
  assert.ok(intake.take(1000, mib), "after a second, a second's worth");
});

test("our own sync messages: a burst goes at once, then they are paced below the peer's limit", () => {
  assert.ok(SYNC_MESSAGES_PER_SECOND < PEER_MESSAGES_PER_SECOND && SYNC_MESSAGE_BURST < PEER_MESSAGE_BURST);
  const pace = new Pace(0);
  for (let i = 0; i < SYNC_MESSAGE_BURST; i++) {
    assert.equal(pace.due(0), 0, `message ${i}`);
    pace.sent();
  }
  const next = pace.due(0);
  assert.equal(next, 1000 / SYNC_MESSAGES_PER_SECOND, "the next one waits its share of a second");
  assert.equal(pace.due(next), next);
});
