/**
 * PKCS#10 certification requests (RFC 2986): read by one bounded DER pass (der-reader.ts; csr.test.ts holds
 * the result equal to @peculiar/asn1-csr's decoding for many CSRs, at a fraction of its cost on the issuance
 * path) and verified with node:crypto. Every failure is a FleetError naming what is wrong: malformed input
 * FR_CSR_INVALID, unsupported algorithms FR_CSR_ALGORITHM, a bad signature FR_CSR_SIGNATURE.
 *
 * The parse reports what the CSR *asks for*; nothing here decides what is granted (pki/ roles do).
 */
import { type KeyObject, constants, createPublicKey, verify } from "node:crypto";
import { FleetError, fail, isFleetError } from "../errors/index.js";
import { type DerElement, DerReader } from "./der-reader.js";
import { type KeyUsage, keyUsageBits } from "./extensions.js";
import { ipText } from "./general-name.js";
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
  // Sizes, definite minimal lengths, depth and no trailing bytes first, for the whole tree.
  const r = new DerReader(der, { maxBytes, maxDepth: 24, code: "FR_CSR_INVALID", what: "the CSR" });
  const root = r.expect(r.root(), 0x30, "CertificationRequest");
  r.checkDepth(root);
  const [infoEl, algEl, sigEl, extra] = r.children(root);
  if (extra) r.fail("unexpected fields after the signature");
  const info = r.expect(infoEl, 0x30, "certificationRequestInfo");
  const alg = r.expect(algEl, 0x30, "signatureAlgorithm");
  const sig = r.expect(sigEl, 0x03, "signature");
  const [versionEl, subjectEl, spkiEl, attrsEl, more] = r.children(info);
  const version = r.content(r.expect(versionEl, 0x02, "version"));
  if (version.length !== 1 || version[0] !== 0) r.fail("only version 1 (0) CSRs exist");
  const subject = r.expect(subjectEl, 0x30, "subject");
  const spki = r.expect(spkiEl, 0x30, "subjectPKInfo");
  if (attrsEl) r.expect(attrsEl, 0xa0, "attributes [0]");
  if (more) r.fail("unexpected fields after the attributes", more.start);
  const [spkiAlg, spkiKey, spkiMore] = r.children(spki);
  checkEcParameters(r, r.expect(spkiAlg, 0x30, "subjectPKInfo algorithm"));
  r.expect(spkiKey, 0x03, "subjectPublicKey");
  if (spkiMore) r.fail("unexpected fields in subjectPKInfo", spkiMore.start);

  const publicKey = Buffer.from(r.raw(spki));
  const extensions = requestedExtensions(r, attrsEl);
  return {
    der,
    info: Buffer.from(r.raw(info)),
    signature: Buffer.from(bitString(r, sig, "signature")),
    signatureAlgorithm: signatureAlgorithmOf(r, alg),
    subject: { der: Buffer.from(r.raw(subject)), attributes: subjectAttributes(r, subject) },
    publicKey,
    key: describeKey(publicKey),
    san: sanOf(extensions),
    requested: requestedProfile(extensions),
    extensions,
  };
}

/**
 * RFC 5480 2.1.1: an EC key's parameters name its curve (namedCurve); implicitCurve and specifiedCurve
 * MUST NOT be used, and RFC 5280 verifiers (openssl verify -x509_strict) refuse certificates with them.
 * OpenSSL maps explicit parameters of a known curve back to its name, so the KeyObject cannot tell: the
 * encoding must be looked at.
 */
function checkEcParameters(r: DerReader, alg: DerElement): void {
  if (ecParametersOf(r, alg) === "explicit") {
    fail(
      "FR_CSR_ALGORITHM",
      "the EC key has explicit curve parameters, which RFC 5480 forbids; make the key on a named curve " +
        "(P-256, P-384 or P-521; openssl: -pkeyopt ec_param_enc:named_curve)",
    );
  }
}

/**
 * Whether a SubjectPublicKeyInfo's AlgorithmIdentifier is an EC key's and, if so, whether its parameters
 * name the curve (the only form RFC 5480 allows) or spell it out.
 */
export function ecParametersOf(r: DerReader, alg: DerElement): "named" | "explicit" | "not-ec" {
  const [idEl, paramsEl] = r.children(alg);
  if (r.oid(r.expect(idEl, 0x06, "public key algorithm")) !== OID.ecPublicKey) return "not-ec";
  return paramsEl?.tag === 0x06 ? "named" : "explicit";
}

