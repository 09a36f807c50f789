/**
 * Races on the Vault-compatible core: many requests at once against one single-use or limited thing.
 * Each test fires its requests together (Promise.all over inject) and checks the outcome counts, never
 * timings, on SQLite and on PostgreSQL.
 */
import { readFileSync } from "node:fs";
import pg from "pg";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { TokenStore } from "../src/auth/token/token-store.js";
import { describeEachStore } from "./helpers/stores.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { childToken, initAndUnseal, putPolicy } from "./secrets-helpers.js";

const N = 20;
const count = (codes: number[], c: number) => codes.filter((x) => x === c).length;

describeEachStore("races: core", (db) => {
  let t: TestServer;
  let root = "";

  beforeAll(async () => {
    t = await startTestServer(db.url());
    ({ root } = await initAndUnseal(t));
  });
  afterAll(async () => {
    await t?.close();
  });

  it("a wrapping token unwrapped by 20 parallel requests: one gets the data, the rest 400 and audited", async () => {
    const w = await t.call("POST", "sys/wrapping/wrap", { v: "race-wrap-1" }, root, {
      "x-vault-wrap-ttl": "60s",
    });
    const token = w.json().wrap_info.token as string;
    const before = readFileSync(t.server.core.paths.auditPath, "utf8").split(
      "wrapping.unwrap_refused",
    ).length;
    const rs = await Promise.all(
      Array.from({ length: N }, (_, i) =>
        i % 2
          ? t.call("POST", "sys/wrapping/unwrap", { token })
          : t.call("POST", "sys/wrapping/unwrap", {}, token),
      ),
    );
    const codes = rs.map((r) => r.statusCode);
    expect(count(codes, 200)).toBe(1);
    expect(count(codes, 400)).toBe(N - 1);
    expect(rs.find((r) => r.statusCode === 200)!.json().data).toEqual({ v: "race-wrap-1" });
    const after = readFileSync(t.server.core.paths.auditPath, "utf8").split("wrapping.unwrap_refused").length;
    expect(after - before).toBe(N - 1);
  });

  it("over real HTTP: 20 parallel unwraps of one token, 20 parallel uses of a num_uses=3 token", async () => {
    const base = await t.server.listen();
    const post = (path: string, body: unknown, token?: string) =>
      fetch(`${base}/v1/${path}`, {
        method: body === undefined ? "GET" : "POST",
        headers: { "content-type": "application/json", ...(token ? { "x-vault-token": token } : {}) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      }).then(async (r) => ({ status: r.status, body: await r.text() }));
    const w = await t.call("POST", "sys/wrapping/wrap", { v: "race-http" }, root, {
      "x-vault-wrap-ttl": "60s",
    });
    const token = w.json().wrap_info.token as string;
    const un = await Promise.all(Array.from({ length: N }, () => post("sys/wrapping/unwrap", { token })));
    const unwrapCodes = un.map((r) => r.status);
    expect(count(unwrapCodes, 200)).toBe(1);
    expect(count(unwrapCodes, 400)).toBe(N - 1);
    const c = await t.call("POST", "auth/token/create", { policies: ["default"], num_uses: 3 }, root);
    const limited = c.json().auth.client_token as string;
    const uses = await Promise.all(
      Array.from({ length: N }, () => post("auth/token/lookup-self", undefined, limited)),
    );
    const useCodes = uses.map((r) => r.status);
    expect(count(useCodes, 200)).toBe(3);
    expect(count(useCodes, 403)).toBe(N - 3);
  });

  it("20 parallel rewraps of one wrapping token: exactly one new token", async () => {
    const w = await t.call("POST", "sys/wrapping/wrap", { v: "race-rewrap" }, root, {
      "x-vault-wrap-ttl": "60s",
    });
    const token = w.json().wrap_info.token as string;
    const rs = await Promise.all(
      Array.from({ length: N }, () => t.call("POST", "sys/wrapping/rewrap", { token })),
    );
    const ok = rs.filter((r) => r.statusCode === 200);
    expect(ok.length).toBe(1);
    const next = ok[0]!.json().wrap_info.token as string;
    expect((await t.call("POST", "sys/wrapping/unwrap", { token: next })).json().data).toEqual({
      v: "race-rewrap",
    });
  });

  it("a token with num_uses=3 used by 20 parallel requests: exactly 3 succeed, then it is gone", async () => {
    await putPolicy(
      t,
      root,
      "race-read",
      'path "secret/data/race/*" { capabilities = ["read", "create", "update"] }',
    );
    await t.call("POST", "secret/data/race/a", { data: { x: 1 } }, root);
    const c = await t.call("POST", "auth/token/create", { policies: ["race-read"], num_uses: 3 }, root);
    const limited = c.json().auth.client_token as string;
    const rs = await Promise.all(
      Array.from({ length: N }, () => t.call("GET", "secret/data/race/a", undefined, limited)),
    );
    const codes = rs.map((r) => r.statusCode);
    expect(count(codes, 200)).toBe(3);
    expect(count(codes, 403)).toBe(N - 3);
    expect((await t.call("POST", "auth/token/lookup", { token: limited }, root)).statusCode).toBe(403);
  });

  it("a request between a token's last use and its revocation is refused (not taken for unlimited)", async () => {
    const c = await t.call("POST", "auth/token/create", { policies: ["default"], num_uses: 1 }, root);
    const limited = c.json().auth.client_token as string;
    const revokeTree = TokenStore.prototype.revokeTree;
    let between: number[] = [];
    vi.spyOn(TokenStore.prototype, "revokeTree").mockImplementationOnce(async function (
      this: TokenStore,
      hash,
    ) {
      // The last use has been counted, the revocation has not run yet: another request comes in.
      between = await Promise.all(
        [1, 2].map(
          async () => (await t.call("GET", "auth/token/lookup-self", undefined, limited)).statusCode,
        ),
      );
      return revokeTree.call(this, hash);
    });
    const last = await t.call("GET", "auth/token/lookup-self", undefined, limited);
    vi.restoreAllMocks();
    expect(last.statusCode).toBe(200);
    expect(between).toEqual([403, 403]);
    expect((await t.call("GET", "auth/token/lookup-self", undefined, limited)).statusCode).toBe(403);
  });

  it("a token with num_uses=3 creating children in parallel: at most 3 children, none outlives it", async () => {
    const c = await t.call("POST", "auth/token/create", { policies: ["race-read"], num_uses: 3 }, root);
    const limited = c.json().auth.client_token as string;
    const rs = await Promise.all(
      Array.from({ length: N }, () =>
        t.call("POST", "auth/token/create", { policies: ["race-read"] }, limited),
      ),
    );
    const kids = rs.filter((r) => r.statusCode === 200).map((r) => r.json().auth.client_token as string);
    expect(kids.length).toBeLessThanOrEqual(3);
    // The last use revoked the token and its subtree: no child created under it may survive.
    for (const k of kids) {
      expect((await t.call("GET", "auth/token/lookup-self", undefined, k)).statusCode).toBe(403);
    }
  });

  it("KV v2 writes with the same options.cas in parallel: exactly one wins, the others get Vault's CAS error", async () => {
    await t.call("POST", "secret/data/race/cas", { data: { v: 0 } }, root);
    const rs = await Promise.all(
      Array.from({ length: N }, (_, i) =>
        t.call("POST", "secret/data/race/cas", { data: { v: i + 1 }, options: { cas: 1 } }, root),
      ),
    );
    const codes = rs.map((r) => r.statusCode);
    expect(count(codes, 200)).toBe(1);
    expect(count(codes, 400)).toBe(N - 1);
    for (const r of rs.filter((x) => x.statusCode === 400))
      expect(r.json().errors).toEqual(["check-and-set parameter did not match the current version"]);
    const winner = rs.findIndex((r) => r.statusCode === 200);
    const cur = (await t.call("GET", "secret/data/race/cas", undefined, root)).json().data;
    expect(cur).toMatchObject({ data: { v: winner + 1 }, metadata: { version: 2 } });
    const md = (await t.call("GET", "secret/metadata/race/cas", undefined, root)).json().data;
    expect(Object.keys(md.versions)).toEqual(["1", "2"]);
  });

  it("KV v2 creates with cas=0 in parallel on a new key: exactly one creates it", async () => {
    const rs = await Promise.all(
      Array.from({ length: N }, (_, i) =>
        t.call("POST", "secret/data/race/new", { data: { v: i }, options: { cas: 0 } }, root),
      ),
    );
    const codes = rs.map((r) => r.statusCode);
    expect(count(codes, 200)).toBe(1);
    expect(count(codes, 400)).toBe(N - 1);
    const md = (await t.call("GET", "secret/metadata/race/new", undefined, root)).json().data;
    expect(md.current_version).toBe(1);
  });

  it("KV v2 writes without cas in parallel: every write gets its own version", async () => {
    const rs = await Promise.all(
      Array.from({ length: N }, (_, i) => t.call("POST", "secret/data/race/many", { data: { v: i } }, root)),
    );
    expect(rs.filter((r) => r.statusCode !== 200).map((r) => r.body)).toEqual([]);
    const versions = rs.map((r) => r.json().data.version as number).sort((a, b) => a - b);
    expect(versions).toEqual(Array.from({ length: N }, (_, i) => i + 1));
  });

  it("revoking a parent while children are created under it: no child survives its parent", async () => {
    await putPolicy(t, root, "race-parent", 'path "auth/token/create" { capabilities = ["update"] }');
    for (let round = 0; round < 3; round++) {
      const parent = await childToken(t, root, ["race-parent", "race-read"]);
      const creates = Array.from({ length: N }, () =>
        t.call("POST", "auth/token/create", { policies: ["race-read"] }, parent),
      );
      const revoke = t.call("POST", "auth/token/revoke", { token: parent }, root);
      const rs = await Promise.all([...creates, revoke]);
      expect(rs[N]!.statusCode).toBe(204);
      const kids = rs
        .slice(0, N)
        .filter((r) => r.statusCode === 200)
        .map((r) => r.json().auth as { client_token: string; accessor: string });
      // No row remains behind (checked before any use, which would clean up an orphan when met).
      const accessors = (await t.call("GET", "auth/token/accessors?list=true", undefined, root)).json().data
        .keys as string[];
      for (const k of kids) expect(accessors).not.toContain(k.accessor);
      for (const k of kids) {
        expect((await t.call("GET", "auth/token/lookup-self", undefined, k.client_token)).statusCode).toBe(
          403,
        );
      }
    }
  });

  it("a parent revoked while a child's creation is between its parent check and its commit: no orphan", async () => {
    await putPolicy(t, root, "race-parent", 'path "auth/token/create" { capabilities = ["update"] }');
    const parent = await childToken(t, root, ["race-parent", "race-read"]);
    const store = t.server.core.store;
    const original = store.transaction.bind(store);
    let revoke: Promise<unknown> | undefined;
    vi.spyOn(store, "transaction").mockImplementationOnce(async (fn) =>
      original(async (trx) => {
        const out = await fn(trx); // parent checked, child row inserted, not committed yet
        revoke = t.call("POST", "auth/token/revoke", { token: parent }, root);
        if (db.dialect === "postgres") await untilRevokeWaitsOrEnds(db.url(), revoke);
        return out;
      }),
    );
    const made = await t.call("POST", "auth/token/create", { policies: ["race-read"] }, parent);
    vi.restoreAllMocks();
    expect(revoke).toBeDefined();
    expect(((await revoke) as { statusCode: number }).statusCode).toBe(204);
    const child = made.json().auth as { accessor: string } | null;
    const accessors = (await t.call("GET", "auth/token/accessors?list=true", undefined, root)).json().data
      .keys as string[];
    if (child) expect(accessors).not.toContain(child.accessor);
  });

  it("policy writes and deletes while requests use them: each request sees an old or a new policy, never a 500", async () => {
    await t.call("POST", "secret/data/race/pol", { data: { x: 1 } }, root);
    const allow = 'path "secret/data/race/pol" { capabilities = ["read"] }';
    const deny = 'path "secret/data/race/pol" { capabilities = ["deny"] }';
    await putPolicy(t, root, "race-flip", allow);
    const user = await childToken(t, root, ["race-flip"]);
    const ops = Array.from({ length: 3 * N }, (_, i) => {
      if (i % 3 === 0)
        return t.call("PUT", "sys/policies/acl/race-flip", { policy: i % 2 ? allow : deny }, root);
      if (i % 7 === 0) return t.call("DELETE", "sys/policies/acl/race-flip", undefined, root);
      return t.call("GET", "secret/data/race/pol", undefined, user);
    });
    const rs = await Promise.all(ops);
    for (const r of rs) expect([200, 204, 403]).toContain(r.statusCode);
    // Settled: the last write wins, and reads follow it at once.
    await putPolicy(t, root, "race-flip", deny);
    expect((await t.call("GET", "secret/data/race/pol", undefined, user)).statusCode).toBe(403);
    await putPolicy(t, root, "race-flip", allow);
    expect((await t.call("GET", "secret/data/race/pol", undefined, user)).statusCode).toBe(200);
    await t.call("DELETE", "sys/policies/acl/race-flip", undefined, root);
    expect((await t.call("GET", "secret/data/race/pol", undefined, user)).statusCode).toBe(403);
  });
});

/**
 * Waits until the revocation either finished (no lock ordering it after the open transaction: the bug) or
 * is waiting for a row lock held by that transaction (the fix). Polls PostgreSQL's own view of its backends.
 */
async function untilRevokeWaitsOrEnds(url: string, revoke: Promise<unknown>): Promise<void> {
  let ended = false;
  void revoke.finally(() => (ended = true));
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    for (let i = 0; i < 500 && !ended; i++) {
      const r = await c.query(
        "select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'",
      );
      if ((r.rows[0] as { n: number }).n > 0) return;
      await new Promise((res) => setTimeout(res, 5));
    }
  } finally {
    await c.end();
  }
}
