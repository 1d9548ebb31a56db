// A video from the desktop engine: encoded frames in, decoded by WebCodecs in a worker and drawn
// on a canvas the tile shows.
import type { VideoView } from "./meeting-link";
import type { FromWorker, ToWorker } from "./video-worker";

/** WebCodecs' name for a negotiated codec (`video/VP8`), or null for one it is not given. */
export function webCodecsName(mimeType: string): string | null {
  switch (mimeType.toLowerCase()) {
    case "video/vp8":
      return "vp8";
    case "video/vp9":
      return "vp09.00.10.08";
    default:
      return null;
  }
}

export class DecodedVideo implements VideoView {
  readonly element = document.createElement("canvas");
  readonly hasPicture = true;
  private readonly worker = new Worker(new URL("./video-worker.ts", import.meta.url), { type: "module" });

  constructor(codec: string, onError: (message: string) => void) {
    // Frames drawn so far, where a person (or a test) can read them.
    this.element.dataset.framesDecoded = "0";
    const offscreen = this.element.transferControlToOffscreen();
    this.post({ canvas: offscreen, codec }, [offscreen]);
    this.worker.onmessage = (event: MessageEvent<FromWorker>) => {
      const message = event.data;
      if ("error" in message) return onError(`A video could not be decoded: ${message.error}`);
      this.element.dataset.framesDecoded = String(message.decoded);
      this.element.dataset.size = `${message.width}x${message.height}`;
    };
  }

  frame(keyframe: boolean, timestamp: number, data: ArrayBuffer): void {
    this.post({ keyframe, timestamp, data }, [data]);
  }

  close(): void {
    this.worker.terminate();
  }

  private post(message: ToWorker, transfer: Transferable[]): void {
    this.worker.postMessage(message, transfer);
  }
}
