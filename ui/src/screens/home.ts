// Home: your name, a new meeting, or a pasted link.
import type { RoomId } from "../gen/protocol";
import { PROBLEM_TEXT, meetingLinkText, parseMeetingLink, randomKey } from "../link/meeting-url";
import { h, nameField, rememberedName } from "./dom";

export function homeScreen(root: HTMLElement): void {
  const name = nameField(rememberedName.get());
  const link = h("input", { id: "link", type: "url", placeholder: "https://…/m/…#k=…", spellcheck: "false" });
  const newMeeting = h("button", { type: "button", class: "primary" }, "New meeting");
  const join = h("button", { type: "submit" }, "Join");
  const status = h("p", { class: "status", role: "status" });

  const checkName = (): boolean => {
    const checked = name.check();
    if (checked !== null) rememberedName.set(checked);
    return checked !== null;
  };

  newMeeting.addEventListener("click", async () => {
    if (!checkName()) return;
    newMeeting.disabled = true;
    status.classList.remove("error");
    status.textContent = "Creating a meeting…";
    try {
      const response = await fetch("api/meetings", { method: "POST" });
      if (!response.ok) throw new Error(`the server answered ${response.status}`);
      const { link: roomLink } = (await response.json()) as { room: RoomId; link: string };
      // The key is made here and lives only in the fragment: the server never sees it.
      location.assign(`${roomLink}#k=${randomKey()}`);
    } catch (e) {
      status.textContent = `Could not create a meeting: ${e instanceof Error ? e.message : String(e)}`;
      status.classList.add("error");
      newMeeting.disabled = false;
    }
  });

  const form = h("form", { class: "join-form" }, h("label", { for: "link" }, "Meeting link"), h("div", { class: "row" }, link, join));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!checkName()) return;
    const parsed = parseMeetingLink(link.value);
    if (typeof parsed === "string") {
      status.textContent = PROBLEM_TEXT[parsed];
      status.classList.add("error");
      link.focus();
      return;
    }
    location.assign(meetingLinkText(parsed));
  });

  root.replaceChildren(
    h(
      "section",
      { class: "card home" },
      h("h1", {}, "Confab"),
      h("p", { class: "lede" }, "Meetings with shared notes, straight between the people in them."),
      h("label", { for: "name" }, "Your name"),
      name.input,
      name.problem,
      newMeeting,
      h("div", { class: "divider", role: "separator" }, "or join one"),
      form,
      status,
    ),
  );
  if (!name.input.value) name.input.focus();
}
