// One peer connection (docs/protocol.md §3): perfect negotiation with the polite rule, trickled ICE
// (candidates held until the remote description is set), the negotiated `sync` and `ctl`
// channels, and the `hello` that proves both ends hold the meeting key.
import { CONNECT_TIMEOUT_MS, HELLO_REPEAT_MS, MAX_CHANNEL_FRAME_BYTES, MAX_EARLY_FRAMES } from "../gen/constants";
import type { ClientKind, CtlMessage, PeerId, SignalData } from "../gen/protocol";
import { fpMac, sdpFingerprint, verifyFpMac } from "./fp-mac";
import { Recovery, type RecoveryInput } from "./recovery";

/** How long closing waits for a last message (our hello, to a refused peer) to leave. */
const FLUSH_TIMEOUT_MS = 1000;
const STATS_EVERY_MS = 2000;
/** How often recovery is asked whether an ICE restart is due. */
const RECOVERY_TICK_MS = 250;

export interface PeerStats {
  rttMs: number | null;
  packetsLost: number;
  /** Unknown (null) where only the loss is reported: the desktop engine's stats. */
  packetsReceived: number | null;
  bytesSent: number;
  bytesReceived: number;
}

export type PeerEvent =
  | { kind: "signal"; data: SignalData }
  | { kind: "ready"; name: string; client: ClientKind; wantSnapshot: boolean; instance: string | undefined }
  | { kind: "sync"; frame: Uint8Array }
  | { kind: "ctl"; message: CtlMessage }
  /** A media track from the peer, with the streams it was sent in. */
  | { kind: "track"; track: MediaStreamTrack; streams: readonly MediaStream[] }
  /** The peer rejoined signaling: its id there is now `id`. */
  | { kind: "rekeyed"; id: PeerId }
  /** The peer opened the channel of file transfer `id`. */
  | { kind: "file_channel"; id: string; channel: RTCDataChannel }
  | { kind: "connection"; up: boolean }
  | { kind: "stats"; stats: PeerStats }
  | { kind: "intercepted" }
  /** A TURN relay refused us or could not be reached, with its error code and text. */
  | { kind: "relay_problem"; url: string; code: number; text: string }
  | { kind: "failed"; reason: string }
  | { kind: "bye" };

export interface PeerSetup {
  self: PeerId;
  remote: PeerId;
  name: string;
  appVersion: string;
  key: CryptoKey;
  iceServers: RTCIceServer[];
  /** We are the newcomer: we make the first offer. */
  offerer: boolean;
  wantSnapshot: boolean;
  /** What we send from the start: camera, microphone, a shared screen. */
  tracks: LocalTrack[];
  /** This page load, named in the hello (see PROTOCOL notes: a rejoin replaces a connection). */
  instance: string;
}

export interface LocalTrack {
  track: MediaStreamTrack;
  stream: MediaStream;
}

export class PeerSession {
  private readonly pc: RTCPeerConnection;
  private sync: RTCDataChannel | null = null;
  private ctl: RTCDataChannel | null = null;
  private readonly polite: boolean;
  private makingOffer = false;
  private ignoreOffer = false;
  private heldCandidates: RTCIceCandidateInit[] = [];
  private ourHello: string | null = null;
  /** Our hello being signed and sent (signing is asynchronous): awaited before closing. */
  private helloSending: Promise<void> | null = null;
  /** The signals applied so far (see `signal`). */
  private signals: Promise<void> = Promise.resolve();
  private verified = false;
  private early: PeerEvent[] = [];
  private timers: number[] = [];
  private closed = false;
  /** Negotiation was needed before the first offer was ours to make. */
  private negotiationPending = false;
  private readonly senders = new Map<MediaStreamTrack, RTCRtpSender>();
  private readonly recovery = new Recovery();
  private readonly onOnline: () => void;
  /** A hello that arrived before we knew the fingerprints to check it against. */
  private heldHello: string | null = null;
  private ownFp: string | null = null;
  private peerFp: string | null = null;

