/**
 * A lean DER writer (X.690 section 10: definite lengths, minimal encodings).
 *
 * Primitive values are encoded at once into small Buffers. Constructed values are kept as a lazy tree
 * whose sizes are known up front, so `encode()` allocates the final Buffer once and copies every leaf
 * exactly once: nesting does not re-copy the children at each level.
 */
import { fail } from "../errors/index.js";

/** Universal and context tag bytes used across X.509, CRL and OCSP. */
export const Tag = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  ENUMERATED: 0x0a,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** A constructed value whose encoding is deferred until `encode()`. */
export interface DerTree {
  readonly tag: number;
  readonly children: readonly DerNode[];
  /** Length of the contents (sum of the children's sizes). */
  readonly contentLength: number;
  /** Total encoded size: tag + length octets + contents. */
  readonly size: number;
}

/** Either a complete TLV already encoded, or a deferred constructed value. */
export type DerNode = Uint8Array | DerTree;

function nodeSize(n: DerNode): number {
  return n instanceof Uint8Array ? n.length : n.size;
}

/** Number of octets the length field takes (X.690 8.1.3: short form below 128, long form above). */
export function lengthOctets(len: number): number {
  if (len < 0x80) return 1;
  if (len < 0x100) return 2;
  if (len < 0x10000) return 3;
  if (len < 0x1000000) return 4;
  return 5;
}

/** Writes a length field at `off`; returns the offset after it. */
export function writeLength(buf: Uint8Array, off: number, len: number): number {
  if (len < 0x80) {
    buf[off] = len;
    return off + 1;
  }
  const n = lengthOctets(len) - 1;
  buf[off++] = 0x80 | n;
  for (let i = n - 1; i >= 0; i--) buf[off++] = Math.floor(len / 2 ** (8 * i)) & 0xff;
  return off;
}

/** A primitive (or pre-encoded constructed) TLV from contents. One allocation. */
export function tlv(tag: number, content: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(1 + lengthOctets(content.length) + content.length);
  out[0] = tag;
  const off = writeLength(out, 1, content.length);
  out.set(content, off);
  return out;
}

/** A constructed value with the given tag; encoded lazily. */
export function constructed(tag: number, children: readonly DerNode[]): DerTree {
  let contentLength = 0;
  for (const c of children) contentLength += nodeSize(c);
  return { tag, children, contentLength, size: 1 + lengthOctets(contentLength) + contentLength };
}

export const seq = (...children: DerNode[]): DerTree => constructed(Tag.SEQUENCE, children);

/** SET OF with DER ordering (X.690 11.6: elements sorted by their encodings). */
export function setOf(children: readonly DerNode[]): DerTree {
  const encoded = children.map((c) => encode(c));
  encoded.sort(Buffer.compare);
  return constructed(Tag.SET, encoded);
}

/** [n] EXPLICIT: a constructed context tag around one value. */
export const explicit = (n: number, child: DerNode): DerTree =>
  constructed(0xa0 | checkTagNumber(n), [child]);

/** [n] IMPLICIT over a primitive: the contents with a context tag (e.g. GeneralName dNSName [2]). */
export const implicitPrimitive = (n: number, content: Uint8Array): Buffer =>
  tlv(0x80 | checkTagNumber(n), content);

/** [n] IMPLICIT over a constructed type (SEQUENCE OF etc.): the children under a constructed context tag. */
export const implicitConstructed = (n: number, children: readonly DerNode[]): DerTree =>
  constructed(0xa0 | checkTagNumber(n), children);

function checkTagNumber(n: number): number {
  // Only low tag numbers occur in the structures built here; high-tag form is not needed.
  if (!Number.isInteger(n) || n < 0 || n > 30) fail("FR_INTERNAL", `context tag ${n} is out of range`);
  return n;
}

/** Serializes a node into one Buffer (one allocation for the whole tree). */
export function encode(node: DerNode): Buffer {
  if (node instanceof Uint8Array) return Buffer.isBuffer(node) ? node : Buffer.from(node);
  const out = Buffer.allocUnsafe(node.size);
  writeNode(out, 0, node);
  return out;
}

function writeNode(buf: Buffer, off: number, node: DerNode): number {
  if (node instanceof Uint8Array) {
    buf.set(node, off);
    return off + node.length;
  }
  buf[off] = node.tag;
  off = writeLength(buf, off + 1, node.contentLength);
  for (const c of node.children) off = writeNode(buf, off, c);
  return off;
}

