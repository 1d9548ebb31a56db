// Sync of the meeting document with one peer over its `sync` channel (docs/protocol.md §3), as
// confab-core does it: `0x00` + an Automerge sync message; `0x01` + a chunk of a snapshot and
// `0x02` to end it, for a newcomer with an empty document. A snapshot is merged, never swapped in.
import * as A from "@automerge/automerge/slim";
import type { Doc, MeetingSchema } from "./document";

const TAG_SYNC = 0x00;
const TAG_CHUNK = 0x01;
const TAG_END = 0x02;
/** A data channel message is at most 65,536 bytes: a chunk plus its tag byte fits. */
const SNAPSHOT_CHUNK_BYTES = 65_535;
const MAX_FRAME_BYTES = 65_536;
const MAX_SNAPSHOT_BYTES = 64 * 1024 * 1024;

export class SyncError extends Error {}

export class PeerSync {
  private state: A.SyncState = A.initSyncState();
  /** We asked this peer for a snapshot and hold our sync messages until it arrives. */
  private awaiting: boolean;
  private chunks: Uint8Array[] | null = null;
  private chunkBytes = 0;

  constructor(awaitingSnapshot: boolean) {
    this.awaiting = awaitingSnapshot;
  }

  /** The frames of a snapshot of `doc`; from here on the peer counts as holding it. */
  snapshotFrames(doc: Doc): Uint8Array[] {
    const bytes = A.save(doc);
    const frames: Uint8Array[] = [];
    for (let at = 0; at < bytes.length; at += SNAPSHOT_CHUNK_BYTES) {
      const chunk = bytes.subarray(at, at + SNAPSHOT_CHUNK_BYTES);
      const frame = new Uint8Array(chunk.length + 1);
      frame[0] = TAG_CHUNK;
      frame.set(chunk, 1);
      frames.push(frame);
    }
    frames.push(Uint8Array.of(TAG_END));
    this.state = withSharedHeads(A.getHeads(doc));
    return frames;
  }

  /** What to send now, if anything. A sync message too large for one frame goes as a snapshot. */
  poll(doc: Doc): Uint8Array[] {
    if (this.awaiting) return [];
    const [state, message] = A.generateSyncMessage(doc, this.state);
    this.state = state;
    if (!message) return [];
    if (message.length + 1 > MAX_FRAME_BYTES) return this.snapshotFrames(doc);
    const frame = new Uint8Array(message.length + 1);
    frame[0] = TAG_SYNC;
    frame.set(message, 1);
    return [frame];
  }

  /** Takes one frame from the peer; returns the document, changed or not. */
  receive(doc: Doc, frame: Uint8Array): Doc {
    const tag = frame[0];
    if (tag === TAG_SYNC) {
      this.awaiting = false; // a peer that syncs first is not sending a snapshot
      const [next, state] = A.receiveSyncMessage(doc, this.state, frame.subarray(1));
      this.state = state;
      return next;
    }
    if (tag === TAG_CHUNK) {
      this.chunks ??= [];
      this.chunkBytes += frame.length - 1;
      if (this.chunkBytes > MAX_SNAPSHOT_BYTES) throw new SyncError("a snapshot from the peer is too large");
      this.chunks.push(frame.slice(1));
      return doc;
    }
    if (tag === TAG_END && frame.length === 1) {
      if (!this.chunks) throw new SyncError("the peer ended a snapshot it never started");
      const bytes = concat(this.chunks);
      this.chunks = null;
      this.chunkBytes = 0;
      this.awaiting = false;
      const theirs = A.load<MeetingSchema>(bytes);
      this.state = withSharedHeads(A.getHeads(theirs));
      // A snapshot that holds everything we have (a newcomer's case) is adopted: merging would
      // replay its whole history change by change to the same result.
      if (A.hasHeads(theirs, A.getHeads(doc))) return A.clone(theirs, { actor: A.getActorId(doc) });
      return A.merge(doc, theirs);
    }
    throw new SyncError(`unknown sync frame (tag ${tag})`);
  }
}

/** A fresh sync state that already counts `heads` as shared (the encoded form holds just those). */
function withSharedHeads(heads: A.Heads): A.SyncState {
  if (heads.length > 127) return A.initSyncState(); // one LEB128 byte of count below
  const bytes = new Uint8Array(2 + 32 * heads.length);
  bytes[0] = 0x43;
  bytes[1] = heads.length;
  heads.forEach((hex, i) => {
    for (let b = 0; b < 32; b++) bytes[2 + 32 * i + b] = parseInt(hex.slice(2 * b, 2 * b + 2), 16);
  });
  try {
    return A.decodeSyncState(bytes);
  } catch {
    return A.initSyncState();
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
