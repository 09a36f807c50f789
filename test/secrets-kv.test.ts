import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeEachStore } from "./helpers/stores.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { childToken, initAndUnseal, putPolicy } from "./secrets-helpers.js";

const PLANTED = "kv-planted-9d1c44e0ab";
const HOUR = 3_600_000;

describeEachStore("secrets: KV v2 and v1 over the Vault API", (db) => {
  let t: TestServer;
  let root = "";
  let key = "";

  beforeAll(async () => {
    t = await startTestServer(db.url());
    ({ root, key } = await initAndUnseal(t));
  });
  afterAll(async () => {
    await t?.close();
  });

  it("mounts secret/ as KV v2 after init and tells CLIs its version", async () => {
    const list = (await t.call("GET", "sys/mounts", undefined, root)).json();
    expect(list["secret/"]).toMatchObject({ type: "kv", options: { version: "2" } });
    expect((list.data as Record<string, unknown>)["secret/"]).toMatchObject({ type: "kv" });
    const ui = (await t.call("GET", "sys/internal/ui/mounts/secret/app/db", undefined, root)).json();
    expect(ui.data).toMatchObject({ type: "kv", path: "secret/", options: { version: "2" } });
    expect((await t.call("GET", "sys/internal/ui/mounts/secret/x")).statusCode).toBe(403);
    // Built-in paths cannot be unmounted (Vault: 400); a 204 that did nothing would read as success.
    for (const p of ["sys", "auth/", "pki"]) {
      const r = await t.call("DELETE", `sys/mounts/${p}`, undefined, root);
      expect([r.statusCode, r.json().errors[0]]).toEqual([400, expect.stringMatching(/cannot unmount/)]);
    }
  });

  it("writes versions, reads ?version=, enforces check-and-set with Vault's message", async () => {
    const w1 = await t.call("POST", "secret/data/app/db", { data: { password: PLANTED, user: "app" } }, root);
    expect(w1.statusCode).toBe(200);
    expect(w1.json().data).toMatchObject({ version: 1, destroyed: false, deletion_time: "" });
    const w2 = await t.call(
      "PUT",
      "secret/data/app/db",
      { data: { password: "v2" }, options: { cas: 1 } },
      root,
    );
    expect(w2.json().data.version).toBe(2);
    const bad = await t.call(
      "POST",
      "secret/data/app/db",
      { data: { password: "x" }, options: { cas: 1 } },
      root,
    );
    expect(bad.statusCode).toBe(400);
    expect(bad.json().errors).toEqual(["check-and-set parameter did not match the current version"]);
    const missingCas = await t.call(
      "POST",
      "secret/data/new/key",
      { data: { a: "b" }, options: { cas: 3 } },
      root,
    );
    expect(missingCas.statusCode).toBe(400);
    expect((await t.call("GET", "secret/data/new/key", undefined, root)).statusCode).toBe(404);

    const cur = (await t.call("GET", "secret/data/app/db", undefined, root)).json();
    expect(cur.data).toMatchObject({ data: { password: "v2" }, metadata: { version: 2 } });
    const v1 = (await t.call("GET", "secret/data/app/db?version=1", undefined, root)).json();
    expect(v1.data.data).toEqual({ password: PLANTED, user: "app" });
    expect((await t.call("GET", "secret/data/app/db?version=9", undefined, root)).statusCode).toBe(404);
  });

  it("patches with merge-patch+json only", async () => {
    const wrongType = await t.call("PATCH", "secret/data/app/db", { data: { user: "ops" } }, root);
    expect(wrongType.statusCode).toBe(415);
    const p = await t.call("PATCH", "secret/data/app/db", { data: { user: "ops", password: null } }, root, {
      "content-type": "application/merge-patch+json",
    });
    expect(p.statusCode).toBe(200);
    expect(p.json().data.version).toBe(3);
    expect((await t.call("GET", "secret/data/app/db", undefined, root)).json().data.data).toEqual({
      user: "ops",
    });
    const none = await t.call("PATCH", "secret/data/nope", { data: { a: 1 } }, root, {
      "content-type": "application/merge-patch+json",
    });
    expect(none.statusCode).toBe(404);
  });

  it("soft-deletes, answers 404 with the version's metadata, undeletes and destroys", async () => {
    expect((await t.call("DELETE", "secret/data/app/db", undefined, root)).statusCode).toBe(204);
    const gone = await t.call("GET", "secret/data/app/db", undefined, root);
    expect(gone.statusCode).toBe(404);
    expect(gone.json().data).toMatchObject({ data: null, metadata: { version: 3, destroyed: false } });
    expect(gone.json().data.metadata.deletion_time).not.toBe("");
    expect((await t.call("POST", "secret/undelete/app/db", { versions: [3] }, root)).statusCode).toBe(204);
    expect((await t.call("GET", "secret/data/app/db", undefined, root)).statusCode).toBe(200);
    expect((await t.call("POST", "secret/delete/app/db", { versions: [1, 2] }, root)).statusCode).toBe(204);
    expect((await t.call("GET", "secret/data/app/db?version=1", undefined, root)).statusCode).toBe(404);
    expect((await t.call("PUT", "secret/destroy/app/db", { versions: [1] }, root)).statusCode).toBe(204);
    const destroyed = await t.call("GET", "secret/data/app/db?version=1", undefined, root);
    expect(destroyed.json().data.metadata).toMatchObject({ destroyed: true, version: 1 });
    // A destroyed version cannot come back.
    await t.call("POST", "secret/undelete/app/db", { versions: [1] }, root);
    expect((await t.call("GET", "secret/data/app/db?version=1", undefined, root)).statusCode).toBe(404);
    const noVersions = await t.call("POST", "secret/delete/app/db", {}, root);
    expect(noVersions.statusCode).toBe(400);
  });

  it("reads, lists, updates, patches and deletes metadata; subkeys", async () => {
    const md = (await t.call("GET", "secret/metadata/app/db", undefined, root)).json().data;
    expect(md).toMatchObject({ current_version: 3, oldest_version: 0, max_versions: 0, cas_required: false });
    expect(Object.keys(md.versions)).toEqual(["1", "2", "3"]);
    expect(md.versions["1"].destroyed).toBe(true);
    await t.call("POST", "secret/data/app/cache", { data: { url: "redis://x" } }, root);
    await t.call("POST", "secret/data/top", { data: { a: 1 } }, root);
    expect((await t.call("GET", "secret/metadata/?list=true", undefined, root)).json().data.keys).toEqual([
      "app/",
      "top",
    ]);
    expect((await t.call("GET", "secret/metadata/app?list=true", undefined, root)).json().data.keys).toEqual([
      "cache",
      "db",
    ]);
    expect((await t.call("GET", "secret/metadata/none/?list=true", undefined, root)).statusCode).toBe(404);

    const upd = await t.call(
      "POST",
      "secret/metadata/app/db",
      { max_versions: 2, cas_required: true, custom_metadata: { owner: "ops", team: "edge" } },
      root,
    );
    expect(upd.statusCode).toBe(204);
    const casReq = await t.call("POST", "secret/data/app/db", { data: { a: "b" } }, root);
    expect(casReq.statusCode).toBe(400);
    expect(casReq.json().errors).toEqual(["check-and-set parameter required for this call"]);
    const w = await t.call("POST", "secret/data/app/db", { data: { a: "b" }, options: { cas: 3 } }, root);
    expect(w.json().data).toMatchObject({ version: 4, custom_metadata: { owner: "ops", team: "edge" } });
    const pruned = (await t.call("GET", "secret/metadata/app/db", undefined, root)).json().data;
    expect(Object.keys(pruned.versions)).toEqual(["3", "4"]);
    expect(pruned.oldest_version).toBe(3);
    const patch = await t.call("PATCH", "secret/metadata/app/db", { custom_metadata: { team: null } }, root, {
      "content-type": "application/merge-patch+json",
    });
    expect(patch.statusCode).toBe(204);
    const after = (await t.call("GET", "secret/metadata/app/db", undefined, root)).json().data;
    expect(after).toMatchObject({ custom_metadata: { owner: "ops" }, max_versions: 2, cas_required: true });

    await t.call("POST", "secret/data/nested", { data: { a: { b: { c: 1 } }, d: "x" } }, root);
    const sk = (await t.call("GET", "secret/subkeys/nested", undefined, root)).json().data;
    expect(sk.subkeys).toEqual({ a: { b: { c: null } }, d: null });
    expect(
      (await t.call("GET", "secret/subkeys/nested?depth=1", undefined, root)).json().data.subkeys,
    ).toEqual({
      a: null,
      d: null,
    });

    expect((await t.call("DELETE", "secret/metadata/app/db", undefined, root)).statusCode).toBe(204);
    expect((await t.call("GET", "secret/metadata/app/db", undefined, root)).statusCode).toBe(404);
    expect((await t.call("GET", "secret/data/app/db?version=4", undefined, root)).statusCode).toBe(404);
  });

  it("mount config: max_versions, cas_required and delete_version_after (clock)", async () => {
    await t.call("POST", "sys/mounts/kv2b", { type: "kv", options: { version: "2" } }, root);
    expect(
      (await t.call("POST", "kv2b/config", { max_versions: 5, delete_version_after: "1h" }, root)).statusCode,
    ).toBe(204);
    expect((await t.call("GET", "kv2b/config", undefined, root)).json().data).toEqual({
      cas_required: false,
      delete_version_after: "1h0m0s",
      max_versions: 5,
    });
    await t.call("POST", "kv2b/data/temp", { data: { v: "1" } }, root);
    expect((await t.call("GET", "kv2b/data/temp", undefined, root)).statusCode).toBe(200);
    t.clock.advance(HOUR + 1000);
    expect((await t.call("GET", "kv2b/data/temp", undefined, root)).statusCode).toBe(404);
  });

  it("refuses bad input with Vault's status codes and stores nothing", async () => {
    const cases: Array<[string, string, unknown, number]> = [
      ["POST", "secret/data/bad", "{not json", 400],
      ["POST", "secret/data/bad", { data: "string" }, 400],
      ["POST", "secret/data/bad", { data: { a: 1 }, options: { cas: "x" } }, 400],
      ["POST", "secret/data/bad", { nodata: 1 }, 400],
      ["POST", "secret/data/a//bad", { data: { a: 1 } }, 400],
      ["POST", "secret/data/bad", { data: { big: "x".repeat(600 * 1024) } }, 413],
      ["POST", "secret/metadata/bad", { max_versions: -1 }, 400],
      ["POST", "secret/metadata/bad", { custom_metadata: { a: 1 } }, 400],
      ["GET", "secret/data/bad?version=abc", undefined, 400],
      ["POST", "nomount/data/x", { data: { a: 1 } }, 404],
    ];
    for (const [method, path, body, status] of cases) {
      const r = await t.call(method, path, body, root);
      expect({ path, status: r.statusCode }).toEqual({ path, status });
      expect(r.json().errors?.[0]).toBeTruthy();
    }
    expect(
      (await t.call("GET", "secret/metadata/?list=true", undefined, root)).json().data.keys,
    ).not.toContain("bad");
    expect((await t.call("GET", "secret/metadata/a", undefined, root)).statusCode).toBe(404);
  });

  it("regression: data nested thousands of levels deep is 400, not a 500 stack overflow", async () => {
    const nest = (levels: number) => '{"a":'.repeat(levels) + "1" + "}".repeat(levels);
    const deep = `{"data":${nest(5000)}}`;
    const refused = await t.call("POST", "secret/data/deep/key", deep, root);
    expect(refused.statusCode).toBe(400);
    expect(refused.json().code).toBe("FR_VALIDATION");
    expect((await t.call("GET", "secret/data/deep/key", undefined, root)).statusCode).toBe(404);
    expect((await t.call("POST", "secret/data/deep/key", `{"data":${nest(50)}}`, root)).statusCode).toBe(200);
    const patch = await t.call("PATCH", "secret/data/deep/key", deep, root, {
      "content-type": "application/merge-patch+json",
    });
    expect(patch.statusCode).toBe(400);
    expect(
      (await t.call("GET", "secret/metadata/deep/key", undefined, root)).json().data.current_version,
    ).toBe(1);
    await t.call("POST", "sys/mounts/deep-v1", { type: "kv" }, root);
    expect((await t.call("POST", "deep-v1/key", nest(5000), root)).statusCode).toBe(400);
    expect((await t.call("GET", "deep-v1/key", undefined, root)).statusCode).toBe(404);
  });

  it("regression: a mount's default lease above its max lease is refused on enable and tune", async () => {
    const config = { default_lease_ttl: "2h", max_lease_ttl: "1h" };
    expect((await t.call("POST", "sys/mounts/leases", { type: "kv", config }, root)).statusCode).toBe(400);
    expect((await t.call("GET", "sys/mounts/leases", undefined, root)).statusCode).toBe(404);
    const ok = { type: "kv", config: { default_lease_ttl: "30m", max_lease_ttl: "1h" } };
    expect((await t.call("POST", "sys/mounts/leases", ok, root)).statusCode).toBe(204);
    expect(
      (await t.call("POST", "sys/mounts/leases/tune", { default_lease_ttl: "2h" }, root)).statusCode,
    ).toBe(400);
    expect((await t.call("POST", "sys/mounts/leases/tune", { max_lease_ttl: "10m" }, root)).statusCode).toBe(
      400,
    );
    expect((await t.call("GET", "sys/mounts/leases/tune", undefined, root)).json().data).toMatchObject({
      default_lease_ttl: 1800,
      max_lease_ttl: 3600,
    });
    expect((await t.call("POST", "sys/mounts/leases/tune", config, root)).statusCode).toBe(400);
    expect(
      (await t.call("POST", "sys/mounts/leases/tune", { default_lease_ttl: "3h", max_lease_ttl: "4h" }, root))
        .statusCode,
    ).toBe(204);
  });

  it("KV v1 mounts: GET/POST/LIST/DELETE; tune; disable removes the data", async () => {
    expect(
      (await t.call("POST", "sys/mounts/legacy", { type: "kv", options: { version: "1" } }, root)).statusCode,
    ).toBe(204);
    const dup = await t.call("POST", "sys/mounts/legacy/sub", { type: "kv" }, root);
    expect(dup.statusCode).toBe(400);
    expect((await t.call("POST", "sys/mounts/sys2", { type: "pki" }, root)).statusCode).toBe(400);
    expect((await t.call("POST", "sys/mounts/auth", { type: "kv" }, root)).statusCode).toBe(400);
    expect(
      (await t.call("POST", "legacy/app/conf", { url: "mqtt://broker", token: PLANTED }, root)).statusCode,
    ).toBe(204);
    const r = (await t.call("GET", "legacy/app/conf", undefined, root)).json();
    expect(r.data).toEqual({ url: "mqtt://broker", token: PLANTED });
    expect((await t.call("GET", "legacy/?list=true", undefined, root)).json().data.keys).toEqual(["app/"]);
    expect(
      (await t.call("GET", "sys/internal/ui/mounts/legacy/app", undefined, root)).json().data.options,
    ).toEqual({
      version: "1",
    });
    expect(
      (await t.call("POST", "sys/mounts/legacy/tune", { description: "old", default_lease_ttl: "1h" }, root))
        .statusCode,
    ).toBe(204);
    expect((await t.call("GET", "sys/mounts/legacy/tune", undefined, root)).json().data).toMatchObject({
      description: "old",
      default_lease_ttl: 3600,
    });
    expect(
      (await t.call("POST", "sys/mounts/legacy/tune", { options: { version: "2" } }, root)).statusCode,
    ).toBe(400);
    expect((await t.call("DELETE", "legacy/app/conf", undefined, root)).statusCode).toBe(204);
    expect((await t.call("GET", "legacy/app/conf", undefined, root)).statusCode).toBe(404);
    await t.call("POST", "legacy/again", { a: "b" }, root);
    expect((await t.call("DELETE", "sys/mounts/legacy", undefined, root)).statusCode).toBe(204);
    expect((await t.call("GET", "legacy/again", undefined, root)).statusCode).toBe(404);
    // Re-enabling the same path starts empty: values were bound to the old mount's id and deleted.
    await t.call("POST", "sys/mounts/legacy", { type: "kv" }, root);
    expect((await t.call("GET", "legacy/again", undefined, root)).statusCode).toBe(404);
  });

  it("enforces ACL policies on KV paths", async () => {
    await putPolicy(t, root, "app-ro", 'path "secret/data/app/*" { capabilities = ["read"] }');
    const tok = await childToken(t, root, ["app-ro"]);
    await t.call("POST", "secret/data/app/cache", { data: { url: "y" } }, root);
    expect((await t.call("GET", "secret/data/app/cache", undefined, tok)).statusCode).toBe(200);
    expect((await t.call("GET", "secret/data/top", undefined, tok)).statusCode).toBe(403);
    expect((await t.call("POST", "secret/data/app/cache", { data: { a: 1 } }, tok)).statusCode).toBe(403);
  });

  it("asks `create` for a new key and `update` for an existing one, as Vault does", async () => {
    await putPolicy(t, root, "kv-create", 'path "secret/data/cu/*" { capabilities = ["create"] }');
    await putPolicy(t, root, "kv-update", 'path "secret/data/cu/*" { capabilities = ["update"] }');
    const creator = await childToken(t, root, ["kv-create"]);
    const updater = await childToken(t, root, ["kv-update"]);
    expect((await t.call("POST", "secret/data/cu/new", { data: { a: "1" } }, updater)).statusCode).toBe(403);
    expect((await t.call("POST", "secret/data/cu/new", { data: { a: "1" } }, creator)).statusCode).toBe(200);
    expect((await t.call("POST", "secret/data/cu/new", { data: { a: "2" } }, creator)).statusCode).toBe(403);
    expect((await t.call("POST", "secret/data/cu/new", { data: { a: "2" } }, updater)).statusCode).toBe(200);
    // Holding both, a token writes new and existing keys alike (no lookup needed to tell them apart).
    await putPolicy(t, root, "kv-both", 'path "secret/data/cu/*" { capabilities = ["create", "update"] }');
    const both = await childToken(t, root, ["kv-both"]);
    expect((await t.call("POST", "secret/data/cu/fresh", { data: { a: "1" } }, both)).statusCode).toBe(200);
    expect((await t.call("POST", "secret/data/cu/fresh", { data: { a: "2" } }, both)).statusCode).toBe(200);
    expect((await t.call("POST", "secret/data/cu/new", { data: { a: "3" } }, both)).statusCode).toBe(200);
    expect((await t.call("GET", "secret/data/cu/fresh", undefined, both)).statusCode).toBe(403);
  });

  it("asks `create` for metadata of a new key and `update` for an existing one, as Vault does", async () => {
    await putPolicy(t, root, "meta-create", 'path "secret/metadata/mcu/*" { capabilities = ["create"] }');
    await putPolicy(t, root, "meta-update", 'path "secret/metadata/mcu/*" { capabilities = ["update"] }');
    const creator = await childToken(t, root, ["meta-create"]);
    const updater = await childToken(t, root, ["meta-update"]);
    const body = { max_versions: 3 };
    expect((await t.call("POST", "secret/metadata/mcu/k", body, updater)).statusCode).toBe(403);
    expect((await t.call("GET", "secret/metadata/mcu/k", undefined, root)).statusCode).toBe(404);
    expect((await t.call("POST", "secret/metadata/mcu/k", body, creator)).statusCode).toBe(204);
    expect((await t.call("POST", "secret/metadata/mcu/k", body, creator)).statusCode).toBe(403);
    expect((await t.call("POST", "secret/metadata/mcu/k", { max_versions: 4 }, updater)).statusCode).toBe(
      204,
    );
    expect((await t.call("GET", "secret/metadata/mcu/k", undefined, root)).json().data.max_versions).toBe(4);
  });

  it("keeps secret/ disabled once disabled, survives restart; planted values never reach disk or the audit log", async () => {
    await t.restart();
    await t.call("PUT", "sys/unseal", { key });
    expect((await t.call("GET", "secret/data/app/cache", undefined, root)).json().data.data).toEqual({
      url: "y",
    });
    const audit = readFileSync(t.server.core.paths.auditPath, "utf8");
    expect(audit).toContain("secret/data/app/db");
    expect(audit).not.toContain(PLANTED);
    if (db.dialect === "sqlite") {
      const file = db.url().slice("sqlite:".length);
      for (const f of [file, file + "-wal"]) {
        try {
          expect(readFileSync(f).includes(PLANTED)).toBe(false);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
        }
      }
    }
    expect((await t.call("DELETE", "sys/mounts/secret", undefined, root)).statusCode).toBe(204);
    await t.restart();
    await t.call("PUT", "sys/unseal", { key });
    expect((await t.call("GET", "sys/mounts", undefined, root)).json()["secret/"]).toBeUndefined();
    void join;
  });
});
