// How much a peer may send us on `sync` and `ctl`, as confab-core allows (crates/core/src/mesh/
// intake.rs, the same limits): a bucket of messages and one of bytes. A peer over either is
// flooding: it is disconnected, and the others carry on.
import {
  PEER_BYTE_BURST,
  PEER_BYTES_PER_SECOND,
  PEER_MESSAGE_BURST,
  PEER_MESSAGES_PER_SECOND,
  SYNC_MESSAGE_BURST,
  SYNC_MESSAGES_PER_SECOND,
} from "../gen/constants";

export class Intake {
  private messages = PEER_MESSAGE_BURST;
  private bytes = PEER_BYTE_BURST;

  constructor(private atMs: number) {}

  /** Takes one message of `bytes`; false when the peer has sent more than it may. */
  take(nowMs: number, bytes: number): boolean {
    const elapsed = Math.max(0, nowMs - this.atMs) / 1000;
    this.atMs = Math.max(this.atMs, nowMs);
    this.messages = Math.min(this.messages + elapsed * PEER_MESSAGES_PER_SECOND, PEER_MESSAGE_BURST);
    this.bytes = Math.min(this.bytes + elapsed * PEER_BYTES_PER_SECOND, PEER_BYTE_BURST);
    if (this.messages < 1 || this.bytes < bytes) return false;
    this.messages -= 1;
    this.bytes -= bytes;
    return true;
  }
}

/** Why a flooding peer was disconnected, as the person is told. */
export const FLOODING = "it sent far more than a meeting needs, and was disconnected";

/** How many sync messages we may send one peer, as confab-core paces them (crates/core/src/mesh/
 * notes.rs): SYNC_MESSAGES_PER_SECOND above a burst of SYNC_MESSAGE_BURST, below what the peer
 * takes from us before it calls us a flooder. */
export class Pace {
  private tokens = SYNC_MESSAGE_BURST;

  constructor(private atMs: number) {}

  /** When a message may go (now or earlier: at once). */
  due(nowMs: number): number {
    const rate = SYNC_MESSAGES_PER_SECOND / 1000;
    this.tokens = Math.min(this.tokens + Math.max(0, nowMs - this.atMs) * rate, SYNC_MESSAGE_BURST);
    this.atMs = Math.max(this.atMs, nowMs);
    return this.tokens >= 1 ? nowMs : this.atMs + Math.ceil((1 - this.tokens) / rate);
  }

  sent(): void {
    this.tokens -= 1;
  }
}
