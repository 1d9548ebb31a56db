// A clear page for a meeting that cannot be joined: a malformed link, a full room…
import { h } from "./dom";

/** `retry` labels a button that reloads the page, for problems that trying again can solve. */
export function problemScreen(root: HTMLElement, title: string, detail: string, retry: string | null = null): void {
  const reload = retry ? h("button", { type: "button", class: "primary" }, retry) : null;
  reload?.addEventListener("click", () => location.reload());
  root.replaceChildren(
    h(
      "section",
      { class: "card problem", role: "alert" },
      h("h1", {}, title),
      h("p", {}, detail),
      h("div", { class: "row" }, reload, h("a", { href: "/", class: "button" }, "Go to the start page")),
    ),
  );
}
