/**
 * GeneralName encodings (RFC 5280 4.2.1.6): rfc822Name [1], dNSName [2], uniformResourceIdentifier [6]
 * and iPAddress [7] (4 octets for IPv4, 16 for IPv6; address + mask in name constraints, 4.2.1.10).
 */
import { isIPv4, isIPv6 } from "node:net";
import { fail } from "../errors/index.js";
import { ia5String, implicitPrimitive } from "./der.js";

/** Requested or issued alternative names, by kind. */
export interface SanSpec {
  readonly dns?: readonly string[];
  /** URIs, including `spiffe://trust-domain/path` identities. */
  readonly uri?: readonly string[];
  /** IPv4 or IPv6 addresses in text form. */
  readonly ip?: readonly string[];
  readonly email?: readonly string[];
}

const DNS_NAME =
  /^(\*\.)?([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;

export function dnsName(name: string): Buffer {
  if (name.length > 253 || !DNS_NAME.test(name)) {
    fail("FR_CERT_TEMPLATE", `"${name}" is not a valid DNS name (use ASCII/punycode labels)`);
  }
  return ia5String(name, 0x82);
}

export function uriName(uri: string): Buffer {
  // RFC 5280 4.2.1.6: the URI MUST include a scheme and a scheme-specific part; no relative references.
  if (!/^[A-Za-z][A-Za-z0-9+.-]*:[^\s]+$/.test(uri))
    fail("FR_CERT_TEMPLATE", `"${uri}" is not an absolute URI`);
  return ia5String(uri, 0x86);
}

export function emailName(email: string): Buffer {
  if (!/^[^\s@]+@[^\s@]+$/.test(email))
    fail("FR_CERT_TEMPLATE", `"${email}" is not an email address (mailbox)`);
  return ia5String(email, 0x81);
}

/** Address octets of an IPv4 or IPv6 address (network order). */
export function ipBytes(text: string): Buffer {
  if (isIPv4(text)) return Buffer.from(text.split(".").map(Number));
  if (isIPv6(text)) return ipv6Bytes(text);
  return fail("FR_CERT_TEMPLATE", `"${text}" is not an IPv4 or IPv6 address`);
}

function ipv6Bytes(text: string): Buffer {
  let s = text;
  const out = Buffer.alloc(16);
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hextets.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4?.[1]) {
    const b = v4[1].split(".").map(Number);
    s =
      s.slice(0, -v4[1].length) +
      `${(((b[0] ?? 0) << 8) | (b[1] ?? 0)).toString(16)}:${(((b[2] ?? 0) << 8) | (b[3] ?? 0)).toString(16)}`;
  }
  const [head = "", tail] = s.split("::");
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill("0"), ...t];
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

export function ipName(text: string): Buffer {
  return implicitPrimitive(7, ipBytes(text));
}

/** iPAddress for name constraints: address followed by mask, from CIDR text (10.0.0.0/8, fd00::/8). */
export function ipConstraint(cidr: string): Buffer {
  const [addr = "", prefixText] = cidr.split("/");
  const bytes = ipBytes(addr);
  const bits = bytes.length * 8;
  const prefix = prefixText === undefined ? bits : Number(prefixText);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > bits)
    fail("FR_CERT_TEMPLATE", `"${cidr}" has a bad prefix length`);
  const mask = Buffer.alloc(bytes.length);
  for (let i = 0; i < prefix; i++) mask[i >> 3] = (mask[i >> 3] as number) | (0x80 >> (i & 7));
  for (let i = 0; i < bytes.length; i++) bytes[i] = (bytes[i] as number) & (mask[i] as number);
  return implicitPrimitive(7, Buffer.concat([bytes, mask]));
}

/** The GeneralName list of a SAN spec, in the order dns, uri, ip, email. */
export function generalNames(san: SanSpec): Buffer[] {
  return [
    ...(san.dns ?? []).map(dnsName),
    ...(san.uri ?? []).map(uriName),
    ...(san.ip ?? []).map(ipName),
    ...(san.email ?? []).map(emailName),
  ];
}

/** Text form of iPAddress octets (4 or 16), as the CSR parser reports requested addresses. */
export function ipText(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join(".");
  if (bytes.length === 16) {
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2)
      groups.push((((bytes[i] as number) << 8) | (bytes[i + 1] as number)).toString(16));
    // Compress the longest run of zero groups (RFC 5952 4.2).
    let best = -1;
    let bestLen = 1;
    for (let i = 0; i < 8;) {
      if (groups[i] !== "0") {
        i++;
        continue;
      }
      let j = i;
      while (j < 8 && groups[j] === "0") j++;
      if (j - i > bestLen) [best, bestLen] = [i, j - i];
      i = j;
    }
    if (best < 0) return groups.join(":");
    return `${groups.slice(0, best).join(":")}::${groups.slice(best + bestLen).join(":")}`;
  }
  return fail("FR_CSR_INVALID", `an iPAddress has ${bytes.length} octets; expected 4 or 16`);
}
