/**
 * Certificate and CRL extension encoders (RFC 5280 4.2 and 5.2). Each returns a complete Extension
 * (SEQUENCE { extnID, critical DEFAULT FALSE, extnValue OCTET STRING }) ready to be placed in a list.
 */
import { fail } from "../errors/index.js";
import {
  type DerNode,
  boolean,
  encode,
  explicit,
  ia5String,
  implicitConstructed,
  implicitPrimitive,
  integer,
  namedBits,
  octetString,
  oid,
  seq,
} from "./der.js";
import { type SanSpec, dnsName, emailName, generalNames, ipConstraint, uriName } from "./general-name.js";
import { EKU, OID } from "./oids.js";

/** Any extension; `value` is the DER placed inside extnValue. */
export interface RawExtension {
  readonly oid: string;
  readonly critical?: boolean;
  readonly value: Uint8Array;
}

export function extension(id: string, critical: boolean, value: DerNode): Buffer {
  return critical
    ? encode(seq(oid(id), boolean(true), octetString(encode(value))))
    : encode(seq(oid(id), octetString(encode(value))));
}

export const rawExtension = (e: RawExtension): Buffer => extension(e.oid, e.critical ?? false, e.value);

/** basicConstraints (4.2.1.9): critical; cA TRUE with optional pathLen for CAs, empty for end entities. */
export function basicConstraints(ca: { pathLen?: number } | undefined): Buffer {
  if (!ca) return extension(OID.basicConstraints, true, seq());
  if (ca.pathLen === undefined) return extension(OID.basicConstraints, true, seq(boolean(true)));
  if (!Number.isInteger(ca.pathLen) || ca.pathLen < 0)
    fail("FR_CERT_TEMPLATE", "pathLen must be a non-negative integer");
  return extension(OID.basicConstraints, true, seq(boolean(true), integer(ca.pathLen)));
}

export type KeyUsage =
  | "digitalSignature"
  | "nonRepudiation"
  | "keyEncipherment"
  | "dataEncipherment"
  | "keyAgreement"
  | "keyCertSign"
  | "cRLSign"
  | "encipherOnly"
  | "decipherOnly";

/** Bit numbers of KeyUsage (4.2.1.3). */
export const keyUsageBits: Readonly<Record<KeyUsage, number>> = {
  digitalSignature: 0,
  nonRepudiation: 1,
  keyEncipherment: 2,
  dataEncipherment: 3,
  keyAgreement: 4,
  keyCertSign: 5,
  cRLSign: 6,
  encipherOnly: 7,
  decipherOnly: 8,
};

/** keyUsage (4.2.1.3), marked critical as the section recommends. */
export function keyUsage(usages: readonly KeyUsage[]): Buffer {
  if (usages.length === 0) fail("FR_CERT_TEMPLATE", "keyUsage needs at least one bit set (RFC 5280 4.2.1.3)");
  return extension(
    OID.keyUsage,
    true,
    namedBits(
      usages.map((u) => {
        const bit = keyUsageBits[u] as number | undefined;
        if (bit === undefined) fail("FR_CERT_TEMPLATE", `unknown key usage "${u}"`);
        return bit;
      }),
    ),
  );
}

/** Dotted OID of an extended key usage given by name (serverAuth…) or OID. */
export function ekuOid(purpose: string): string {
  const known = EKU[purpose];
  if (known) return known;
  if (/^\d+(\.\d+)+$/.test(purpose)) return purpose;
  return fail(
    "FR_CERT_TEMPLATE",
    `unknown extended key usage "${purpose}"; use ${Object.keys(EKU).join(", ")} or an OID`,
  );
}

/** extKeyUsage (4.2.1.12), non-critical. */
export function extKeyUsage(purposes: readonly string[]): Buffer {
  return extension(OID.extKeyUsage, false, seq(...purposes.map((p) => oid(ekuOid(p)))));
}

/** subjectAltName (4.2.1.6); critical when the subject is empty, as the section requires. */
export function subjectAltName(san: SanSpec, critical: boolean): Buffer {
  const names = generalNames(san);
  if (names.length === 0) fail("FR_CERT_TEMPLATE", "subjectAltName needs at least one name");
  return extension(OID.subjectAltName, critical, seq(...names));
}

export const subjectKeyIdentifier = (id: Uint8Array): Buffer =>
  extension(OID.subjectKeyIdentifier, false, octetString(id));

