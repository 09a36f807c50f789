/**
 * Interop with a real DDS implementation: Cyclone DDS 0.10 (`ddsperf`, Debian cyclonedds-tools) with its
 * security plugins loading a Fleetroot keystore. Loopback only, no multicast, every process bounded.
 * Each refusal is proven by the security plugin's own log line (its trace file or stderr).
 */
import { type ChildProcess, spawn } from "node:child_process";
import crypto, { X509Certificate } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { certificateParts, derFrom } from "../src/crypto/index.js";
import { createKeyManager } from "../src/keys/index.js";
import {
  type DdsGrant,
  type DdsRule,
  Ros2Keystore,
  createEnclave,
  enclaveDir,
  revokeEnclave,
  setPermissions,
  signSmime,
} from "../src/ros2/index.js";
import { systemClock } from "../src/util/clock.js";
import { cycloneSecurityConfig } from "./helpers/cyclonedds.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "fleetroot-ros2-dds-"));
const keys = createKeyManager();
let ks: Ros2Keystore;
/** A second keystore: its identity and permissions CAs are strangers to `ks`. */
let other: Ros2Keystore;
const running = new Set<ChildProcess>();
afterAll(async () => {
  for (const c of running) c.kill("SIGKILL");
  await keys.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** The plugins sit off the loader path in libddsc0debian/ under the multiarch directory. */
const TOPICS = ["DDSPerfRDataKS", "DDSPerfRPingKS", "DDSPerfRPongKS", "DDSPerfCPUStats"];
/** ddsperf is not a ROS node: grant its own topics; its pong endpoints use per-participant partitions. */
const ALLOW_DDSPERF: DdsRule = {
  qualifier: "ALLOW",
  domains: [0],
  publish: [{ topics: TOPICS, partitions: ["*"] }],
  subscribe: [{ topics: TOPICS, partitions: ["*"] }],
};

type EnclaveFile =
  | "cert.pem"
  | "key.pem"
  | "identity_ca.cert.pem"
  | "crl.pem"
  | "governance.p7s"
  | "permissions_ca.cert.pem"
  | "permissions.p7s";

interface Participant {
  readonly ks: Ros2Keystore;
  readonly enclave: string;
  /** Configure Security/Authentication/CRL with the enclave's crl.pem. */
  readonly crl?: boolean;
  /** Files taken from elsewhere than the enclave directory. */
  readonly files?: Partial<Record<EnclaveFile, string>>;
}

let configs = 0;
/**
 * A CYCLONEDDS_URI for `p`, tracing to `trace`. `portBase` (Discovery/Ports/Base, default 7400) keeps
 * concurrently running cases apart: peers are found only by unicast on 127.0.0.1 at that base's ports.
 */
function config(p: Participant, trace: string, portBase = 7400): string {
  const dir = enclaveDir(p.ks.root, p.enclave);
  const f = (n: EnclaveFile) => p.files?.[n] ?? path.join(dir, n);
  return cycloneSecurityConfig(path.join(tmp, `config-${++configs}.xml`), {
    cert: f("cert.pem"),
    identityCa: f("identity_ca.cert.pem"),
    key: f("key.pem"),
    ...(p.crl ? { crl: f("crl.pem") } : {}),
    governance: f("governance.p7s"),
    permissionsCa: f("permissions_ca.cert.pem"),
    permissions: f("permissions.p7s"),
    trace,
    portBase,
  });
}

interface Ddsperf {
  /** The trace file and everything written to stdout/stderr so far. */
  log(): string;
  readonly exited: Promise<number | null>;
  /** Kills the process and waits for it to exit. */
  stop(): Promise<number | null>;
}

function startDdsperf(args: string[], uri: string, trace: string, limitMs: number): Ddsperf {
  const child = spawn("ddsperf", args, {
    env: { PATH: process.env.PATH, CYCLONEDDS_URI: uri },
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.add(child);
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), limitMs);
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on("error", (e) => {
      clearTimeout(timer);
      running.delete(child);
      reject(new Error(`ddsperf failed to start (install cyclonedds-tools): ${e.message}`));
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      running.delete(child);
      resolve(code);
    });
  });
  return {
    log: () => (fs.existsSync(trace) ? fs.readFileSync(trace, "utf8") : "") + out,
    exited,
    stop: () => {
      child.kill("SIGKILL");
      return exited;
    },
  };
}

