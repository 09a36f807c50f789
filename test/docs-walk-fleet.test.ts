import { join } from "node:path";
import { existsSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cli } from "./helpers/cli.js";
import { type PkiServer, run, startPkiServer, tempDir } from "./helpers/pki.js";

/** Found by walking docs/pki.md, docs/ros2.md and docs/cli.md as a new operator would. */
describe("docs walk: ca key options and list paging (CLI)", () => {
  const dir = tempDir("fr-docs-walk-fleet-");
  const f = (n: string) => join(dir, n);
  let s: PkiServer;
  let env: Record<string, string> = {};

  beforeAll(async () => {
    s = await startPkiServer(`sqlite:${f("fr.db")}`, { dataDir: join(dir, "data") });
    env = { FLEETROOT_ADDR: await s.t.server.listen(), FLEETROOT_TOKEN: s.token };
  }, 30_000);
  afterAll(async () => {
    await s?.t.close();
  });

  it("`ca init --key-type rsa` without --key-bits uses RSA's default size (was refused as rsa with 256 bits)", async () => {
    const r = await cli(["ca", "init", "--common-name", "Rsa Fleet", "--key-type", "rsa"], env, {
      timeoutMs: 60_000,
    });
    expect(r.code, r.stderr).toBe(0);
    const pem = (await s.call("GET", "pki/ca/pem")).body;
    expect(run("openssl", ["x509", "-noout", "-text"], pem).out).toContain("Public-Key: (2048 bit)");
  }, 120_000);

  it("`ca intermediate csr --key-type rsa --key-bits 3072` makes a 3072-bit key", async () => {
    const r = await cli(
      [
        "ca",
        "intermediate",
        "csr",
        "--common-name",
        "Rsa Issuing",
        "--key-type",
        "rsa",
        "--key-bits",
        "3072",
      ],
      env,
      { timeoutMs: 60_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(run("openssl", ["req", "-noout", "-text"], r.stdout).out).toContain("Public-Key: (3072 bit)");
  }, 120_000);

  it("`ros2 fleet show` before `ros2 fleet config` says once what to run, not the same sentence twice", async () => {
    const r = await cli(["ros2", "fleet", "show"], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("create them with `fleetroot ros2 fleet config`");
    expect(r.stderr.match(/not configured/g)).toHaveLength(1);
  }, 120_000);

  it("bad --key-bits / --key-type / --limit are usage errors (exit 2) that create nothing", async () => {
    const before = (await s.call("LIST", "pki/issuers")).json() as { data: { keys: string[] } };
    for (const args of [
      ["ca", "init", "--common-name", "X", "--key-bits", "abc"],
      ["ca", "init", "--common-name", "X", "--key-type", "dsa"],
      ["ca", "intermediate", "csr", "--common-name", "X", "--key-bits", "2k"],
      ["ca", "list", "--limit", "abc"],
      ["ca", "list", "--limit", "0"],
    ]) {
      const r = await cli(args, env);
      expect(r.code, `${args.join(" ")}\n${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(/^Error: --(key-bits|key-type|limit) must be/);
      expect(r.stderr).not.toMatch(/\bat \S+:\d+:\d+/);
    }
    const after = (await s.call("LIST", "pki/issuers")).json() as { data: { keys: string[] } };
    expect(after.data.keys).toEqual(before.data.keys);
  }, 120_000);
});

describe("docs walk: ros2 --domain (CLI)", () => {
  const dir = tempDir("fr-docs-walk-ros2-");

  it("an out-of-range or reversed --domain is a usage error (exit 2) with a readable message, nothing written", async () => {
    const ks = join(dir, "ks");
    const cases: [string, RegExp][] = [
      ["300", /--domain: DDS domain 300 is invalid; ids are integers 0–232/],
      ["9-3", /--domain: DDS domain 9-3 is invalid; a range must go from the smaller id to the larger/],
      ["abc", /--domain: "abc" is not a domain id or range/],
    ];
    for (const [domain, message] of cases) {
      const r = await cli(["ros2", "keystore", "create", ks, "--domain", domain]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(existsSync(ks)).toBe(false);
    }
    const ok = await cli(["ros2", "keystore", "create", ks, "--domain", "0,5-9"]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(readFileSync(join(ks, "enclaves", "governance.xml"), "utf8")).toContain("<min>5</min>");
  }, 120_000);
});

describe("docs walk: updates --generate (CLI)", () => {
  it("an unknown --generate algorithm is a usage error (exit 2) naming the choices, before any request", async () => {
    // No server at this address: the check must come first.
    const env = { FLEETROOT_ADDR: "http://127.0.0.1:9", FLEETROOT_TOKEN: "frs.none" };
    const k = (n: string) => `file:/nonexistent/${n}.key`;
    for (const args of [
      [
        "updates",
        "init",
        "r",
        "--root-key",
        k("r"),
        "--targets-key",
        k("t"),
        "--snapshot-key",
        k("s"),
      ].concat(["--timestamp-key", k("ts"), "--generate", "ed448"]),
      ["updates", "delegate", "r", "robots", "--key", k("d"), "--paths", "robots/*", "--generate", "ed448"],
      ["updates", "rotate-key", "r", "timestamp", "--add-key", k("n"), "--generate", "ed448"],
    ]) {
      const r = await cli(args, env);
      expect(r.code, `${args.join(" ")}\n${r.stderr}`).toBe(2);
      expect(r.stderr).toContain(
        '--generate must be one of ed25519, ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, not "ed448"',
      );
    }
  }, 120_000);
});
