// File transfer (docs/protocol.md §3) as confab-core does it: offer / accept on `ctl`, the bytes on
// an in-band `file:ID` channel in chunks of at most 16 KiB, size and sha256 checked before the
// file is offered to the user, and the receiver closing the channel to confirm.
import { BROWSER_MAX_FILE_BYTES, FILE_CHUNK_BYTES, MAX_WAITING_FILE_OFFERS } from "../gen/constants";
import type { CtlMessage, PeerId } from "../gen/protocol";
import { stripHidden } from "./text";

/** Pause sending above this much buffered, resume below the low mark. */
const HIGH_WATER = 4 * 1024 * 1024;
const LOW_WATER = 1024 * 1024;
const PROGRESS_EVERY_MS = 100;

export type TransferState = "offered" | "waiting" | "transferring" | "done" | "failed" | "cancelled";

export interface FileTransfer {
  /** The transfer's key: the file id and the peer it goes to or comes from. */
  key: string;
  id: string;
  peer: PeerId;
  peerName: string;
  name: string;
  size: number;
  direction: "sending" | "receiving";
  state: TransferState;
  bytes: number;
  /** A received file, verified, ready to be saved (in the browser). */
  url?: string;
  /** Where a received file was saved (in the desktop app). */
  savedAs?: string;
  reason?: string;
}

export const transferKey = (id: string, peer: PeerId) => `${id}/${peer}`;

/** Whether a transfer is over, one way or another. */
export const hasEnded = (transfer: FileTransfer) => ["done", "failed", "cancelled"].includes(transfer.state);

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

export function hex(bytes: ArrayBuffer): string {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
}

export async function sha256(data: BufferSource): Promise<string> {
  return hex(await crypto.subtle.digest("SHA-256", data));
}

/** confab-proto's `validate_file_offer`, with its wording (the sender reads it): null when the
 * fields are good. */
export function validateFileOffer(id: string, sha256: string, size: number, maxBytes: number): string | null {
  if (!UUID_V4.test(id)) return "the transfer id is not a UUID";
  if (!/^[0-9a-f]{64}$/.test(sha256)) return "the sha256 is not 64 lower-case hex digits";
  if (size > maxBytes) return `the file is ${size} bytes; the limit is ${maxBytes}`;
  return null;
}

/** Why an offer from a peer is cancelled, or null when it can be shown to the user. `waiting`
 * counts that peer's offers still waiting for an answer; `idInUse`, whether the id is taken. */
export function offerProblem(
  offer: Extract<CtlMessage, { type: "file_offer" }>,
  waiting: number,
  idInUse: boolean,
): string | null {
  if (waiting >= MAX_WAITING_FILE_OFFERS) return `${MAX_WAITING_FILE_OFFERS} offers are already waiting for an answer`;
  // The JSON came from a peer: its types are checked here, as serde does in Rust.
  if (typeof offer.id !== "string" || typeof offer.sha256 !== "string") return "the offer is malformed";
  if (typeof offer.name !== "string") return "the file has no name";
  if (!Number.isSafeInteger(offer.size) || offer.size < 0) return "the size is not a number of bytes";
  const problem = validateFileOffer(offer.id, offer.sha256, offer.size, BROWSER_MAX_FILE_BYTES);
  if (problem) return problem;
  return idInUse ? "a transfer with that id is already under way" : null;
}

/** A received name, reduced to something safe to save under (confab-core's rule, in short). */
export function safeFileName(name: string): string {
  const last = name.split(/[/\\]/).pop() ?? "";
  // Windows refuses <>:"|?* in names; a leading dot would hide the file.
  const clean = stripHidden(last)
    .replace(/[<>:"|?*]/g, "")
    .replace(/^\.+/, "")
    .trim();
  // At most 200 bytes of UTF-8, cut between characters.
  const encoder = new TextEncoder();
  let cut = "";
  let bytes = 0;
  for (const ch of clean) {
    bytes += encoder.encode(ch).length;
    if (bytes > 200) break;
    cut += ch;
  }
  return cut || "file";
}

/** Streams `file` over `channel`, pacing on the channel's buffer; `allSent` is called once the
 * last chunk is queued (for `file_done`). Resolves once the receiver has closed the channel (it
 * has everything), rejects on failure. */
export async function streamFile(
  channel: RTCDataChannel,
  file: Blob,
  progress: (bytes: number) => void,
  allSent: () => void,
): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    if (channel.readyState === "open") return resolve();
    channel.onopen = () => resolve();
    channel.onclose = () => reject(new Error("the file channel closed before it opened"));
  });
  const closed = new Promise<void>((resolve) => (channel.onclose = () => resolve()));
  channel.bufferedAmountLowThreshold = LOW_WATER;
  let sent = 0;
  let reported = 0;
  while (sent < file.size) {
    if (channel.readyState !== "open") throw new Error("the receiver stopped the transfer");
    if (channel.bufferedAmount > HIGH_WATER) {
      await new Promise<void>((resolve) => {
        channel.onbufferedamountlow = () => resolve();
        closed.then(resolve);
      });
      continue;
    }
    const chunk = new Uint8Array(await file.slice(sent, sent + FILE_CHUNK_BYTES).arrayBuffer());
    channel.send(chunk);
    sent += chunk.length;
    if (performance.now() - reported > PROGRESS_EVERY_MS) {
      reported = performance.now();
      progress(sent);
    }
  }
  progress(sent);
  allSent();
  await closed;
}

/** Collects a file from `channel`; resolves with the verified bytes and closes the channel. */
export function receiveFile(
  channel: RTCDataChannel,
  expected: { size: number; sha256: string },
  progress: (bytes: number) => void,
): Promise<Blob> {
  channel.binaryType = "arraybuffer";
  const chunks: ArrayBuffer[] = [];
  let received = 0;
  let reported = 0;
  return new Promise((resolve, reject) => {
    /** Everything is here: verify, then close the channel, which tells the sender. */
    // On success the channel is closed here, which tells the sender; on failure the caller
    // sends `file_cancel` first and closes it after.
    const complete = () => {
      channel.onclose = null;
      channel.onmessage = null;
      const blob = new Blob(chunks);
      chunks.length = 0;
      blob
        .arrayBuffer()
        .then(sha256)
        .then((actual) => {
          if (actual !== expected.sha256) return reject(new Error("the file arrived damaged (sha256 mismatch)"));
          channel.close();
          resolve(blob);
        }, reject);
    };
    channel.onmessage = ({ data }) => {
      const chunk = data as ArrayBuffer;
      received += chunk.byteLength;
      if (chunk.byteLength > FILE_CHUNK_BYTES || received > expected.size) {
        channel.onmessage = null;
        return reject(new Error("the peer sent more than the offer said"));
      }
      chunks.push(chunk);
      if (performance.now() - reported > PROGRESS_EVERY_MS || received === expected.size) {
        reported = performance.now();
        progress(received);
      }
      if (received === expected.size) complete();
    };
    channel.onclose = () => reject(new Error("the sender stopped the transfer"));
    // An empty file has no chunks: it is complete as soon as its channel is.
    if (expected.size === 0) channel.onopen = complete;
  });
}
