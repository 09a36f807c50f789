import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cli } from "./helpers/cli.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { initAndUnseal } from "./secrets-helpers.js";

const PLANTED = "cli-planted-6a2d90be41";

/**
 * The CLI talks HTTP only, so one store (SQLite) is enough here; the KV and token logic it drives is
 * run on both stores by the other secrets tests.
 */
describe("secrets CLI: kv commands and service bootstrap against a running server", () => {
  let t: TestServer;
  let root = "";
  let addr = "";
  const out = mkdtempSync(join(tmpdir(), "fr-bootstrap-"));
  const env = () => ({ FLEETROOT_ADDR: addr, FLEETROOT_TOKEN: root });
  const tokenIn = (svc: string) =>
    JSON.parse(readFileSync(join(out, svc, "secrets-token.json"), "utf8")) as {
      auth?: { client_token: string; accessor: string; renewable: boolean };
      wrap_info?: { token: string };
    };

  beforeAll(async () => {
    t = await startTestServer(`sqlite:${join(mkdtempSync(join(tmpdir(), "fr-kvcli-")), "db.sqlite")}`);
    ({ root } = await initAndUnseal(t));
    addr = await t.server.listen();
  });
  afterAll(async () => {
    await t?.close();
    rmSync(out, { recursive: true, force: true });
  });

  it("kv put/get/patch/list/delete/undelete/destroy/metadata with Vault-like flags", async () => {
    // Each CLI run starts a process from source (about 2 s here): one call per command, no more.
    const put = await cli(["kv", "put", "secret/app/db", `password=${PLANTED}`, "user=app"], env());
    expect(put.code, put.stderr).toBe(0);
    expect(put.stdout).toMatch(/version\s+1/);
    const conflict = await cli(["kv", "put", "--cas", "0", "secret/app/db", "password=three"], env());
    expect(conflict.code).toBe(1);
    expect(conflict.stderr).toContain("check-and-set parameter did not match the current version");
    const patch = await cli(["kv", "patch", "--mount", "secret", "--cas", "1", "app/db", "user=ops"], env());
    expect(patch.code, patch.stderr).toBe(0);
    const got = JSON.parse((await cli(["kv", "get", "--format", "json", "secret/app/db"], env())).stdout);
    expect(got.data.data).toEqual({ password: PLANTED, user: "ops" });
    expect(got.data.metadata.version).toBe(2);
    expect((await cli(["kv", "list", "secret/app"], env())).stdout.trim()).toBe("db");
    expect((await cli(["kv", "delete", "secret/app/db"], env())).code).toBe(0);
    const deleted = await cli(["kv", "get", "secret/app/db"], env());
    expect(deleted.code).toBe(1);
    expect(deleted.stderr).toContain("version 2 of secret/app/db is deleted");
    expect((await cli(["kv", "undelete", "--versions", "2", "secret/app/db"], env())).code).toBe(0);
    expect((await cli(["kv", "destroy", "--versions", "1", "secret/app/db"], env())).code).toBe(0);
    const v1 = await t.call("GET", "secret/data/app/db?version=1", undefined, root);
    expect(v1.json().data.metadata.destroyed).toBe(true);
    expect((await t.call("GET", "secret/data/app/db", undefined, root)).json().data.data.user).toBe("ops");
    const mdPut = await cli(
      ["kv", "metadata", "put", "--max-versions", "4", "--custom-metadata", "owner=ops", "secret/app/db"],
      env(),
    );
    expect(mdPut.code, mdPut.stderr).toBe(0);
    const md = JSON.parse(
      (await cli(["--format", "json", "kv", "metadata", "get", "secret/app/db"], env())).stdout,
    );
    expect(md.data).toMatchObject({ max_versions: 4, custom_metadata: { owner: "ops" }, current_version: 2 });
    expect(readFileSync(t.server.core.paths.auditPath, "utf8")).not.toContain(PLANTED);
  });

  it("bootstrap: per-service tokens that work only on their own path; re-running is safe", async () => {
    const r = await cli(
      ["secrets", "bootstrap", "--services", "core-data,core-command", "--out", out],
      env(),
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("core-data\tcreated");
    for (const svc of ["core-data", "core-command"]) {
      expect(statSync(join(out, svc, "secrets-token.json")).mode & 0o777).toBe(0o600);
    }
    const data = tokenIn("core-data").auth!;
    expect(data.renewable).toBe(true);
    const look = (await t.call("GET", "auth/token/lookup-self", undefined, data.client_token)).json().data;
    expect(look).toMatchObject({ period: 3600, policies: ["default", "service-core-data"], orphan: true });
    expect(
      (await t.call("POST", "secret/data/core-data/db", { data: { pw: "x" } }, data.client_token)).statusCode,
    ).toBe(200);
    expect((await t.call("GET", "secret/data/core-data/db", undefined, data.client_token)).statusCode).toBe(
      200,
    );
    expect(
      (await t.call("GET", "secret/data/core-command/db", undefined, data.client_token)).statusCode,
    ).toBe(403);
    expect(
      (await t.call("POST", "secret/data/other", { data: { a: 1 } }, data.client_token)).statusCode,
    ).toBe(403);
    expect((await t.call("POST", "auth/token/renew-self", {}, data.client_token)).statusCode).toBe(200);

    const again = await cli(
      ["secrets", "bootstrap", "--services", "core-data,core-command", "--out", out],
      env(),
    );
    expect(again.stdout).toContain("core-data\tkept");
    expect(tokenIn("core-data").auth!.client_token).toBe(data.client_token);
    expect((await t.call("GET", "secret/data/core-data/db", undefined, data.client_token)).statusCode).toBe(
      200,
    );
  });

  it("bootstrap: a removed service's token is revoked; --rotate with --wrap-ttl writes single-use wrapped tokens", async () => {
    const oldData = tokenIn("core-data").auth!.client_token;
    const oldCommand = tokenIn("core-command").auth!.client_token;
    const r = await cli(
      ["secrets", "bootstrap", "--services", "core-data", "--out", out, "--rotate", "--wrap-ttl", "5m"],
      env(),
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("core-command\trevoked");
    expect(r.stdout).toContain("core-data\trotated");
    expect((await t.call("GET", "auth/token/lookup-self", undefined, oldCommand)).statusCode).toBe(403);
    expect((await t.call("GET", "auth/token/lookup-self", undefined, oldData)).statusCode).toBe(403);
    expect(existsSync(join(out, "core-command"))).toBe(false);
    expect((await t.call("GET", "sys/policies/acl/service-core-command", undefined, root)).statusCode).toBe(
      404,
    );
    const wrapped = tokenIn("core-data");
    expect(wrapped.auth).toBeNull();
    const un = await t.call("POST", "sys/wrapping/unwrap", {}, wrapped.wrap_info!.token);
    const tok = un.json().auth.client_token as string;
    expect((await t.call("GET", "secret/data/core-data/db", undefined, tok)).statusCode).toBe(200);
    expect((await t.call("POST", "sys/wrapping/unwrap", {}, wrapped.wrap_info!.token)).statusCode).toBe(400);
    const audit = readFileSync(t.server.core.paths.auditPath, "utf8");
    expect(audit).toContain("auth/token/revoke-accessor");
    expect(audit).not.toContain(tok);
  });

  it("bootstrap with an empty --services (an unset variable) is a usage error that revokes nothing", async () => {
    const r = await cli(["secrets", "bootstrap", "--services", " , ", "--out", out], env());
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--services names no service");
    expect((await t.call("GET", "sys/policies/acl/service-core-data", undefined, root)).statusCode).toBe(200);
    expect(existsSync(join(out, "core-data", "secrets-token.json"))).toBe(true);
  });

  it("kv: a flag value that is not understood is a usage error, never a silent default", async () => {
    const cas = await cli(["kv", "metadata", "put", "--cas-required", "yes", "secret/app/db"], env());
    expect(cas.code).toBe(2);
    expect(cas.stderr).toContain("--cas-required must be true or false");
    const list = await cli(["kv", "list"], env());
    expect(list.code).toBe(2);
    expect(list.stderr).toContain("name the folder to list");
  });

  it("kv metadata and --versions on a KV v1 path are refused and leave the secret as it was", async () => {
    expect((await t.call("POST", "sys/mounts/kv1", { type: "kv" }, root)).statusCode).toBe(204);
    expect((await t.call("POST", "kv1/app", { user: "app" }, root)).statusCode).toBe(204);
    const md = await cli(["kv", "metadata", "put", "--max-versions", "3", "kv1/app"], env());
    expect(md.code).toBe(2);
    expect(md.stderr).toContain("kv metadata needs a KV v2 mount; kv1/ is KV v1");
    const del = await cli(["kv", "delete", "--versions", "1", "kv1/app"], env());
    expect(del.code).toBe(2);
    expect((await t.call("GET", "kv1/app", undefined, root)).json().data).toEqual({ user: "app" });
  });

  it("bootstrap refuses bad service names", async () => {
    const r = await cli(["secrets", "bootstrap", "--services", "../etc", "--out", out], env());
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("service name");
  });
});
