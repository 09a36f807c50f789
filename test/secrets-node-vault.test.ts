import { readFileSync } from "node:fs";
import vault from "node-vault";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeEachStore } from "./helpers/stores.js";
import { startTestServer, type TestServer } from "./helpers/server.js";

const PLANTED = "nv-planted-0c1f9a77e2";

describeEachStore("secrets: npm node-vault against a running server", (db) => {
  let t: TestServer;
  let url = "";

  beforeAll(async () => {
    t = await startTestServer(db.url());
    url = await t.server.listen();
  });
  afterAll(async () => {
    await t?.close();
  });

  it("init, unseal, write/read, policy, token, forbidden read, wrapped read and unwrap", async () => {
    const v = vault({ apiVersion: "v1", endpoint: url });
    expect((await v.initialized()).initialized).toBe(false);
    const init = await v.init({ secret_shares: 1, secret_threshold: 1 });
    expect(init.keys).toHaveLength(1);
    v.token = init.root_token;
    const st = await v.unseal({ secret_shares: 1, key: init.keys[0] });
    expect(st.sealed).toBe(false);
    expect((await v.status()).sealed).toBe(false);

    const w = await v.write("secret/data/robots/r1", { data: { api_key: PLANTED } });
    expect(w.data.version).toBe(1);
    const r = await v.read("secret/data/robots/r1");
    expect(r.data.data).toEqual({ api_key: PLANTED });
    expect((await v.list("secret/metadata/robots")).data.keys).toEqual(["r1"]);

    await v.addPolicy({
      name: "robots-r1",
      rules: 'path "secret/data/robots/r1" { capabilities = ["read"] }',
    });
    expect((await v.policies()).policies).toContain("robots-r1");
    const tok = await v.tokenCreate({ policies: ["robots-r1"], ttl: "10m" });
    // node-vault switches to the token it just created (tokenSource); go back to the root token.
    expect(v.token).toBe(tok.auth.client_token);
    v.token = init.root_token;
    const robot = vault({ apiVersion: "v1", endpoint: url, token: tok.auth.client_token });
    expect((await robot.read("secret/data/robots/r1")).data.data.api_key).toBe(PLANTED);
    await expect(robot.read("secret/data/robots/r2")).rejects.toMatchObject({
      response: { statusCode: 403 },
    });

    const wrapped = await v.read("secret/data/robots/r1", { headers: { "X-Vault-Wrap-TTL": "5m" } });
    expect(wrapped.wrap_info.ttl).toBe(300);
    // node-vault's typings omit unwrap (sys/wrapping/unwrap with the client's token), which it has.
    const holder = vault({ apiVersion: "v1", endpoint: url, token: wrapped.wrap_info.token }) as ReturnType<
      typeof vault
    > & { unwrap(): Promise<{ data: { data: unknown } }> };
    const un = await holder.unwrap();
    expect(un.data.data).toEqual({ api_key: PLANTED });
    await expect(holder.unwrap()).rejects.toMatchObject({ response: { statusCode: 400 } });

    await v.tokenRevoke({ token: tok.auth.client_token });
    await expect(robot.read("secret/data/robots/r1")).rejects.toMatchObject({
      response: { statusCode: 403 },
    });
    expect(readFileSync(t.server.core.paths.auditPath, "utf8")).not.toContain(PLANTED);
  });
});
