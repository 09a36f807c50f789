import { randomBytes } from "node:crypto";
import { expect, it } from "vitest";
import { describeEachStore } from "../../test/helpers/stores.js";
import { ManualClock } from "../util/index.js";
import { Barrier } from "./barrier.js";
import { sealMigrations, type SealTables } from "./migrations.js";
import { codeOf, dec, enc } from "./seal-test-util.js";

describeEachStore("barrier", (ctx) => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));

  async function fresh() {
    await ctx.fresh();
    const store = await ctx.open([sealMigrations]);
    const rootKey = randomBytes(32);
    const barrier = new Barrier(store, clock);
    await barrier.initialize(rootKey);
    return { store, barrier, rootKey };
  }

  it("round-trips values and binds them to their aad", async () => {
    const { barrier } = await fresh();
    expect(barrier.sealed).toBe(false);
    const ct = await barrier.encrypt("items/a", enc("hello"));
    expect(ct[0]).toBe(1);
    expect(Buffer.from(ct).readUInt32BE(1)).toBe(1);
    expect(ct.length).toBe(5 + 12 + 5 + 16);
    expect(dec(await barrier.decrypt("items/a", ct))).toBe("hello");
    expect(await codeOf(barrier.decrypt("items/b", ct))).toBe("FR_BARRIER_DECRYPT");
    // Same plaintext twice gives different ciphertexts (random nonce).
    expect(Buffer.from(await barrier.encrypt("items/a", enc("hello"))).equals(Buffer.from(ct))).toBe(false);
  });

  it("detects tampering anywhere in the value", async () => {
    const { barrier } = await fresh();
    const ct = Buffer.from(await barrier.encrypt("t", enc("secret value")));
    for (const i of [0, 4, 5, 17, 20, ct.length - 1]) {
      const bad = Buffer.from(ct);
      bad[i]! ^= 0x01;
      expect(await codeOf(barrier.decrypt("t", bad))).toBe("FR_BARRIER_DECRYPT");
    }
    expect(await codeOf(barrier.decrypt("t", ct.subarray(0, 20)))).toBe("FR_BARRIER_DECRYPT");
  });

  it("rotates: old values still decrypt, new ones use the new term, and this survives a restart", async () => {
    const { barrier, rootKey, store } = await fresh();
    const old = await barrier.encrypt("r", enc("before"));
    expect(barrier.keyStatus()).toEqual({ term: 1, install_time: "2026-01-01T00:00:00.000Z" });
    clock.advance(60_000);
    expect(await barrier.rotate()).toEqual({ term: 2, install_time: "2026-01-01T00:01:00.000Z" });
    const neu = await barrier.encrypt("r", enc("after"));
    expect(Buffer.from(neu).readUInt32BE(1)).toBe(2);
    expect(dec(await barrier.decrypt("r", old))).toBe("before");

    await store.close();
    const again = new Barrier(await ctx.open([sealMigrations]), clock);
    expect(again.sealed).toBe(true);
    await again.unseal(rootKey);
    expect(again.keyStatus().term).toBe(2);
    expect(dec(await again.decrypt("r", old))).toBe("before");
    expect(dec(await again.decrypt("r", neu))).toBe("after");
  });

  it("picks up a rotation made by another node on the same store", async () => {
    const { barrier, rootKey } = await fresh();
    const other = new Barrier(await ctx.open([sealMigrations]), clock);
    await other.unseal(rootKey);
    await other.rotate();
    const fromOther = await other.encrypt("x", enc("v"));
    expect(dec(await barrier.decrypt("x", fromOther))).toBe("v");
    expect(barrier.keyStatus().term).toBe(2);
  });

  it("refuses everything while sealed and a wrong root key does not unseal", async () => {
    const { barrier, rootKey } = await fresh();
    const ct = await barrier.encrypt("s", enc("v"));
    barrier.seal();
    expect(barrier.sealed).toBe(true);
    expect(await codeOf(barrier.encrypt("s", enc("v")))).toBe("FR_SEALED");
    expect(await codeOf(barrier.decrypt("s", ct))).toBe("FR_SEALED");
    expect(await codeOf(() => barrier.keyStatus())).toBe("FR_SEALED");
    expect(await codeOf(barrier.rotate())).toBe("FR_SEALED");
    expect(await codeOf(barrier.view("v/").get("a"))).toBe(undefined); // absent: no decryption needed
    expect(await codeOf(barrier.view("v/").list())).toBe("FR_SEALED");
    expect(await codeOf(barrier.view("v/").put("a", enc("x")))).toBe("FR_SEALED");

    const wrong = Buffer.from(rootKey);
    wrong[0]! ^= 0xff;
    expect(await codeOf(barrier.unseal(wrong))).toBe("FR_UNSEAL_FAILED");
    expect(await codeOf(barrier.unseal(randomBytes(16)))).toBe("FR_UNSEAL_FAILED");
    expect(barrier.sealed).toBe(true);
    await barrier.unseal(rootKey);
    expect(dec(await barrier.decrypt("s", ct))).toBe("v");
  });

  it("initializing twice is refused; unsealing before init says so", async () => {
    const { barrier, rootKey } = await fresh();
    expect(await codeOf(barrier.initialize(rootKey))).toBe("FR_ALREADY_INITIALIZED");
    expect(barrier.sealed).toBe(false); // still serving
    barrier.seal();
    expect(await codeOf(barrier.initialize(randomBytes(32)))).toBe("FR_ALREADY_INITIALIZED");
    expect(barrier.sealed).toBe(true);
    await barrier.unseal(rootKey); // the stored keyring is untouched
    await ctx.fresh();
    const empty = new Barrier(await ctx.open([sealMigrations]), clock);
    expect(await empty.isInitialized()).toBe(false);
    expect(await codeOf(empty.unseal(rootKey))).toBe("FR_NOT_INITIALIZED");
  });

  it("view: put/get/list/delete, aad = full path, transactions", async () => {
    const { barrier, store } = await fresh();
    const v = barrier.view("auth/tokens/");
    await v.put("a", enc("A"));
    await v.put("b/1", enc("B1"));
    await v.put("b/2", enc("B2"));
    await v.put("a", enc("A2"));
    await barrier.view("auth/other/").put("x", enc("X"));
    await barrier.view("AUTH/tokens/").put("z", enc("Z")); // different case is a different prefix
    await barrier.view("auth/tokens_").put("q", enc("Q"));
    expect(dec((await v.get("a"))!)).toBe("A2");
    expect(await v.get("missing")).toBeUndefined();
    expect(await v.list()).toEqual(["a", "b/1", "b/2"]);
    expect(await v.list("b/")).toEqual(["b/1", "b/2"]);
    expect(await v.delete("b/1")).toBe(true);
    expect(await v.delete("b/1")).toBe(false);
    expect(await v.list("b/")).toEqual(["b/2"]);

    // A value moved to another row does not decrypt.
    const db = store.db.withTables<SealTables>();
    const row = await db
      .selectFrom("barrier_entries")
      .select("value")
      .where("path", "=", "auth/tokens/a")
      .executeTakeFirstOrThrow();
    await db
      .updateTable("barrier_entries")
      .set({ value: row.value })
      .where("path", "=", "auth/tokens/b/2")
      .execute();
    expect(await codeOf(v.get("b/2"))).toBe("FR_BARRIER_DECRYPT");

    // Writes in a failed transaction all vanish.
    await expect(
      store.transaction(async (trx) => {
        await v.in(trx).put("t1", enc("1"));
        await v.in(trx).put("t2", enc("2"));
        throw new Error("abort");
      }),
    ).rejects.toThrow("abort");
    expect(await v.get("t1")).toBeUndefined();
    await store.transaction(async (trx) => {
      await v.in(trx).put("t1", enc("1"));
      await v.in(trx).put("t2", enc("2"));
    });
    expect(await v.list("t")).toEqual(["t1", "t2"]);
  });
});
