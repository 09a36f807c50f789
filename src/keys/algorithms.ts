import crypto, { type KeyObject } from "node:crypto";
import { fail } from "../errors/index.js";
import type { KeyAlgorithm, SignatureScheme, Signer } from "./types.js";

/** The schemes each algorithm can sign with; the first is its default. */
const schemesByAlgorithm: Record<KeyAlgorithm, readonly SignatureScheme[]> = {
  "ecdsa-p256": ["ecdsa-sha256", "ecdsa-sha384"],
  "ecdsa-p384": ["ecdsa-sha384", "ecdsa-sha256"],
  ed25519: ["ed25519"],
  "rsa-2048": ["rsa-pkcs1-sha256", "rsa-pss-sha256", "rsa-pkcs1-sha384", "rsa-pss-sha384"],
  "rsa-3072": ["rsa-pkcs1-sha256", "rsa-pss-sha256", "rsa-pkcs1-sha384", "rsa-pss-sha384"],
};

export function schemesFor(alg: KeyAlgorithm): SignatureScheme[] {
  return [...schemesByAlgorithm[alg]];
}

export function defaultSchemeFor(alg: KeyAlgorithm): SignatureScheme {
  return schemesByAlgorithm[alg][0] ?? fail("FR_INTERNAL", `no scheme for ${alg}`);
}

/** Resolves the scheme a sign() call uses and refuses one that does not fit the key. */
export function checkScheme(alg: KeyAlgorithm, scheme: SignatureScheme | undefined): SignatureScheme {
  if (scheme === undefined) return defaultSchemeFor(alg);
  if (!schemesByAlgorithm[alg].includes(scheme)) {
    fail(
      "FR_KEY_ALGORITHM",
      `a ${alg} key cannot sign with ${scheme}; use one of ${schemesFor(alg).join(", ")}`,
    );
  }
  return scheme;
}

export interface SchemeParams {
  readonly family: "ecdsa" | "ed25519" | "rsa-pkcs1" | "rsa-pss";
  /** Node digest name; null for Ed25519, which hashes internally. */
  readonly hash: "sha256" | "sha384" | null;
}

export function schemeParams(scheme: SignatureScheme): SchemeParams {
  switch (scheme) {
    case "ecdsa-sha256":
      return { family: "ecdsa", hash: "sha256" };
    case "ecdsa-sha384":
      return { family: "ecdsa", hash: "sha384" };
    case "ed25519":
      return { family: "ed25519", hash: null };
    case "rsa-pkcs1-sha256":
      return { family: "rsa-pkcs1", hash: "sha256" };
    case "rsa-pkcs1-sha384":
      return { family: "rsa-pkcs1", hash: "sha384" };
    case "rsa-pss-sha256":
      return { family: "rsa-pss", hash: "sha256" };
    case "rsa-pss-sha384":
      return { family: "rsa-pss", hash: "sha384" };
  }
}

const hashLength = { sha256: 32, sha384: 48 } as const;

/** node:crypto sign/verify arguments for a scheme (PSS salt = hash length, MGF1 with the same hash). */
export function nodeSignArgs(
  scheme: SignatureScheme,
  key: KeyObject,
): { algorithm: string | null; key: crypto.SignKeyObjectInput & crypto.VerifyKeyObjectInput } {
  const p = schemeParams(scheme);
  switch (p.family) {
    case "ecdsa":
      return { algorithm: p.hash, key: { key, dsaEncoding: "der" } };
    case "ed25519":
      return { algorithm: null, key: { key } };
    case "rsa-pkcs1":
      return { algorithm: p.hash, key: { key, padding: crypto.constants.RSA_PKCS1_PADDING } };
    case "rsa-pss":
      return {
        algorithm: p.hash,
        key: {
          key,
          padding: crypto.constants.RSA_PKCS1_PSS_PADDING,
          saltLength: p.hash === null ? 0 : hashLength[p.hash],
        },
      };
  }
}

/** Which Fleetroot algorithm a Node key (private or public) is, or FR_KEY_ALGORITHM. */
export function algorithmOf(key: KeyObject): KeyAlgorithm {
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails;
  if (type === "ed25519") return "ed25519";
  if (type === "ec") {
    if (details?.namedCurve === "prime256v1") return "ecdsa-p256";
    if (details?.namedCurve === "secp384r1") return "ecdsa-p384";
    fail(
      "FR_KEY_ALGORITHM",
      `EC curve ${details?.namedCurve ?? "unknown"} is not supported; use P-256 or P-384`,
    );
  }
  if (type === "rsa") {
    if (details?.modulusLength === 2048) return "rsa-2048";
    if (details?.modulusLength === 3072) return "rsa-3072";
    fail("FR_KEY_ALGORITHM", `RSA-${details?.modulusLength ?? "?"} is not supported; use RSA 2048 or 3072`);
  }
  return fail("FR_KEY_ALGORITHM", `key type ${type ?? "unknown"} is not supported`);
}

export function publicKeyFromSpki(spkiDer: Uint8Array): KeyObject {
  try {
    return crypto.createPublicKey({ key: Buffer.from(spkiDer), format: "der", type: "spki" });
  } catch (e) {
    return fail("FR_KEY_FORMAT", "the public key is not a valid SubjectPublicKeyInfo", { cause: e });
  }
}

/**
 * Verifies a signature made by any Signer. A scheme that does not fit the key, or a bad signature,
 * returns false; a malformed public key is FR_KEY_FORMAT.
 */
export function verifySignature(
  spkiDer: Uint8Array,
  scheme: SignatureScheme,
  data: Uint8Array,
  sig: Uint8Array,
): boolean {
  const key = publicKeyFromSpki(spkiDer);
  let alg: KeyAlgorithm;
  try {
    alg = algorithmOf(key);
  } catch {
    return false;
  }
  if (!schemesByAlgorithm[alg].includes(scheme)) return false;
  const args = nodeSignArgs(scheme, key);
  try {
    return crypto.verify(args.algorithm, data, args.key, sig);
  } catch {
    return false;
  }
}

export function publicKeyPem(signer: Signer): string {
  return publicKeyFromSpki(signer.publicKey).export({ type: "spki", format: "pem" }).toString();
}

/** Parameters for node:crypto key generation. */
export function nodeKeyGenParams(
  alg: KeyAlgorithm,
): ["ec", { namedCurve: string }] | ["ed25519", Record<string, never>] | ["rsa", { modulusLength: number }] {
  switch (alg) {
    case "ecdsa-p256":
      return ["ec", { namedCurve: "P-256" }];
    case "ecdsa-p384":
      return ["ec", { namedCurve: "P-384" }];
    case "ed25519":
      return ["ed25519", {}];
    case "rsa-2048":
      return ["rsa", { modulusLength: 2048 }];
    case "rsa-3072":
      return ["rsa", { modulusLength: 3072 }];
  }
}
