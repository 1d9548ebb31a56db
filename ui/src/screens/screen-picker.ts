// The desktop app's screen-share picker: each display by its name (with its size) and a picture
// of it as it is now, taken by the engine. Browsers have their own picker.
import { listScreens, screenThumbnail } from "../link/tauri-link";
import { h } from "./dom";

/** Asks which display to share; resolves with its id, or null when the person cancels. Rejects
 * with the engine's reason when no display can be shared (no X display, a Wayland session
 * without the desktop portal). */
export async function pickScreen(): Promise<string | null> {
  const screens = await listScreens();
  // Where the system asks in a dialog of its own, a picker of ours before it would ask twice.
  const bySystem = screens.find((screen) => screen.chosen_by_system);
  if (bySystem) return bySystem.id;
  const dialog = h("dialog", { class: "picker", "aria-labelledby": "picker-heading" });
  return new Promise((resolve) => {
    const done = (id: string | null) => {
      dialog.close();
      dialog.remove();
      resolve(id);
    };
    const choices = screens.map((screen) => {
      const picture = h("canvas", { width: "320", height: "180", "aria-hidden": "true" });
      screenThumbnail(screen.id)
        .then((image) => {
          [picture.width, picture.height] = [image.width, image.height];
          picture.getContext("2d")?.putImageData(image, 0, 0);
          picture.dataset.shown = "true";
        })
        // The display can still be picked by its name.
        .catch(() => picture.classList.add("unavailable"));
      const choice = h("button", { type: "button", class: "screen-choice" }, picture, h("span", {}, screen.name));
      choice.addEventListener("click", () => done(screen.id));
      return choice;
    });
    const cancel = h("button", { type: "button" }, "Cancel");
    cancel.addEventListener("click", () => done(null));
    // Escape closes it as Cancel does.
    dialog.addEventListener("cancel", (event) => {
      event.preventDefault();
      done(null);
    });
    dialog.append(h("h2", { id: "picker-heading" }, "Share a screen"), h("div", { class: "screen-choices" }, ...choices), cancel);
    document.body.append(dialog);
    dialog.showModal();
    choices[0]?.focus();
  });
}