// ---- primitives ----

export const NULL: Buffer = Buffer.from([Tag.NULL, 0]);
const TRUE = Buffer.from([Tag.BOOLEAN, 1, 0xff]);
const FALSE = Buffer.from([Tag.BOOLEAN, 1, 0]);

export const boolean = (v: boolean): Buffer => (v ? TRUE : FALSE);

/**
 * The minimal two's-complement contents of a non-negative integer given as unsigned big-endian bytes:
 * leading zero octets stripped, one 0x00 added when the top bit is set (X.690 8.3.2).
 */
export function unsignedIntegerContent(bytes: Uint8Array): Uint8Array {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  if (bytes.length === 0) return Uint8Array.of(0);
  const first = bytes[i] as number;
  if (first & 0x80) {
    const out = new Uint8Array(bytes.length - i + 1);
    out.set(bytes.subarray(i), 1);
    return out;
  }
  return bytes.subarray(i);
}

/** INTEGER from a bigint or number (any sign), or from unsigned big-endian bytes. */
export function integer(v: bigint | number | Uint8Array): Buffer {
  if (v instanceof Uint8Array) return tlv(Tag.INTEGER, unsignedIntegerContent(v));
  return tlv(Tag.INTEGER, bigintContent(BigInt(v)));
}

function bigintContent(v: bigint): Uint8Array {
  if (v >= 0n) {
    let hex = v.toString(16);
    if (hex.length % 2) hex = "0" + hex;
    return unsignedIntegerContent(Buffer.from(hex, "hex"));
  }
  // Two's complement: find the smallest byte width whose signed range holds v.
  let n = 1;
  while (v < -(1n << BigInt(8 * n - 1))) n++;
  const twos = (1n << BigInt(8 * n)) + v;
  return Buffer.from(twos.toString(16).padStart(2 * n, "0"), "hex");
}

export const enumerated = (v: number): Buffer => tlv(Tag.ENUMERATED, bigintContent(BigInt(v)));

export const octetString = (content: Uint8Array): Buffer => tlv(Tag.OCTET_STRING, content);

/** BIT STRING with a number of unused bits in the last octet (0 for keys and signatures). */
export function bitString(content: Uint8Array, unusedBits = 0): Buffer {
  const out = Buffer.allocUnsafe(2 + lengthOctets(content.length + 1) + content.length);
  out[0] = Tag.BIT_STRING;
  let off = writeLength(out, 1, content.length + 1);
  out[off++] = unusedBits;
  out.set(content, off);
  return out;
}

/**
 * A named-bit-list BIT STRING (X.690 11.2.2: trailing zero bits removed), e.g. KeyUsage.
 * `bits` holds the bit numbers that are set, 0 being the most significant bit of the first octet.
 */
export function namedBits(bits: Iterable<number>): Buffer {
  let max = -1;
  const set = new Set<number>();
  for (const b of bits) {
    set.add(b);
    if (b > max) max = b;
  }
  if (max < 0) return bitString(new Uint8Array(0));
  const bytes = new Uint8Array((max >> 3) + 1);
  for (const b of set) bytes[b >> 3] = (bytes[b >> 3] as number) | (0x80 >> (b & 7));
  return bitString(bytes, 7 - (max & 7));
}

const oidCache = new Map<string, Buffer>();

/** OBJECT IDENTIFIER from dotted form; encodings are cached since the same few OIDs recur constantly. */
export function oid(dotted: string): Buffer {
  const hit = oidCache.get(dotted);
  if (hit) return hit;
  const parts = dotted.split(".").map((p) => {
    if (!/^\d+$/.test(p)) fail("FR_VALIDATION", `"${dotted}" is not a dotted object identifier`);
    return BigInt(p);
  });
  const [a, b] = parts;
  if (a === undefined || b === undefined || a > 2n || (a < 2n && b > 39n)) {
    fail("FR_VALIDATION", `"${dotted}" is not a valid object identifier`);
  }
  const arcs = [a * 40n + b, ...parts.slice(2)];
  const bytes: number[] = [];
  for (const arc of arcs) {
    const group: number[] = [Number(arc & 0x7fn)];
    let rest = arc >> 7n;
    while (rest > 0n) {
      group.unshift(Number(rest & 0x7fn) | 0x80);
      rest >>= 7n;
    }
    bytes.push(...group);
  }
  const out = tlv(Tag.OID, Uint8Array.from(bytes));
  if (oidCache.size < 4096) oidCache.set(dotted, out);
  return out;
}

