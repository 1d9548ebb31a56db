// The web UI's entry point: the start page at `/`, a meeting at `/m/ROOM#k=KEY`.
import * as A from "@automerge/automerge/slim";
import wasmUrl from "@automerge/automerge/automerge.wasm?url";
import { BrowserLink } from "./link/browser-link";
import { PROBLEM_TEXT, meetingLinkText, parseMeetingLink } from "./link/meeting-url";
import { authorId } from "./screens/dom";
import { homeScreen } from "./screens/home";
import { meetingScreen } from "./screens/meeting";
import { type JoinChoices, prejoinScreen } from "./screens/prejoin";
import { problemScreen } from "./screens/problem";
import { refusalText } from "./screens/refusal";

const app = document.getElementById("app")!;

async function openMeeting(): Promise<void> {
  const address = parseMeetingLink(location.href);
  if (typeof address === "string") {
    problemScreen(app, "This link does not work", PROBLEM_TEXT[address]);
    return;
  }
  // Fetched and compiled while the person fills in the pre-join screen.
  const automergeReady = A.initializeWasm(wasmUrl);
  const enter = ({ name, mic, cam }: JoinChoices) => {
    // A reload of this tab goes straight back in (sessionStorage lives as long as the tab).
    sessionStorage.setItem(rejoinKey, JSON.stringify({ name, mic, cam }));
    void (async () => {
      await automergeReady;
      const link = new BrowserLink(address, { name, authorId: authorId() });
      meetingScreen(app, {
        link,
        selfName: name,
        inviteLink: meetingLinkText(address),
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
  else prejoinScreen(app, address.name, enter);
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

if (/\/m\/[^/]*\/?$/.test(location.pathname)) void openMeeting();
else homeScreen(app);
