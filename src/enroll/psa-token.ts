/**
 * Arm PSA initial attestation tokens: a COSE_Sign1 (RFC 9052 4.2) over a CBOR claims map.
 * Two profiles: "http://arm.com/psa/2.0.0" (claim keys as in RFC 9783: nonce 10, instance id 256,
 * profile 265, lifecycle 2395, implementation id 2396, software components 2399) and the legacy
 * "PSA_IOT_PROFILE_1" (private-use keys -75000 … -75010). Parsing is bounded (cbor.ts) and every claim's
 * type and size is checked; anything else is FR_ENROLL_MALFORMED. Signature and policy checks are in
 * verifyPsaToken (psa-verify.ts).
 */
import { fail } from "../errors/index.js";
import { decodeCbor, type CborLimits } from "./cbor.js";
import { PSA_PROFILE_2, PSA_PROFILE_IOT_1 } from "./provisioner-config.js";

export interface PsaComponent {
  readonly measurementType: string | undefined;
  readonly measurementValue: Buffer;
  readonly signerId: Buffer | undefined;
  readonly version: string | undefined;
}

export interface PsaClaims {
  readonly profile: string;
  readonly nonce: Buffer;
  readonly instanceId: Buffer;
  readonly implementationId: Buffer;
  readonly lifecycle: number;
  readonly clientId: number | undefined;
  readonly components: readonly PsaComponent[];
}

export interface CoseSign1 {
  /** The protected header bucket as sent (signed as-is). */
  readonly protectedBytes: Buffer;
  readonly alg: number;
  readonly payload: Buffer;
  readonly signature: Buffer;
}

export const COSE_ES256 = -7;
export const COSE_ES384 = -35;
export const COSE_EDDSA = -8;

const outer: CborLimits = {
  maxBytes: 8192,
  maxDepth: 4,
  maxItems: 64,
  allowedTags: [18],
  what: "the attestation token",
};
const header: CborLimits = {
  maxBytes: 256,
  maxDepth: 3,
  maxItems: 32,
  allowedTags: [],
  what: "the COSE protected header",
};
const claimsLimits: CborLimits = {
  maxBytes: 8000,
  maxDepth: 4,
  maxItems: 512,
  allowedTags: [],
  what: "the attestation claims",
};

const bad = (why: string): never => fail("FR_ENROLL_MALFORMED", `the attestation token ${why}`);

/** COSE_Sign1 = [protected: bstr, unprotected: map, payload: bstr, signature: bstr], optionally tag 18. */
export function parseCoseSign1(input: Uint8Array): CoseSign1 {
  let v = decodeCbor(input, outer);
  if (isTag(v)) {
    if (v.tag !== 18) bad(`is tagged ${v.tag}, not COSE_Sign1 (18)`);
    v = v.value;
  }
  if (!Array.isArray(v) || v.length !== 4) bad("is not a COSE_Sign1 array of four items");
  const [prot, unprot, payload, signature] = v as unknown[];
  if (!Buffer.isBuffer(prot)) bad("has a protected header that is not a byte string");
  if (!(unprot instanceof Map)) bad("has an unprotected header that is not a map");
  if (!Buffer.isBuffer(payload) || payload.length === 0)
    bad("has no payload (detached payloads are not accepted)");
  if (!Buffer.isBuffer(signature)) bad("has a signature that is not a byte string");
  const p = Buffer.from(prot as Buffer);
  if (p.length === 0) bad("has an empty protected header: the algorithm must be protected");
  const h = decodeCbor(p, header);
  if (!(h instanceof Map)) bad("has a protected header that is not a map");
  const alg = (h as Map<unknown, unknown>).get(1);
  if (alg !== COSE_ES256 && alg !== COSE_ES384 && alg !== COSE_EDDSA) {
    bad(`uses COSE algorithm ${String(alg)}; ES256 (-7), ES384 (-35) or EdDSA (-8) is required`);
  }
  return {
    protectedBytes: p,
    alg: alg as number,
    payload: Buffer.from(payload as Buffer),
    signature: Buffer.from(signature as Buffer),
  };
}

/** Sig_structure for COSE_Sign1 (RFC 9052 4.4) with empty external_aad, encoded deterministically. */
export function sigStructure(protectedBytes: Uint8Array, payload: Uint8Array): Buffer {
  return Buffer.concat([
    Buffer.from([0x84]),
    cborHead(3, 10),
    Buffer.from("Signature1"),
    cborHead(2, protectedBytes.length),
    protectedBytes,
    cborHead(2, 0),
    cborHead(2, payload.length),
    payload,
  ]);
}