const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

export const isPrintable = (s: string): boolean => PRINTABLE.test(s);

export function printableString(s: string): Buffer {
  if (!PRINTABLE.test(s)) fail("FR_VALIDATION", `"${s}" has characters a PrintableString cannot hold`);
  return tlv(Tag.PRINTABLE_STRING, Buffer.from(s, "latin1"));
}

export const utf8String = (s: string): Buffer => tlv(Tag.UTF8_STRING, Buffer.from(s, "utf8"));

/** IA5String (ASCII), used for dNSName, URI, rfc822Name and URLs. */
export function ia5String(s: string, tag: number = Tag.IA5_STRING): Buffer {
  // eslint-disable-next-line no-control-regex
  if (!/^[\x00-\x7f]*$/.test(s)) fail("FR_VALIDATION", `"${s}" is not ASCII (IA5String); encode it first`);
  return tlv(tag, Buffer.from(s, "latin1"));
}

// ---- time (RFC 5280 4.1.2.5) ----

const UTC_TIME_END = Date.UTC(2050, 0, 1);
const UTC_TIME_START = Date.UTC(1950, 0, 1);

/** Size of the Time encoding for an instant: UTCTime 15 octets, GeneralizedTime 17. */
export const timeSize = (ms: number): number => (ms >= UTC_TIME_START && ms < UTC_TIME_END ? 15 : 17);

/**
 * Writes a Time at `off` straight into `buf` (no intermediate strings): UTCTime YYMMDDHHMMSSZ for
 * 1950 through 2049 and GeneralizedTime YYYYMMDDHHMMSSZ otherwise (RFC 5280 4.1.2.5); fractions of a
 * second are dropped as 4.1.2.5.2 requires. `forceGeneralized` is for OCSP, which always uses it.
 */
export function writeTime(buf: Uint8Array, off: number, ms: number, forceGeneralized = false): number {
  const d = new Date(ms);
  const year = d.getUTCFullYear();
  if (year < 0 || year > 9999) fail("FR_VALIDATION", `the year ${year} cannot be encoded in a certificate`);
  const utc = !forceGeneralized && ms >= UTC_TIME_START && ms < UTC_TIME_END;
  buf[off++] = utc ? Tag.UTC_TIME : Tag.GENERALIZED_TIME;
  buf[off++] = utc ? 13 : 15;
  if (!utc) off = two(buf, off, Math.floor(year / 100));
  off = two(buf, off, year % 100);
  off = two(buf, off, d.getUTCMonth() + 1);
  off = two(buf, off, d.getUTCDate());
  off = two(buf, off, d.getUTCHours());
  off = two(buf, off, d.getUTCMinutes());
  off = two(buf, off, d.getUTCSeconds());
  buf[off++] = 0x5a; // "Z"
  return off;
}

function two(buf: Uint8Array, off: number, v: number): number {
  buf[off] = 0x30 + Math.floor(v / 10);
  buf[off + 1] = 0x30 + (v % 10);
  return off + 2;
}

function toMs(t: Date | number): number {
  const ms = typeof t === "number" ? t : t.getTime();
  if (!Number.isFinite(ms)) fail("FR_VALIDATION", "a time value is not a valid date");
  return ms;
}

/** Time (UTCTime or GeneralizedTime by year, RFC 5280 4.1.2.5). */
export function time(t: Date | number): Buffer {
  const ms = toMs(t);
  const out = Buffer.allocUnsafe(timeSize(ms));
  writeTime(out, 0, ms);
  return out;
}

/** GeneralizedTime always (RFC 6960 and CRL entry fields that are GeneralizedTime-only). */
export function generalizedTime(t: Date | number): Buffer {
  const out = Buffer.allocUnsafe(17);
  writeTime(out, 0, toMs(t), true);
  return out;
}

/** AlgorithmIdentifier with absent or given parameters. */
export const algorithmIdentifier = (algorithm: string, params?: DerNode): Buffer =>
  encode(params === undefined ? seq(oid(algorithm)) : seq(oid(algorithm), params));
