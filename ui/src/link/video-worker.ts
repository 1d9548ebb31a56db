// Draws one video track from the desktop engine on the tile's canvas, off the page's thread.
// Messages in: `{ canvas, codec }` once (codec null: the engine sends pictures), then per frame
// either `{ keyframe, timestamp, arrived, data }` (encoded, decoded here by WebCodecs) or
// `{ width, height, arrived, rgba }` (a picture). Out: `{ shown, width, height, latency }` as
// each is drawn (latency: ms since the engine had the frame), `{ error }` when the decoder fails
// (it waits for the next keyframe).
export type ToWorker =
  | { canvas: OffscreenCanvas; codec: string | null }
  | { keyframe: boolean; timestamp: number; arrived: number; data: ArrayBuffer }
  | { width: number; height: number; arrived: number; rgba: ArrayBuffer };
export type FromWorker = { shown: number; width: number; height: number; latency: number } | { error: string };

let canvas: OffscreenCanvas | null = null;
let context: OffscreenCanvasRenderingContext2D | null = null;
let codec: string | null = null;
let decoder: VideoDecoder | null = null;
let shown = 0;
/** When the engine had each frame in the decoder, by its timestamp (µs). */
const arrivals = new Map<number, number>();

const tell = (message: FromWorker) => self.postMessage(message);
const now = () => performance.timeOrigin + performance.now();

function draw(picture: CanvasImageSource | ImageData, width: number, height: number, arrived: number): void {
  if (canvas && context) {
    if (canvas.width !== width || canvas.height !== height) [canvas.width, canvas.height] = [width, height];
    if (picture instanceof ImageData) context.putImageData(picture, 0, 0);
    else context.drawImage(picture, 0, 0);
  }
  shown += 1;
  tell({ shown, width, height, latency: now() - arrived });
}

function newDecoder(codec: string): VideoDecoder {
  const made = new VideoDecoder({
    output: (frame) => {
      const arrived = arrivals.get(frame.timestamp) ?? now();
      arrivals.delete(frame.timestamp);
      draw(frame, frame.displayWidth, frame.displayHeight, arrived);
      frame.close();
    },
    error: (e) => {
      tell({ error: String(e) });
      // A closed decoder decodes nothing more: a new one starts at the next keyframe.
      decoder = null;
      arrivals.clear();
    },
  });
  made.configure({ codec, optimizeForLatency: true });
  return made;
}

self.onmessage = (event: MessageEvent<ToWorker>) => {
  const message = event.data;
  if ("canvas" in message) {
    canvas = message.canvas;
    context = canvas.getContext("2d");
    codec = message.codec;
    return;
  }
  if ("rgba" in message) {
    const { width, height, arrived, rgba } = message;
    return draw(new ImageData(new Uint8ClampedArray(rgba), width, height), width, height, arrived);
  }
  if (codec === null) return;
  if (!decoder) {
    if (!message.keyframe) return;
    decoder = newDecoder(codec);
  }
  const timestamp = message.timestamp * 1000;
  arrivals.set(timestamp, message.arrived);
  // A frame the decoder never gave back (it skipped it) is forgotten, not kept for ever.
  if (arrivals.size > 120) arrivals.delete(arrivals.keys().next().value as number);
  decoder.decode(new EncodedVideoChunk({ type: message.keyframe ? "key" : "delta", timestamp, data: message.data }));
};
