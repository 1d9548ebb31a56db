// Before joining from a link: who you are.
import { h, nameProblem, rememberedName } from "./dom";

export function prejoinScreen(root: HTMLElement, suggestedName: string | undefined, onJoin: (name: string) => void): void {
  const name = h("input", {
    id: "name",
    type: "text",
    autocomplete: "name",
    maxlength: "64",
    value: rememberedName.get() || suggestedName || "",
  });
  const status = h("p", { class: "status", role: "status" });
  const form = h(
    "form",
    { class: "card prejoin" },
    h("h1", {}, "Join the meeting"),
    h("p", { class: "lede" }, "Your notes and chat go straight to the others, encrypted; the server only introduces you."),
    h("label", { for: "name" }, "Your name"),
    name,
    h("button", { type: "submit", class: "primary" }, "Join"),
    status,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const problem = nameProblem(name.value);
    if (problem) {
      status.textContent = problem;
      status.classList.add("error");
      name.focus();
      return;
    }
    rememberedName.set(name.value.trim());
    onJoin(name.value.trim());
  });
  root.replaceChildren(form);
  name.focus();
}
