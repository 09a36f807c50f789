/**
 * Certification path validation for IDevID chains (RFC 5280 6.1), from a registered manufacturer CA
 * (the trust anchor) down to the device's certificate. Bounded: at most 6 certificates of at most
 * 16 KiB each, every one first walked by the bounded DER reader. What is checked, by RFC step:
 * 6.1.3 (a)(1) signature under the working public key, (a)(2) validity at `at`, (a)(3) not on the
 * manufacturer's CRL (when one is registered; the CRL's signature and times are checked too),
 * (a)(4) issuer name chaining, (b)(c) name constraints (dNSName, rfc822Name, URI host, iPAddress,
 * directoryName); 6.1.4 (k) basicConstraints cA on intermediates, (l)(m) path length, (n) keyCertSign,
 * (o) unknown critical extensions; 6.1.5 the leaf's keyUsage must allow digitalSignature (the proof of
 * possession is a signature). Anything unparseable is FR_ENROLL_MALFORMED; a parseable chain that fails
 * a check is FR_ENROLL_CHAIN naming the certificate and the step.
 */
import { X509Certificate, createPublicKey, verify as cryptoVerify } from "node:crypto";
import { AsnConvert } from "@peculiar/asn1-schema";
import type { GeneralName, Name } from "@peculiar/asn1-x509";
import {
  BasicConstraints,
  Certificate,
  CertificateList,
  KeyUsage,
  KeyUsageFlags,
  NameConstraints,
  SubjectAlternativeName,
} from "@peculiar/asn1-x509";
import { DerReader } from "../crypto/index.js";
import { fail } from "../errors/index.js";

export const MAX_CHAIN = 6;
const MAX_CERT_BYTES = 16 * 1024;
const MAX_CRL_BYTES = 4 * 1024 * 1024;

const OID = {
  basicConstraints: "2.5.29.19",
  keyUsage: "2.5.29.15",
  nameConstraints: "2.5.29.30",
  subjectAltName: "2.5.29.17",
  // Understood (or harmless to ignore) non-constraint extensions.
  known: new Set([
    "2.5.29.19",
    "2.5.29.15",
    "2.5.29.30",
    "2.5.29.17",
    "2.5.29.14", // SKI
    "2.5.29.35", // AKI
    "2.5.29.37", // EKU
    "2.5.29.31", // CRL DP
    "1.3.6.1.5.5.7.1.1", // AIA
    "2.5.29.32", // certificatePolicies (no policy processing: any-policy)
    "1.3.6.1.4.1.311.21.7", // Windows template, non-critical in practice
  ]),
};

export interface ParsedCert {
  readonly der: Buffer;
  readonly asn: Certificate;
  readonly x509: X509Certificate;
  readonly serialHex: string;
  readonly subjectAttrs: readonly { readonly type: string; readonly value: string }[];
  readonly spki: Buffer;
}

export interface PathInput {
  /** Device certificate first, then intermediates; the anchor may be included last. */
  readonly chain: readonly Buffer[];
  readonly anchor: Buffer;
  readonly crl?: Buffer | undefined;
  readonly at: Date;
}

const malformed = (why: string): never => fail("FR_ENROLL_MALFORMED", why);
const refuse = (why: string): never => fail("FR_ENROLL_CHAIN", why);

export function parseCert(der: Buffer, what: string): ParsedCert {
  if (der.length > MAX_CERT_BYTES) malformed(`${what} is larger than ${MAX_CERT_BYTES} bytes`);
  // The bounded reader first: depth, lengths and trailing bytes, before a schema parser sees the input.
  const r = new DerReader(der, { maxBytes: MAX_CERT_BYTES, maxDepth: 24, code: "FR_ENROLL_MALFORMED", what });
  r.checkDepth(r.expect(r.root(), 0x30, "Certificate"));
  try {
    const asn = AsnConvert.parse(der, Certificate);
    const x509 = new X509Certificate(der);
    const serial = Buffer.from(asn.tbsCertificate.serialNumber);
    return {
      der,
      asn,
      x509,
      serialHex: (serial[0] === 0 && serial.length > 1 ? serial.subarray(1) : serial).toString("hex"),
      subjectAttrs: nameAttrs(asn.tbsCertificate.subject),
      spki: Buffer.from(AsnConvert.serialize(asn.tbsCertificate.subjectPublicKeyInfo)),
    };
  } catch (e) {
    return malformed(`${what} cannot be parsed as an X.509 certificate: ${(e as Error).message}`);
  }
}

