import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../../../test/helpers/server.js";

/** The auth routes through the real server pipeline (dev mode: SQLite, dev seal, real barrier and audit). */
describe("auth routes", () => {
  let t: TestServer;
  let dir: string;
  let root: string;

  const call = (method: string, path: string, body?: unknown, token?: string) =>
    t.call(method, path, body, token);
  const create = async (body: Record<string, unknown>, token = root) => {
    const r = await call("POST", "auth/token/create", body, token);
    expect(r.statusCode, r.body).toBe(200);
    return r.json().auth as Record<string, unknown> & { client_token: string; accessor: string };
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "fr-auth-"));
    t = await startTestServer(`sqlite:${join(dir, "fr.db")}`, {
      dev: true,
      seal: { type: "dev" },
      dataDir: dir,
      log: () => {},
    });
    root = t.server.devRootToken!;
    expect(root).toMatch(/^frs\./);
    const policy = `
      path "secret/app/*" { capabilities = ["read", "list"] }
      path "auth/token/create" { capabilities = ["update"] }
      path "auth/token/create-orphan" { capabilities = ["update"] }
      path "auth/token/accessors" { capabilities = ["list"] }
      path "auth/token/lookup" { capabilities = ["update"] }`;
    expect((await call("PUT", "sys/policies/acl/app", { policy }, root)).statusCode).toBe(204);
  });
  afterAll(async () => {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("creates a token with Vault's auth block", async () => {
    const a = await create({
      policies: ["app"],
      ttl: "1h",
      meta: { team: "fleet" },
      display_name: "ci",
      num_uses: 5,
    });
    expect(a.client_token).toMatch(/^frs\./);
    expect(a).toMatchObject({
      policies: ["app", "default"],
      token_policies: ["app", "default"],
      metadata: { team: "fleet" },
      lease_duration: 3600,
      renewable: true,
      entity_id: "",
      token_type: "service",
      orphan: false,
      num_uses: 5,
    });
    expect(typeof a.accessor).toBe("string");
  });

  it("looks a token up by itself, by token and by accessor", async () => {
    const a = await create({ policies: ["app"], ttl: "2h", explicit_max_ttl: "10h", meta: { k: "v" } });
    const self = await call("GET", "auth/token/lookup-self", undefined, a.client_token);
    expect(self.statusCode).toBe(200);
    const d = self.json().data;
    expect(d).toMatchObject({
      id: a.client_token,
      accessor: a.accessor,
      policies: ["app", "default"],
      ttl: 7200,
      creation_ttl: 7200,
      explicit_max_ttl: 36000,
      num_uses: 0,
      orphan: false,
      path: "auth/token/create",
      meta: { k: "v" },
      display_name: "token",
      renewable: true,
      type: "service",
    });
    expect(d.creation_time).toBe(Math.floor(t.clock.now().getTime() / 1000));
    expect(new Date(d.expire_time as string).getTime()).toBe(t.clock.now().getTime() + 7200_000);
    const byToken = await call("POST", "auth/token/lookup", { token: a.client_token }, root);
    expect(byToken.json().data.accessor).toBe(a.accessor);
    const byAccessor = await call("POST", "auth/token/lookup-accessor", { accessor: a.accessor }, root);
    expect(byAccessor.json().data).toMatchObject({ id: "", accessor: a.accessor });
    const bad = await call("POST", "auth/token/lookup-accessor", { accessor: "nope" }, root);
    expect(bad.statusCode).toBe(400);
    expect(bad.json().code).toBe("FR_ACCESSOR_INVALID");
  });

  it("renews by self, token and accessor", async () => {
    const a = await create({ policies: ["app"], ttl: "1h" });
    t.clock.advance(600_000);
    const self = await call("POST", "auth/token/renew-self", { increment: "30m" }, a.client_token);
    expect(self.statusCode, self.body).toBe(200);
    expect(self.json().auth).toMatchObject({ client_token: a.client_token, lease_duration: 1800 });
    const byToken = await call("POST", "auth/token/renew", { token: a.client_token, increment: 7200 }, root);
    expect(byToken.json().auth.lease_duration).toBe(7200);
    const byAccessor = await call("POST", "auth/token/renew-accessor", { accessor: a.accessor }, root);
    expect(byAccessor.json().auth).toMatchObject({ client_token: "", lease_duration: 3600 });
    const lookup = (await call("GET", "auth/token/lookup-self", undefined, a.client_token)).json().data;
    expect(lookup.last_renewal_time).toBe(Math.floor(t.clock.now().getTime() / 1000));
    const rootRenew = await call("POST", "auth/token/renew-self", {}, root);
    expect(rootRenew.statusCode).toBe(400);
    expect(rootRenew.json().code).toBe("FR_TOKEN_NOT_RENEWABLE");
  });

  it("enforces the subset rule and the sudo rules for orphans and accessors", async () => {
    const a = await create({ policies: ["app"] });
    const notHeld = await call("POST", "auth/token/create", { policies: ["other"] }, a.client_token);
    expect(notHeld.statusCode).toBe(400);
    expect(notHeld.json().errors[0]).toMatch(/subset/);
    const orphan = await call("POST", "auth/token/create-orphan", {}, a.client_token);
    expect(orphan.statusCode).toBe(400);
    expect(orphan.json().code).toBe("FR_TOKEN_PRIVILEGE");
    const noParent = await call("POST", "auth/token/create", { no_parent: true }, a.client_token);
    expect(noParent.json().code).toBe("FR_TOKEN_PRIVILEGE");
    const list = await call("GET", "auth/token/accessors?list=true", undefined, a.client_token);
    expect(list.statusCode).toBe(403);
    const rootList = await call("GET", "auth/token/accessors?list=true", undefined, root);
    expect(rootList.statusCode).toBe(200);
    expect(rootList.json().data.keys).toContain(a.accessor);
    const rootOrphan = await call("POST", "auth/token/create-orphan", { policies: ["app"] }, root);
    expect(rootOrphan.json().auth.orphan).toBe(true);
    // A token whose policies lack the path is refused by the server before the handler runs.
    const child = await create({ policies: ["app"] }, a.client_token);
    const forbidden = await call(
      "POST",
      "auth/token/revoke-orphan",
      { token: child.client_token },
      a.client_token,
    );
    expect(forbidden.statusCode).toBe(403);
    expect(forbidden.body).not.toContain(child.client_token);
  });

  it("revokes trees, orphans, accessors and itself", async () => {
    const p = await create({ policies: ["app"] });
    const c = await create({ policies: ["app"] }, p.client_token);
    const g = await create({}, c.client_token);
    expect((await call("POST", "auth/token/revoke-orphan", { token: p.client_token }, root)).statusCode).toBe(
      204,
    );
    expect((await call("GET", "auth/token/lookup-self", undefined, p.client_token)).statusCode).toBe(403);
    expect((await call("GET", "auth/token/lookup-self", undefined, c.client_token)).json().data.orphan).toBe(
      true,
    );
    expect(
      (await call("POST", "auth/token/revoke-accessor", { accessor: c.accessor }, root)).statusCode,
    ).toBe(204);
    expect((await call("GET", "auth/token/lookup-self", undefined, g.client_token)).statusCode).toBe(403);
    const s = await create({ policies: ["app"] });
    expect((await call("POST", "auth/token/revoke-self", {}, s.client_token)).statusCode).toBe(204);
    const gone = await call("GET", "auth/token/lookup-self", undefined, s.client_token);
    expect(gone.statusCode).toBe(403);
    expect(gone.json().errors[0]).toBe("permission denied");
    expect(gone.body).not.toContain(s.client_token);
    // Revoking an unknown token is not an error, as in Vault.
    expect((await call("POST", "auth/token/revoke", { token: "frs.unknown" }, root)).statusCode).toBe(204);
  });

  it("answers sys/capabilities-self and sys/capabilities", async () => {
    const a = await create({ policies: ["app"] });
    const self = await call("POST", "sys/capabilities-self", { path: "secret/app/x" }, a.client_token);
    expect(self.json().data).toEqual({ capabilities: ["list", "read"], "secret/app/x": ["list", "read"] });
    const many = await call(
      "POST",
      "sys/capabilities",
      { token: a.client_token, paths: ["secret/app/x", "secret/b"] },
      root,
    );
    expect(many.json().data).toEqual({ "secret/app/x": ["list", "read"], "secret/b": ["deny"] });
    const rootCaps = await call("POST", "sys/capabilities-self", { paths: ["x"] }, root);
    expect(rootCaps.json().data.x).toEqual(["root"]);
    const byAccessor = await call(
      "POST",
      "sys/capabilities-accessor",
      { accessor: a.accessor, paths: ["secret/app/y"] },
      root,
    );
    expect(byAccessor.json().data["secret/app/y"]).toEqual(["list", "read"]);
  });

  it("manages policies on sys/policy and sys/policies/acl", async () => {
    const hcl = `path "kv/*" { capabilities = ["read"] }`;
    expect((await call("PUT", "sys/policy/Reader", { rules: hcl }, root)).statusCode).toBe(204);
    const legacy = (await call("GET", "sys/policy/reader", undefined, root)).json();
    expect(legacy).toMatchObject({ name: "reader", rules: hcl, data: { name: "reader", rules: hcl } });
    const acl = (await call("GET", "sys/policies/acl/reader", undefined, root)).json();
    expect(acl.data).toEqual({ name: "reader", policy: hcl });
    const list = (await call("GET", "sys/policy", undefined, root)).json();
    expect(list.policies).toEqual(expect.arrayContaining(["default", "reader", "root"]));
    expect(list.data.keys).toEqual(list.policies);
    const keys = (await call("GET", "sys/policies/acl?list=true", undefined, root)).json().data.keys;
    expect(keys).toEqual(expect.arrayContaining(["app", "default", "reader"]));
    const json = JSON.stringify({ path: { "kv/*": { capabilities: ["read", "list"] } } });
    expect((await call("POST", "sys/policies/acl/reader", { policy: json }, root)).statusCode).toBe(204);
    expect((await call("DELETE", "sys/policies/acl/reader", undefined, root)).statusCode).toBe(204);
    const missing = await call("GET", "sys/policies/acl/reader", undefined, root);
    expect(missing.statusCode).toBe(404);
    expect(missing.json().code).toBe("FR_POLICY_NOT_FOUND");
    const bad = await call(
      "PUT",
      "sys/policies/acl/broken",
      { policy: `path "a" {\n  capabilities = ["reed"]\n}` },
      root,
    );
    expect(bad.statusCode).toBe(400);
    expect(bad.json().errors[0]).toMatch(/line 2, column 19: unknown capability "reed"/);
    expect((await call("DELETE", "sys/policy/root", undefined, root)).json().code).toBe(
      "FR_POLICY_PROTECTED",
    );
    expect((await call("DELETE", "sys/policies/acl/default", undefined, root)).statusCode).toBe(400);
    expect((await call("PUT", "sys/policy/root", { policy: hcl }, root)).json().code).toBe(
      "FR_POLICY_PROTECTED",
    );
    const noText = await call("PUT", "sys/policies/acl/empty", {}, root);
    expect(noText.json().errors[0]).toMatch(/policy is required/);
    // Regression: an empty policy text was stored (204) where Vault refuses it.
    const emptyText = await call("PUT", "sys/policies/acl/empty", { policy: "" }, root);
    expect(emptyText.statusCode).toBe(400);
    expect(emptyText.json().errors[0]).toMatch(/policy is required/);
    expect((await call("GET", "sys/policies/acl/empty", undefined, root)).statusCode).toBe(404);
  });

  it("asks `create` to write a new policy and `update` to change one, as Vault does", async () => {
    const hcl = `path "kv/*" { capabilities = ["read"] }`;
    const grant = (caps: string) => `path "sys/policies/acl/cu-*" { capabilities = [${caps}] }`;
    expect(
      (await call("PUT", "sys/policies/acl/pol-create", { policy: grant('"create"') }, root)).statusCode,
    ).toBe(204);
    expect(
      (await call("PUT", "sys/policies/acl/pol-update", { policy: grant('"update"') }, root)).statusCode,
    ).toBe(204);
    const creator = (await create({ policies: ["pol-create"] })).client_token;
    const updater = (await create({ policies: ["pol-update"] })).client_token;
    expect((await call("PUT", "sys/policies/acl/cu-new", { policy: hcl }, updater)).statusCode).toBe(403);
    expect((await call("GET", "sys/policies/acl/cu-new", undefined, root)).statusCode).toBe(404);
    expect((await call("PUT", "sys/policies/acl/cu-new", { policy: hcl }, creator)).statusCode).toBe(204);
    expect((await call("PUT", "sys/policies/acl/cu-new", { policy: hcl }, creator)).statusCode).toBe(403);
    expect((await call("PUT", "sys/policies/acl/cu-new", { policy: hcl }, updater)).statusCode).toBe(204);
  });

  it("makes a token's default policy give self-service and nothing else", async () => {
    const a = await create({ policies: ["default"] });
    expect((await call("GET", "auth/token/lookup-self", undefined, a.client_token)).statusCode).toBe(200);
    expect((await call("POST", "sys/capabilities-self", { paths: ["x"] }, a.client_token)).statusCode).toBe(
      200,
    );
    expect((await call("GET", "sys/policy", undefined, a.client_token)).statusCode).toBe(403);
    expect((await call("POST", "auth/token/create", {}, a.client_token)).statusCode).toBe(403);
  });

  it("refuses token options Fleetroot does not implement", async () => {
    const custom = await call("POST", "auth/token/create", { id: "my-own-token" }, root);
    expect(custom.statusCode).toBe(400);
    expect(custom.json().errors[0]).toMatch(/id is not supported/);
    const batch = await call("POST", "auth/token/create", { type: "batch" }, root);
    expect(batch.json().errors[0]).toMatch(/batch/);
    expect((await call("POST", "auth/token/create", { ttl: "forever" }, root)).statusCode).toBe(400);
    expect((await call("POST", "auth/token/create", { num_uses: -1 }, root)).statusCode).toBe(400);
    expect((await call("POST", "auth/token/create", { meta: { a: 1 } }, root)).statusCode).toBe(400);
  });
});
