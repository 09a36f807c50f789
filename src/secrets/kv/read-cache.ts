import type { KeyMeta } from "./meta.js";

/** What a data read answers for one version: Vault's `data` object, frozen all the way down. */
export type VersionBody = Readonly<{
  data: Readonly<Record<string, unknown>>;
  metadata: Readonly<Record<string, unknown>>;
}>;

/**
 * A key as last read or written: its sealed metadata exactly as stored, that metadata opened (as JSON
 * text, and parsed and frozen once a reader needs the object), and versions read.
 */
interface CachedKey {
  readonly blob: Buffer;
  readonly text: string;
  parsed: KeyMeta | undefined;
  readonly bodies: Map<number, VersionBody>;
  /** What this entry counts against the byte bound: the blob and the plaintexts it holds. */
  bytes: number;
  /** Whether the cache holds it (an entry handed out for one read only is not). */
  held: boolean;
  /** The store's change stamp (Store.changeStamp) at which `blob` was last seen in the store. */
  stamp: number | undefined;
  /** The key row's `rev` that went with `blob`, when known (Kv2Store's writes start from it). */
  rev: number | undefined;
}

/** Versions kept per key: a reader almost always asks for the current one. */
const VERSIONS_PER_KEY = 4;
/** Plaintext bytes the cache may hold in all; a single version larger than 1/64 of it is not kept. */
export const DEFAULT_CACHE_BYTES = 64 * 1024 * 1024;

/**
 * Opened KV v2 keys, so a read of an unchanged key needs one primary-key lookup instead of two lookups,
 * two decryptions and two JSON parses. An entry is used only while the key's sealed metadata in the store
 * is byte for byte the blob it was opened from: every change to a key or its versions rewrites that blob
 * under a fresh nonce (and deleting the key removes it), so a change made by any node — or a blob swapped
 * in the database — is never answered from here. On a store with a change stamp (SQLite), an entry whose
 * blob was seen in the store at the current stamp is used without looking again: nothing can have changed
 * since. Bounded by keys and by bytes (oldest key out first) and emptied on seal.
 */
export class Kv2ReadCache {
  private readonly keys = new Map<string, CachedKey>();
  private bytes = 0;

  constructor(
    private readonly capacity: number,
    private readonly maxBytes: number = DEFAULT_CACHE_BYTES,
  ) {}

  get size(): number {
    return this.keys.size;
  }

  /** Plaintext and blob bytes held. */
  get heldBytes(): number {
    return this.bytes;
  }

  /** The entry for `id` as last read or written, whatever the store holds now. */
  peek(id: string): CachedKey | undefined {
    return this.keys.get(id);
  }

  /** The entry for `id` if it was opened from exactly `blob`. */
  get(id: string, blob: Buffer): CachedKey | undefined {
    const e = this.keys.get(id);
    if (e === undefined) return undefined;
    if (e.blob.equals(blob)) return e;
    this.forget(id);
    return undefined;
  }

  /** The entry for `id` if its blob was seen in the store at change stamp `stamp` (see seenAt). */
  fresh(id: string, stamp: number): CachedKey | undefined {
    const e = this.keys.get(id);
    return e !== undefined && e.stamp === stamp ? e : undefined;
  }

  /** Records that the entry's blob was what the store held at change stamp `stamp`. */
  seenAt(e: CachedKey, stamp: number): void {
    if (e.held) e.stamp = stamp;
  }

  /**
   * Remembers the metadata `text` (its JSON) as opened from `blob` (stored with `rev`); returns the entry,
   * which is not kept when the cache is off or the entry alone would take too much of it.
   */
  set(id: string, blob: Buffer, text: string, rev?: number): CachedKey {
    const e: CachedKey = {
      rev,
      blob,
      text,
      parsed: undefined,
      bodies: new Map(),
      bytes: blob.length + text.length,
      held: false,
      stamp: undefined,
    };
    this.forget(id);
    if (this.capacity <= 0 || e.bytes > this.maxBytes / 64) return e;
    this.makeRoom(e.bytes, 1);
    this.keys.set(id, e);
    e.held = true;
    this.bytes += e.bytes;
    return e;
  }

  /** The entry's metadata as an object, parsed on first use and frozen: shared by every reader. */
  metaOf(e: CachedKey): KeyMeta {
    return (e.parsed ??= deepFreeze(JSON.parse(e.text) as KeyMeta));
  }

  /** Keeps a version's body (`plainBytes` long) with its key: up to a few versions per key, none too large. */
  addBody(e: CachedKey, n: number, body: VersionBody, plainBytes: number): void {
    if (!e.held || e.bodies.size >= VERSIONS_PER_KEY || plainBytes > this.maxBytes / 64) return;
    e.bodies.set(n, body);
    e.bytes += plainBytes;
    this.bytes += plainBytes;
    if (this.bytes > this.maxBytes) this.makeRoom(0, 0);
  }

  forget(id: string): void {
    const e = this.keys.get(id);
    if (e === undefined) return;
    this.keys.delete(id);
    e.held = false;
    this.bytes -= e.bytes;
  }

  clear(): void {
    for (const e of this.keys.values()) e.held = false;
    this.keys.clear();
    this.bytes = 0;
  }

  /** Drops the oldest keys until `bytes` more (and `count` more keys) fit. */
  private makeRoom(bytes: number, count: number): void {
    for (const [id] of this.keys) {
      if (this.keys.size + count <= this.capacity && this.bytes + bytes <= this.maxBytes) return;
      this.forget(id);
    }
  }
}

/** Freezes a JSON value and everything in it; returns it. */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as object)) deepFreeze(v);
  }
  return value;
}
