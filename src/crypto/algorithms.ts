/**
 * Signature AlgorithmIdentifiers chosen from a Signer's key algorithm and scheme: ecdsa-with-SHA256/384
 * (RFC 5758 3.2, parameters absent), Ed25519 (RFC 8410 3, parameters absent), sha256/384WithRSAEncryption
 * (RFC 4055 5, NULL parameters) and RSASSA-PSS with explicit parameters (RFC 4055 3.1).
 */
import type { KeyAlgorithm, SignatureScheme, Signer } from "../keys/types.js";
import { fail } from "../errors/index.js";
import { NULL, algorithmIdentifier, encode, explicit, integer, seq } from "./der.js";
import { OID } from "./oids.js";

const familyOf: Record<KeyAlgorithm, "ec" | "ed25519" | "rsa"> = {
  "ecdsa-p256": "ec",
  "ecdsa-p384": "ec",
  ed25519: "ed25519",
  "rsa-2048": "rsa",
  "rsa-3072": "rsa",
};

const schemeFamily: Record<SignatureScheme, "ec" | "ed25519" | "rsa"> = {
  "ecdsa-sha256": "ec",
  "ecdsa-sha384": "ec",
  ed25519: "ed25519",
  "rsa-pkcs1-sha256": "rsa",
  "rsa-pkcs1-sha384": "rsa",
  "rsa-pss-sha256": "rsa",
  "rsa-pss-sha384": "rsa",
};

/** RSASSA-PSS parameters: hash, MGF1 over the same hash, salt = hash length, trailer field default. */
function pssParams(hashOid: string, saltLength: number): Buffer {
  const hash = algorithmIdentifier(hashOid, NULL);
  return encode(
    seq(
      explicit(0, hash),
      explicit(1, algorithmIdentifier(OID.mgf1, hash)),
      explicit(2, integer(saltLength)),
    ),
  );
}

const identifiers: Record<SignatureScheme, Buffer> = {
  "ecdsa-sha256": algorithmIdentifier(OID.ecdsaWithSha256),
  "ecdsa-sha384": algorithmIdentifier(OID.ecdsaWithSha384),
  ed25519: algorithmIdentifier(OID.ed25519),
  "rsa-pkcs1-sha256": algorithmIdentifier(OID.sha256WithRsa, NULL),
  "rsa-pkcs1-sha384": algorithmIdentifier(OID.sha384WithRsa, NULL),
  "rsa-pss-sha256": algorithmIdentifier(OID.rsassaPss, pssParams(OID.sha256, 32)),
  "rsa-pss-sha384": algorithmIdentifier(OID.rsassaPss, pssParams(OID.sha384, 48)),
};

export interface SignatureAlgorithm {
  readonly scheme: SignatureScheme;
  /** AlgorithmIdentifier DER, placed in both the signed structure and its outer wrapper. */
  readonly der: Buffer;
}

/** The scheme to sign with (explicit, else the signer's default) and its AlgorithmIdentifier. */
export function signatureAlgorithm(
  signer: Pick<Signer, "algorithm" | "defaultScheme">,
  scheme?: SignatureScheme,
): SignatureAlgorithm {
  const s = scheme ?? signer.defaultScheme;
  const der = identifiers[s] as Buffer | undefined;
  if (!der) fail("FR_KEY_ALGORITHM", `unknown signature scheme "${s}"`);
  if (schemeFamily[s] !== familyOf[signer.algorithm]) {
    fail("FR_KEY_ALGORITHM", `a ${signer.algorithm} key cannot sign with ${s}`);
  }
  return { scheme: s, der };
}
