import type { Kysely, Transaction } from "kysely";
import { fail } from "../../errors/index.js";
import type { KeyProtector } from "../../keys/types.js";
import { isUniqueViolation, type Store } from "../../store/index.js";
import { PreparedQuery } from "../../store/prepared.js";
import type { Clock } from "../../util/clock.js";
import type { SecretsTables } from "../migrations.js";
import type { Mount } from "../mounts.js";
import {
  DEFAULT_MAX_VERSIONS,
  type KeyMeta,
  type VersionMeta,
  isGone,
  newKeyMeta,
  versionBody,
} from "./meta.js";
import { Kv2ReadCache, type VersionBody, deepFreeze } from "./read-cache.js";

/** What a read found. "gone": deleted or destroyed (Vault answers 404 with the version's metadata). */
export type VersionRead =
  | { kind: "missing" }
  | { kind: "gone"; meta: KeyMeta; n: number; v: VersionMeta }
  | { kind: "ok"; meta: KeyMeta; n: number; v: VersionMeta; body: VersionBody };

/** A change to a key computed from its current metadata inside one transaction. */
interface Change {
  meta: KeyMeta | null;
  put?: { n: number; data: Record<string, unknown> };
  drop?: number[];
}

/**
 * A writer only loses a round when another writer of the same key committed (PostgreSQL: a duplicate
 * version row or a stale rev), so with W concurrent writers each one retries at most W-1 times. 8 made a
 * burst of 20 plain writes to one key fail with a 500 (the raw duplicate-key error) on PostgreSQL.
 */
const MAX_RETRIES = 128;
/** Keys whose opened metadata and recent version bodies the read cache keeps by default. */
export const DEFAULT_READ_CACHE_KEYS = 10_000;

const selectMeta = new PreparedQuery<SecretsTables, { rev: number; blob: Buffer }>(2, (db, mount, path) =>
  db.selectFrom("secrets_kv_key").select(["rev", "blob"]).where("mount", "=", mount).where("path", "=", path),
);
const selectExists = new PreparedQuery<SecretsTables, { rev: number }>(2, (db, mount, path) =>
  db.selectFrom("secrets_kv_key").select("rev").where("mount", "=", mount).where("path", "=", path),
);
const selectVersion = new PreparedQuery<SecretsTables, { blob: Buffer }>(3, (db, mount, path, version) =>
  db
    .selectFrom("secrets_kv_version")
    .select("blob")
    .where("mount", "=", mount)
    .where("path", "=", path)
    .where("version", "=", version as unknown as number),
);
const insertVersion = new PreparedQuery<SecretsTables, never>(4, (db, mount, path, version, blob) =>
  db.insertInto("secrets_kv_version").values({
    mount,
    path,
    version: version as unknown as number,
    blob: blob as unknown as Buffer,
  }),
);
const deleteVersion = new PreparedQuery<SecretsTables, never>(3, (db, mount, path, version) =>
  db
    .deleteFrom("secrets_kv_version")
    .where("mount", "=", mount)
    .where("path", "=", path)
    .where("version", "=", version as unknown as number),
);
// Both the rev and the blob the change was computed from must still be there: a rev alone repeats after a
// key is deleted and written again, the blob (under a fresh random nonce each time) never does.
const updateKey = new PreparedQuery<SecretsTables, never>(6, (db, rev, blob, mount, path, oldRev, oldBlob) =>
  db
    .updateTable("secrets_kv_key")
    .set({ rev: rev as unknown as number, blob: blob as unknown as Buffer })
    .where("mount", "=", mount)
    .where("path", "=", path)
    .where("rev", "=", oldRev as unknown as number)
    .where("blob", "=", oldBlob as unknown as Buffer),
);

const metaAad = (m: Mount, path: string) => `secrets/kv/${m.uuid}/${path}/meta`;
const versionAad = (m: Mount, path: string, n: number) => `secrets/kv/${m.uuid}/${path}/v${n}`;

/**
 * KV v2 storage: per key one sealed metadata row and one sealed row per version, each bound by its
 * associated data to mount, path and version. Writers use optimistic concurrency on the key's `rev`
 * (and its sealed blob), so two nodes writing the same key cannot both take the same version number.
 *
 * On SQLite, whose file one server holds (its lock), a write to a key this store last read or wrote
 * starts from the cached metadata instead of looking the row up: should the row have changed meanwhile
 * (another process on the file, a transaction that never committed), the final update matches no row,
 * the transaction rolls back and the retry looks the row up. On PostgreSQL other nodes write the same
 * rows, so every write looks first rather than lose a round to each of their changes.
 */
