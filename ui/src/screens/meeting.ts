// The meeting: participants, the shared notes and the chat.
import type { ChatMessage } from "../gen/protocol";
import type { LinkEvent, MeetingLink, MeetingState, Participant } from "../link/meeting-link";
import { h } from "./dom";
import { NotesEditor } from "./notes-editor";

export interface MeetingScreenOptions {
  link: MeetingLink;
  selfName: string;
  inviteLink: string;
  onLeft: () => void;
  onRefused: (code: string, message: string) => void;
}

const STATUS_TEXT: Record<Participant["status"], string> = {
  connecting: "connecting…",
  connected: "connected",
  reconnecting: "reconnecting…",
  failed: "could not connect",
  intercepted: "this connection may be intercepted",
};

export function meetingScreen(root: HTMLElement, options: MeetingScreenOptions): void {
  const { link } = options;
  const banner = h("p", { class: "banner", role: "status" }, "Connecting…");
  const copy = h("button", { type: "button" }, "Copy invite link");
  const leave = h("button", { type: "button", class: "danger" }, "Leave");
  const participants = h("ul", { class: "participants", "aria-label": "Participants" });
  const chatLog = h("ol", { class: "chat-log", role: "log", "aria-label": "Chat", "aria-live": "polite" });
  const message = h("input", { type: "text", "aria-label": "Message", maxlength: "4096", autocomplete: "off" });
  const send = h("button", { type: "submit" }, "Send");
  const unread = h("span", { class: "badge", hidden: true, "aria-label": "unread messages" });
  const chatForm = h("form", { class: "chat-form" }, message, send);
  const notesHost = h("div", { class: "notes-host" });
  const saved = h("span", { class: "saved", role: "status" });
  const chatPanel = h(
    "section",
    { class: "panel chat", "aria-labelledby": "chat-heading" },
    h("h2", { id: "chat-heading" }, "Chat ", unread),
    chatLog,
    chatForm,
  );

  root.replaceChildren(
    h(
      "div",
      { class: "meeting" },
      h("header", { class: "topbar" }, h("h1", {}, "Confab"), banner, h("div", { class: "actions" }, copy, leave)),
      h(
        "section",
        { class: "panel people", "aria-labelledby": "people-heading" },
        h("h2", { id: "people-heading" }, "People"),
        participants,
      ),
      h("section", { class: "panel notes", "aria-labelledby": "notes-heading" }, h("div", { class: "panel-head" }, h("h2", { id: "notes-heading" }, "Notes"), saved), notesHost),
      chatPanel,
    ),
  );

  const selfItem = h(
    "li",
    { class: "participant self" },
    h("span", { class: "name" }, options.selfName),
    h("span", { class: "state" }, "you"),
  );
  participants.append(selfItem);
  const editor = new NotesEditor(notesHost, (patches) => link.editNotes(patches));
  const openedAt = Date.now();
  let unreadCount = 0;
  const markRead = () => {
    unreadCount = 0;
    unread.hidden = true;
  };
  chatPanel.addEventListener("focusin", markRead);

  const showState = (state: MeetingState) => {
    banner.classList.remove("warn", "error");
    switch (state.phase) {
      case "connecting":
        banner.textContent = "Connecting…";
        break;
      case "joined":
        banner.textContent = "In the meeting";
        break;
      case "reconnecting":
        banner.textContent = `Reconnecting (${state.reason}). Your notes are kept and sent once you are back.`;
        banner.classList.add("warn");
        break;
      case "refused":
        options.onRefused(state.code, state.message);
        break;
      case "left":
        options.onLeft();
        break;
    }
  };

  link.subscribe((event: LinkEvent) => {
    switch (event.type) {
      case "state":
        return showState(event.state);
      case "participants":
        return participants.replaceChildren(selfItem, ...event.participants.map(participantItem));
      case "chat": {
        const atBottom = chatLog.scrollTop + chatLog.clientHeight >= chatLog.scrollHeight - 4;
        chatLog.append(chatItem(event.message));
        if (atBottom) chatLog.scrollTop = chatLog.scrollHeight;
        // History from before we opened the meeting is not news.
        if (event.message.at >= openedAt && !chatPanel.contains(document.activeElement)) {
          unreadCount += 1;
          unread.textContent = String(unreadCount);
          unread.hidden = false;
        }
        return;
      }
      case "notes":
        return editor.applyRemote(event.patches, event.text);
      case "stored":
        saved.textContent = event.upToDate ? "Saved in this browser" : "Saving…";
        return;
      case "title":
        document.title = event.title ? `${event.title} · Confab` : "Confab";
        return;
      case "error":
        banner.textContent = event.message;
        banner.classList.add("error");
        return;
    }
  });

  chatForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = message.value;
    if (!text.trim()) return;
    link.say(text);
    message.value = "";
    chatLog.scrollTop = chatLog.scrollHeight;
  });
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(options.inviteLink);
      copy.textContent = "Copied";
    } catch {
      window.prompt("Copy this invite link:", options.inviteLink);
    }
    window.setTimeout(() => (copy.textContent = "Copy invite link"), 2000);
  });
  leave.addEventListener("click", () => void link.leave());
  window.addEventListener("keydown", (event) => {
    // Alt+C focuses the chat.
    if (event.altKey && event.key.toLowerCase() === "c") {
      event.preventDefault();
      message.focus();
    }
  });
}

function participantItem(p: Participant): HTMLLIElement {
  const quality = p.stats?.rttMs == null ? "" : ` · ${Math.round(p.stats.rttMs)} ms`;
  return h(
    "li",
    { class: `participant ${p.status}`, "data-peer": p.id },
    h("span", { class: "name" }, p.name),
    h("span", { class: "state" }, STATUS_TEXT[p.status] + (p.status === "connected" ? quality : "")),
  );
}

function chatItem(m: ChatMessage): HTMLLIElement {
  const at = new Date(m.at);
  return h(
    "li",
    { class: "message" },
    h("span", { class: "author" }, m.author),
    h("time", { datetime: at.toISOString() }, at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })),
    h("p", {}, m.text),
  );
}
