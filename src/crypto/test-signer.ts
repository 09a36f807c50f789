/**
 * Test-only Signer over node:crypto KeyObjects, so src/crypto tests do not depend on src/keys (which sits
 * above crypto). It follows the Signer contract: DER ECDSA, Ed25519 over the message, RSA PKCS#1 v1.5 or
 * PSS with salt = hash length.
 */
import { type KeyObject, constants, generateKeyPairSync, sign } from "node:crypto";
import type { KeyAlgorithm, SignatureScheme, Signer } from "../keys/types.js";

const defaults: Record<KeyAlgorithm, SignatureScheme> = {
  "ecdsa-p256": "ecdsa-sha256",
  "ecdsa-p384": "ecdsa-sha384",
  ed25519: "ed25519",
  "rsa-2048": "rsa-pkcs1-sha256",
  "rsa-3072": "rsa-pkcs1-sha256",
};

export interface TestKey {
  readonly signer: Signer;
  readonly privateKey: KeyObject;
  /** PKCS#8 PEM, for peers such as openssl that need the key in a file. */
  readonly privatePem: string;
}

function generate(algorithm: KeyAlgorithm): { privateKey: KeyObject; publicKey: KeyObject } {
  switch (algorithm) {
    case "ecdsa-p256":
      return generateKeyPairSync("ec", { namedCurve: "P-256" });
    case "ecdsa-p384":
      return generateKeyPairSync("ec", { namedCurve: "P-384" });
    case "ed25519":
      return generateKeyPairSync("ed25519");
    case "rsa-2048":
      return generateKeyPairSync("rsa", { modulusLength: 2048 });
    case "rsa-3072":
      return generateKeyPairSync("rsa", { modulusLength: 3072 });
  }
}

export function signerFor(
  privateKey: KeyObject,
  publicKey: KeyObject,
  algorithm: KeyAlgorithm,
  defaultScheme: SignatureScheme = defaults[algorithm],
): Signer {
  return {
    uri: `test:${algorithm}`,
    algorithm,
    publicKey: publicKey.export({ format: "der", type: "spki" }),
    defaultScheme,
    sign(data, scheme = defaultScheme) {
      const hash = scheme.endsWith("384") ? "sha384" : "sha256";
      if (scheme === "ed25519") return Promise.resolve(sign(null, data, privateKey));
      if (scheme.startsWith("rsa-pss")) {
        const saltLength = hash === "sha384" ? 48 : 32;
        return Promise.resolve(
          sign(hash, data, { key: privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength }),
        );
      }
      return Promise.resolve(sign(hash, data, privateKey));
    },
  };
}

/** A fresh key of the given algorithm and a Signer over it. */
export function testKey(algorithm: KeyAlgorithm, defaultScheme?: SignatureScheme): TestKey {
  const { privateKey, publicKey } = generate(algorithm);
  return {
    signer: signerFor(privateKey, publicKey, algorithm, defaultScheme),
    privateKey,
    privatePem: privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
  };
}