export function cborHead(major: number, n: number): Buffer {
  const m = major << 5;
  if (n < 24) return Buffer.from([m | n]);
  if (n < 0x100) return Buffer.from([m | 24, n]);
  if (n < 0x10000) return Buffer.from([m | 25, n >> 8, n & 0xff]);
  const b = Buffer.alloc(5);
  b[0] = m | 26;
  b.writeUInt32BE(n, 1);
  return b;
}

const KEYS = {
  [PSA_PROFILE_2]: {
    profile: 265,
    nonce: 10,
    instance: 256,
    impl: 2396,
    lifecycle: 2395,
    client: 2394,
    sw: 2399,
  },
  [PSA_PROFILE_IOT_1]: {
    profile: -75000,
    nonce: -75008,
    instance: -75009,
    impl: -75003,
    lifecycle: -75002,
    client: -75001,
    sw: -75006,
  },
} as const;

export function parsePsaClaims(payload: Uint8Array): PsaClaims {
  const m = decodeCbor(payload, claimsLimits);
  if (!(m instanceof Map)) bad("claims are not a CBOR map");
  const claims = m as Map<unknown, unknown>;
  const profile = claims.has(265) ? claims.get(265) : claims.has(-75000) ? claims.get(-75000) : undefined;
  if (profile !== PSA_PROFILE_2 && profile !== PSA_PROFILE_IOT_1) {
    bad(
      `names profile ${JSON.stringify(profile) ?? "(none)"}; "${PSA_PROFILE_2}" or "${PSA_PROFILE_IOT_1}" is required`,
    );
  }
  const k = KEYS[profile as keyof typeof KEYS];
  const bytes = (key: number, name: string, sizes: number[]): Buffer => {
    const v = claims.get(key);
    if (!Buffer.isBuffer(v)) return bad(`has no ${name} byte string (claim ${key})`);
    if (!sizes.includes(v.length)) bad(`has a ${name} of ${v.length} bytes; ${sizes.join(", ")} expected`);
    return Buffer.from(v);
  };
  const nonce = bytes(k.nonce, "nonce", [32, 48, 64]);
  const instanceId = bytes(k.instance, "instance id", [33]);
  if (instanceId[0] !== 0x01) bad("has an instance id that is not a RAND UEID (first byte 0x01)");
  const implementationId = bytes(k.impl, "implementation id", [32]);
  const lifecycle = claims.get(k.lifecycle);
  if (typeof lifecycle !== "number" || !Number.isInteger(lifecycle) || lifecycle < 0 || lifecycle > 0xffff) {
    bad(`has no security lifecycle integer (claim ${k.lifecycle})`);
  }
  const client = claims.get(k.client);
  if (client !== undefined && (typeof client !== "number" || !Number.isInteger(client)))
    bad("has a client id that is not an integer");
  const sw = claims.get(k.sw);
  if (!Array.isArray(sw) || sw.length === 0) bad(`has no software components (claim ${k.sw})`);
  const components = (sw as unknown[]).map((c, i) => component(c, i, profile === PSA_PROFILE_IOT_1));
  return {
    profile: profile as string,
    nonce,
    instanceId,
    implementationId,
    lifecycle: lifecycle as number,
    clientId: client as number | undefined,
    components,
  };
}

function component(c: unknown, i: number, legacy: boolean): PsaComponent {
  if (!(c instanceof Map)) return bad(`software component ${i} is not a map`);
  const value = c.get(2);
  if (!Buffer.isBuffer(value) || value.length < 32 || value.length > 64)
    bad(`software component ${i} has no 32-64 byte measurement value`);
  const type = c.get(1);
  if (type !== undefined && typeof type !== "string")
    bad(`software component ${i} has a measurement type that is not text`);
  const signer = c.get(5);
  if (signer !== undefined && (!Buffer.isBuffer(signer) || signer.length < 32 || signer.length > 64)) {
    bad(`software component ${i} has a signer id that is not a 32-64 byte string`);
  }
  if (legacy && signer === undefined)
    bad(`software component ${i} has no signer id (required by ${PSA_PROFILE_IOT_1})`);
  const version = c.get(4);
  if (version !== undefined && typeof version !== "string")
    bad(`software component ${i} has a version that is not text`);
  return {
    measurementType: type as string | undefined,
    measurementValue: Buffer.from(value as Buffer),
    signerId: signer === undefined ? undefined : Buffer.from(signer as Buffer),
    version: version as string | undefined,
  };
}

function isTag(v: unknown): v is { tag: number; value: unknown } {
  return typeof v === "object" && v !== null && !Array.isArray(v) && "tag" in v && "value" in v;
}

/** PSA security lifecycle "secured" is 0x3000-0x30FF (RFC 9783 4.3.1). */
export const isSecuredLifecycle = (lc: number): boolean => (lc & 0xff00) === 0x3000;
