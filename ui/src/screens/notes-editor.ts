// The notes editor: CodeMirror 6 with Markdown. Our edits go to the link as splice steps; the
// others' arrive as patches and are applied without moving our cursor.
import { defaultKeymap, history, historyKeymap } from "@codemirror/commands";
import { markdown } from "@codemirror/lang-markdown";
import { Annotation, EditorState, type Range, StateEffect, StateField, Transaction } from "@codemirror/state";
import { Decoration, type DecorationSet, EditorView, WidgetType, keymap, placeholder } from "@codemirror/view";
import { CURSOR_SEND_INTERVAL_MS } from "../gen/constants";
import type { NotesPatch } from "../link/document";
import type { RemoteCursor } from "../link/meeting-link";

/** Marks transactions that carry someone else's edit, so they are not sent back. */
const remote = Annotation.define<boolean>();

/** A colour per person, the same on every screen. */
function hue(peer: string): number {
  let h = 0;
  for (const c of peer) h = (h * 31 + c.charCodeAt(0)) % 360;
  return h;
}

/** The others' carets: a thin bar with their name. */
class Caret extends WidgetType {
  constructor(
    readonly name: string,
    readonly hue: number,
  ) {
    super();
  }
  override eq(other: Caret): boolean {
    return other.name === this.name && other.hue === this.hue;
  }
  toDOM(): HTMLElement {
    const caret = document.createElement("span");
    caret.className = "cm-remote-caret";
    caret.style.setProperty("--who", `${this.hue}`);
    caret.setAttribute("aria-hidden", "true");
    const label = document.createElement("span");
    label.className = "cm-remote-name";
    label.textContent = this.name;
    caret.append(label);
    return caret;
  }
}

const setCursors = StateEffect.define<RemoteCursor[]>();

/** The others' selections; they move with our own typing until the next update replaces them. */
const remoteCursors = StateField.define<DecorationSet>({
  create: () => Decoration.none,
  update(decorations, tr) {
    for (const effect of tr.effects) {
      if (!effect.is(setCursors)) continue;
      const length = tr.state.doc.length;
      const ranges: Range<Decoration>[] = [];
      for (const c of effect.value) {
        const [anchor, head] = [Math.min(c.anchor, length), Math.min(c.head, length)];
        const style = `--who: ${hue(c.peer)}`;
        if (anchor !== head) {
          ranges.push(
            Decoration.mark({ class: "cm-remote-selection", attributes: { style } }).range(Math.min(anchor, head), Math.max(anchor, head)),
          );
        }
        ranges.push(Decoration.widget({ widget: new Caret(c.name, hue(c.peer)), side: 1 }).range(head));
      }
      return Decoration.set(ranges, true);
    }
    return decorations.map(tr.changes);
  },
  provide: (field) => EditorView.decorations.from(field),
});

export class NotesEditor {
  readonly view: EditorView;

  private cursorTimer: number | undefined;

  /** An empty editor: the link reports the notes it holds as a first patch. `onCursor` hears
   * where our selection is (null once we leave the notes). */
  constructor(
    parent: HTMLElement,
    onEdit: (patches: NotesPatch[]) => void,
    onCursor: (selection: { anchor: number; head: number } | null) => void,
  ) {
    const sendCursor = (view: EditorView) => {
      clearTimeout(this.cursorTimer);
      this.cursorTimer = window.setTimeout(() => {
        const { anchor, head } = view.state.selection.main;
        onCursor(view.hasFocus ? { anchor, head } : null);
      }, CURSOR_SEND_INTERVAL_MS);
    };
    this.view = new EditorView({
      parent,
      state: EditorState.create({
        extensions: [
          // Positions are shared with other editors as they are: no CR-to-LF rewriting here.
          EditorState.lineSeparator.of("\n"),
          history(),
          keymap.of([...defaultKeymap, ...historyKeymap]),
          markdown(),
          EditorView.lineWrapping,
          placeholder("Meeting notes, in Markdown. Everyone here can write."),
          EditorView.contentAttributes.of({ "aria-label": "Notes" }),
          remoteCursors,
          EditorView.updateListener.of((update) => {
            if (update.selectionSet || update.focusChanged) sendCursor(update.view);
            if (!update.docChanged || update.transactions.some((tr) => tr.annotation(remote))) return;
            // Change positions refer to the old text: shift each by what the earlier ones did.
            const steps: NotesPatch[] = [];
            let shift = 0;
            update.changes.iterChanges((fromA, toA, _fromB, _toB, inserted) => {
              const pos = fromA + shift;
              if (toA > fromA) steps.push({ pos, delete: toA - fromA });
              if (inserted.length) steps.push({ pos, insert: inserted.toString() });
              shift += inserted.length - (toA - fromA);
            });
            onEdit(steps);
          }),
        ],
      }),
    });
  }

  /** Shows where the others are in the notes. */
  showCursors(cursors: RemoteCursor[]): void {
    this.view.dispatch({ effects: setCursors.of(cursors) });
  }

  /** Someone else's edit: steps in order, each against the text the previous one left. */
  applyRemote(patches: NotesPatch[], expected: string): void {
    for (const step of patches) {
      const changes =
        "insert" in step ? { from: step.pos, insert: step.insert } : { from: step.pos, to: step.pos + step.delete };
      this.view.dispatch({ changes, annotations: [remote.of(true), Transaction.addToHistory.of(false)] });
    }
    // Patches are exact; should the editor ever disagree, the document wins.
    if (this.view.state.doc.toString() !== expected) {
      this.view.dispatch({
        changes: { from: 0, to: this.view.state.doc.length, insert: expected },
        annotations: [remote.of(true), Transaction.addToHistory.of(false)],
      });
    }
  }
}
