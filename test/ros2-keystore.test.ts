import { execFile } from "node:child_process";
import { X509Certificate } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKeyManager } from "../src/keys/index.js";
import {
  Ros2Keystore,
  createEnclave,
  loadPolicyFile,
  setPermissions,
  verifyKeystore,
  verifySmime,
} from "../src/ros2/index.js";
import { systemClock } from "../src/util/clock.js";
import { cli } from "./helpers/cli.js";
import { softHsmToken } from "./helpers/softhsm.js";

const run = promisify(execFile);
const vectors = path.join(import.meta.dirname, "vectors/ros2/sros2");
const policies = path.join(vectors, "policies");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "fleetroot-ros2-ks-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function smimeVerify(file: string, ca: string): Promise<{ ok: boolean; out: string }> {
  try {
    const r = await run("openssl", ["smime", "-verify", "-text", "-in", file, "-CAfile", ca], {
      timeout: 10_000,
    });
    return { ok: true, out: r.stdout };
  } catch (e) {
    return { ok: false, out: String((e as { stderr?: string }).stderr) };
  }
}

function p7sFiles(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".p7s"))
    .map((f) => path.join(dir, f));
}

describe("keystore through the CLI", () => {
  const ks = path.join(tmp, "ks");

  beforeAll(async () => {
    const r = await cli([
      "ros2",
      "generate",
      "--keystore",
      ks,
      "--policy",
      path.join(policies, "talker_listener.policy.xml"),
      path.join(policies, "add_two_ints.policy.xml"),
      "--enclave",
      "/extra/node",
    ]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
  }, 60_000);

  it("has sros2's layout with separate identity and permissions CAs", () => {
    for (const f of [
      "public/identity_ca.cert.pem",
      "public/permissions_ca.cert.pem",
      "enclaves/governance.xml",
      "enclaves/governance.p7s",
    ]) {
      expect(fs.existsSync(path.join(ks, f)), f).toBe(true);
    }
    const id = new X509Certificate(fs.readFileSync(path.join(ks, "public/identity_ca.cert.pem")));
    const perm = new X509Certificate(fs.readFileSync(path.join(ks, "public/permissions_ca.cert.pem")));
    expect(id.fingerprint256).not.toBe(perm.fingerprint256);
    const dir = path.join(ks, "enclaves/talker_listener/talker");
    expect(fs.readdirSync(dir).sort()).toEqual([
      "cert.pem",
      "governance.p7s",
      "identity_ca.cert.pem",
      "key.pem",
      "permissions.p7s",
      "permissions.xml",
      "permissions_ca.cert.pem",
    ]);
    const cert = new X509Certificate(fs.readFileSync(path.join(dir, "cert.pem")));
    expect(cert.subject).toBe("CN=/talker_listener/talker");
    expect(cert.verify(id.publicKey)).toBe(true);
  });

  it("lists the enclaves and verifies the keystore", async () => {
    const list = await cli(["--format", "json", "ros2", "enclave", "list", ks]);
    expect((JSON.parse(list.stdout) as { name: string }[]).map((e) => e.name)).toEqual([
      "/add_two_ints/add_two_ints_client",
      "/add_two_ints/add_two_ints_server",
      "/extra/node",
      "/talker_listener/listener",
      "/talker_listener/talker",
    ]);
    const v = await cli(["ros2", "verify", ks]);
    expect(v.stdout).toMatch(/^OK: 5 enclaves/);
    expect(v.code).toBe(0);
  });

  it("every .p7s verifies with openssl smime -verify -text against the permissions CA, not the identity CA", async () => {
    const files = p7sFiles(ks);
    expect(files.length).toBe(11); // governance + (governance, permissions) × 5 enclaves
    for (const f of files) {
      const good = await smimeVerify(f, path.join(ks, "public/permissions_ca.cert.pem"));
      expect(good.ok, f).toBe(true);
      expect(good.out).toMatch(/<dds/);
      expect((await smimeVerify(f, path.join(ks, "public/identity_ca.cert.pem"))).ok, f).toBe(false);
    }
    const signed = await smimeVerify(
      path.join(ks, "enclaves/talker_listener/talker/permissions.p7s"),
      path.join(ks, "public/permissions_ca.cert.pem"),
    );
    expect(signed.out.replace(/\r\n/g, "\n")).toBe(
      fs.readFileSync(path.join(ks, "enclaves/talker_listener/talker/permissions.xml"), "utf8"),
    );
  });

  it("permissions create replaces permissions; --no-ros-discovery-info leaves the rule out", async () => {
    const file = path.join(ks, "enclaves/extra/node/permissions.xml");
    expect(fs.readFileSync(file, "utf8")).toContain("rt/*"); // the default policy
    const policy = path.join(tmp, "extra.policy.xml");
    fs.writeFileSync(
      policy,
      '<policy version="0.2.0"><enclaves><enclave path="/extra/node"><profiles><profile ns="/" node="node"><topics publish="ALLOW"><topic>odom</topic></topics></profile></profiles></enclave></enclaves></policy>',
    );
    const r = await cli([
      "ros2",
      "permissions",
      "create",
      ks,
      "/extra/node",
      policy,
      "--no-ros-discovery-info",
    ]);
    expect(r.code).toBe(0);
    const xml = fs.readFileSync(file, "utf8");
    expect(xml).toContain("<topic>rt/odom</topic>");
    expect(xml).not.toContain("ros_discovery_info");
    expect((await cli(["ros2", "verify", ks])).code).toBe(0);
  });

  it("verify catches a tampered permissions.xml, a foreign signer and a missing file", async () => {
    const copy = path.join(tmp, "ks-tampered");
    fs.cpSync(ks, copy, { recursive: true, verbatimSymlinks: true });
    const dir = path.join(copy, "enclaves/talker_listener/talker");
    fs.writeFileSync(
      path.join(dir, "permissions.xml"),
      fs.readFileSync(path.join(dir, "permissions.xml"), "utf8").replace("rt/chatter", "rt/anything"),
    );
    // Permissions of another enclave, signed by the identity CA (not the permissions CA).
    const ksObj = await Ros2Keystore.open(copy, { keys: createKeyManager(), clock: systemClock });
    const { signSmime } = await import("../src/ros2/index.js");
    const idCa = await ksObj.identityCa();
    const listener = path.join(copy, "enclaves/talker_listener/listener");
    fs.writeFileSync(
      path.join(listener, "permissions.p7s"),
      await signSmime(
        fs.readFileSync(path.join(listener, "permissions.xml"), "utf8"),
        idCa.certDer,
        await idCa.signer(),
        new Date(),
      ),
    );
    fs.rmSync(path.join(copy, "enclaves/extra/node/cert.pem"));
    const r = await cli(["ros2", "verify", copy]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/talker: permissions.p7s: permissions.xml differs from the signed/);
    expect(r.stderr).toMatch(
      /listener: permissions.p7s: .*signed by "CN=Fleetroot ROS 2 Identity CA", which is not the expected CA/,
    );
    // Tampering with the signed content itself fails the digest.
    const p7s = path.join(dir, "permissions.p7s");
    fs.writeFileSync(p7s, fs.readFileSync(p7s, "utf8").replace("rt/chatter", "rt/chatteX"));
    expect(() => verifySmime(fs.readFileSync(p7s, "utf8"), idCa.certDer)).toThrow(/altered/);
    expect((await smimeVerify(p7s, path.join(copy, "public/permissions_ca.cert.pem"))).ok).toBe(false);
    const missing = await cli(["ros2", "verify", path.join(tmp, "nope")]);
    expect(missing.stderr).toMatch(/does not exist.*keystore create/);
    fs.rmSync(path.join(copy, "public/permissions_ca.cert.pem"));
    expect((await cli(["ros2", "verify", copy])).stderr).toMatch(
      /permissions_ca.cert.pem is missing \(FR_ROS2_KEYSTORE\)/,
    );
  });

  it("bad input leaves nothing half-written: bad policy, unknown enclave, existing enclave, bad name", async () => {
    const before = fs.readdirSync(ks, { recursive: true }).length;
    const bad = path.join(tmp, "bad.policy.xml");
    fs.writeFileSync(
      bad,
      '<policy version="0.2.0"><enclaves><enclave path="/x/y"><profiles><profile ns="/" node="y"><topics publish="ALLOW"><topic>a</topic></topics>',
    );
    const r1 = await cli(["ros2", "generate", "--keystore", ks, "--enclave", "/new/one", "--policy", bad]);
    expect(r1.code).toBe(1);
    expect(r1.stderr).toMatch(/not well-formed.*FR_ROS2_POLICY_INVALID/);
    const xxe = path.join(tmp, "xxe.policy.xml");
    fs.writeFileSync(
      xxe,
      '<!DOCTYPE policy [<!ENTITY x SYSTEM "file:///etc/passwd">]><policy version="0.2.0"/>',
    );
    expect((await cli(["ros2", "enclave", "create", ks, "/x/y", "--policy", xxe])).stderr).toMatch(
      /FR_ROS2_XML_UNSAFE/,
    );
    const r2 = await cli([
      "ros2",
      "permissions",
      "create",
      ks,
      "/no/such",
      path.join(policies, "talker_listener.policy.xml"),
    ]);
    expect(r2.stderr).toMatch(/no enclave \/no\/such.*FR_ROS2_ENCLAVE_NOT_FOUND/);
    expect((await cli(["ros2", "enclave", "create", ks, "/extra/node"])).stderr).toMatch(
      /FR_ROS2_ENCLAVE_EXISTS/,
    );
    expect((await cli(["ros2", "enclave", "create", ks, "relative/name"])).stderr).toMatch(
      /FR_ROS2_ENCLAVE_NAME/,
    );
    // A file: key URI would be ignored (software keys live in the keystore): refused as a usage error.
    const fileKey = await cli([
      "ros2",
      "enclave",
      "create",
      ks,
      "/file/key",
      "--key",
      `file:${path.join(tmp, "elsewhere.pem")}`,
    ]);
    expect([fileKey.code, fileKey.stderr]).toEqual([2, expect.stringMatching(/--key takes a pkcs11: URI/)]);
    expect(fs.existsSync(path.join(ks, "enclaves", "file"))).toBe(false);
    // A policy for another enclave: refused before any directory is made.
    const r3 = await cli([
      "ros2",
      "enclave",
      "create",
      ks,
      "/x/z",
      "--policy",
      path.join(policies, "talker_listener.policy.xml"),
    ]);
    expect(r3.stderr).toMatch(/no <enclave path="\/x\/z">/);
    expect(fs.readdirSync(ks, { recursive: true }).length).toBe(before);
    expect(fs.existsSync(path.join(ks, "enclaves/x"))).toBe(false);
  });

  it("generate checks every enclave name before it writes anything (keystore, earlier enclaves)", async () => {
    const policy = path.join(tmp, "two.policy.xml");
    const enclave = (p: string) =>
      `<enclave path="${p}"><profiles><profile ns="/" node="n"><topics publish="ALLOW"><topic>a</topic></topics></profile></profiles></enclave>`;
    fs.writeFileSync(
      policy,
      `<policy version="0.2.0"><enclaves>${enclave("/gen/good")}${enclave("bad name")}</enclaves></policy>`,
    );
    const fresh = path.join(tmp, "gen-fresh");
    const r1 = await cli(["ros2", "generate", "--keystore", fresh, "--policy", policy]);
    expect(r1.code).toBe(1);
    expect(r1.stderr).toMatch(/"bad name".*FR_ROS2_ENCLAVE_NAME/);
    expect(fs.existsSync(fresh)).toBe(false);
    const before = fs.readdirSync(ks, { recursive: true }).length;
    const r2 = await cli(["ros2", "generate", "--keystore", ks, "--enclave", "/gen/one", "--enclave", "two"]);
    expect(r2.stderr).toMatch(/"two".*FR_ROS2_ENCLAVE_NAME/);
    expect(fs.readdirSync(ks, { recursive: true }).length).toBe(before);
    expect(fs.existsSync(path.join(ks, "enclaves/gen"))).toBe(false);
  });

  it("revoke writes the identity CA's CRL into public/ and every enclave; verify reports the revoked enclave", async () => {
    const r = await cli([
      "--format",
      "json",
      "ros2",
      "enclave",
      "revoke",
      ks,
      "/talker_listener/listener",
      "--reason",
      "keyCompromise",
    ]);
    expect(r.code).toBe(0);
    const serial = (JSON.parse(r.stdout) as { serial: string }).serial;
    const crls = fs
      .readdirSync(ks, { recursive: true, encoding: "utf8" })
      .filter((f) => f.endsWith("crl.pem"));
    expect(crls.length).toBe(6); // public + 5 enclaves
    const crl = path.join(ks, "public/crl.pem");
    const text = await run("openssl", [
      "crl",
      "-in",
      crl,
      "-noout",
      "-text",
      "-CAfile",
      path.join(ks, "public/identity_ca.cert.pem"),
    ]);
    expect(text.stderr).toMatch(/verify OK/);
    expect(text.stdout.toLowerCase()).toContain(serial.toUpperCase().toLowerCase());
    expect(text.stdout).toMatch(/Key Compromise/);
    // openssl verify with the CRL: the revoked certificate fails, another passes.
    const chain = path.join(tmp, "ca-crl.pem");
    fs.writeFileSync(
      chain,
      fs.readFileSync(path.join(ks, "public/identity_ca.cert.pem"), "utf8") + fs.readFileSync(crl, "utf8"),
    );
    await expect(
      run("openssl", [
        "verify",
        "-crl_check",
        "-CAfile",
        chain,
        path.join(ks, "enclaves/talker_listener/listener/cert.pem"),
      ]),
    ).rejects.toThrow(/revoked/);
    await run("openssl", [
      "verify",
      "-crl_check",
      "-CAfile",
      chain,
      path.join(ks, "enclaves/talker_listener/talker/cert.pem"),
    ]);
    const list = await cli(["ros2", "enclave", "list", ks]);
    expect(list.stdout).toMatch(/\/talker_listener\/listener\t.*\trevoked/);
    const v = await cli(["ros2", "verify", ks]);
    expect(v.stderr).toMatch(/listener: cert.pem: the certificate \(serial [0-9a-f]+\) is revoked/);
  });

  it("--shared-ca makes sros2's single-CA layout with links", async () => {
    const shared = path.join(tmp, "shared");
    const r = await cli([
      "ros2",
      "keystore",
      "create",
      shared,
      "--shared-ca",
      "--ca-validity-days",
      "30",
      "--domain",
      "5",
    ]);
    expect(r.code).toBe(0);
    expect(fs.readlinkSync(path.join(shared, "public/identity_ca.cert.pem"))).toBe("ca.cert.pem");
    expect(fs.readlinkSync(path.join(shared, "private/permissions_ca.key.pem"))).toBe("ca.key.pem");
    const ca = new X509Certificate(fs.readFileSync(path.join(shared, "public/ca.cert.pem")));
    expect(Date.parse(ca.validTo) - Date.now()).toBeLessThan(31 * 86_400_000);
    expect(fs.readFileSync(path.join(shared, "enclaves/governance.xml"), "utf8")).toContain("<id>5</id>");
    expect((await cli(["ros2", "enclave", "create", shared, "/a/b", "--validity-days", "7"])).code).toBe(0);
    const cert = new X509Certificate(fs.readFileSync(path.join(shared, "enclaves/a/b/cert.pem")));
    expect(Date.parse(cert.validTo) - Date.now()).toBeLessThan(8 * 86_400_000);
    expect((await cli(["ros2", "verify", shared])).code).toBe(0);
    expect((await cli(["ros2", "keystore", "create", shared])).stderr).toMatch(/not empty/);
  });
});

describe("private/fleetroot.json is checked when the keystore opens", () => {
  it("a damaged state stops the command instead of signing permissions with undefined domains", async () => {
    const dir = path.join(tmp, "state");
    const keys = createKeyManager();
    const deps = { keys, clock: systemClock };
    try {
      await Ros2Keystore.create(dir, {}, deps);
      const state = path.join(dir, "private/fleetroot.json");
      const good = JSON.parse(fs.readFileSync(state, "utf8")) as Record<string, unknown>;
      const cases: Array<[unknown, RegExp]> = [
        [[1], /JSON object/],
        [null, /JSON object/],
        [{ ...good, domains: "zz" }, /domains must be a list/],
        [{ ...good, domains: [300] }, /domains: .*0–232/],
        [{ ...good, revoked: null }, /revoked must be a list/],
        [{ ...good, revoked: [{ serial: "zz" }] }, /revoked entry/],
        [{ ...good, enclaveValidityDays: "x" }, /enclaveValidityDays/],
        [{ ...good, keyAlgorithm: "dsa" }, /keyAlgorithm/],
        [{ ...good, crlNumber: -1 }, /crlNumber/],
        [{ ...good, sharedCa: "no" }, /sharedCa/],
      ];
      for (const [value, message] of cases) {
        fs.writeFileSync(state, JSON.stringify(value));
        const e = await Ros2Keystore.open(dir, deps).then(
          () => undefined,
          (err: unknown) => err as { code?: string; message?: string },
        );
        expect(e?.code, JSON.stringify(value)).toBe("FR_ROS2_KEYSTORE");
        expect(e?.message).toMatch(message);
      }
      expect(fs.existsSync(path.join(dir, "enclaves/q"))).toBe(false);
      // A damaged CA certificate is named, by verify too (it used to say only "the PEM text is malformed").
      fs.writeFileSync(state, JSON.stringify(good));
      fs.writeFileSync(path.join(dir, "public/identity_ca.cert.pem"), "garbage\n");
      const r = await cli(["ros2", "verify", dir]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/public\/identity_ca\.cert\.pem in .* is unusable.*FR_ROS2_KEYSTORE/);
      // Fields left out take the defaults (as for a keystore made by sros2).
      fs.writeFileSync(state, JSON.stringify({ domains: [{ min: 1, max: 3 }] }));
      expect((await Ros2Keystore.open(dir, deps)).state.domains).toEqual([{ min: 1, max: 3 }]);
    } finally {
      await keys.close();
    }
  });
});

describe("keys in SoftHSM2", () => {
  it("a permissions CA key in the token signs, and an enclave key generated in the token is written as key.p11", async () => {
    const token = await softHsmToken("ros2-hsm");
    const pinFile = path.join(tmp, "pin");
    fs.writeFileSync(pinFile, token.pin + "\n", { mode: 0o600 });
    const uri = (object: string) =>
      `pkcs11:token=${token.label};object=${object}?module-path=${encodeURIComponent(token.module)}&pin-source=${encodeURIComponent(pinFile)}`;
    const keys = createKeyManager();
    try {
      const deps = { keys, clock: systemClock };
      const dir = path.join(tmp, "hsm");
      const ks = await Ros2Keystore.create(dir, { permissionsCaKey: uri("perm-ca") }, deps);
      expect(fs.readFileSync(path.join(dir, "private/permissions_ca.key.p11"), "utf8")).toBe(uri("perm-ca"));
      expect(fs.existsSync(path.join(dir, "private/permissions_ca.key.pem"))).toBe(false);
      const info = await createEnclave(ks, "/robot/arm", { keyUri: token.uri("arm") });
      expect(info.key).toBe("key.p11");
      const p11 = fs.readFileSync(path.join(info.dir, "key.p11"), "utf8");
      expect(p11.startsWith("pkcs11:token=ros2-hsm;object=arm?module-path=")).toBe(true);
      expect(p11).not.toContain("pin-value"); // the PIN never lands in the keystore
      expect(fs.existsSync(path.join(info.dir, "key.pem"))).toBe(false);
      // The certificate holds the token's public key.
      const tokenKey = await keys.open(token.uri("arm"));
      const cert = new X509Certificate(fs.readFileSync(path.join(info.dir, "cert.pem")));
      expect(
        Buffer.from(cert.publicKey.export({ type: "spki", format: "der" })).equals(
          Buffer.from(tokenKey.publicKey),
        ),
      ).toBe(true);
      await expect(
        setPermissions(ks, "/robot/arm", {
          policy: loadPolicyFile(path.join(policies, "talker_listener.policy.xml")),
        }),
      ).rejects.toThrow(/no <enclave path="\/robot\/arm">/);
      const report = await verifyKeystore(ks);
      expect(report.problems).toEqual([]);
      for (const f of p7sFiles(dir)) {
        expect((await smimeVerify(f, path.join(dir, "public/permissions_ca.cert.pem"))).ok, f).toBe(true);
      }
    } finally {
      await keys.close();
    }
  }, 60_000);
});
