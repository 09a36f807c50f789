import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { enrollDevice } from "../src/agent/enroll.js";
import { readConfig, readPair } from "../src/agent/files.js";
import { renewOnce, runAgent } from "../src/agent/run.js";
import { createKeyManager, publicKeyPem } from "../src/keys/index.js";
import { type Fleet, startFleet } from "./enroll-fixture.js";
import { type SoftHsmToken, softHsmToken } from "./helpers/softhsm.js";

const spkiOf = (pem: string) => new X509Certificate(pem).publicKey.export({ format: "der", type: "spki" });

describe("agent renewal over mutual TLS with the device key in SoftHSM2 (OpenSSL PKCS#11 engine)", () => {
  let f: Fleet;
  let tok: SoftHsmToken;
  const spki = new Map<string, Buffer>();
  beforeAll(async () => {
    tok = await softHsmToken("fr-renew-p11");
    const km = createKeyManager();
    const pems: [string, string][] = [];
    for (const id of ["p11-1", "p11-2"]) {
      const s = await km.generate(tok.uri(id), "ecdsa-p256");
      spki.set(id, Buffer.from(s.publicKey));
      pems.push([id, publicKeyPem(s)]);
    }
    // Closed before the agent opens the token: one PKCS#11 user at a time in this process.
    await km.close();
    f = await startFleet({ tls: true });
    await f.api("POST", "fleet/provisioners/keys", { type: "registered-key", role: "device" });
    for (const [id, pem] of pems) {
      const r = await f.api("POST", "fleet/provisioners/keys/keys", { device_id: id, public_key: pem });
      expect(r.status, JSON.stringify(r)).toBe(200);
    }
  });
  afterAll(async () => f?.close());

  const hookFile = join(mkdtempSync(join(tmpdir(), "fr-agent-hook-")), "hook.env");
  async function enrolled(id: string, reloadCmd?: string): Promise<string> {
    const dir = mkdtempSync(join(tmpdir(), "fr-agent-p11-"));
    const r = await enrollDevice({
      server: f.url,
      caCert: f.tlsCa,
      provisioner: "keys",
      out: dir,
      proof: { type: "key", uri: tok.uri(id) },
      ...(reloadCmd ? { reloadCmd } : {}),
    });
    expect(r.deviceId).toBe(id);
    return dir;
  }

  let dir1 = "";
  it("the agent renews by itself when time moves forward; the key stays in the token", async () => {
    dir1 = await enrolled("p11-1", `env | grep '^FLEETROOT_KEY' > ${hookFile}`);
    const first = await readPair(dir1);
    let done = false;
    const run = runAgent({
      out: dir1,
      clock: f.clock,
      once: true,
      sleep: () => new Promise((r) => setTimeout(r, 10)),
    }).then(() => {
      done = true;
    });
    await new Promise((r) => setTimeout(r, 100));
    expect(done).toBe(false); // not due yet
    f.clock.advance(44 * 60_000); // past 2/3 of the role's 1h (+5 % jitter at most)
    await run;

    const renewed = await readPair(dir1);
    expect(renewed.state.serial).not.toBe(first.state.serial);
    expect(renewed.certPem).not.toBe(first.certPem);
    // Same key, still only a reference to it: no generation ever held key material.
    expect(renewed.state.key).toEqual({ uri: tok.uri("p11-1") });
    expect(spkiOf(renewed.certPem).equals(spki.get("p11-1")!)).toBe(true);
    for (const g of readdirSync(dir1).filter((n) => n.startsWith("gen-"))) {
      expect(existsSync(join(dir1, g, "key.pem"))).toBe(false);
      expect(readFileSync(join(dir1, g, "key.uri"), "utf8").trim()).toBe(tok.uri("p11-1"));
    }
    // The reload hook is told where the key is: the key.uri file and the URI without its PIN.
    const hookEnv = readFileSync(hookFile, "utf8");
    expect(hookEnv).toMatch(/^FLEETROOT_KEY=.*key\.uri$/m);
    expect(hookEnv).toMatch(/^FLEETROOT_KEY_URI=pkcs11:/m);
    expect(hookEnv).not.toContain("pin-value");
    const dev = (await f.api("GET", "fleet/devices/p11-1")).data as {
      certificates: { serial_number: string; current: boolean }[];
    };
    expect(dev.certificates.length).toBe(2);
    // The token says the private key is sensitive and was never extractable.
    const objects = execFileSync(
      "pkcs11-tool",
      [
        "--module",
        tok.module,
        "--token-label",
        tok.label,
        "--login",
        "--pin",
        tok.pin,
        "-O",
        "--type",
        "privkey",
      ],
      { encoding: "utf8", env: process.env, timeout: 30_000 },
    );
    const entry = objects.split(/(?=Private Key Object)/).find((o) => o.includes("label:      p11-1"));
    expect(entry).toMatch(/never extractable/);
    expect(entry).toMatch(/\bsensitive/);
  });

  it("a renewal with a revoked certificate is refused", async () => {
    const serial = (await readPair(dir1)).state.serial;
    const rev = await f.api("POST", "pki/revoke", { serial_number: serial });
    expect(rev.status, JSON.stringify(rev)).toBe(200);
    await expect(renewOnce(dir1, await readConfig(dir1))).rejects.toMatchObject({
      status: 403,
      code: "FR_RENEW_DENIED",
    });
    expect((await readPair(dir1)).state.serial).toBe(serial);
  });

  it("rekeys away from the token: the HSM key authenticates, the new key is a software key", async () => {
    const dir = await enrolled("p11-2");
    const before = await readPair(dir);
    const r = await renewOnce(dir, { ...(await readConfig(dir)), rekey: "ecdsa-p256" });
    const after = await readPair(dir);
    expect(r.serial).not.toBe(before.state.serial);
    expect(after.state.key).toBe("file");
    expect(after.keyPem).toMatch(/BEGIN PRIVATE KEY/);
    expect(spkiOf(after.certPem).equals(spki.get("p11-2")!)).toBe(false);
  });

  it("a key the engine cannot find is a clear local error that never shows the PIN", async () => {
    const dir = await enrolled("p11-2");
    const cur = join(dir, "current");
    const state = JSON.parse(readFileSync(join(cur, "state.json"), "utf8")) as Record<string, unknown>;
    writeFileSync(join(cur, "state.json"), JSON.stringify({ ...state, key: { uri: tok.uri("missing") } }));
    // rekey: the CSR key is fresh, so only the engine looks for the missing key.
    const err = (await renewOnce(dir, { ...(await readConfig(dir)), rekey: "ecdsa-p256" }).catch(
      (e: unknown) => e,
    )) as Error & { code?: string };
    expect(err.code).toBe("FR_AGENT_STATE");
    expect(err.message).toMatch(
      /PKCS#11 engine cannot use the device key pkcs11:token=fr-renew-p11;object=missing/,
    );
    expect(err.message).not.toContain(tok.pin);
  });
});
