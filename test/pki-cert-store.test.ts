import { randomBytes } from "node:crypto";
import { expect, it } from "vitest";
import { FleetError } from "../src/errors/index.js";
import { CertStore, type CertRow } from "../src/pki/cert-store.js";
import { pkiMigrations, type PkiTables } from "../src/pki/migrations.js";
import { describeEachStore } from "./helpers/stores.js";

function row(i: number, over: Partial<CertRow> = {}): CertRow {
  return {
    issuer_id: "iss-1",
    serial: i.toString(16).padStart(16, "0"),
    subject: `CN=d${i}.fleet.example`,
    sans: JSON.stringify({ dns: [`d${i}.fleet.example`] }),
    not_before: 1_700_000_000_000 + i,
    not_after: 1_800_000_000_000 + i,
    role: i % 2 ? "robots" : null,
    requester: i % 3 ? `token:${i}` : null,
    der: randomBytes(300 + i),
    created_at: 1_700_000_000_500 + i,
    revoked_at: i % 5 === 0 ? 1_750_000_000_000 : null,
    revocation_reason: i % 5 === 0 ? 1 : null,
    ...over,
  };
}

describeEachStore("pki certificate store", (ctx) => {
  it("stores concurrent inserts in group commits, every column as given", async () => {
    await ctx.fresh();
    const store = await ctx.open([pkiMigrations]);
    const certs = new CertStore(store);
    const rows = Array.from({ length: 120 }, (_, i) => row(i + 1));
    await Promise.all(rows.map((r) => certs.insert(r)));
    const back = await store.db
      .withTables<PkiTables>()
      .selectFrom("pki_cert")
      .selectAll()
      .orderBy("serial")
      .execute();
    expect(back).toHaveLength(120);
    for (const [i, b] of back.entries()) {
      const r = rows[i]!;
      expect({ ...b, der: Buffer.from(b.der) }).toEqual({ ...r, der: Buffer.from(r.der) });
      expect(Number(b.not_after)).toBe(r.not_after);
    }
  });

  it("a duplicate serial in a batch fails alone with FR_CONFLICT; the rest of the batch lands", async () => {
    await ctx.fresh();
    const store = await ctx.open([pkiMigrations]);
    const certs = new CertStore(store);
    await certs.insert(row(7));
    const results = await Promise.allSettled(
      [5, 6, 7, 8, 9].map((i) => certs.insert(row(i, { subject: `CN=second-${i}` }))),
    );
    expect(results.map((r) => r.status)).toEqual([
      "fulfilled",
      "fulfilled",
      "rejected",
      "fulfilled",
      "fulfilled",
    ]);
    const err = (results[2] as PromiseRejectedResult).reason as FleetError;
    expect(err).toBeInstanceOf(FleetError);
    expect(err.code).toBe("FR_CONFLICT");
    expect(err.message).toContain(row(7).serial);
    const subjects = await store.db
      .withTables<PkiTables>()
      .selectFrom("pki_cert")
      .select(["serial", "subject"])
      .orderBy("serial")
      .execute();
    // The first certificate with serial 7 is untouched; 5, 6, 8 and 9 are there once each.
    expect(subjects.map((s) => s.subject)).toEqual([
      "CN=second-5",
      "CN=second-6",
      "CN=d7.fleet.example",
      "CN=second-8",
      "CN=second-9",
    ]);
  });

  it("a row that fails for another reason is not called a conflict; the rest of its batch lands", async () => {
    await ctx.fresh();
    const store = await ctx.open([pkiMigrations]);
    const certs = new CertStore(store);
    await certs.insert(row(1));
    const broken = row(3, { subject: null as unknown as string }); // NOT NULL column
    const results = await Promise.allSettled([
      certs.insert(row(2)),
      certs.insert(broken),
      certs.insert(row(4)),
    ]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    const err = (results[1] as PromiseRejectedResult).reason as Error;
    expect(err).toBeInstanceOf(Error);
    expect((err as FleetError).code).not.toBe("FR_CONFLICT");
    expect(err.message).toMatch(/not.null|NOT NULL/i);
    const serials = await store.db
      .withTables<PkiTables>()
      .selectFrom("pki_cert")
      .select("serial")
      .orderBy("serial")
      .execute();
    expect(serials.map((s) => s.serial)).toEqual([row(1).serial, row(2).serial, row(4).serial]);
  });
});
