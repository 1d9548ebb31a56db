// Shared by the unit tests: the vectors in tests/vectors/, and Automerge's wasm loaded the node
// way (the app's `slim` import leaves loading it to the page).
import "@automerge/automerge";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";

/** One file of tests/vectors/ at the repository root, as JSON. */
export function vectors<T>(file: string): T {
  return JSON.parse(readFileSync(new URL(`../../tests/vectors/${file}`, import.meta.url), "utf8")) as T;
}

export const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString("hex");
export const fromHex = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, "hex"));
export const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");

/** A payload of the snapshot vectors: `{hex}` or `{len, seed}` with byte i = (seed + i) mod 251. */
export function payload(spec: { hex?: string; len?: number; seed?: number }): Uint8Array {
  if (spec.hex !== undefined) return fromHex(spec.hex);
  const { len = 0, seed = 0 } = spec;
  return Uint8Array.from({ length: len }, (_, i) => (seed + i) % 251);
}
