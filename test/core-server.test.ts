import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FleetError } from "../src/errors/index.js";
import { createServer, type Server } from "../src/server/main.js";
import { cli } from "./helpers/cli.js";
import { serverTls } from "./helpers/tls.js";
import { startTestServer, type TestServer } from "./helpers/server.js";

describe("server: barrier rotation and rate limits", () => {
  let t: TestServer;
  let root = "";
  let share = "";
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), "fr-srv-"));
    t = await startTestServer(`sqlite:${join(dir, "fr.db")}`, {
      dataDir: dir,
      defaults: { limits: { unseal_per_minute: 3 } },
    });
    const init = (await t.call("PUT", "sys/init", { secret_shares: 1, secret_threshold: 1 })).json();
    root = init.root_token;
    share = init.keys[0];
    await t.call("PUT", "sys/unseal", { key: share });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("sys/rotate adds a keyring term; values written before still decrypt", async () => {
    const before = (await t.call("GET", "sys/key-status", undefined, root)).json();
    const child = (await t.call("POST", "auth/token/create", { ttl: "1h" }, root)).json().auth.client_token;
    expect((await t.call("PUT", "sys/rotate", undefined, root)).statusCode).toBe(204);
    const after = (await t.call("GET", "sys/key-status", undefined, root)).json();
    expect(after.term).toBe(before.term + 1);
    const later = (await t.call("POST", "auth/token/create", { ttl: "1h" }, root)).json().auth.client_token;
    await t.restart();
    expect((await t.call("PUT", "sys/unseal", { key: share })).json().sealed).toBe(false);
    expect((await t.call("GET", "sys/key-status", undefined, root)).json().term).toBe(after.term);
    for (const token of [child, later]) {
      expect((await t.call("GET", "auth/token/lookup-self", undefined, token)).statusCode).toBe(200);
    }
  });

  it("unseal attempts are rate limited per client (429 with Retry-After)", async () => {
    t.clock.advance(61_000); // a fresh rate-limit window
    const codes: number[] = [];
    for (let i = 0; i < 5; i++) codes.push((await t.call("PUT", "sys/unseal", { key: "00" })).statusCode);
    // The server is unsealed: a share is answered with the seal status (as Vault does), until the limit.
    expect(codes).toEqual([200, 200, 200, 429, 429]);
    expect(codes[4]).toBe(429);
    const limited = await t.call("PUT", "sys/unseal", { key: "00" });
    expect(limited.headers["retry-after"]).toBe("60");
    expect(limited.json().code).toBe("FR_RATE_LIMITED");
    t.clock.advance(61_000);
    expect((await t.call("PUT", "sys/unseal", { key: "00" })).statusCode).toBe(200);
  });
});

describe("server: request edges", () => {
  let t: TestServer;
  let root = "";
  const accessors = async () =>
    ((await t.call("GET", "auth/token/accessors?list=true", undefined, root)).json().data.keys as string[])
      .length;
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), "fr-edge-"));
    t = await startTestServer(`sqlite:${join(dir, "fr.db")}`, { dataDir: dir });
    const init = (await t.call("PUT", "sys/init", { secret_shares: 1, secret_threshold: 1 })).json();
    root = init.root_token;
    await t.call("PUT", "sys/unseal", { key: init.keys[0] });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("a bad X-Vault-Wrap-TTL is refused before the handler runs: no token made, no secret written", async () => {
    const before = await accessors();
    for (const ttl of ["bogus", "0"]) {
      const r = await t.call("POST", "auth/token/create", { ttl: "1h" }, root, { "x-vault-wrap-ttl": ttl });
      expect(r.statusCode).toBe(400);
      expect(r.json().code).toBe("FR_VALIDATION");
    }
    expect(await accessors()).toBe(before);
    const kv = await t.call("POST", "secret/data/wrap-edge", { data: { a: "1" } }, root, {
      "x-vault-wrap-ttl": "later",
    });
    expect(kv.statusCode).toBe(400);
    expect((await t.call("GET", "secret/data/wrap-edge", undefined, root)).statusCode).toBe(404);
    const ok = await t.call("POST", "auth/token/create", { ttl: "1h" }, root, { "x-vault-wrap-ttl": "5m" });
    expect(ok.json().wrap_info.ttl).toBe(300);
  });

  it("a policy name of up to 128 characters reaches its route; a malformed URL gets the JSON error body", async () => {
    const name = "p".repeat(128);
    const put = await t.call(
      "PUT",
      `sys/policies/acl/${name}`,
      { policy: 'path "x" { capabilities = ["read"] }' },
      root,
    );
    expect(put.statusCode, put.body).toBe(204);
    expect((await t.call("GET", `sys/policies/acl/${name}`, undefined, root)).json().data.name).toBe(name);
    const bad = await t.call("GET", "secret/data/a%zzb", undefined, root);
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ code: "FR_BAD_REQUEST", errors: [expect.any(String)] });
  });
});

describe("server: TLS configuration errors", () => {
  it("an unreadable or malformed TLS file names its key and creates nothing", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fr-tls-bad-"));
    const garbage = join(dir, "garbage.pem");
    writeFileSync(garbage, "not a certificate\n");
    for (const [cert, expected] of [
      [join(dir, "missing.pem"), "tls.cert_file: cannot read"],
      [garbage, "tls.cert_file and tls.key_file are not a PEM certificate chain"],
    ] as const) {
      const data = join(dir, `data-${expected.length}`);
      const e = await createServer({
        env: {},
        defaults: { listen: "127.0.0.1:0", data_dir: data, tls: { cert_file: cert, key_file: garbage } },
      }).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(e).toBeInstanceOf(FleetError);
      expect((e as FleetError).code).toBe("FR_CONFIG_INVALID");
      expect((e as FleetError).message).toContain(expected);
      expect(existsSync(data)).toBe(false);
    }
  });
});

describe("server: data_dir errors", () => {
  it("a data_dir that is a file (or under one) is a configuration error naming it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fr-datadir-bad-"));
    const file = join(dir, "not-a-dir");
    writeFileSync(file, "x");
    for (const data of [file, join(file, "sub")]) {
      const e = await createServer({ env: {}, defaults: { listen: "127.0.0.1:0", data_dir: data } }).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(e).toBeInstanceOf(FleetError);
      expect((e as FleetError).code).toBe("FR_CONFIG_INVALID");
      expect((e as FleetError).message).toContain(`data_dir ${data} cannot be used as a directory`);
    }
  });
});

describe("server: TLS", () => {
  const dir = mkdtempSync(join(tmpdir(), "fr-tls-"));
  let server: Server;
  let url = "";
  beforeAll(async () => {
    const tls = serverTls(dir);
    const config = join(dir, "fleetroot.yaml");
    writeFileSync(
      config,
      `listen: 127.0.0.1:0\ndata_dir: ${join(dir, "data")}\ntls:\n  cert_file: ${tls.cert}\n  key_file: ${tls.key}\n`,
    );
    server = await createServer({ configFile: config, env: {} });
    url = await server.listen();
  });
  afterAll(async () => {
    await server?.close();
  });

  it("serves HTTPS; the CLI trusts it with --ca-cert and refuses it without", async () => {
    expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const ok = await cli(["operator", "status", "--ca-cert", join(dir, "tls.pem")], { FLEETROOT_ADDR: url });
    expect(ok.stdout).toMatch(/Initialized\s+false/);
    const untrusted = await cli(["operator", "status"], { FLEETROOT_ADDR: url });
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr).toMatch(/certificate|SELF_SIGNED|self-signed/i);
  });
});
