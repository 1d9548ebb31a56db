// Replays an editing trace through @automerge/automerge (one change per patch, like the Rust
// side), then saves and loads the result. Prints one JSON line; `make bench-core` runs it beside
// the Rust replays, each in a process of its own so peak memory is its own.
import * as A from "@automerge/automerge";
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";

const trace = JSON.parse(gunzipSync(readFileSync(process.argv[2])));
const patches = trace.txns.flatMap((t) => t.patches);

const start = performance.now();
let doc = A.from({ notes: "" });
for (const [pos, del, ins] of patches) {
  doc = A.change(doc, (d) => A.splice(d, ["notes"], pos, del, ins));
}
const replayMs = performance.now() - start;
if (doc.notes !== trace.endContent) throw new Error("replay did not reproduce endContent");

const saved = A.save(doc);
const loadStart = performance.now();
const loaded = A.load(saved);
const loadMs = performance.now() - loadStart;
if (loaded.notes !== trace.endContent) throw new Error("load did not reproduce endContent");

const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
console.log(
  JSON.stringify({
    patches: patches.length,
    replay_seconds: replayMs / 1000,
    peak_rss_mb: hwm ? Number(hwm[1]) / 1024 : null,
    saved_bytes: saved.length,
    load_seconds: loadMs / 1000,
  }),
);