/** A BIT STRING's bytes; signatures and keys use whole bytes, so unused bits must be 0. */
function bitString(r: DerReader, el: DerElement, what: string): Uint8Array {
  const c = r.content(el);
  if (c.length === 0 || c[0] !== 0) r.fail(`${what} must be a whole number of bytes`, el.start);
  return c.subarray(1);
}

const latin1 = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("latin1");
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The text of a DirectoryString or IA5String; any other type as the hex of its encoding. */
function attributeText(r: DerReader, el: DerElement): string {
  const c = r.content(el);
  switch (el.tag) {
    case 0x0c: // UTF8String
      try {
        return utf8.decode(c);
      } catch {
        return r.fail("a UTF8String is not valid UTF-8", el.start);
      }
    case 0x13: // PrintableString
    case 0x14: // TeletexString (T.61, read as Latin-1)
    case 0x16: // IA5String
      return latin1(c);
    case 0x1e: {
      // BMPString: UTF-16BE
      if (c.length % 2) r.fail("a BMPString has an odd length", el.start);
      let out = "";
      for (let i = 0; i < c.length; i += 2)
        out += String.fromCharCode(((c[i] as number) << 8) | (c[i + 1] as number));
      return out;
    }
    case 0x1c: {
      // UniversalString: UTF-32BE
      if (c.length % 4) r.fail("a UniversalString's length is not a multiple of 4", el.start);
      let out = "";
      for (let i = 0; i < c.length; i += 4) {
        const cp =
          (((c[i] as number) << 24) |
            ((c[i + 1] as number) << 16) |
            ((c[i + 2] as number) << 8) |
            (c[i + 3] as number)) >>>
          0;
        if (cp > 0x10ffff) r.fail("a UniversalString holds a value beyond Unicode", el.start);
        out += String.fromCodePoint(cp);
      }
      return out;
    }
    default:
      return Buffer.from(r.raw(el)).toString("hex");
  }
}

