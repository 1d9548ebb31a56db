// What the UI talks to: one meeting, whatever carries it. `BrowserLink` is the browser's own
// WebRTC and Automerge; the desktop app's `TauriLink` drives confab-core in Rust.
import type { ChatMessage, ClientKind, ErrorCode, PeerId } from "../gen/protocol";
import type { NotesPatch } from "./document";
import type { FileTransfer } from "./files";
import type { PeerStats } from "./peer";

export type MeetingState =
  | { phase: "connecting" }
  | { phase: "joined"; you: PeerId }
  | { phase: "reconnecting"; inMs: number; reason: string }
  /** The server refused the room for good (full, malformed…); `code` is the protocol's. */
  | { phase: "refused"; code: ErrorCode; message: string }
  | { phase: "left" };

/** What a participant sends (the `media` message of docs/protocol.md §3). */
export interface MediaState {
  mic: boolean;
  cam: boolean;
  screen: boolean;
  /** The id of the screen's track (or of the stream that carries it). */
  screenTrack?: string;
}

/** What a tile shows of one video: an element the link made and keeps fed — a `<video>` of a
 * MediaStream in the browser, a canvas drawn from the engine's frames in the desktop app. */
export interface VideoView {
  /** The same element for as long as the video lasts. */
  readonly element: HTMLElement;
  /** False while there is sound only: the tile shows the name instead. */
  readonly hasPicture: boolean;
}

export interface Participant {
  id: PeerId;
  name: string;
  client: ClientKind;
  media: MediaState;
  /** Their camera (with their voice, in a browser), and the screen they share. */
  camera: VideoView | null;
  screen: VideoView | null;
  /** Their selection in the notes, as Automerge cursors (resolve with `cursorsInNotes`). */
  cursor?: { anchor: string; head: string };
  /** A peer whose connection fails or may be intercepted leaves the list (an `error` event says
   * why). */
  status: "connecting" | "connected" | "reconnecting";
  stats?: PeerStats;
}

export interface RemoteCursor {
  peer: PeerId;
  name: string;
  anchor: number;
  head: number;
}

export type LinkEvent =
  | { type: "state"; state: MeetingState }
  | { type: "participants"; participants: Participant[] }
  | { type: "chat"; message: ChatMessage }
  /** The notes changed by someone else; `patches` turn the previous text into `text`. */
  | { type: "notes"; text: string; patches: NotesPatch[] }
  | { type: "title"; title: string }
  /** Whether every edit so far is stored on this device (false while a save is under way). */
  | { type: "stored"; upToDate: boolean }
  /** What we send changed: our camera (with microphone) and our shared screen. */
  | { type: "local_media"; media: MediaState; camera: VideoView | null; screen: VideoView | null }
  /** A file transfer started, moved on, or ended (one per file and peer). */
  | { type: "file"; transfer: FileTransfer }
  | { type: "error"; message: string };

export interface MeetingLink {
  /** Subscribes to events; returns the unsubscribe function. */
  subscribe(listener: (event: LinkEvent) => void): () => void;
  /** Opens the stored document (if any), reports what it holds as events (chat, notes, title),
   * and joins; the notes are usable before anyone connects. */
  join(): Promise<void>;
  say(text: string): void;
  /** Our own edit of the notes, in UTF-16 positions, steps applied in order. */
  editNotes(patches: NotesPatch[]): void;
  exportMarkdown(): Promise<string>;
  /** Where our selection is in the notes (UTF-16 positions), or null when we are elsewhere. */
  setCursor(selection: { anchor: number; head: number } | null): void;
  /** The others' selections in the notes as positions in the current text. */
  cursorsInNotes(): RemoteCursor[];
  /** Turns our microphone or camera on or off; resolves once done (or refused). */
  setDevice(kind: "mic" | "cam", on: boolean): Promise<void>;
  /** Starts or stops sharing the screen (the browser asks what to share). */
  shareScreen(on: boolean): Promise<void>;
  /** Offers `file` to everyone connected. */
  sendFile(file: File): Promise<void>;
  /** Answers an offered file (by its transfer key). */
  acceptFile(key: string): void;
  declineFile(key: string): void;
  /** Stops a transfer under way, either side. */
  cancelFile(key: string): void;
  leave(): Promise<void>;
}
