// The shared vectors of tests/vectors/, which confab-proto runs too (crates/proto/tests/vectors.rs):
// the browser's implementation must give Rust's answers.
import assert from "node:assert/strict";
import { test } from "node:test";
import * as A from "@automerge/automerge";
import { spliceNotes, genesis, newActor, notesCursorPosition, notesOf } from "../src/link/document";
import { validateFileOffer } from "../src/link/files";
import { fpMac, importMeetingKey, verifyFpMac } from "../src/link/fp-mac";
import { parseMeetingLink, signalingUrl } from "../src/link/meeting-url";
import { Recovery, type RecoveryAction, type RecoveryInput } from "../src/link/recovery";
import { PeerSync, SnapshotAssembly, SyncError, decodeSyncFrame, snapshotFrames } from "../src/link/sync";
import { checkDisplayName } from "../src/link/text";
import { fromHex, hex, payload, sha256, vectors } from "./support";

type Why = { why: string };

test("fp_mac: the MACs Rust makes, and the same verdicts", async () => {
  const file = vectors<{
    macs: (Why & { key: string; own_fp: string; peer_fp: string; mac: string })[];
    verify: (Why & { key: string; mac: string; remote_fp: string; local_fp: string; valid: boolean })[];
  }>("fp-mac.json");
  for (const c of file.macs) assert.equal(await fpMac(await importMeetingKey(c.key), c.own_fp, c.peer_fp), c.mac, c.why);
  for (const c of file.verify) {
    assert.equal(await verifyFpMac(await importMeetingKey(c.key), c.mac, c.remote_fp, c.local_fp), c.valid, c.why);
  }
});

test("file offers: the same checks, in the same order, with the same words", () => {
  const file = vectors<{
    cases: (Why & { id: string; sha256: string; size: number; max_bytes: number; error: { message: string } | null })[];
  }>("file-offer.json");
  for (const c of file.cases) {
    assert.equal(validateFileOffer(c.id, c.sha256, c.size, c.max_bytes), c.error?.message ?? null, c.why);
  }
});

type Spec = { hex?: string; len?: number; seed?: number };

test("snapshots are chunked as Rust chunks them", () => {
  const file = vectors<{
    chunking: (Why & { input: Spec; frame_lengths: number[]; frames_sha256: string; frames_hex?: string[] })[];
  }>("snapshot.json");
  for (const c of file.chunking) {
    const frames = snapshotFrames(payload(c.input));
    assert.deepEqual(
      frames.map((f) => f.length),
      c.frame_lengths,
      c.why,
    );
    assert.equal(sha256(Buffer.concat(frames)), c.frames_sha256, c.why);
    if (c.frames_hex) assert.deepEqual(frames.map(hex), c.frames_hex, c.why);
  }
});

test("snapshots are reassembled, and refused, as Rust does", () => {
  const file = vectors<{
    reassembly: (Why & {
      max_bytes: number;
      frames: { tag: number; payload?: Spec }[];
      result?: { len: number; sha256: string };
      error?: string;
    })[];
  }>("snapshot.json");
  for (const c of file.reassembly) {
    const assembly = new SnapshotAssembly(c.max_bytes);
    let outcome: { bytes: Uint8Array } | { error: string } | null = null;
    try {
      for (const { tag, payload: spec } of c.frames) {
        const frame = decodeSyncFrame(Uint8Array.of(tag, ...(spec ? payload(spec) : [])));
        if (frame.kind === "chunk") assembly.push(frame.chunk);
        else if (frame.kind === "end") outcome = { bytes: assembly.finish() };
      }
    } catch (e) {
      if (!(e instanceof SyncError)) throw e;
      outcome = { error: e.code };
    }
    if (c.error) assert.deepEqual(outcome, { error: c.error }, c.why);
    else {
      assert.ok(outcome && "bytes" in outcome, `${c.why}: ${JSON.stringify(outcome)}`);
      assert.equal(outcome.bytes.length, c.result?.len, c.why);
      assert.equal(sha256(outcome.bytes), c.result?.sha256, c.why);
    }
  }
});

test("meeting links: what they parse to, or the same refusal", () => {
  const file = vectors<{
    links: (Why & {
      link: string;
      parsed?: { server: string; room: string; key: string; name?: string; websocket_url: string };
      error?: string;
    })[];
  }>("meeting-link.json");
  for (const c of file.links) {
    const got = parseMeetingLink(c.link);
    if (c.error) {
      assert.equal(got, c.error, c.why);
      continue;
    }
    assert.ok(typeof got !== "string", `${c.why}: ${String(got)}`);
    const { server, room, key, name, websocket_url } = c.parsed!;
    assert.deepEqual(got, { base: server, room, key, ...(name ? { name } : {}) }, c.why);
    assert.equal(signalingUrl(got), websocket_url, c.why);
  }
});

