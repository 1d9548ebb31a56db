// Decodes one video track from the desktop engine with WebCodecs and draws it on the tile's
// canvas, off the page's thread. Messages in: `{ canvas, codec }` once, then
// `{ keyframe, timestamp, data }` per encoded frame. Out: `{ decoded, width, height }` as
// frames are drawn, `{ error }` when the decoder fails (it waits for the next keyframe).
export type ToWorker = { canvas: OffscreenCanvas; codec: string } | { keyframe: boolean; timestamp: number; data: ArrayBuffer };
export type FromWorker = { decoded: number; width: number; height: number } | { error: string };

let canvas: OffscreenCanvas | null = null;
let context: OffscreenCanvasRenderingContext2D | null = null;
let codec = "vp8";
let decoder: VideoDecoder | null = null;
let decoded = 0;

const tell = (message: FromWorker) => self.postMessage(message);

function newDecoder(): VideoDecoder {
  const made = new VideoDecoder({
    output: (frame) => {
      if (canvas && context) {
        if (canvas.width !== frame.displayWidth || canvas.height !== frame.displayHeight) {
          [canvas.width, canvas.height] = [frame.displayWidth, frame.displayHeight];
        }
        context.drawImage(frame, 0, 0);
      }
      decoded += 1;
      tell({ decoded, width: frame.displayWidth, height: frame.displayHeight });
      frame.close();
    },
    error: (e) => {
      tell({ error: String(e) });
      // A closed decoder decodes nothing more: a new one starts at the next keyframe.
      decoder = null;
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
  if (!decoder) {
    if (!message.keyframe) return;
    decoder = newDecoder();
  }
  const type = message.keyframe ? "key" : "delta";
  decoder.decode(new EncodedVideoChunk({ type, timestamp: message.timestamp * 1000, data: message.data }));
};
