// The notes editor: CodeMirror 6 with Markdown. Our edits go to the link as splice steps; the
// others' arrive as patches and are applied without moving our cursor.
import { defaultKeymap, history, historyKeymap } from "@codemirror/commands";
import { markdown } from "@codemirror/lang-markdown";
import { Annotation, EditorState, Transaction } from "@codemirror/state";
import { EditorView, keymap, placeholder } from "@codemirror/view";
import type { NotesPatch } from "../link/document";

/** Marks transactions that carry someone else's edit, so they are not sent back. */
const remote = Annotation.define<boolean>();

export class NotesEditor {
  readonly view: EditorView;

  /** An empty editor: the link reports the notes it holds as a first patch. */
  constructor(parent: HTMLElement, onEdit: (patches: NotesPatch[]) => void) {
    this.view = new EditorView({
      parent,
      state: EditorState.create({
        extensions: [
          history(),
          keymap.of([...defaultKeymap, ...historyKeymap]),
          markdown(),
          EditorView.lineWrapping,
          placeholder("Meeting notes, in Markdown. Everyone here can write."),
          EditorView.contentAttributes.of({ "aria-label": "Notes" }),
          EditorView.updateListener.of((update) => {
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
