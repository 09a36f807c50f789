import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type Fleet, startFleet } from "./enroll-fixture.js";
import { cli } from "./helpers/cli.js";

describe("fleetroot device … and fleetroot agent enroll against a running server", () => {
  let f: Fleet | undefined;
  afterAll(async () => f?.close());

  it("provisioner, join token, agent enroll, list/filter, labels, suspend, decommission", async () => {
    f = await startFleet();
    const env = { FLEETROOT_ADDR: f.url, FLEETROOT_TOKEN: f.root };
    const work = mkdtempSync(join(tmpdir(), "fr-cli-"));
    const def = join(work, "prov.yaml");
    writeFileSync(def, "type: join-token\nrole: device\ntoken_ttl: 15m\n");
    const w = await cli(["device", "provisioner", "write", "factory", "--config", def], env);
    expect(w.code, w.stderr).toBe(0);

    const tok = await cli(
      ["-f", "json", "device", "token", "create", "-p", "factory", "--device-id", "cli-1", "-l", "site=lab"],
      env,
    );
    expect(tok.code, tok.stderr).toBe(0);
    const token = (JSON.parse(tok.stdout) as { data: { token: string } }).data.token;
    expect(token).toMatch(/^frj_/);

    const out = join(work, "agent");
    const en = await cli(
      ["agent", "enroll", "--server", f.url, "--provisioner", "factory", "--token", token, "--out", out],
      {},
    );
    expect(en.code, en.stderr).toBe(0);
    expect(en.stdout).toContain("cli-1");
    expect(new X509Certificate(readFileSync(join(out, "current", "cert.pem"))).subject).toBe("CN=cli-1");

    const bad = await cli(
      [
        "agent",
        "enroll",
        "--server",
        f.url,
        "--provisioner",
        "factory",
        "--token",
        token,
        "--out",
        join(work, "again"),
      ],
      {},
    );
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/join token is unknown, expired or already used/);
    const usage = await cli(
      ["agent", "enroll", "--server", f.url, "--provisioner", "factory", "--out", out],
      {},
    );
    expect(usage.code).toBe(2);

    const list = await cli(["device", "list", "--label", "site=lab", "--status", "active"], env);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/^cli-1\tactive\tjoin-token/m);

    expect((await cli(["device", "labels", "cli-1", "site=field", "tier=gold"], env)).code).toBe(0);
    const got = await cli(["-f", "json", "device", "get", "cli-1"], env);
    expect(JSON.parse(got.stdout).data.labels).toEqual({ site: "field", tier: "gold" });
    const pem = await cli(["-f", "pem", "device", "get", "cli-1"], env);
    expect(pem.stdout).toBe(readFileSync(join(out, "current", "cert.pem"), "utf8"));

    expect((await cli(["device", "suspend", "cli-1"], env)).code).toBe(0);
    const suspended = await cli(["device", "list", "--status", "suspended"], env);
    expect(suspended.stdout).toMatch(/^cli-1\tsuspended/m);
    const dec = await cli(["-f", "json", "device", "decommission", "cli-1"], env);
    expect(dec.code, dec.stderr).toBe(0);
    expect(JSON.parse(dec.stdout).data.revoked_serials).toHaveLength(1);
    const again = await cli(["device", "resume", "cli-1"], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/decommissioned/);
  }, 60_000);
});
