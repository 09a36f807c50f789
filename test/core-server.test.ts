import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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
