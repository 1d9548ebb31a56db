// The video stage: a tile per person (camera and voice), and a shared screen shown large. The
// link makes each video's element (`VideoView`); the stage only places it.
import type { MediaState, Participant, VideoView } from "../link/meeting-link";
import { h } from "./dom";

interface Tile {
  element: HTMLElement;
  slot: HTMLElement;
  label: HTMLElement;
  badges: HTMLElement;
}

export class Stage {
  readonly element = h("section", { class: "stage", "aria-label": "Video" });
  private readonly screenArea = h("div", { class: "screen-area" });
  private readonly grid = h("div", { class: "tiles" });
  private readonly tiles = new Map<string, Tile>();
  private self: { name: string; media: MediaState; camera: VideoView | null; screen: VideoView | null };
  private participants: Participant[] = [];

  constructor(selfName: string) {
    this.self = { name: selfName, media: { mic: false, cam: false, screen: false }, camera: null, screen: null };
    this.element.append(this.screenArea, this.grid);
    this.render();
  }

  setSelf(media: MediaState, camera: VideoView | null, screen: VideoView | null): void {
    this.self = { ...this.self, media, camera, screen };
    this.render();
  }

  setParticipants(participants: Participant[]): void {
    this.participants = participants;
    this.render();
  }

  private render(): void {
    const wanted = new Set<string>();
    const place = (key: string, parent: HTMLElement, view: VideoView | null, name: string, badges: string[], screen: boolean) => {
      wanted.add(key);
      let tile = this.tiles.get(key);
      if (!tile) {
        const slot = h("div", { class: "tile-video" });
        const label = h("span", { class: "tile-name" });
        const badgeList = h("span", { class: "tile-badges" });
        const element = h("figure", { class: screen ? "tile screen" : "tile" }, slot, h("figcaption", {}, label, badgeList));
        tile = { element, slot, label, badges: badgeList };
        this.tiles.set(key, tile);
      }
      if (tile.element.parentElement !== parent) parent.append(tile.element);
      if (view && tile.slot.firstChild !== view.element) tile.slot.replaceChildren(view.element);
      if (!view && tile.slot.firstChild) tile.slot.replaceChildren();
      tile.element.setAttribute("aria-label", screen ? `${name}'s screen` : name);
      tile.element.classList.toggle("no-video", !view?.hasPicture);
      tile.label.textContent = screen ? `${name}'s screen` : name;
      tile.badges.replaceChildren(...badges.map((b) => h("span", { class: "tile-badge" }, b)));
    };
    const badgesOf = (m: MediaState) => [...(m.mic ? [] : ["muted"]), ...(m.cam ? [] : ["camera off"])];

    if (this.self.screen) place("self/screen", this.screenArea, this.self.screen, "Your", [], true);
    for (const p of this.participants) {
      if (p.screen) place(`${p.id}/screen`, this.screenArea, p.screen, p.name, [], true);
    }
    place("self", this.grid, this.self.camera, `${this.self.name} (you)`, badgesOf(this.self.media), false);
    for (const p of this.participants) place(p.id, this.grid, p.camera, p.name, badgesOf(p.media), false);
    for (const [key, tile] of this.tiles) {
      if (!wanted.has(key)) {
        tile.slot.replaceChildren();
        tile.element.remove();
        this.tiles.delete(key);
      }
    }
    this.element.classList.toggle("sharing", this.screenArea.childElementCount > 0);
    // Columns for a grid that fills the stage: near square, so tiles stay as large as they can.
    this.element.style.setProperty("--columns", String(Math.ceil(Math.sqrt(this.grid.childElementCount))));
  }
}