  constructor(
    private readonly setup: PeerSetup,
    private readonly emitTo: (event: PeerEvent) => void,
  ) {
    this.polite = setup.self < setup.remote;
    this.pc = new RTCPeerConnection({ iceServers: setup.iceServers });
    this.pc.onicecandidate = ({ candidate }) =>
      this.emit({ kind: "signal", data: { candidate: candidate ? candidate.toJSON() : null } as SignalData });
    this.pc.onnegotiationneeded = () => void this.offer();
    this.pc.ondatachannel = ({ channel }) => {
      // In-band channels are file transfers, and only once the peer has proved the key.
      if (!this.verified || !channel.label.startsWith("file:")) return channel.close();
      this.emit({ kind: "file_channel", id: channel.label.slice("file:".length), channel });
    };
    this.pc.onconnectionstatechange = () => {
      const state = this.pc.connectionState;
      if (state === "connected") {
        this.recover("up");
        this.emit({ kind: "connection", up: true });
      } else if (state === "disconnected" || state === "connecting") {
        // `connecting` again is a restart under way, whose offer may yet be lost.
        this.recover("down");
        if (this.recovery.reconnecting) this.emit({ kind: "connection", up: false });
      } else if (state === "failed") {
        this.emit({ kind: "connection", up: false });
        this.recover("failed");
      }
    };
    this.pc.ontrack = ({ track, streams }) => this.emit({ kind: "track", track, streams });
    // Host and STUN candidates failing is routine; a TURN relay failing leaves the peers that can
    // meet only through it unreachable, so it is said.
    this.pc.onicecandidateerror = (event) => {
      const { url, errorCode, errorText } = event as RTCPeerConnectionIceErrorEvent;
      if (/^turns?:/.test(url)) this.emit({ kind: "relay_problem", url, code: errorCode, text: errorText });
    };
    // The answerer opens its channels and adds its tracks once the offer is in: they then ride
    // on what the offer set up, and it never offers before the newcomer.
    if (setup.offerer) {
      this.openChannels();
      for (const t of setup.tracks) this.addTrack(t);
    }
    this.timers.push(
      window.setTimeout(() => {
        if (!this.verified) this.fail("the connection could not be established in time");
      }, CONNECT_TIMEOUT_MS),
      window.setInterval(() => {
        if (!this.verified && this.ourHello) this.sendCtlText(this.ourHello);
      }, HELLO_REPEAT_MS),
      window.setInterval(() => void this.readStats(), STATS_EVERY_MS),
      window.setInterval(() => {
        if (this.recovery.reconnecting) this.recover("tick");
      }, RECOVERY_TICK_MS),
    );
    // The browser says when it is back on a network; its addresses may have changed.
    this.onOnline = () => this.recover("network_changed");
    window.addEventListener("online", this.onOnline);
  }

  get isReady(): boolean {
    return this.verified;
  }

  /** A signal the peer sent us through the server. Signals are applied one at a time, in
   * order: an offer that follows an answer (the CLI offers its camera right after answering)
   * must not see the state the answer is still leaving, or it looks like a collision. */
  signal(data: SignalData): Promise<void> {
    // applySignal catches its own failures; this only keeps one stray throw from stopping
    // every later signal.
    this.signals = this.signals.then(() => this.applySignal(data)).catch((e) => console.error(e));
    return this.signals;
  }

