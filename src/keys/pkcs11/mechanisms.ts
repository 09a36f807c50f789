import { schemeParams } from "../algorithms.js";
import type { KeyAlgorithm, SignatureScheme, WrapAlgorithm } from "../types.js";
import { CKM_EC_EDWARDS_KEY_PAIR_GEN, CKM_EDDSA, CKZ_DATA_SPECIFIED, curveParams, pkcs11js } from "./lib.js";

type Template = { type: number; value?: number | boolean | string | Buffer }[];
type Mechanism = { mechanism: number; parameter?: { type: number; [k: string]: unknown } };

/** How the token generates a key pair for an algorithm, and which public attributes that needs. */
export function keyPairSpec(alg: KeyAlgorithm | WrapAlgorithm): { mechanism: number; publicAttrs: Template } {
  switch (alg) {
    case "ecdsa-p256":
      return ec(curveParams["P-256"]);
    case "ecdsa-p384":
      return ec(curveParams["P-384"]);
    case "ed25519":
      return {
        mechanism: CKM_EC_EDWARDS_KEY_PAIR_GEN,
        publicAttrs: [{ type: pkcs11js.CKA_EC_PARAMS, value: curveParams.Ed25519 }],
      };
    case "rsa-2048":
      return rsa(2048);
    case "rsa-3072":
      return rsa(3072);
    case "aes-256":
      throw new RangeError("aes-256 is a secret key, not a key pair");
  }
}

function ec(params: Buffer): { mechanism: number; publicAttrs: Template } {
  return {
    mechanism: pkcs11js.CKM_EC_KEY_PAIR_GEN,
    publicAttrs: [{ type: pkcs11js.CKA_EC_PARAMS, value: params }],
  };
}

function rsa(bits: number): { mechanism: number; publicAttrs: Template } {
  return {
    mechanism: pkcs11js.CKM_RSA_PKCS_KEY_PAIR_GEN,
    publicAttrs: [
      { type: pkcs11js.CKA_MODULUS_BITS, value: bits },
      { type: pkcs11js.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
    ],
  };
}

/**
 * The token mechanism for a scheme. ECDSA hashes in Node and signs the digest with plain CKM_ECDSA,
 * because SoftHSM2 2.6 and many HSMs lack CKM_ECDSA_SHA256; the token returns r||s.
 */
export function signMechanism(scheme: SignatureScheme): {
  mechanism: Mechanism;
  prehash: "sha256" | "sha384" | null;
} {
  const p = schemeParams(scheme);
  switch (p.family) {
    case "ecdsa":
      return { mechanism: { mechanism: pkcs11js.CKM_ECDSA }, prehash: p.hash };
    case "ed25519":
      // CKM_EDDSA without parameters is pure Ed25519 (PKCS#11 3.0 section 2.3.14).
      return { mechanism: { mechanism: CKM_EDDSA }, prehash: null };
    case "rsa-pkcs1":
      return {
        mechanism: {
          mechanism: p.hash === "sha384" ? pkcs11js.CKM_SHA384_RSA_PKCS : pkcs11js.CKM_SHA256_RSA_PKCS,
        },
        prehash: null,
      };
    case "rsa-pss": {
      const sha384 = p.hash === "sha384";
      return {
        mechanism: {
          mechanism: sha384 ? pkcs11js.CKM_SHA384_RSA_PKCS_PSS : pkcs11js.CKM_SHA256_RSA_PKCS_PSS,
          parameter: {
            type: pkcs11js.CK_PARAMS_RSA_PSS,
            hashAlg: sha384 ? pkcs11js.CKM_SHA384 : pkcs11js.CKM_SHA256,
            mgf: sha384 ? pkcs11js.CKG_MGF1_SHA384 : pkcs11js.CKG_MGF1_SHA256,
            saltLen: sha384 ? 48 : 32,
          },
        },
        prehash: null,
      };
    }
  }
}

/**
 * RSA-OAEP for wrapping. SoftHSM2 2.6 accepts only SHA-1 with MGF1-SHA1 ("hashAlg must be CKM_SHA_1");
 * OAEP's security does not rest on SHA-1 collision resistance, and this keeps every common HSM usable.
 */
export const oaepMechanism: Mechanism = {
  mechanism: pkcs11js.CKM_RSA_PKCS_OAEP,
  parameter: {
    type: pkcs11js.CK_PARAMS_RSA_OAEP,
    hashAlg: pkcs11js.CKM_SHA_1,
    mgf: pkcs11js.CKG_MGF1_SHA1,
    source: CKZ_DATA_SPECIFIED,
  },
};

/** OAEP with SHA-1 leaves modulus - 2*20 - 2 bytes for the plaintext. */
export const oaepOverhead = 42;

export function gcmMechanism(iv: Buffer): Mechanism {
  return {
    mechanism: pkcs11js.CKM_AES_GCM,
    parameter: { type: pkcs11js.CK_PARAMS_AES_GCM, iv, ivBits: 96, tagBits: 128 },
  };
}
