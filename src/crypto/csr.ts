/**
 * PKCS#10 certification requests (RFC 2986): parsed with @peculiar/asn1-csr after a bounded structural
 * pass, and verified with node:crypto. Every failure is a FleetError naming what is wrong: malformed
 * input FR_CSR_INVALID, unsupported algorithms FR_CSR_ALGORITHM, a bad signature FR_CSR_SIGNATURE.
 *
 * The parse reports what the CSR *asks for*; nothing here decides what is granted (pki/ roles do).
 */
import { type KeyObject, constants, createPublicKey, verify } from "node:crypto";
import { AsnConvert } from "@peculiar/asn1-schema";
import { CertificationRequest } from "@peculiar/asn1-csr";
import {
  BasicConstraints,
  ExtendedKeyUsage,
  Extensions,
  type Name,
  SubjectAlternativeName,
} from "@peculiar/asn1-x509";
import { FleetError, fail, isFleetError } from "../errors/index.js";
import { DerReader } from "./der-reader.js";
import { type KeyUsage, keyUsageBits } from "./extensions.js";
import { ipBytes, ipText } from "./general-name.js";
import { attributeName } from "./name.js";
import { OID } from "./oids.js";
import { type PemLabel, derFrom } from "./pem.js";

export interface CsrKey {
  readonly type: "rsa" | "rsa-pss" | "ec" | "ed25519" | "ed448";
  /** Modulus length for RSA keys. */
  readonly bits?: number;
  /** Curve for EC keys: P-256, P-384 or P-521. */
  readonly curve?: "P-256" | "P-384" | "P-521";
}

export interface CsrSignatureAlgorithm {
  readonly oid: string;
  readonly family: "ecdsa" | "ed25519" | "ed448" | "rsa-pkcs1" | "rsa-pss";
  /** Digest for node:crypto; null for EdDSA, which hashes internally. */
  readonly hash: "sha256" | "sha384" | "sha512" | null;
  /** PSS salt length. */
  readonly saltLength?: number;
}

export interface CsrAttributeValue {
  readonly oid: string;
  /** Short name (CN, O, …) or the OID when unknown. */
  readonly type: string;
  readonly value: string;
}

export interface ParsedCsr {
  readonly der: Buffer;
  /** certificationRequestInfo DER: the signed bytes. */
  readonly info: Buffer;
  readonly signature: Buffer;
  readonly signatureAlgorithm: CsrSignatureAlgorithm;
  readonly subject: { readonly der: Buffer; readonly attributes: readonly CsrAttributeValue[] };
  /** SubjectPublicKeyInfo DER, as the certificate will carry it. */
  readonly publicKey: Buffer;
  readonly key: CsrKey;
  /** Requested subject alternative names. */
  readonly san: {
    readonly dns: string[];
    readonly uri: string[];
    readonly ip: string[];
    readonly email: string[];
  };
  /** Requested basicConstraints, keyUsage and extKeyUsage (undefined when not requested). */
  readonly requested: {
    readonly ca?: { readonly pathLen?: number };
    readonly keyUsage?: readonly KeyUsage[];
    readonly extKeyUsage?: readonly string[];
  };
  /** Every requested extension, raw. */
  readonly extensions: readonly {
    readonly oid: string;
    readonly critical: boolean;
    readonly value: Buffer;
  }[];
}

export interface CsrLimits {
  /** Largest CSR accepted, in bytes (default 64 KiB). */
  readonly maxBytes?: number;
}

const CSR_LABELS: readonly PemLabel[] = ["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"];

