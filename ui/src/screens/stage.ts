// The video stage: a tile per person (camera and voice), and a shared screen shown large.
import type { MediaState, Participant } from "../link/meeting-link";
import { h } from "./dom";

interface Tile {
  element: HTMLElement;
  video: HTMLVideoElement;
  label: HTMLElement;
  badges: HTMLElement;
}

export class Stage {
  readonly element = h("section", { class: "stage", "aria-label": "Video" });
  private readonly screenArea = h("div", { class: "screen-area" });
  private readonly grid = h("div", { class: "tiles" });
  private readonly tiles = new Map<string, Tile>();
  private self: { name: string; media: MediaState; camera: MediaStream | null; screen: MediaStream | null };
  private participants: Participant[] = [];

  constructor(selfName: string) {
    this.self = { name: selfName, media: { mic: false, cam: false, screen: false }, camera: null, screen: null };
    this.element.append(this.screenArea, this.grid);
    this.render();
  }

  setSelf(media: MediaState, camera: MediaStream | null, screen: MediaStream | null): void {
    this.self = { ...this.self, media, camera, screen };
    this.render();
  }

  setParticipants(participants: Participant[]): void {
    this.participants = participants;
    this.render();
  }

  private render(): void {
    const wanted = new Set<string>();
    const place = (key: string, parent: HTMLElement, stream: MediaStream | null, name: string, badges: string[], opts: { muted: boolean; screen: boolean }) => {
      wanted.add(key);
      let tile = this.tiles.get(key);
      if (!tile) {
        const video = h("video", { autoplay: true, playsinline: true });
        video.muted = opts.muted;
        const label = h("span", { class: "tile-name" });
        const badgeList = h("span", { class: "tile-badges" });
        const element = h("figure", { class: opts.screen ? "tile screen" : "tile" }, video, h("figcaption", {}, label, badgeList));
        tile = { element, video, label, badges: badgeList };
        this.tiles.set(key, tile);
      }
      if (tile.element.parentElement !== parent) parent.append(tile.element);
      if (tile.video.srcObject !== stream) {
        tile.video.srcObject = stream;
        if (stream && !opts.muted) markFirstFrame(tile.video);
      }
      tile.element.setAttribute("aria-label", opts.screen ? `${name}'s screen` : name);
      tile.element.classList.toggle("no-video", !stream || stream.getVideoTracks().length === 0);
      tile.label.textContent = opts.screen ? `${name}'s screen` : name;
      tile.badges.replaceChildren(...badges.map((b) => h("span", { class: "tile-badge" }, b)));
    };
    const badgesOf = (m: MediaState) => [...(m.mic ? [] : ["muted"]), ...(m.cam ? [] : ["camera off"])];

    if (this.self.screen) place("self/screen", this.screenArea, this.self.screen, "Your", [], { muted: true, screen: true });
    for (const p of this.participants) {
      const screen = p.media.screen ? p.streams.find((s) => isScreen(s, p.media)) : undefined;
      if (screen) place(`${p.id}/screen`, this.screenArea, screen, p.name, [], { muted: false, screen: true });
    }
    place("self", this.grid, this.self.camera, `${this.self.name} (you)`, badgesOf(this.self.media), { muted: true, screen: false });
    for (const p of this.participants) {
      const camera = p.streams.find((s) => !isScreen(s, p.media)) ?? null;
      place(p.id, this.grid, camera, p.name, badgesOf(p.media), { muted: false, screen: false });
    }
    for (const [key, tile] of this.tiles) {
      if (!wanted.has(key)) {
        tile.video.srcObject = null;
        tile.element.remove();
        this.tiles.delete(key);
      }
    }
    this.element.classList.toggle("sharing", this.screenArea.childElementCount > 0);
  }
}

/** Whether `stream` carries the screen the participant announced. */
function isScreen(stream: MediaStream, media: MediaState): boolean {
  if (!media.screen || !media.screenTrack) return false;
  return stream.id === media.screenTrack || stream.getTracks().some((t) => t.id === media.screenTrack);
}

/** Marks when the first frame from anyone else is on screen (`make bench-ui` reads it). */
function markFirstFrame(video: HTMLVideoElement): void {
  if (performance.getEntriesByName("confab:first-remote-frame").length > 0) return;
  video.requestVideoFrameCallback(() => {
    if (performance.getEntriesByName("confab:first-remote-frame").length === 0) performance.mark("confab:first-remote-frame");
  });
}
