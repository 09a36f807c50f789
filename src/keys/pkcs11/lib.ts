// pkcs11js is CommonJS: from ESM only the default import carries its constants (`import *` leaves them undefined).
import pkcs11js from "pkcs11js";

export { pkcs11js };
export type Pkcs11Lib = InstanceType<typeof pkcs11js.PKCS11>;
export type Handle = Buffer;

/** PKCS#11 3.0 constants that the pkcs11js 2.1 typings lack. */
export const CKK_EC_EDWARDS = 0x40;
export const CKM_EC_EDWARDS_KEY_PAIR_GEN = 0x1055;
export const CKM_EDDSA = 0x1057;
export const CKZ_DATA_SPECIFIED = 0x1;

/** DER-encoded curve OIDs for CKA_EC_PARAMS. */
export const curveParams = {
  "P-256": Buffer.from("06082a8648ce3d030107", "hex"),
  "P-384": Buffer.from("06052b81040022", "hex"),
  Ed25519: Buffer.from("06032b6570", "hex"),
  /** Some tokens name Ed25519 by a PrintableString instead of the OID. */
  Ed25519Name: Buffer.from("130c656477617264733235353139", "hex"),
} as const;

const mechanismNames = new Map<number, string>();

/** "CKM_ECDSA" for 0x1041 and so on, for error messages. */
export function mechanismName(mech: number): string {
  if (mechanismNames.size === 0) {
    for (const [k, v] of Object.entries(pkcs11js))
      if (k.startsWith("CKM_") && typeof v === "number") mechanismNames.set(v, k);
    mechanismNames.set(CKM_EDDSA, "CKM_EDDSA");
    mechanismNames.set(CKM_EC_EDWARDS_KEY_PAIR_GEN, "CKM_EC_EDWARDS_KEY_PAIR_GEN");
  }
  return mechanismNames.get(mech) ?? `mechanism 0x${mech.toString(16)}`;
}

export function isPkcs11Error(e: unknown): e is Error & { code: number; method: string } {
  return e instanceof pkcs11js.Pkcs11Error;
}