/** Parses a CSR from DER or PEM. Does not verify its signature: call `verifyCsrSignature`. */
export function parseCsr(input: Uint8Array | string, limits: CsrLimits = {}): ParsedCsr {
  const maxBytes = limits.maxBytes ?? 64 * 1024;
  if (input.length > maxBytes * 2)
    fail("FR_CSR_INVALID", `the CSR is larger than the ${maxBytes}-byte limit`);
  let der: Buffer;
  try {
    der = derFrom(input, CSR_LABELS);
  } catch (e) {
    if (isFleetError(e)) throw new FleetError("FR_CSR_INVALID", e.detail, { cause: e });
    throw e;
  }
  // Bounded pass first: sizes, definite lengths, depth, no trailing bytes, and the raw signed bytes.
  const r = new DerReader(der, { maxBytes, maxDepth: 24, code: "FR_CSR_INVALID", what: "the CSR" });
  const root = r.expect(r.root(), 0x30, "CertificationRequest");
  r.checkDepth(root);
  const [infoEl, algEl, sigEl, extra] = r.children(root);
  if (extra) r.fail("unexpected fields after the signature");
  const info = r.expect(infoEl, 0x30, "certificationRequestInfo");
  r.expect(algEl, 0x30, "signatureAlgorithm");
  r.expect(sigEl, 0x03, "signature");
  const [versionEl, subjectEl, spkiEl] = r.children(info);
  const version = r.content(r.expect(versionEl, 0x02, "version"));
  if (version.length !== 1 || version[0] !== 0) r.fail("only version 1 (0) CSRs exist");
  r.expect(subjectEl, 0x30, "subject");
  r.expect(spkiEl, 0x30, "subjectPKInfo");

  let csr: CertificationRequest;
  try {
    csr = AsnConvert.parse(der, CertificationRequest);
  } catch (e) {
    throw new FleetError("FR_CSR_INVALID", `the CSR does not follow RFC 2986: ${(e as Error).message}`, {
      cause: e,
    });
  }
  const publicKey = Buffer.from(r.raw(spkiEl as NonNullable<typeof spkiEl>));
  const extensions = requestedExtensions(csr);
  return {
    der,
    info: Buffer.from(r.raw(info)),
    signature: Buffer.from(csr.signature),
    signatureAlgorithm: signatureAlgorithmOf(csr),
    subject: {
      der: Buffer.from(r.raw(subjectEl as NonNullable<typeof subjectEl>)),
      attributes: subjectAttributes(csr),
    },
    publicKey,
    key: describeKey(publicKey),
    san: sanOf(extensions),
    requested: requestedProfile(extensions),
    extensions,
  };
}

function subjectAttributes(csr: CertificationRequest): CsrAttributeValue[] {
  const name: Name = csr.certificationRequestInfo.subject;
  const out: CsrAttributeValue[] = [];
  for (const rdn of name)
    for (const atv of rdn)
      out.push({ oid: atv.type, type: attributeName(atv.type), value: atv.value.toString() });
  return out;
}

/** The KeyObject made while parsing a CSR, so verifying it does not import the key a second time. */
const keyObjects = new WeakMap<Uint8Array, KeyObject>();

/** SubjectPublicKeyInfo prefixes of uncompressed P-256 and P-384 keys (id-ecPublicKey + the curve OID). */
const ecPrefixes: ReadonlyArray<{ prefix: Buffer; crv: "P-256" | "P-384"; size: number }> = [
  {
    prefix: Buffer.from("3059301306072a8648ce3d020106082a8648ce3d03010703420004", "hex"),
    crv: "P-256",
    size: 32,
  },
  { prefix: Buffer.from("3076301006072a8648ce3d020106052b8104002203620004", "hex"), crv: "P-384", size: 48 },
];

/**
 * Imports a public key. Uncompressed P-256/P-384 keys go in as JWK coordinates, which OpenSSL 3 imports
 * (and checks on the curve) in about 60% of the time its DER decoder takes; everything else as DER.
 */
function importSpki(spki: Uint8Array): KeyObject {
  const der = Buffer.from(spki.buffer, spki.byteOffset, spki.byteLength);
  for (const { prefix, crv, size } of ecPrefixes) {
    if (der.length === prefix.length + 2 * size && der.subarray(0, prefix.length).equals(prefix)) {
      const x = der.subarray(prefix.length, prefix.length + size).toString("base64url");
      const y = der.subarray(prefix.length + size).toString("base64url");
      return createPublicKey({ key: { kty: "EC", crv, x, y }, format: "jwk" });
    }
  }
  return createPublicKey({ key: der, format: "der", type: "spki" });
}

function keyObject(spki: Uint8Array): KeyObject {
  const cached = keyObjects.get(spki);
  if (cached) return cached;
  try {
    const k = importSpki(spki);
    keyObjects.set(spki, k);
    return k;
  } catch (e) {
    throw new FleetError("FR_CSR_ALGORITHM", "the CSR's public key is malformed or of an unsupported type", {
      cause: e,
    });
  }
}

const curves: Record<string, CsrKey["curve"]> = {
  prime256v1: "P-256",
  secp384r1: "P-384",
  secp521r1: "P-521",
};

function describeKey(spki: Buffer): CsrKey {
  const k = keyObject(spki);
  const d = k.asymmetricKeyDetails ?? {};
  switch (k.asymmetricKeyType) {
    case "rsa":
    case "rsa-pss":
      return { type: k.asymmetricKeyType, bits: d.modulusLength ?? 0 };
    case "ec": {
      const curve = curves[d.namedCurve ?? ""];
      if (!curve)
        fail(
          "FR_CSR_ALGORITHM",
          `the EC curve ${d.namedCurve ?? "(explicit parameters)"} is not supported; use P-256, P-384 or P-521`,
        );
      return { type: "ec", curve };
    }
    case "ed25519":
    case "ed448":
      return { type: k.asymmetricKeyType };
    default:
      return fail(
        "FR_CSR_ALGORITHM",
        `${k.asymmetricKeyType ?? "this"} keys are not supported; use RSA, EC or Ed25519`,
      );
  }
}

