// The meeting run by the browser itself: signaling over a WebSocket, one RTCPeerConnection per
// peer, and the document in @automerge/automerge, kept in IndexedDB per room. It speaks exactly
// what confab-core speaks, so browsers, the CLI and the desktop app meet in one mesh.
import * as A from "@automerge/automerge/slim";
import { BROWSER_MAX_FILE_BYTES, MAX_NAME_CHARS } from "../gen/constants";
import type { ChatMessage, CtlMessage, PeerId, PeerInfo } from "../gen/protocol";
import {
  type Doc,
  type NotesPatch,
  chatLength,
  chatMessages,
  newChatMessages,
  genesis,
  notesCursorPosition,
  notesOf,
  titleOf,
  newActor,
  notesPatchesSince,
  postChat,
  spliceNotes,
  toMarkdown,
} from "./document";
import { type FileTransfer, hasEnded, offerProblem, receiveFile, safeFileName, sha256, streamFile, transferKey } from "./files";
import { importMeetingKey } from "./fp-mac";
import type { LinkEvent, MediaState, MeetingLink, MeetingState, Participant, RemoteCursor } from "./meeting-link";
import type { MeetingAddress } from "./meeting-url";
import { lostPeerNotice, onRejoin, opensConnection, relayProblemNotice } from "./mesh";
import { type LocalTrack, type PeerEvent, PeerSession } from "./peer";
import { Signaling, type SignalingEvent } from "./signaling";
import { FLOODING, Intake, Pace } from "./intake";
import { RoomStore } from "./store";
import { streamView } from "./stream-view";
import { stripHidden, trimWhiteSpace } from "./text";
import { PeerSync, SyncError } from "./sync";

const APP_VERSION = "web-0.1";
/** After a failed check the receiver cancels first and closes the channel this much later, so
 * the sender hears why rather than taking the close as "all arrived". */
const CANCEL_BEFORE_CLOSE_MS = 1000;

/** A name a peer gave itself, as it may be shown: printable, at most MAX_NAME_CHARS. */
function displayName(name: unknown): string {
  const printable = typeof name === "string" ? trimWhiteSpace(stripHidden(name)) : "";
  return [...printable].slice(0, MAX_NAME_CHARS).join("") || "someone";
}

/** A transfer and what moves it: the file we send, what the offer promised, its channel. */
interface Transfer extends FileTransfer {
  file?: File;
  sha256: string;
  channel?: RTCDataChannel;
}

/** A participant as the browser tracks them: the streams arriving, sorted into camera and screen
 * when reported. */
type PeerState = Omit<Participant, "camera" | "screen"> & { streams: MediaStream[] };

interface Peer {
  info: PeerState;
  session: PeerSession;
  sync: PeerSync;
  /** Signaling said the peer left; it stays only while its connection does. */
  leftSignaling: boolean;
  /** The peer's run, from its hello. */
  instance?: string;
  /** Its current signaling id, as the session's events look it up. */
  ref: { id: PeerId };
  /** How much more it may send us now. */
  intake: Intake;
  /** How many sync messages we may send it now (see `flush`). */
  pace: Pace;
}

export interface Identity {
  name: string;
  /** Stable per install (this browser profile), not per room: chat's `author_id`. */
  authorId: string;
}

