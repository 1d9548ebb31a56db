// The web UI's entry point. This build offers creating a meeting link; the meeting view itself
// (BrowserLink, video, chat and notes) is built on the same generated protocol types.
import type { RoomId } from "./gen/protocol";

const app = document.getElementById("app")!;

/** 128 random bits as unpadded base64url: the meeting key, made here and never sent to a server. */
function randomKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function roomFromPath(path: string): RoomId | null {
  const match = /^\/m\/([A-Za-z0-9_-]{22})\/?$/.exec(path);
  return match?.[1] ?? null;
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (text) node.textContent = text;
  return node;
}

async function createMeeting(out: HTMLOutputElement): Promise<void> {
  out.textContent = "Creating…";
  out.className = "";
  try {
    const resp = await fetch("/api/meetings", { method: "POST" });
    if (!resp.ok) throw new Error(`the server answered ${resp.status}`);
    const { link } = (await resp.json()) as { room: RoomId; link: string };
    out.textContent = `${link}#k=${randomKey()}`;
  } catch (e) {
    out.textContent = `Could not create a meeting: ${e instanceof Error ? e.message : String(e)}`;
    out.className = "error";
  }
}

function home(): void {
  app.append(el("h1", "Confab"));
  const button = el("button", "New meeting");
  const out = el("output");
  out.setAttribute("aria-live", "polite");
  button.addEventListener("click", () => void createMeeting(out));
  app.append(button, el("p"), out);
}

function meeting(room: RoomId): void {
  app.append(el("h1", "Confab meeting"));
  const hasKey = new URLSearchParams(location.hash.slice(1)).has("k");
  app.append(
    el("p", `Meeting ${room}.`),
    el(
      "p",
      hasKey
        ? "Joining from the browser is not available in this build yet: open this link with the Confab app or `confab join`."
        : "This link lacks its meeting key (#k=…). Ask for the whole link.",
    ),
  );
}

const room = roomFromPath(location.pathname);
if (room) meeting(room);
else home();
