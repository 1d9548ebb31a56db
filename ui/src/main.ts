// The web UI's entry point: the start page at `/`, a meeting at `/m/ROOM#k=KEY`. In the desktop
// app the same screens drive the Rust engine instead (`TauriLink`), all in one page.
import { type MeetingAddress, PROBLEM_TEXT, desktopLinkText, meetingLinkText, parseMeetingLink } from "./link/meeting-url";
import { type Startup, TauriLink, hostMeeting, inDesktopApp, loadSettings, recentMeetings, saveSettings, startup } from "./link/tauri-link";
import { checkDisplayName } from "./link/text";
import { authorId, rememberedName } from "./screens/dom";
import { type HomeActions, homeScreen } from "./screens/home";
import { meetingScreen } from "./screens/meeting";
import { type JoinChoices, prejoinScreen } from "./screens/prejoin";
import { problemScreen } from "./screens/problem";
import { refusalText } from "./screens/refusal";
import { pickScreen } from "./screens/screen-picker";
import { settingsScreen } from "./screens/settings";

const app = document.getElementById("app")!;

async function openMeeting(): Promise<void> {
  const address = parseMeetingLink(location.href);
  if (typeof address === "string") {
    problemScreen(app, "This link does not work", PROBLEM_TEXT[address]);
    return;
  }
  // Fetched and compiled while the person fills in the pre-join screen; the desktop app never
  // loads it.
  const browserLinkReady = loadBrowserLink();
  const enter = ({ name, mic, cam }: JoinChoices) => {
    // A reload of this tab goes straight back in (sessionStorage lives as long as the tab).
    sessionStorage.setItem(rejoinKey, JSON.stringify({ name, mic, cam }));
    void (async () => {
      const BrowserLink = await browserLinkReady;
      const link = new BrowserLink(address, { name, authorId: authorId() });
      meetingScreen(app, {
        link,
        selfName: name,
        inviteLink: meetingLinkText(address),
        storedWhere: "in this browser",
        onLeft: () => {
          sessionStorage.removeItem(rejoinKey);
          problemScreen(app, "You left the meeting", "Your notes stay in this browser.");
        },
        onRefused: (code, message) => {
          sessionStorage.removeItem(rejoinKey);
          const { title, detail, retry } = refusalText(code, message);
          problemScreen(app, title, detail, retry);
        },
      });
      // Devices first, so that the first offer to each peer carries them.
      if (mic) await link.setDevice("mic", true);
      if (cam) await link.setDevice("cam", true);
      await link.join();
    })();
  };
  const rejoinKey = `confab.in-meeting.${address.room}`;
  const rejoinAs = rejoinChoices(sessionStorage.getItem(rejoinKey));
  if (rejoinAs) enter(rejoinAs);
  else prejoinScreen(app, address.name, enter, desktopLinkText(address));
}

function rejoinChoices(saved: string | null): JoinChoices | null {
  try {
    const choices = JSON.parse(saved ?? "null") as Partial<JoinChoices> | null;
    if (typeof choices?.name !== "string") return null;
    return { name: choices.name, mic: choices.mic === true, cam: choices.cam === true };
  } catch {
    return null;
  }
}

async function loadBrowserLink() {
  const [A, wasm, { BrowserLink }] = await Promise.all([
    import("@automerge/automerge/slim"),
    import("@automerge/automerge/automerge.wasm?url"),
    import("./link/browser-link"),
  ]);
  await A.initializeWasm(wasm.default);
  return BrowserLink;
}

/** The meeting the desktop window shows, if any. */
let shownMeeting: TauriLink | null = null;

/** The desktop app: the meeting runs in Rust (one at a time: opening another replaces it), and
 * leaving comes back to the start page, saying why when the meeting could not be joined. */
function openDesktopMeeting(address: MeetingAddress, name: string): void {
  const link = new TauriLink(meetingLinkText(address), name, pickScreen);
  const previous = shownMeeting;
  shownMeeting = link;
  previous?.close();
  let joined = false;
  let problem: string | undefined;
  link.subscribe((event) => {
    if (event.type === "state" && event.state.phase === "joined") joined = true;
    if (event.type === "error") problem = event.message;
  });
  meetingScreen(app, {
    link,
    selfName: name,
    inviteLink: meetingLinkText(address),
    storedWhere: "on this device",
    onLeft: () => {
      if (shownMeeting !== link) return;
      shownMeeting = null;
      homeScreen(app, desktopHome, joined ? {} : { notice: problem });
    },
    onRefused: (code, message) => {
      const { title, detail } = refusalText(code, message);
      problemScreen(app, title, detail);
    },
  });
  void link.join();
}

const desktopHome: HomeActions = {
  async newMeeting(name) {
    const address = parseMeetingLink(await hostMeeting());
    if (typeof address === "string") throw new Error(PROBLEM_TEXT[address]);
    openDesktopMeeting(address, name);
  },
  openMeeting: openDesktopMeeting,
  async recent() {
    const meetings = await recentMeetings();
    return meetings.map((m) => ({ link: m.link, title: m.title, openedAt: new Date(m.opened_at) }));
  },
  settings() {
    void settingsScreen(app, { load: loadSettings, save: saveSettings, back: () => homeScreen(app, desktopHome) });
  },
};

/** The desktop app opens the meeting it was started with (`--host`, a link) straight away when
 * it knows who you are, else asks your name with the link filled in. */
async function startDesktop(): Promise<void> {
  let known: Startup = { link: null, name: null, notice: null };
  let linkOpened = false;
  const open = (link: string | null) => {
    linkOpened ||= link !== null;
    const address = link === null ? null : parseMeetingLink(link);
    const name = checkDisplayName(known.name ?? rememberedName.get());
    if (address !== null && typeof address !== "string" && name.ok) openDesktopMeeting(address, name.name);
    else homeScreen(app, desktopHome, { link: link ?? "", name: known.name ?? undefined, notice: known.notice ?? undefined });
  };
  known = await startup(open);
  // A link clicked while the window was starting is not replaced by the start page.
  if (known.link !== null || !linkOpened) open(known.link);
}

if (inDesktopApp()) void startDesktop();
else if (/\/m\/[^/]*\/?$/.test(location.pathname)) void openMeeting();
else homeScreen(app);
