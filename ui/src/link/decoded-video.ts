// A video from the desktop engine, drawn on a canvas the tile shows, off the page's thread: either
// encoded frames decoded here by WebCodecs, or, where this webview cannot decode the codec,
// pictures the engine decoded (the fallback path).
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

/** The video codecs (MIME types) this webview decodes itself; the engine decodes the others. */
export async function codecsDecodedHere(): Promise<string[]> {
  if (typeof VideoDecoder === "undefined") return [];
  const decoded: string[] = [];
  for (const mimeType of ["video/VP8", "video/VP9"]) {
    const codec = webCodecsName(mimeType);
    const support = codec === null ? null : await VideoDecoder.isConfigSupported({ codec }).catch(() => null);
    if (support?.supported) decoded.push(mimeType);
  }
  return decoded;
}

/** How many recent frames the latency figures cover: ten seconds at 30 fps. */
const LATENCY_WINDOW = 300;
/** The figures on the element are brought up to date every this many frames. */
const FIGURES_EVERY = 30;

export class DecodedVideo implements VideoView {
  readonly element = document.createElement("canvas");
  readonly hasPicture = true;
  private readonly worker = new Worker(new URL("./video-worker.ts", import.meta.url), { type: "module" });
  private received = 0;
  /** Milliseconds from the engine having each frame to its picture drawn, latest last. */
  private readonly latencies: number[] = [];

  /** `codec`: the WebCodecs codec of the encoded frames to come, or null when the engine sends
   * pictures; `drawn` is told of each frame drawn (the engine sends a picture only when the
   * window keeps up). */
  constructor(codec: string | null, onError: (message: string) => void, drawn: () => void = () => undefined) {
    // The figures a person (or a test, or `make bench-desktop`) can read off the tile.
    Object.assign(this.element.dataset, { framesDecoded: "0", framesReceived: "0", path: codec === null ? "engine" : "webcodecs" });
    const offscreen = this.element.transferControlToOffscreen();
    this.post({ canvas: offscreen, codec }, [offscreen]);
    this.worker.onmessage = (event: MessageEvent<FromWorker>) => {
      const message = event.data;
      if ("error" in message) return onError(`A video could not be decoded: ${message.error}`);
      this.shown(message.shown, message.width, message.height, message.latency);
      drawn();
    };
  }

  /** An encoded frame; `arrived`: when the engine had it whole (ms since the epoch). */
  frame(keyframe: boolean, timestamp: number, arrived: number, data: ArrayBuffer): void {
    this.count();
    this.post({ keyframe, timestamp, arrived, data }, [data]);
  }

  /** A picture the engine decoded, as RGBA. */
  picture(width: number, height: number, arrived: number, rgba: ArrayBuffer): void {
    this.count();
    this.post({ width, height, arrived, rgba }, [rgba]);
  }

  close(): void {
    this.worker.terminate();
  }

  private count(): void {
    this.received += 1;
    this.element.dataset.framesReceived = String(this.received);
  }

  private shown(shown: number, width: number, height: number, latency: number): void {
    const data = this.element.dataset;
    data.framesDecoded = String(shown);
    data.size = `${width}x${height}`;
    this.latencies.push(latency);
    if (this.latencies.length > LATENCY_WINDOW) this.latencies.shift();
    if (shown % FIGURES_EVERY === 0) {
      const sorted = [...this.latencies].sort((a, b) => a - b);
      const at = (p: number) => (sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0).toFixed(1);
      Object.assign(data, { latencyP50: at(0.5), latencyP99: at(0.99) });
    }
  }

  private post(message: ToWorker, transfer: Transferable[]): void {
    this.worker.postMessage(message, transfer);
  }
}