const simpleAlgorithms: Record<string, CsrSignatureAlgorithm> = {
  [OID.ecdsaWithSha256]: { oid: OID.ecdsaWithSha256, family: "ecdsa", hash: "sha256" },
  [OID.ecdsaWithSha384]: { oid: OID.ecdsaWithSha384, family: "ecdsa", hash: "sha384" },
  [OID.ecdsaWithSha512]: { oid: OID.ecdsaWithSha512, family: "ecdsa", hash: "sha512" },
  [OID.ed25519]: { oid: OID.ed25519, family: "ed25519", hash: null },
  [OID.ed448]: { oid: OID.ed448, family: "ed448", hash: null },
  [OID.sha256WithRsa]: { oid: OID.sha256WithRsa, family: "rsa-pkcs1", hash: "sha256" },
  [OID.sha384WithRsa]: { oid: OID.sha384WithRsa, family: "rsa-pkcs1", hash: "sha384" },
  [OID.sha512WithRsa]: { oid: OID.sha512WithRsa, family: "rsa-pkcs1", hash: "sha512" },
};

const hashNames: Record<string, "sha256" | "sha384" | "sha512"> = {
  [OID.sha256]: "sha256",
  [OID.sha384]: "sha384",
  [OID.sha512]: "sha512",
};

function signatureAlgorithmOf(csr: CertificationRequest): CsrSignatureAlgorithm {
  const id = csr.signatureAlgorithm.algorithm;
  const simple = simpleAlgorithms[id];
  if (simple) return simple;
  if (id !== OID.rsassaPss) {
    fail(
      "FR_CSR_ALGORITHM",
      `signature algorithm ${id} is not supported (SHA-1 and unknown algorithms are refused)`,
    );
  }
  const params = csr.signatureAlgorithm.parameters;
  if (!params) fail("FR_CSR_ALGORITHM", "RSASSA-PSS without parameters (SHA-1 defaults) is not supported");
  return { oid: id, family: "rsa-pss", ...pssParams(new Uint8Array(params)) };
}

/**
 * RSASSA-PSS-params (RFC 4055 3.1). Defaults mean SHA-1, which is refused; the MGF1 hash must equal the
 * signature hash because node:crypto uses one digest for both; the trailer field must be 1.
 */
function pssParams(der: Uint8Array): { hash: "sha256" | "sha384" | "sha512"; saltLength: number } {
  const r = new DerReader(der, {
    maxBytes: 256,
    maxDepth: 6,
    code: "FR_CSR_INVALID",
    what: "the RSASSA-PSS parameters",
  });
  const fields = new Map(r.children(r.expect(r.root(), 0x30, "RSASSA-PSS-params")).map((f) => [f.tag, f]));
  const algOf = (el: ReturnType<typeof r.at> | undefined, what: string) => {
    const [idEl, paramsEl] = r.children(r.expect(el, 0x30, what));
    return { id: r.oid(r.expect(idEl, 0x06, what)), params: paramsEl };
  };
  const hashEl = fields.get(0xa0);
  const mgfEl = fields.get(0xa1);
  if (!hashEl || !mgfEl) fail("FR_CSR_ALGORITHM", "RSASSA-PSS with the SHA-1 defaults is not supported");
  const hashId = algOf(r.children(hashEl)[0], "hashAlgorithm").id;
  const hash =
    hashNames[hashId] ?? fail("FR_CSR_ALGORITHM", `RSASSA-PSS with hash ${hashId} is not supported`);
  const mgf = algOf(r.children(mgfEl)[0], "maskGenAlgorithm");
  if (mgf.id !== OID.mgf1 || algOf(mgf.params, "MGF1 hash").id !== hashId) {
    fail("FR_CSR_ALGORITHM", "RSASSA-PSS must use MGF1 with the same hash as the signature");
  }
  const intOf = (el: ReturnType<typeof r.at> | undefined, dflt: number) => {
    if (!el) return dflt;
    const c = r.content(r.expect(r.children(el)[0], 0x02, "INTEGER"));
    if (c.length > 2) r.fail("integer out of range");
    return c.reduce((a, b) => a * 256 + b, 0);
  };
  if (intOf(fields.get(0xa3), 1) !== 1) fail("FR_CSR_ALGORITHM", "RSASSA-PSS trailerField must be 1");
  return { hash, saltLength: intOf(fields.get(0xa2), 20) };
}

