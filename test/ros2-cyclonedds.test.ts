/**
 * Interop with a real DDS implementation: Cyclone DDS 0.10 (`ddsperf`, Debian cyclonedds-tools) with its
 * security plugins loading a Fleetroot keystore. Loopback only, no multicast, every process bounded.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { X509Certificate } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKeyManager } from "../src/keys/index.js";
import {
  type DdsGrant,
  Ros2Keystore,
  createEnclave,
  revokeEnclave,
  setPermissions,
} from "../src/ros2/index.js";
import { systemClock } from "../src/util/clock.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "fleetroot-ros2-dds-"));
const keys = createKeyManager();
let ks: Ros2Keystore;
afterAll(async () => {
  await keys.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** The plugins sit off the loader path in libddsc0debian/ under the multiarch directory. */
function pluginDir(): string {
  for (const d of fs.readdirSync("/usr/lib")) {
    const p = path.join("/usr/lib", d, "libddsc0debian");
    if (fs.existsSync(path.join(p, "libdds_security_auth.so"))) return p;
  }
  throw new Error(
    "Cyclone DDS security plugins are missing: install cyclonedds-tools (scripts/install-test-deps.sh)",
  );
}

const TOPICS = ["DDSPerfRDataKS", "DDSPerfRPingKS", "DDSPerfRPongKS", "DDSPerfCPUStats"];

function config(enclave: string, trace: string, crl: boolean): string {
  const lib = pluginDir();
  const e = path.join(ks.root, "enclaves", ...enclave.split("/").filter(Boolean));
  const f = (n: string) => `file:${path.join(e, n)}`;
  const file = path.join(tmp, `${enclave.replaceAll("/", "_")}-${crl ? "crl" : "nocrl"}.xml`);
  fs.writeFileSync(
    file,
    `<CycloneDDS><Domain id="any">
  <General><Interfaces><NetworkInterface name="lo"/></Interfaces><AllowMulticast>false</AllowMulticast></General>
  <Discovery><Peers><Peer address="127.0.0.1"/></Peers><ParticipantIndex>auto</ParticipantIndex><MaxAutoParticipantIndex>40</MaxAutoParticipantIndex></Discovery>
  <Security>
    <Authentication>
      <Library path="${lib}/libdds_security_auth.so" initFunction="init_authentication" finalizeFunction="finalize_authentication"/>
      <IdentityCertificate>${f("cert.pem")}</IdentityCertificate>
      <IdentityCA>${f("identity_ca.cert.pem")}</IdentityCA>
      <PrivateKey>${f("key.pem")}</PrivateKey>
      ${crl ? `<CRL>${f("crl.pem")}</CRL>` : ""}
    </Authentication>
    <AccessControl>
      <Library path="${lib}/libdds_security_ac.so" initFunction="init_access_control" finalizeFunction="finalize_access_control"/>
      <Governance>${f("governance.p7s")}</Governance>
      <PermissionsCA>${f("permissions_ca.cert.pem")}</PermissionsCA>
      <Permissions>${f("permissions.p7s")}</Permissions>
    </AccessControl>
    <Cryptographic>
      <Library path="${lib}/libdds_security_crypto.so" initFunction="init_crypto" finalizeFunction="finalize_crypto"/>
    </Cryptographic>
  </Security>
  <Tracing><Verbosity>finest</Verbosity><OutputFile>${trace}</OutputFile></Tracing>
</Domain></CycloneDDS>`,
  );
  return `file://${file}`;
}

function ddsperf(
  args: string[],
  uri: string,
  limitMs: number,
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("ddsperf", args, {
      env: { PATH: process.env.PATH, CYCLONEDDS_URI: uri },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), limitMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(new Error(`ddsperf failed to start (install cyclonedds-tools): ${e.message}`));
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

/** pong in the background, ping in front; returns ping's output and both traces. */
async function pingPong(pinger: string, ponger: string, tag: string, crl: { ping: boolean; pong: boolean }) {
  const traces = { ping: path.join(tmp, `${tag}-ping.log`), pong: path.join(tmp, `${tag}-pong.log`) };
  const pong = ddsperf(["-D", "6", "pong"], config(ponger, traces.pong, crl.pong), 15_000);
  await new Promise((r) => setTimeout(r, 300));
  const ping = await ddsperf(
    ["-D", "4", "-Qminmatch:1", "ping", "10Hz"],
    config(pinger, traces.ping, crl.ping),
    15_000,
  );
  await pong;
  const read = (f: string) => (fs.existsSync(f) ? fs.readFileSync(f, "utf8") : "");
  return { ping, pingTrace: read(traces.ping), pongTrace: read(traces.pong) };
}

describe("Cyclone DDS accepts a Fleetroot keystore", () => {
  beforeAll(async () => {
    ks = await Ros2Keystore.create(path.join(tmp, "ks"), {}, { keys, clock: systemClock });
    for (const name of ["/perf/a", "/perf/b"]) {
      const e = await createEnclave(ks, name);
      const cert = new X509Certificate(fs.readFileSync(path.join(e.dir, "cert.pem")));
      // ddsperf is not a ROS node: grant its own topics; its pong endpoints use per-participant partitions.
      const grant: DdsGrant = {
        name,
        subjectName: `CN=${name}`,
        notBefore: new Date(cert.validFrom),
        notAfter: new Date(cert.validTo),
        defaultQualifier: "DENY",
        rules: [
          {
            qualifier: "ALLOW",
            domains: [0],
            publish: [{ topics: TOPICS, partitions: ["*"] }],
            subscribe: [{ topics: TOPICS, partitions: ["*"] }],
          },
        ],
      };
      await setPermissions(ks, name, { grants: [grant] });
    }
  }, 60_000);

  it("two permitted participants complete the handshake and exchange data", async () => {
    const r = await pingPong("/perf/a", "/perf/b", "ok", { ping: false, pong: false });
    expect(r.pingTrace).toMatch(/handshake succeeded/);
    expect(r.pongTrace).toMatch(/handshake succeeded/);
    // ping prints round-trip statistics only for pongs it received.
    expect(r.ping.out).toMatch(/size 12 mean [\d.]+us .* cnt [1-9]/);
    expect(r.ping.code).toBe(0);
  }, 30_000);

  it("after enclave revoke and the CRL configured, the revoked participant is refused", async () => {
    await revokeEnclave(ks, "/perf/b");
    // b without a CRL still starts; a checks b's certificate against its CRL and refuses it.
    const remote = await pingPong("/perf/a", "/perf/b", "revoked", { ping: true, pong: false });
    expect(remote.pingTrace).toMatch(/certificate revoked; subject: \/CN=\\\/perf\\\/b/);
    expect(remote.pingTrace).not.toMatch(/handshake succeeded/);
    expect(remote.ping.code).not.toBe(0);
    // b with the CRL refuses its own identity.
    const local = await pingPong("/perf/a", "/perf/b", "revoked-local", { ping: true, pong: true });
    expect(local.pongTrace).toMatch(/validate_local_identity.*certificate revoked/);
  }, 40_000);
});
