// The signaling connection (docs/protocol.md §2): joins the room, relays signals, and comes back
// with backoff when the socket drops. A new join gets a new peer id; peer connections do not depend
// on this socket and outlive it.
import { accessToken } from "./access-token";
import { PROTOCOL_VERSION, RECONNECT_FIRST_WAIT_MS, RECONNECT_MAX_WAIT_MS } from "../gen/constants";
import type { ClientMessage, ErrorCode, IceServer, PeerId, PeerInfo, ServerMessage, SignalData } from "../gen/protocol";
import { type MeetingAddress, signalingUrl } from "./meeting-url";

export type SignalingEvent =
  | { kind: "welcome"; you: PeerId; peers: PeerInfo[]; iceServers: IceServer[] }
  | { kind: "peer_joined"; peer: PeerInfo }
  | { kind: "peer_left"; id: PeerId }
  | { kind: "signal"; from: PeerId; data: SignalData }
  | { kind: "reconnecting"; inMs: number; reason: string }
  /** The server refused us for good (full room, malformed room…): no retry. */
  | { kind: "refused"; code: ErrorCode; message: string };

/** Errors after which joining again cannot succeed. (`bad_token` only before the first welcome:
 * once in, it means a restarted server with access tokens has forgotten that the meeting was
 * open, until someone with a token is back; so we retry, as after a drop.) */
const FINAL: ReadonlySet<ErrorCode> = new Set(["bad_room", "room_full", "unsupported_version"]);
/** Errors about the moment or about another message, not about our join: logged, or the socket
 * retried as after a drop. `not_joined` answers a signal sent on a new socket before its welcome
 * (a renegotiation while we rejoin), which is no reason to give up the meeting. */
const PASSING: ReadonlySet<ErrorCode> = new Set([
  "rate_limited", "too_slow", "shutting_down", "unknown_peer", "not_joined", "already_joined",
  "unavailable",
]);

/** Whether an `error` refuses us for good. Before the welcome (`joined`: on this socket) every
 * other error answers our join (a name the server refuses is `bad_message`, a join that came too
 * late `join_timeout`), and the same join again would fail the same way: the person must be told,
 * not kept waiting. `bad_token` refuses only one who was never in (`everJoined`: on any socket). */
export function isRefusal(code: ErrorCode, joined: boolean, everJoined = joined): boolean {
  if (code === "bad_token") return !everJoined;
  return FINAL.has(code) || (!joined && !PASSING.has(code));
}


export class Signaling {
  private socket: WebSocket | null = null;
  private retryMs = RECONNECT_FIRST_WAIT_MS;
  private retryTimer: number | undefined;
  private stopped = false;
  private everJoined = false;

  constructor(
    private readonly address: MeetingAddress,
    private readonly name: string,
    private readonly appVersion: string,
    private readonly onEvent: (event: SignalingEvent) => void,
  ) {}

  start(): void {
    this.stopped = false;
    this.connect();
  }

  signal(to: PeerId, data: SignalData): void {
    this.send({ type: "signal", to, data });
  }

  /** Leaves the room on purpose; no reconnect. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    if (this.socket?.readyState === WebSocket.OPEN) this.send({ type: "leave" });
    this.socket?.close(1000);
    this.socket = null;
  }

  private send(message: ClientMessage): void {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  private connect(): void {
    const socket = new WebSocket(signalingUrl(this.address));
    this.socket = socket;
    let refused = false;
    let joined = false;
    const token = accessToken();
    socket.onopen = () => {
      this.send({
        type: "join",
        v: PROTOCOL_VERSION,
        room: this.address.room,
        name: this.name,
        client: "browser",
        app_version: this.appVersion,
        ...(token === undefined ? {} : { token }),
      });
    };
    socket.onmessage = (event) => {
      let message: ServerMessage;
      try {
        message = JSON.parse(String(event.data)) as ServerMessage;
      } catch {
        return; // the server only sends JSON; anything else is ignored
      }
      switch (message.type) {
        case "welcome":
          joined = true;
          this.everJoined = true;
          this.retryMs = RECONNECT_FIRST_WAIT_MS;
          this.onEvent({ kind: "welcome", you: message.you, peers: message.peers, iceServers: message.ice_servers });
          break;
        case "peer_joined":
          this.onEvent({ kind: "peer_joined", peer: message.peer });
          break;
        case "peer_left":
          this.onEvent({ kind: "peer_left", id: message.id });
          break;
        case "signal":
          this.onEvent({ kind: "signal", from: message.from, data: message.data });
          break;
        case "error":
          if (isRefusal(message.code, joined, this.everJoined)) {
            refused = true;
            this.stopped = true;
            // Some refusals leave the socket open (a bad join may be followed by a good one):
            // we are not sending one.
            socket.close(1000);
            this.onEvent({ kind: "refused", code: message.code, message: message.message });
          } else {
            console.warn(`signaling: ${message.code}: ${message.message}`);
          }
          break;
      }
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (this.stopped || refused) return;
      // Jittered as confab-core's `backoff`: a room whose server restarted comes back spread out.
      const inMs = Math.round(this.retryMs * (0.5 + Math.random() / 2));
      this.retryMs = Math.min(this.retryMs * 2, RECONNECT_MAX_WAIT_MS);
      const reason = event.reason || (event.code === 1006 ? "the server cannot be reached" : `closed (${event.code})`);
      this.onEvent({ kind: "reconnecting", inMs, reason });
      this.retryTimer = window.setTimeout(() => this.connect(), inMs);
    };
  }
}