function requestedExtensions(csr: CertificationRequest): ParsedCsr["extensions"] {
  const out: { oid: string; critical: boolean; value: Buffer }[] = [];
  for (const attr of csr.certificationRequestInfo.attributes ?? []) {
    if (attr.type !== OID.extensionRequest) continue;
    for (const value of attr.values) {
      let exts: Extensions;
      try {
        exts = AsnConvert.parse(value, Extensions);
      } catch (e) {
        throw new FleetError("FR_CSR_INVALID", "the CSR's extensionRequest attribute is malformed", {
          cause: e,
        });
      }
      for (const e of exts) {
        if (out.some((o) => o.oid === e.extnID))
          fail("FR_CSR_INVALID", `extension ${e.extnID} is requested twice`);
        out.push({ oid: e.extnID, critical: e.critical, value: Buffer.from(e.extnValue.buffer) });
      }
    }
  }
  return out;
}

function decode<T>(exts: ParsedCsr["extensions"], id: string, type: new () => T): T | undefined {
  const e = exts.find((x) => x.oid === id);
  if (!e) return undefined;
  try {
    return AsnConvert.parse(e.value, type);
  } catch (err) {
    throw new FleetError("FR_CSR_INVALID", `the requested extension ${id} is malformed`, { cause: err });
  }
}

function sanOf(exts: ParsedCsr["extensions"]): ParsedCsr["san"] {
  const san = { dns: [] as string[], uri: [] as string[], ip: [] as string[], email: [] as string[] };
  for (const gn of decode(exts, OID.subjectAltName, SubjectAlternativeName) ?? []) {
    if (gn.dNSName !== undefined) san.dns.push(gn.dNSName);
    else if (gn.uniformResourceIdentifier !== undefined) san.uri.push(gn.uniformResourceIdentifier);
    else if (gn.rfc822Name !== undefined) san.email.push(gn.rfc822Name);
    else if (gn.iPAddress !== undefined) san.ip.push(normalizeIp(gn.iPAddress));
    else
      fail(
        "FR_CSR_INVALID",
        "the CSR asks for an alternative name type that is not supported (only DNS, URI, IP, email)",
      );
  }
  return san;
}

function normalizeIp(text: string): string {
  try {
    return ipText(ipBytes(text));
  } catch {
    return fail("FR_CSR_INVALID", `the requested IP address "${text}" is malformed`);
  }
}

function requestedProfile(exts: ParsedCsr["extensions"]): ParsedCsr["requested"] {
  const out: { ca?: { pathLen?: number }; keyUsage?: KeyUsage[]; extKeyUsage?: string[] } = {};
  const bc = decode(exts, OID.basicConstraints, BasicConstraints);
  if (bc?.cA) out.ca = bc.pathLenConstraint === undefined ? {} : { pathLen: bc.pathLenConstraint };
  const ku = exts.find((x) => x.oid === OID.keyUsage);
  if (ku) out.keyUsage = keyUsageOf(ku.value);
  const eku = decode(exts, OID.extKeyUsage, ExtendedKeyUsage);
  if (eku) out.extKeyUsage = [...eku];
  return out;
}

function keyUsageOf(value: Buffer): KeyUsage[] {
  const r = new DerReader(value, {
    maxBytes: 16,
    maxDepth: 1,
    code: "FR_CSR_INVALID",
    what: "the requested keyUsage",
  });
  const bits = r.content(r.expect(r.root(), 0x03, "KeyUsage BIT STRING"));
  const out: KeyUsage[] = [];
  for (const [name, bit] of Object.entries(keyUsageBits) as [KeyUsage, number][]) {
    const byte = bits[1 + (bit >> 3)];
    if (byte !== undefined && byte & (0x80 >> (bit & 7))) out.push(name);
  }
  return out;
}

/** Verifies the CSR's self-signature (proof of possession). Bad signature → FR_CSR_SIGNATURE. */
export function verifyCsrSignature(csr: ParsedCsr): void {
  const key = keyObject(csr.publicKey);
  const alg = csr.signatureAlgorithm;
  const keyType = key.asymmetricKeyType;
  const fits =
    (alg.family === "ecdsa" && keyType === "ec") ||
    (alg.family === "ed25519" && keyType === "ed25519") ||
    (alg.family === "ed448" && keyType === "ed448") ||
    (alg.family === "rsa-pkcs1" && keyType === "rsa") ||
    (alg.family === "rsa-pss" && (keyType === "rsa" || keyType === "rsa-pss"));
  if (!fits) fail("FR_CSR_ALGORITHM", `the signature algorithm ${alg.oid} does not fit a ${keyType} key`);
  let ok: boolean;
  try {
    if (alg.family === "rsa-pss") {
      ok = verify(
        alg.hash,
        csr.info,
        { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: alg.saltLength },
        csr.signature,
      );
    } else {
      ok = verify(alg.hash, csr.info, key, csr.signature);
    }
  } catch (e) {
    throw new FleetError("FR_CSR_SIGNATURE", "the signature value is malformed", { cause: e });
  }
  if (!ok)
    fail(
      "FR_CSR_SIGNATURE",
      "the CSR was not signed by the key it carries; make a new CSR with the matching private key",
    );
}
