/**
 * Fleet provisioning of ROS 2 enclaves, end to end on loopback: a TLS server (PKI root, device role, mutual
 * TLS), robots enrolled with join tokens, a policy assigned by label, `agent ros2-enclave` on each robot
 * (in process and through the CLI), the written keystores checked by `ros2 verify`'s checks and openssl, and
 * two Cyclone DDS participants (ddsperf) using them completing the secure handshake. A decommissioned robot
 * is refused. With ca_source pki the CAs are cross-signed by the fleet root: openssl validates
 * enclave → ROS 2 CA (intermediate) → fleet root, and Cyclone DDS is shown to refuse the intermediate itself
 * as IdentityCA (no partial chains) while it accepts the self-signed twin the keystore holds.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { enrollDevice } from "../src/agent/enroll.js";
import { ServerRefusal, postJson } from "../src/agent/enroll-http.js";
import { refreshRos2Crl } from "../src/agent/ros2-crl.js";
import { obtainRos2Enclave } from "../src/agent/ros2-enclave.js";
import { createKeyManager } from "../src/keys/index.js";
import { Ros2Keystore, enclaveDir, verifyKeystore } from "../src/ros2/index.js";
import { systemClock } from "../src/util/clock.js";
import { type Fleet, startFleet } from "./enroll-fixture.js";
import { cli } from "./helpers/cli.js";
import { cycloneSecurityConfig, enclaveFiles } from "./helpers/cyclonedds.js";

const POLICY = `<?xml version="1.0" encoding="UTF-8"?>
<policy version="0.2.0">
  <enclaves>
    <enclave path="/perf/a">
      <profiles>
        <profile ns="/" node="talker"><topics publish="ALLOW"><topic>chatter</topic></topics></profile>
      </profiles>
    </enclave>
    <enclave path="/perf/b">
      <profiles>
        <profile ns="/" node="listener"><topics subscribe="ALLOW"><topic>chatter</topic></topics></profile>
      </profiles>
    </enclave>
  </enclaves>
</policy>
`;

const running = new Set<ChildProcess>();
const fleets: Fleet[] = [];
afterAll(async () => {
  for (const c of running) c.kill("SIGKILL");
  for (const f of fleets) {
    await f.close();
    fs.rmSync(f.dir, { recursive: true, force: true });
  }
});

async function fleetWithRobots(ids: string[]): Promise<{ f: Fleet; robots: Record<string, string> }> {
  const f = await startFleet({ tls: true });
  fleets.push(f);
  const p = await f.api("POST", "fleet/provisioners/factory", {
    type: "join-token",
    role: "device",
    ttl: "1h",
  });
  expect(p.status, JSON.stringify(p)).toBe(200);
  const robots: Record<string, string> = {};
  for (const id of ids) {
    const t = await f.api("POST", "fleet/provisioners/factory/tokens", {
      device_id: id,
      labels: { fleet: "lab" },
    });
    const out = path.join(f.dir, id, "identity");
    await enrollDevice({
      server: f.url,
      provisioner: "factory",
      out,
      caCert: f.tlsCa,
      proof: { type: "token", token: (t.data as { token: string }).token },
    });
    robots[id] = out;
  }
  return { f, robots };
}

/** A refused request's error code (agent errors carry ServerRefusal.code; local ones FleetError.code). */
async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (e) {
    return e instanceof ServerRefusal ? e.code : (e as { code?: string }).code;
  }
}

async function verified(dir: string) {
  const keys = createKeyManager();
  try {
    return await verifyKeystore(await Ros2Keystore.open(dir, { keys, clock: systemClock }));
  } finally {
    await keys.close();
  }
}

// --- Cyclone DDS (ddsperf), as in test/ros2-cyclonedds.test.ts: loopback, no multicast, bounded ---

function ddsConfig(
  enclave: string,
  trace: string,
  portBase: number,
  identityCa?: string,
  crl = false,
): string {
  const files = enclaveFiles(enclave, crl);
  return cycloneSecurityConfig(`${trace}.xml`, {
    ...files,
    ...(identityCa ? { identityCa } : {}),
    trace,
    portBase,
  });
}

function ddsperf(
  args: string[],
  uri: string,
  limitMs: number,
): Promise<{ code: number | null; out: string }> {
  const child = spawn("ddsperf", args, {
    env: { PATH: process.env.PATH, CYCLONEDDS_URI: uri },
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.add(child);
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), limitMs);
  return new Promise((resolve, reject) => {
    child.on("error", (e) => {
      clearTimeout(timer);
      running.delete(child);
      reject(new Error(`ddsperf failed to start (install cyclonedds-tools): ${e.message}`));
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      running.delete(child);
      resolve({ code, out });
    });
  });
}