function subjectAttributes(r: DerReader, name: DerElement): CsrAttributeValue[] {
  const out: CsrAttributeValue[] = [];
  for (const rdn of r.children(name)) {
    r.expect(rdn, 0x31, "RelativeDistinguishedName");
    for (const atv of r.children(rdn)) {
      const [typeEl, valueEl, rest] = r.children(r.expect(atv, 0x30, "AttributeTypeAndValue"));
      if (!typeEl || !valueEl || rest)
        r.fail("an AttributeTypeAndValue needs a type and one value", atv.start);
      const oid = r.oid(typeEl);
      out.push({ oid, type: attributeName(oid), value: attributeText(r, valueEl) });
    }
  }
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

function signatureAlgorithmOf(r: DerReader, alg: DerElement): CsrSignatureAlgorithm {
  const [idEl, paramsEl, rest] = r.children(alg);
  if (rest) r.fail("unexpected fields in signatureAlgorithm", rest.start);
  const id = r.oid(r.expect(idEl, 0x06, "signature algorithm"));
  const simple = simpleAlgorithms[id];
  if (simple) return simple;
  if (id !== OID.rsassaPss) {
    fail(
      "FR_CSR_ALGORITHM",
      `signature algorithm ${id} is not supported (SHA-1 and unknown algorithms are refused)`,
    );
  }
  if (!paramsEl || paramsEl.tag === 0x05)
    fail("FR_CSR_ALGORITHM", "RSASSA-PSS without parameters (SHA-1 defaults) is not supported");
  return { oid: id, family: "rsa-pss", ...pssParams(r.raw(paramsEl)) };
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

/** Every extension asked for in extensionRequest attributes (RFC 2985 5.4.2); other attributes are skipped. */
function requestedExtensions(r: DerReader, attrs: DerElement | undefined): ParsedCsr["extensions"] {
  const out: { oid: string; critical: boolean; value: Buffer }[] = [];
  if (!attrs) return out;
  for (const attr of r.children(attrs)) {
    const [typeEl, valuesEl, rest] = r.children(r.expect(attr, 0x30, "Attribute"));
    if (rest) r.fail("unexpected fields in an attribute", rest.start);
    const type = r.oid(r.expect(typeEl, 0x06, "attribute type"));
    const values = r.children(r.expect(valuesEl, 0x31, "attribute values"));
    if (type !== OID.extensionRequest) continue;
    for (const value of values) {
      if (value.tag !== 0x30)
        fail(
          "FR_CSR_INVALID",
          "the CSR's extensionRequest attribute is malformed: Extensions is not a SEQUENCE",
        );
      for (const ext of r.children(value)) {
        const e = extension(r, ext);
        if (out.some((o) => o.oid === e.oid)) fail("FR_CSR_INVALID", `extension ${e.oid} is requested twice`);
        out.push(e);
      }
    }
  }
  return out;
}

function extension(r: DerReader, el: DerElement): { oid: string; critical: boolean; value: Buffer } {
  const parts = r.children(r.expect(el, 0x30, "Extension"));
  const oid = r.oid(r.expect(parts[0], 0x06, "extnID"));
  let critical = false;
  let i = 1;
  if (parts[i]?.tag === 0x01) {
    const b = r.content(parts[i] as DerElement);
    if (b.length !== 1) r.fail("a BOOLEAN must be one byte", (parts[i] as DerElement).start);
    critical = b[0] !== 0;
    i++;
  }
  const value = r.expect(parts[i], 0x04, "extnValue");
  if (parts[i + 1]) r.fail(`unexpected fields in extension ${oid}`, (parts[i + 1] as DerElement).start);
  return { oid, critical, value: Buffer.from(r.content(value)) };
}

/** A reader for one requested extension's value: its errors name the extension. */
function extensionReader(
  exts: ParsedCsr["extensions"],
  id: string,
): { r: DerReader; root: DerElement } | undefined {
  const e = exts.find((x) => x.oid === id);
  if (!e) return undefined;
  const r = new DerReader(e.value, {
    maxBytes: e.value.length,
    maxDepth: 16,
    code: "FR_CSR_INVALID",
    what: `the requested extension ${id}`,
  });
  const root = r.root();
  r.checkDepth(root);
  return { r, root };
}

function sanOf(exts: ParsedCsr["extensions"]): ParsedCsr["san"] {
  const san = { dns: [] as string[], uri: [] as string[], ip: [] as string[], email: [] as string[] };
  const x = extensionReader(exts, OID.subjectAltName);
  if (!x) return san;
  const { r, root } = x;
  for (const gn of r.children(r.expect(root, 0x30, "GeneralNames"))) {
    const c = r.content(gn);
    switch (gn.tag) {
      case 0x81:
        san.email.push(latin1(c));
        break;
      case 0x82:
        san.dns.push(latin1(c));
        break;
      case 0x86:
        san.uri.push(latin1(c));
        break;
      case 0x87:
        if (c.length !== 4 && c.length !== 16)
          fail("FR_CSR_INVALID", `the requested IP address (${c.length} bytes) is malformed`);
        san.ip.push(ipText(c));
        break;
      default:
        fail(
          "FR_CSR_INVALID",
          "the CSR asks for an alternative name type that is not supported (only DNS, URI, IP, email)",
        );
    }
  }
  return san;
}

function requestedProfile(exts: ParsedCsr["extensions"]): ParsedCsr["requested"] {
  const out: { ca?: { pathLen?: number }; keyUsage?: KeyUsage[]; extKeyUsage?: string[] } = {};
  const bc = extensionReader(exts, OID.basicConstraints);
  if (bc) {
    const { r, root } = bc;
    const fields = r.children(r.expect(root, 0x30, "BasicConstraints"));
    let i = 0;
    let ca = false;
    if (fields[i]?.tag === 0x01) {
      const b = r.content(fields[i] as DerElement);
      if (b.length !== 1) r.fail("a BOOLEAN must be one byte");
      ca = b[0] !== 0;
      i++;
    }
    let pathLen: number | undefined;
    if (fields[i]) {
      const c = r.content(r.expect(fields[i], 0x02, "pathLenConstraint"));
      if (c.length === 0 || c.length > 4 || ((c[0] as number) & 0x80) !== 0)
        r.fail("pathLenConstraint out of range");
      pathLen = c.reduce((a, v) => a * 256 + v, 0);
      i++;
    }
    if (fields[i]) r.fail("unexpected fields in BasicConstraints");
    if (ca) out.ca = pathLen === undefined ? {} : { pathLen };
  }
  const ku = exts.find((x) => x.oid === OID.keyUsage);
  if (ku) out.keyUsage = keyUsageOf(ku.value);
  const eku = extensionReader(exts, OID.extKeyUsage);
  if (eku) {
    const { r, root } = eku;
    out.extKeyUsage = r.children(r.expect(root, 0x30, "ExtKeyUsageSyntax")).map((el) => r.oid(el));
  }
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