const SHORT: Record<string, string> = {
  "2.5.4.3": "CN",
  "2.5.4.5": "serialNumber",
  "2.5.4.6": "C",
  "2.5.4.10": "O",
  "2.5.4.11": "OU",
};

function nameAttrs(name: Name): { type: string; value: string }[] {
  return name.flatMap((rdn) =>
    rdn.map((atv) => ({ type: SHORT[atv.type] ?? atv.type, value: atv.value.toString() })),
  );
}

function ext<T>(c: Certificate, oid: string, type: new () => T): T | undefined {
  const e = c.tbsCertificate.extensions?.find((x) => x.extnID === oid);
  if (!e) return undefined;
  try {
    return AsnConvert.parse(e.extnValue.buffer, type);
  } catch (err) {
    return malformed(`extension ${oid} cannot be parsed: ${(err as Error).message}`);
  }
}

/** Validates the path; returns the device certificate, parsed. */
export function validatePath(input: PathInput): ParsedCert {
  if (input.chain.length === 0)
    malformed("chain is empty: send the device certificate first, then intermediates");
  if (input.chain.length > MAX_CHAIN) malformed(`chain holds more than ${MAX_CHAIN} certificates`);
  const certs = input.chain.map((d, i) =>
    parseCert(d, i === 0 ? "the device certificate" : `chain certificate ${i}`),
  );
  const anchor = parseCert(input.anchor, "the manufacturer CA certificate");
  // The device may send the manufacturer CA along; it is the anchor, not part of the path.
  const last = certs[certs.length - 1];
  if (certs.length > 1 && last?.der.equals(anchor.der)) certs.pop();

  const at = input.at.getTime();
  const anchorBc = ext(anchor.asn, OID.basicConstraints, BasicConstraints);
  let maxPath = anchorBc?.pathLenConstraint ?? Infinity;
  const constraints: NameConstraints[] = [];
  const anchorNc = ext(anchor.asn, OID.nameConstraints, NameConstraints);
  if (anchorNc) constraints.push(anchorNc);
  let working = anchor;

  for (let i = certs.length - 1; i >= 0; i--) {
    const c = certs[i]!;
    const label =
      i === 0 ? "the device certificate" : `intermediate ${i} (${c.x509.subject.replace(/\n/g, ", ")})`;
    // 6.1.3 (a)(4) and (a)(1): issued by the working issuer, signature verifies with its key.
    if (!c.x509.checkIssued(working.x509)) {
      refuse(
        `${label} is not issued by ${i === certs.length - 1 ? "the manufacturer CA" : "the next certificate"} (issuer name or key identifier differs)`,
      );
    }
    if (!c.x509.verify(working.x509.publicKey)) refuse(`${label} has a signature that does not verify`);
    // (a)(2) validity.
    const nb = c.asn.tbsCertificate.validity.notBefore.getTime().getTime();
    const na = c.asn.tbsCertificate.validity.notAfter.getTime().getTime();
    if (at < nb) refuse(`${label} is not valid before ${new Date(nb).toISOString()}`);
    if (at > na) refuse(`${label} expired at ${new Date(na).toISOString()}`);
    // (a)(3) revocation: the manufacturer's CRL covers what the manufacturer CA issued.
    if (input.crl && working === anchor) checkCrl(input.crl, anchor, c, at, label);
    // (b)(c) name constraints of every CA above.
    for (const nc of constraints) checkNameConstraints(nc, c, label);
    checkCriticalExtensions(c, label);
    if (i > 0) {
      // 6.1.4 (k) basicConstraints, (l)(m) path length, (n) keyCertSign.
      const bc = ext(c.asn, OID.basicConstraints, BasicConstraints);
      if (!bc?.cA) refuse(`${label} is not a CA certificate (basicConstraints cA is not set)`);
      if (maxPath <= 0) refuse(`${label} exceeds the path length constraint`);
      maxPath = Math.min(maxPath - 1, bc!.pathLenConstraint ?? Infinity);
      const ku = ext(c.asn, OID.keyUsage, KeyUsage);
      if (ku && !(Number(ku.toNumber()) & KeyUsageFlags.keyCertSign))
        refuse(`${label} keyUsage does not allow keyCertSign`);
      const nc = ext(c.asn, OID.nameConstraints, NameConstraints);
      if (nc) constraints.push(nc);
    }
    working = c;
  }
  const leaf = certs[0]!;
  // 6.1.5: the proof of possession is a signature, so the key must be allowed to sign.
  const ku = ext(leaf.asn, OID.keyUsage, KeyUsage);
  if (ku && !(Number(ku.toNumber()) & KeyUsageFlags.digitalSignature)) {
    refuse(
      "the device certificate's keyUsage does not allow digitalSignature, which the proof of possession needs",
    );
  }
  const bc = ext(leaf.asn, OID.basicConstraints, BasicConstraints);
  if (bc?.cA) refuse("the device certificate is a CA certificate");
  return leaf;
}

