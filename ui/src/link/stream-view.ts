// The browser's video views: a `<video>` per MediaStream, made once and kept while it plays.
import type { VideoView } from "./meeting-link";

const videos = new WeakMap<MediaStream, HTMLVideoElement>();

/** The view of `stream`; `remote` ones play their sound (ours would echo) and mark the first
 * frame from anyone else. */
export function streamView(stream: MediaStream, { remote }: { remote: boolean }): VideoView {
  let video = videos.get(stream);
  if (!video) {
    video = document.createElement("video");
    video.autoplay = true;
    video.playsInline = true;
    video.muted = !remote;
    video.srcObject = stream;
    if (remote) markFirstFrame(video);
    videos.set(stream, video);
  }
  return { element: video, hasPicture: stream.getVideoTracks().length > 0 };
}

/** Marks when the first frame from anyone else is on screen (`make bench-ui` reads it). */
function markFirstFrame(video: HTMLVideoElement): void {
  if (performance.getEntriesByName("confab:first-remote-frame").length > 0) return;
  video.requestVideoFrameCallback(() => {
    if (performance.getEntriesByName("confab:first-remote-frame").length === 0) performance.mark("confab:first-remote-frame");
  });
}
