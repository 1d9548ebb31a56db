// The desktop app's link: the meeting runs in Rust (confab-core), and this side only carries
// the front-end API — commands over Tauri commands, events over a Tauri channel. Every screen
// is the browser's.
import { Channel, invoke } from "@tauri-apps/api/core";
import type { Answer, Command, EngineEvent, NotesPatch as ApiPatch, RemoteCursor as ApiCursor } from "../gen/api";
import type { PeerId } from "../gen/protocol";
import type { NotesPatch } from "./document";
import type { LinkEvent, MeetingLink, MediaState, Participant, RemoteCursor } from "./meeting-link";
import { NotesMirror } from "./notes-mirror";
import { DecodedVideo, codecsDecodedHere, webCodecsName } from "./decoded-video";
import { type FileTransfer, transferKey } from "./files";

/** A peer's video track, as the engine announced it (src-tauri/src/media.rs). */
interface RemoteVideo {
  peer: PeerId;
  streams: string[];
  /** Sent in a native peer's screen stream. */
  nativeScreen: boolean;
  view: DecodedVideo;
}

// The kinds of video message (src-tauri/src/media.rs says what each holds).
const [TRACK_STARTED, FRAME, TRACK_ENDED, PICTURE] = [0, 1, 2, 3];
/** The track number of our own camera; the peers' start at 1. */
const OWN_CAMERA = 0;
/** A file the window sends goes to the engine in parts of this size (src-tauri/src/outgoing.rs). */
const FILE_PART_BYTES = 4 * 1024 * 1024;

/** True inside the desktop app's window. */
export function inDesktopApp(): boolean {
  return "__TAURI_INTERNALS__" in window;
}

/** A new meeting on the signaling service the app hosts; its link, with the key. */
export function hostMeeting(): Promise<string> {
  return invoke<string>("host_meeting");
}

/** What the window learns as it starts (src-tauri's `Startup`). */
export interface Startup {
  /** The meeting the app was started with (`--host`, or a link on its command line). */
  link: string | null;
  /** The display name last used, from the keyring. */
  name: string | null;
  /** Something to tell the user (no keyring to keep things in). */
  notice: string | null;
}

/** The window is ready; `opened` hears of meetings opened later (a `confab://` link clicked). */
export function startup(opened: (link: string) => void): Promise<Startup> {
  const channel = new Channel<{ event: "open"; link: string }>();
  channel.onmessage = (event) => opened(event.link);
  return invoke<Startup>("startup", { opened: channel });
}

export interface RecentMeeting {
  link: string;
  title: string;
  server: string;
  /** ms since the Unix epoch. */
  opened_at: number;
}

/** The meetings this install was in, newest first (their notes open even offline). */
export function recentMeetings(): Promise<RecentMeeting[]> {
  return invoke<RecentMeeting[]>("recent_meetings");
}

/** What the settings page sets (src-tauri's `Preferences`); null: the default. */
export interface Preferences {
  /** The signaling server new meetings are made on; null: hosted on this computer. */
  server: string | null;
  microphone: string | null;
  speaker: string | null;
  camera: string | null;
}

export interface DeviceList {
  devices: { id: string; name: string }[];
  /** Why none could be listed. */
  error: string | null;
}

export interface SettingsPage {
  preferences: Preferences;
  /** Whether an access token is kept (in the keyring) for the server set. */
  access_token_kept: boolean;
  microphones: DeviceList;
  speakers: DeviceList;
  cameras: DeviceList;
}

export function loadSettings(): Promise<SettingsPage> {
  return invoke<SettingsPage>("settings");
}

/** Keeps the settings, and `accessToken` for their server (undefined: the one kept stays; blank:
 * forget it); resolves with them as kept, or rejects with why they were refused. */
export function saveSettings(preferences: Preferences, accessToken?: string): Promise<Preferences> {
  return invoke<Preferences>("save_settings", { preferences, accessToken: accessToken ?? null });
}

/** A display that can be shared. */
export interface ScreenChoice {
  id: string;
  name: string;
  width: number;
  height: number;
  primary: boolean;
  /** The system's own dialog chooses what is shared (the Wayland portal). */
  chosen_by_system: boolean;
}

