import type { KeyMeta } from "./meta.js";

/** What a data read answers for one version: Vault's `data` object, frozen all the way down. */
export type VersionBody = Readonly<{
  data: Readonly<Record<string, unknown>>;
  metadata: Readonly<Record<string, unknown>>;
}>;

/** A key as last read: its sealed metadata exactly as stored, that metadata opened, and versions read. */
interface CachedKey {
  readonly blob: Buffer;
  readonly meta: KeyMeta;
  readonly bodies: Map<number, VersionBody>;
}

/** Versions kept per key: a reader almost always asks for the current one. */
const VERSIONS_PER_KEY = 4;

/**
 * Opened KV v2 keys, so a read of an unchanged key needs one primary-key lookup instead of two lookups,
 * two decryptions and two JSON parses. An entry is used only while the key's sealed metadata in the store
 * is byte for byte the blob it was opened from: every change to a key or its versions rewrites that blob
 * under a fresh nonce (and deleting the key removes it), so a change made by any node — or a blob swapped
 * in the database — is never answered from here. Bounded (oldest key out first) and emptied on seal.
 */
export class Kv2ReadCache {
  private readonly keys = new Map<string, CachedKey>();

  constructor(private readonly capacity: number) {}

  get size(): number {
    return this.keys.size;
  }

  /** The entry for `id` if it was opened from exactly `blob`. */
  get(id: string, blob: Buffer): CachedKey | undefined {
    const e = this.keys.get(id);
    if (e === undefined) return undefined;
    if (e.blob.equals(blob)) return e;
    this.keys.delete(id);
    return undefined;
  }

  /** Remembers `meta` as opened from `blob` (both are kept as given; meta is frozen here). */
  set(id: string, blob: Buffer, meta: KeyMeta): CachedKey {
    const e: CachedKey = { blob, meta: deepFreeze(meta), bodies: new Map() };
    if (this.capacity <= 0) return e;
    this.keys.delete(id);
    if (this.keys.size >= this.capacity) {
      const oldest = this.keys.keys().next();
      if (!oldest.done) this.keys.delete(oldest.value);
    }
    this.keys.set(id, e);
    return e;
  }

  /** Keeps a version's body with its key (up to a few versions per key). */
  addBody(e: CachedKey, n: number, body: VersionBody): void {
    if (e.bodies.size < VERSIONS_PER_KEY) e.bodies.set(n, body);
  }

  forget(id: string): void {
    this.keys.delete(id);
  }

  clear(): void {
    this.keys.clear();
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
