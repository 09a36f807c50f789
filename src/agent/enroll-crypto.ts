/**
 * Device-side keys and CSRs. A fresh operational key is made in software (node:crypto) unless the
 * device's key lives behind a key URI (file: or pkcs11:), in which case the CSR is signed there and the
 * private key never leaves its store.
 */
import { type KeyObject, createPublicKey, generateKeyPairSync, sign as cryptoSign } from "node:crypto";
import {
  bitString,
  encode,
  encodeName,
  implicitConstructed,
  integer,
  seq,
  signatureAlgorithm,
  toPem,
} from "../crypto/index.js";
import type { KeyAlgorithm, SignatureScheme, Signer } from "../keys/index.js";

const HASH: Record<SignatureScheme, string | null> = {
  "ecdsa-sha256": "sha256",
  "ecdsa-sha384": "sha384",
  ed25519: null,
  "rsa-pkcs1-sha256": "sha256",
  "rsa-pkcs1-sha384": "sha384",
  "rsa-pss-sha256": "sha256",
  "rsa-pss-sha384": "sha384",
};

const DEFAULT_SCHEME: Record<KeyAlgorithm, SignatureScheme> = {
  "ecdsa-p256": "ecdsa-sha256",
  "ecdsa-p384": "ecdsa-sha384",
  ed25519: "ed25519",
  "rsa-2048": "rsa-pkcs1-sha256",
  "rsa-3072": "rsa-pkcs1-sha256",
};

/** A Signer over an in-memory private key (the agent writes the key to disk itself, atomically). */
export function softwareSigner(privateKey: KeyObject, algorithm: KeyAlgorithm): Signer {
  const publicKey = createPublicKey(privateKey).export({ format: "der", type: "spki" });
  return {
    uri: "memory:",
    algorithm,
    publicKey,
    defaultScheme: DEFAULT_SCHEME[algorithm],
    sign(data, scheme = DEFAULT_SCHEME[algorithm]) {
      const pss = scheme.startsWith("rsa-pss");
      const key = pss
        ? {
            key: privateKey,
            padding: 6 /* RSA_PKCS1_PSS_PADDING */,
            saltLength: scheme.endsWith("384") ? 48 : 32,
          }
        : privateKey;
      return Promise.resolve(new Uint8Array(cryptoSign(HASH[scheme], data, key)));
    },
  };
}

export function generateSoftwareKey(algorithm: KeyAlgorithm): { signer: Signer; pem: string } {
  const [type, params] =
    algorithm === "ecdsa-p256"
      ? (["ec", { namedCurve: "P-256" }] as const)
      : algorithm === "ecdsa-p384"
        ? (["ec", { namedCurve: "P-384" }] as const)
        : algorithm === "ed25519"
          ? (["ed25519", {}] as const)
          : (["rsa", { modulusLength: algorithm === "rsa-3072" ? 3072 : 2048 }] as const);
  const { privateKey } = generateKeyPairSync(type as "ec", params as { namedCurve: string });
  return {
    signer: softwareSigner(privateKey, algorithm),
    pem: privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
  };
}

/**
 * A PKCS#10 request (RFC 2986 4.1) with an empty subject and no attributes: the provisioner decides the
 * certificate's names, so the device asks for none.
 */
export async function buildDeviceCsr(signer: Signer): Promise<string> {
  const alg = signatureAlgorithm(signer);
  const info = encode(seq(integer(0), encodeName([]), signer.publicKey, implicitConstructed(0, [])));
  const sig = await signer.sign(info, alg.scheme);
  return toPem(encode(seq(info, alg.der, bitString(sig))), "CERTIFICATE REQUEST");
}
