// The mesh rules confab-core and the browser settled on (issue 10), as BrowserLink applies them.
import assert from "node:assert/strict";
import { test } from "node:test";
import { lostPeerNotice, onRejoin, opensConnection, relayProblemNotice } from "../src/link/mesh";
import { isRefusal } from "../src/link/signaling";
import { refusalText } from "../src/screens/refusal";
import type { ErrorCode, SignalData } from "../src/gen/protocol";

const offer: SignalData = { sdp: { type: "offer", sdp: "v=0" } };
const answer: SignalData = { sdp: { type: "answer", sdp: "v=0" } };

test("on a rejoin, verified connections are re-keyed and half-made ones closed", () => {
  const plan = onRejoin([
    ["verified", { verified: true }],
    ["half-made", { verified: false }],
  ]);
  assert.deepEqual(plan, { rekey: ["verified"], close: ["half-made"] });
});

test("only an offer from a peer signaling announced opens a connection", () => {
  assert.equal(opensConnection(offer, true, false), true);
  assert.equal(opensConnection(offer, false, false), false, "an offer from a stranger is dropped");
  assert.equal(opensConnection(offer, true, true), false, "an offer on a connection is a renegotiation");
  assert.equal(opensConnection(answer, true, false), false);
  assert.equal(opensConnection({ candidate: null }, true, false), false);
});

test("a peer given up on is named in the notice, with the reason", () => {
  assert.match(lostPeerNotice("Bo", { kind: "intercepted" }), /Bo.*may be intercepted/);
  assert.match(lostPeerNotice("Bo", { kind: "failed", reason: "the connection failed" }), /Bo.*the connection failed/);
});

test("a relay's failure is told by kind: refused credentials, another refusal, no answer", () => {
  const url = "turn:relay.example:3478?transport=udp";
  assert.match(relayProblemNotice(url, 401, "Unauthorized."), /relay\.example.*refused this meeting's credentials \(401 Unauthorized\.\): they have expired/);
  assert.match(relayProblemNotice(url, 486, "Allocation Quota Reached"), /refused to relay for us \(486 Allocation Quota Reached\)/);
  assert.match(relayProblemNotice(url, 701, ""), /cannot be reached \(701\); peers that can meet only through it will not connect/);
});

const ALL: ErrorCode[] = [
  "bad_message", "too_large", "not_joined", "already_joined", "bad_room", "room_full", "bad_token",
  "unknown_peer", "rate_limited", "unsupported_version", "too_slow", "shutting_down", "join_timeout", "unavailable", "unknown",
];

test("before the welcome, an error answers the join: it is a refusal unless it is passing", () => {
  for (const code of ["bad_message", "join_timeout", "room_full", "unsupported_version", "bad_room", "bad_token"] as const) {
    assert.equal(isRefusal(code, false), true, code);
  }
  for (const code of ["shutting_down", "too_slow", "rate_limited", "unknown_peer", "unavailable"] as const) {
    assert.equal(isRefusal(code, false), false, code);
  }
  // A signal sent while we rejoin, before the new welcome, is answered `not_joined`: no refusal.
  assert.equal(isRefusal("not_joined", false), false);
  assert.equal(isRefusal("already_joined", false), false);
  // In the meeting, a bad message of ours is logged, not a reason to leave.
  assert.equal(isRefusal("bad_message", true), false);
  assert.equal(isRefusal("room_full", true), true);
  // A restarted server with access tokens forgets that our meeting was open until someone with a
  // token is back: once we have been in, we wait for them, even before this socket's welcome.
  assert.equal(isRefusal("bad_token", false, true), false);
  assert.equal(isRefusal("bad_token", true), false);
});

test("every refusal says what happened and what to do", () => {
  for (const code of ALL.filter((c) => isRefusal(c, false))) {
    const { title, detail } = refusalText(code, "the server's words");
    assert.ok(title && /\b(try again|reload|ask)\b/i.test(detail), `${code}: ${detail}`);
  }
  assert.match(refusalText("room_full", "this meeting is full (8 people)").detail, /8 people/);
  assert.match(refusalText("unsupported_version", "").title, /out of date/);
  assert.match(refusalText("bad_token", "this meeting is not open on this server").title, /not started/);
  assert.match(refusalText("bad_token", "this server refused your access token").title, /token was refused/);
  assert.match(refusalText("bad_message", "bad join message: name must not contain control").detail, /name must not contain/);
});
