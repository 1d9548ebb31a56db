import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { MAX_SYNC_FRAME_BYTES } from "../src/gen/constants";
import { type Doc, genesis, newActor, notesOf, spliceNotes } from "../src/link/document";
import { PeerSync, SyncError } from "../src/link/sync";
import "./support";

/** Passes frames both ways until neither side has anything to send; returns what was sent. */
function converge(a: { doc: Doc; sync: PeerSync }, b: { doc: Doc; sync: PeerSync }): Uint8Array[] {
  const frames: Uint8Array[] = [];
  for (let round = 0; round < 100; round++) {
    const fromA = a.sync.poll(a.doc);
    const fromB = b.sync.poll(b.doc);
    if (!fromA.length && !fromB.length) return frames;
    for (const f of fromA) b.doc = b.sync.receive(b.doc, f);
    for (const f of fromB) a.doc = a.sync.receive(a.doc, f);
    frames.push(...fromA, ...fromB);
  }
  throw new Error("sync never settled");
}

test("two peers' notes sync to the same text", () => {
  const a = { doc: spliceNotes(genesis(newActor()), [{ pos: 0, insert: "agenda" }]), sync: new PeerSync(false) };
  const b = { doc: spliceNotes(genesis(newActor()), [{ pos: 0, insert: "notes " }]), sync: new PeerSync(false) };
  converge(a, b);
  assert.equal(notesOf(a.doc), notesOf(b.doc));
  assert.match(notesOf(a.doc), /agenda/);
  assert.match(notesOf(a.doc), /notes /);
});

test("a newcomer that asked for a snapshot sends nothing until it has arrived", () => {
  const old = { doc: spliceNotes(genesis(newActor()), [{ pos: 0, insert: "kept" }]), sync: new PeerSync(false) };
  const newcomer = { doc: genesis(newActor()), sync: new PeerSync(true) };
  assert.deepEqual(newcomer.sync.poll(newcomer.doc), [], "nothing before the snapshot");
  for (const frame of old.sync.snapshotFrames(old.doc)) newcomer.doc = newcomer.sync.receive(newcomer.doc, frame);
  assert.equal(notesOf(newcomer.doc), "kept");
  converge(old, newcomer);
  assert.equal(notesOf(old.doc), "kept");
});

test("a history too large for one frame goes as a snapshot, in frames a data channel carries", () => {
  // Random text does not compress: its change is well over one frame.
  const text = randomBytes(150_000).toString("base64");
  const doc = spliceNotes(genesis(newActor()), [{ pos: 0, insert: text }]);
  const a = { doc, sync: new PeerSync(false) };
  const b = { doc: genesis(newActor()), sync: new PeerSync(false) };
  const sent = converge(a, b);
  assert.ok(sent.some((f) => f[0] === 0x01), "went as a snapshot");
  assert.ok(sent.every((f) => f.length <= MAX_SYNC_FRAME_BYTES));
  assert.equal(notesOf(b.doc), text);
});

test("malformed frames are refused with a SyncError, not taken", () => {
  const doc = genesis(newActor());
  for (const [frame, code] of [
    [new Uint8Array(), "empty"],
    [Uint8Array.of(9), "unknown_tag"],
    [Uint8Array.of(2), "not_started"],
    [Uint8Array.of(2, 0), "end_with_payload"],
  ] as const) {
    assert.throws(() => new PeerSync(false).receive(doc, frame), (e) => e instanceof SyncError && e.code === code);
  }
});