  private async applySignal(data: SignalData): Promise<void> {
    try {
      if ("sdp" in data) {
        const description = data.sdp;
        const collision = description.type === "offer" && (this.makingOffer || this.pc.signalingState !== "stable");
        this.ignoreOffer = !this.polite && collision;
        if (this.ignoreOffer) return;
        await this.pc.setRemoteDescription(description); // rolls our own offer back when polite
        this.noteFingerprints();
        if (!this.sync) {
          this.openChannels();
          for (const t of this.setup.tracks) this.addTrack(t);
        }
        for (const candidate of this.heldCandidates.splice(0)) await this.addCandidate(candidate);
        if (description.type === "offer") {
          await this.pc.setLocalDescription();
          this.noteFingerprints();
          const answer = this.pc.localDescription;
          if (answer) this.emit({ kind: "signal", data: { sdp: { type: "answer", sdp: answer.sdp } } });
        }
      } else if (data.candidate) {
        if (this.pc.remoteDescription) await this.addCandidate(data.candidate);
        else this.heldCandidates.push(data.candidate);
      }
    } catch (e) {
      this.fail(`negotiation failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  sendSync(frame: Uint8Array<ArrayBuffer>): void {
    if (this.sync?.readyState === "open") this.sync.send(frame);
  }

  sendCtl(message: CtlMessage): void {
    this.sendCtlText(JSON.stringify(message));
  }

  /** Whether `description` is an offer on this connection, whatever signaling id it came from:
   * its DTLS fingerprint is the one the peer proved with its hello. */
  isThisConnection(description: { type: string; sdp: string }): boolean {
    return this.verified && this.peerFp !== null && sdpFingerprint(description.sdp) === this.peerFp;
  }

  /** The peer rejoined signaling before re-keying this connection: an offer of ours sent to
   * its old id will never be answered. It is rolled back (before any signal from the new id
   * is applied), so the peer's own offer is taken rather than refused as a collision, and
   * negotiation runs again afterwards if something still needs it. */
  peerRejoined(): void {
    this.signals = this.signals
      .then(async () => {
        if (this.pc.signalingState === "have-local-offer") await this.pc.setLocalDescription({ type: "rollback" });
      })
      .catch((e) => console.debug("rolling back an offer to a peer that rejoined", e));
  }

  /** Whether `description` is an offer from another connection of the peer's (its DTLS
   * fingerprint differs from this one's), not a renegotiation of this one. */
  isNewConnection(description: { type: string; sdp: string }): boolean {
    const theirs = sdpFingerprint(description.sdp);
    return description.type === "offer" && this.peerFp !== null && theirs !== null && theirs !== this.peerFp;
  }

  /** We rejoined signaling as `self`: tell the peer with a fresh hello, which carries our id. */
  rekey(self: PeerId): void {
    this.setup.self = self;
    this.ourHello = null;
    this.helloSending = null;
    void this.sendHelloWhenReady();
    // An ICE restart offered while signaling was away went nowhere.
    this.recover("signaling_back");
  }

  /** Starts sending `local.track` (renegotiating as needed). */
  addTrack(local: LocalTrack): void {
    if (this.closed || this.senders.has(local.track)) return;
    this.senders.set(local.track, this.pc.addTrack(local.track, local.stream));
  }

  /** Stops sending `track`. */
  removeTrack(track: MediaStreamTrack): void {
    const sender = this.senders.get(track);
    if (!sender || this.closed) return;
    this.senders.delete(track);
    this.pc.removeTrack(sender);
  }

  /** Opens the channel that carries file `id` to the peer. */
  openFileChannel(id: string): RTCDataChannel {
    const channel = this.pc.createDataChannel(`file:${id}`, { ordered: true });
    channel.binaryType = "arraybuffer";
    return channel;
  }

  /** Says `bye` and closes: leaving on purpose. */
  leave(): void {
    if (this.verified) this.sendCtl({ type: "bye" });
    // Give the bye a moment to leave the send buffer before the transport goes.
    window.setTimeout(() => this.close(), 200);
  }

  close(): void {
    this.stop();
    this.pc.close();
  }

  /** Reports an event, unless the session has stopped. */
  private emit(event: PeerEvent): void {
    if (!this.closed) this.emitTo(event);
  }

  /** Nothing more from this connection reaches the meeting; the connection itself stays up
   * until `close`. */
  private stop(): void {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    window.removeEventListener("online", this.onOnline);
  }

  /** Carries out what recovery decides (see recovery.ts). */
  private recover(input: RecoveryInput): void {
    if (this.closed) return;
    const action = this.recovery.handle(performance.now(), input);
    if (action === "give_up") this.fail("the connection was lost");
    else if (action === "restart") this.restartIce();
  }

  /** Offers with fresh ICE credentials. An offer of ours still unanswered (lost with
   * signaling, say) is rolled back first, or the restart would wait for its answer; in turn
   * with the signals being applied, so neither sees the other's half-made state. */
  private restartIce(): void {
    this.signals = this.signals
      .then(async () => {
        if (this.pc.signalingState === "have-local-offer") await this.pc.setLocalDescription({ type: "rollback" });
        this.pc.restartIce(); // negotiationneeded follows, and makes the offer
      })
      .catch((e) => console.debug("an ICE restart could not start", e));
  }

  private async offer(): Promise<void> {
    if (!this.setup.offerer && !this.verified) {
      // The first offer is the newcomer's; ours follows once the connection stands.
      this.negotiationPending = true;
      return;
    }
    try {
      this.makingOffer = true;
      await this.pc.setLocalDescription();
      this.noteFingerprints();
      const offer = this.pc.localDescription;
      if (offer) this.emit({ kind: "signal", data: { sdp: { type: offer.type as "offer", sdp: offer.sdp } } });
    } catch (e) {
      this.fail(`cannot make an offer: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      this.makingOffer = false;
    }
  }

  private async addCandidate(candidate: RTCIceCandidateInit): Promise<void> {
    try {
      await this.pc.addIceCandidate(candidate);
    } catch (e) {
      if (!this.ignoreOffer) console.debug("a candidate was not usable", e);
    }
  }

  private openChannels(): void {
    const sync = this.pc.createDataChannel("sync", { negotiated: true, id: 0, ordered: true });
    const ctl = this.pc.createDataChannel("ctl", { negotiated: true, id: 1, ordered: true });
    sync.binaryType = "arraybuffer";
    for (const channel of [sync, ctl]) {
      channel.onopen = () => void this.sendHelloWhenReady();
      channel.onclose = () => this.fail("a data channel closed");
    }
    sync.onmessage = ({ data }) => {
      const frame = new Uint8Array(data as ArrayBuffer);
      if (frame.length > MAX_CHANNEL_FRAME_BYTES) return this.fail("the peer sent an oversized frame");
      this.deliver({ kind: "sync", frame });
    };
    ctl.onmessage = ({ data }) => void this.onCtl(String(data));
    this.sync = sync;
    this.ctl = ctl;
  }

  /** Our hello, once both channels are open and both fingerprints known; resolves when sent. */
  private sendHelloWhenReady(): Promise<void> {
    if (this.helloSending) return this.helloSending;
    if (this.sync?.readyState !== "open" || this.ctl?.readyState !== "open") return Promise.resolve();
    const fps = this.fingerprints();
    if (!fps) return Promise.resolve(); // sent once the descriptions are in: see noteFingerprints
    this.helloSending = (async () => {
      const hello: CtlMessage = {
        type: "hello",
        peer_id: this.setup.self,
        name: this.setup.name,
        client: "browser",
        app_version: this.setup.appVersion,
        want_snapshot: this.setup.wantSnapshot,
        fp_mac: await fpMac(this.setup.key, fps.own, fps.theirs),
        instance: this.setup.instance,
      };
      this.ourHello = JSON.stringify(hello);
      this.sendCtlText(this.ourHello);
    })().catch((e) => this.fail(`cannot sign our hello: ${e instanceof Error ? e.message : String(e)}`));
    return this.helloSending;
  }

  /** Resolves once what was sent on `ctl` has left for the network (or after a second). */
  private ctlFlushed(): Promise<void> {
    const ctl = this.ctl;
    if (!ctl || ctl.readyState !== "open" || ctl.bufferedAmount === 0) return Promise.resolve();
    return new Promise((resolve) => {
      ctl.bufferedAmountLowThreshold = 0;
      ctl.addEventListener("bufferedamountlow", () => resolve(), { once: true });
      window.setTimeout(resolve, FLUSH_TIMEOUT_MS);
    });
  }

  private async onCtl(text: string): Promise<void> {
    if (this.closed) return;
    if (text.length > MAX_CHANNEL_FRAME_BYTES) return this.fail("the peer sent an oversized frame");
    let message: CtlMessage;
    try {
      message = JSON.parse(text) as CtlMessage;
    } catch {
      return; // not JSON: ignored, like an unknown message
    }
    if (typeof message !== "object" || message === null || typeof message.type !== "string") return;
    if (message.type === "hello") {
      if (this.verified) {
        if (message.peer_id !== this.setup.remote && typeof message.peer_id === "string") {
          // The peer rejoined signaling under a new id (the connection itself is proven).
          this.setup.remote = message.peer_id;
          this.emit({ kind: "rekeyed", id: message.peer_id });
          return;
        }
        // The peer repeats its hello: it has not heard ours yet.
        if (this.ourHello) this.sendCtlText(this.ourHello);
        return;
      }
      const fps = this.fingerprints();
      if (!fps) {
        this.heldHello = text;
        return;
      }
      const genuine =
        message.peer_id === this.setup.remote &&
        (await verifyFpMac(this.setup.key, message.fp_mac, fps.theirs, fps.own));
      if (!genuine) {
        this.emit({ kind: "intercepted" });
        this.stop();
        // The peer learns that it was refused when our hello fails its own check: that hello
        // (still being signed, maybe) must go out before the connection closes.
        await this.sendHelloWhenReady();
        await this.ctlFlushed();
        return this.close();
      }
      if (this.verified) return;
      this.verified = true;
      this.emit({
        kind: "ready",
        name: message.name,
        client: message.client,
        wantSnapshot: message.want_snapshot,
        instance: message.instance,
      });
      for (const event of this.early.splice(0)) this.emit(event);
      if (this.negotiationPending) {
        this.negotiationPending = false;
        void this.offer();
      }
      return;
    }
    if (message.type === "bye") return this.deliver({ kind: "bye" });
    this.deliver({ kind: "ctl", message });
  }

  /** Frames that arrive before the peer's hello verifies are held, in order, until it does. */
  private deliver(event: PeerEvent): void {
    if (this.verified) return this.emit(event);
    if (this.early.length >= MAX_EARLY_FRAMES) return this.fail("the peer sent too much before its hello");
    this.early.push(event);
  }

  private sendCtlText(text: string): void {
    if (this.ctl?.readyState === "open") this.ctl.send(text);
  }

  /** Both DTLS fingerprints, as first negotiated: later descriptions (renegotiation, a rollback)
   * must not change what the hello signs. */
  private fingerprints(): { own: string; theirs: string } | null {
    return this.ownFp && this.peerFp ? { own: this.ownFp, theirs: this.peerFp } : null;
  }

  /** Notes the fingerprints of descriptions just set; a peer's that changes is refused. Under
   * load the channels can open before the promise of the description that made them resolves:
   * a hello waits for both fingerprints, ours to be sent and theirs to be checked. */
  private noteFingerprints(): void {
    this.ownFp ??= sdpFingerprint(this.pc.localDescription?.sdp);
    const theirs = sdpFingerprint(this.pc.remoteDescription?.sdp);
    if (this.peerFp && theirs && theirs !== this.peerFp) throw new Error("the peer's DTLS fingerprint changed");
    this.peerFp ??= theirs;
    if (!this.fingerprints()) return;
    void this.sendHelloWhenReady();
    const held = this.heldHello;
    this.heldHello = null;
    if (held) void this.onCtl(held);
  }

  private async readStats(): Promise<void> {
    if (!this.verified || this.closed) return;
    const stats: PeerStats = { rttMs: null, packetsLost: 0, packetsReceived: 0, bytesSent: 0, bytesReceived: 0 };
    const report = await this.pc.getStats();
    report.forEach((entry: Record<string, unknown>) => {
      if (entry.type === "candidate-pair" && entry.nominated && typeof entry.currentRoundTripTime === "number") {
        stats.rttMs = entry.currentRoundTripTime * 1000;
        stats.bytesSent = Number(entry.bytesSent ?? 0);
        stats.bytesReceived = Number(entry.bytesReceived ?? 0);
      } else if (entry.type === "inbound-rtp") {
        stats.packetsLost += Number(entry.packetsLost ?? 0);
        stats.packetsReceived = (stats.packetsReceived ?? 0) + Number(entry.packetsReceived ?? 0);
      }
    });
    this.emit({ kind: "stats", stats });
  }

  private fail(reason: string): void {
    if (this.closed) return;
    console.warn(`connection to ${this.setup.remote} failed: ${reason}`);
    this.emit({ kind: "failed", reason });
    this.close();
  }
}
