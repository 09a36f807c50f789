import { createHash, generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildDeviceCsr, generateSoftwareKey } from "../src/agent/enroll-crypto.js";
import { enrollDevice } from "../src/agent/enroll.js";
import { psaBinding } from "../src/enroll/index.js";
import { type Fleet, startFleet } from "./enroll-fixture.js";

/**
 * The test's own PSA token maker: the agent runs it as --psa-token-cmd (with PSA_SPEC naming a JSON spec),
 * and the tests import it for tokens sent straight to the API. Tokens are signed with the test's key.
 */
// cborg is ESM-only (no require entry): point the child script at its module file.
const cborg = new URL("../node_modules/cborg/cborg.js", import.meta.url).href;
const maker = `
import { encode } from ${JSON.stringify(cborg)};
import { createPrivateKey, sign } from "node:crypto";
import { readFileSync } from "node:fs";
export function buildToken(spec, challengeHex) {
  const enc = { encode: (v) => Buffer.from(encode(v)) };
  const K = spec.profile === "PSA_IOT_PROFILE_1"
    ? { profile: -75000, nonce: -75008, inst: -75009, impl: -75003, lc: -75002, sw: -75006, client: -75001 }
    : { profile: 265, nonce: 10, inst: 256, impl: 2396, lc: 2395, sw: 2399, client: 2394 };
  const claims = new Map([
    [K.profile, spec.profile], [K.client, 1], [K.lc, spec.lifecycle],
    [K.impl, Buffer.from(spec.implementationId, "hex")], [K.inst, Buffer.from(spec.instanceId, "hex")],
    [K.nonce, Buffer.from(spec.nonce ?? challengeHex, "hex")],
    [K.sw, spec.components.map((c) => new Map([[1, c.type], [2, Buffer.from(c.value, "hex")], [5, Buffer.from(c.signer, "hex")]]))],
  ]);
  const payload = enc.encode(claims);
  const prot = enc.encode(new Map([[1, -7]]));
  const toSign = enc.encode(["Signature1", prot, Buffer.alloc(0), payload]);
  const sig = sign("sha256", toSign, { key: createPrivateKey(spec.key), dsaEncoding: "ieee-p1363" });
  if (spec.corruptSignature) sig[5] ^= 1;
  // Tag 18 (COSE_Sign1): major type 6 with the tag number in the initial byte (0xd2), then the array.
  return Buffer.concat([Buffer.from([0xd2]), enc.encode([prot, new Map(), payload, sig])]);
}
if (process.env.PSA_SPEC) {
  const spec = JSON.parse(readFileSync(process.env.PSA_SPEC, "utf8"));
  process.stdout.write(buildToken(spec, process.env.FLEETROOT_PSA_CHALLENGE).toString("base64"));
}
`;

interface Spec {
  profile: string;
  lifecycle: number;
  implementationId: string;
  instanceId: string;
  nonce?: string;
  components: { type: string; value: string; signer: string }[];
  key: string;
  corruptSignature?: boolean;
}