/** pong in the background, ping in front (bounded); returns both traces. `pingCrl`: ping checks crl.pem. */
async function pingPong(
  tmp: string,
  pingDir: string,
  pongDir: string,
  tag: string,
  portBase: number,
  pingCrl = false,
) {
  const traces = { ping: path.join(tmp, `${tag}-ping.log`), pong: path.join(tmp, `${tag}-pong.log`) };
  const ponger = ddsperf(["-D", "6", "pong"], ddsConfig(pongDir, traces.pong, portBase), 15_000);
  await new Promise((r) => setTimeout(r, 300));
  const ping = await ddsperf(
    ["-D", "4", "-Qminmatch:1", "ping", "10Hz"],
    ddsConfig(pingDir, traces.ping, portBase, undefined, pingCrl),
    15_000,
  );
  await ponger;
  const read = (f: string) => (fs.existsSync(f) ? fs.readFileSync(f, "utf8") : "");
  return { ping, pingTrace: read(traces.ping), pongTrace: read(traces.pong) };
}

describe("fleet provisioning with local ROS 2 CAs", () => {
  let f: Fleet;
  let robots: Record<string, string>;
  const ks = (id: string) => path.join(f.dir, id, "keystore");

  beforeAll(async () => {
    ({ f, robots } = await fleetWithRobots(["robot-1", "robot-2", "robot-3", "robot-4"]));
    // ddsperf is not a ROS node: its topics are not in any sros2 policy, so topic access control is off in
    // governance; identities, governance and permissions documents are still checked by the plugins.
    const c = await f.api("POST", "ros2/config", { read_access_control: false, write_access_control: false });
    expect(c.status, JSON.stringify(c)).toBe(200);
    expect((await f.api("POST", "ros2/policies/robots", { policy: POLICY })).status).toBe(200);
    const a = await f.api("POST", "ros2/assignments/lab", { policy: "robots", labels: "fleet=lab" });
    expect(a.status, JSON.stringify(a)).toBe(200);
  }, 60_000);

  it("configures the CAs once and refuses bad configuration, policies and assignments", async () => {
    const again = await f.api("POST", "ros2/config", { ca_source: "pki" });
    expect([again.status, again.code]).toEqual([400, "FR_CONFLICT"]);
    const unknown = await f.api("POST", "ros2/config", { colour: "blue" });
    expect([unknown.status, unknown.code]).toEqual([400, "FR_VALIDATION"]);
    const xinclude = await f.api("POST", "ros2/policies/inc", {
      policy: `<policy version="0.2.0" xmlns:xi="http://www.w3.org/2001/XInclude"><enclaves><enclave path="/x"><profiles><profile ns="/" node="n"><xi:include href="/etc/passwd"/></profile></profiles></enclave></enclaves></policy>`,
    });
    expect([xinclude.status, xinclude.code]).toEqual([400, "FR_ROS2_POLICY_INVALID"]);
    const xxe = await f.api("POST", "ros2/policies/xxe", {
      policy: `<!DOCTYPE p [<!ENTITY e SYSTEM "file:///etc/passwd">]><policy version="0.2.0">&e;</policy>`,
    });
    expect(xxe.code).toBe("FR_ROS2_XML_UNSAFE");
    const noPolicy = await f.api("POST", "ros2/assignments/x", { policy: "missing", device_id: "robot-1" });
    expect(noPolicy.status).toBe(404);
    const cfg = await f.api("GET", "ros2/config");
    const d = cfg.data as Record<string, unknown>;
    expect(d.ca_source).toBe("local");
    expect(d.identity_ca).not.toBe(d.permissions_ca);
    expect(JSON.stringify(d)).not.toMatch(/file:|key_uri/);
  });

  it("robots obtain enclaves that verify, with the key made on the robot and the assigned policy", async () => {
    const one = await obtainRos2Enclave({
      identity: robots["robot-1"]!,
      enclave: "/perf/a",
      keystore: ks("robot-1"),
    });
    expect(one).toMatchObject({ deviceId: "robot-1", enclave: "/perf/a", policy: "robots", key: "key.pem" });
    // robot-2 through the CLI (server and CA as recorded at enrollment).
    const r = await cli(
      [
        "agent",
        "ros2-enclave",
        "--enclave",
        "/perf/b",
        "--keystore",
        ks("robot-2"),
        "--identity",
        robots["robot-2"]!,
        "--format",
        "json",
      ],
      {},
      { timeoutMs: 60_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ deviceId: "robot-2", enclave: "/perf/b" });

    for (const [id, name] of [
      ["robot-1", "/perf/a"],
      ["robot-2", "/perf/b"],
    ] as const) {
      const report = await verified(ks(id));
      expect(report.problems).toEqual([]);
      expect(report).toMatchObject({ ok: true, enclaves: 1 });
      const dir = enclaveDir(ks(id), name);
      const xml = fs.readFileSync(path.join(dir, "permissions.xml"), "utf8");
      expect(xml).toContain(`<subject_name>CN=${name}</subject_name>`);
      expect(xml).toContain("<topic>rt/chatter</topic>");
      // openssl, an independent implementation, accepts the signatures and the certificate.
      execFileSync(
        "openssl",
        [
          "smime",
          "-verify",
          "-text",
          "-in",
          path.join(dir, "permissions.p7s"),
          "-CAfile",
          path.join(dir, "permissions_ca.cert.pem"),
          "-out",
          "/dev/null",
        ],
        { stdio: "pipe" },
      );
      execFileSync("openssl", [
        "verify",
        "-CAfile",
        path.join(dir, "identity_ca.cert.pem"),
        path.join(dir, "cert.pem"),
      ]);
      expect(fs.statSync(path.join(dir, "key.pem")).mode & 0o777).toBe(0o600);
      // The identity CRL (still empty) came with the enclave.
      expect(fs.readFileSync(path.join(dir, "crl.pem"), "utf8")).toContain("BEGIN X509 CRL");
      expect(fs.existsSync(path.join(ks(id), "private"))).toBe(false);
    }
    // The audit log names each issuance.
    expect(fs.readFileSync(f.t.server.core.paths.auditPath, "utf8")).toMatch(/ros2\.enclave/);
  }, 90_000);

  it("refuses enclaves outside the policy, requests without the device certificate, and existing enclaves", async () => {
    expect(
      await codeOf(
        obtainRos2Enclave({ identity: robots["robot-1"]!, enclave: "/perf/c", keystore: ks("robot-1") }),
      ),
    ).toBe("FR_ROS2_FLEET_DENIED");
    expect(
      await codeOf(
        obtainRos2Enclave({ identity: robots["robot-1"]!, enclave: "/perf/a", keystore: ks("robot-1") }),
      ),
    ).toBe("FR_ROS2_ENCLAVE_EXISTS");
    const anonymous = postJson({ server: f.url, ca: fs.readFileSync(f.tlsCa!) }, "ros2/enclave", {
      enclave: "/perf/a",
      csr: "x",
    });
    expect(await codeOf(anonymous)).toBe("FR_ROS2_FLEET_DENIED");
    // --replace renews in place; the keystore still verifies.
    const renewed = await obtainRos2Enclave({
      identity: robots["robot-1"]!,
      enclave: "/perf/a",
      keystore: ks("robot-1"),
      replace: true,
    });
    expect((await verified(ks("robot-1"))).ok).toBe(true);
    expect(fs.readFileSync(path.join(renewed.dir, "cert.pem"), "utf8")).toContain("BEGIN CERTIFICATE");
  }, 60_000);

  it("a decommissioned robot is refused", async () => {
    const d = await f.api("POST", "fleet/devices/robot-3/decommission");
    expect(d.status, JSON.stringify(d)).toBe(200);
    const code = await codeOf(
      obtainRos2Enclave({ identity: robots["robot-3"]!, enclave: "/perf/a", keystore: ks("robot-3") }),
    );
    expect(code).toBe("FR_ROS2_FLEET_DENIED");
    expect(fs.existsSync(ks("robot-3"))).toBe(false);
  }, 30_000);

  it("Cyclone DDS: the two robots' enclaves complete the secure handshake and exchange data", async () => {
    const r = await pingPong(
      f.dir,
      enclaveDir(ks("robot-1"), "/perf/a"),
      enclaveDir(ks("robot-2"), "/perf/b"),
      "fleet",
      7700,
    );
    expect(r.pingTrace).toMatch(/handshake succeeded/);
    expect(r.pongTrace).toMatch(/handshake succeeded/);
    expect(r.ping.out).toMatch(/size 12 mean [\d.]+us .* cnt [1-9]/);
    expect(r.ping.code).toBe(0);
  }, 40_000);

  it("revokes enclaves by API and on decommission; openssl and Cyclone DDS refuse the revoked one", async () => {
    const unknown = await f.api("POST", "ros2/enclaves/revoke", { device_id: "robot-99" });
    expect([unknown.status, unknown.code]).toEqual([404, "FR_DEVICE_NOT_FOUND"]);
    const noEnclave = await f.api("POST", "ros2/enclaves/revoke", {
      device_id: "robot-1",
      enclave: "/perf/z",
    });
    expect([noEnclave.status, noEnclave.code]).toEqual([404, "FR_NOT_FOUND"]);
    const badField = await f.api("POST", "ros2/enclaves/revoke", { device: "robot-1" });
    expect([badField.status, badField.code]).toEqual([400, "FR_VALIDATION"]);

    // robot-1's /perf/a was issued twice (first and --replace): both certificates are revoked.
    const one = await f.api("POST", "ros2/enclaves/revoke", {
      device_id: "robot-1",
      enclave: "/perf/a",
      reason: "keyCompromise",
    });
    expect(one.status, JSON.stringify(one)).toBe(200);
    const d1 = one.data as { revoked_serials: string[]; serials: string[]; crl_number: number };
    expect(d1.revoked_serials).toHaveLength(2);
    const again = await f.api("POST", "ros2/enclaves/revoke", { device_id: "robot-1" });
    expect(again.data).toMatchObject({ revoked_serials: [], crl_number: null });
    expect((again.data as { serials: string[] }).serials.sort()).toEqual([...d1.revoked_serials].sort());

    // robot-4 gets an enclave, then is decommissioned (twice: idempotent): its enclave is revoked too.
    const four = await obtainRos2Enclave({
      identity: robots["robot-4"]!,
      enclave: "/perf/b",
      keystore: ks("robot-4"),
    });
    for (let i = 0; i < 2; i++) {
      const d = await f.api("POST", "fleet/devices/robot-4/decommission");
      expect(d.status, JSON.stringify(d)).toBe(200);
    }
    const audit = fs.readFileSync(f.t.server.core.paths.auditPath, "utf8");
    // Both API calls (the second revoked nothing) and the first decommission; the second revoked nothing.
    expect(audit.match(/"ros2\.revoke"/g)).toHaveLength(3);
    expect(audit).toMatch(/"ros2\.revoke"[^\n]*"reason":"cessationOfOperation"/);

    // The CRL: DER without a token, PEM variant; signed by the identity CA, listing exactly the three.
    const der = await f.t.call("GET", "ros2/crl");
    expect([der.statusCode, der.headers["content-type"]]).toEqual([200, "application/pkix-crl"]);
    const pemRes = await f.t.call("GET", "ros2/crl/pem");
    expect(Buffer.from(pemRes.body.replace(/-----[^-]+-----|\s/g, ""), "base64")).toEqual(der.rawPayload);
    const dir1 = enclaveDir(ks("robot-1"), "/perf/a");
    const dir2 = enclaveDir(ks("robot-2"), "/perf/b");
    const idCa = path.join(dir2, "identity_ca.cert.pem");
    const crlFile = path.join(f.dir, "ros2-crl.pem");
    fs.writeFileSync(crlFile, pemRes.body);
    const text = execFileSync("openssl", ["crl", "-in", crlFile, "-CAfile", idCa, "-noout", "-text"], {
      stdio: "pipe",
    }).toString();
    expect(text).toMatch(/X509v3 CRL Number: *\n *[1-9]/);
    expect(text).toMatch(/X509v3 Authority Key Identifier/);
    expect(text).toMatch(/Next Update: /);
    const hex = (x: string) => x.toLowerCase().replace(/^0+/, "");
    const listed = [...text.matchAll(/Serial Number: ([0-9A-F]+)/g)].map((m) => hex(m[1]!));
    expect(listed.sort()).toEqual([...d1.revoked_serials, four.serial].map(hex).sort());
    const crlCheck = (ca: string) =>
      spawnSync("openssl", ["crl", "-in", crlFile, "-CAfile", ca, "-noout"], { encoding: "utf8" });
    const ok = crlCheck(idCa);
    expect([ok.status, ok.stderr.trim()]).toEqual([0, "verify OK"]);
    // Against the permissions CA (another key) the CRL does not verify.
    expect(crlCheck(path.join(dir2, "permissions_ca.cert.pem")).status).not.toBe(0);

    // The agent refreshes crl.pem everywhere: robot-2 through the CLI, robot-1 in process.
    const r = await cli(
      [
        "agent",
        "ros2-crl",
        "--keystore",
        ks("robot-2"),
        "--identity",
        robots["robot-2"]!,
        "--format",
        "json",
      ],
      {},
      { timeoutMs: 30_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ enclaves: 1 });
    await refreshRos2Crl({ keystore: ks("robot-1"), identity: robots["robot-1"]! });
    for (const file of [
      path.join(dir1, "crl.pem"),
      path.join(dir2, "crl.pem"),
      path.join(ks("robot-2"), "public", "crl.pem"),
    ]) {
      expect(fs.readFileSync(file, "utf8")).toBe(pemRes.body);
    }

    // openssl verify with the CRL: robot-1's certificate is revoked, robot-2's is fine.
    const check = (cert: string) => {
      try {
        return execFileSync(
          "openssl",
          ["verify", "-crl_check", "-CAfile", idCa, "-CRLfile", path.join(dir2, "crl.pem"), cert],
          { stdio: "pipe", encoding: "utf8" },
        );
      } catch (e) {
        return `failed: ${String((e as { stdout?: string }).stdout)}${String((e as { stderr?: string }).stderr)}`;
      }
    };
    expect(check(path.join(dir1, "cert.pem"))).toMatch(/failed:[\s\S]*certificate revoked/);
    expect(check(path.join(dir2, "cert.pem"))).toMatch(/: OK/);

    // Cyclone DDS: robot-2 with the refreshed crl.pem refuses robot-1.
    const dds = await pingPong(f.dir, dir2, dir1, "fleet-revoked", 8000, true);
    expect(dds.pingTrace).toMatch(/certificate revoked; subject: \/CN=\\\/perf\\\/a/);
    expect(dds.pingTrace).not.toMatch(/handshake succeeded/);
    expect(dds.ping.code).not.toBe(0);
  }, 90_000);
});