export class Kv2Store {
  private readonly db: Kysely<SecretsTables>;
  private readonly cache: Kv2ReadCache;

  constructor(
    private readonly store: Store,
    private readonly barrier: KeyProtector,
    private readonly clock: Clock,
    opts: { readCacheKeys?: number } = {},
  ) {
    this.db = store.db.withTables<SecretsTables>();
    this.cache = new Kv2ReadCache(opts.readCacheKeys ?? DEFAULT_READ_CACHE_KEYS);
    this.writesFromCache = store.changeStamp !== undefined;
  }

  /** Whether a write may start from the cached metadata (see the class comment). */
  private readonly writesFromCache: boolean;

  /** Drops every opened key (the server is sealing: no plaintext stays in memory). */
  forgetAll(): void {
    this.cache.clear();
  }

  private now(): number {
    return this.clock.now().getTime();
  }

  /**
   * The key's metadata as stored now, a copy the caller may change, with the row's rev and blob. When the
   * sealed blob is the one the read cache opened (or this node last wrote), its cached JSON is parsed
   * instead of the blob decrypted. `fromCache`: a cached entry with a known rev is taken without looking
   * at the store (for a write, whose final update checks both; see the class comment).
   */
  async meta(
    m: Mount,
    path: string,
    db: Kysely<SecretsTables> = this.db,
    fromCache = false,
  ): Promise<FoundMeta | undefined> {
    const id = m.uuid + "\u0000" + path;
    if (fromCache) {
      const e = this.cache.peek(id);
      if (e?.rev !== undefined)
        return { meta: JSON.parse(e.text) as KeyMeta, rev: e.rev, blob: e.blob, cached: true };
    }
    const [row] = await selectMeta.run(db, m.uuid, path);
    if (!row) return undefined;
    const rev = Number(row.rev);
    const hit = this.cache.get(id, row.blob);
    if (hit) {
      hit.rev = rev;
      return { meta: JSON.parse(hit.text) as KeyMeta, rev, blob: row.blob };
    }
    const plain = await this.barrier.decrypt(metaAad(m, path), new Uint8Array(row.blob));
    return { meta: JSON.parse(Buffer.from(plain).toString("utf8")) as KeyMeta, rev, blob: row.blob };
  }

  /** Whether the key has metadata (a write to it is then an update, not a create). Nothing is decrypted. */
  async exists(m: Mount, path: string): Promise<boolean> {
    return (await selectExists.run(this.db, m.uuid, path)).length > 0;
  }

  /**
   * Reads version `n` (0: the current one). The key's sealed metadata is read from the store, unless the
   * store's change stamp says nothing changed since the cached blob was last seen there; when it is the
   * blob last opened, the opened metadata and version bodies are reused (Kv2ReadCache).
   */
  async read(m: Mount, path: string, n: number): Promise<VersionRead> {
    const id = m.uuid + "\u0000" + path;
    // Taken before the lookup: a change made while the lookup waits leaves the entry at an older stamp.
    const stamp = this.store.changeStamp?.();
    let key = stamp === undefined ? undefined : this.cache.fresh(id, stamp);
    if (!key) {
      const [row] = await selectMeta.run(this.db, m.uuid, path);
      if (!row) {
        this.cache.forget(id);
        return { kind: "missing" };
      }
      const blob = row.blob;
      key = this.cache.get(id, blob);
      if (!key) {
        const plain = await this.barrier.decrypt(metaAad(m, path), new Uint8Array(blob));
        key = this.cache.set(id, blob, Buffer.from(plain).toString("utf8"), Number(row.rev));
      }
      if (stamp !== undefined) this.cache.seenAt(key, stamp);
    }
    const meta = this.cache.metaOf(key);
    const num = n === 0 ? meta.current : n;
    const v = meta.versions[String(num)];
    if (!v) return { kind: "missing" };
    if (isGone(v, this.now())) return { kind: "gone", meta, n: num, v };
    let body = key.bodies.get(num);
    if (!body) {
      const [ver] = await selectVersion.run(this.db, m.uuid, path, num);
      if (!ver) return { kind: "gone", meta, n: num, v };
      const plain = await this.barrier.decrypt(versionAad(m, path, num), new Uint8Array(ver.blob));
      const data = JSON.parse(Buffer.from(plain).toString("utf8")) as Record<string, unknown>;
      body = deepFreeze({ data, metadata: versionBody(meta, num, v) });
      this.cache.addBody(key, num, body, plain.byteLength);
    }
    return { kind: "ok", meta, n: num, v, body };
  }

