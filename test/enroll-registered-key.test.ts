import { X509Certificate, createPublicKey } from "node:crypto";
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

  it("refuses a CSR not signed by a registered key", async () => {
    await expect(
      enrollDevice({ server: f.url, provisioner: "keys", out: out(), proof: { type: "key", uri: otherUri } }),
    ).rejects.toMatchObject({
      status: 403,
      code: "FR_ENROLL_DENIED",
    });
  });
});
