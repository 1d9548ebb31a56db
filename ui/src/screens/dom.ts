// A few DOM helpers, so the screens read as what they show.

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

/** Display names: 1–64 characters once trimmed (docs/protocol.md §2). */
export function nameProblem(name: string): string | null {
  const trimmed = name.trim();
  if (!trimmed) return "Enter your name so others know who you are.";
  if ([...trimmed].length > 64) return "A name is at most 64 characters.";
  return null;
}
