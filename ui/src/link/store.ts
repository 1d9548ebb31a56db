// The document of each room, kept in IndexedDB so that a reload mid-meeting loses nothing.
//
// Every page (tab) writes records of its own: a snapshot (`save()`) and the changes saved since,
// compacted into a new snapshot now and then. Two tabs of one room can write at once, so a tab
// only ever deletes records whose content it holds: its own, and those it loaded when it opened.
import * as A from "@automerge/automerge/slim";
import { type Doc, type MeetingSchema, isMeetingDoc } from "./document";

const DB_NAME = "confab";
const DB_VERSION = 2;
const SNAPSHOTS = "snapshots";
const CHANGES = "changes";
const COMPACT_AFTER = 500;

/** A stored piece of a room's document. */
interface StoredRecord {
  room: string;
  bytes: Uint8Array;
}

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
  /** Changes this tab stored since its snapshot. */
  private pending = 0;
  /** Incremental saves only make sense on top of a stored snapshot (it holds the genesis). */
  private hasSnapshot = false;
  /** Keys of records whose content this tab holds, to delete at the next compaction. */
  private held: { snapshots: IDBValidKey[]; changes: IDBValidKey[] } = { snapshots: [], changes: [] };
  /** Reads the page's document as it is now (a document object is outdated once the next
   * change or sync message is applied), and whether it has changes not written yet. */
  private current: (() => Doc) | null = null;
  private dirty = false;
  /** The writes under way: one transaction at a time, each taking every change made before it
   * starts. A burst of keystrokes is then a few transactions, not one queued per key (those
   * still queued when a tab closes are lost). */
  private writing: Promise<void> | null = null;

  private constructor(
    private readonly db: IDBDatabase,
    private readonly room: string,
  ) {}

  static async open(room: string): Promise<RoomStore> {
    const open = indexedDB.open(DB_NAME, DB_VERSION);
    open.onupgradeneeded = () => {
      const db = open.result;
      // Version 1 (one snapshot per room, shared by all tabs) never left development.
      for (const name of [SNAPSHOTS, CHANGES]) if (db.objectStoreNames.contains(name)) db.deleteObjectStore(name);
      db.createObjectStore(SNAPSHOTS, { autoIncrement: true }).createIndex("room", "room");
      db.createObjectStore(CHANGES, { autoIncrement: true }).createIndex("room", "room");
    };
    return new RoomStore(await request(open), room);
  }

  /** The stored document of this room (every tab's records merged), or null when there is none
   * or it is unreadable. */
  async load(actor: string): Promise<Doc | null> {
    const tx = this.db.transaction([SNAPSHOTS, CHANGES], "readonly");
    const read = async (store: string) => {
      const index = tx.objectStore(store).index("room");
      const [keys, records] = await Promise.all([
        request(index.getAllKeys(this.room)),
        request(index.getAll(this.room)) as Promise<StoredRecord[]>,
      ]);
      return { keys, records };
    };
    const [snapshots, changes] = [await read(SNAPSHOTS), await read(CHANGES)];
    let doc: Doc | null = null;
    const held: typeof this.held = { snapshots: [], changes: [] };
    // Record by record: one that cannot be read is left alone (and logged), not the end of the
    // rest. Another tab's snapshot loads like changes: it only adds what this one lacks.
    const take = (record: StoredRecord, key: IDBValidKey, into: IDBValidKey[]) => {
      try {
        doc = doc ? A.loadIncremental(doc, record.bytes) : A.load<MeetingSchema>(record.bytes, { actor });
        into.push(key);
      } catch (e) {
        console.error("a stored piece of this room's notes cannot be read", e);
      }
    };
    snapshots.records.forEach((record, i) => take(record, snapshots.keys[i]!, held.snapshots));
    if (doc === null) return null; // changes build on a snapshot
    changes.records.forEach((record, i) => take(record, changes.keys[i]!, held.changes));
    if (!isMeetingDoc(doc)) return null;
    this.held = held;
    return doc;
  }

  /** Stores what the document (`current()` as it is when the write starts) holds beyond what
   * was stored before; resolves once it is on disk, or rejects if a write failed (a full disk;
   * the next save tries again). */
  save(current: () => Doc): Promise<void> {
    this.current = current;
    this.dirty = true;
    this.writing ??= this.writeAll();
    return this.writing;
  }

  private async writeAll(): Promise<void> {
    let failed: unknown = null;
    while (this.dirty && this.current) {
      this.dirty = false;
      await this.write(this.current()).catch((e: unknown) => {
        failed ??= e;
        // What that write held is past `saveIncremental` now: the next write is a whole snapshot.
        this.pending = COMPACT_AFTER;
      });
    }
    // In the same step as the last look at `dirty`: a save from now on starts writing again.
    this.writing = null;
    if (failed !== null) throw failed;
  }

  /** One transaction: everything `doc` holds beyond the last write. */
  private async write(doc: Doc): Promise<void> {
    const compact = !this.hasSnapshot || this.pending >= COMPACT_AFTER;
    if (compact) {
      const whole = A.save(doc);
      // The new snapshot holds everything this tab holds: its older records can go.
      const tx = this.db.transaction([SNAPSHOTS, CHANGES], "readwrite");
      const key = await request(tx.objectStore(SNAPSHOTS).add({ room: this.room, bytes: whole }));
      for (const old of this.held.snapshots) tx.objectStore(SNAPSHOTS).delete(old);
      for (const old of this.held.changes) tx.objectStore(CHANGES).delete(old);
      await done(tx);
      this.held = { snapshots: [key], changes: [] };
      this.pending = 0;
      this.hasSnapshot = true;
      return;
    }
    const bytes = A.saveIncremental(doc);
    if (bytes.length === 0) return;
    const tx = this.db.transaction(CHANGES, "readwrite");
    const key = await request(tx.objectStore(CHANGES).add({ room: this.room, bytes }));
    await done(tx);
    this.held.changes.push(key);
    this.pending++;
  }
}
