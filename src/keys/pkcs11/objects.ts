import crypto from "node:crypto";
import { fail } from "../../errors/index.js";
import { algorithmOf } from "../algorithms.js";
import type { KeyAlgorithm } from "../types.js";
import { CKK_EC_EDWARDS, curveParams, type Handle, pkcs11js } from "./lib.js";
import type { TokenSession } from "./module.js";

type Template = { type: number; value?: number | boolean | string | Buffer }[];

/** Label and id of a key as the URI gives them. */
export interface KeyName {
  readonly object: string | undefined;
  readonly id: Uint8Array | undefined;
}

/** Object handles matching class + label/id; call inside session.run. */
export function findObjects(s: TokenSession, cls: number | null, name: KeyName): Handle[] {
  const tmpl: Template = [];
  if (cls !== null) tmpl.push({ type: pkcs11js.CKA_CLASS, value: cls });
  if (name.object !== undefined) tmpl.push({ type: pkcs11js.CKA_LABEL, value: name.object });
  if (name.id !== undefined) tmpl.push({ type: pkcs11js.CKA_ID, value: Buffer.from(name.id) });
  s.lib.C_FindObjectsInit(s.handle, tmpl);
  try {
    return s.lib.C_FindObjects(s.handle, 16);
  } finally {
    s.lib.C_FindObjectsFinal(s.handle);
  }
}

/** Exactly one object, or FR_KEY_NOT_FOUND / FR_KEY_URI (ambiguous). */
export function findOne(s: TokenSession, cls: number, name: KeyName, what: string): Handle {
  const found = findObjects(s, cls, name);
  if (found.length === 0) {
    fail("FR_KEY_NOT_FOUND", `no ${what} with ${describeName(name)} on token "${s.label}"`);
  }
  if (found.length > 1)
    fail("FR_KEY_URI", `several ${what}s match ${describeName(name)}; add id= to the URI`);
  return found[0]!;
}

export function describeName(name: KeyName): string {
  const parts: string[] = [];
  if (name.object !== undefined) parts.push(`label "${name.object}"`);
  if (name.id !== undefined) parts.push(`id ${Buffer.from(name.id).toString("hex")}`);
  return parts.join(" and ");
}

export function attr(s: TokenSession, obj: Handle, type: number): Buffer {
  const [a] = s.lib.C_GetAttributeValue(s.handle, obj, [{ type }]);
  return a?.value ?? Buffer.alloc(0);
}

export function ulongAttr(s: TokenSession, obj: Handle, type: number): number {
  const v = attr(s, obj, type);
  return v.length >= 8 ? Number(v.readBigUInt64LE(0)) : v.readUInt32LE(0);
}

/** The public half of a private key: its own object with the same CKA_ID (and label). */
export function publicKeyFor(s: TokenSession, priv: Handle): Handle {
  const id = attr(s, priv, pkcs11js.CKA_ID);
  const label = attr(s, priv, pkcs11js.CKA_LABEL).toString("utf8");
  const name: KeyName = { object: label || undefined, id: id.length ? id : undefined };
  return findOne(s, pkcs11js.CKO_PUBLIC_KEY, name, "public key");
}

/** Reads a public key object and returns its algorithm and SubjectPublicKeyInfo DER. */
export function readPublicKey(s: TokenSession, pub: Handle): { algorithm: KeyAlgorithm; spki: Uint8Array } {
  const keyType = ulongAttr(s, pub, pkcs11js.CKA_KEY_TYPE);
  let jwk: crypto.JsonWebKey;
  if (keyType === pkcs11js.CKK_RSA) {
    jwk = {
      kty: "RSA",
      n: b64u(stripZeros(attr(s, pub, pkcs11js.CKA_MODULUS))),
      e: b64u(stripZeros(attr(s, pub, pkcs11js.CKA_PUBLIC_EXPONENT))),
    };
  } else if (keyType === pkcs11js.CKK_EC) {
    const params = attr(s, pub, pkcs11js.CKA_EC_PARAMS);
    const crv = params.equals(curveParams["P-256"])
      ? "P-256"
      : params.equals(curveParams["P-384"])
        ? "P-384"
        : null;
    if (!crv) return fail("FR_KEY_ALGORITHM", `the token key uses an EC curve Fleetroot does not support`);
    const size = crv === "P-256" ? 32 : 48;
    const point = ecPoint(attr(s, pub, pkcs11js.CKA_EC_POINT), 1 + 2 * size);
    if (point[0] !== 0x04) fail("FR_KEY_FORMAT", "the token returned a compressed EC point");
    jwk = { kty: "EC", crv, x: b64u(point.subarray(1, 1 + size)), y: b64u(point.subarray(1 + size)) };
  } else if (keyType === CKK_EC_EDWARDS) {
    const params = attr(s, pub, pkcs11js.CKA_EC_PARAMS);
    if (!params.equals(curveParams.Ed25519) && !params.equals(curveParams.Ed25519Name)) {
      fail("FR_KEY_ALGORITHM", "the token key is an Edwards key on a curve other than Ed25519");
    }
    jwk = { kty: "OKP", crv: "Ed25519", x: b64u(ecPoint(attr(s, pub, pkcs11js.CKA_EC_POINT), 32)) };
  } else {
    return fail(
      "FR_KEY_ALGORITHM",
      `the token key has key type 0x${keyType.toString(16)}, which cannot sign here`,
    );
  }
  const key = crypto.createPublicKey({ key: jwk, format: "jwk" });
  return { algorithm: algorithmOf(key), spki: new Uint8Array(key.export({ type: "spki", format: "der" })) };
}

/** CKA_EC_POINT is a DER OCTET STRING per the standard, but some tokens return the raw point. */
function ecPoint(v: Buffer, rawLength: number): Buffer {
  if (v.length === rawLength) return v;
  if (v[0] === 0x04) {
    const long = (v[1] ?? 0) === 0x81;
    const len = long ? (v[2] ?? 0) : (v[1] ?? 0);
    const body = v.subarray(long ? 3 : 2);
    if (body.length === len && len === rawLength) return body;
  }
  return fail("FR_KEY_FORMAT", "the token returned an EC point Fleetroot cannot read");
}

function stripZeros(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
}

function b64u(b: Buffer): string {
  return b.toString("base64url");
}
