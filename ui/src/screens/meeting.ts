// The meeting: participants, the shared notes and the chat.
import { MAX_CHAT_CHARS } from "../gen/constants";
import type { ChatMessage, ErrorCode } from "../gen/protocol";
import type { FileTransfer } from "../link/files";
import type { LinkEvent, MeetingLink, MeetingState, Participant } from "../link/meeting-link";
import type { PeerStats } from "../link/peer";
import { h } from "./dom";
import { Stage } from "./stage";
import { NotesEditor } from "./notes-editor";

export interface MeetingScreenOptions {
  link: MeetingLink;
  selfName: string;
  inviteLink: string;
  /** Where the notes are kept, as "Saved …" says it ("in this browser"). */
  storedWhere: string;
  onLeft: () => void;
  onRefused: (code: ErrorCode, message: string) => void;
}

const STATUS_TEXT: Record<Participant["status"], string> = {
  connecting: "connecting…",
  connected: "connected",
  reconnecting: "reconnecting…",
};

export function meetingScreen(root: HTMLElement, options: MeetingScreenOptions): void {
  const { link } = options;
  const banner = h("p", { class: "banner", role: "status" }, "Connecting…");
  const copy = h("button", { type: "button" }, "Copy invite link");
  const leave = h("button", { type: "button", class: "danger" }, "Leave");
  const toggle = (label: string, shortcut: string) =>
    h("button", { type: "button", class: "toggle", "aria-pressed": "false", "aria-keyshortcuts": shortcut, title: `${label} (${shortcut})` }, label);
  const mic = toggle("Microphone", "Alt+M");
  const cam = toggle("Camera", "Alt+V");
  const share = toggle("Share screen", "Alt+S");
  // Which the stage favours: the notes (the videos a strip above them) or the videos (filling the
  // middle, the notes beside them). Remembered across meetings.
  const videoFocus = toggle("Video focus", "Alt+L");
  const help = h("button", { type: "button", "aria-keyshortcuts": "Shift+?" }, "Shortcuts");
  const stage = new Stage(options.selfName);
  const participants = h("ul", { class: "participants", "aria-label": "Participants" });
  const chatLog = h("ol", { class: "chat-log", role: "log", "aria-label": "Chat", "aria-live": "polite" });
  const message = h("input", { type: "text", "aria-label": "Message", maxlength: String(MAX_CHAT_CHARS), autocomplete: "off" });
  const send = h("button", { type: "submit" }, "Send");
  const unread = h("span", { class: "badge", hidden: true, "aria-label": "unread messages" });
  const chatForm = h("form", { class: "chat-form" }, message, send);
  const files = h("ul", { class: "files", "aria-label": "Files" });
  const filePicker = h("input", { type: "file", multiple: true, hidden: true });
  const sendFile = h("button", { type: "button" }, "Attach file");
  const dropHint = h("div", { class: "drop-hint", "aria-hidden": "true" }, "Drop to send to everyone here");
  const fileItems = new Map<string, HTMLLIElement>();
  const notesHost = h("div", { class: "notes-host" });
  const saved = h("span", { class: "saved", role: "status" });
  const exportNotes = h("button", { type: "button", class: "small" }, "Export notes");
  exportNotes.addEventListener("click", async () => {
    const url = URL.createObjectURL(new Blob([await link.exportMarkdown()], { type: "text/markdown" }));
    const a = h("a", { href: url, download: "meeting-notes.md" });
    a.click();
    window.setTimeout(() => URL.revokeObjectURL(url), 10_000);
  });
  const chatPanel = h(
    "section",
    { class: "panel chat", "aria-labelledby": "chat-heading" },
    h("h2", { id: "chat-heading" }, "Chat ", unread),
    chatLog,
    files,
    chatForm,
    h("div", { class: "file-actions" }, sendFile, filePicker),
  );

  const meeting = h(
      "div",
      { class: "meeting" },
      h(
        "header",
        { class: "topbar" },
        h("h1", {}, "Confab"),
        banner,
        h("div", { class: "actions" }, mic, cam, share, videoFocus, copy, help, leave),
      ),
      stage.element,
      h(
        "section",
        { class: "panel people", "aria-labelledby": "people-heading" },
        h("h2", { id: "people-heading" }, "People"),
        participants,
      ),
      h("section", { class: "panel notes", "aria-labelledby": "notes-heading" }, h("div", { class: "panel-head" }, h("h2", { id: "notes-heading" }, "Notes"), saved, exportNotes), notesHost),
      chatPanel,
      dropHint,
    );
  const shortcuts = shortcutsDialog();
  root.replaceChildren(meeting, shortcuts);

  const selfItem = h(
    "li",
    { class: "participant self" },
    h("span", { class: "name" }, options.selfName),
    h("span", { class: "state" }, "you"),
  );
  participants.append(selfItem);
  const editor = new NotesEditor(
    notesHost,
    (patches) => link.editNotes(patches),
    (selection) => link.setCursor(selection),
  );
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
        teardown();
        options.onRefused(state.code, state.message);
        break;
      case "left":
        teardown();
        options.onLeft();
        break;
    }
  };

  const chatToShow: ChatMessage[] = [];
  const showChat = () => {
    const atBottom = chatLog.scrollTop + chatLog.clientHeight >= chatLog.scrollHeight - 4;
    const messages = chatToShow.splice(0);
    chatLog.append(...messages.map(chatItem));
    if (atBottom) chatLog.scrollTop = chatLog.scrollHeight;
    // History from before we opened the meeting is not news.
    const news = messages.filter((m) => m.at >= openedAt).length;
    if (news > 0 && !chatPanel.contains(document.activeElement)) {
      unreadCount += news;
      unread.textContent = String(unreadCount);
      unread.hidden = false;
    }
  };

  const unsubscribe = link.subscribe((event: LinkEvent) => {
    switch (event.type) {
      case "state":
        return showState(event.state);
      case "participants":
        stage.setParticipants(event.participants);
        editor.showCursors(link.cursorsInNotes());
        return participants.replaceChildren(selfItem, ...event.participants.map(participantItem));
      case "local_media":
        mic.setAttribute("aria-pressed", String(event.media.mic));
        cam.setAttribute("aria-pressed", String(event.media.cam));
        share.setAttribute("aria-pressed", String(event.media.screen));
        stage.setSelf(event.media, event.camera, event.screen);
        return;
      case "chat": {
        // Shown once per frame, however many came: measuring the log for each message made the
        // browser lay the whole log out again each time, and a flood of chat froze the page.
        // (A hidden tab has no frames: there, four times a second.)
        if (chatToShow.length === 0) {
          if (document.hidden) setTimeout(showChat, 250);
          else requestAnimationFrame(showChat);
        }
        chatToShow.push(event.message);
        return;
      }
      case "notes":
        editor.applyRemote(event.patches, event.text);
        return editor.showCursors(link.cursorsInNotes());
      case "file": {
        const item = transferItem(event.transfer, link);
        const old = fileItems.get(event.transfer.key);
        if (old) old.replaceWith(item);
        else files.append(item);
        fileItems.set(event.transfer.key, item);
        return;
      }
      case "stored":
        saved.textContent = event.upToDate ? `Saved ${options.storedWhere}` : "Saving…";
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
  const sendAll = (list: FileList | null | undefined) => {
    for (const file of list ?? []) void link.sendFile(file);
  };
  sendFile.addEventListener("click", () => filePicker.click());
  filePicker.addEventListener("change", () => {
    sendAll(filePicker.files);
    filePicker.value = "";
  });
  meeting.addEventListener("dragover", (event) => {
    if (!event.dataTransfer?.types.includes("Files")) return;
    event.preventDefault();
    meeting.classList.add("dropping");
  });
  meeting.addEventListener("dragleave", (event) => {
    if (event.relatedTarget === null || !meeting.contains(event.relatedTarget as Node)) meeting.classList.remove("dropping");
  });
  meeting.addEventListener("drop", (event) => {
    meeting.classList.remove("dropping");
    if (!event.dataTransfer?.files.length) return;
    event.preventDefault();
    sendAll(event.dataTransfer.files);
  });
  const pressed = (button: HTMLButtonElement) => button.getAttribute("aria-pressed") === "true";
  const setFocus = (video: boolean) => {
    meeting.dataset.focus = video ? "video" : "notes";
    videoFocus.setAttribute("aria-pressed", String(video));
    localStorage.setItem("confab.focus", meeting.dataset.focus);
  };
  setFocus(localStorage.getItem("confab.focus") === "video");
  videoFocus.addEventListener("click", () => setFocus(!pressed(videoFocus)));
  mic.addEventListener("click", () => void link.setDevice("mic", !pressed(mic)));
  cam.addEventListener("click", () => void link.setDevice("cam", !pressed(cam)));
  share.addEventListener("click", () => void link.shareScreen(!pressed(share)));
  help.addEventListener("click", () => shortcuts.showModal());
  const onKey = (event: KeyboardEvent) => {
    const key = event.key.toLowerCase();
    const action = event.altKey
      ? { m: mic, v: cam, s: share, l: videoFocus, c: null }[key]
      : key === "?" && !isTyping(event.target) ? help : undefined;
    if (action === undefined) return;
    event.preventDefault();
    if (action === null) message.focus();
    else action.click();
  };
  window.addEventListener("keydown", onKey);
  /** The meeting is over on this page: its shortcuts and events stop with it. */
  function teardown(): void {
    window.removeEventListener("keydown", onKey);
    unsubscribe();
  }
}

/** A word for the connection, from round-trip time and media loss (getStats). */
function quality(stats: PeerStats | undefined): { word: "good" | "fair" | "poor"; detail: string } | null {
  if (stats?.rttMs == null) return null;
  // A loss rate needs both counts; with only the losses known, none is given.
  const packets = stats.packetsReceived === null ? 0 : stats.packetsLost + stats.packetsReceived;
  const loss = packets > 0 ? stats.packetsLost / packets : 0;
  const word = stats.rttMs > 400 || loss > 0.05 ? "poor" : stats.rttMs > 150 || loss > 0.01 ? "fair" : "good";
  const lossText = packets > 0 ? `, ${(loss * 100).toFixed(1)}% loss` : "";
  return { word, detail: `${Math.round(stats.rttMs)} ms${lossText}` };
}

function participantItem(p: Participant): HTMLLIElement {
  const q = quality(p.stats);
  return h(
    "li",
    { class: `participant ${p.status}`, "data-peer": p.id },
    h("span", { class: "name" }, p.name),
    h(
      "span",
      { class: "state" },
      STATUS_TEXT[p.status],
      p.status === "connected" && q
        ? h("span", { class: `quality ${q.word}`, title: q.detail }, ` · ${q.word} connection (${q.detail})`)
        : null,
    ),
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

function size(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  if (bytes < 1e6) return `${(bytes / 1e3).toFixed(1)} kB`;
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

/** One file transfer: what it is, how far, and what can be done about it. */
function transferItem(t: FileTransfer, link: MeetingLink): HTMLLIElement {
  const button = (label: string, action: () => void) => {
    const b = h("button", { type: "button" }, label);
    b.addEventListener("click", action);
    return b;
  };
  const what =
    t.direction === "sending" ? `${t.name} to ${t.peerName}` : `${t.name} from ${t.peerName}`;
  const percent = t.size === 0 ? 100 : Math.floor((t.bytes / t.size) * 100);
  const status: Record<FileTransfer["state"], string> = {
    offered: t.direction === "sending" ? "waiting for them to accept" : `${t.peerName} wants to send you this file`,
    waiting: "starting…",
    transferring: `${percent}%`,
    done: t.direction === "sending" ? "sent, 100%" : t.savedAs ? `received, saved as ${t.savedAs}` : "received, 100%",
    failed: `failed: ${t.reason ?? ""}`,
    cancelled: `cancelled: ${t.reason ?? ""}`,
  };
  const item = h(
    "li",
    { class: `transfer ${t.state}`, "data-file": t.key },
    h("span", { class: "file-name" }, what),
    h("span", { class: "file-size" }, size(t.size)),
    h("progress", { max: String(Math.max(t.size, 1)), value: String(t.size === 0 ? 1 : t.bytes), "aria-label": what }),
    h("span", { class: "file-status" }, status[t.state]),
  );
  if (t.state === "offered" && t.direction === "receiving") {
    item.append(button("Accept", () => link.acceptFile(t.key)), button("Decline", () => link.declineFile(t.key)));
  } else if (t.state === "transferring" || t.state === "waiting" || t.state === "offered") {
    item.append(button("Cancel", () => link.cancelFile(t.key)));
  } else if (t.state === "done" && t.url) {
    item.append(h("a", { href: t.url, download: t.name, class: "button" }, `Save ${t.name}`));
  }
  return item;
}

/** Whether a key press is going into something the user is typing in. */
function isTyping(target: EventTarget | null): boolean {
  return target instanceof HTMLElement && (target.isContentEditable || ["INPUT", "TEXTAREA"].includes(target.tagName));
}

const SHORTCUTS: [string, string][] = [
  ["Alt+M", "Microphone on or off"],
  ["Alt+V", "Camera on or off"],
  ["Alt+S", "Share the screen, or stop"],
  ["Alt+L", "Videos large, or the notes"],
  ["Alt+C", "Write in the chat"],
  ["?", "This list"],
];

function shortcutsDialog(): HTMLDialogElement {
  const close = h("button", { type: "button" }, "Close");
  const dialog = h(
    "dialog",
    { class: "shortcuts", "aria-labelledby": "shortcuts-heading" },
    h("h2", { id: "shortcuts-heading" }, "Keyboard shortcuts"),
    h("dl", {}, ...SHORTCUTS.flatMap(([keys, what]) => [h("dt", {}, h("kbd", {}, keys)), h("dd", {}, what)])),
    close,
  );
  close.addEventListener("click", () => dialog.close());
  return dialog;
}
