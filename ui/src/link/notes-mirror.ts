// The notes as the desktop window shows them while the engine (in Rust) holds the document:
// our edits are shown at once and sent, and the engine reports every change back, ours
// included. Pure: the link feeds it and shows what it answers.
import type { NotesPatch } from "./document";

export class NotesMirror {
  /** The notes as the engine last reported them. */
  private engineText = "";
  /** Our edits sent and not yet reported back, one step per command, in order. */
  private pending: NotesPatch[] = [];

  /** What the editor shows: the engine's text with our edits on their way applied. */
  shown(): string {
    return applySteps(this.engineText, this.pending);
  }

  /** Our own edit, already in the editor; answers the steps worth sending (the engine never
   * reports a step that changes nothing, so those are dropped). */
  local(steps: readonly NotesPatch[]): NotesPatch[] {
    const sent = steps.filter((step) => ("insert" in step ? step.insert !== "" : step.delete > 0));
    this.pending.push(...sent);
    return sent;
  }

  /** The engine reports `text`, reached by `patches` from its previous report. Answers what
   * the editor must do to show the new `shown()`, or null when it shows it already. */
  reported(text: string, patches: readonly NotesPatch[]): { text: string; patches: NotesPatch[] } | null {
    const next = this.pending[0];
    if (next !== undefined && applySteps(this.engineText, [next]) === text) {
      // Our own edit, back from the engine.
      this.pending.shift();
      this.engineText = text;
      return null;
    }
    // Someone else's edit. Ours still on their way land on top of it, by their positions, as
    // the engine will apply them.
    const before = this.shown();
    // The engine's patches start from its previous report, which the editor shows only when
    // none of ours are on their way (and no reset jumped ahead of the report).
    const exact = this.pending.length === 0 && applySteps(this.engineText, patches) === text;
    this.engineText = text;
    const after = this.shown();
    return { text: after, patches: exact ? [...patches] : diff(before, after) };
  }

  /** The engine's whole text, when our edits' fate is unknown (one was refused): it wins. */
  reset(text: string): { text: string; patches: NotesPatch[] } | null {
    const before = this.shown();
    this.pending = [];
    this.engineText = text;
    return before === text ? null : { text, patches: diff(before, text) };
  }
}

/** `text` with `steps` applied in order (UTF-16 positions, as JS strings count). */
export function applySteps(text: string, steps: readonly NotesPatch[]): string {
  for (const step of steps) {
    const pos = Math.min(step.pos, text.length);
    text = "insert" in step ? text.slice(0, pos) + step.insert + text.slice(pos) : text.slice(0, pos) + text.slice(pos + step.delete);
  }
  return text;
}

/** Steps turning `from` into `to`: what lies between their common start and end replaced. */
export function diff(from: string, to: string): NotesPatch[] {
  let start = 0;
  while (start < from.length && start < to.length && from[start] === to[start]) start++;
  let end = 0;
  const most = Math.min(from.length, to.length) - start;
  while (end < most && from[from.length - 1 - end] === to[to.length - 1 - end]) end++;
  const steps: NotesPatch[] = [];
  if (from.length - start - end > 0) steps.push({ pos: start, delete: from.length - start - end });
  if (to.length - start - end > 0) steps.push({ pos: start, insert: to.slice(start, to.length - end) });
  return steps;
}