describe("fleet provisioning with CAs cross-signed by the fleet root (ca_source pki)", () => {
  let f: Fleet;
  let robots: Record<string, string>;
  let store: string;

  beforeAll(async () => {
    ({ f, robots } = await fleetWithRobots(["robot-9"]));
    store = path.join(f.dir, "robot-9", "keystore");
    const c = await f.api("POST", "ros2/config", {
      ca_source: "pki",
      issuer_ref: "default",
      read_access_control: false,
      write_access_control: false,
    });
    expect(c.status, JSON.stringify(c)).toBe(200);
    await f.api("POST", "ros2/policies/robots", { policy: POLICY });
    await f.api("POST", "ros2/assignments/r9", { policy: "robots", device_id: "robot-9" });
    for (const e of ["/perf/a", "/perf/b"])
      await obtainRos2Enclave({ identity: robots["robot-9"]!, enclave: e, keystore: store });
  }, 60_000);

  it("the enclave chain is enclave → ROS 2 identity CA (intermediate) → fleet root", async () => {
    expect((await verified(store)).problems).toEqual([]);
    const root = path.join(f.dir, "root.pem");
    const rootPem = (await f.t.call("GET", "pki/ca/pem")).body;
    fs.writeFileSync(root, rootPem);
    const chain = path.join(store, "public", "identity_ca.chain.pem");
    const cert = path.join(enclaveDir(store, "/perf/a"), "cert.pem");
    const out = execFileSync("openssl", [
      "verify",
      "-CAfile",
      root,
      "-untrusted",
      chain,
      "-show_chain",
      cert,
    ]).toString();
    expect(out).toMatch(/OK/);
    expect(out).toMatch(/depth=1: CN = Fleetroot ROS 2 Identity CA \(untrusted\)/);
    expect(out).toMatch(/depth=2: CN = Fleet Test Root/);
    // The cross-certificate is one of the PKI's issued certificates.
    const certs = await f.api("GET", "pki/certs?list=true");
    expect(((certs.data as { keys: string[] }).keys ?? []).length).toBeGreaterThanOrEqual(3);
  });

  it("Cyclone DDS refuses the intermediate as IdentityCA and accepts the self-signed twin", async () => {
    const a = enclaveDir(store, "/perf/a");
    const intermediate = path.join(f.dir, "identity-intermediate.pem");
    const chainText = fs.readFileSync(path.join(store, "public", "identity_ca.chain.pem"), "utf8");
    fs.writeFileSync(
      intermediate,
      /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n?/.exec(chainText)![0],
    );
    const trace = path.join(f.dir, "partial.log");
    const refused = await ddsperf(["-D", "2", "pong"], ddsConfig(a, trace, 7800, intermediate), 10_000);
    expect(refused.code).not.toBe(0);
    expect(refused.out + fs.readFileSync(trace, "utf8")).toMatch(
      /Certificate not valid: error: unable to get issuer certificate/,
    );

    const r = await pingPong(f.dir, a, enclaveDir(store, "/perf/b"), "twin", 7900);
    expect(r.pingTrace).toMatch(/handshake succeeded/);
    expect(r.pongTrace).toMatch(/handshake succeeded/);
    expect(r.ping.code).toBe(0);
  }, 40_000);
});
