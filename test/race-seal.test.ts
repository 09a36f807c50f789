/**
 * Races on sys/unseal: shares submitted all at once. The barrier unseals; nothing fails with a 5xx.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultModules } from "../src/server/modules.js";
import { startTestServer, type TestServer } from "./helpers/server.js";

describe("races: sys/unseal", () => {
  let t: TestServer;
  let keys: string[] = [];
  let root = "";

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), "fr-race-seal-"));
    t = await startTestServer(`sqlite:${join(dir, "fr.db")}`);
    const init = (await t.call("PUT", "sys/init", { secret_shares: 5, secret_threshold: 3 })).json();
    keys = init.keys as string[];
    root = init.root_token as string;
  });
  afterAll(async () => {
    await t?.close();
  });

  const status = async () => (await t.call("GET", "sys/seal-status")).json();

  it("all 5 shares at once (threshold 3), each twice: unsealed, no 5xx", async () => {
    const rs = await Promise.all([...keys, ...keys].map((key) => t.call("PUT", "sys/unseal", { key })));
    for (const r of rs) expect(r.statusCode, r.body).toBeLessThan(500);
    expect(await status()).toMatchObject({ sealed: false });
    expect((await t.call("GET", "auth/token/lookup-self", undefined, root)).statusCode).toBe(200);
  });

  // Vault answers progress 0 once unsealed: a share that arrives while the threshold round is being
  // combined and checked waits for that round instead of opening a new one.
  it("no half round is left behind after a parallel unseal (was: shares arriving while the threshold round was checked opened new rounds)", async () => {
    expect((await t.call("PUT", "sys/seal", undefined, root)).statusCode).toBe(204);
    await Promise.all([...keys, ...keys].map((key) => t.call("PUT", "sys/unseal", { key })));
    expect(await status()).toMatchObject({ sealed: false, progress: 0, nonce: "" });
  });

  it("after sealing again, 3 shares unseal it as usual (nothing stale from the race)", async () => {
    expect((await t.call("PUT", "sys/seal", undefined, root)).statusCode).toBe(204);
    expect(await status()).toMatchObject({ sealed: true, progress: 0 });
    expect((await t.call("PUT", "sys/unseal", { key: keys[4] })).json()).toMatchObject({ progress: 1 });
    expect((await t.call("PUT", "sys/unseal", { key: keys[2] })).json()).toMatchObject({ progress: 2 });
    expect((await t.call("PUT", "sys/unseal", { key: keys[0] })).json()).toMatchObject({ sealed: false });
  });

  it("exactly the threshold at once, 20 times over: unsealed, every answer a status", async () => {
    expect((await t.call("PUT", "sys/seal", undefined, root)).statusCode).toBe(204);
    const three = keys.slice(0, 3);
    const rs = await Promise.all(
      Array.from({ length: 20 }, (_, i) => t.call("PUT", "sys/unseal", { key: three[i % 3] })),
    );
    for (const r of rs) expect(r.statusCode, r.body).toBeLessThan(500);
    expect(await status()).toMatchObject({ sealed: false });
  });
});

describe("races: sys/unseal with one share", () => {
  let t: TestServer;
  let key = "";
  let root = "";
  // A module that counts its unseal hook's runs (the modules' hooks open caches, start jobs: once per unseal).
  let unsealRuns = 0;
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), "fr-race-seal1-"));
    t = await startTestServer(`sqlite:${join(dir, "fr.db")}`, {
      modules: [
        ...defaultModules(),
        {
          name: "count-unseals",
          migrations: {},
          routes: () => [],
          onUnseal: async () => {
            unsealRuns++;
            await new Promise((r) => setTimeout(r, 20));
          },
        },
      ],
    });
    const init = (await t.call("PUT", "sys/init", { secret_shares: 1, secret_threshold: 1 })).json();
    key = (init.keys as string[])[0]!;
    root = init.root_token as string;
  });
  afterAll(async () => {
    await t?.close();
  });

  it("the one key 20 times at once: every answer 200 and unsealed", async () => {
    const rs = await Promise.all(Array.from({ length: 20 }, () => t.call("PUT", "sys/unseal", { key })));
    for (const r of rs) expect([r.statusCode, r.json().sealed], r.body).toEqual([200, false]);
    expect((await t.call("GET", "auth/token/lookup-self", undefined, root)).statusCode).toBe(200);
    // The unseal hooks ran once (init does not unseal; was: once per request that saw the server sealed).
    expect(unsealRuns).toBe(1);
    expect((await t.call("PUT", "sys/seal", undefined, root)).statusCode).toBe(204);
    await Promise.all(Array.from({ length: 5 }, () => t.call("PUT", "sys/unseal", { key })));
    expect(unsealRuns).toBe(2);
  });
});
