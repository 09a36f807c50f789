import { generateKeyPairSync, sign, constants, type KeyObject } from "node:crypto";
import type { KeyAlgorithm, SignatureScheme, Signer } from "../keys/types.js";

/** A software Signer straight from node:crypto, for audit tests only (the real ones come from src/keys). */
export function testSigner(algorithm: KeyAlgorithm = "ecdsa-p256", scheme?: SignatureScheme): Signer {
  const { privateKey, publicKey } = generate(algorithm);
  const defaultScheme = scheme ?? defaults[algorithm];
  return {
    uri: `test:${algorithm}`,
    algorithm,
    publicKey: publicKey.export({ type: "spki", format: "der" }),
    defaultScheme,
    sign: (data, s = defaultScheme) => Promise.resolve(signWith(privateKey, s, data)),
  };
}

const defaults: Record<KeyAlgorithm, SignatureScheme> = {
  "ecdsa-p256": "ecdsa-sha256",
  "ecdsa-p384": "ecdsa-sha384",
  ed25519: "ed25519",
  "rsa-2048": "rsa-pss-sha256",
  "rsa-3072": "rsa-pkcs1-sha384",
};

function generate(a: KeyAlgorithm): { privateKey: KeyObject; publicKey: KeyObject } {
  if (a === "ed25519") return generateKeyPairSync("ed25519");
  if (a.startsWith("rsa"))
    return generateKeyPairSync("rsa", { modulusLength: a === "rsa-2048" ? 2048 : 3072 });
  return generateKeyPairSync("ec", { namedCurve: a === "ecdsa-p256" ? "P-256" : "P-384" });
}

function signWith(key: KeyObject, s: SignatureScheme, data: Uint8Array): Uint8Array {
  const hash = s === "ed25519" ? null : s.endsWith("384") ? "sha384" : "sha256";
  if (s.startsWith("rsa-pss")) {
    return sign(hash, data, {
      key,
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength: hash === "sha384" ? 48 : 32,
    });
  }
  return sign(hash, data, { key, dsaEncoding: "der" });
}
