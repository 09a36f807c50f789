import pg from "pg";
import { describe, expect, it } from "vitest";
import { FleetError } from "../errors/index.js";
import { openStore } from "./index.js";

// The same server the store suite uses (test/helpers/stores.ts); trust authentication, so any known user gets in.
const base = new URL(process.env.FLEETROOT_TEST_PG ?? "postgres://postgres@127.0.0.1:5432/postgres");
const knownUser = decodeURIComponent(base.username) || "postgres";

/**
 * Runs `fn` as in a process started without USER or PGUSER (a systemd unit, `env -i`, a container): pg reads
 * USER once when it is loaded, into pg.defaults.user, and PGUSER at each connection.
 */
async function withoutDefaultUser<T>(fn: () => Promise<T>, pguser?: string): Promise<T> {
  const saved = { user: pg.defaults.user, pguser: process.env.PGUSER };
  pg.defaults.user = undefined;
  if (pguser === undefined) delete process.env.PGUSER;
  else process.env.PGUSER = pguser;
  try {
    return await fn();
  } finally {
    pg.defaults.user = saved.user;
    if (saved.pguser === undefined) delete process.env.PGUSER;
    else process.env.PGUSER = saved.pguser;
  }
}

describe("a postgres URL without a user name", () => {
  it("with USER and PGUSER unset is FR_STORE_URL saying the URL names no user (regression: reported as an authentication failure)", async () => {
    const url = `postgres://${base.host}/postgres`;
    const err = await withoutDefaultUser(() => openStore(url, { migrations: [] })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FleetError);
    const fe = err as FleetError;
    expect(fe.code).toBe("FR_STORE_URL");
    expect(fe.message).toContain("names no user");
    expect(fe.message).toContain("USER@");
    expect(fe.message).toContain("PGUSER");
    expect(fe.message).not.toMatch(/authentication|password/);
  });

  it("still opens when PGUSER, a user= parameter or the URL itself names the user", async () => {
    const urls: [string, string | undefined][] = [
      [`postgres://${base.host}/postgres`, knownUser],
      [`postgres://${base.host}/postgres?user=${encodeURIComponent(knownUser)}`, undefined],
      [`postgres://${encodeURIComponent(knownUser)}@${base.host}/postgres`, undefined],
    ];
    for (const [url, pguser] of urls) {
      const store = await withoutDefaultUser(() => openStore(url, { migrations: [] }), pguser);
      expect(store.dialect).toBe("postgres");
      await store.close();
    }
  });
});