function checkCriticalExtensions(c: ParsedCert, label: string): void {
  for (const e of c.asn.tbsCertificate.extensions ?? []) {
    if (e.critical && !OID.known.has(e.extnID))
      refuse(`${label} has an unknown critical extension ${e.extnID}`);
  }
}

// --- revocation -------------------------------------------------------------------------------------

const SIG_HASH: Record<string, string | null> = {
  "1.2.840.10045.4.3.2": "sha256",
  "1.2.840.10045.4.3.3": "sha384",
  "1.2.840.10045.4.3.4": "sha512",
  "1.2.840.113549.1.1.11": "sha256",
  "1.2.840.113549.1.1.12": "sha384",
  "1.2.840.113549.1.1.13": "sha512",
  "1.3.101.112": null,
};

export function parseCrl(der: Buffer): CertificateList {
  if (der.length > MAX_CRL_BYTES) malformed(`the CRL is larger than ${MAX_CRL_BYTES} bytes`);
  const r = new DerReader(der, {
    maxBytes: MAX_CRL_BYTES,
    maxDepth: 24,
    code: "FR_ENROLL_MALFORMED",
    what: "the CRL",
  });
  r.checkDepth(r.expect(r.root(), 0x30, "CertificateList"));
  try {
    return AsnConvert.parse(der, CertificateList);
  } catch (e) {
    return malformed(`the CRL cannot be parsed: ${(e as Error).message}`);
  }
}

/** Verifies a CRL's signature with the CA's key (RFC 5280 6.3.3 (f)/(g)). */
export function crlSignedBy(der: Buffer, ca: X509Certificate): boolean {
  const r = new DerReader(der, {
    maxBytes: MAX_CRL_BYTES,
    maxDepth: 24,
    code: "FR_ENROLL_MALFORMED",
    what: "the CRL",
  });
  const [tbs, alg, sig] = r.children(r.root());
  if (!tbs || !alg || !sig) return false;
  const [algOid] = r.children(alg);
  const oid = algOid ? r.oid(algOid) : "";
  if (!(oid in SIG_HASH)) malformed(`the CRL uses an unsupported signature algorithm ${oid}`);
  const sigBits = r.content(sig).subarray(1); // BIT STRING: drop the unused-bits octet
  return cryptoVerify(
    SIG_HASH[oid] ?? null,
    r.raw(tbs),
    createPublicKey(ca.publicKey.export({ format: "pem", type: "spki" })),
    sigBits,
  );
}

function checkCrl(der: Buffer, anchor: ParsedCert, c: ParsedCert, at: number, label: string): void {
  const crl = parseCrl(der);
  if (!crlSignedBy(der, anchor.x509))
    refuse("the manufacturer's CRL does not verify under the manufacturer CA");
  const tbs = crl.tbsCertList;
  if (tbs.thisUpdate.getTime().getTime() > at) refuse("the manufacturer's CRL is not yet valid");
  const next = tbs.nextUpdate?.getTime().getTime();
  if (next !== undefined && next < at) {
    refuse(`the manufacturer's CRL expired at ${new Date(next).toISOString()}; register a fresh one`);
  }
  const serial = Buffer.from(c.asn.tbsCertificate.serialNumber);
  for (const rc of tbs.revokedCertificates ?? []) {
    if (Buffer.from(rc.userCertificate).equals(serial)) refuse(`${label} is revoked by the manufacturer`);
  }
}

// --- name constraints -------------------------------------------------------------------------------

type Kind = "dns" | "email" | "uri" | "ip" | "dn";

function namesOf(c: ParsedCert): { kind: Kind; value: string | Name }[] {
  const out: { kind: Kind; value: string | Name }[] = [];
  if (c.asn.tbsCertificate.subject.length) out.push({ kind: "dn", value: c.asn.tbsCertificate.subject });
  const san = ext(c.asn, OID.subjectAltName, SubjectAlternativeName);
  for (const g of san ?? []) {
    const n = generalName(g);
    if (n) out.push(n);
    else if (!g.otherName && !g.registeredID)
      refuse("a subjectAltName of an unsupported type cannot be checked against name constraints");
  }
  return out;
}

