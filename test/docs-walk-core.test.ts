import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cli } from "./helpers/cli.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { childToken, initAndUnseal } from "./secrets-helpers.js";

/**
 * The operator documentation's examples (README, docs/cli.md, docs/auth.md, docs/secrets.md) and the mistakes
 * made around them, run through the CLI against a server on loopback.
 */
describe("docs walk: token, policy, kv and secrets commands as documented", () => {
  let t: TestServer;
  let root = "";
  let addr = "";
  const out = mkdtempSync(join(tmpdir(), "fr-docs-walk-"));
  const env = () => ({ FLEETROOT_ADDR: addr, FLEETROOT_TOKEN: root });

  beforeAll(async () => {
    t = await startTestServer(`sqlite:${join(mkdtempSync(join(tmpdir(), "fr-docs-walk-db-")), "db.sqlite")}`);
    ({ root } = await initAndUnseal(t));
    addr = await t.server.listen();
  });
  afterAll(async () => {
    await t?.close();
    rmSync(out, { recursive: true, force: true });
  });

  it("token revoke: --accessor with --orphan is a usage error that revokes nothing (cli.md: --accessor | --orphan)", async () => {
    const parent = await childToken(t, root, []);
    const child = await childToken(t, parent, []);
    const accessor = (await t.call("GET", "auth/token/lookup-self", undefined, parent)).json().data
      .accessor as string;
    const r = await cli(["token", "revoke", "--accessor", "--orphan", accessor], env());
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--orphan cannot be combined with --accessor");
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect((await t.call("GET", "auth/token/lookup-self", undefined, parent)).statusCode).toBe(200);
    expect((await t.call("GET", "auth/token/lookup-self", undefined, child)).statusCode).toBe(200);
  });

  it("kv metadata put: --cas-required is a flag as in secrets.md (alone, before the path, or =false)", async () => {
    expect((await t.call("POST", "secret/data/app/db", { data: { a: "1" } }, root)).statusCode).toBe(200);
    const md = () => t.call("GET", "secret/metadata/app/db", undefined, root).then((r) => r.json().data);
    // The line from docs/secrets.md, flags in that order.
    const documented = await cli(
      [
        "kv",
        "metadata",
        "put",
        "--max-versions",
        "5",
        "--cas-required",
        "--delete-version-after",
        "1h",
        "--custom-metadata",
        "k=v",
        "secret/app/db",
      ],
      env(),
    );
    expect(documented.code, documented.stderr).toBe(0);
    expect(await md()).toMatchObject({
      max_versions: 5,
      cas_required: true,
      delete_version_after: "1h0m0s",
      custom_metadata: { k: "v" },
    });
    const off = await cli(["kv", "metadata", "put", "--cas-required=false", "secret/app/db"], env());
    expect(off.code, off.stderr).toBe(0);
    expect((await md()).cas_required).toBe(false);
    const bare = await cli(["kv", "metadata", "put", "--cas-required", "secret/app/db"], env());
    expect(bare.code, bare.stderr).toBe(0);
    expect((await md()).cas_required).toBe(true);
  });

  it("policy read prints the policy text as written, without an extra blank line", async () => {
    const text = 'path "secret/data/*" {\n  capabilities = ["read", "list"]\n}\n';
    expect((await t.call("PUT", "sys/policies/acl/readers", { policy: text }, root)).statusCode).toBe(204);
    const r = await cli(["policy", "read", "readers"], env());
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(text);
  });

  it("secrets bootstrap: a bad --period or --wrap-ttl is a usage error before anything is written", async () => {
    const period = await cli(
      ["secrets", "bootstrap", "--services", "svc-a", "--out", out, "--period", "abc"],
      env(),
    );
    expect(period.code).toBe(2);
    expect(period.stderr).toContain('--period must be a duration like 30s, 15m, 1h or 7d, not "abc"');
    const wrap = await cli(
      ["secrets", "bootstrap", "--services", "svc-a", "--out", out, "--wrap-ttl", "0"],
      env(),
    );
    expect(wrap.code).toBe(2);
    expect(wrap.stderr).toContain("--wrap-ttl must be longer than zero");
    expect((await t.call("GET", "sys/policies/acl/service-svc-a", undefined, root)).statusCode).toBe(404);
    expect(readdirSync(out)).toEqual([]);
  });

  it("--format pem/der on a command that prints tables is a usage error before any request (cli.md: table|json)", async () => {
    const accessors = async () =>
      ((await t.call("GET", "auth/token/accessors?list=true", undefined, root)).json().data.keys as string[])
        .length;
    const before = await accessors();
    const create = await cli(["token", "create", "--format", "pem"], env());
    expect(create.code).toBe(2);
    expect(create.stderr).toContain("--format pem applies only to commands that output certificates");
    expect(await accessors()).toBe(before);
    const status = await cli(["--format", "der", "operator", "status"], env());
    expect(status.code).toBe(2);
    expect(status.stdout).toBe("");
  });

  it("kv put - with stdin that is not JSON fails with one line on stderr", async () => {
    const r = await cli(["kv", "put", "secret/app/stdin", "-"], env(), { input: "not json\nat all\n" });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^Error: stdin is not valid JSON: /);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
  });
});
