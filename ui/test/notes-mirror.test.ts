// The desktop window's notes against a model of the engine: local typing, remote edits and
// late reports interleaved at random (replayable seeds). The window must end showing exactly
// the engine's text, and every change it is handed must apply exactly to what it shows.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { NotesPatch } from "../src/link/document";
import { NotesMirror, applySteps, diff } from "../src/link/notes-mirror";

/** mulberry32: a small seeded generator, so a failing seed replays. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomStep(text: string, next: () => number): NotesPatch {
  const pos = Math.floor(next() * (text.length + 1));
  if (text.length > pos && next() < 0.35) return { pos, delete: 1 + Math.floor(next() * Math.min(3, text.length - pos)) };
  return { pos, insert: "abcxyz😀"[Math.floor(next() * 7)] ?? "a" };
}

/** The engine as the link sees it: commands applied in order (refused when out of range, as
 * confab-core's `splice_notes` refuses), every change reported on a channel that may lag. */
function run(seed: number): void {
  const next = random(seed);
  const mirror = new NotesMirror();
  let editor = "";
  let engine = "";
  const commands: NotesPatch[] = [];
  const reports: { text: string; patches: NotesPatch[] }[] = [];
  const show = (change: { text: string; patches: NotesPatch[] } | null) => {
    if (!change) return;
    assert.equal(applySteps(editor, change.patches), change.text, `seed ${seed}: a change that does not apply to what is shown`);
    editor = change.text;
  };
  const engineApplies = () => {
    const step = commands.shift()!;
    const inRange = "insert" in step ? step.pos <= engine.length : step.pos + step.delete <= engine.length;
    if (!inRange) {
      // Refused: the link asks for the notes, which the engine answers after the commands
      // before; the answer may overtake reports still on their way.
      while (commands.length > 0) engineApplies();
      const overtaken = Math.floor(next() * (reports.length + 1));
      while (reports.length > overtaken) show(mirror.reported(reports[0].text, reports.shift()!.patches));
      show(mirror.reset(engine));
      return;
    }
    engine = applySteps(engine, [step]);
    reports.push({ text: engine, patches: [step] });
  };
  for (let i = 0; i < 400; i++) {
    const roll = next();
    if (roll < 0.35) {
      const step = randomStep(editor, next);
      editor = applySteps(editor, [step]);
      commands.push(...mirror.local([step]));
    } else if (roll < 0.5) {
      const step = randomStep(engine, next);
      engine = applySteps(engine, [step]);
      reports.push({ text: engine, patches: [step] });
    } else if (roll < 0.75 && commands.length > 0) {
      engineApplies();
    } else if (reports.length > 0) {
      const report = reports.shift()!;
      show(mirror.reported(report.text, report.patches));
    }
    assert.equal(editor, mirror.shown(), `seed ${seed}: the editor and the mirror disagree`);
  }
  while (commands.length > 0) engineApplies();
  while (reports.length > 0) show(mirror.reported(reports[0].text, reports.shift()!.patches));
  assert.equal(editor, engine, `seed ${seed}: the window ends showing other notes than the engine's`);
}

test("the window's notes end as the engine's, whatever the interleaving", () => {
  for (let seed = 1; seed <= 300; seed++) run(seed);
});

test("our own edit reported back changes nothing on screen", () => {
  const mirror = new NotesMirror();
  mirror.local([{ pos: 0, insert: "hi" }]);
  assert.equal(mirror.shown(), "hi");
  assert.equal(mirror.reported("hi", [{ pos: 0, insert: "hi" }]), null);
});

test("someone's edit while ours is on its way is shown under ours", () => {
  const mirror = new NotesMirror();
  mirror.local([{ pos: 0, insert: "A" }]);
  // The engine applied a remote "xy" first; our "A" will land at position 0 of that.
  const change = mirror.reported("xy", [{ pos: 0, insert: "xy" }]);
  assert.deepEqual(change, { text: "Axy", patches: [{ pos: 1, insert: "xy" }] });
  assert.equal(mirror.reported("Axy", [{ pos: 0, insert: "A" }]), null);
});

test("diff replaces only what lies between the common start and end", () => {
  assert.deepEqual(diff("hello world", "hello brave world"), [{ pos: 6, insert: "brave " }]);
  assert.deepEqual(diff("aaa", "aa"), [{ pos: 2, delete: 1 }]);
  assert.deepEqual(diff("same", "same"), []);
});
