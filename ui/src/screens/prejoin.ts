// Before joining from a link: who you are, and whether your microphone and camera start on.
import { h, nameField, rememberedName } from "./dom";

export interface JoinChoices {
  name: string;
  mic: boolean;
  cam: boolean;
}

const remembered = (key: string) => localStorage.getItem(`confab.${key}`) === "on";
const remember = (key: string, on: boolean) => localStorage.setItem(`confab.${key}`, on ? "on" : "off");

/** `appLink`: the same meeting as a `confab://` link, for people with the desktop app. */
export function prejoinScreen(
  root: HTMLElement,
  suggestedName: string | undefined,
  onJoin: (choices: JoinChoices) => void,
  appLink?: string,
): void {
  const name = nameField(rememberedName.get() || suggestedName || "");
  const toggle = (label: string, on: boolean) =>
    h("button", { type: "button", class: "toggle", "aria-pressed": String(on) }, label);
  const mic = toggle("Microphone", remembered("mic"));
  const cam = toggle("Camera", remembered("cam"));
  const preview = h("video", { class: "preview", autoplay: true, playsinline: true, "aria-label": "Camera preview" });
  preview.muted = true;
  const previewBox = h("div", { class: "preview-box" }, preview, h("span", { class: "preview-off" }, "Camera off"));
  const status = h("p", { class: "status", role: "status" });
  const isOn = (button: HTMLButtonElement) => button.getAttribute("aria-pressed") === "true";

  let previewStream: MediaStream | null = null;
  /** Which request is current: a camera that answers after it was turned off is let go. */
  let generation = 0;
  const stopPreview = () => {
    generation += 1;
    for (const track of previewStream?.getTracks() ?? []) track.stop();
    previewStream = null;
    preview.srcObject = null;
    previewBox.classList.remove("live");
  };
  const showPreview = async () => {
    stopPreview();
    if (!isOn(cam)) return;
    const mine = generation;
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 360 } });
      if (mine !== generation) {
        for (const track of stream.getTracks()) track.stop();
        return;
      }
      previewStream = stream;
      preview.srcObject = previewStream;
      previewBox.classList.add("live");
    } catch (e) {
      if (mine !== generation) return;
      cam.setAttribute("aria-pressed", "false");
      status.textContent = `The camera is not available: ${e instanceof Error ? e.message : String(e)}`;
    }
  };
  for (const [button, key] of [[mic, "mic"], [cam, "cam"]] as const) {
    button.addEventListener("click", () => {
      const on = !isOn(button);
      button.setAttribute("aria-pressed", String(on));
      remember(key, on);
      if (button === cam) void showPreview();
    });
  }

  const form = h(
    "form",
    { class: "card prejoin" },
    h("h1", {}, "Join the meeting"),
    h("p", { class: "lede" }, "Your notes, chat, voice and video go straight to the others, encrypted; the server only introduces you."),
    previewBox,
    h("div", { class: "row devices" }, mic, cam),
    h("label", { for: "name" }, "Your name"),
    name.input,
    name.problem,
    h("button", { type: "submit", class: "primary" }, "Join"),
    appLink ? h("p", { class: "open-in-app" }, h("a", { href: appLink }, "Open in the desktop app")) : null,
    status,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const checked = name.check();
    if (checked === null) return;
    rememberedName.set(checked);
    performance.mark("confab:join-clicked");
    stopPreview();
    onJoin({ name: checked, mic: isOn(mic), cam: isOn(cam) });
  });
  root.replaceChildren(form);
  void showPreview();
  name.input.focus();
}
