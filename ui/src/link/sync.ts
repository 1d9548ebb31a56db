// Sync of the meeting document with one peer over its `sync` channel (docs/protocol.md §3), as
// confab-core does it: `0x00` + an Automerge sync message; `0x01` + a chunk of a snapshot and
// `0x02` to end it, for a newcomer with an empty document. A snapshot is merged, never swapped in.
import * as A from "@automerge/automerge/slim";
import { MAX_CHANNEL_FRAME_BYTES, MAX_SNAPSHOT_BYTES, MAX_SYNC_FRAME_BYTES, SNAPSHOT_CHUNK_BYTES } from "../gen/constants";
import type { Doc, MeetingSchema } from "./document";

const TAG_SYNC = 0x00;
const TAG_CHUNK = 0x01;
const TAG_END = 0x02;

/** What is wrong with the peer's sync data; each one closes the connection. `code` is the
 * kind the shared vectors (tests/vectors/snapshot.json) name. */
export class SyncError extends Error {
  constructor(
    readonly code: "empty" | "unknown_tag" | "frame_too_large" | "end_with_payload" | "snapshot_too_large" | "not_started",
    message: string,
  ) {
    super(message);
  }
}

export type SyncFrame = { kind: "sync"; message: Uint8Array } | { kind: "chunk"; chunk: Uint8Array } | { kind: "end" };

/** One `sync` frame, checked as confab-proto's `SyncFrame::decode` checks it. */
export function decodeSyncFrame(frame: Uint8Array): SyncFrame {
  if (frame.length === 0) throw new SyncError("empty", "an empty sync frame");
  if (frame.length > MAX_CHANNEL_FRAME_BYTES) throw new SyncError("frame_too_large", "a sync frame over the limit");
  const payload = frame.subarray(1);
  switch (frame[0]) {
    case TAG_SYNC:
      return { kind: "sync", message: payload };
    case TAG_CHUNK:
      if (payload.length > SNAPSHOT_CHUNK_BYTES) throw new SyncError("frame_too_large", "a snapshot chunk over the limit");
      return { kind: "chunk", chunk: payload };
    case TAG_END:
      if (payload.length) throw new SyncError("end_with_payload", "the snapshot's end frame carries a payload");
      return { kind: "end" };
    default:
      throw new SyncError("unknown_tag", `unknown sync frame (tag ${frame[0]})`);
  }
}

/** The frames that carry a saved document: `0x01` + chunk of at most SNAPSHOT_CHUNK_BYTES, then
 * `0x02`. */
export function snapshotFrames(bytes: Uint8Array): Uint8Array[] {
  const frames: Uint8Array[] = [];
  for (let at = 0; at < bytes.length; at += SNAPSHOT_CHUNK_BYTES) {
    const chunk = bytes.subarray(at, at + SNAPSHOT_CHUNK_BYTES);
    const frame = new Uint8Array(chunk.length + 1);
    frame[0] = TAG_CHUNK;
    frame.set(chunk, 1);
    frames.push(frame);
  }
  frames.push(Uint8Array.of(TAG_END));
  return frames;
}

/** A snapshot being received, as confab-proto's `SnapshotAssembly`. */
export class SnapshotAssembly {
  /** null until the first chunk: an end without one is a protocol error, not an empty doc. */
  private chunks: Uint8Array[] | null = null;
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  /** Adds a chunk; past the limit, what was received is dropped. */
  push(chunk: Uint8Array): void {
    this.chunks ??= [];
    this.bytes += chunk.length;
    if (this.bytes > this.maxBytes) {
      this.chunks = null;
      this.bytes = 0;
      throw new SyncError("snapshot_too_large", `a snapshot from the peer is over ${this.maxBytes} bytes`);
    }
    this.chunks.push(chunk.slice());
  }

  /** The whole snapshot, at its end frame; the assembly is then ready for the next one. */
  finish(): Uint8Array {
    if (!this.chunks) throw new SyncError("not_started", "the peer ended a snapshot it never started");
    const bytes = concat(this.chunks);
    this.chunks = null;
    this.bytes = 0;
    return bytes;
  }
}

export class PeerSync {
  private state: A.SyncState = A.initSyncState();
  /** We asked this peer for a snapshot and hold our sync messages until it arrives. */
  private awaiting: boolean;
  private readonly snapshot = new SnapshotAssembly(MAX_SNAPSHOT_BYTES);

  constructor(awaitingSnapshot: boolean) {
    this.awaiting = awaitingSnapshot;
  }

  /** The frames of a snapshot of `doc`; from here on the peer counts as holding it. */
  snapshotFrames(doc: Doc): Uint8Array[] {
    this.state = withSharedHeads(A.getHeads(doc));
    return snapshotFrames(A.save(doc));
  }

  /** What to send now, if anything. A sync message too large for one frame goes as a snapshot. */
  poll(doc: Doc): Uint8Array[] {
    if (this.awaiting) return [];
    const [state, message] = A.generateSyncMessage(doc, this.state);
    this.state = state;
    if (!message) return [];
    if (message.length + 1 > MAX_SYNC_FRAME_BYTES) return this.snapshotFrames(doc);
    const frame = new Uint8Array(message.length + 1);
    frame[0] = TAG_SYNC;
    frame.set(message, 1);
    return [frame];
  }

  /** Takes one frame from the peer; returns the document, changed or not. */
  receive(doc: Doc, frame: Uint8Array): Doc {
    const decoded = decodeSyncFrame(frame);
    if (decoded.kind === "sync") {
      this.awaiting = false; // a peer that syncs first is not sending a snapshot
      const [next, state] = A.receiveSyncMessage(doc, this.state, decoded.message);
      this.state = state;
      return next;
    }
    if (decoded.kind === "chunk") {
      this.snapshot.push(decoded.chunk);
      return doc;
    }
    const bytes = this.snapshot.finish();
    this.awaiting = false;
    const theirs = A.load<MeetingSchema>(bytes);
    this.state = withSharedHeads(A.getHeads(theirs));
    // A snapshot that holds everything we have (a newcomer's case) is adopted: merging would
    // replay its whole history change by change to the same result.
    if (A.hasHeads(theirs, A.getHeads(doc))) return A.clone(theirs, { actor: A.getActorId(doc) });
    return A.merge(doc, theirs);
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
