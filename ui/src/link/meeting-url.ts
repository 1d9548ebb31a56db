// Meeting links (docs/protocol.md §1): `http(s)://HOST[:PORT][/PREFIX]/m/ROOM#k=KEY[&n=NAME]`.
import type { RoomId } from "../gen/protocol";

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

export type LinkProblem = "not_a_link" | "bad_room" | "no_key" | "bad_key";

export const PROBLEM_TEXT: Record<LinkProblem, string> = {
  not_a_link: "This is not a meeting link. A link looks like https://host/m/ROOM#k=KEY.",
  bad_room: "The room in this link is malformed: it should be 22 letters, digits, - or _.",
  no_key: "This link has no meeting key (#k=…). Ask for the whole link, including the part after #.",
  bad_key: "The meeting key in this link is malformed. Ask for the link again.",
};

/** Reads a meeting link, or says exactly what is wrong with it. */
export function parseMeetingLink(text: string): MeetingAddress | LinkProblem {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    return "not_a_link";
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return "not_a_link";
  const match = /^(.*)\/m\/([^/]*)\/?$/.exec(url.pathname);
  if (!match) return "not_a_link";
  const [, prefix = "", room = ""] = match;
  if (!isId(room)) return "bad_room";
  const fragment = new URLSearchParams(url.hash.slice(1));
  const key = fragment.get("k");
  if (key === null || key === "") return "no_key";
  if (!isId(key)) return "bad_key";
  const name = fragment.get("n") ?? undefined;
  return { room, key, base: url.origin + prefix, ...(name ? { name } : {}) };
}

/** 22 base64url characters that encode exactly 16 bytes, canonically (as confab-proto checks:
 * the last character carries 2 bits, the unused 4 must be zero). */
function isId(text: string): boolean {
  return ID.test(text) && base64url(fromBase64url(text)) === text;
}

export function meetingLinkText(address: MeetingAddress): string {
  return `${address.base}/m/${address.room}#k=${address.key}`;
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

export function fromBase64url(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text.replaceAll("-", "+").replaceAll("_", "/"));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}
