import { randomBytes } from "node:crypto";
import type { Kysely } from "kysely";
import { beforeAll, expect, it, vi } from "vitest";
import { describeEachStore } from "../../../test/helpers/stores.js";
import { FleetError } from "../../errors/index.js";
import { Barrier, sealMigrations } from "../../seal/index.js";
import type { KeyProtector } from "../../keys/types.js";
import type { Store } from "../../store/index.js";
import { PreparedQuery } from "../../store/prepared.js";
import { ManualClock } from "../../util/index.js";
import { secretsMigrations, type SecretsTables } from "../migrations.js";
import type { Mount } from "../mounts.js";
import { Kv2Store, type VersionRead } from "./kv2-store.js";
import { Kv2ReadCache } from "./read-cache.js";

const mount: Mount = {
  path: "secret/",
  uuid: "9b0c1d2e-0000-4000-8000-00000000c0de",
  accessor: "kv_cache",
  type: "kv",
  version: 2,
  description: "",
  config: {
    default_lease_ttl: 0,
    max_lease_ttl: 0,
    kv: { max_versions: 0, cas_required: false, delete_version_after: 0 },
  },
  createdAt: 0,
};

function dataOf(r: VersionRead): unknown {
  if (r.kind !== "ok") return r.kind;
  return r.body.data;
}

