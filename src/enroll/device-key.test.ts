import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { OPENSSL_EXPLICIT_P256, runPeer, tempDir } from "../crypto/test-helpers.js";
import { readDeviceKey } from "./device-key.js";
import { checkPossession, popMessage } from "./proof.js";

const dir = tempDir("fleetroot-device-key-");
afterAll(() => dir.remove());

/** A P-256 key whose SPKI carries the curve's explicit parameters, as openssl makes it on request. */
function explicitP256(): { spki: Buffer; pem: string } {
  const file = `${dir.path}/explicit.key`;
  const r = runPeer("openssl", ["genpkey", ...OPENSSL_EXPLICIT_P256, "-out", file]);
  expect(r.status, r.output).toBe(0);
  const pem = runPeer("openssl", ["pkey", "-in", file]).stdout;
  const spki = createPublicKey(createPrivateKey(pem)).export({ format: "der", type: "spki" });
  return { spki, pem };
}

describe("device keys", () => {
  it("refuses an EC key with explicit parameters, which node:crypto reports as a named P-256 key", () => {
    const { spki } = explicitP256();
    expect(createPublicKey({ key: spki, format: "der", type: "spki" }).asymmetricKeyDetails).toEqual({
      namedCurve: "prime256v1",
    });
    expect(readDeviceKey(spki).refused).toMatch(/explicit curve parameters/);
    expect(readDeviceKey(spki, "attest").refused).toMatch(/explicit curve parameters/);
  });

  it("accepts the named-curve encoding of the same curve", () => {
    const spki = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({
      format: "der",
      type: "spki",
    });
    expect(readDeviceKey(spki).refused).toBeUndefined();
  });

  it("refuses a proof of possession made with an explicit-parameter key (an IDevID's, say) as a key type, though it verifies", () => {
    const { spki, pem } = explicitP256();
    const nonce = randomBytes(32);
    const csrDer = randomBytes(64);
    const signature = sign("sha256", popMessage(nonce, csrDer), createPrivateKey(pem)).toString("base64");
    expect(() => checkPossession(spki, { signature }, nonce, csrDer, "the IDevID certificate's key")).toThrow(
      expect.objectContaining({
        code: "FR_ENROLL_DENIED",
        detail: expect.stringMatching(/IDevID certificate's key is an EC key with explicit curve parameters/),
      }),
    );
  });
});