/** The displays that can be shared, the primary first; rejects with why none can. */
export function listScreens(): Promise<ScreenChoice[]> {
  return invoke<ScreenChoice[]>("screens");
}

/** A small picture of display `id` as it is now. */
export async function screenThumbnail(id: string): Promise<ImageData> {
  const message = await invoke<ArrayBuffer>("screen_thumbnail", { id });
  const view = new DataView(message);
  const [width, height] = [view.getUint32(0, true), view.getUint32(4, true)];
  return new ImageData(new Uint8ClampedArray(message, 8), width, height);
}

/** Picks the display to share, or null when the person changed their mind. */
export type ScreenPicker = () => Promise<string | null>;

export class TauriLink implements MeetingLink {
  private readonly listeners = new Set<(event: LinkEvent) => void>();
  private readonly peers = new Map<PeerId, Omit<Participant, "camera" | "screen">>();
  private readonly videos = new Map<number, RemoteVideo>();
  /** Our own camera, as the peers are sent it (track 0). */
  private ownCamera: DecodedVideo | null = null;
  /** Each peer's kind of client, from signaling's announcement. */
  private readonly clients = new Map<PeerId, Participant["client"]>();
  /** What we asked to send, changed at each click (the engine's answer may lag). */
  private wanted: MediaState = { mic: false, cam: false, screen: false };
  private media: MediaState = { mic: false, cam: false, screen: false };
  private readonly notes = new NotesMirror();
  /** The others' selections, as the engine last told them. */
  private cursors: ApiCursor[] = [];
  /** Every transfer the engine told of, by key (file id and peer). */
  private readonly transfers = new Map<string, FileTransfer>();
  /** Commands go one at a time, so the engine applies edits in the order they were typed. */
  private queue: Promise<unknown> = Promise.resolve();
  private mediaQueue: Promise<unknown> = Promise.resolve();
  private queued = 0;

  /** `pickScreen` asks which display to share each time sharing starts. */
  constructor(
    private readonly link: string,
    private readonly name: string,
    private readonly pickScreen: ScreenPicker,
  ) {}

