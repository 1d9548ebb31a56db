// `hello`'s fp_mac (docs/protocol.md §3): each side signs the pair of DTLS fingerprints its own
// connection sees with the meeting key, so a signaling server that swapped one is caught.
import { base64url, fromBase64url } from "./meeting-url";

export function importMeetingKey(key: string): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", fromBase64url(key), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
    "verify",
  ]);
}

/** The `a=fingerprint:` value of an SDP (`sha-256 AB:CD:…`), as confab-core reads it. */
export function sdpFingerprint(sdp: string | undefined): string | null {
  for (const line of (sdp ?? "").split("\n")) {
    const value = line.trim();
    if (value.startsWith("a=fingerprint:")) return value.slice("a=fingerprint:".length);
  }
  return null;
}

function message(senderFp: string, receiverFp: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(`confab-v1|${senderFp}|${receiverFp}`);
}

export async function fpMac(key: CryptoKey, ownFp: string, peerFp: string): Promise<string> {
  return base64url(new Uint8Array(await crypto.subtle.sign("HMAC", key, message(ownFp, peerFp))));
}

export async function verifyFpMac(key: CryptoKey, mac: string, remoteFp: string, localFp: string): Promise<boolean> {
  try {
    return await crypto.subtle.verify("HMAC", key, fromBase64url(mac), message(remoteFp, localFp));
  } catch {
    return false; // not base64url: not a MAC
  }
}