  /** Writes a new version (Vault's check-and-set rules); returns its number and metadata. */
  async write(
    m: Mount,
    path: string,
    data: Record<string, unknown> | ((current: Record<string, unknown>) => Record<string, unknown>),
    cas: number | undefined,
    opts: { mustExist?: boolean } & Durability = {},
  ): Promise<{ meta: KeyMeta; n: number; v: VersionMeta }> {
    let result: { meta: KeyMeta; n: number; v: VersionMeta } | undefined;
    await this.mutate(m, path, opts, async (found, trx) => {
      const now = this.now();
      const meta: KeyMeta = found
        ? found // parsed afresh from the store for this transaction: ours to change
        : newKeyMeta(now);
      if ((meta.casRequired || m.config.kv.cas_required) && cas === undefined) fail("FR_KV_CAS_REQUIRED");
      if (cas !== undefined && cas !== meta.current) fail("FR_KV_CAS_MISMATCH");
      let next: Record<string, unknown>;
      if (typeof data === "function") {
        // PATCH: applies to the current version, which must be readable.
        const cur = meta.versions[String(meta.current)];
        if (!found || !cur || isGone(cur, now))
          fail("FR_NOT_FOUND", `no readable current version at ${m.path}data/${path}`);
        const row = await trx
          .selectFrom("secrets_kv_version")
          .select("blob")
          .where("mount", "=", m.uuid)
          .where("path", "=", path)
          .where("version", "=", meta.current)
          .executeTakeFirst();
        if (!row) fail("FR_NOT_FOUND", `no readable current version at ${m.path}data/${path}`);
        const plain = await this.barrier.decrypt(versionAad(m, path, meta.current), new Uint8Array(row.blob));
        next = data(JSON.parse(Buffer.from(plain).toString("utf8")) as Record<string, unknown>);
      } else {
        if (opts.mustExist && !found) fail("FR_NOT_FOUND", `no secret at ${m.path}data/${path}`);
        next = data;
      }
      const n = meta.current + 1;
      const dva = meta.deleteVersionAfter || m.config.kv.delete_version_after;
      const v: VersionMeta = { created: now, deleted: dva > 0 ? now + dva * 1000 : 0, destroyed: false };
      meta.versions[String(n)] = v;
      meta.current = n;
      meta.updated = now;
      const drop = prune(meta, meta.maxVersions || m.config.kv.max_versions || DEFAULT_MAX_VERSIONS);
      result = { meta, n, v };
      return { meta, put: { n, data: next }, drop };
    });
    return result!;
  }

  /** Applies `fn` to the metadata (creating it when `create`); `fn` returns the versions to destroy. */
  async updateMeta(
    m: Mount,
    path: string,
    fn: (meta: KeyMeta, now: number) => number[] | void,
    create: boolean,
    opts: Durability = {},
  ): Promise<boolean> {
    let touched = false;
    await this.mutate(m, path, opts, (found) => {
      const now = this.now();
      if (!found && !create) return Promise.resolve(undefined);
      const meta: KeyMeta = found
        ? found // parsed afresh from the store for this transaction: ours to change
        : newKeyMeta(now);
      const destroyed = fn(meta, now) ?? [];
      meta.updated = now;
      touched = true;
      return Promise.resolve({ meta, drop: destroyed });
    });
    return touched;
  }

  /** Deletes the key's metadata and every version. */
  async deleteAll(m: Mount, path: string): Promise<void> {
    await this.store.transaction(async (trx) => {
      const t = trx.withTables<SecretsTables>();
      await t.deleteFrom("secrets_kv_version").where("mount", "=", m.uuid).where("path", "=", path).execute();
      await t.deleteFrom("secrets_kv_key").where("mount", "=", m.uuid).where("path", "=", path).execute();
    });
    this.cache.forget(m.uuid + "\u0000" + path);
  }

  /** One transaction: read the key's metadata, compute the change, write it if nobody else did meanwhile. */
  private async mutate(
    m: Mount,
    path: string,
    opts: Durability,
    fn: (meta: KeyMeta | undefined, trx: Kysely<SecretsTables>) => Promise<Change | undefined>,
  ): Promise<void> {
    // The first attempt may start from the cache; a retry looks at the store. Whatever fails on a change
    // computed from the cache (a CAS mismatch, a version to patch that is not there) may be the cache's
    // staleness, so it is tried again from the store before it counts.
    let attempt = 0;
    let fromCache = false;
    const body = async (trx: Transaction<object>) => {
      const t = trx.withTables<SecretsTables>();
      const found = await this.meta(m, path, t, attempt === 0 && this.writesFromCache);
      fromCache = found?.cached === true;
      const change = await fn(found?.meta, t);
      if (!change) return true;
      return this.apply(t, m, path, found, change);
    };
    for (; ; attempt++) {
      try {
        let done: boolean;
        if (opts.durable) {
          const c = await this.store.transactionCommitted(body);
          opts.durable(c.durable);
          done = c.result;
        } else {
          done = await this.store.transaction(body);
        }
        if (done) return;
      } catch (e) {
        if (!fromCache && !isRetryable(e)) throw e;
      }
      if (attempt >= MAX_RETRIES)
        fail("FR_CONFLICT", `${m.path}${path} is being changed concurrently; retry`);
    }
  }

