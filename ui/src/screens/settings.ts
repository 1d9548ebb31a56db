// The desktop app's settings: where new meetings are made (hosted on this computer, reachable on
// the LAN, or on a signaling server of yours), and which microphone, speaker and camera to use.
import type { DeviceList, Preferences, SettingsPage } from "../link/tauri-link";
import { h } from "./dom";

export interface SettingsActions {
  load(): Promise<SettingsPage>;
  /** Keeps them (and an access token for their server: undefined keeps the one kept, blank
   * forgets it); resolves with them as kept, rejects with why they were refused. */
  save(preferences: Preferences, accessToken?: string): Promise<Preferences>;
  back(): void;
}

/** A choice of device: the system's default, then each one listed (a chosen one that is gone
 * stays, marked so, rather than being silently replaced). */
function deviceField(id: string, label: string, list: DeviceList, chosen: string | null) {
  const select = h("select", { id }, h("option", { value: "" }, "System default"));
  for (const device of list.devices) select.append(h("option", { value: device.id }, device.name));
  if (chosen !== null && !list.devices.some((d) => d.id === chosen)) select.append(h("option", { value: chosen }, `${chosen} (not connected)`));
  select.value = chosen ?? "";
  const problem = list.error === null ? null : h("p", { class: "field-note" }, `None can be listed: ${list.error}`);
  return { select, nodes: [h("label", { for: id }, label), select, problem] };
}

export async function settingsScreen(root: HTMLElement, actions: SettingsActions): Promise<void> {
  const back = h("button", { type: "button" }, "Back");
  back.addEventListener("click", () => actions.back());
  const status = h("p", { class: "status", role: "status" });
  const card = h("section", { class: "card settings" }, h("h1", {}, "Settings"), status, back);
  root.replaceChildren(card);
  status.textContent = "Looking for devices…";
  let page: SettingsPage;
  try {
    page = await actions.load();
  } catch (e) {
    status.textContent = `The settings could not be read: ${String(e)}`;
    status.classList.add("error");
    return;
  }
  status.textContent = "";

  const { preferences } = page;
  const here = h("input", { type: "radio", name: "server", id: "server-here", checked: preferences.server === null });
  const remote = h("input", { type: "radio", name: "server", id: "server-remote", checked: preferences.server !== null });
  const server = h("input", { id: "server-url", type: "url", placeholder: "https://confab.example.org", spellcheck: "false", value: preferences.server ?? "" });
  // Never filled from what is kept: the token stays in the keyring. Left empty, it is unchanged.
  const token = h("input", { id: "access-token", type: "password", autocomplete: "off", spellcheck: "false" });
  const tokenNote = h("p", { class: "field-note", id: "access-token-note" });
  const showTokenKept = (kept: boolean) => {
    token.placeholder = kept ? "kept in your keyring" : "if the server asks for one";
    tokenNote.textContent = kept ? "A token is kept for this server. Type another to replace it." : "";
  };
  showTokenKept(page.access_token_kept);
  const followChoice = () => {
    server.disabled = here.checked;
    token.disabled = here.checked;
  };
  here.addEventListener("change", followChoice);
  remote.addEventListener("change", followChoice);
  server.addEventListener("focus", () => (remote.checked = true));
  followChoice();

  const microphone = deviceField("microphone", "Microphone", page.microphones, preferences.microphone);
  const speaker = deviceField("speaker", "Speaker", page.speakers, preferences.speaker);
  const camera = deviceField("camera", "Camera", page.cameras, preferences.camera);
  const save = h("button", { type: "submit", class: "primary" }, "Save");
  const form = h(
    "form",
    { class: "settings-form", novalidate: true },
    h(
      "fieldset",
      {},
      h("legend", {}, "New meetings"),
      h("div", { class: "choice" }, here, h("label", { for: "server-here" }, "Hosted on this computer (people on your network join by its link)")),
      h("div", { class: "choice" }, remote, h("label", { for: "server-remote" }, "On a signaling server:")),
      server,
      h("label", { for: "access-token" }, "Access token"),
      token,
      tokenNote,
    ),
    h("fieldset", {}, h("legend", {}, "Devices (from the next meeting)"), ...microphone.nodes, ...speaker.nodes, ...camera.nodes),
    h("div", { class: "row" }, save, back),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    status.classList.remove("error");
    const wanted: Preferences = {
      server: remote.checked ? server.value : null,
      microphone: microphone.select.value || null,
      speaker: speaker.select.value || null,
      camera: camera.select.value || null,
    };
    try {
      const typed = token.value.trim();
      const kept = await actions.save(wanted, remote.checked && typed ? typed : undefined);
      if (typed && remote.checked) {
        token.value = "";
        showTokenKept(true);
      }
      server.value = kept.server ?? "";
      here.checked = kept.server === null;
      remote.checked = kept.server !== null;
      followChoice();
      status.textContent = "Saved.";
    } catch (e) {
      status.textContent = String(e);
      status.classList.add("error");
    }
  });
  card.replaceChildren(h("h1", {}, "Settings"), form, status);
}
