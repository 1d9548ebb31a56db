// A few DOM helpers, so the screens read as what they show.
import { MAX_NAME_CHARS } from "../gen/constants";
import { checkDisplayName } from "../link/text";

type Attrs = Record<string, string | boolean | undefined>;
type Child = Node | string | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    node.setAttribute(name, value === true ? "" : value);
  }
  append(node, ...children);
  return node;
}

export function append(parent: Element, ...children: Child[]): void {
  for (const child of children) if (child) parent.append(child);
}

/** The name people gave last time, remembered in this browser. */
export const rememberedName = {
  get(): string {
    return localStorage.getItem("confab.name") ?? "";
  },
  set(name: string): void {
    localStorage.setItem("confab.name", name);
  },
};

/** Stable per browser profile: chat's `author_id`. */
export function authorId(): string {
  let id = localStorage.getItem("confab.author_id");
  if (!id) {
    id = crypto.randomUUID();
    localStorage.setItem("confab.author_id", id);
  }
  return id;
}

/** What is wrong with a display name, in words, or null when the server will take it. */
function nameProblem(name: string): string | null {
  const checked = checkDisplayName(name);
  if (checked.ok) return null;
  if (checked.problem === "name_characters") {
    return `Your name holds an invisible, control or text-direction character (${checked.char}), which could make it look like someone else's. Remove it.`;
  }
  if (checked.chars === 0) return "Enter your name so others know who you are.";
  return `A name is at most ${MAX_NAME_CHARS} characters; this one has ${checked.chars}.`;
}

export interface NameField {
  input: HTMLInputElement;
  /** Where what is wrong with the name shows, right under the field. */
  problem: HTMLParagraphElement;
  /** The name as the server will take it (trimmed), or null after showing what is wrong. */
  check(): string | null;
}

/** The "Your name" input (id `name`), checked as the signaling service checks names, so a name it
 * would refuse is caught here, said beside the field, and never sent. */
export function nameField(value: string): NameField {
  const problem = h("p", { id: "name-problem", class: "field-problem", hidden: true });
  const input = h("input", { id: "name", type: "text", autocomplete: "name", value, "aria-describedby": "name-problem" });
  const show = (text: string | null) => {
    problem.textContent = text ?? "";
    problem.hidden = text === null;
    input.toggleAttribute("aria-invalid", text !== null);
  };
  // While typing, an empty field is not yet a mistake; anything else the server refuses is.
  const live = () => show(input.value === "" ? null : nameProblem(input.value));
  input.addEventListener("input", live);
  live();
  return {
    input,
    problem,
    check() {
      const text = nameProblem(input.value);
      show(text);
      if (text !== null) {
        input.focus();
        return null;
      }
      const checked = checkDisplayName(input.value);
      return checked.ok ? checked.name : null;
    },
  };
}
