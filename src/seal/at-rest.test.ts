import { existsSync, readFileSync } from "node:fs";
import { sql } from "kysely";
import { combine } from "shamir-secret-sharing";
import { expect, it } from "vitest";
import { describeEachStore } from "../../test/helpers/stores.js";
import { ManualClock } from "../util/index.js";
import { Barrier } from "./barrier.js";
import { SealManager } from "./manager.js";
import { sealMigrations } from "./migrations.js";
import { enc } from "./seal-test-util.js";

const clock = new ManualClock();

describeEachStore("nothing sensitive at rest", (ctx) => {
  it("the database holds no plaintext of a planted secret nor the root key", async () => {
    await ctx.fresh();
    const planted = `planted-secret-${Date.now().toString(36)}-c0ffee`;
    const store = await ctx.open([sealMigrations]);
    const barrier = new Barrier(store, clock);
    const seal = new SealManager({ store, barrier, config: { type: "shamir" }, clock });
    await seal.load();
    const init = await seal.init({ secret_shares: 3, secret_threshold: 2 }, async () => {
      await barrier.view("secret/").put("db-password", enc(planted));
    });
    for (const k of init.keys.slice(0, 2)) await seal.submitShare(k);
    await barrier.view("secret/").put("api-key", enc(`${planted}-2`));
    await barrier.rotate();
    await barrier.view("secret/").put("api-key-3", enc(`${planted}-3`));

    const rootKey = Buffer.from(
      await combine(init.keys.slice(0, 2).map((k) => new Uint8Array(Buffer.from(k, "hex")))),
    );
    const needles = [
      Buffer.from(planted),
      rootKey,
      Buffer.from(rootKey.toString("hex")),
      Buffer.from(rootKey.toString("base64")),
    ];

    if (ctx.dialect === "sqlite") {
      // The raw file and its write-ahead log, read while the store is open and again after close.
      const file = ctx.url().slice("sqlite:".length);
      const scan = () => {
        const parts = [file, `${file}-wal`].filter((f) => existsSync(f)).map((f) => readFileSync(f));
        expect(parts.length).toBeGreaterThan(0);
        const all = Buffer.concat(parts);
        expect(all.includes(Buffer.from("secret/db-password"))).toBe(true); // the scan sees the data
        for (const n of needles) expect(all.includes(n)).toBe(false);
      };
      scan();
      await store.close();
      scan();
    } else {
      // PostgreSQL's files are the server's; search every stored byte of the seal tables instead.
      const hits = async (n: Buffer) => {
        const r = await sql<{ c: number }>`
          select (select count(*) from barrier_entries where position(${n} in value) > 0 or position(${n} in convert_to(path, 'UTF8')) > 0)
               + (select count(*) from barrier_keyring where position(${n} in value) > 0)
               + (select count(*) from seal_config where position(${n} in coalesce(stored_key, ''::bytea)) > 0) as c`.execute(
          store.db,
        );
        return Number(r.rows[0]?.c);
      };
      expect(await hits(Buffer.from("secret/db-password"))).toBe(1); // the search sees the data
      for (const n of needles) expect(await hits(n)).toBe(0);
    }
  });
});
