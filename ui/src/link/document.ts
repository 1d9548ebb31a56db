// The meeting document (docs/protocol.md §4) in @automerge/automerge, the same document confab-core
// holds. Every replica starts from the same genesis change (fixed actor, time 0), so its bytes,
// hash and object ids are identical in Rust and in the browser: two people who open a meeting
// apart edit the same `notes` object.
import * as A from "@automerge/automerge/slim";
import { MAX_CHAT_CHARS, MAX_CURSOR_BYTES } from "../gen/constants";
import type { ChatMessage } from "../gen/protocol";
import { trimWhiteSpace } from "./text";

/** A chat message as stored: scalar strings (not collaborative text), as confab-core writes them. */
type StoredChat = { [K in keyof ChatMessage]?: A.ImmutableString | string | number };

export interface MeetingSchema {
  schema: A.Int | number;
  title: string;
  notes: string;
  chat: StoredChat[];
}
export type Doc = A.Doc<MeetingSchema>;

/** `confab-genesis-1` as hex: the actor of the genesis change, never used for edits. */
const GENESIS_ACTOR = "636f6e6661622d67656e657369732d31";
/** The genesis change's hash, pinned in confab-core's tests too. */
export const GENESIS_HEAD = "b3910fbc6e266ee68c00702e145e187f44f7f5d81be79bad0d2bc3b62c86d01c";

export function genesis(actor: string): Doc {
  const doc = A.change(A.init<MeetingSchema>({ actor: GENESIS_ACTOR }), { time: 0 }, (d) => {
    d.schema = new A.Int(1);
    d.title = "";
    d.notes = "";
    d.chat = [];
  });
  // A different @automerge/automerge could encode the genesis differently; then this browser
  // would edit notes nobody else sees. Refuse to start instead.
  if (A.getHeads(doc)[0] !== GENESIS_HEAD) throw new Error("this build's Automerge makes a different genesis");
  return A.clone(doc, { actor });
}

/** A random actor id (16 bytes as hex), one per page load: two tabs never share one. */
export function newActor(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

export function isMeetingDoc(doc: Doc): boolean {
  return (
    Number(doc.schema) === 1 && typeof doc.notes === "string" && typeof doc.title === "string" && Array.isArray(doc.chat)
  );
}

/** The notes and the title, or "" if a peer wrote something else in their place. */
export const notesOf = (doc: Doc): string => (typeof doc.notes === "string" ? doc.notes : "");
export const titleOf = (doc: Doc): string => (typeof doc.title === "string" ? doc.title : "");

/** One step of a change to the notes, in UTF-16 code units (the editor's and Automerge JS's unit). */
export type NotesPatch = { insert: string; pos: number } | { delete: number; pos: number };

export function spliceNotes(doc: Doc, steps: NotesPatch[]): Doc {
  return A.change(doc, (d) => {
    for (const step of steps) {
      if ("insert" in step) A.splice(d, ["notes"], step.pos, 0, step.insert);
      else A.splice(d, ["notes"], step.pos, step.delete);
    }
  });
}

export function postChat(doc: Doc, message: ChatMessage): Doc {
  if (trimWhiteSpace(message.text) === "") throw new Error("a chat message cannot be empty");
  if ([...message.text].length > MAX_CHAT_CHARS) throw new Error(`a chat message is at most ${MAX_CHAT_CHARS} characters`);
  const scalar = (text: string) => new A.ImmutableString(text);
  return A.change(doc, (d) => {
    d.chat.push({
      id: scalar(message.id),
      author_id: scalar(message.author_id),
      author: scalar(message.author),
      at: message.at,
      text: scalar(message.text),
    });
  });
}

/** A stored string field, or null when it is missing or of another kind. */
function scalarString(value: StoredChat[keyof ChatMessage]): string | null {
  if (A.isImmutableString(value)) return value.toString();
  return typeof value === "string" ? value : null;
}

/** A chat entry as a message, or null when it is not a well-formed one (a peer may write
 * anything into the document: only what has the right shape is read). */
function chatMessage(m: StoredChat | null): ChatMessage | null {
  if (typeof m !== "object" || m === null) return null;
  const [id, author_id, author, text] = [scalarString(m.id), scalarString(m.author_id), scalarString(m.author), scalarString(m.text)];
  if (id && author_id && author !== null && text !== null && typeof m.at === "number") {
    return { id, author_id, author, at: m.at, text };
  }
  return null;
}

function chatEntries(doc: Doc): (StoredChat | null)[] {
  const chat: unknown = doc.chat;
  return Array.isArray(chat) ? (chat as (StoredChat | null)[]) : [];
}

/** The number of entries in the chat list, well-formed or not. */
export function chatLength(doc: Doc): number {
  return chatEntries(doc).length;
}

/** The chat in list order; entries that are not well-formed messages are skipped, not shown half. */
export function chatMessages(doc: Doc): ChatMessage[] {
  return chatEntries(doc).flatMap((m) => chatMessage(m) ?? []);
}

/** The messages not in `seen`, in list order, once the list has grown by `added` entries: read
 * from the end, where new messages land, until that many are found. Reading every entry each
 * time was what kept a browser behind a flood of chat (each entry is a read through Automerge's
 * proxies). A message inserted further up (from a peer long offline) is still found, later. */
export function newChatMessages(doc: Doc, seen: ReadonlySet<string>, added: number): ChatMessage[] {
  const entries = chatEntries(doc);
  const found: ChatMessage[] = [];
  for (let i = entries.length - 1; i >= 0 && found.length < added; i--) {
    const message = chatMessage(entries[i] ?? null);
    if (message && !seen.has(message.id)) found.push(message);
  }
  return found.reverse();
}

/** What happened to the notes between two versions, as steps an editor can apply in order. */
export function notesPatchesSince(doc: Doc, before: A.Heads): NotesPatch[] {
  const steps: NotesPatch[] = [];
  for (const patch of A.diff(doc, before, A.getHeads(doc))) {
    if (patch.path[0] !== "notes" || patch.path.length !== 2) continue;
    const pos = patch.path[1];
    if (typeof pos !== "number") continue;
    if (patch.action === "splice") steps.push({ pos, insert: patch.value });
    else if (patch.action === "del") steps.push({ pos, delete: patch.length ?? 1 });
  }
  return steps;
}

/** Where a peer's cursor (its text) is in the notes now, or null for one that is malformed or on
 * text not received yet. Only non-empty ASCII of at most MAX_CURSOR_BYTES reaches Automerge, as
 * in confab-core: its parser panics on the rest. */
export function notesCursorPosition(doc: Doc, cursor: string): number | null {
  if (cursor === "" || cursor.length > MAX_CURSOR_BYTES || !/^[\x00-\x7f]*$/.test(cursor)) return null;
  try {
    return A.getCursorPosition(doc, ["notes"], cursor);
  } catch {
    return null;
  }
}

export function toMarkdown(doc: Doc): string {
  const title = titleOf(doc).trim() || "Meeting notes";
  let out = `# ${title}\n\n`;
  const notes = notesOf(doc);
  if (notes.trim()) out += notes.trimEnd() + "\n\n";
  const chat = chatMessages(doc);
  if (chat.length) {
    out += "## Chat\n\n";
    for (const m of chat) out += `- **${m.author}** (${new Date(m.at).toISOString()}): ${m.text}\n`;
  }
  return out;
}
