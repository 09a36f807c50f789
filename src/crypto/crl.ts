/**
 * X.509 v2 CRLs (RFC 5280 section 5) with authorityKeyIdentifier (5.2.1), cRLNumber (5.2.3),
 * deltaCRLIndicator (5.2.4, critical), issuingDistributionPoint (5.2.5, critical) and per-entry
 * reasonCode (5.3.1, omitted for unspecified).
 *
 * Built for large lists: entries are sized in one pass and written straight into the final buffer in a
 * second, with no per-entry allocation kept; the signature is appended in place, so a 1,000,000-entry
 * CRL costs one buffer of its own size plus one signature.
 */
import type { SignatureScheme, Signer } from "../keys/types.js";
import { fail } from "../errors/index.js";
import { signatureAlgorithm } from "./algorithms.js";
import {
  type DerNode,
  Tag,
  bitString,
  encode,
  enumerated,
  explicit,
  implicitPrimitive,
  integer,
  lengthOctets,
  seq,
  time,
  timeSize,
  writeLength,
  writeTime,
} from "./der.js";
import { authorityKeyIdentifier, distributionPointName, extension } from "./extensions.js";
import { encodeName } from "./name.js";
import { OID } from "./oids.js";
import { type Serial, serialContent } from "./serial.js";

/** CRLReason (RFC 5280 5.3.1); 7 is unused. */
export const crlReasons = {
  unspecified: 0,
  keyCompromise: 1,
  cACompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  certificateHold: 6,
  removeFromCRL: 8,
  privilegeWithdrawn: 9,
  aACompromise: 10,
} as const;

export type CrlReason = keyof typeof crlReasons;

export function reasonCode(reason: CrlReason): number {
  const code = crlReasons[reason] as number | undefined;
  if (code === undefined) {
    fail(
      "FR_VALIDATION",
      `unknown revocation reason "${reason}"; use one of ${Object.keys(crlReasons).join(", ")}`,
    );
  }
  return code;
}

export interface CrlEntry {
  readonly serial: Serial;
  readonly revokedAt: Date | number;
  readonly reason?: CrlReason;
}

export interface IssuingDistributionPoint {
  /** The distribution point's full name (URIs); must match the certificates' cRLDistributionPoints. */
  readonly uris?: readonly string[];
  readonly onlyContainsUserCerts?: boolean;
  readonly onlyContainsCACerts?: boolean;
}

export interface CrlSpec {
  /** The issuer's subject Name DER, exactly as in its certificate. */
  readonly issuerNameDer: Uint8Array;
  /** The issuer's subjectKeyIdentifier, placed in the authorityKeyIdentifier. */
  readonly issuerSki: Uint8Array;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
  /** Monotonically increasing CRL number (5.2.3). */
  readonly crlNumber: bigint | number;
  /** For a delta CRL: the number of the base CRL it updates (5.2.4). */
  readonly deltaOf?: bigint | number;
  /** Revoked certificates; pre-encoded entries from `encodeCrlEntry` can be mixed in. */
  readonly entries: readonly (CrlEntry | Uint8Array)[];
  readonly idp?: IssuingDistributionPoint;
  readonly scheme?: SignatureScheme;
}

const reasonExtensions = new Map<number, Buffer>();

/** crlEntryExtensions holding only a reasonCode; one shared encoding per reason. */
function reasonExtension(reason: CrlReason | undefined, delta: boolean): Buffer | undefined {
  if (reason === undefined || reason === "unspecified") return undefined;
  if (reason === "removeFromCRL" && !delta)
    fail("FR_VALIDATION", "removeFromCRL is only allowed in delta CRLs (5.3.1)");
  const code = reasonCode(reason);
  let ext = reasonExtensions.get(code);
  if (!ext) {
    ext = encode(seq(extension(OID.crlReason, false, enumerated(code))));
    reasonExtensions.set(code, ext);
  }
  return ext;
}

function entryContentLength(serial: Uint8Array, ms: number, ext: Buffer | undefined): number {
  return 2 + serial.length + timeSize(ms) + (ext?.length ?? 0);
}

function revokedMs(e: CrlEntry): number {
  const ms = typeof e.revokedAt === "number" ? e.revokedAt : e.revokedAt.getTime();
  if (!Number.isFinite(ms)) fail("FR_VALIDATION", "a revocation time is not a valid date");
  return ms;
}

/** Writes one revokedCertificates entry; returns the offset after it. */
function writeEntry(
  buf: Buffer,
  off: number,
  serial: Uint8Array,
  ms: number,
  ext: Buffer | undefined,
): number {
  const len = entryContentLength(serial, ms, ext);
  buf[off] = Tag.SEQUENCE;
  off = writeLength(buf, off + 1, len);
  buf[off++] = Tag.INTEGER;
  buf[off++] = serial.length; // at most 20 octets: short-form length
  buf.set(serial, off);
  off = writeTime(buf, off + serial.length, ms);
  if (ext) {
    buf.set(ext, off);
    off += ext.length;
  }
  return off;
}

