/**
 * Proof of possession shared by the key-based provisioners: a signature, with the key being proven,
 * over "fleetroot-enroll-pop-v1\0" ‖ server nonce (32 bytes) ‖ SHA-256(CSR DER). The nonce makes it
 * fresh and single-use; the CSR hash binds it to the one request it authorizes.
 */
import { type KeyObject, constants, createHash, verify } from "node:crypto";
import { fail } from "../errors/index.js";
import { ACCEPTED_KEYS, readDeviceKey } from "./device-key.js";

/**
 * The schemes a proof may use, and the key types each fits. Verified here rather than through keys/,
 * whose schemes cover only the algorithms Fleetroot itself signs with: a device key may be any key the
 * CA certifies (P-521, RSA-4096 and Ed448 included).
 */
const SCHEMES = {
  "ecdsa-sha256": { keys: ["ec"], hash: "sha256" },
  "ecdsa-sha384": { keys: ["ec"], hash: "sha384" },
  ed25519: { keys: ["ed25519"], hash: null },
  ed448: { keys: ["ed448"], hash: null },
  "rsa-pkcs1-sha256": { keys: ["rsa"], hash: "sha256" },
  "rsa-pkcs1-sha384": { keys: ["rsa"], hash: "sha384" },
  "rsa-pss-sha256": { keys: ["rsa", "rsa-pss"], hash: "sha256", pss: 32 },
  "rsa-pss-sha384": { keys: ["rsa", "rsa-pss"], hash: "sha384", pss: 48 },
} as const satisfies Record<
  string,
  { keys: readonly string[]; hash: "sha256" | "sha384" | null; pss?: number }
>;
type ProofScheme = keyof typeof SCHEMES;
const schemeNames = Object.keys(SCHEMES) as ProofScheme[];

const DOMAIN = Buffer.from("fleetroot-enroll-pop-v1\0");

export function popMessage(nonce: Uint8Array, csrDer: Uint8Array): Buffer {
  return Buffer.concat([DOMAIN, nonce, createHash("sha256").update(csrDer).digest()]);
}

/** Reads `signature` (base64) and `signature_scheme` (default from the key type) from a request body. */
function readSignature(body: Record<string, unknown>, key: KeyObject): { sig: Buffer; scheme: ProofScheme } {
  const s = body.signature;
  if (typeof s !== "string" || s.length === 0) {
    fail(
      "FR_ENROLL_DENIED",
      "no proof of possession: sign the nonce and CSR hash and send it as signature (base64)",
    );
  }
  if (s.length > 2048 || !/^[A-Za-z0-9+/_=-]+$/.test(s))
    fail("FR_ENROLL_MALFORMED", "signature must be base64 of at most 1536 bytes");
  const scheme = body.signature_scheme ?? defaultScheme(key);
  if (typeof scheme !== "string" || !schemeNames.includes(scheme as ProofScheme)) {
    fail("FR_VALIDATION", `signature_scheme must be one of ${schemeNames.join(", ")}`);
  }
  const type = key.asymmetricKeyType ?? "";
  if (!(SCHEMES[scheme as ProofScheme].keys as readonly string[]).includes(type)) {
    const fitting = schemeNames.filter((n) => (SCHEMES[n].keys as readonly string[]).includes(type));
    fail("FR_VALIDATION", `signature_scheme ${scheme} does not fit a ${type} key; use ${fitting.join(", ")}`);
  }
  return {
    sig: Buffer.from(s, s.includes("-") || s.includes("_") ? "base64url" : "base64"),
    scheme: scheme as ProofScheme,
  };
}

/**
 * Checks the proof of possession made with `spki` (`what` names it for messages). A key outside the
 * accepted set is refused as such, not as a signature that fails to verify.
 */
export function checkPossession(
  spki: Uint8Array,
  body: Record<string, unknown>,
  nonce: Uint8Array,
  csrDer: Uint8Array,
  what: string,
): void {
  const k = readDeviceKey(spki);
  if (k.refused !== undefined) {
    fail("FR_ENROLL_DENIED", `${what} is ${k.refused}, which is not accepted; use ${ACCEPTED_KEYS.certify}`);
  }
  const { sig, scheme } = readSignature(body, k.key);
  if (!verifyProof(k.key, scheme, popMessage(nonce, csrDer), sig)) {
    fail("FR_ENROLL_DENIED", `the proof of possession does not verify under ${what}`);
  }
}

function verifyProof(key: KeyObject, scheme: ProofScheme, data: Buffer, sig: Buffer): boolean {
  const p: { hash: "sha256" | "sha384" | null; pss?: number } = SCHEMES[scheme];
  const options =
    p.pss !== undefined
      ? { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: p.pss }
      : { key, dsaEncoding: "der" as const };
  try {
    return verify(p.hash, data, options, sig);
  } catch {
    return false;
  }
}

function defaultScheme(key: KeyObject): ProofScheme {
  switch (key.asymmetricKeyType) {
    case "ec":
      return key.asymmetricKeyDetails?.namedCurve === "secp384r1" ? "ecdsa-sha384" : "ecdsa-sha256";
    case "ed25519":
      return "ed25519";
    case "ed448":
      return "ed448";
    case "rsa-pss":
      return "rsa-pss-sha256";
    default:
      return "rsa-pkcs1-sha256";
  }
}