export class BrowserLink implements MeetingLink {
  private readonly listeners = new Set<(event: LinkEvent) => void>();
  private readonly peers = new Map<PeerId, Peer>();
  /** Who signaling says is in the room (a connection is made on their offer). */
  private readonly joined = new Map<PeerId, PeerInfo>();
  /** Peers disconnected for flooding: no connection is made with them again under that id. */
  private readonly flooders = new Set<PeerId>();
  private doc: Doc;
  private heads: A.Heads;
  /** The notes as the front end shows them. */
  private notesShown = "";
  private chatSeen = new Set<string>();
  /** Entries in the chat list when it was last read. */
  private chatRead = 0;
  private titleSeen = "";
  private store: RoomStore | null = null;
  private signaling: Signaling | null = null;
  private key: CryptoKey | null = null;
  private you: PeerId | null = null;
  /** The deferred `flush` and when it is due (`performance.now()` ms), if any. */
  private flushTimer: { at: number; id: number } | null = null;
  /** Our earlier signaling ids (see the welcome). */
  private readonly formerIds = new Set<PeerId>();
  private iceServers: RTCIceServer[] = [];
  /** The TURN relays whose failure the person has been told of. */
  private readonly relaysTold = new Set<string>();
  private askedSnapshot = false;
  private savesUnderWay = 0;
  /** Our selection in the notes, as sent to peers. */
  private cursor: { anchor: string; head: string } | null = null;
  /** This page load, named in our hellos. */
  private readonly instance = crypto.randomUUID();
  private readonly transfers = new Map<string, Transfer>();
  /** Everything we send; the camera and microphone share one stream, the screen has its own. */
  private readonly localTracks: LocalTrack[] = [];
  private readonly cameraStream = new MediaStream();
  private screenStream: MediaStream | null = null;
  private media: MediaState = { mic: false, cam: false, screen: false };

  constructor(
    private readonly address: MeetingAddress,
    private readonly identity: Identity,
  ) {
    this.doc = genesis(newActor());
    this.heads = A.getHeads(this.doc);
  }

