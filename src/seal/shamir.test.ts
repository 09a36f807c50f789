import { expect, it } from "vitest";
import { describeEachStore } from "../../test/helpers/stores.js";
import { ManualClock } from "../util/index.js";
import { Barrier } from "./barrier.js";
import { SealManager } from "./manager.js";
import { sealMigrations, type SealTables } from "./migrations.js";
import { codeOf, dec, enc } from "./seal-test-util.js";
import type { SealConfig } from "./types.js";

const clock = new ManualClock();

describeEachStore("shamir seal", (ctx) => {
  /** A server start: new store connection, barrier and seal manager over the same database. */
  async function start(config: SealConfig = { type: "shamir" }) {
    const store = await ctx.open([sealMigrations]);
    const barrier = new Barrier(store, clock);
    const seal = new SealManager({ store, barrier, config, clock });
    await seal.load();
    return { store, barrier, seal };
  }

  it("init 5/3, restart, unseal with 3 shares; wrong, reused and malformed shares are refused", async () => {
    await ctx.fresh();
    const a = await start();
    expect(a.seal.status()).toMatchObject({ type: "shamir", initialized: false, sealed: true, t: 0, n: 0 });
    const init = await a.seal.init({ secret_shares: 5, secret_threshold: 3 }, async () => {
      expect(a.barrier.sealed).toBe(false);
      await a.barrier.view("app/").put("secret", enc("planted-value"));
      return "root-token";
    });
    expect(init.extra).toBe("root-token");
    expect(init.keys).toHaveLength(5);
    expect(new Set(init.keys).size).toBe(5);
    for (const [i, k] of init.keys.entries()) {
      expect(k).toMatch(/^[0-9a-f]{66}$/);
      expect(Buffer.from(init.keys_base64[i]!, "base64").toString("hex")).toBe(k);
    }
    expect(a.seal.status()).toMatchObject({
      initialized: true,
      sealed: true,
      t: 3,
      n: 5,
      progress: 0,
      nonce: "",
    });
    expect(await codeOf(a.barrier.view("app/").get("secret"))).toBe("FR_SEALED");
    await a.store.close();

    const b = await start();
    expect(b.seal.status()).toMatchObject({ initialized: true, sealed: true, t: 3, n: 5 });
    expect(await b.seal.autoUnseal()).toBe(false);
    const k = init.keys;
    expect(await codeOf(b.seal.submitShare("not-a-key"))).toBe("FR_UNSEAL_SHARE_INVALID");
    expect(await codeOf(b.seal.submitShare(k[0]!.slice(2)))).toBe("FR_UNSEAL_SHARE_INVALID");

    const s1 = await b.seal.submitShare(k[0]!);
    expect(s1).toMatchObject({ sealed: true, progress: 1 });
    const nonce1 = s1.nonce;
    expect(nonce1).not.toBe("");
    expect(await codeOf(b.seal.submitShare(k[0]!))).toBe("FR_UNSEAL_SHARE_REUSED");
    expect(await codeOf(b.seal.submitShare(init.keys_base64[0]!))).toBe("FR_UNSEAL_SHARE_REUSED");
    expect(b.seal.status().progress).toBe(1); // kept
    expect((await b.seal.submitShare(init.keys_base64[1]!)).progress).toBe(2);

    // A wrong third share (flipped byte of a real one): the round fails and resets.
    const wrong = Buffer.from(k[2]!, "hex");
    wrong[5]! ^= 0x5a;
    expect(await codeOf(b.seal.submitShare(wrong.toString("hex")))).toBe("FR_UNSEAL_FAILED");
    expect(b.seal.status()).toMatchObject({ sealed: true, progress: 0, nonce: "" });

    // reset drops progress and a new round has a new nonce.
    await b.seal.submitShare(k[3]!);
    b.seal.resetProgress();
    expect(b.seal.status().progress).toBe(0);
    const r = await b.seal.submitShare(k[4]!);
    expect(r.nonce).not.toBe(nonce1);
    await b.seal.submitShare(k[2]!);
    const done = await b.seal.submitShare(k[0]!);
    expect(done).toMatchObject({ sealed: false, progress: 0, nonce: "", t: 3, n: 5 });
    expect(dec((await b.barrier.view("app/").get("secret"))!)).toBe("planted-value");
    // Further shares while unsealed just report status.
    expect((await b.seal.submitShare(k[1]!)).sealed).toBe(false);

    await b.seal.seal();
    expect(b.seal.status().sealed).toBe(true);
    expect(await codeOf(b.barrier.view("app/").get("secret"))).toBe("FR_SEALED");
  });

  it("validates shares and threshold as Vault, and init is refused twice", async () => {
    await ctx.fresh();
    const { seal } = await start();
    const noop = () => Promise.resolve(null);
    for (const bad of [
      {},
      { secret_shares: 0, secret_threshold: 0 },
      { secret_shares: 3, secret_threshold: 4 },
      { secret_shares: 3, secret_threshold: 1 },
      { secret_shares: 256, secret_threshold: 3 },
      { secret_shares: 2.5, secret_threshold: 2 },
    ]) {
      expect(await codeOf(seal.init(bad, noop))).toBe("FR_VALIDATION");
    }
    expect(seal.status().initialized).toBe(false);
    const one = await seal.init({ secret_shares: 1, secret_threshold: 1 }, noop);
    expect(one.keys).toHaveLength(1);
    expect(one.keys[0]).toMatch(/^[0-9a-f]{64}$/);
    expect(await codeOf(seal.init({ secret_shares: 1, secret_threshold: 1 }, noop))).toBe(
      "FR_ALREADY_INITIALIZED",
    );
    // 1/1: the single key unseals at once.
    expect((await seal.submitShare(one.keys_base64[0]!)).sealed).toBe(false);
  });

  it("init is all-or-nothing: a failing afterInit leaves nothing stored and init can be retried", async () => {
    await ctx.fresh();
    const { seal, store, barrier } = await start();
    const err = await seal
      .init({ secret_shares: 3, secret_threshold: 2 }, async () => {
        await barrier.view("auth/").put("root", enc("half-written"));
        throw new Error("afterInit failed");
      })
      .catch((e: unknown) => e);
    expect((err as Error).message).toBe("afterInit failed");
    const db = store.db.withTables<SealTables>();
    expect(await db.selectFrom("seal_config").selectAll().execute()).toEqual([]);
    expect(await db.selectFrom("barrier_keyring").selectAll().execute()).toEqual([]);
    expect(await db.selectFrom("barrier_entries").selectAll().execute()).toEqual([]);
    expect(seal.status()).toMatchObject({ initialized: false, sealed: true });
    expect(barrier.sealed).toBe(true);

    const ok = await seal.init({ secret_shares: 3, secret_threshold: 2 }, () => Promise.resolve(1));
    expect(ok.keys).toHaveLength(3);
    expect(seal.status().initialized).toBe(true);
  });

  it("a store made with one seal type refuses another (FR_SEAL_MISMATCH naming both)", async () => {
    await ctx.fresh();
    const a = await start();
    await a.seal.init({ secret_shares: 1, secret_threshold: 1 }, () => Promise.resolve(null));
    const store = await ctx.open([sealMigrations]);
    const seal = new SealManager({
      store,
      barrier: new Barrier(store, clock),
      config: { type: "dev" },
      clock,
      dev: true,
    });
    const err = await seal.load().catch((e: unknown) => e);
    expect(await codeOf(Promise.reject(err))).toBe("FR_SEAL_MISMATCH");
    expect((err as Error).message).toContain('"shamir"');
    expect((err as Error).message).toContain('"dev"');
  });
});
