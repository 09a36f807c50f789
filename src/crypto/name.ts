/**
 * Distinguished names (RFC 5280 4.1.2.4): one attribute per RDN, in the order given. Country, serial
 * number and dnQualifier are PrintableString as RFC 5280 Appendix A requires; emailAddress and
 * domainComponent are IA5String; every other attribute is UTF8String (4.1.2.4: "MUST use UTF8String").
 */
import { fail } from "../errors/index.js";
import { constructed, encode, ia5String, oid, printableString, seq, setOf, utf8String } from "./der.js";

export interface DnAttribute {
  /** Short name (CN, O, OU, C, ST, L, serialNumber, DC, UID, emailAddress, …) or a dotted OID. */
  readonly type: string;
  readonly value: string;
}

/** A subject as a list of attributes, or as a Name already DER-encoded. */
export type NameSpec = readonly DnAttribute[] | Uint8Array;

type StringKind = "utf8" | "printable" | "ia5";

const attributes: Record<string, { oid: string; kind: StringKind }> = {
  CN: { oid: "2.5.4.3", kind: "utf8" },
  SN: { oid: "2.5.4.4", kind: "utf8" },
  serialNumber: { oid: "2.5.4.5", kind: "printable" },
  C: { oid: "2.5.4.6", kind: "printable" },
  L: { oid: "2.5.4.7", kind: "utf8" },
  ST: { oid: "2.5.4.8", kind: "utf8" },
  street: { oid: "2.5.4.9", kind: "utf8" },
  O: { oid: "2.5.4.10", kind: "utf8" },
  OU: { oid: "2.5.4.11", kind: "utf8" },
  title: { oid: "2.5.4.12", kind: "utf8" },
  GN: { oid: "2.5.4.42", kind: "utf8" },
  dnQualifier: { oid: "2.5.4.46", kind: "printable" },
  pseudonym: { oid: "2.5.4.65", kind: "utf8" },
  UID: { oid: "0.9.2342.19200300.100.1.1", kind: "utf8" },
  DC: { oid: "0.9.2342.19200300.100.1.25", kind: "ia5" },
  emailAddress: { oid: "1.2.840.113549.1.9.1", kind: "ia5" },
};

/** Upper bounds from RFC 5280 Appendix A (ub-common-name etc.). */
const upperBounds: Record<string, number> = {
  CN: 64,
  O: 64,
  OU: 64,
  L: 128,
  ST: 128,
  title: 64,
  serialNumber: 64,
};

const byOid = new Map(Object.entries(attributes).map(([name, a]) => [a.oid, name]));

/** Short name for an attribute OID, or the OID itself when unknown. */
export const attributeName = (dotted: string): string => byOid.get(dotted) ?? dotted;

const EMPTY_NAME = Buffer.from([0x30, 0x00]);

/** Encodes a Name (RDNSequence). An empty list gives the empty Name, allowed only with a critical SAN. */
export function encodeName(spec: NameSpec): Buffer {
  if (spec instanceof Uint8Array) {
    if (spec[0] !== 0x30) fail("FR_CERT_TEMPLATE", "a DER name must be a SEQUENCE (RDNSequence)");
    return Buffer.from(spec.buffer, spec.byteOffset, spec.byteLength);
  }
  if (spec.length === 0) return EMPTY_NAME;
  const rdns = spec.map((a) => {
    const known = attributes[a.type];
    const type = known?.oid ?? (/^\d+(\.\d+)+$/.test(a.type) ? a.type : undefined);
    if (!type)
      fail("FR_CERT_TEMPLATE", `unknown name attribute "${a.type}"; use a short name or a dotted OID`);
    const max = upperBounds[a.type] ?? 256;
    if (a.value.length === 0 || a.value.length > max) {
      fail(
        "FR_CERT_TEMPLATE",
        `name attribute ${a.type} must be 1 to ${max} characters (RFC 5280 Appendix A)`,
      );
    }
    if (a.type === "C" && !/^[A-Z]{2}$/.test(a.value))
      fail("FR_CERT_TEMPLATE", `country "${a.value}" is not a two-letter code`);
    const kind = known?.kind ?? "utf8";
    const value =
      kind === "printable"
        ? printableString(a.value)
        : kind === "ia5"
          ? ia5String(a.value)
          : utf8String(a.value);
    return setOf([seq(oid(type), value)]);
  });
  return encode(constructed(0x30, rdns));
}