describeEachStore("secrets: KV v2 store and its read cache", (ctx) => {
  let store: Store;
  let barrier: Barrier;
  let clock: ManualClock;
  let db: Kysely<SecretsTables>;

  beforeAll(async () => {
    store = await ctx.open([sealMigrations, secretsMigrations]);
    clock = new ManualClock(Date.UTC(2026, 10, 23));
    barrier = new Barrier(store, clock);
    await barrier.initialize(randomBytes(32));
    db = store.db.withTables<SecretsTables>();
  });

  /** A key's metadata row as stored now. */
  const keyRow = (path: string) =>
    db
      .selectFrom("secrets_kv_key")
      .select(["blob", "rev"])
      .where("mount", "=", mount.uuid)
      .where("path", "=", path)
      .executeTakeFirstOrThrow();

  it("a node reading from its cache sees every change another node makes, including delete and re-create", async () => {
    // Two stores on one database: two nodes of a cluster.
    const a = new Kv2Store(store, barrier, clock);
    const b = new Kv2Store(store, barrier, clock);
    await b.write(mount, "app/db", { password: "one" }, undefined);
    const first = await a.read(mount, "app/db", 0);
    expect(dataOf(first)).toEqual({ password: "one" });
    const again = await a.read(mount, "app/db", 0);
    // Unchanged key: the opened body is reused, not decrypted again.
    expect(again.kind === "ok" && first.kind === "ok" && again.body === first.body).toBe(true);

    await b.write(mount, "app/db", { password: "two" }, 1);
    expect(dataOf(await a.read(mount, "app/db", 0))).toEqual({ password: "two" });
    expect(dataOf(await a.read(mount, "app/db", 1))).toEqual({ password: "one" });

    // Deleted and written again: the same rev and version number, different data.
    await b.deleteAll(mount, "app/db");
    expect(dataOf(await a.read(mount, "app/db", 0))).toBe("missing");
    await b.write(mount, "app/db", { password: "fresh" }, undefined);
    await a.read(mount, "app/db", 0);
    await b.deleteAll(mount, "app/db");
    await b.write(mount, "app/db", { password: "fresher" }, undefined);
    expect(dataOf(await a.read(mount, "app/db", 0))).toEqual({ password: "fresher" });

    // Soft delete and destroy by the other node.
    await b.updateMeta(mount, "app/db", (meta, now) => void (meta.versions["1"]!.deleted = now), false);
    expect(dataOf(await a.read(mount, "app/db", 0))).toBe("gone");
    await b.updateMeta(mount, "app/db", (meta) => void (meta.versions["1"]!.deleted = 0), false);
    expect(dataOf(await a.read(mount, "app/db", 0))).toEqual({ password: "fresher" });
  });

  it("a deletion time passing is seen on a cached key", async () => {
    const a = new Kv2Store(store, barrier, clock);
    await a.write(mount, "timed", { v: "x" }, undefined);
    await a.updateMeta(
      mount,
      "timed",
      (meta, now) => void (meta.versions["1"]!.deleted = now + 60_000),
      false,
    );
    expect(dataOf(await a.read(mount, "timed", 0))).toEqual({ v: "x" });
    clock.advance(61_000);
    expect(dataOf(await a.read(mount, "timed", 0))).toBe("gone");
  });

  it("metadata swapped in the database is opened afresh and refused when it belongs elsewhere", async () => {
    const a = new Kv2Store(store, barrier, clock);
    await a.write(mount, "left", { v: "left" }, undefined);
    await a.write(mount, "right", { v: "right" }, undefined);
    expect(dataOf(await a.read(mount, "left", 0))).toEqual({ v: "left" });
    const right = await keyRow("right");
    await db
      .updateTable("secrets_kv_key")
      .set({ blob: right.blob })
      .where("mount", "=", mount.uuid)
      .where("path", "=", "left")
      .execute();
    const err = await a.read(mount, "left", 0).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FleetError);
    expect((err as FleetError).code).toBe("FR_BARRIER_DECRYPT");
  });

  it("what a node writes goes to its cache: the next read and write decrypt nothing, and see the store", async () => {
    let decrypts = 0;
    const counting: KeyProtector = {
      encrypt: (aad, plain) => barrier.encrypt(aad, plain),
      decrypt: (aad, sealed) => {
        decrypts++;
        return barrier.decrypt(aad, sealed);
      },
    };
    const a = new Kv2Store(store, counting, clock);
    // "__proto__" is an ordinary JSON key and must come back as one.
    const data = JSON.parse('{"__proto__": {"x": "1"}, "list": [1, {"y": null}], "s": "v1"}') as Record<
      string,
      unknown
    >;
    const w1 = await a.write(mount, "through", data, undefined);
    const w2 = await a.write(mount, "through", { s: "v2" }, 1);
    expect(decrypts).toBe(0);
    // The metadata handed back is the caller's to change; the cache keeps its own copy.
    w2.meta.versions["1"]!.destroyed = true;
    w1.meta.current = 99;
    const r1 = await a.read(mount, "through", 1);
    expect(r1.kind).toBe("ok");
    expect(JSON.stringify(dataOf(r1))).toBe(JSON.stringify(data));
    expect(Object.keys(dataOf(r1) as object)).toEqual(["__proto__", "list", "s"]);
    expect(dataOf(await a.read(mount, "through", 0))).toEqual({ s: "v2" });
    expect(decrypts).toBe(2); // the two versions' bodies; the metadata came from the cache
    // Another node's write is seen: its blob is not the one this node wrote.
    const b = new Kv2Store(store, barrier, clock);
    await b.write(mount, "through", { s: "v3" }, 2);
    expect(dataOf(await a.read(mount, "through", 0))).toEqual({ s: "v3" });
    // A blob put back from before (as a transaction that never committed would leave it) is opened afresh.
    const old = await keyRow("through");
    await a.write(mount, "through", { s: "v4" }, 3);
    await db
      .updateTable("secrets_kv_key")
      .set({ blob: old.blob, rev: old.rev })
      .where("mount", "=", mount.uuid)
      .where("path", "=", "through")
      .execute();
    expect(dataOf(await a.read(mount, "through", 0))).toEqual({ s: "v3" });
  });

  it("a read of an unchanged key asks the store nothing (SQLite); a write over another connection is seen at once", async () => {
    // Two stores on one database: two server processes sharing the SQLite file, or two PostgreSQL nodes.
    const other = await ctx.open([sealMigrations, secretsMigrations]);
    const a = new Kv2Store(store, barrier, clock);
    const b = new Kv2Store(other, barrier, clock);
    await a.write(mount, "stamped", { v: "1" }, undefined);
    expect(dataOf(await a.read(mount, "stamped", 0))).toEqual({ v: "1" });
    const lookups = vi.spyOn(PreparedQuery.prototype, "run");
    try {
      expect(dataOf(await a.read(mount, "stamped", 0))).toEqual({ v: "1" });
      // SQLite: nothing changed since the last look, so none is needed. PostgreSQL: looked up every time.
      expect(lookups.mock.calls.length).toBe(ctx.dialect === "sqlite" ? 0 : 1);
      await b.write(mount, "stamped", { v: "2" }, 1);
      expect(dataOf(await a.read(mount, "stamped", 0))).toEqual({ v: "2" });
      // The other connection puts back the metadata from before the next write: the read after sees it.
      const earlier = await keyRow("stamped");
      await a.write(mount, "stamped", { v: "3" }, 2);
      expect(dataOf(await a.read(mount, "stamped", 0))).toEqual({ v: "3" });
      await other.db
        .withTables<SecretsTables>()
        .updateTable("secrets_kv_key")
        .set({ blob: earlier.blob })
        .where("mount", "=", mount.uuid)
        .where("path", "=", "stamped")
        .execute();
      expect(dataOf(await a.read(mount, "stamped", 0))).toEqual({ v: "2" });
      // And removing the key over the other connection.
      await b.deleteAll(mount, "stamped");
      expect((await a.read(mount, "stamped", 0)).kind).toBe("missing");
    } finally {
      lookups.mockRestore();
    }
  });

  it("hands out deeply frozen bodies; forgetAll and a zero capacity keep nothing", async () => {
    const a = new Kv2Store(store, barrier, clock);
    await a.write(mount, "nested", { outer: { inner: ["x", { y: 1 }] } }, undefined);
    const r = await a.read(mount, "nested", 0);
    if (r.kind !== "ok") throw new Error(r.kind);
    expect(Object.isFrozen(r.body)).toBe(true);
    expect(Object.isFrozen(r.body.metadata)).toBe(true);
    const inner = (r.body.data.outer as { inner: unknown[] }).inner;
    expect(Object.isFrozen(inner) && Object.isFrozen(inner[1])).toBe(true);
    expect(Object.isFrozen(r.meta.versions)).toBe(true);

    a.forgetAll();
    const after = await a.read(mount, "nested", 0);
    expect(after.kind === "ok" && after.body !== r.body).toBe(true);

    const off = new Kv2Store(store, barrier, clock, { readCacheKeys: 0 });
    const x = await off.read(mount, "nested", 0);
    const y = await off.read(mount, "nested", 0);
    expect(x.kind === "ok" && y.kind === "ok" && x.body !== y.body).toBe(true);
    expect(dataOf(y)).toEqual({ outer: { inner: ["x", { y: 1 }] } });
  });

  it("a write starts from the metadata it last wrote (SQLite: no lookup); a stale entry is retried from the store", async () => {
    const other = await ctx.open([sealMigrations, secretsMigrations]);
    const a = new Kv2Store(store, barrier, clock);
    const b = new Kv2Store(other, barrier, clock);
    await a.write(mount, "hot", { v: "1" }, undefined);
    const lookups = vi.spyOn(PreparedQuery.prototype, "run");
    try {
      await a.write(mount, "hot", { v: "2" }, 1);
      expect(lookups.mock.calls.length).toBe(ctx.dialect === "sqlite" ? 0 : 1);
    } finally {
      lookups.mockRestore();
    }

    // Another connection writes: a CAS against the store's current version succeeds, and so does a plain
    // write; nothing is numbered from the stale entry.
    await b.write(mount, "hot", { v: "3" }, 2);
    const w4 = await a.write(mount, "hot", { v: "4" }, 3);
    expect(w4.n).toBe(4);
    await b.write(mount, "hot", { v: "5" }, 4);
    expect((await a.write(mount, "hot", { v: "6" }, undefined)).n).toBe(6);
    // A CAS that really is wrong still fails, as a CAS mismatch.
    await b.write(mount, "hot", { v: "7" }, 6);
    const err = await a.write(mount, "hot", { v: "x" }, 6).catch((e: unknown) => e);
    expect((err as FleetError).code).toBe("FR_KV_CAS_MISMATCH");
    // A patch of a version the entry names but the store no longer has (deleted and written anew).
    await a.write(mount, "patched", { a: "1" }, undefined);
    await a.write(mount, "patched", { a: "2" }, undefined);
    await b.deleteAll(mount, "patched");
    await b.write(mount, "patched", { b: "1" }, undefined);
    const p = await a.write(mount, "patched", (cur) => ({ ...cur, c: "2" }), undefined);
    expect(p.n).toBe(2);
    expect(dataOf(await b.read(mount, "patched", 0))).toEqual({ b: "1", c: "2" });

    // Deleted and written again over the other connection until the rev is the one the entry holds (2):
    // only the blob tells the two apart. Without that check this write would take version 3 and put
    // back the old key's version list.
    await a.write(mount, "again", { v: "old-1" }, undefined);
    await a.write(mount, "again", { v: "old-2" }, undefined);
    await b.deleteAll(mount, "again");
    await b.write(mount, "again", { v: "new-1" }, undefined);
    await b.updateMeta(mount, "again", (meta) => void (meta.maxVersions = 1), false);
    const w = await a.write(mount, "again", { v: "new-2" }, undefined);
    expect(w.n).toBe(2);
    const fresh = new Kv2Store(store, barrier, clock);
    const found = await fresh.meta(mount, "again");
    expect(found?.meta.current).toBe(2);
    expect(Object.keys(found!.meta.versions)).toEqual(["2"]);
    expect(found?.meta.maxVersions).toBe(1);
    expect(dataOf(await fresh.read(mount, "again", 0))).toEqual({ v: "new-2" });
  });
});