describe("psa provisioner (Arm PSA attestation token), end to end through the agent", () => {
  let f: Fleet;
  let work = "";
  let makerFile = "";
  let buildToken: (spec: Spec, challengeHex: string) => Buffer;
  const attest = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const instanceId =
    "01" +
    createHash("sha256")
      .update(attest.publicKey.export({ format: "der", type: "spki" }))
      .digest("hex");
  const bl = { type: "BL", value: "aa".repeat(32), signer: "51".repeat(32) };
  const app = { type: "PRoT", value: "bb".repeat(32), signer: "51".repeat(32) };
  const base = (over: Partial<Spec> = {}): Spec => ({
    profile: "http://arm.com/psa/2.0.0",
    lifecycle: 0x3000,
    implementationId: "cc".repeat(32),
    instanceId,
    components: [bl, app],
    key: attest.privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
    ...over,
  });

  beforeAll(async () => {
    f = await startFleet();
    work = mkdtempSync(join(tmpdir(), "fr-psa-"));
    makerFile = join(work, "maker.mjs");
    writeFileSync(makerFile, maker);
    buildToken = ((await import(pathToFileURL(makerFile).href)) as { buildToken: typeof buildToken })
      .buildToken;
    const p = await f.api("POST", "fleet/provisioners/psa", {
      type: "psa",
      role: "device",
      reference_values: [
        { measurement_value: bl.value, signer_id: bl.signer },
        { measurement_value: app.value, measurement_type: "PRoT" },
      ],
    });
    expect(p.status, JSON.stringify(p)).toBe(200);
    const k = await f.api("POST", "fleet/provisioners/psa/attestation-keys", {
      instance_id: instanceId,
      device_id: "psa-dev-1",
      public_key: attest.publicKey.export({ format: "pem", type: "spki" }).toString(),
    });
    expect(k.status, JSON.stringify(k)).toBe(200);
  });
  afterAll(async () => f?.close());

  const viaAgent = (spec: Spec) => {
    const specFile = join(work, `spec-${randomBytes(4).toString("hex")}.json`);
    writeFileSync(specFile, JSON.stringify(spec));
    return enrollDevice({
      server: f.url,
      provisioner: "psa",
      out: mkdtempSync(join(tmpdir(), "fr-agent-")),
      proof: { type: "psa", tokenCmd: `PSA_SPEC=${specFile} ${process.execPath} ${makerFile}` },
    });
  };

  it("enrolls with a fresh, secured token whose components match the reference values (both profiles)", async () => {
    const r = await viaAgent(base());
    expect(r.deviceId).toBe("psa-dev-1");
    const legacy = await viaAgent(base({ profile: "PSA_IOT_PROFILE_1" }));
    expect(legacy.deviceId).toBe("psa-dev-1");
    const dev = (await f.api("GET", "fleet/devices/psa-dev-1")).data as Record<string, unknown>;
    expect(dev.enrollment_method).toBe("psa");
    expect(dev.status).toBe("active");
  });

  it("refuses a foreign nonce, a bad signature, an unknown instance id, a non-secured lifecycle and an unknown measurement", async () => {
    const refused = { status: 403, code: "FR_ENROLL_ATTESTATION" };
    await expect(viaAgent(base({ nonce: randomBytes(32).toString("hex") }))).rejects.toMatchObject(refused);
    await expect(viaAgent(base({ corruptSignature: true }))).rejects.toMatchObject(refused);
    await expect(viaAgent(base({ instanceId: "01" + "77".repeat(32) }))).rejects.toMatchObject(refused);
    await expect(viaAgent(base({ lifecycle: 0x5000 }))).rejects.toMatchObject({
      ...refused,
      message: expect.stringMatching(/lifecycle/),
    });
    await expect(
      viaAgent(base({ components: [bl, { ...app, value: "dd".repeat(32) }] })),
    ).rejects.toMatchObject({
      ...refused,
      message: expect.stringMatching(/reference value/),
    });
  });

  it("refuses a stale nonce (expired before use) and a token bound to another key", async () => {
    const key = generateSoftwareKey("ecdsa-p256");
    const csr = await buildDeviceCsr(key.signer);
    const nonce = ((await f.api("POST", "fleet/enroll/nonce")).data as { nonce: string }).nonce;
    const token = buildToken(
      base(),
      psaBinding(Buffer.from(nonce, "base64url"), key.signer.publicKey).toString("hex"),
    );
    f.clock.advance(6 * 60_000);
    const stale = await f.t.call("POST", "fleet/enroll", {
      provisioner: "psa",
      csr,
      nonce,
      attestation_token: token.toString("base64"),
    });
    expect(stale.statusCode).toBe(400);
    expect(stale.json().code).toBe("FR_ENROLL_NONCE");

    const other = generateSoftwareKey("ecdsa-p256");
    const nonce2 = ((await f.api("POST", "fleet/enroll/nonce")).data as { nonce: string }).nonce;
    const bound = buildToken(
      base(),
      psaBinding(Buffer.from(nonce2, "base64url"), other.signer.publicKey).toString("hex"),
    );
    const wrongKey = await f.t.call("POST", "fleet/enroll", {
      provisioner: "psa",
      csr,
      nonce: nonce2,
      attestation_token: bound.toString("base64"),
    });
    expect(wrongKey.statusCode).toBe(403);
  });
});
