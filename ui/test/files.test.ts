import assert from "node:assert/strict";
import { test } from "node:test";
import { BROWSER_MAX_FILE_BYTES, MAX_WAITING_FILE_OFFERS } from "../src/gen/constants";
import { offerProblem, safeFileName } from "../src/link/files";

const offer = (change: Record<string, unknown> = {}) =>
  ({ type: "file_offer", id: "1b4e28ba-2fa1-41d2-883f-0016d3cca427", name: "a.pdf", size: 10, sha256: "ab".repeat(32), ...change }) as const;

test("a good offer is shown", () => {
  assert.equal(offerProblem(offer(), 0, false), null);
  assert.equal(offerProblem(offer({ size: BROWSER_MAX_FILE_BYTES }), MAX_WAITING_FILE_OFFERS - 1, false), null);
});

test("a peer may keep at most MAX_WAITING_FILE_OFFERS offers waiting", () => {
  assert.equal(offerProblem(offer(), MAX_WAITING_FILE_OFFERS, false), "16 offers are already waiting for an answer");
});

test("an offer over the browser's limit, with a reused id or with the wrong types is cancelled", () => {
  assert.equal(offerProblem(offer({ size: BROWSER_MAX_FILE_BYTES + 1 }), 0, false), "the file is 536870913 bytes; the limit is 536870912");
  assert.equal(offerProblem(offer(), 0, true), "a transfer with that id is already under way");
  assert.equal(offerProblem(offer({ size: -1 }), 0, false), "the size is not a number of bytes");
  assert.equal(offerProblem(offer({ size: "10" }), 0, false), "the size is not a number of bytes");
  assert.equal(offerProblem(offer({ name: 7 }), 0, false), "the file has no name");
  assert.equal(offerProblem(offer({ id: 7 }), 0, false), "the offer is malformed");
});

test("received names are cut down to something safe to save", () => {
  assert.equal(safeFileName("../../etc/passwd"), "passwd");
  assert.equal(safeFileName("C:\\Users\\a\\report.pdf"), "report.pdf");
  assert.equal(safeFileName(".hidden"), "hidden");
  assert.equal(safeFileName("evil\u202egnp.exe"), "evilgnp.exe");
  assert.equal(safeFileName('a<b>:"|?*.txt'), "ab.txt");
  assert.equal(safeFileName(""), "file");
  assert.equal(new TextEncoder().encode(safeFileName("é".repeat(300))).length, 200);
});
