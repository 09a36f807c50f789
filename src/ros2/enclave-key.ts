/**
 * A new enclave key. In a token (`pkcs11:` URI) it is made there through the key manager and only its URI
 * is written (key.p11). In software it is made here and returned as PKCS#8 PEM for key.pem, written with
 * the rest of the enclave directory: that directory is built aside and renamed into place, so the key
 * manager's no-overwrite link and per-file fsync add nothing — and cost most of the time of a bulk run.
 * Fleetroot never signs with an enclave key; the robot's DDS plugin does.
 */
import crypto from "node:crypto";
import type { KeyAlgorithm, KeyManager } from "../keys/index.js";
import { files } from "./layout.js";

export interface EnclaveKey {
  /** SubjectPublicKeyInfo, DER, for the certificate. */
  readonly publicKey: Uint8Array;
  /** key.pem or key.p11 and its content. */
  readonly file: { readonly name: typeof files.keyPem | typeof files.keyP11; readonly content: string };
}

export async function newEnclaveKey(
  keys: KeyManager,
  algorithm: KeyAlgorithm,
  uri: string | undefined,
): Promise<EnclaveKey> {
  if (uri && !uri.startsWith("file:")) {
    const signer = await keys.generate(uri, algorithm);
    // Signer.uri has any pin-value removed: a PIN never lands in the keystore (use pin-source).
    return { publicKey: signer.publicKey, file: { name: files.keyP11, content: signer.uri } };
  }
  const { privateKey, publicKey } = softwareKeyPair(algorithm);
  return {
    publicKey: new Uint8Array(publicKey.export({ type: "spki", format: "der" })),
    file: { name: files.keyPem, content: privateKey.export({ type: "pkcs8", format: "pem" }).toString() },
  };
}

function softwareKeyPair(algorithm: KeyAlgorithm): crypto.KeyPairKeyObjectResult {
  switch (algorithm) {
    case "ecdsa-p256":
      return crypto.generateKeyPairSync("ec", { namedCurve: "P-256" });
    case "ecdsa-p384":
      return crypto.generateKeyPairSync("ec", { namedCurve: "P-384" });
    case "ed25519":
      return crypto.generateKeyPairSync("ed25519");
    case "rsa-2048":
      return crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
    case "rsa-3072":
      return crypto.generateKeyPairSync("rsa", { modulusLength: 3072 });
  }
}
