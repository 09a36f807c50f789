/** Key algorithms a Fleetroot key can have, whatever backend holds it. */
export type KeyAlgorithm = "ecdsa-p256" | "ecdsa-p384" | "ed25519" | "rsa-2048" | "rsa-3072";

export const keyAlgorithms: readonly KeyAlgorithm[] = [
  "ecdsa-p256",
  "ecdsa-p384",
  "ed25519",
  "rsa-2048",
  "rsa-3072",
];

/**
 * How a signature is made. ECDSA signatures are returned DER-encoded (the X.509/CMS form);
 * Ed25519 signs the message itself; RSA is PKCS#1 v1.5 or PSS (salt = hash length, MGF1 with the same hash).
 */
export type SignatureScheme =
  | "ecdsa-sha256"
  | "ecdsa-sha384"
  | "ed25519"
  | "rsa-pkcs1-sha256"
  | "rsa-pkcs1-sha384"
  | "rsa-pss-sha256"
  | "rsa-pss-sha384";

/** The one small interface everything that signs uses, so every key can live in an HSM. */
export interface Signer {
  readonly uri: string;
  readonly algorithm: KeyAlgorithm;
  /** SubjectPublicKeyInfo, DER. */
  readonly publicKey: Uint8Array;
  /** The scheme used when sign() is called without one. */
  readonly defaultScheme: SignatureScheme;
  sign(data: Uint8Array, scheme?: SignatureScheme): Promise<Uint8Array>;
}

/**
 * Encrypts software keys at rest. The server passes the seal's barrier; offline CLI use passes none
 * and keys are written as plain PKCS#8 PEM with mode 0600. `aad` binds a value to where it is stored.
 */
export interface KeyProtector {
  encrypt(aad: string, plaintext: Uint8Array): Promise<Uint8Array>;
  decrypt(aad: string, ciphertext: Uint8Array): Promise<Uint8Array>;
}

/** Wraps and unwraps small secrets (the barrier root key) with a key that never leaves its backend. */
export interface KeyWrapper {
  readonly uri: string;
  wrap(plaintext: Uint8Array): Promise<Uint8Array>;
  unwrap(wrapped: Uint8Array): Promise<Uint8Array>;
}

export type WrapAlgorithm = "aes-256" | "rsa-2048" | "rsa-3072";

export const wrapAlgorithms: readonly WrapAlgorithm[] = ["aes-256", "rsa-2048", "rsa-3072"];
