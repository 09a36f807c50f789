import { randomBytes } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { describeEachStore } from "../../../test/helpers/stores.js";
import { FleetError } from "../../errors/index.js";
import { Barrier, sealMigrations } from "../../seal/index.js";
import type { RequestAuth } from "../../server/types.js";
import type { Store } from "../../store/index.js";
import { ManualClock } from "../../util/index.js";
import { Authorizer } from "../authorizer.js";
import { authMigrations, type AuthTables } from "../migrations.js";
import { PolicyStore } from "../policy/policy-store.js";
import { renewalTtl } from "./ttl.js";
import { TokenTidy } from "./tidy-job.js";
import { TokenStore, sha256hex } from "./token-store.js";

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(FleetError);
    return (e as FleetError).code;
  }
  return undefined;
}

const HOUR = 3600;

describeEachStore("auth tokens", (ctx) => {
  let store: Store;
  let clock: ManualClock;
  let tokens: TokenStore;
  let policies: PolicyStore;
  let authz: Authorizer;
  let root: RequestAuth;
  let rootToken: string;
  let barrier: Barrier;

  beforeAll(async () => {
    store = await ctx.open([sealMigrations, authMigrations]);
    clock = new ManualClock(Date.UTC(2026, 0, 1));
    barrier = new Barrier(store, clock);
    await barrier.initialize(randomBytes(32));
    tokens = new TokenStore({ store, protector: barrier, clock, defaultTtl: 24 * HOUR, maxTtl: 48 * HOUR });
    policies = new PolicyStore({ store, clock });
    authz = new Authorizer({ tokens, policies, clock });
    rootToken = (await tokens.createRootToken()).token;
    root = await authz.authenticate(rootToken);
    await policies.write("app", `path "secret/app/*" { capabilities = ["read"] }`);
    await policies.write(
      "ops",
      `path "secret/ops/*" { capabilities = ["read"] }\npath "auth/token/create" { capabilities = ["update"] }`,
    );
  });

  it("creates a root token with no TTL and stores only its hash and ciphertext", async () => {
    expect(rootToken).toMatch(/^frs\.[A-Za-z0-9_-]{43}$/);
    expect(root.root).toBe(true);
    const info = await tokens.lookup(rootToken);
    expect(info).toMatchObject({
      policies: ["root"],
      ttl: 0,
      expireAt: 0,
      renewable: false,
      orphan: true,
      path: "auth/token/root",
    });
    const row = await store.db
      .withTables<AuthTables>()
      .selectFrom("auth_token")
      .selectAll()
      .where("hash", "=", sha256hex(rootToken))
      .executeTakeFirstOrThrow();
    const all = JSON.stringify({ ...row, entry: Buffer.from(row.entry).toString("latin1") });
    expect(all).not.toContain(rootToken);
    expect(all).not.toContain("auth/token/root");
  });

  it("refuses missing, malformed and unknown tokens with permission denied", async () => {
    expect(await codeOf(authz.authenticate(undefined))).toBe("FR_MISSING_TOKEN");
    expect(await codeOf(authz.authenticate(""))).toBe("FR_MISSING_TOKEN");
    expect(await codeOf(authz.authenticate("hvs.nope"))).toBe("FR_TOKEN_INVALID");
    expect(await codeOf(authz.authenticate(`frs.${"A".repeat(43)}`))).toBe("FR_TOKEN_INVALID");
    try {
      await authz.authenticate("frs.secretvalue");
    } catch (e) {
      expect((e as FleetError).message).toBe("permission denied");
    }
  });

  it("creates children with the default policy, TTL caps and metadata", async () => {
    const c = await tokens.create(
      root,
      { policies: ["app"], ttl: 100 * HOUR, meta: { team: "a" }, displayName: "ci job" },
      true,
    );
    expect(c.info.policies).toEqual(["app", "default"]);
    expect(c.info.ttl).toBe(48 * HOUR);
    expect(c.warnings.join()).toMatch(/system max TTL/);
    expect(c.info).toMatchObject({
      orphan: false,
      renewable: true,
      meta: { team: "a" },
      displayName: "token-ci-job",
    });
    const d = await tokens.create(root, { policies: ["app"], noDefaultPolicy: true }, true);
    expect(d.info.policies).toEqual(["app"]);
    expect(d.info.ttl).toBe(24 * HOUR);
    const e = await tokens.create(root, { policies: ["app"], ttl: 10 * HOUR, explicitMaxTtl: HOUR }, true);
    expect(e.info.ttl).toBe(HOUR);
  });

  it("answers create and renew with the TTL granted, however long the write took", async () => {
    // A clock that moves on every reading, as the real one does between computing expiry and answering.
    const ticking = {
      now: () => {
        clock.advance(7);
        return clock.now();
      },
      nowMs: () => {
        clock.advance(7);
        return clock.nowMs();
      },
    };
    const slow = new TokenStore({ store, protector: barrier, clock: ticking });
    const c = await slow.create(root, { policies: ["app"], ttl: HOUR }, true);
    expect(c.info.ttl).toBe(HOUR);
    expect((await slow.renew(c.token, 2 * HOUR)).info.ttl).toBe(2 * HOUR);
  });

  it("applies Vault's subset rule for non-root parents", async () => {
    const opsToken = (await tokens.create(root, { policies: ["ops"] }, true)).token;
    const ops = await authz.authenticate(opsToken);
    expect(await codeOf(tokens.create(ops, { policies: ["app"] }, false))).toBe("FR_VALIDATION");
    const inherited = await tokens.create(ops, {}, false);
    expect(inherited.info.policies).toEqual(["default", "ops"]);
    expect(await codeOf(tokens.create(ops, { policies: ["root"] }, true))).toBe("FR_PERMISSION_DENIED");
    expect(await codeOf(tokens.create(ops, { orphan: true }, false))).toBe("FR_TOKEN_PRIVILEGE");
    expect(await codeOf(tokens.create(ops, { period: 60 }, false))).toBe("FR_TOKEN_PRIVILEGE");
    // With sudo on the creation path the subset rule is lifted (but root still needs a root parent).
    expect((await tokens.create(ops, { policies: ["app"], orphan: true }, true)).info).toMatchObject({
      policies: ["app", "default"],
      orphan: true,
    });
  });

  it("revokes a whole subtree, and revoke-orphan keeps the children as orphans", async () => {
    const a = await tokens.create(root, { policies: ["ops"] }, true);
    const aAuth = await authz.authenticate(a.token);
    const b = await tokens.create(aAuth, {}, false);
    const bAuth = await authz.authenticate(b.token);
    const c = await tokens.create(bAuth, {}, false);
    await tokens.revoke(a.token);
    for (const t of [a, b, c]) expect(await codeOf(authz.authenticate(t.token))).toBe("FR_TOKEN_INVALID");

    const p = await tokens.create(root, { policies: ["ops"] }, true);
    const pAuth = await authz.authenticate(p.token);
    const k = await tokens.create(pAuth, {}, false);
    const kAuth = await authz.authenticate(k.token);
    const g = await tokens.create(kAuth, {}, false);
    await tokens.revokeOrphan(p.token);
    expect(await codeOf(authz.authenticate(p.token))).toBe("FR_TOKEN_INVALID");
    expect((await tokens.lookup(k.token)).orphan).toBe(true);
    expect((await tokens.lookup(g.token)).orphan).toBe(false);
    await tokens.revokeAccessor(k.info.accessor);
    expect(await codeOf(authz.authenticate(g.token))).toBe("FR_TOKEN_INVALID");
    expect(await codeOf(tokens.lookupAccessor(k.info.accessor))).toBe("FR_ACCESSOR_INVALID");
  });

  it("refuses a child created after its parent was revoked", async () => {
    const p = await tokens.create(root, { policies: ["ops"] }, true);
    const pAuth = await authz.authenticate(p.token);
    await tokens.revoke(p.token);
    expect(await codeOf(tokens.create(pAuth, {}, false))).toBe("FR_TOKEN_INVALID");
  });

  it("counts uses and revokes the token at zero, keeping the last use's snapshot", async () => {
    const t = await tokens.create(root, { policies: ["app"], numUses: 2 }, true);
    const first = await authz.authenticate(t.token);
    expect((await tokens.lookupSelf(first)).numUses).toBe(1);
    const last = await authz.authenticate(t.token);
    expect((await tokens.lookupSelf(last)).numUses).toBe(0);
    expect(await codeOf(authz.authenticate(t.token))).toBe("FR_TOKEN_INVALID");
    expect(await codeOf(tokens.lookupAccessor(t.info.accessor))).toBe("FR_ACCESSOR_INVALID");
  });

  it("refuses expired tokens and their children, and cleans them up", async () => {
    const p = await tokens.create(root, { policies: ["ops"], ttl: 60 }, true);
    const pAuth = await authz.authenticate(p.token);
    const k = await tokens.create(pAuth, { ttl: HOUR }, false);
    clock.advance(61_000);
    // The child itself has not expired, but its parent has: Vault's expiry revokes the tree.
    expect(await codeOf(authz.authenticate(k.token))).toBe("FR_TOKEN_INVALID");
    expect(await codeOf(authz.authenticate(p.token))).toBe("FR_TOKEN_INVALID");
    expect(await tokens.listAccessors()).not.toContain(p.info.accessor);
    expect(await tokens.listAccessors()).not.toContain(k.info.accessor);
  });

  it("tidy() removes expired trees", async () => {
    const p = await tokens.create(root, { policies: ["ops"], ttl: 30 }, true);
    clock.advance(31_000);
    expect(await tokens.tidy()).toBeGreaterThanOrEqual(1);
    expect(await tokens.listAccessors()).not.toContain(p.info.accessor);
  });

  it("the tidy job removes an expired token's whole subtree, reports it, and survives a failing run", async () => {
    const parent = await tokens.create(root, { policies: ["ops"], ttl: 30 }, true);
    const child = await tokens.create(await authz.authenticate(parent.token), { ttl: HOUR }, false);
    const other = await tokens.create(root, { policies: ["ops"], ttl: HOUR }, true);
    clock.advance(31_000);
    const reports: number[] = [];
    const errors: unknown[] = [];
    const job = new TokenTidy(
      tokens,
      async (n) => void reports.push(n),
      (e) => void errors.push(e),
    );
    await job.runOnce();
    expect(reports).toEqual([2]);
    const left = await tokens.listAccessors();
    expect(left).not.toContain(parent.info.accessor);
    expect(left).not.toContain(child.info.accessor);
    expect(left).toContain(other.info.accessor);
    await job.runOnce(); // nothing left to remove: nothing reported
    expect(reports).toEqual([2]);
    const failing = new TokenTidy(
      {
        tidy: () => Promise.reject(new Error("store unreachable")),
      },
      async () => undefined,
      (e) => void errors.push(e),
    );
    failing.start();
    failing.start();
    await failing.runOnce();
    await failing.stop();
    expect(errors.map((e) => (e as Error).message)).toEqual(["store unreachable"]);
  });

  it("tidy() and revocations running at once over nested trees all succeed (PostgreSQL: no lock cycle)", async () => {
    // Chains root → a → b → c, where a and c expire: tidy takes each expired root on its own while
    // revocations of b and of whole chains run beside it.
    const chains: Array<{ a: string; b: string; c: string }> = [];
    for (let i = 0; i < 8; i++) {
      const a = await tokens.create(root, { policies: ["ops"], ttl: 30 }, true);
      const b = await tokens.create(await authz.authenticate(a.token), { ttl: HOUR }, false);
      const c = await tokens.create(await authz.authenticate(b.token), { ttl: 20 }, false);
      chains.push({ a: a.token, b: b.token, c: c.token });
    }
    clock.advance(31_000);
    const results = await Promise.allSettled([
      tokens.tidy(),
      ...chains.map((ch, i) => (i % 2 ? tokens.revoke(ch.b) : tokens.revoke(ch.a))),
      tokens.tidy(),
    ]);
    expect(results.filter((r) => r.status === "rejected")).toEqual([]);
    for (const ch of chains)
      for (const t of [ch.a, ch.b, ch.c])
        expect(await codeOf(authz.authenticate(t))).toBe("FR_TOKEN_INVALID");
  });

  it("renews with increments capped by explicit_max_ttl; periodic tokens renew to the period", async () => {
    const t = await tokens.create(root, { policies: ["app"], ttl: HOUR, explicitMaxTtl: 3 * HOUR }, true);
    clock.advance(30 * 60_000);
    let r = await tokens.renew(t.token, 2 * HOUR);
    expect(r.info.ttl).toBe(2 * HOUR);
    expect(r.info.lastRenewalAt).toBe(clock.now().getTime());
    clock.advance(HOUR * 1000);
    r = await tokens.renew(t.token, 2 * HOUR);
    // created 1.5h ago with a 3h explicit max: 1.5h left
    expect(r.info.ttl).toBe(1.5 * HOUR);
    expect(r.warnings.length).toBe(1);
    const byAccessor = await tokens.renewAccessor(t.info.accessor, 0);
    expect(byAccessor.info.ttl).toBe(HOUR);

    const p = await tokens.create(root, { policies: ["app"], period: 6 * HOUR, ttl: 5 }, true);
    expect(p.info.ttl).toBe(6 * HOUR);
    // Renewed every 5h for 100h, far past the 48h system max TTL: a periodic token renews to its period.
    for (let i = 0; i < 20; i++) {
      clock.advance(5 * HOUR * 1000);
      expect((await tokens.renew(p.token, 5)).info.ttl).toBe(6 * HOUR);
    }
    clock.advance(6 * HOUR * 1000 + 1000);
    expect(await codeOf(tokens.renew(p.token))).toBe("FR_TOKEN_INVALID");
  });

  it("refuses to renew the root token and non-renewable tokens", async () => {
    expect(await codeOf(tokens.renew(rootToken))).toBe("FR_TOKEN_NOT_RENEWABLE");
    const t = await tokens.create(root, { policies: ["app"], renewable: false }, true);
    expect(await codeOf(tokens.renew(t.token))).toBe("FR_TOKEN_NOT_RENEWABLE");
  });

  it("answers allowed() and capabilities() from the token's policies", async () => {
    const t = await tokens.create(root, { policies: ["app"] }, true);
    const auth = await authz.authenticate(t.token);
    expect(await authz.allowed(auth, "secret/app/db", "read")).toBe(true);
    expect(await authz.allowed(auth, "secret/ops/db", "read")).toBe(false);
    expect(await authz.allowed(auth, "auth/token/lookup-self", "read")).toBe(true);
    expect(await authz.capabilities(auth, "secret/app/x")).toEqual(["read"]);
    expect(await authz.capabilities(root, "anything")).toEqual(["root"]);
    // A policy rewrite takes effect at once (the cache is invalidated on write).
    await policies.write("app", `path "secret/app/*" { capabilities = ["deny"] }`);
    expect(await authz.allowed(auth, "secret/app/db", "read")).toBe(false);
    await policies.delete("app");
    expect(await authz.capabilities(auth, "secret/app/x")).toEqual(["deny"]);
    await policies.write("app", `path "secret/app/*" { capabilities = ["read"] }`);
  });

  it("protects the built-in policies", async () => {
    expect(await codeOf(policies.write("root", `path "*" { capabilities = ["read"] }`))).toBe(
      "FR_POLICY_PROTECTED",
    );
    expect(await codeOf(policies.delete("root"))).toBe("FR_POLICY_PROTECTED");
    expect(await codeOf(policies.delete("default"))).toBe("FR_POLICY_PROTECTED");
    expect(await policies.read("default")).toMatch(/auth\/token\/lookup-self/);
    await policies.write("Default", `path "auth/token/lookup-self" { capabilities = ["read"] }`);
    expect(await policies.read("default")).not.toMatch(/renew-self/);
    expect(await policies.list()).toEqual(expect.arrayContaining(["app", "default", "ops", "root"]));
    expect(await codeOf(policies.write("bad", `path "x" { capabilities = ["fly"] }`))).toBe(
      "FR_POLICY_SYNTAX",
    );
    expect(await codeOf(policies.write("a/b", `path "x" { capabilities = ["read"] }`))).toBe("FR_VALIDATION");
  });

  it("keeps tokens and policies across a restart", async () => {
    const again = await ctx.open([sealMigrations, authMigrations]);
    const barrier = new Barrier(again, clock);
    // Same store, new process: without the barrier's key the entries are unreadable.
    const sealedTokens = new TokenStore({ store: again, protector: barrier, clock });
    expect(await codeOf(sealedTokens.lookup(rootToken))).toBeDefined();
    expect(await new PolicyStore({ store: again, clock }).read("app")).toMatch(/secret\/app/);
  });
});

describe("renewal arithmetic", () => {
  const base = {
    period: 0,
    creationTtl: 3600,
    explicitMaxTtl: 0,
    createdAtMs: 0,
    nowMs: 0,
    increment: 0,
    systemMaxTtl: 7200,
  };
  it("defaults to the creation TTL and caps at the system max from creation", () => {
    expect(renewalTtl(base)).toEqual({ ttl: 3600, capped: false });
    expect(renewalTtl({ ...base, nowMs: 5400_000 })).toEqual({ ttl: 1800, capped: true });
    expect(renewalTtl({ ...base, increment: 60 })).toEqual({ ttl: 60, capped: false });
  });
  it("lets explicit_max_ttl cap periodic tokens, and nothing else", () => {
    expect(renewalTtl({ ...base, period: 600, nowMs: 1e9 })).toEqual({ ttl: 600, capped: false });
    expect(renewalTtl({ ...base, period: 600, explicitMaxTtl: 1000, nowMs: 700_000 })).toEqual({
      ttl: 300,
      capped: true,
    });
  });
});
