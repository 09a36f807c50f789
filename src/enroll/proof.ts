/**
 * Proof of possession shared by the key-based provisioners: a signature, with the key being proven,
 * over "fleetroot-enroll-pop-v1\0" ‖ server nonce (32 bytes) ‖ SHA-256(CSR DER). The nonce makes it
 * fresh and single-use; the CSR hash binds it to the one request it authorizes.
 */
import { createHash, createPublicKey, type KeyObject } from "node:crypto";
import { fail } from "../errors/index.js";
import { type SignatureScheme, verifySignature } from "../keys/index.js";

const DOMAIN = Buffer.from("fleetroot-enroll-pop-v1\0");
const SCHEMES: readonly SignatureScheme[] = [
  "ecdsa-sha256",
  "ecdsa-sha384",
  "ed25519",
  "rsa-pkcs1-sha256",
  "rsa-pkcs1-sha384",
  "rsa-pss-sha256",
  "rsa-pss-sha384",
];

export function popMessage(nonce: Uint8Array, csrDer: Uint8Array): Buffer {
  return Buffer.concat([DOMAIN, nonce, createHash("sha256").update(csrDer).digest()]);
}

/** Reads `signature` (base64) and `signature_scheme` (default from the key type) from a request body. */
export function readSignature(
  body: Record<string, unknown>,
  spki: Uint8Array,
): { sig: Buffer; scheme: SignatureScheme } {
  const s = body.signature;
  if (typeof s !== "string" || s.length === 0) {
    fail(
      "FR_ENROLL_DENIED",
      "no proof of possession: sign the nonce and CSR hash and send it as signature (base64)",
    );
  }
  if (s.length > 2048 || !/^[A-Za-z0-9+/_=-]+$/.test(s))
    fail("FR_ENROLL_MALFORMED", "signature must be base64 of at most 1536 bytes");
  const scheme = body.signature_scheme ?? defaultScheme(spki);
  if (typeof scheme !== "string" || !SCHEMES.includes(scheme as SignatureScheme)) {
    fail("FR_VALIDATION", `signature_scheme must be one of ${SCHEMES.join(", ")}`);
  }
  return {
    sig: Buffer.from(s, s.includes("-") || s.includes("_") ? "base64url" : "base64"),
    scheme: scheme as SignatureScheme,
  };
}

export function checkPossession(
  spki: Uint8Array,
  body: Record<string, unknown>,
  nonce: Uint8Array,
  csrDer: Uint8Array,
  what: string,
): void {
  const { sig, scheme } = readSignature(body, spki);
  if (!verifySignature(spki, scheme, popMessage(nonce, csrDer), sig)) {
    fail("FR_ENROLL_DENIED", `the proof of possession does not verify under ${what}`);
  }
}

function defaultScheme(spki: Uint8Array): SignatureScheme {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(spki), format: "der", type: "spki" });
  } catch {
    return fail("FR_ENROLL_MALFORMED", "the public key cannot be read");
  }
  switch (key.asymmetricKeyType) {
    case "ec":
      return key.asymmetricKeyDetails?.namedCurve === "secp384r1" ? "ecdsa-sha384" : "ecdsa-sha256";
    case "ed25519":
      return "ed25519";
    default:
      return "rsa-pkcs1-sha256";
  }
}
