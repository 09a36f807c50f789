import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../src/util/clock.js";
import { cli } from "./helpers/cli.js";
import { type PkiServer, opensslCsr, run, startPkiServer, tempDir } from "./helpers/pki.js";

/** The offline-root ceremony and the day-to-day ca commands, end to end through the CLI binary. */
describe("fleetroot ca (CLI)", () => {
  const dir = tempDir("fr-pki-cli-");
  const f = (n: string) => join(dir, n);
  let s: PkiServer;
  let env: Record<string, string> = {};

  beforeAll(async () => {
    s = await startPkiServer(`sqlite:${f("fr.db")}`, {
      dataDir: join(dir, "data"),
      clock: new ManualClock(Date.now()),
    });
    env = { FLEETROOT_ADDR: await s.t.server.listen(), FLEETROOT_TOKEN: s.token };
  }, 30_000);
  afterAll(async () => {
    await s?.t.close();
  });

  const ok = async (args: string[], extraEnv: Record<string, string> = env) => {
    const r = await cli(args, extraEnv);
    expect(r.code, `${args.join(" ")}\n${r.stderr}`).toBe(0);
    return r;
  };

  it("offline root ceremony: root create (offline) → intermediate csr → sign-intermediate (offline) → set-signed", async () => {
    const rootKey = `file:${f("offline-root.key")}`;
    // Offline steps get no server address or token at all.
    await ok(
      [
        "ca",
        "root",
        "create",
        "--key",
        rootKey,
        "--common-name",
        "Offline Fleet Root",
        "--out",
        f("root.pem"),
      ],
      {},
    );
    expect(run("openssl", ["x509", "-in", f("root.pem"), "-noout", "-subject"]).out).toContain(
      "Offline Fleet Root",
    );
    await ok([
      "ca",
      "intermediate",
      "csr",
      "--common-name",
      "Online Issuing CA",
      "--issuer-name",
      "online",
      "--out",
      f("inter.csr"),
    ]);
    expect(readFileSync(f("inter.csr"), "utf8")).toContain("BEGIN CERTIFICATE REQUEST");
    await ok(
      [
        "ca",
        "root",
        "sign-intermediate",
        "--key",
        rootKey,
        "--cert",
        f("root.pem"),
        "--csr",
        f("inter.csr"),
        "--out",
        f("bundle.pem"),
      ],
      {},
    );
    const set = await ok(["ca", "intermediate", "set-signed", f("bundle.pem"), "--default"]);
    expect(set.stdout).toContain("online");
    const issuers = await ok(["ca", "issuers"]);
    expect(issuers.stdout).toMatch(/online\s+\(default\)/);
    // The same bundle again: its intermediate is no longer pending, and the error says how to make one.
    const again = await cli(["ca", "intermediate", "set-signed", f("bundle.pem")], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("no pending intermediate holds this certificate's key");
    expect(again.stderr).toContain("`fleetroot ca intermediate csr`");

    await ok([
      "ca",
      "role",
      "write",
      "device",
      "allowed_domains=fleet.example",
      "allow_subdomains=true",
      "max_ttl=720h",
    ]);
    expect((await ok(["ca", "role", "list"])).stdout).toContain("device");
    const role = JSON.parse((await ok(["ca", "role", "read", "device", "--format", "json"])).stdout);
    expect(role.data.allowed_domains).toEqual(["fleet.example"]);

    // Issue: certificate, key and chain in PEM; the chain verifies to the offline root.
    const issued = await ok([
      "ca",
      "issue",
      "device",
      "--common-name",
      "d1.fleet.example",
      "--out",
      f("d1.pem"),
    ]);
    void issued;
    const d1 = readFileSync(f("d1.pem"), "utf8");
    expect(d1).toContain("BEGIN PRIVATE KEY");
    const v = run("openssl", [
      "verify",
      "-x509_strict",
      "-CAfile",
      f("root.pem"),
      "-untrusted",
      f("bundle.pem"),
      f("d1.pem"),
    ]);
    expect(v.out).toContain(": OK");
  });

  it("ca root create checks --ttl before generating the key (was: exit 1 and an orphan key file)", async () => {
    for (const [ttl, msg] of [
      ["abc", /--ttl "abc" is not a duration/],
      ["0", /--ttl must be longer than 0s/],
      ["99999999999h", /would end after the year 9999/],
    ] as const) {
      const key = f(`ttl-${ttl}.key`);
      const r = await cli(
        ["ca", "root", "create", "--key", `file:${key}`, "--common-name", "R", "--ttl", ttl],
        {},
      );
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(msg);
      expect(existsSync(key)).toBe(false);
    }
  });

  it("sign (der), list, show, revoke, crl (pem/der, delta)", async () => {
    const c = opensslCsr(dir, "d2", { subj: "/CN=d2.fleet.example" });
    await ok(["ca", "sign", "device", c.csrFile, "--format", "der", "--out", f("d2.der")]);
    const text = run("openssl", [
      "x509",
      "-inform",
      "DER",
      "-in",
      f("d2.der"),
      "-noout",
      "-serial",
      "-subject",
    ]).out;
    expect(text).toContain("d2.fleet.example");
    const serial = (/serial=([0-9A-F]+)/.exec(text)?.[1] ?? "").toLowerCase();
    expect(serial.length).toBeGreaterThanOrEqual(16);

    expect((await ok(["ca", "list"])).stdout).toContain(serial.match(/../g)?.join(":"));
    // An expired certificate is listed as expired, not valid; a full page says how to continue.
    const short = opensslCsr(dir, "short", { subj: "/CN=short.fleet.example" });
    await ok(["ca", "sign", "device", short.csrFile, "--ttl", "1s", "--out", f("short.pem")]);
    const shortSerial = run("openssl", ["x509", "-in", f("short.pem"), "-noout", "-serial"])
      .out.replace(/^serial=|\s+$/g, "")
      .toLowerCase();
    const listed = await ok(["ca", "list"]);
    expect(listed.stdout).toMatch(
      new RegExp(`${shortSerial.match(/../g)?.join(":")}\\s+\\S+\\s+expired\\s+CN=short`),
    );
    expect(listed.stderr).not.toContain("more:");
    expect((await ok(["ca", "list", "--limit", "1"])).stderr).toMatch(/\(more: --after [0-9a-f:]+\)/);
    const shown = JSON.parse((await ok(["ca", "show", serial, "--format", "json"])).stdout);
    expect(shown.data.subject).toBe("CN=d2.fleet.example");

    await ok(["ca", "revoke", serial, "--reason", "keyCompromise"]);
    const delta = await ok(["ca", "crl", "--delta"]);
    expect(delta.stdout).toContain("BEGIN X509 CRL");
    const dt = run("openssl", ["crl", "-noout", "-text"], delta.stdout).out;
    expect(dt).toContain(serial.toUpperCase());
    await ok(["ca", "crl", "--format", "der", "--out", f("full.crl")]);
    expect(run("openssl", ["crl", "-inform", "DER", "-in", f("full.crl"), "-noout", "-text"]).out).toContain(
      "CRL Number",
    );
    // A role file holding a JSON array is refused by the CLI (was sent as fields "0", "1", …).
    writeFileSync(f("array-role.json"), "[1, 2]");
    const arrayRole = await cli(["ca", "role", "write", "arr", "--file", f("array-role.json")], env);
    expect([arrayRole.code, arrayRole.stderr]).toEqual([1, expect.stringMatching(/is not a JSON object\n/)]);
    // Bad usage is exit 2; a server refusal is exit 1 with its message.
    expect((await cli(["ca", "revoke"], env)).code).toBe(2);
    const denied = await cli(["ca", "issue", "device", "--common-name", "evil.example.com"], env);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain("FR_PKI_ROLE_DENIED");
  });

  it("ca init makes a root and a default online intermediate on a fresh server", async () => {
    const other = await startPkiServer(`sqlite:${f("fr2.db")}`, {
      dataDir: join(dir, "data2"),
      clock: new ManualClock(Date.now()),
    });
    try {
      const e2 = { FLEETROOT_ADDR: await other.t.server.listen(), FLEETROOT_TOKEN: other.token };
      const init = await ok(["ca", "init", "--common-name", "Fleet", "--format", "json"], e2);
      const out = JSON.parse(init.stdout);
      expect(out.default).toBe(out.intermediate_issuer_id);
      expect(out.ca_chain).toHaveLength(2);
    } finally {
      await other.t.close();
    }
  });
});