  private async apply(
    t: Kysely<SecretsTables>,
    m: Mount,
    path: string,
    found: FoundMeta | undefined,
    change: Change,
  ): Promise<boolean> {
    if (change.put) {
      const plain = Buffer.from(JSON.stringify(change.put.data), "utf8");
      const blob = Buffer.from(await this.barrier.encrypt(versionAad(m, path, change.put.n), plain));
      await insertVersion.execute(t, m.uuid, path, change.put.n, blob);
    }
    if (change.drop?.length === 1) {
      await deleteVersion.execute(t, m.uuid, path, change.drop[0]);
    } else if (change.drop?.length) {
      await t
        .deleteFrom("secrets_kv_version")
        .where("mount", "=", m.uuid)
        .where("path", "=", path)
        .where("version", "in", change.drop)
        .execute();
    }
    if (!change.meta) return true;
    const metaText = JSON.stringify(change.meta);
    const blob = Buffer.from(await this.barrier.encrypt(metaAad(m, path), Buffer.from(metaText, "utf8")));
    const rev = found ? found.rev + 1 : 1;
    if (!found) {
      await t.insertInto("secrets_kv_key").values({ mount: m.uuid, path, rev, blob }).execute();
    } else {
      const r = await updateKey.execute(t, rev, blob, m.uuid, path, found.rev, found.blob);
      // Lost the race (or started from a stale cache entry): throwing rolls the transaction back, and
      // mutate() retries it from the store.
      if (Number(r.numAffectedRows) !== 1) throw new RetryError();
    }
    // Write-through: the next read or write of the key finds this metadata without decrypting it. Should
    // the transaction not commit, the blob never reaches the store: no lookup matches it, and a write
    // starting from it matches no row and is retried from the store.
    this.cache.set(m.uuid + "\u0000" + path, blob, metaText, rev);
    return true;
  }

  /** The keys and folders directly under `prefix` ("" or ending in "/"), sorted. */
  async list(m: Mount, prefix: string): Promise<string[]> {
    return listUnder(this.db, m, prefix);
  }
}

/**
 * `durable`: when given, a change resolves as soon as it has committed and hands this callback the
 * promise of its durability, which the caller must wait for before acknowledging the change (a route
 * passes it to ctx.beforeReply, so the sync overlaps with the response's audit entry).
 */
export interface Durability {
  durable?: (p: Promise<void>) => void;
}

class RetryError extends Error {}

/** A key's metadata as found for a change, with the row's rev and sealed blob the change must replace. */
interface FoundMeta {
  meta: KeyMeta;
  rev: number;
  blob: Buffer;
  /** Taken from the cache without looking at the store. */
  cached?: boolean;
}

/** Lost a race with another writer: our own rev check, a duplicate version row, or a serialization failure. */
function isRetryable(e: unknown): boolean {
  return e instanceof RetryError || isUniqueViolation(e) || (e as { code?: unknown })?.code === "40001";
}

/** Drops the oldest versions beyond `max`; returns their numbers. */
function prune(meta: KeyMeta, max: number): number[] {
  const nums = Object.keys(meta.versions)
    .map(Number)
    .sort((a, b) => a - b);
  const drop = nums.slice(0, Math.max(0, nums.length - max));
  for (const n of drop) delete meta.versions[String(n)];
  if (drop.length) meta.oldest = nums[drop.length] ?? meta.current;
  return drop;
}

/** Immediate children of `prefix` among a mount's keys: "name" for keys, "name/" for folders. */
export async function listUnder(db: Kysely<SecretsTables>, m: Mount, prefix: string): Promise<string[]> {
  const rows = await db
    .selectFrom("secrets_kv_key")
    .select("path")
    .where("mount", "=", m.uuid)
    // substr counts code points on both dialects; LIKE would treat % and _ specially.
    .where((eb) => eb(eb.fn("substr", ["path", eb.val(1), eb.val([...prefix].length)]), "=", prefix))
    .execute();
  const out = new Set<string>();
  for (const { path } of rows) {
    const rest = path.slice(prefix.length);
    const i = rest.indexOf("/");
    out.add(i < 0 ? rest : rest.slice(0, i + 1));
  }
  out.delete("");
  return [...out].sort();
}
