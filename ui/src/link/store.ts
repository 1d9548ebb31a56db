// The document of each room, kept in IndexedDB so that a reload mid-meeting loses nothing: a
// snapshot plus the changes saved since, compacted into a new snapshot now and then.
import * as A from "@automerge/automerge/slim";
import { type Doc, type MeetingSchema, isMeetingDoc } from "./document";

const DB_NAME = "confab";
const SNAPSHOTS = "snapshots";
const CHANGES = "changes";
const COMPACT_AFTER = 500;

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error("IndexedDB request failed"));
  });
}

function done(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = tx.onabort = () => reject(tx.error ?? new Error("IndexedDB transaction failed"));
  });
}

export class RoomStore {
  /** Changes stored since the snapshot. */
  private pending = 0;
  /** Incremental saves only make sense on top of a stored snapshot (it holds the genesis). */
  private hasSnapshot = false;
  /** Saves run one after another, in the order the edits were made. */
  private queue: Promise<void> = Promise.resolve();

  private constructor(
    private readonly db: IDBDatabase,
    private readonly room: string,
  ) {}

  static async open(room: string): Promise<RoomStore> {
    const open = indexedDB.open(DB_NAME, 1);
    open.onupgradeneeded = () => {
      open.result.createObjectStore(SNAPSHOTS);
      open.result.createObjectStore(CHANGES, { autoIncrement: true }).createIndex("room", "room");
    };
    return new RoomStore(await request(open), room);
  }

  /** The stored document of this room, or null when there is none (or it is unreadable). */
  async load(actor: string): Promise<Doc | null> {
    const tx = this.db.transaction([SNAPSHOTS, CHANGES], "readonly");
    const snapshot = (await request(tx.objectStore(SNAPSHOTS).get(this.room))) as Uint8Array | undefined;
    const changes = (await request(tx.objectStore(CHANGES).index("room").getAll(this.room))) as { bytes: Uint8Array }[];
    this.hasSnapshot = snapshot !== undefined;
    if (!snapshot && changes.length === 0) return null;
    try {
      let doc = A.load<MeetingSchema>(snapshot ?? new Uint8Array(), { actor });
      for (const change of changes) doc = A.loadIncremental(doc, change.bytes);
      this.pending = changes.length;
      if (isMeetingDoc(doc)) return doc;
    } catch (e) {
      console.error("the stored notes of this room cannot be read", e);
    }
    // Unreadable: the next save starts over with a whole snapshot rather than building on it.
    this.hasSnapshot = false;
    return null;
  }

  /** Stores what `doc` holds beyond what was stored before; resolves once it is on disk. */
  save(doc: Doc): Promise<void> {
    const compact = !this.hasSnapshot || this.pending >= COMPACT_AFTER;
    const whole = compact ? A.save(doc) : null;
    const bytes = compact ? null : A.saveIncremental(doc);
    if (bytes?.length === 0) return this.queue;
    if (compact) {
      this.pending = 0;
      this.hasSnapshot = true;
    } else {
      this.pending++;
    }
    // One failed save (a full disk) must not fail every later one.
    this.queue = this.queue.catch(() => undefined).then(async () => {
      if (whole) {
        const tx = this.db.transaction([SNAPSHOTS, CHANGES], "readwrite");
        tx.objectStore(SNAPSHOTS).put(whole, this.room);
        const index = tx.objectStore(CHANGES).index("room");
        const keys = await request(index.getAllKeys(this.room));
        for (const key of keys) tx.objectStore(CHANGES).delete(key);
        await done(tx);
      } else {
        const tx = this.db.transaction(CHANGES, "readwrite");
        tx.objectStore(CHANGES).add({ room: this.room, bytes });
        await done(tx);
      }
    });
    return this.queue;
  }
}