/** Polls `p`'s log until `re` matches (returns the line) — or fails when it exits or `limitMs` passes. */
async function waitForLine(p: Ddsperf, re: RegExp, limitMs = 10_000): Promise<string> {
  let gone = false;
  void p.exited.then(() => (gone = true));
  const deadline = Date.now() + limitMs;
  for (;;) {
    const exitedBefore = gone;
    const line = p
      .log()
      .split("\n")
      .find((l) => re.test(l));
    if (line !== undefined) return line;
    if (exitedBefore || Date.now() > deadline) {
      const tail = p.log().split("\n").slice(-15).join("\n");
      throw new Error(
        `no log line matching ${re} (${exitedBefore ? "exited" : "timed out"}); last lines:\n${tail}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** pong in the background, ping in front; returns ping's output and both traces. */
async function pingPong(ping: Participant, pong: Participant, tag: string) {
  const traces = { ping: path.join(tmp, `${tag}-ping.log`), pong: path.join(tmp, `${tag}-pong.log`) };
  const ponger = startDdsperf(["-D", "6", "pong"], config(pong, traces.pong), traces.pong, 15_000);
  await new Promise((r) => setTimeout(r, 300));
  const pinger = startDdsperf(
    ["-D", "4", "-Qminmatch:1", "ping", "10Hz"],
    config(ping, traces.ping),
    traces.ping,
    15_000,
  );
  const code = await pinger.exited;
  const out = pinger.log();
  await ponger.exited;
  const read = (f: string) => (fs.existsSync(f) ? fs.readFileSync(f, "utf8") : "");
  return { ping: { code, out }, pingTrace: read(traces.ping), pongTrace: read(traces.pong) };
}

/** Creates `name` in `store` with permissions for ddsperf's topics (plus `extra` rules placed first). */
async function ddsperfEnclave(store: Ros2Keystore, name: string, rules: DdsRule[] = [ALLOW_DDSPERF]) {
  const e = await createEnclave(store, name);
  const cert = new X509Certificate(fs.readFileSync(path.join(e.dir, "cert.pem")));
  const grant: DdsGrant = {
    name,
    subjectName: `CN=${name}`,
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
    defaultQualifier: "DENY",
    rules,
  };
  await setPermissions(store, name, { grants: [grant] });
  return e.dir;
}

/**
 * The first byte of a participant's GUID under DDS Security: bit 7 set, then the top bits of SHA-256 over
 * the certificate's subject name (DER) — the PKI-DH "adjusted participant key".
 */
function guidFirstByte(certPem: string): number {
  const subject = certificateParts(derFrom(certPem, "CERTIFICATE")).subject;
  const h = crypto.createHash("sha256").update(subject).digest();
  return 0x80 | (h[0]! >> 1);
}

beforeAll(async () => {
  ks = await Ros2Keystore.create(path.join(tmp, "ks"), {}, { keys, clock: systemClock });
  for (const name of ["/perf/a", "/perf/b"]) await ddsperfEnclave(ks, name);
}, 60_000);

describe("Cyclone DDS accepts a Fleetroot keystore", () => {
  it("two permitted participants complete the handshake and exchange data", async () => {
    const r = await pingPong({ ks, enclave: "/perf/a" }, { ks, enclave: "/perf/b" }, "ok");
    expect(r.pingTrace).toMatch(/handshake succeeded/);
    expect(r.pongTrace).toMatch(/handshake succeeded/);
    // ping prints round-trip statistics only for pongs it received.
    expect(r.ping.out).toMatch(/size 12 mean [\d.]+us .* cnt [1-9]/);
    expect(r.ping.code).toBe(0);
  }, 30_000);

  it("after enclave revoke and the CRL configured, the revoked participant is refused", async () => {
    await revokeEnclave(ks, "/perf/b");
    // b without a CRL still starts; a checks b's certificate against its CRL and refuses it.
    const remote = await pingPong(
      { ks, enclave: "/perf/a", crl: true },
      { ks, enclave: "/perf/b" },
      "revoked",
    );
    expect(remote.pingTrace).toMatch(/certificate revoked; subject: \/CN=\\\/perf\\\/b/);
    expect(remote.pingTrace).not.toMatch(/handshake succeeded/);
    expect(remote.ping.code).not.toBe(0);
    // b with the CRL refuses its own identity.
    const local = await pingPong(
      { ks, enclave: "/perf/a", crl: true },
      { ks, enclave: "/perf/b", crl: true },
      "revoked-local",
    );
    expect(local.pongTrace).toMatch(/validate_local_identity.*certificate revoked/);
  }, 40_000);
});

describe("Cyclone DDS refuses what the keystore does not allow", () => {
  const forgedGovernance = path.join(tmp, "forged-governance.p7s");

  beforeAll(async () => {
    other = await Ros2Keystore.create(path.join(tmp, "other"), {}, { keys, clock: systemClock });
    await ddsperfEnclave(other, "/perf/eve");
    // A DENY rule for ddsperf's ping topic ahead of the allow rule (as a policy's publish="DENY" maps).
    await ddsperfEnclave(ks, "/perf/deny", [
      {
        qualifier: "DENY",
        domains: [0],
        publish: [{ topics: ["DDSPerfRPingKS"], partitions: ["*"] }],
        subscribe: [],
      },
      ALLOW_DDSPERF,
    ]);
    // No grant for ddsperf's data topic: the default DENY applies.
    await ddsperfEnclave(ks, "/perf/no_grant", [
      {
        ...ALLOW_DDSPERF,
        publish: [{ topics: ["DDSPerfCPUStats"] }],
        subscribe: [{ topics: ["DDSPerfCPUStats"] }],
      },
    ]);
    // Tampered: the signed document inside permissions.p7s (what the plugin reads) edited to allow everything.
    const tampered = await ddsperfEnclave(ks, "/perf/tampered");
    for (const f of ["permissions.p7s", "permissions.xml"]) {
      const text = fs.readFileSync(path.join(tampered, f), "utf8");
      const edited = text.replace("<default>DENY</default>", "<default>ALLOW</default>");
      expect(edited).not.toBe(text);
      fs.writeFileSync(path.join(tampered, f), edited);
    }
    // Forged: the enclave signs its own permissions (and governance) with its key, whose certificate comes
    // from the identity CA — what a single sros2 CA would let it do.
    const forger = await ddsperfEnclave(ks, "/perf/forger");
    const key = await keys.open(`file:${path.join(forger, "key.pem")}`);
    const certDer = derFrom(fs.readFileSync(path.join(forger, "cert.pem"), "utf8"), "CERTIFICATE");
    const sign = (xml: string) => signSmime(xml, certDer, key, systemClock.now());
    fs.writeFileSync(
      path.join(forger, "permissions.p7s"),
      await sign(fs.readFileSync(path.join(forger, "permissions.xml"), "utf8")),
    );
    fs.writeFileSync(
      forgedGovernance,
      await sign(fs.readFileSync(ks.path("enclaves", "governance.xml"), "utf8")),
    );
  }, 60_000);

  /** One participant alone: the plugin refuses its own identity/permissions or its topic, and it exits. */
  async function refusedLocally(p: Participant, tag: string, portBase: number, re: RegExp) {
    const trace = path.join(tmp, `${tag}.log`);
    const d = startDdsperf(["-D", "5", "ping", "10Hz"], config(p, trace, portBase), trace, 10_000);
    try {
      const line = await waitForLine(d, re);
      return { line, code: await d.exited };
    } finally {
      await d.stop();
    }
  }

  /** `/perf/a` (permitted) answers pings from `intruder`; resolves with a's log line matching `re`. */
  async function refusedByPeer(intruder: Participant, tag: string, portBase: number, re: RegExp) {
    const traces = { a: path.join(tmp, `${tag}-a.log`), x: path.join(tmp, `${tag}-x.log`) };
    const a = startDdsperf(
      ["-D", "10", "pong"],
      config({ ks, enclave: "/perf/a" }, traces.a, portBase),
      traces.a,
      15_000,
    );
    const x = startDdsperf(
      ["-D", "10", "-Qminmatch:1", "ping", "10Hz"],
      config(intruder, traces.x, portBase),
      traces.x,
      15_000,
    );
    try {
      const line = await waitForLine(a, re);
      return { line, log: a.log() };
    } finally {
      await Promise.all([a.stop(), x.stop()]);
    }
  }

  it("refuses a foreign CA's certificate, denied and ungranted topics, tampered and forged permissions", async () => {
    // The participant with the smaller GUID sends the handshake request carrying its certificate, so a
    // validates eve's certificate (begin_handshake_reply) only if eve's GUID is below a's.
    expect(
      guidFirstByte(fs.readFileSync(path.join(enclaveDir(other.root, "/perf/eve"), "cert.pem"), "utf8")),
    ).toBeLessThan(
      guidFirstByte(fs.readFileSync(path.join(enclaveDir(ks.root, "/perf/a"), "cert.pem"), "utf8")),
    );
    const forger = enclaveDir(ks.root, "/perf/forger");
    // Independent cases, run at once, each on its own ports.
    const [foreign, deny, noGrant, tampered, forgedLocal, forgedRemote] = await Promise.all([
      refusedByPeer(
        { ks: other, enclave: "/perf/eve" },
        "foreign-ca",
        7500,
        /Begin handshake reply failed: Certificate not valid: error: unable to get local issuer certificate; subject: \/CN=\\\/perf\\\/eve/,
      ),
      refusedLocally(
        { ks, enclave: "/perf/deny" },
        "deny-rule",
        7600,
        /Local topic permission denied: DDSPerfRPingKS found in deny_rule/,
      ),
      refusedLocally(
        { ks, enclave: "/perf/no_grant" },
        "no-grant",
        7700,
        /Local topic permission denied: DDSPerfRDataKS denied by default rule/,
      ),
      refusedLocally(
        { ks, enclave: "/perf/tampered" },
        "tampered",
        7800,
        /Error occurred while validating local permissions: Failed to parse PKCS7 SMIME document: .*PKCS7_signatureVerify:digest failure/,
      ),
      refusedLocally(
        { ks, enclave: "/perf/forger" },
        "forged-local",
        7900,
        /Error occurred while validating local permissions: Failed to parse PKCS7 SMIME document: .*PKCS7_verify:certificate verify error.*unable to get local issuer certificate/,
      ),
      // The forger trusts its own signature (identity CA as its permissions CA) so it starts; a does not.
      refusedByPeer(
        {
          ks,
          enclave: "/perf/forger",
          files: {
            "permissions_ca.cert.pem": path.join(forger, "identity_ca.cert.pem"),
            "governance.p7s": forgedGovernance,
          },
        },
        "forged-remote",
        8000,
        /Could not get remote participant [0-9a-f:]+ permissions from plugin: Failed to parse PKCS7 SMIME document: .*PKCS7_verify:certificate verify error.*unable to get local issuer certificate/,
      ),
    ]);
    expect(foreign.log).not.toMatch(/handshake succeeded/);
    // A participant refused locally never creates its participant or topic: ddsperf exits with an error.
    for (const r of [deny, noGrant, tampered, forgedLocal]) expect(r.code).not.toBe(0);
    expect(forgedRemote.line).toMatch(/Verify error/);
  }, 40_000);
});
