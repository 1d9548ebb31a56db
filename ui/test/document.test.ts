import assert from "node:assert/strict";
import { test } from "node:test";
import * as A from "@automerge/automerge/slim";
import { MAX_CHAT_CHARS } from "../src/gen/constants";
import {
  GENESIS_HEAD,
  chatLength,
  chatMessages,
  genesis,
  newActor,
  newChatMessages,
  notesPatchesSince,
  postChat,
  spliceNotes,
  toMarkdown,
} from "../src/link/document";
import "./support";

const message = (text: string) => ({ id: crypto.randomUUID(), author_id: "me", author: "Ada", at: 0, text });

test("every replica starts from confab-core's genesis", () => {
  assert.deepEqual(A.getHeads(genesis(newActor())), [GENESIS_HEAD]);
});

test("chat messages are kept, and empty or over-long ones refused", () => {
  const doc = postChat(genesis(newActor()), message("hello"));
  assert.deepEqual(chatMessages(doc).map((m) => m.text), ["hello"]);
  assert.throws(() => postChat(doc, message(" \u3000\n")), /empty/);
  assert.ok(postChat(doc, message("😀".repeat(MAX_CHAT_CHARS))), "the limit counts characters, not UTF-16 units");
  assert.throws(() => postChat(doc, message("x".repeat(MAX_CHAT_CHARS + 1))), /at most 4096/);
});

test("chat entries of the wrong shape are skipped, not shown half", () => {
  const doc = A.change(genesis(newActor()), (d) => {
    (d.chat as unknown[]).push({ id: "x", text: "no author" }, "not a map");
  });
  assert.deepEqual(chatMessages(postChat(doc, message("ok"))).map((m) => m.text), ["ok"]);
});

test("new chat is found from the end, and a message from a peer long offline further up too", () => {
  const start = postChat(genesis(newActor()), message("first"));
  // Bo goes offline knowing only the first message; Ada says three more meanwhile.
  const offline = postChat(A.clone(start, { actor: newActor() }), message("from offline"));
  let ada = start;
  for (const text of ["two", "three", "four"]) ada = postChat(ada, message(text));
  const seen = new Set(chatMessages(ada).map((m) => m.id));
  const merged = A.merge(A.clone(ada), offline);
  const added = chatLength(merged) - chatLength(ada);
  assert.equal(added, 1);
  assert.deepEqual(newChatMessages(merged, seen, added).map((m) => m.text), ["from offline"]);
  // Two new at once, in list order.
  const more = postChat(postChat(ada, message("five")), message("six"));
  assert.deepEqual(newChatMessages(more, seen, 2).map((m) => m.text), ["five", "six"]);
});

test("others' edits arrive as steps that turn the old text into the new", () => {
  const before = spliceNotes(genesis(newActor()), [{ pos: 0, insert: "a😀c" }]);
  const after = spliceNotes(before, [{ pos: 3, delete: 1 }, { pos: 3, insert: "b" }]);
  const steps = notesPatchesSince(after, A.getHeads(before));
  let text = "a😀c";
  for (const s of steps) text = "insert" in s ? text.slice(0, s.pos) + s.insert + text.slice(s.pos) : text.slice(0, s.pos) + text.slice(s.pos + s.delete);
  assert.equal(text, "a😀b");
});

test("the Markdown export has the title, the notes and the chat", () => {
  let doc = spliceNotes(genesis(newActor()), [{ pos: 0, insert: "- decide\n" }]);
  doc = A.change(doc, (d) => (d.title = "Weekly"));
  const md = toMarkdown(postChat(doc, { ...message("hi"), at: Date.UTC(2025, 0, 2) }));
  assert.equal(md, "# Weekly\n\n- decide\n\n## Chat\n\n- **Ada** (2025-01-02T00:00:00.000Z): hi\n");
});
