import { afterAll, beforeAll, expect, it } from "vitest";
import { describeEachStore } from "../../test/helpers/stores.js";
import { softHsmToken, type SoftHsmToken } from "../../test/helpers/softhsm.js";
import { createKeyManager, type KeyManager } from "../keys/index.js";
import { ManualClock } from "../util/index.js";
import { Barrier } from "./barrier.js";
import { SealManager } from "./manager.js";
import { sealMigrations, type SealTables } from "./migrations.js";
import { codeOf, dec, enc } from "./seal-test-util.js";
import type { SealConfig } from "./types.js";

const clock = new ManualClock();

describeEachStore("auto-unseal seals (pkcs11 via SoftHSM2, dev)", (ctx) => {
  let token: SoftHsmToken;
  const managers: KeyManager[] = [];
  const prefix = ctx.dialect; // one token serves both dialect runs in this process: distinct key labels

  beforeAll(async () => {
    token = await softHsmToken("fleetroot-seal");
    const km = createKeyManager();
    await km.generateWrapper(token.uri(`${prefix}-aes`, "type=secret-key"), "aes-256");
    await km.generateWrapper(token.uri(`${prefix}-rsa`), "rsa-2048");
    await km.close();
  });
  afterAll(async () => {
    for (const km of managers) await km.close();
  });

  /** A server start: its own KeyManager (a fresh PKCS#11 session), store, barrier and seal manager. */
  async function start(config: SealConfig, dev = false) {
    const store = await ctx.open([sealMigrations]);
    const barrier = new Barrier(store, clock);
    const km = createKeyManager();
    managers.push(km);
    const wrapper = config.type === "pkcs11" ? () => km.openWrapper(config.key) : undefined;
    const seal = new SealManager({ store, barrier, config, clock, dev, ...(wrapper ? { wrapper } : {}) });
    await seal.load();
    return { store, barrier, seal };
  }

  for (const kind of ["aes", "rsa"] as const) {
    it(`pkcs11 (${kind}): init stays unsealed with no keys; after a restart it auto-unseals`, async () => {
      await ctx.fresh();
      const config: SealConfig = { type: "pkcs11", key: token.uri(`${prefix}-${kind}`) };
      const a = await start(config);
      expect(await a.seal.autoUnseal()).toBe(false); // not initialized
      const init = await a.seal.init({ secret_shares: 5, secret_threshold: 3 }, async () => {
        await a.barrier.view("app/").put("k", enc("hsm-protected"));
        return "tok";
      });
      expect(init).toEqual({ keys: [], keys_base64: [], extra: "tok" });
      expect(a.seal.status()).toMatchObject({
        type: "pkcs11",
        initialized: true,
        sealed: false,
        recovery_seal: true,
      });
      const row = await a.store.db
        .withTables<SealTables>()
        .selectFrom("seal_config")
        .selectAll()
        .executeTakeFirstOrThrow();
      expect(row.type).toBe("pkcs11");
      expect(row.stored_key?.length).toBe(kind === "aes" ? 12 + 32 + 16 : 256);
      await a.store.close();

      const b = await start(config);
      expect(b.seal.status()).toMatchObject({ initialized: true, sealed: true });
      expect(await codeOf(b.seal.submitShare("00".repeat(33)))).toBe("FR_BAD_REQUEST");
      expect(await b.seal.autoUnseal()).toBe(true);
      expect(b.seal.status().sealed).toBe(false);
      expect(dec((await b.barrier.view("app/").get("k"))!)).toBe("hsm-protected");
      await b.seal.seal();
      expect(b.barrier.sealed).toBe(true);
    });
  }

  it("pkcs11: an HSM key that is missing fails init with nothing stored", async () => {
    await ctx.fresh();
    const a = await start({ type: "pkcs11", key: token.uri(`${prefix}-missing`) });
    expect(await codeOf(a.seal.init({}, () => Promise.resolve(null)))).toBe("FR_KEY_NOT_FOUND");
    expect(a.seal.status().initialized).toBe(false);
    expect(await a.barrier.isInitialized()).toBe(false);
  });

  it("pkcs11: the wrong HSM key cannot unseal", async () => {
    await ctx.fresh();
    const a = await start({ type: "pkcs11", key: token.uri(`${prefix}-aes`) });
    await a.seal.init({}, () => Promise.resolve(null));
    const b = await start({ type: "pkcs11", key: token.uri(`${prefix}-rsa`) });
    expect(await codeOf(b.seal.autoUnseal())).toMatch(/^FR_KEY_FORMAT$|^FR_UNSEAL_FAILED$/);
    expect(b.barrier.sealed).toBe(true);
  });

  it("dev: refused outside dev mode; in dev mode init stays unsealed and restarts unseal alone", async () => {
    await ctx.fresh();
    const store = await ctx.open([sealMigrations]);
    const refusal = (config: SealConfig) =>
      codeOf(
        () =>
          new SealManager({
            store,
            barrier: new Barrier(store, clock),
            config,
            wrapper: () => Promise.reject(new Error("not opened")),
            clock,
          }),
      );
    expect(await refusal({ type: "dev" })).toBe("FR_SEAL_CONFIG");
    expect(await refusal({ type: "pkcs11", key: "file:/x" })).toBe("FR_SEAL_CONFIG");
    // A malformed pkcs11 seal URI stops the start, not only the first init.
    for (const key of ["pkcs11:token=fl%zzeet;object=seal", "pkcs11:token=t;object=seal;colour=red"])
      expect(await refusal({ type: "pkcs11", key })).toBe("FR_KEY_URI");

    const a = await start({ type: "dev" }, true);
    const init = await a.seal.init({}, () => Promise.resolve(null));
    expect(init.keys).toEqual([]);
    expect(a.seal.status()).toMatchObject({ type: "dev", initialized: true, sealed: false, t: 1, n: 1 });
    await a.barrier.view("d/").put("x", enc("dev-value"));
    const b = await start({ type: "dev" }, true);
    expect(await b.seal.autoUnseal()).toBe(true);
    expect(dec((await b.barrier.view("d/").get("x"))!)).toBe("dev-value");
  });
});