function generalName(g: GeneralName): { kind: Kind; value: string | Name } | undefined {
  if (g.dNSName !== undefined) return { kind: "dns", value: g.dNSName.toLowerCase() };
  if (g.rfc822Name !== undefined) return { kind: "email", value: g.rfc822Name.toLowerCase() };
  if (g.uniformResourceIdentifier !== undefined) return { kind: "uri", value: g.uniformResourceIdentifier };
  if (g.iPAddress !== undefined) return { kind: "ip", value: g.iPAddress };
  if (g.directoryName !== undefined) return { kind: "dn", value: g.directoryName };
  return undefined;
}

function checkNameConstraints(nc: NameConstraints, c: ParsedCert, label: string): void {
  const names = namesOf(c);
  const subtrees = (list: typeof nc.permittedSubtrees) => (list ?? []).map((s) => generalName(s.base));
  const permitted = subtrees(nc.permittedSubtrees);
  const excluded = subtrees(nc.excludedSubtrees);
  for (const n of names) {
    const show = typeof n.value === "string" ? n.value : "its subject";
    for (const e of excluded) {
      if (e && e.kind === n.kind && matches(n.kind, n.value, e.value))
        refuse(`${label}: ${show} is in an excluded name subtree`);
    }
    const sameKind = permitted.filter((p) => p?.kind === n.kind);
    if (sameKind.length && !sameKind.some((p) => matches(n.kind, n.value, p!.value))) {
      refuse(`${label}: ${show} is outside the permitted name subtrees`);
    }
  }
}

function matches(kind: Kind, name: string | Name, base: string | Name): boolean {
  switch (kind) {
    case "dns":
      return dnsWithin(name as string, (base as string).toLowerCase());
    case "email": {
      const b = (base as string).toLowerCase();
      const n = name as string;
      if (b.includes("@")) return n === b;
      const host = n.slice(n.lastIndexOf("@") + 1);
      return b.startsWith(".") ? host.endsWith(b) : host === b;
    }
    case "uri": {
      let host: string;
      try {
        host = new URL(name as string).hostname.toLowerCase();
      } catch {
        return false;
      }
      const b = (base as string).toLowerCase();
      return b.startsWith(".") ? host.endsWith(b) : host === b;
    }
    case "ip":
      return ipWithin(name as string, base as string);
    case "dn": {
      const n = name as Name;
      const b = base as Name;
      if (b.length > n.length) return false;
      return b.every((rdn, i) =>
        Buffer.from(AsnConvert.serialize(rdn)).equals(Buffer.from(AsnConvert.serialize(n[i]!))),
      );
    }
  }
}

function dnsWithin(name: string, base: string): boolean {
  if (base === "") return true;
  if (base.startsWith(".")) return name.endsWith(base);
  return name === base || name.endsWith("." + base);
}

/** The iPAddress constraint is address + mask (RFC 5280 4.2.1.10), printed by asn1-x509 as "a.b.c.d/m.m.m.m" or similar. */
function ipWithin(name: string, base: string): boolean {
  const addr = ipBytes(name);
  const [net, mask] = ipNet(base);
  if (!addr || !net || !mask || addr.length !== net.length) return false;
  return addr.every((b, i) => (b & mask[i]!) === (net[i]! & mask[i]!));
}

function ipBytes(s: string): number[] | undefined {
  if (/^\d+\.\d+\.\d+\.\d+$/.test(s)) return s.split(".").map(Number);
  if (s.includes(":")) {
    const [head, tail] = s.split("::") as [string, string | undefined];
    const h = head ? head.split(":") : [];
    const t = tail ? tail.split(":") : [];
    const groups = [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
    return groups.flatMap((g) => {
      const v = parseInt(g as string, 16);
      return [v >> 8, v & 0xff];
    });
  }
  return undefined;
}

function ipNet(base: string): [number[] | undefined, number[] | undefined] {
  const slash = base.indexOf("/");
  if (slash < 0) {
    const raw = Buffer.from(base, "hex");
    if (raw.length === 8 || raw.length === 32) {
      const half = raw.length / 2;
      return [[...raw.subarray(0, half)], [...raw.subarray(half)]];
    }
    return [undefined, undefined];
  }
  const addr = ipBytes(base.slice(0, slash));
  const m = base.slice(slash + 1);
  if (!addr) return [undefined, undefined];
  if (/^\d+$/.test(m)) {
    const bits = Number(m);
    return [
      addr,
      addr.map((_, i) => {
        const b = Math.max(0, Math.min(8, bits - i * 8));
        return (0xff << (8 - b)) & 0xff;
      }),
    ];
  }
  return [addr, ipBytes(m)];
}