/** One entry, encoded on its own, for callers that keep entries pre-encoded between CRL builds. */
export function encodeCrlEntry(entry: CrlEntry, delta = false): Buffer {
  const serial = serialContent(entry.serial);
  const ms = revokedMs(entry);
  const ext = reasonExtension(entry.reason, delta);
  const len = entryContentLength(serial, ms, ext);
  const out = Buffer.allocUnsafe(1 + lengthOctets(len) + len);
  writeEntry(out, 0, serial, ms, ext);
  return out;
}

function entrySize(e: CrlEntry | Uint8Array, delta: boolean): number {
  if (e instanceof Uint8Array) return e.length;
  const len = entryContentLength(serialContent(e.serial), revokedMs(e), reasonExtension(e.reason, delta));
  return 1 + lengthOctets(len) + len;
}

function crlExtensions(spec: CrlSpec): DerNode {
  const exts: DerNode[] = [
    authorityKeyIdentifier(spec.issuerSki),
    extension(OID.crlNumber, false, crlInteger(spec.crlNumber)),
  ];
  if (spec.deltaOf !== undefined) exts.push(extension(OID.deltaCrlIndicator, true, crlInteger(spec.deltaOf)));
  if (spec.idp) {
    const parts: DerNode[] = [];
    if (spec.idp.uris?.length) parts.push(distributionPointName(spec.idp.uris));
    if (spec.idp.onlyContainsUserCerts) parts.push(implicitPrimitive(1, Buffer.from([0xff])));
    if (spec.idp.onlyContainsCACerts) parts.push(implicitPrimitive(2, Buffer.from([0xff])));
    if (spec.idp.onlyContainsUserCerts && spec.idp.onlyContainsCACerts) {
      fail(
        "FR_VALIDATION",
        "an issuing distribution point cannot be limited to both user and CA certificates",
      );
    }
    exts.push(extension(OID.issuingDistributionPoint, true, seq(...parts)));
  }
  return explicit(0, seq(...exts));
}

/** CRLNumber: a non-negative INTEGER of at most 20 octets (5.2.3). */
function crlInteger(n: bigint | number): Buffer {
  const v = BigInt(n);
  if (v < 0n || v >= 1n << 159n) fail("FR_VALIDATION", "a CRL number must be between 0 and 2^159 - 1");
  return integer(v);
}

// Room reserved for the signature and the outer header, so the CRL is finished in place after signing.
const MAX_SIGNATURE_TAIL = 1024;
const MAX_HEADER = 6;

/** Builds and signs a CRL; returns its DER. */
export async function buildCrl(spec: CrlSpec, signer: Signer): Promise<Buffer> {
  const alg = signatureAlgorithm(signer, spec.scheme);
  const delta = spec.deltaOf !== undefined;
  const thisMs = spec.thisUpdate.getTime();
  if (!(spec.nextUpdate.getTime() > thisMs))
    fail("FR_VALIDATION", "nextUpdate must be later than thisUpdate");

  // version v2, signature, issuer, thisUpdate, nextUpdate (5.1.2.1 to 5.1.2.5)
  const headContent = Buffer.concat([
    integer(1),
    alg.der,
    encodeName(spec.issuerNameDer),
    time(spec.thisUpdate),
    time(spec.nextUpdate),
  ]);
  const tail = encode(crlExtensions(spec));
  let entriesLength = 0;
  for (const e of spec.entries) entriesLength += entrySize(e, delta);
  // An empty list is omitted, not encoded empty (5.1.2.6).
  const revokedSize = spec.entries.length ? 1 + lengthOctets(entriesLength) + entriesLength : 0;

  const tbsContent = headContent.length + revokedSize + tail.length;
  const tbsSize = 1 + lengthOctets(tbsContent) + tbsContent;
  const out = Buffer.allocUnsafe(MAX_HEADER + tbsSize + alg.der.length + MAX_SIGNATURE_TAIL);
  const tbsStart = MAX_HEADER;
  out[tbsStart] = Tag.SEQUENCE;
  let off = writeLength(out, tbsStart + 1, tbsContent);
  out.set(headContent, off);
  off += headContent.length;
  if (revokedSize) {
    out[off] = Tag.SEQUENCE;
    off = writeLength(out, off + 1, entriesLength);
    for (const e of spec.entries) {
      if (e instanceof Uint8Array) {
        out.set(e, off);
        off += e.length;
      } else {
        off = writeEntry(out, off, serialContent(e.serial), revokedMs(e), reasonExtension(e.reason, delta));
      }
    }
  }
  out.set(tail, off);
  off += tail.length;
  if (off !== tbsStart + tbsSize) fail("FR_INTERNAL", "CRL size computation mismatch");

  const signature = bitString(await signer.sign(out.subarray(tbsStart, off), alg.scheme));
  if (alg.der.length + signature.length > MAX_SIGNATURE_TAIL)
    fail("FR_INTERNAL", "signature larger than reserved");
  out.set(alg.der, off);
  off += alg.der.length;
  out.set(signature, off);
  off += signature.length;
  const total = off - tbsStart;
  const headerLen = 1 + lengthOctets(total);
  const start = tbsStart - headerLen;
  out[start] = Tag.SEQUENCE;
  writeLength(out, start + 1, total);
  return out.subarray(start, off);
}