it("the read cache keeps at most its capacity, oldest key out first, and only for the exact blob", () => {
  const c = new Kv2ReadCache(2);
  c.set("a", Buffer.from("A"), "m".repeat(10));
  c.set("b", Buffer.from("B"), "m".repeat(10));
  c.set("c", Buffer.from("C"), "m".repeat(10));
  expect(c.size).toBe(2);
  expect(c.get("a", Buffer.from("A"))).toBeUndefined();
  expect(c.get("b", Buffer.from("B"))).toBeDefined();
  expect(c.get("c", Buffer.from("c"))).toBeUndefined();
  expect(c.size).toBe(1);
  expect(c.heldBytes).toBe(11);
  const e = c.get("b", Buffer.from("B"))!;
  for (let n = 1; n <= 6; n++) c.addBody(e, n, { data: {}, metadata: {} }, 5);
  expect(e.bodies.size).toBe(4);
  expect(c.heldBytes).toBe(31);
  c.clear();
  expect(c.size).toBe(0);
  expect(c.heldBytes).toBe(0);
});

it("the read cache holds at most its byte bound and never one value larger than 1/64 of it", () => {
  const c = new Kv2ReadCache(1000, 64 * 100);
  // Too large for this cache: handed out for the read, not kept.
  const big = c.set("big", Buffer.alloc(10), "m".repeat(200));
  expect(c.size).toBe(0);
  c.addBody(big, 1, { data: {}, metadata: {} }, 1);
  expect(big.bodies.size).toBe(0);
  for (let i = 0; i < 100; i++) c.set(`k${i}`, Buffer.alloc(10), "m".repeat(80));
  expect(c.heldBytes).toBeLessThanOrEqual(6400);
  expect(c.size).toBe(71);
  expect(c.get("k0", Buffer.alloc(10))).toBeUndefined();
  expect(c.get("k99", Buffer.alloc(10))).toBeDefined();
  // A body that would overflow the bound pushes the oldest keys out.
  const last = c.get("k99", Buffer.alloc(10))!;
  c.addBody(last, 1, { data: {}, metadata: {} }, 100);
  expect(c.heldBytes).toBeLessThanOrEqual(6400);
  expect(c.get("k99", Buffer.alloc(10))).toBeDefined();
  expect(c.get("k29", Buffer.alloc(10))).toBeUndefined();
});
