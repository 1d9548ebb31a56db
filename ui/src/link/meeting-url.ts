// Meeting links (docs/protocol.md §1): `http(s)://HOST[:PORT][/PREFIX]/m/ROOM#k=KEY[&n=NAME]`.
import type { RoomId } from "../gen/protocol";
import { checkDisplayName, trimWhiteSpace } from "./text";

const ID = /^[A-Za-z0-9_-]{22}$/;

export interface MeetingAddress {
  room: RoomId;
  /** The 22-character meeting key; it lives only in the fragment and never reaches a server. */
  key: string;
  /** Where the signaling service lives: origin plus any path prefix, no trailing slash. */
  base: string;
  /** A name suggested by the link (`n=`), if any. */
  name?: string;
}

/** Why a text is not a meeting link: the kinds of confab-proto's `LinkError`. */
export type LinkProblem =
  | "not_a_link"
  | "unsupported_scheme"
  | "no_room"
  | "bad_room"
  | "missing_key"
  | "bad_key"
  | "bad_name"
  | "bad_host";

export const PROBLEM_TEXT: Record<LinkProblem, string> = {
  not_a_link: "This is not a meeting link. A link looks like https://host/m/ROOM#k=KEY.",
  unsupported_scheme: "A meeting link starts with https:// or http://.",
  no_room: "This link has no meeting in it: a link looks like https://host/m/ROOM#k=KEY.",
  bad_room: "The room in this link is malformed: it should be 22 letters, digits, - or _.",
  missing_key: "This link has no meeting key (#k=…). Ask for the whole link, including the part after #.",
  bad_key: "The meeting key in this link is malformed. Ask for the link again.",
  bad_name: "The name in this link (n=…) is not a valid display name. Ask for the link again, or remove &n=… from it.",
  bad_host: "The server in this link is malformed (a link must not carry a user name or password).",
};

/** Reads an http(s) meeting link as confab-proto does, or says exactly what is wrong with it.
 * (confab:// links go to the desktop app, never to a page.) */
export function parseMeetingLink(text: string): MeetingAddress | LinkProblem {
  let url: URL;
  try {
    url = new URL(trimWhiteSpace(text));
  } catch {
    return "not_a_link";
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return "unsupported_scheme";
  const path = url.pathname.replace(/\/+$/, "");
  const at = path.lastIndexOf("/m/");
  if (at < 0) return "no_room";
  const room = path.slice(at + "/m/".length);
  if (room.includes("/")) return "no_room";
  if (!isId(room)) return "bad_room";
  let key: string | undefined;
  let name: string | undefined;
  // In order, the last one winning, failing on the first bad one: as confab-proto reads it.
  for (const [k, v] of new URLSearchParams(url.hash.slice(1))) {
    if (k === "k") {
      if (!isId(v)) return "bad_key";
      key = v;
    } else if (k === "n") {
      const checked = checkDisplayName(v);
      if (!checked.ok) return "bad_name";
      name = checked.name;
    }
  }
  if (key === undefined) return "missing_key";
  if (url.username || url.password || !url.hostname) return "bad_host";
  return { room, key, base: url.origin + path.slice(0, at), ...(name ? { name } : {}) };
}

/** 22 base64url characters that encode exactly 16 bytes, canonically (as confab-proto checks:
 * the last character carries 2 bits, the unused 4 must be zero). */
function isId(text: string): boolean {
  try {
    return ID.test(text) && fromBase64url(text).length === 16;
  } catch {
    return false;
  }
}

export function meetingLinkText(address: MeetingAddress): string {
  return `${address.base}/m/${address.room}#k=${address.key}`;
}

/** The same meeting as a `confab://` link (docs/protocol.md §1), which opens the desktop app. */
export function desktopLinkText(address: MeetingAddress): string {
  const base = new URL(address.base);
  const query = new URLSearchParams({ h: base.host });
  const prefix = base.pathname.replace(/\/+$/, "");
  if (prefix) query.set("p", prefix);
  if (base.protocol === "http:") query.set("s", "http");
  return `confab://m/${address.room}?${query.toString()}#k=${address.key}`;
}

export function signalingUrl(address: MeetingAddress): string {
  return address.base.replace(/^http/, "ws") + "/ws";
}

/** 128 random bits as unpadded base64url: a new meeting key, made here and never sent anywhere. */
export function randomKey(): string {
  return base64url(crypto.getRandomValues(new Uint8Array(16)));
}

export function base64url(bytes: Uint8Array): string {
  let text = "";
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** Decodes canonical unpadded base64url; throws on anything else (padding, `+`, `/`, spare bits
 * set), as confab-proto's decoder does: one value has one spelling. */
export function fromBase64url(text: string): Uint8Array<ArrayBuffer> {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) throw new Error("not unpadded base64url");
  const binary = atob(text.replaceAll("-", "+").replaceAll("_", "/"));
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  if (base64url(bytes) !== text) throw new Error("not canonical base64url");
  return bytes;
}
