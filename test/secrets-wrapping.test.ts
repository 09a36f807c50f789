import { readFileSync } from "node:fs";
import { connect } from "node:net";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeEachStore } from "./helpers/stores.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { childToken, initAndUnseal, putPolicy } from "./secrets-helpers.js";

const PLANTED = "wrap-planted-33e8a0f1c6";
const INVALID = "wrapping token is not valid or does not exist";

describeEachStore("secrets: response wrapping", (db) => {
  let t: TestServer;
  let root = "";

  beforeAll(async () => {
    t = await startTestServer(db.url());
    ({ root } = await initAndUnseal(t));
  });
  afterAll(async () => {
    await t?.close();
  });

  const wrap = async (data: unknown, ttl = "60s") => {
    const r = await t.call("POST", "sys/wrapping/wrap", data, root, { "x-vault-wrap-ttl": ttl });
    expect(r.statusCode).toBe(200);
    expect(r.json().data).toBeNull();
    return r.json().wrap_info as { token: string; accessor: string; ttl: number; creation_path: string };
  };

  it("wraps, looks up without any auth, unwraps once; the second unwrap fails and is audited", async () => {
    const info = await wrap({ password: PLANTED });
    expect(info).toMatchObject({ ttl: 60, creation_path: "sys/wrapping/wrap" });
    expect(info.token).toMatch(/^frw\./);
    const look = await t.call("POST", "sys/wrapping/lookup", { token: info.token });
    expect(look.statusCode).toBe(200);
    expect(look.json().data).toMatchObject({ creation_path: "sys/wrapping/wrap", creation_ttl: 60 });
    // The wrapping token as X-Vault-Token, as node-vault and the vault CLI send it.
    const un = await t.call("POST", "sys/wrapping/unwrap", {}, info.token);
    expect(un.statusCode).toBe(200);
    expect(un.json().data).toEqual({ password: PLANTED });
    const again = await t.call("POST", "sys/wrapping/unwrap", { token: info.token }, root);
    expect(again.statusCode).toBe(400);
    expect(again.json().errors).toEqual([INVALID]);
    expect((await t.call("POST", "sys/wrapping/lookup", { token: info.token })).statusCode).toBe(400);
    const audit = readFileSync(t.server.core.paths.auditPath, "utf8");
    expect(audit).toContain("wrapping.unwrap_refused");
    expect(audit).not.toContain(PLANTED);
    expect(audit).not.toContain(info.token);
  });

  it("expires with its TTL (clock)", async () => {
    const info = await wrap({ a: "b" }, "90s");
    t.clock.advance(89_000);
    expect((await t.call("POST", "sys/wrapping/lookup", { token: info.token })).statusCode).toBe(200);
    t.clock.advance(2_000);
    expect((await t.call("POST", "sys/wrapping/lookup", { token: info.token })).statusCode).toBe(400);
    const un = await t.call("POST", "sys/wrapping/unwrap", { token: info.token });
    expect(un.statusCode).toBe(400);
    expect(un.json().errors).toEqual([INVALID]);
  });

  it("rewraps into a new token and spends the old one", async () => {
    const info = await wrap({ k: "v" }, "5m");
    const re = await t.call("POST", "sys/wrapping/rewrap", { token: info.token });
    expect(re.statusCode).toBe(200);
    const next = re.json().wrap_info as { token: string; ttl: number };
    expect(next.token).not.toBe(info.token);
    expect(next.ttl).toBe(300);
    expect((await t.call("POST", "sys/wrapping/unwrap", { token: info.token })).statusCode).toBe(400);
    expect((await t.call("POST", "sys/wrapping/unwrap", { token: next.token })).json().data).toEqual({
      k: "v",
    });
  });

  it("two concurrent unwraps: exactly one gets the response", async () => {
    const info = await wrap({ once: "only" });
    const rs = await Promise.all(
      [1, 2, 3].map(() => t.call("POST", "sys/wrapping/unwrap", { token: info.token })),
    );
    expect(rs.map((r) => r.statusCode).sort()).toEqual([200, 400, 400]);
  });

  it("wraps KV reads and token creation; refuses bad wrap requests and bad caller tokens", async () => {
    await t.call("POST", "secret/data/w/app", { data: { pw: "x1" } }, root);
    const r = await t.call("GET", "secret/data/w/app", undefined, root, { "x-vault-wrap-ttl": "2m" });
    const wi = r.json().wrap_info as { token: string; creation_path: string };
    expect(wi.creation_path).toBe("secret/data/w/app");
    expect((await t.call("POST", "sys/wrapping/unwrap", { token: wi.token })).json().data.data).toEqual({
      pw: "x1",
    });

    await putPolicy(t, root, "w-read", 'path "secret/data/w/*" { capabilities = ["read"] }');
    const tr = await t.call("POST", "auth/token/create", { policies: ["w-read"] }, root, {
      "x-vault-wrap-ttl": "1m",
    });
    const twi = tr.json().wrap_info as { token: string; wrapped_accessor: string };
    expect(tr.json().auth).toBeNull();
    expect(twi.wrapped_accessor).toBeTruthy();
    const inner = (await t.call("POST", "sys/wrapping/unwrap", {}, twi.token)).json();
    expect(inner.auth.accessor).toBe(twi.wrapped_accessor);
    expect((await t.call("GET", "secret/data/w/app", undefined, inner.auth.client_token)).statusCode).toBe(
      200,
    );

    expect((await t.call("POST", "sys/wrapping/wrap", { a: 1 }, root)).statusCode).toBe(400);
    expect(
      (await t.call("POST", "sys/wrapping/wrap", { a: 1 }, root, { "x-vault-wrap-ttl": "0" })).statusCode,
    ).toBe(400);
    // Regression: a body nested thousands of levels deep was a 500 (stack overflow) instead of a 400.
    const deep = '{"a":'.repeat(5000) + "1" + "}".repeat(5000);
    const refused = await t.call("POST", "sys/wrapping/wrap", deep, root, { "x-vault-wrap-ttl": "1m" });
    expect(refused.statusCode).toBe(400);
    expect(refused.json().wrap_info).toBeUndefined();
    expect((await t.call("POST", "sys/wrapping/unwrap", { token: "frw.nope" })).statusCode).toBe(400);
    expect((await t.call("POST", "sys/wrapping/unwrap", { token: 7 })).statusCode).toBe(400);
    const info = await wrap({ z: 1 });
    const bad = await t.call("POST", "sys/wrapping/unwrap", { token: info.token }, "frs.not-a-token");
    expect(bad.statusCode).toBe(403);
    // The refused caller did not spend the wrapping token.
    expect((await t.call("POST", "sys/wrapping/unwrap", { token: info.token })).statusCode).toBe(200);
    const nobody = await childToken(t, root, ["w-read"]);
    expect(
      (await t.call("POST", "sys/wrapping/wrap", { a: 1 }, nobody, { "x-vault-wrap-ttl": "1m" })).statusCode,
    ).toBe(200);
  });

  it("refuses .. and empty segments sent raw over a socket, storing nothing", async () => {
    const url = new URL(await t.server.listen());
    const send = (path: string) =>
      new Promise<string>((resolve, reject) => {
        const body = JSON.stringify({ data: { a: "b" } });
        const s = connect(Number(url.port), url.hostname, () => {
          s.write(
            `POST ${path} HTTP/1.1\r\nHost: x\r\nX-Vault-Token: ${root}\r\nContent-Type: application/json\r\n` +
              `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
          );
        });
        let out = "";
        s.on("data", (d: Buffer) => (out += d.toString()));
        s.on("end", () => resolve(out));
        s.on("error", reject);
        s.setTimeout(5000, () => s.destroy(new Error("timeout")));
      });
    for (const p of [
      "/v1/secret/data/a/../b",
      "/v1/secret/data/a//b",
      "/v1/secret/data/./b",
      "/v1/secret/data/a/%2e%2e/b",
    ]) {
      const res = await send(p);
      expect(res.split("\r\n")[0], p).toBe("HTTP/1.1 400 Bad Request");
      expect(res).toContain("FR_VALIDATION");
    }
    expect((await t.call("GET", "secret/metadata/a?list=true", undefined, root)).statusCode).toBe(404);
    expect((await t.call("GET", "secret/data/b", undefined, root)).statusCode).toBe(404);
  });
});