test("display names: accepted and trimmed, or refused, as the server decides", () => {
  const file = vectors<{ cases: (Why & { input: string; name?: string; error?: string })[] }>("display-name.json");
  for (const c of file.cases) {
    const got = checkDisplayName(c.input);
    if (c.error) assert.equal(got.ok ? "accepted" : got.problem, c.error, c.why);
    else assert.deepEqual(got, { ok: true, name: c.name }, c.why);
  }
});

test("UTF-16 positions: JavaScript strings count as the vectors say", () => {
  const file = vectors<{
    to_char: (Why & { text: string; utf16: number; utf16_len: number; char?: number; error?: string })[];
    to_utf16: (Why & { text: string; char: number; utf16: number })[];
  }>("utf16-positions.json");
  for (const c of file.to_char) {
    assert.equal(c.text.length, c.utf16_len, c.why);
    const splitsPair = /[\ud800-\udbff]$/.test(c.text.slice(0, c.utf16)) && c.utf16 < c.text.length;
    if (c.error === "past_end") assert.ok(c.utf16 > c.text.length, c.why);
    else if (c.error === "inside_character") assert.ok(splitsPair, c.why);
    else {
      assert.ok(!splitsPair && c.utf16 <= c.text.length, c.why);
      assert.equal([...c.text.slice(0, c.utf16)].length, c.char, c.why);
    }
  }
  for (const c of file.to_utf16) assert.equal([...c.text].slice(0, c.char).join("").length, c.utf16, c.why);
});

test("UTF-16 positions: an edit in the browser's notes lands where Rust puts it", () => {
  const file = vectors<{ edits: (Why & { text: string; pos: number; insert?: string; delete?: number; result: string })[] }>(
    "utf16-positions.json",
  );
  for (const c of file.edits) {
    const start = spliceNotes(genesis(newActor()), [{ pos: 0, insert: c.text }]);
    const step = c.insert !== undefined ? { pos: c.pos, insert: c.insert } : { pos: c.pos, delete: c.delete ?? 0 };
    assert.equal(notesOf(spliceNotes(start, [step])), c.result, c.why);
  }
});

test("hostile frames and cursors are refused without a change, as confab-core refuses them", () => {
  const file = vectors<{ sync_frames: (Why & { frames: string[] })[]; cursors: (Why & { cursor: string })[] }>("hostile.json");
  const agenda = spliceNotes(genesis(newActor()), [{ pos: 0, insert: "agenda" }]);
  for (const c of file.sync_frames) {
    const sync = new PeerSync(false);
    let doc = agenda;
    // The browser gives up on a peer whose frame throws, whatever the error (BrowserLink).
    assert.throws(() => {
      for (const frame of c.frames) doc = sync.receive(doc, fromHex(frame));
    }, c.why);
    assert.deepEqual(A.getHeads(doc), A.getHeads(agenda), `${c.why}: nothing changed`);
  }
  for (const c of file.cursors) assert.equal(notesCursorPosition(agenda, c.cursor), null, c.why);
});

test("recovery: ICE restarts and giving up at the times Rust decides them", () => {
  type Step =
    | { at: number; input: RecoveryInput; expect?: RecoveryAction }
    | { ticks: [number, number]; expect: [number, RecoveryAction][] }
    | { reconnecting: boolean };
  const file = vectors<{ cases: (Why & { steps: Step[] })[] }>("recovery.json");
  for (const c of file.cases) {
    const recovery = new Recovery();
    for (const step of c.steps) {
      const where = `${c.why}: ${JSON.stringify(step)}`;
      if ("reconnecting" in step) assert.equal(recovery.reconnecting, step.reconnecting, where);
      else if ("ticks" in step) {
        const got: [number, RecoveryAction][] = [];
        for (let ms = step.ticks[0]; ms <= step.ticks[1]; ms += 100) {
          const action = recovery.handle(ms, "tick");
          if (action) got.push([ms, action]);
        }
        assert.deepEqual(got, step.expect, where);
      } else assert.equal(recovery.handle(step.at, step.input), step.expect ?? null, where);
    }
  }
});
