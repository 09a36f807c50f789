// A token that lacks mechanisms. SoftHSM2 reads `slots.mechanisms` once per process, so this lives in its
// own test file (vitest runs each file in its own process).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { configureSoftHsm, softHsmToken, type SoftHsmToken } from "../../test/helpers/softhsm.js";
import { FleetError } from "../errors/index.js";
import { createKeyManager, type KeyManager, verifySignature } from "./index.js";
import { mapPkcs11Error } from "./pkcs11/errors.js";
import { pkcs11js } from "./pkcs11/lib.js";

let token: SoftHsmToken;
let km: KeyManager;

beforeAll(async () => {
  // Everything Fleetroot uses except EdDSA and RSA-PSS with SHA-256.
  configureSoftHsm({
    mechanisms: [
      "CKM_EC_KEY_PAIR_GEN",
      "CKM_ECDSA",
      "CKM_RSA_PKCS_KEY_PAIR_GEN",
      "CKM_SHA256_RSA_PKCS",
      "CKM_SHA384_RSA_PKCS",
      "CKM_SHA384_RSA_PKCS_PSS",
      "CKM_AES_KEY_GEN",
      "CKM_AES_GCM",
      "CKM_RSA_PKCS_OAEP",
    ],
  });
  token = await softHsmToken("limited");
  km = createKeyManager();
});

afterAll(async () => {
  await km.close();
});

async function codeOf(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  const e: unknown = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(FleetError);
  return { code: (e as FleetError).code, message: (e as FleetError).message };
}

describe("a token without some mechanisms", () => {
  it("refuses Ed25519 generation with FR_KEY_MECHANISM naming the mechanism and token", async () => {
    const { code, message } = await codeOf(km.generate(token.uri("ed"), "ed25519"));
    expect(code).toBe("FR_KEY_MECHANISM");
    expect(message).toContain("CKM_EC_EDWARDS_KEY_PAIR_GEN");
    expect(message).toContain('"limited"');
  });

  it("still serves the algorithms it supports, and refuses only the missing scheme", async () => {
    const ec = await km.generate(token.uri("ec"), "ecdsa-p256");
    const data = Buffer.from("limited token");
    expect(verifySignature(ec.publicKey, "ecdsa-sha256", data, await ec.sign(data))).toBe(true);

    const rsa = await km.generate(token.uri("rsa"), "rsa-2048");
    expect(
      verifySignature(rsa.publicKey, "rsa-pss-sha384", data, await rsa.sign(data, "rsa-pss-sha384")),
    ).toBe(true);
    const { code, message } = await codeOf(rsa.sign(data, "rsa-pss-sha256"));
    expect(code).toBe("FR_KEY_MECHANISM");
    expect(message).toContain("CKM_SHA256_RSA_PKCS_PSS");
  });
});

describe("PKCS#11 return codes", () => {
  it("map to the catalog", () => {
    const err = (name: string) =>
      new pkcs11js.Pkcs11Error(name, (pkcs11js as unknown as Record<string, number>)[name]!, "C_X");
    expect(mapPkcs11Error(err("CKR_MECHANISM_INVALID"), "x").code).toBe("FR_KEY_MECHANISM");
    expect(mapPkcs11Error(err("CKR_PIN_INCORRECT"), "x").code).toBe("FR_KEY_PIN");
    expect(mapPkcs11Error(err("CKR_PIN_LOCKED"), "x").code).toBe("FR_KEY_PIN");
    expect(mapPkcs11Error(err("CKR_TOKEN_NOT_PRESENT"), "x").code).toBe("FR_KEY_TOKEN");
    expect(mapPkcs11Error(err("CKR_DEVICE_ERROR"), "x").code).toBe("FR_KEY_BACKEND");
  });
});
