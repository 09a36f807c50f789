import { X509Certificate, createPublicKey, generateKeyPairSync } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { enrollDevice } from "../src/agent/enroll.js";
import { readPair } from "../src/agent/files.js";
import { createKeyManager, publicKeyPem } from "../src/keys/index.js";
import { type Fleet, startFleet } from "./enroll-fixture.js";
import { softHsmToken } from "./helpers/softhsm.js";

describe("registered-key provisioner, end to end through the agent (keys in SoftHSM2 and in a file)", () => {
  let f: Fleet;
  let hsmUri = "";
  let otherUri = "";
  let fileUri = "";
  beforeAll(async () => {
    const tok = await softHsmToken("fr-regkey");
    hsmUri = tok.uri("device-key");
    otherUri = tok.uri("other-key");
    const work = mkdtempSync(join(tmpdir(), "fr-regkey-"));
    fileUri = `file:${join(work, "device.pem")}`;
    const km = createKeyManager();
    const hsm = await km.generate(hsmUri, "ecdsa-p256");
    await km.generate(otherUri, "ecdsa-p256");
    const file = await km.generate(fileUri, "ecdsa-p256");
    await km.close();
    f = await startFleet();
    await f.api("POST", "fleet/provisioners/keys", { type: "registered-key", role: "device" });
    for (const [id, s] of [
      ["hsm-dev", hsm],
      ["file-dev", file],
    ] as const) {
      const r = await f.api("POST", "fleet/provisioners/keys/keys", {
        device_id: id,
        public_key: publicKeyPem(s),
      });
      expect(r.status, JSON.stringify(r)).toBe(200);
    }
    expect(((await f.api("GET", "fleet/devices/hsm-dev")).data as { status: string }).status).toBe("pending");
  });
  afterAll(async () => f?.close());

  const out = () => mkdtempSync(join(tmpdir(), "fr-agent-"));

  it("enrolls with the registered key in the HSM: the certificate carries that key, which never left the token", async () => {
    const dir = out();
    const r = await enrollDevice({
      server: f.url,
      provisioner: "keys",
      out: dir,
      proof: { type: "key", uri: hsmUri },
    });
    expect(r.deviceId).toBe("hsm-dev");
    const pair = await readPair(dir);
    expect(pair.keyPem).toBeUndefined();
    expect(readFileSync(join(dir, "current", "key.uri"), "utf8").trim()).toBe(hsmUri);
    const km = createKeyManager();
    const signer = await km.open(hsmUri);
    const spki = new X509Certificate(pair.certPem).publicKey.export({ format: "der", type: "spki" });
    expect(spki.equals(Buffer.from(signer.publicKey))).toBe(true);
    await km.close();
  });

  it("enrolls with a registered key in a file", async () => {
    const r = await enrollDevice({
      server: f.url,
      provisioner: "keys",
      out: out(),
      proof: { type: "key", uri: fileUri },
    });
    expect(r.deviceId).toBe("file-dev");
    expect(createPublicKey(readFileSync(fileUri.slice(5))).asymmetricKeyType).toBe("ec");
  });

  it("refuses to register a private key or a key no CSR can carry (both were accepted)", async () => {
    const register = (public_key: string, device_id: string) =>
      f.api("POST", "fleet/provisioners/keys/keys", { device_id, public_key });
    const priv = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
    const pkcs8 = priv.export({ format: "pem", type: "pkcs8" }).toString();
    expect(await register(pkcs8, "priv-dev")).toMatchObject({
      status: 400,
      code: "FR_VALIDATION",
      errors: [expect.stringMatching(/holds a private key/)],
    });
    const k1 = generateKeyPairSync("ec", { namedCurve: "secp256k1" }).publicKey;
    expect(await register(k1.export({ format: "pem", type: "spki" }).toString(), "k1-dev")).toMatchObject({
      status: 400,
      code: "FR_VALIDATION",
      errors: [expect.stringMatching(/curve secp256k1/)],
    });
    // Nothing was registered: no pending device was created.
    expect((await f.api("GET", "fleet/devices/priv-dev")).status).toBe(404);
    expect((await f.api("GET", "fleet/devices/k1-dev")).status).toBe(404);
  });

  it("refuses a CSR not signed by a registered key", async () => {
    await expect(
      enrollDevice({ server: f.url, provisioner: "keys", out: out(), proof: { type: "key", uri: otherUri } }),
    ).rejects.toMatchObject({
      status: 403,
      code: "FR_ENROLL_DENIED",
    });
  });
});
