/**
 * Which device public keys Fleetroot accepts, wherever a client hands one over: a registered key, a
 * PSA attestation key, the key of a proof of possession, the key of an enrollment CSR. The set is the
 * one pki/ certifies from a CSR under any role (RSA of 2048 bits or more, EC on a named P-256/384/521
 * curve, Ed25519, Ed448), so a key accepted at registration can enroll.
 */
import { type KeyObject, createPublicKey } from "node:crypto";
import { type CsrKey, DerReader, ecParametersOf } from "../crypto/index.js";
import { fail } from "../errors/index.js";

/** What a key may be used for: certified (and proving possession), or signing PSA attestation tokens. */
export type KeyUse = "certify" | "attest";

export const ACCEPTED_KEYS: Record<KeyUse, string> = {
  certify: "RSA of 2048 bits or more, EC on P-256, P-384 or P-521 (named curve), Ed25519 or Ed448",
  attest: "EC on P-256, P-384 or P-521 (named curve) or Ed25519 (COSE ES256, ES384, EdDSA)",
};

const MIN_RSA_BITS = 2048;
const curves: Record<string, string> = { prime256v1: "P-256", secp384r1: "P-384", secp521r1: "P-521" };

const otherKeys: Record<string, string> = {
  dsa: "a DSA key",
  dh: "a Diffie-Hellman key",
  x25519: "an X25519 key",
  x448: "an X448 key",
};

/** An accepted key, or why it is not: `refused` names the key ("a DSA key", "an RSA-1024 key"). */
export type DeviceKey =
  | { readonly key: KeyObject; readonly refused?: undefined }
  | { readonly key?: undefined; readonly refused: string };

/** Reads a DER SubjectPublicKeyInfo and decides whether `use` accepts it. */
export function readDeviceKey(spki: Uint8Array, use: KeyUse = "certify"): DeviceKey {
  const params = ecParameters(spki);
  if (params === "unreadable") return { refused: "not a readable public key" };
  if (params === "explicit") {
    return { refused: "an EC key with explicit curve parameters (RFC 5480 requires a named curve)" };
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(spki), format: "der", type: "spki" });
  } catch {
    return { refused: "not a readable public key" };
  }
  const type = key.asymmetricKeyType ?? "unknown";
  const d = key.asymmetricKeyDetails ?? {};
  switch (type) {
    case "ec": {
      const curve = curves[d.namedCurve ?? ""];
      return curve ? { key } : { refused: `an EC key on curve ${d.namedCurve ?? "(unknown)"}` };
    }
    case "ed25519":
      return { key };
    case "ed448":
      return use === "certify" ? { key } : { refused: "an Ed448 key" };
    case "rsa":
    case "rsa-pss": {
      const bits = d.modulusLength ?? 0;
      const name = `an ${type === "rsa" ? "RSA" : "RSA-PSS"}-${bits} key`;
      return use === "certify" && bits >= MIN_RSA_BITS ? { key } : { refused: name };
    }
    default:
      return { refused: otherKeys[type] ?? `a key of type ${type}` };
  }
}

/**
 * RFC 5480 2.1.1: an EC key names its curve; implicitCurve and specifiedCurve MUST NOT be used. OpenSSL
 * maps explicit parameters of a known curve back to its name, so the KeyObject cannot tell: the encoding
 * is read (strict DER, so no other encoding of the same key slips past).
 */
function ecParameters(spki: Uint8Array): "named" | "explicit" | "not-ec" | "unreadable" {
  try {
    const r = new DerReader(spki, {
      maxBytes: 16 * 1024,
      maxDepth: 8,
      code: "FR_VALIDATION",
      what: "the key",
    });
    const root = r.expect(r.root(), 0x30, "SubjectPublicKeyInfo");
    r.checkDepth(root);
    const [alg] = r.children(root);
    return ecParametersOf(r, r.expect(alg, 0x30, "AlgorithmIdentifier"));
  } catch {
    return "unreadable";
  }
}

/**
 * An enrollment or renewal CSR's key (parseCsr already refused other types and explicit EC parameters):
 * refused here, before any credential is spent, when pki/ would refuse it whatever the role.
 */
export function checkCsrKey(key: CsrKey): void {
  if ((key.type === "rsa" || key.type === "rsa-pss") && (key.bits ?? 0) < MIN_RSA_BITS) {
    fail(
      "FR_CSR_ALGORITHM",
      `the CSR's key is RSA-${key.bits ?? 0}, which is not accepted; use ${ACCEPTED_KEYS.certify}`,
    );
  }
}
