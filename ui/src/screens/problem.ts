// A clear page for a meeting that cannot be joined: a malformed link, a full room…
import { h } from "./dom";

export function problemScreen(root: HTMLElement, title: string, detail: string): void {
  root.replaceChildren(
    h(
      "section",
      { class: "card problem", role: "alert" },
      h("h1", {}, title),
      h("p", {}, detail),
      h("a", { href: "/", class: "button" }, "Go to the start page"),
    ),
  );
}