  subscribe(listener: (event: LinkEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async join(): Promise<void> {
    const events = new Channel<EngineEvent>();
    events.onmessage = (event) => this.onEngineEvent(event);
    const video = new Channel<ArrayBuffer>();
    video.onmessage = (message) => this.onVideo(message);
    this.emit({ type: "state", state: { phase: "connecting" } });
    try {
      const decodedHere = await codecsDecodedHere();
      await invoke("join_meeting", { link: this.link, name: this.name, events, video, decodedHere });
    } catch (e) {
      this.emit({ type: "error", message: `Could not join: ${String(e)}` });
      this.emit({ type: "state", state: { phase: "left" } });
    }
  }

  say(text: string): void {
    void this.send({ cmd: "say", text });
  }

  /** Another meeting replaces this one in the window (the engine leaves it): its video stops
   * and its screen is taken down. */
  close(): void {
    for (const video of this.videos.values()) video.view.close();
    this.videos.clear();
    this.ownCamera?.close();
    this.ownCamera = null;
    this.emit({ type: "state", state: { phase: "left" } });
    this.listeners.clear();
  }

  editNotes(patches: NotesPatch[]): void {
    for (const step of this.notes.local(patches)) {
      const command: Command =
        "insert" in step
          ? { cmd: "notes_insert", pos: step.pos, text: step.insert }
          : { cmd: "notes_delete", pos: step.pos, len: step.delete };
      void this.send(command).then((answer) => {
        // Refused: the engine's text is the truth again.
        if (answer === undefined) void this.resyncNotes();
      });
    }
  }

  async exportMarkdown(): Promise<string> {
    const answer = await this.send({ cmd: "markdown" });
    return answer && "markdown" in answer ? answer.markdown : "";
  }

  setCursor(selection: { anchor: number; head: number } | null): void {
    // After the edits typed before it, whose text its positions count in.
    void this.inOrder({ cmd: "cursor", selection });
  }

  cursorsInNotes(): RemoteCursor[] {
    return this.cursors.flatMap((c) => {
      const peer = this.peers.get(c.peer);
      return peer?.status === "connected" ? [{ peer: c.peer, name: peer.name, anchor: c.anchor, head: c.head }] : [];
    });
  }

  async setDevice(kind: "mic" | "cam", on: boolean): Promise<void> {
    this.wanted = { ...this.wanted, [kind]: on };
    await this.setMedia(this.wanted);
  }

  async shareScreen(on: boolean): Promise<void> {
    if (on) {
      const picked = await this.pickScreen().catch((e: unknown) => {
        this.emit({ type: "error", message: `The screen cannot be shared: ${String(e)}` });
        return null;
      });
      if (picked === null) return this.emitLocalMedia();
      await invoke("choose_screen", { id: picked });
    }
    this.wanted = { ...this.wanted, screen: on };
    await this.setMedia(this.wanted);
  }

  /** The webview's file has no path: its bytes go to the engine in parts, which keeps a copy
   * and offers it. */
  async sendFile(file: File): Promise<void> {
    let id: string | null = null;
    try {
      id = await invoke<string>("begin_file", { name: file.name, size: file.size });
      for (let at = 0; at < file.size; at += FILE_PART_BYTES) {
        const part = new Uint8Array(await file.slice(at, at + FILE_PART_BYTES).arrayBuffer());
        await invoke("file_part", part, { headers: { "confab-file": id } });
      }
      await invoke("send_file", { id });
    } catch (e) {
      if (id !== null) void invoke("abandon_file", { id }).catch(() => undefined);
      this.emit({ type: "error", message: `${file.name} was not sent: ${String(e)}` });
    }
  }

  acceptFile(key: string): void {
    const transfer = this.transfers.get(key);
    if (!transfer) return;
    this.updateTransfer(transfer, { state: "waiting" });
    void this.command({ cmd: "accept_file", id: transfer.id });
  }

  declineFile(key: string): void {
    const transfer = this.transfers.get(key);
    if (transfer) void this.command({ cmd: "decline_file", id: transfer.id });
  }

  cancelFile(key: string): void {
    const transfer = this.transfers.get(key);
    if (transfer) void this.command({ cmd: "cancel_file", id: transfer.id });
  }

  async leave(): Promise<void> {
    // Edits on their way are carried out first.
    await this.queue;
    await invoke("leave_meeting").catch(() => undefined);
    this.emit({ type: "state", state: { phase: "left" } });
  }

  private async setMedia(wanted: MediaState): Promise<void> {
    // Media changes go one at a time, each from the latest wish; they never wait on typing.
    const change = this.mediaQueue.then(() => this.command({ cmd: "set_media", mic: wanted.mic, cam: wanted.cam, screen: wanted.screen }));
    this.mediaQueue = change;
    // The engine changes what it can and says what failed: what is sent is what it reports.
    if ((await change) !== undefined) this.media = wanted;
    else this.wanted = this.media;
    this.emitLocalMedia();
  }

  /** What we send, with our camera's picture when there is one. */
  private emitLocalMedia(): void {
    this.emit({ type: "local_media", media: this.media, camera: this.ownCamera, screen: null });
  }

  /** Sends one command of the notes' (the document's) after those before it, so edits land in
   * the order they were typed; answers undefined (and reports why) if refused. */
  private send(command: Command): Promise<Answer | undefined> {
    if (this.queued++ === 0) this.emit({ type: "stored", upToDate: false });
    return this.inOrder(command).finally(() => {
      if (--this.queued === 0) this.emit({ type: "stored", upToDate: true });
    });
  }

  /** One command after those sent before it. */
  private inOrder(command: Command): Promise<Answer | undefined> {
    const sent = this.queue.then(() => this.command(command));
    this.queue = sent;
    return sent;
  }

  /** One command now; answers undefined (and reports why) if refused. */
  private command(command: Command): Promise<Answer | undefined> {
    return invoke<Answer>("meeting_command", { command }).catch((e: unknown) => {
      this.emit({ type: "error", message: String(e) });
      return undefined;
    });
  }

  private async resyncNotes(): Promise<void> {
    const answer = await this.send({ cmd: "notes" });
    if (answer && "text" in answer) this.showNotes(this.notes.reset(answer.text));
  }

  private showNotes(change: { text: string; patches: NotesPatch[] } | null): void {
    if (change) this.emit({ type: "notes", ...change });
  }

  private onEngineEvent(event: EngineEvent): void {
    switch (event.event) {
      case "joined":
        return this.emit({ type: "state", state: { phase: "joined", you: event.you } });
      case "reconnecting":
        return this.emit({ type: "state", state: { phase: "reconnecting", inMs: event.retry_in_ms, reason: event.reason } });
      case "peer_joined": {
        // After our own reconnect, signaling announces everyone again, connected or not.
        const known = this.peers.get(event.id);
        this.clients.set(event.id, event.client);
        this.peers.set(event.id, {
          id: event.id,
          media: { mic: false, cam: false, screen: false },
          status: "connecting",
          ...known,
          name: event.name,
          client: event.client,
        });
        return this.emitParticipants();
      }
      case "peer_connected": {
        // A peer may connect again after failing, with no new announcement.
        const known = this.peers.get(event.id);
        const client = known?.client ?? this.clients.get(event.id) ?? "desktop";
        const media = known?.media ?? { mic: false, cam: false, screen: false };
        this.peers.set(event.id, { ...known, id: event.id, name: event.name, client, media, status: "connected" });
        return this.emitParticipants();
      }
      case "peer_renamed": {
        const peer = this.peers.get(event.old);
        if (!peer) return;
        this.peers.delete(event.old);
        this.peers.set(event.id, { ...peer, id: event.id });
        for (const video of this.videos.values()) if (video.peer === event.old) video.peer = event.id;
        return this.emitParticipants();
      }
      case "peer_connection":
        this.updatePeer(event.id, (p) => ({ ...p, status: event.up ? "connected" : "reconnecting" }));
        return;
      case "peer_left":
        this.peers.delete(event.id);
        this.dropVideosOf(event.id);
        return this.emitParticipants();
      case "peer_failed": {
        const name = this.peers.get(event.id)?.name ?? "A participant";
        this.peers.delete(event.id);
        this.emitParticipants();
        return this.emit({ type: "error", message: `${name}: ${event.reason}` });
      }
      case "intercepted": {
        const name = this.peers.get(event.id)?.name ?? "A participant";
        this.peers.delete(event.id);
        this.emitParticipants();
        return this.emit({
          type: "error",
          message: `The connection to ${name} was closed: it did not prove it holds this meeting's key, so someone may be intercepting it.`,
        });
      }
      case "chat": {
        const { event: _, ...message } = event;
        return this.emit({ type: "chat", message });
      }
      case "notes":
        return this.showNotes(this.notes.reported(event.text, event.patches.map(fromApiPatch)));
      case "title":
        return this.emit({ type: "title", title: event.text });
      case "media":
        this.updatePeer(event.id, (p) => ({
          ...p,
          media: { mic: event.mic, cam: event.cam, screen: event.screen, ...(event.screen_track ? { screenTrack: event.screen_track } : {}) },
        }));
        return;
      case "stats":
        this.updatePeer(event.id, (p) => ({
          ...p,
          stats: { rttMs: event.rtt_ms, packetsLost: event.packets_lost, packetsReceived: null, bytesSent: event.bytes_sent, bytesReceived: event.bytes_received },
        }));
        return;
      case "file":
        return this.onFile(event);
      case "cursors":
        this.cursors = event.cursors;
        // The screen asks where the cursors are whenever the participants change.
        return this.emitParticipants();
      case "error":
        return this.emit({ type: "error", message: event.message });
      case "ended":
        if (event.code) return this.emit({ type: "state", state: { phase: "refused", code: event.code, message: event.reason } });
        this.emit({ type: "error", message: event.reason });
        return this.emit({ type: "state", state: { phase: "left" } });
    }
  }

  /** A transfer moved on, as the engine tells it; shown as the browser shows its own. */
  private onFile(event: Extract<EngineEvent, { event: "file" }>): void {
    const key = transferKey(event.id, event.peer);
    const known = this.transfers.get(key);
    const transfer: FileTransfer = known ?? {
      key,
      id: event.id,
      peer: event.peer,
      peerName: this.peers.get(event.peer)?.name ?? "someone",
      name: event.name,
      size: event.size,
      direction: event.direction,
      state: "offered",
      bytes: 0,
    };
    this.transfers.set(key, transfer);
    switch (event.state) {
      case "offered":
        return this.updateTransfer(transfer, { state: "offered" });
      case "progress":
        return this.updateTransfer(transfer, { state: "transferring", bytes: event.bytes });
      case "done":
        return this.updateTransfer(transfer, { state: "done", bytes: event.size, ...(event.path ? { savedAs: event.path } : {}) });
      case "failed":
        return this.updateTransfer(transfer, { state: "failed", reason: event.reason });
      case "cancelled":
        return this.updateTransfer(transfer, { state: "cancelled", reason: event.reason });
    }
  }

  private updateTransfer(transfer: FileTransfer, change: Partial<FileTransfer>): void {
    Object.assign(transfer, change);
    this.emit({ type: "file", transfer: { ...transfer } });
  }

  private onVideo(message: ArrayBuffer): void {
    const view = new DataView(message);
    const [kind, track] = [view.getUint8(0), view.getUint32(1, true)];
    if (kind === FRAME) {
      const keyframe = view.getUint8(5) === 1;
      const video = track === OWN_CAMERA ? this.ownCamera : this.videos.get(track)?.view;
      video?.frame(keyframe, view.getUint32(6, true), view.getFloat64(10, true), message.slice(18));
    } else if (kind === PICTURE) {
      const [width, height, arrived] = [view.getUint32(5, true), view.getUint32(9, true), view.getFloat64(13, true)];
      this.videos.get(track)?.view.picture(width, height, arrived, message.slice(21));
    } else if (kind === TRACK_STARTED) {
      const info = JSON.parse(new TextDecoder().decode(new Uint8Array(message, 5))) as {
        peer: PeerId;
        streams: string[];
        codec: string;
        screen: boolean;
        decoded: boolean;
        own?: boolean;
      };
      const codec = info.decoded ? null : webCodecsName(info.codec);
      if (codec === null && !info.decoded) return this.emit({ type: "error", message: `A video in ${info.codec} cannot be shown here.` });
      const onError = (message: string) => this.emit({ type: "error", message });
      const drawn = info.decoded ? () => void invoke("picture_shown", { track }).catch(() => undefined) : undefined;
      const video = new DecodedVideo(codec, onError, drawn);
      if (info.own) {
        this.ownCamera?.close();
        this.ownCamera = video;
        return this.emitLocalMedia();
      }
      this.videos.set(track, { peer: info.peer, streams: info.streams, nativeScreen: info.screen, view: video });
      this.emitParticipants();
    } else if (kind === TRACK_ENDED && track === OWN_CAMERA) {
      this.ownCamera?.close();
      this.ownCamera = null;
      this.emitLocalMedia();
    } else if (kind === TRACK_ENDED) {
      this.videos.get(track)?.view.close();
      this.videos.delete(track);
      this.emitParticipants();
    }
  }

  private dropVideosOf(peer: PeerId): void {
    for (const [track, video] of this.videos) {
      if (video.peer !== peer) continue;
      video.view.close();
      this.videos.delete(track);
    }
  }

  private updatePeer(id: PeerId, change: (peer: Omit<Participant, "camera" | "screen">) => Omit<Participant, "camera" | "screen">): void {
    const peer = this.peers.get(id);
    if (!peer) return;
    this.peers.set(id, change(peer));
    this.emitParticipants();
  }

  private emitParticipants(): void {
    const participants = [...this.peers.values()].map((peer): Participant => {
      const videos = [...this.videos.values()].filter((v) => v.peer === peer.id);
      const isScreen = (v: RemoteVideo) =>
        peer.media.screen && (v.nativeScreen || (peer.media.screenTrack !== undefined && v.streams.includes(peer.media.screenTrack)));
      return { ...peer, camera: videos.find((v) => !isScreen(v))?.view ?? null, screen: videos.find(isScreen)?.view ?? null };
    });
    this.emit({ type: "participants", participants });
  }

  private emit(event: LinkEvent): void {
    for (const listener of this.listeners) listener(event);
  }
}

function fromApiPatch(patch: ApiPatch): NotesPatch {
  return patch.op === "insert" ? { pos: patch.pos, insert: patch.text } : { pos: patch.pos, delete: patch.len };
}
