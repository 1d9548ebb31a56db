// Home: your name, a new meeting, or a pasted link.
import type { RoomId } from "../gen/protocol";
import { type MeetingAddress, PROBLEM_TEXT, meetingLinkText, parseMeetingLink, randomKey } from "../link/meeting-url";
import { h, nameField, rememberedName } from "./dom";
import { rememberAccessToken } from "../link/access-token";

/** What the buttons do: in a browser, go to the meeting's page; in the desktop app, open it in
 * the window. */
export interface HomeActions {
  /** Creates a meeting and opens it; throws to say why it could not ([`NeedsAccessToken`] when
   * the server makes meetings only for holders of an access token). */
  newMeeting(name: string, accessToken?: string): Promise<void>;
  openMeeting(address: MeetingAddress, name: string): void;
  /** Meetings to reopen, newest first (the desktop app keeps them). */
  recent?(): Promise<{ link: string; title: string; openedAt: Date }[]>;
  /** Opens the settings (the desktop app has them). */
  settings?(): void;
}

export interface HomeOptions {
  /** The meeting link to fill in, for a meeting the person was sent to. */
  link?: string;
  name?: string;
  /** Something to say at once (shown in the status line). */
  notice?: string;
}

/** The server makes meetings only for holders of an access token, and was given none or a wrong one. */
export class NeedsAccessToken extends Error {
  constructor(readonly refused: boolean) {
    super(refused ? "the server refused this access token" : "this server makes meetings only for holders of an access token");
  }
}

/** The browser's: the server creates the room, the key is made here. */
export const browserHome: HomeActions = {
  async newMeeting(_name, accessToken) {
    // A meeting made is open to its link, so the join that follows needs no token; the tab keeps
    // it all the same, to open the meeting again should the server restart.
    const headers: Record<string, string> = accessToken ? { Authorization: `Bearer ${accessToken}` } : {};
    const response = await fetch("api/meetings", { method: "POST", headers });
    if (response.status === 401) throw new NeedsAccessToken(accessToken !== undefined);
    if (!response.ok) throw new Error(`the server answered ${response.status}`);
    if (accessToken) rememberAccessToken(accessToken);
    const { link: roomLink } = (await response.json()) as { room: RoomId; link: string };
    // The key is made here and lives only in the fragment: the server never sees it.
    location.assign(`${roomLink}#k=${randomKey()}`);
  },
  openMeeting(address) {
    location.assign(meetingLinkText(address));
  },
};

export function homeScreen(root: HTMLElement, actions: HomeActions = browserHome, options: HomeOptions = {}): void {
  const name = nameField(options.name ?? rememberedName.get());
  const linkInput = h("input", { id: "link", type: "url", placeholder: "https://…/m/…#k=…", spellcheck: "false", value: options.link ?? "" });
  const newMeeting = h("button", { type: "button", class: "primary" }, "New meeting");
  // Shown only once the server asks for one.
  const tokenInput = h("input", { id: "access-token", type: "password", autocomplete: "off", spellcheck: "false" });
  const tokenField = h("div", { class: "access-token", hidden: true }, h("label", { for: "access-token" }, "Access token"), tokenInput);
  const join = h("button", { type: "submit" }, "Join");
  const status = h("p", { class: "status", role: "status" });

  const checkName = (): string | null => {
    const checked = name.check();
    if (checked !== null) rememberedName.set(checked);
    return checked;
  };

  newMeeting.addEventListener("click", async () => {
    const you = checkName();
    if (you === null) return;
    newMeeting.disabled = true;
    status.classList.remove("error");
    status.textContent = "Creating a meeting…";
    const token = tokenField.hidden ? undefined : tokenInput.value.trim();
    try {
      await actions.newMeeting(you, token || undefined);
    } catch (e) {
      if (e instanceof NeedsAccessToken) {
        tokenField.hidden = false;
        tokenInput.focus();
        status.textContent = e.refused
          ? "The server refused this access token. Check it, then press New meeting again."
          : "This server makes meetings only for people with an access token. Enter yours, then press New meeting again.";
      } else {
        status.textContent = `Could not create a meeting: ${e instanceof Error ? e.message : String(e)}`;
      }
      status.classList.add("error");
      newMeeting.disabled = false;
    }
  });

  const settings = actions.settings && h("button", { type: "button", class: "small settings-button" }, "Settings");
  settings?.addEventListener("click", () => actions.settings?.());

  const recentList = h("ul", { class: "recent", "aria-label": "Recent meetings", hidden: true });
  const showRecent = async () => {
    const meetings = (await actions.recent?.().catch(() => [])) ?? [];
    recentList.hidden = meetings.length === 0;
    recentList.replaceChildren(
      ...meetings.map((meeting) => {
        const open = h("button", { type: "button", class: "small" }, "Open");
        open.addEventListener("click", () => {
          const you = checkName();
          const address = parseMeetingLink(meeting.link);
          if (you !== null && typeof address !== "string") actions.openMeeting(address, you);
        });
        const when = meeting.openedAt.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
        return h("li", {}, h("span", { class: "recent-title" }, meeting.title || "Untitled meeting"), h("span", { class: "recent-when" }, when), open);
      }),
    );
  };

  const form = h("form", { class: "join-form" }, h("label", { for: "link" }, "Meeting link"), h("div", { class: "row" }, linkInput, join));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const you = checkName();
    if (you === null) return;
    const parsed = parseMeetingLink(linkInput.value);
    if (typeof parsed === "string") {
      status.textContent = PROBLEM_TEXT[parsed];
      status.classList.add("error");
      linkInput.focus();
      return;
    }
    actions.openMeeting(parsed, you);
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
      tokenField,
      newMeeting,
      h("div", { class: "divider", role: "separator" }, "or join one"),
      form,
      recentList,
      status,
      settings,
    ),
  );
  if (options.notice) status.textContent = options.notice;
  if (!name.input.value) name.input.focus();
  void showRecent();
}
