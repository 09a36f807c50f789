import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { verifyAuditLog } from "../src/audit/index.js";
import { describeEachStore } from "./helpers/stores.js";
import { startTestServer, type TestServer } from "./helpers/server.js";

const PLANTED = "planted-secret-7f3a9c1e5b";

describeEachStore("core: init, restart, unseal, tokens, audit", (db) => {
  let t: TestServer;
  let keys: string[] = [];
  let root = "";

  beforeAll(async () => {
    t = await startTestServer(db.url());
  });
  afterAll(async () => {
    await t?.close();
  });

  it("starts uninitialized and sealed; everything but the sys seal routes answers 503", async () => {
    const status = (await t.call("GET", "sys/seal-status")).json();
    expect(status).toMatchObject({ type: "shamir", initialized: false, sealed: true });
    expect((await t.call("GET", "sys/health")).statusCode).toBe(501);
    expect((await t.call("GET", "sys/health?uninitcode=200")).statusCode).toBe(200);
    // A code that is not one is refused (it used to fall back to the default silently).
    for (const bad of ["activecode=abc", "sealedcode=999", "uninitcode=-1", "standbycode=200.5"]) {
      const r = await t.call("GET", `sys/health?${bad}`);
      expect([r.statusCode, r.json().code]).toEqual([400, "FR_VALIDATION"]);
    }
    const sealed = await t.call("GET", "auth/token/lookup-self", undefined, "frs.whatever");
    expect(sealed.statusCode).toBe(503);
    expect(sealed.json()).toMatchObject({ code: "FR_SEALED" });
    // A method the route does not take is still "sealed" while sealed (was 405), as Vault answers.
    const wrongMethod = await t.call("GET", "sys/policies/acl", undefined, "frs.whatever");
    expect([wrongMethod.statusCode, wrongMethod.json().code]).toEqual([503, "FR_SEALED"]);
    expect((await t.call("GET", "sys/init")).json()).toEqual({ initialized: false });
  });

  it("refuses a bad init and leaves nothing behind, then initializes with 5 shares / threshold 3", async () => {
    const bad = await t.call("PUT", "sys/init", { secret_shares: 2, secret_threshold: 3 });
    expect(bad.statusCode).toBe(400);
    expect((await t.call("GET", "sys/init")).json()).toEqual({ initialized: false });
    // As Vault: both counts are required JSON integers (was: strings taken, missing ones became 5 and 3).
    for (const [body, says] of [
      [{}, "secret_shares and secret_threshold are required"],
      [{ secret_shares: 5 }, "are required"],
      [
        { secret_shares: "5", secret_threshold: 3 },
        'secret_shares must be a JSON integer, not the string "5"',
      ],
      [{ secret_shares: 5, secret_threshold: 2.5 }, "secret_threshold must be a JSON integer, not number"],
    ] as const) {
      const r = await t.call("PUT", "sys/init", body);
      expect([r.statusCode, r.json().code, r.json().errors[0]], JSON.stringify(body)).toEqual([
        400,
        "FR_VALIDATION",
        expect.stringContaining(says),
      ]);
    }
    expect((await t.call("GET", "sys/init")).json()).toEqual({ initialized: false });

    const res = await t.call("PUT", "sys/init", { secret_shares: 5, secret_threshold: 3 });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.keys).toHaveLength(5);
    expect(body.keys_base64).toHaveLength(5);
    expect(body.root_token).toMatch(/^frs\./);
    keys = body.keys;
    root = body.root_token;
    expect((await t.call("GET", "sys/seal-status")).json()).toMatchObject({
      initialized: true,
      sealed: true,
      t: 3,
      n: 5,
      progress: 0,
    });
    const again = await t.call("PUT", "sys/init", { secret_shares: 5, secret_threshold: 3 });
    expect(again.statusCode).toBe(400);
  });

  it("after a restart, unseals with 3 shares; a reused share and a wrong share are refused", async () => {
    await t.restart();
    expect((await t.call("GET", "sys/seal-status")).json()).toMatchObject({
      initialized: true,
      sealed: true,
    });

    const first = await t.call("PUT", "sys/unseal", { key: keys[0] });
    expect(first.json()).toMatchObject({ sealed: true, progress: 1 });
    const reused = await t.call("PUT", "sys/unseal", { key: keys[0] });
    expect(reused.statusCode).toBe(400);
    expect(reused.json().code).toBe("FR_UNSEAL_SHARE_REUSED");
    const garbage = await t.call("PUT", "sys/unseal", { key: "not-a-share" });
    expect(garbage.statusCode).toBe(400);

    // A well-formed but wrong share: detected when the threshold is reached; progress resets.
    const wrong = Buffer.from(keys[1]!, "hex");
    wrong[0]! ^= 0xff;
    expect((await t.call("PUT", "sys/unseal", { key: keys[2] })).json()).toMatchObject({ progress: 2 });
    const failed = await t.call("PUT", "sys/unseal", { key: wrong.toString("hex") });
    expect(failed.statusCode).toBe(400);
    expect((await t.call("GET", "sys/seal-status")).json()).toMatchObject({ sealed: true, progress: 0 });

    for (const k of [keys[4], keys[1], keys[3]]) await t.call("PUT", "sys/unseal", { key: k });
    expect((await t.call("GET", "sys/seal-status")).json()).toMatchObject({ sealed: false, progress: 0 });
    expect((await t.call("GET", "sys/health")).statusCode).toBe(200);
  });

  it("token tree: revoking a parent revokes its children; policies decide capabilities", async () => {
    const policy = `
      path "secret/data/+/config" { capabilities = ["read"] }
      path "secret/data/fleet/*" { capabilities = ["read", "list"] }
      path "secret/data/fleet/private" { capabilities = ["deny"] }
      path "auth/token/create" { capabilities = ["update"] }
    `;
    expect((await t.call("PUT", "sys/policies/acl/fleet-reader", { policy }, root)).statusCode).toBe(204);
    const parentRes = await t.call(
      "POST",
      "auth/token/create",
      { policies: ["fleet-reader"], meta: { note: PLANTED } },
      root,
    );
    expect(parentRes.statusCode).toBe(200);
    const parent = parentRes.json().auth.client_token as string;
    const childRes = await t.call("POST", "auth/token/create", { policies: ["fleet-reader"] }, parent);
    expect(childRes.statusCode).toBe(200);
    const child = childRes.json().auth.client_token as string;

    const caps = async (token: string, path: string) =>
      ((await t.call("POST", "sys/capabilities-self", { paths: [path] }, token)).json().data?.[path] ??
        []) as string[];
    expect(await caps(child, "secret/data/edge/config")).toEqual(["read"]);
    expect(await caps(child, "secret/data/a/b/config")).toEqual(["deny"]);
    expect((await caps(child, "secret/data/fleet/x")).sort()).toEqual(["list", "read"]);
    expect(await caps(child, "secret/data/fleet/private")).toEqual(["deny"]);

    // A capability the policy lacks: 403.
    const forbidden = await t.call(
      "PUT",
      "sys/policies/acl/sneaky",
      { policy: 'path "*" { capabilities = ["sudo"] }' },
      child,
    );
    expect(forbidden.statusCode).toBe(403);
    // One "permission denied", then what was missing (was: "permission denied: 1 error occurred: permission denied").
    expect(forbidden.json().errors[0]).toBe(
      "permission denied: no policy of this token grants create on sys/policies/acl/sneaky",
    );

    expect((await t.call("GET", "auth/token/lookup-self", undefined, child)).statusCode).toBe(200);
    expect((await t.call("POST", "auth/token/revoke", { token: parent }, root)).statusCode).toBe(204);
    expect((await t.call("GET", "auth/token/lookup-self", undefined, parent)).statusCode).toBe(403);
    expect((await t.call("GET", "auth/token/lookup-self", undefined, child)).statusCode).toBe(403);
  });

  it("expired and used-up tokens are refused", async () => {
    const limited = (
      await t.call("POST", "auth/token/create", { num_uses: 2, policies: ["default"] }, root)
    ).json().auth.client_token;
    expect((await t.call("GET", "auth/token/lookup-self", undefined, limited)).statusCode).toBe(200);
    expect((await t.call("GET", "auth/token/lookup-self", undefined, limited)).statusCode).toBe(200);
    expect((await t.call("GET", "auth/token/lookup-self", undefined, limited)).statusCode).toBe(403);

    const short = (await t.call("POST", "auth/token/create", { ttl: "60s" }, root)).json().auth.client_token;
    expect((await t.call("GET", "auth/token/lookup-self", undefined, short)).statusCode).toBe(200);
    t.clock.advance(61_000);
    expect((await t.call("GET", "auth/token/lookup-self", undefined, short)).statusCode).toBe(403);
  });

  it("bad requests: invalid JSON, a non-object body and an oversized body get clear errors", async () => {
    const invalid = await t.call("POST", "auth/token/create", "{not json", root);
    expect(invalid.statusCode).toBe(400);
    expect(invalid.json().code).toBe("FR_INVALID_JSON");
    const array = await t.call("POST", "auth/token/create", "[1,2]", root);
    expect(array.statusCode).toBe(400);
    const big = await t.call(
      "POST",
      "auth/token/create",
      JSON.stringify({ meta: { x: "a".repeat(2 * 1024 * 1024) } }),
      root,
    );
    expect(big.statusCode).toBe(413);
    expect(big.json().code).toBe("FR_BODY_TOO_LARGE");
    const nothing = await t.call("GET", "no/such/route", undefined, root);
    expect(nothing.statusCode).toBe(404);
  });

  it("sys/audit-hash matches the audit log's HMAC; secrets appear only as HMACs", async () => {
    const h = await t.call("PUT", "sys/audit-hash/file", { input: PLANTED }, root);
    expect(h.statusCode).toBe(200);
    const hash = h.json().hash as string;
    expect(hash).toMatch(/^hmac-sha256:[0-9a-f]{64}$/);
    const log = readFileSync(join(t.dataDir, "audit.log"), "utf8");
    expect(log).not.toContain(PLANTED);
    expect(log).not.toContain(root);
    expect(log).toContain(hash);
    for (const event of ["seal.init", "seal.unseal", "auth.denied"]) expect(log).toContain(`"${event}"`);
  });

  it("sealing drops access until unsealed again; the audit log verifies", async () => {
    expect((await t.call("PUT", "sys/seal", undefined, root)).statusCode).toBe(204);
    expect((await t.call("GET", "auth/token/lookup-self", undefined, root)).statusCode).toBe(503);
    expect((await t.call("GET", "sys/health")).statusCode).toBe(503);
    for (const k of keys.slice(0, 3)) await t.call("PUT", "sys/unseal", { key: k });
    expect((await t.call("GET", "auth/token/lookup-self", undefined, root)).statusCode).toBe(200);
    await t.server.core.audit.checkpoint();
    const result = await verifyAuditLog(join(t.dataDir, "audit.log"), {});
    expect(result.problem).toBeUndefined();
    expect(result.ok).toBe(true);
    expect(result.checkpoints).toBeGreaterThan(0);
  });

  it("the raw SQLite database holds no plaintext secret, token or key", async () => {
    if (db.dialect !== "sqlite") return;
    const file = db.url().replace(/^sqlite:/, "");
    let bytes = readFileSync(file);
    if (existsSync(file + "-wal")) bytes = Buffer.concat([bytes, readFileSync(file + "-wal")]);
    expect(bytes.includes(Buffer.from(PLANTED))).toBe(false);
    expect(bytes.includes(Buffer.from(root))).toBe(false);
    for (const k of keys) expect(bytes.includes(Buffer.from(k, "hex"))).toBe(false);
  });
});