/** authorityKeyIdentifier (4.2.1.1) with keyIdentifier [0] only. */
export const authorityKeyIdentifier = (id: Uint8Array): Buffer =>
  extension(OID.authorityKeyIdentifier, false, seq(implicitPrimitive(0, id)));

/** DistributionPointName fullName as [0] { [0] GeneralNames } (the form shared by CRLDP and IDP). */
export const distributionPointName = (uris: readonly string[]): DerNode =>
  explicit(0, implicitConstructed(0, uris.map(uriName)));

/** cRLDistributionPoints (4.2.1.13): one distribution point holding every URI as its full name. */
export function crlDistributionPoints(uris: readonly string[]): Buffer {
  return extension(OID.crlDistributionPoints, false, seq(seq(distributionPointName(uris))));
}

/** authorityInfoAccess (4.2.2.1): OCSP responders and caIssuers URLs. */
export function authorityInfoAccess(ocsp: readonly string[], caIssuers: readonly string[]): Buffer {
  const desc = (method: string, uri: string) => seq(oid(method), ia5String(uri, 0x86));
  return extension(
    OID.authorityInfoAccess,
    false,
    seq(...ocsp.map((u) => desc(OID.ocsp, u)), ...caIssuers.map((u) => desc(OID.caIssuers, u))),
  );
}

export interface NameSubtrees {
  /** DNS name constraints: `example.com` (the domain and its subdomains). */
  readonly dns?: readonly string[];
  /** URI host constraints: `example.com` or `.example.com` (RFC 5280 4.2.1.10). */
  readonly uri?: readonly string[];
  /** CIDR ranges, IPv4 or IPv6. */
  readonly ip?: readonly string[];
  /** rfc822 constraints: a mailbox, a host or `.domain`. */
  readonly email?: readonly string[];
}

export interface NameConstraints {
  readonly permitted?: NameSubtrees;
  readonly excluded?: NameSubtrees;
}

function subtrees(t: NameSubtrees): DerNode[] {
  const uriHost = (h: string) => {
    if (!/^\.?[A-Za-z0-9_.-]+$/.test(h))
      fail("FR_CERT_TEMPLATE", `"${h}" is not a host or .domain URI constraint`);
    return ia5String(h, 0x86);
  };
  const email = (e: string) => (e.includes("@") ? emailName(e) : ia5String(e, 0x81));
  const names = [
    ...(t.dns ?? []).map((d) => dnsName(d.replace(/^\./, ""))),
    ...(t.uri ?? []).map(uriHost),
    ...(t.ip ?? []).map(ipConstraint),
    ...(t.email ?? []).map(email),
  ];
  // GeneralSubtree ::= SEQUENCE { base, minimum DEFAULT 0, maximum ABSENT } (4.2.1.10)
  return names.map((n) => seq(n));
}

/** nameConstraints (4.2.1.10), critical as conforming CAs must mark it; only on CA certificates. */
export function nameConstraints(nc: NameConstraints): Buffer {
  const parts: DerNode[] = [];
  const permitted = nc.permitted ? subtrees(nc.permitted) : [];
  const excluded = nc.excluded ? subtrees(nc.excluded) : [];
  if (permitted.length) parts.push(implicitConstructed(0, permitted));
  if (excluded.length) parts.push(implicitConstructed(1, excluded));
  if (parts.length === 0)
    fail("FR_CERT_TEMPLATE", "nameConstraints needs permitted or excluded subtrees (4.2.1.10)");
  return extension(OID.nameConstraints, true, seq(...parts));
}

export interface PolicySpec {
  /** Policy OID (or `anyPolicy`). */
  readonly oid: string;
  /** Optional CPS pointer URI (id-qt-cps). */
  readonly cps?: string;
}

/** certificatePolicies (4.2.1.4), non-critical. */
export function certificatePolicies(policies: readonly PolicySpec[]): Buffer {
  return extension(
    OID.certificatePolicies,
    false,
    seq(
      ...policies.map((p) => {
        const id = oid(p.oid === "anyPolicy" ? OID.anyPolicy : p.oid);
        return p.cps ? seq(id, seq(seq(oid(OID.cps), ia5String(p.cps)))) : seq(id);
      }),
    ),
  );
}

/** id-pkix-ocsp-nocheck (RFC 6960 4.2.2.2.1) for delegated OCSP responder certificates. */
export const ocspNoCheck = (): Buffer => extension(OID.ocspNoCheck, false, Buffer.from([0x05, 0x00]));