  subscribe(listener: (event: LinkEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async join(): Promise<void> {
    this.key = await importMeetingKey(this.address.key);
    try {
      this.store = await RoomStore.open(this.address.room);
      const stored = await this.store.load(A.getActorId(this.doc));
      if (stored) this.doc = stored;
    } catch (e) {
      this.emit({ type: "error", message: `notes cannot be kept in this browser: ${String(e)}` });
    }
    this.reportChanges(true);
    this.setState({ phase: "connecting" });
    this.signaling = new Signaling(this.address, this.identity.name, APP_VERSION, (e) => this.onSignaling(e));
    this.signaling.start();
  }

  say(text: string): void {
    const message: ChatMessage = {
      id: crypto.randomUUID(),
      author_id: this.identity.authorId,
      author: this.identity.name,
      at: Date.now(),
      text,
    };
    try {
      this.local(postChat(this.doc, message));
    } catch (e) {
      this.emit({ type: "error", message: e instanceof Error ? e.message : String(e) });
    }
  }

  editNotes(patches: NotesPatch[]): void {
    if (patches.length) this.local(spliceNotes(this.doc, patches));
  }

  async exportMarkdown(): Promise<string> {
    return toMarkdown(this.doc);
  }

  async setDevice(kind: "mic" | "cam", on: boolean): Promise<void> {
    const trackKind = kind === "mic" ? "audio" : "video";
    const current = this.localTracks.find((t) => t.stream === this.cameraStream && t.track.kind === trackKind);
    if (kind === "mic" && current) {
      // Muting keeps the track and its negotiation: unmuting is instant.
      current.track.enabled = on;
    } else if (on && !current) {
      try {
        const constraints = kind === "mic" ? { audio: true } : { video: { width: 1280, height: 720 } };
        const [track] = (await navigator.mediaDevices.getUserMedia(constraints)).getTracks();
        if (!track) throw new Error("no device");
        this.cameraStream.addTrack(track);
        this.startSending({ track, stream: this.cameraStream });
      } catch (e) {
        const what = kind === "mic" ? "microphone" : "camera";
        this.emit({ type: "error", message: `The ${what} is not available: ${e instanceof Error ? e.message : String(e)}` });
        return;
      }
    } else if (!on && current) {
      // A camera that is off is released (its light goes out), not just blanked.
      this.stopSending(current.track);
      this.cameraStream.removeTrack(current.track);
    }
    this.media = { ...this.media, [kind]: on };
    this.mediaChanged();
  }

  async shareScreen(on: boolean): Promise<void> {
    if (on && !this.screenStream) {
      try {
        const stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
        const [track] = stream.getVideoTracks();
        if (!track) throw new Error("nothing was chosen");
        // Stopping from the browser's own "Stop sharing" bar ends the share here too.
        track.addEventListener("ended", () => void this.shareScreen(false));
        track.contentHint = "detail"; // screen text stays sharp rather than smooth
        this.screenStream = stream;
        this.startSending({ track, stream });
        this.media = { ...this.media, screen: true, screenTrack: stream.id };
      } catch (e) {
        this.emit({ type: "error", message: `Screen sharing did not start: ${e instanceof Error ? e.message : String(e)}` });
        return;
      }
    } else if (!on && this.screenStream) {
      for (const track of this.screenStream.getTracks()) this.stopSending(track);
      this.screenStream = null;
      this.media = { mic: this.media.mic, cam: this.media.cam, screen: false };
    }
    this.mediaChanged();
  }

  setCursor(selection: { anchor: number; head: number } | null): void {
    const cursor = (at: number) => A.getCursor(this.doc, ["notes"], at >= notesOf(this.doc).length ? "end" : at);
    this.cursor = selection ? { anchor: cursor(selection.anchor), head: cursor(selection.head) } : null;
    for (const peer of this.peers.values()) if (peer.session.isReady) peer.session.sendCtl(this.cursorMessage());
  }

  cursorsInNotes(): RemoteCursor[] {
    const out: RemoteCursor[] = [];
    for (const [peer, { info }] of this.peers) {
      if (!info.cursor || info.status !== "connected") continue;
      // A cursor into text we do not hold yet is shown once sync brings it.
      const anchor = notesCursorPosition(this.doc, info.cursor.anchor);
      const head = notesCursorPosition(this.doc, info.cursor.head);
      if (anchor !== null && head !== null) out.push({ peer, name: info.name, anchor, head });
    }
    return out;
  }

  private cursorMessage(): CtlMessage {
    return { type: "cursor", ...(this.cursor ?? {}) };
  }

  private startSending(local: LocalTrack): void {
    this.localTracks.push(local);
    for (const peer of this.peers.values()) peer.session.addTrack(local);
  }

  private stopSending(track: MediaStreamTrack): void {
    track.stop();
    const at = this.localTracks.findIndex((t) => t.track === track);
    if (at >= 0) this.localTracks.splice(at, 1);
    for (const peer of this.peers.values()) peer.session.removeTrack(track);
  }

  private mediaMessage(): CtlMessage {
    const { mic, cam, screen, screenTrack } = this.media;
    return { type: "media", mic, cam, screen, ...(screenTrack ? { screen_track: screenTrack } : {}) };
  }

  private mediaChanged(): void {
    for (const peer of this.peers.values()) if (peer.session.isReady) peer.session.sendCtl(this.mediaMessage());
    this.emit({
      type: "local_media",
      media: { ...this.media },
      camera: this.cameraStream.getVideoTracks().length ? streamView(this.cameraStream, { remote: false }) : null,
      screen: this.screenStream ? streamView(this.screenStream, { remote: false }) : null,
    });
  }

  async sendFile(file: File): Promise<void> {
    // The limit of the smallest receiver, a browser, which holds a file in memory.
    if (file.size > BROWSER_MAX_FILE_BYTES) {
      const mib = BROWSER_MAX_FILE_BYTES / 2 ** 20;
      return this.emit({ type: "error", message: `${file.name} is over the limit of ${mib} MiB` });
    }
    const ready = [...this.peers.entries()].filter(([, p]) => p.session.isReady);
    if (ready.length === 0) return this.emit({ type: "error", message: "No one is connected to send the file to yet." });
    const id = crypto.randomUUID();
    const digest = await sha256(await file.arrayBuffer());
    for (const [peerId, peer] of ready) {
      const transfer: Transfer = {
        key: transferKey(id, peerId),
        id,
        peer: peerId,
        peerName: peer.info.name,
        name: file.name,
        size: file.size,
        direction: "sending",
        state: "offered",
        bytes: 0,
        file,
        sha256: digest,
      };
      this.transfers.set(transfer.key, transfer);
      peer.session.sendCtl({ type: "file_offer", id, name: file.name, size: file.size, sha256: digest });
      this.emitTransfer(transfer);
    }
  }

  acceptFile(key: string): void {
    const transfer = this.transfers.get(key);
    if (transfer?.direction !== "receiving" || transfer.state !== "offered") return;
    this.updateTransfer(transfer, { state: "waiting" });
    this.peers.get(transfer.peer)?.session.sendCtl({ type: "file_accept", id: transfer.id });
  }

  declineFile(key: string): void {
    this.stopTransfer(key, "declined");
  }

  cancelFile(key: string): void {
    this.stopTransfer(key, "cancelled");
  }

  private stopTransfer(key: string, reason: string): void {
    const transfer = this.transfers.get(key);
    if (!transfer || hasEnded(transfer)) return;
    this.peers.get(transfer.peer)?.session.sendCtl({ type: "file_cancel", id: transfer.id, reason });
    transfer.channel?.close();
    this.updateTransfer(transfer, { state: "cancelled", reason });
  }

  private emitTransfer(transfer: Transfer): void {
    const { file: _file, channel: _channel, sha256: _sha, ...shown } = transfer;
    this.emit({ type: "file", transfer: shown });
  }

  private updateTransfer(transfer: Transfer, change: Partial<Transfer>): void {
    Object.assign(transfer, change);
    this.emitTransfer(transfer);
  }

  private onFileMessage(peerId: PeerId, message: CtlMessage): void {
    const peer = this.peers.get(peerId);
    if (!peer || !("id" in message)) return;
    const transfer = this.transfers.get(transferKey(message.id, peerId));
    switch (message.type) {
      case "file_offer": {
        const waiting = [...this.transfers.values()].filter(
          (t) => t.peer === peerId && t.direction === "receiving" && t.state === "offered",
        ).length;
        const problem = offerProblem(message, waiting, transfer !== undefined);
        if (problem) {
          peer.session.sendCtl({ type: "file_cancel", id: message.id, reason: problem });
          return;
        }
        const offered: Transfer = {
          key: transferKey(message.id, peerId),
          id: message.id,
          peer: peerId,
          peerName: peer.info.name,
          name: safeFileName(message.name),
          size: message.size,
          direction: "receiving",
          state: "offered",
          bytes: 0,
          sha256: message.sha256,
        };
        this.transfers.set(offered.key, offered);
        return this.emitTransfer(offered);
      }
      case "file_accept": {
        if (transfer?.direction !== "sending" || transfer.state !== "offered" || !transfer.file) return;
        const channel = peer.session.openFileChannel(transfer.id);
        this.updateTransfer(transfer, { state: "transferring", channel });
        const sent = () => peer.session.sendCtl({ type: "file_done", id: transfer.id });
        streamFile(channel, transfer.file, (bytes) => this.updateTransfer(transfer, { bytes }), sent).then(
          () => {
            if (transfer.state === "transferring") this.updateTransfer(transfer, { state: "done", bytes: transfer.size });
          },
          (e: unknown) => {
            if (transfer.state !== "transferring") return; // cancelled meanwhile
            const reason = e instanceof Error ? e.message : String(e);
            peer.session.sendCtl({ type: "file_cancel", id: transfer.id, reason });
            this.updateTransfer(transfer, { state: "failed", reason });
          },
        );
        return;
      }
      case "file_cancel":
        if (transfer && !hasEnded(transfer)) {
          transfer.channel?.close();
          this.updateTransfer(transfer, { state: "cancelled", reason: message.reason });
        }
        return;
      case "file_done":
        return; // the receiver finishes on the bytes themselves
    }
  }

  private onFileChannel(peerId: PeerId, id: string, channel: RTCDataChannel): void {
    const transfer = this.transfers.get(transferKey(id, peerId));
    if (transfer?.direction !== "receiving" || transfer.state !== "waiting") return channel.close();
    this.updateTransfer(transfer, { state: "transferring", channel });
    receiveFile(channel, transfer, (bytes) => this.updateTransfer(transfer, { bytes })).then(
      (blob) => {
        delete transfer.channel;
        this.updateTransfer(transfer, { state: "done", bytes: transfer.size, url: URL.createObjectURL(blob) });
      },
      (e: unknown) => {
        if (transfer.state !== "transferring") return;
        const reason = e instanceof Error ? e.message : String(e);
        // The cancel goes first: a closed channel alone would tell the sender all is well.
        this.peers.get(peerId)?.session.sendCtl({ type: "file_cancel", id, reason });
        this.updateTransfer(transfer, { state: "failed", reason });
        window.setTimeout(() => channel.close(), CANCEL_BEFORE_CLOSE_MS);
      },
    );
  }

  async leave(): Promise<void> {
    for (const peer of this.peers.values()) peer.session.leave();
    this.peers.clear();
    this.signaling?.stop();
    this.releaseDevices();
    await this.store?.save(() => this.doc).catch(() => undefined); // already reported as an error
    this.setState({ phase: "left" });
  }

  /** Camera, microphone and screen off (their lights too), received files let go. */
  private releaseDevices(): void {
    for (const { track } of this.localTracks) track.stop();
    this.localTracks.length = 0;
    this.screenStream = null;
    for (const transfer of this.transfers.values()) if (transfer.url) URL.revokeObjectURL(transfer.url);
  }

  private emit(event: LinkEvent): void {
    for (const listener of this.listeners) listener(event);
  }

  private setState(state: MeetingState): void {
    this.emit({ type: "state", state });
  }

  private emitParticipants(): void {
    const participants = [...this.peers.values()].map(({ info: { streams, ...info } }): Participant => {
      const screen = info.media.screen ? streams.find((s) => isScreen(s, info.media)) : undefined;
      const camera = streams.find((s) => !isScreen(s, info.media));
      return {
        ...info,
        camera: camera ? streamView(camera, { remote: true }) : null,
        screen: screen ? streamView(screen, { remote: true }) : null,
      };
    });
    this.emit({ type: "participants", participants });
  }

  /** An edit of ours: stored, shown, sent. */
  private local(next: Doc): void {
    this.doc = next;
    this.persist();
    this.reportChanges(false);
    this.flush();
  }

  private persist(): void {
    if (!this.store) return;
    if (this.savesUnderWay++ === 0) this.emit({ type: "stored", upToDate: false });
    this.store.save(() => this.doc).then(
      () => {
        if (--this.savesUnderWay === 0) this.emit({ type: "stored", upToDate: true });
      },
      (e: unknown) => {
        this.savesUnderWay--;
        this.emit({ type: "error", message: `notes could not be saved in this browser: ${String(e)}` });
      },
    );
  }

  /** Reports chat, title and notes changes since the last report; on joining, all of them.
   * Our own notes edits are already in the editor, so `notes` events are only for others'. */
  private reportChanges(notesAreRemote: boolean): void {
    // Chat entries are never removed: a list no longer than last time holds nothing new.
    const length = chatLength(this.doc);
    if (length > this.chatRead) {
      for (const message of newChatMessages(this.doc, this.chatSeen, length - this.chatRead)) {
        this.chatSeen.add(message.id);
        this.emit({ type: "chat", message });
      }
      this.chatRead = length;
    }
    if (titleOf(this.doc) !== this.titleSeen) {
      this.titleSeen = titleOf(this.doc);
      this.emit({ type: "title", title: this.titleSeen });
    }
    const heads = A.getHeads(this.doc);
    if (notesAreRemote && notesOf(this.doc) !== this.notesShown) {
      // From nothing (a stored or a newcomer's document): one insert, no need to diff a history.
      const patches: NotesPatch[] =
        this.notesShown === "" ? [{ pos: 0, insert: notesOf(this.doc) }] : notesPatchesSince(this.doc, this.heads);
      this.emit({ type: "notes", text: notesOf(this.doc), patches });
    }
    this.notesShown = notesOf(this.doc);
    this.heads = heads;
  }

  /** Sends every ready peer what it is missing. */
  /** Paced as confab-core paces it (see intake.ts, `Pace`): past a burst, what changes while a
   * peer's next message waits goes in that one message, so passing on a third peer's flood
   * never makes us look like a flooder ourselves. */
  private flush(only?: PeerId): void {
    const now = performance.now();
    let wake: number | null = null;
    for (const [id, peer] of this.peers) {
      if ((only && id !== only) || !peer.session.isReady) continue;
      const due = peer.pace.due(now);
      if (due > now) {
        wake = Math.min(wake ?? due, due);
        continue;
      }
      for (const frame of peer.sync.poll(this.doc)) {
        peer.pace.sent();
        peer.session.sendSync(frame as Uint8Array<ArrayBuffer>);
      }
    }
    if (wake !== null) this.flushAt(wake);
  }

  /** A `flush` at `at` (`performance.now()` ms), unless one is due by then already: one
   * timer, the earliest wins, as confab-core's `Output::FlushAt`. */
  private flushAt(at: number): void {
    if (this.flushTimer && this.flushTimer.at <= at) return;
    if (this.flushTimer) window.clearTimeout(this.flushTimer.id);
    const id = window.setTimeout(() => {
      this.flushTimer = null;
      this.flush();
    }, Math.max(0, at - performance.now()));
    this.flushTimer = { at, id };
  }

  private onSignaling(event: SignalingEvent): void {
    switch (event.kind) {
      case "welcome": {
        if (this.you) this.formerIds.add(this.you);
        this.you = event.you;
        this.iceServers = event.iceServers.map((s) => ({ urls: s.urls, username: s.username, credential: s.credential }));
        this.setState({ phase: "joined", you: event.you });
        const plan = onRejoin([...this.peers].map(([id, p]) => [id, { verified: p.session.isReady }]));
        for (const id of plan.close) this.removePeer(id);
        // The welcome lists who is in the room now; ids from before it are gone.
        this.joined.clear();
        // The newcomer offers to every peer; after a rejoin, only to those it has no connection to.
        for (const info of event.peers) {
          // Our own old seat, on a server that has not noticed its connection died, is nobody.
          if (this.formerIds.has(info.id)) continue;
          this.joined.set(info.id, info);
          this.addPeer(info, true);
        }
        // Peers we are still connected to learn our new signaling id from a repeated hello, so
        // that what we signal them later (a renegotiation) reaches the right connection.
        for (const id of plan.rekey) this.peers.get(id)?.session.rekey(event.you);
        this.emitParticipants();
        break;
      }
      case "peer_joined":
        if (this.formerIds.has(event.peer.id)) break;
        // It offers; its connection is made when the offer arrives. (A peer that rejoined
        // signaling while connected to us never offers again: no ghost waits for it.)
        this.joined.set(event.peer.id, event.peer);
        break;
      case "peer_left": {
        this.joined.delete(event.id);
        const peer = this.peers.get(event.id);
        // A peer whose signaling dropped keeps its connection while that is up.
        if (peer && peer.info.status !== "connected") this.removePeer(event.id);
        else if (peer) peer.leftSignaling = true;
        break;
      }
      case "signal": {
        if (this.flooders.has(event.from)) break;
        const existing = this.peers.get(event.from);
        if (existing && "sdp" in event.data && existing.session.isNewConnection(event.data.sdp)) {
          // Both of us rejoined signaling and the peer, not knowing us under our new id, started
          // a new connection: it replaces this one.
          existing.session.close();
          this.peers.delete(event.from);
        }
        if (!existing && "sdp" in event.data) {
          // A peer that rejoined signaling and restarts ICE before its re-keying hello reached
          // us offers under its new id on the connection it proved: file it under that id.
          const sdp = event.data.sdp;
          const same = [...this.peers].find(([, p]) => p.session.isThisConnection(sdp));
          if (same) {
            this.refile(same[0], event.from);
            same[1].session.peerRejoined();
          }
        }
        const info = this.joined.get(event.from);
        if (opensConnection(event.data, info !== undefined, this.peers.has(event.from)) && info) {
          this.addPeer(info, false);
          this.emitParticipants();
        }
        const peer = this.peers.get(event.from);
        if (peer) void peer.session.signal(event.data);
        break;
      }
      case "reconnecting":
        this.setState({ phase: "reconnecting", inMs: event.inMs, reason: event.reason });
        break;
      case "refused":
        for (const id of [...this.peers.keys()]) this.removePeer(id);
        this.releaseDevices();
        this.setState({ phase: "refused", code: event.code, message: event.message });
        break;
    }
  }

  private addPeer(info: PeerInfo, offerer: boolean): void {
    if (!this.you || !this.key || this.peers.has(info.id)) return;
    // A newcomer with nothing asks exactly one peer (the first) for a snapshot.
    const wantSnapshot = offerer && !this.askedSnapshot && this.isEmpty();
    this.askedSnapshot ||= wantSnapshot;
    // The peer's signaling id can change under a live connection (it rejoined): events find
    // their peer through this, not through the id it had when the connection began.
    const ref = { id: info.id };
    const session = new PeerSession(
      {
        self: this.you,
        remote: info.id,
        name: this.identity.name,
        appVersion: APP_VERSION,
        key: this.key,
        iceServers: this.iceServers,
        offerer,
        wantSnapshot,
        tracks: [...this.localTracks],
        instance: this.instance,
      },
      (event) => this.onPeer(ref.id, event),
    );
    this.peers.set(info.id, {
      info: { ...info, status: "connecting", media: { mic: false, cam: false, screen: false }, streams: [] },
      session,
      sync: new PeerSync(wantSnapshot),
      leftSignaling: false,
      ref,
      intake: new Intake(performance.now()),
      pace: new Pace(performance.now()),
    });
  }

  private removePeer(id: PeerId): void {
    const peer = this.peers.get(id);
    if (!peer) return;
    this.failTransfers(id, `${peer.info.name} left`);
    peer.session.close();
    this.peers.delete(id);
    this.emitParticipants();
  }

  /** A connection we will not use (a failed MAC check, a failure): the peer leaves the list.
   * A possible interception is put in front of the person; a failure is only logged, because
   * it is often the old half of a connection that a newer one replaced (both ends rejoined
   * signaling), and the peer is back in the list as soon as the newer one is up. */
  /** The same connection, under the peer's new signaling id. */
  private refile(id: PeerId, newId: PeerId): void {
    const peer = this.peers.get(id);
    if (!peer) return;
    this.peers.delete(id);
    peer.ref.id = newId;
    peer.leftSignaling = false;
    peer.info = { ...peer.info, id: newId };
    this.peers.set(newId, peer);
    for (const transfer of this.transfers.values()) if (transfer.peer === id) transfer.peer = newId;
    this.emitParticipants();
  }

  private giveUp(id: PeerId, cause: Parameters<typeof lostPeerNotice>[1]): void {
    const peer = this.peers.get(id);
    if (!peer) return;
    const notice = lostPeerNotice(peer.info.name, cause);
    this.failTransfers(id, notice);
    this.removePeer(id);
    if (cause.kind === "intercepted") this.emit({ type: "error", message: notice });
    else console.warn(notice);
  }

  private flooded(id: PeerId): void {
    this.flooders.add(id);
    this.giveUp(id, { kind: "failed", reason: FLOODING });
  }

  /** Transfers with a peer that is gone cannot finish: say so rather than wait forever. */
  private failTransfers(peer: PeerId, reason: string): void {
    for (const transfer of this.transfers.values()) {
      if (transfer.peer === peer && !hasEnded(transfer)) {
        this.updateTransfer(transfer, { state: "failed", reason });
      }
    }
  }

  private isEmpty(): boolean {
    return notesOf(this.doc) === "" && titleOf(this.doc) === "" && chatMessages(this.doc).length === 0;
  }

  private onPeer(id: PeerId, event: PeerEvent): void {
    const peer = this.peers.get(id);
    if (!peer) return;
    switch (event.kind) {
      case "signal":
        this.signaling?.signal(id, event.data);
        break;
      case "ready":
        // Both ends rejoined signaling under new ids and connected again: this connection
        // replaces the older one with the same run of the same peer.
        for (const [otherId, other] of [...this.peers]) {
          if (otherId !== id && event.instance && other.instance === event.instance) this.removePeer(otherId);
        }
        peer.instance = event.instance;
        // For `make bench-ui` and the browser's performance panel: when the first peer could talk.
        if (performance.getEntriesByName("confab:first-peer-ready").length === 0) performance.mark("confab:first-peer-ready");
        peer.info = { ...peer.info, name: displayName(event.name), client: event.client, status: "connected" };
        if (this.media.mic || this.media.cam || this.media.screen) peer.session.sendCtl(this.mediaMessage());
        if (this.cursor) peer.session.sendCtl(this.cursorMessage());
        if (event.wantSnapshot) {
          for (const frame of peer.sync.snapshotFrames(this.doc)) peer.session.sendSync(frame as Uint8Array<ArrayBuffer>);
        }
        this.emitParticipants();
        this.flush(id);
        break;
      case "sync":
        if (!peer.intake.take(performance.now(), event.frame.byteLength)) return this.flooded(id);
        try {
          const next = peer.sync.receive(this.doc, event.frame);
          // Every sync message makes a new document object (the old one is outdated after it),
          // but only one that brought changes is worth storing and reporting.
          const changed = A.getHeads(next).join() !== this.heads.join();
          this.doc = next;
          if (changed) {
            this.persist();
            this.reportChanges(true);
          }
          // One round of sync messages once the frames already waiting are taken, not one per
          // frame: a round is dear under a burst (a flood, or catching up). For each peer, JS
          // Automerge copies the sync state (every change sent and not yet confirmed) into WASM
          // and back, and looks through every change since the last one both sides hold; a
          // round per frame froze the page for 30 s and more under 3,000 chat messages.
          this.flushAt(performance.now());
        } catch (e) {
          const reason = e instanceof SyncError ? e.message : `the peer's document data is unusable: ${String(e)}`;
          this.giveUp(id, { kind: "failed", reason });
        }
        break;
      case "connection":
        if (!event.up && peer.leftSignaling) return this.removePeer(id);
        if (peer.session.isReady) {
          peer.info = { ...peer.info, status: event.up ? "connected" : "reconnecting" };
          this.emitParticipants();
        }
        break;
      case "stats":
        peer.info = { ...peer.info, stats: event.stats };
        this.emitParticipants();
        break;
      case "intercepted":
        this.giveUp(id, { kind: "intercepted" });
        break;
      case "relay_problem":
        // Once per relay: every connection (and every allocation retry) meets the same refusal.
        if (this.relaysTold.has(event.url)) return;
        this.relaysTold.add(event.url);
        this.emit({ type: "error", message: relayProblemNotice(event.url, event.code, event.text) });
        break;
      case "failed":
        // Gone from the room and now from us too (a closed tab, a reload): no longer here.
        if (peer.leftSignaling) return this.removePeer(id);
        this.giveUp(id, { kind: "failed", reason: event.reason });
        break;
      case "bye":
        this.removePeer(id);
        break;
      case "ctl":
        if (!peer.intake.take(performance.now(), JSON.stringify(event.message).length)) return this.flooded(id);
        if (event.message.type === "cursor") {
          const { anchor, head } = event.message;
          peer.info = { ...peer.info, ...(anchor && head ? { cursor: { anchor, head } } : { cursor: undefined }) };
          this.emitParticipants();
        } else if (event.message.type === "media") {
          const { mic, cam, screen, screen_track } = event.message;
          peer.info = { ...peer.info, media: { mic, cam, screen, ...(screen_track ? { screenTrack: screen_track } : {}) } };
          this.emitParticipants();
        } else {
          this.onFileMessage(id, event.message);
        }
        break;
      case "track": {
        // A track sent without a stream gets one of its own, so the screen can tell it apart.
        const stream = event.streams[0] ?? new MediaStream([event.track]);
        if (!peer.info.streams.includes(stream)) {
          peer.info = { ...peer.info, streams: [...peer.info.streams, stream] };
          stream.addEventListener("removetrack", () => {
            if (stream.getTracks().length === 0) {
              peer.info = { ...peer.info, streams: peer.info.streams.filter((s) => s !== stream) };
            }
            this.emitParticipants();
          });
        }
        this.emitParticipants();
        break;
      }
      case "rekeyed":
        // Its offer under the new id may have told us first.
        if (event.id === id) break;
        if (this.peers.has(event.id)) {
          // A newer connection to the same peer is already under way (both rejoined): it wins.
          this.removePeer(id);
          break;
        }
        this.refile(id, event.id);
        break;
      case "file_channel":
        this.onFileChannel(id, event.id, event.channel);
        break;
    }
  }
}

/** Whether `stream` carries the screen the participant announced. */
function isScreen(stream: MediaStream, media: MediaState): boolean {
  if (!media.screen || !media.screenTrack) return false;
  return stream.id === media.screenTrack || stream.getTracks().some((t) => t.id === media.screenTrack);
}
