/**
 * A bounded DER reader for the few hot or byte-exact places that need one: copying an issuer's subject
 * byte-for-byte, finding key bits and key identifiers, and reading OCSP requests. It refuses indefinite
 * lengths, non-minimal length octets, high tag numbers, lengths that run past their parent, and nesting
 * deeper than a limit, so hostile input costs at most one pass over its bytes.
 */
import { FleetError, type ErrorCode } from "../errors/index.js";

export interface DerElement {
  readonly tag: number;
  /** Offset of the tag octet in the source buffer. */
  readonly start: number;
  /** Offset of the first content octet. */
  readonly contentStart: number;
  /** Offset just past the element. */
  readonly end: number;
}

export interface ReaderLimits {
  /** Largest input accepted, in bytes. */
  readonly maxBytes: number;
  /** Deepest nesting walked by `checkDepth`. */
  readonly maxDepth: number;
  /** Error code thrown for malformed input, so callers report in their own terms (CSR, OCSP…). */
  readonly code: ErrorCode;
  /** What is being read, for messages ("the OCSP request"). */
  readonly what: string;
}

export class DerReader {
  readonly buf: Uint8Array;
  readonly limits: ReaderLimits;

  constructor(buf: Uint8Array, limits: ReaderLimits) {
    if (buf.length > limits.maxBytes) {
      throw new FleetError(
        limits.code,
        `${limits.what} is ${buf.length} bytes; the limit is ${limits.maxBytes}`,
      );
    }
    this.buf = buf;
    this.limits = limits;
  }

  fail(why: string, at?: number): never {
    const where = at === undefined ? "" : ` at byte ${at}`;
    throw new FleetError(this.limits.code, `${this.limits.what} is not valid DER: ${why}${where}`);
  }

  /** Reads the element starting at `off`, which must end at or before `limit`. */
  at(off: number, limit: number = this.buf.length): DerElement {
    const b = this.buf;
    if (off >= limit) this.fail("unexpected end of data", off);
    const tag = b[off] as number;
    if ((tag & 0x1f) === 0x1f) this.fail("high tag numbers are not used here", off);
    if (off + 1 >= limit) this.fail("missing length", off);
    let len = b[off + 1] as number;
    let contentStart = off + 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n === 0) this.fail("indefinite length is not allowed in DER", off);
      if (n > 4) this.fail("length field too long", off);
      if (contentStart + n > limit) this.fail("truncated length", off);
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + (b[contentStart + i] as number);
      if (len < 0x80 || (n > 1 && b[contentStart] === 0)) this.fail("length is not minimally encoded", off);
      contentStart += n;
    }
    const end = contentStart + len;
    if (end > limit) this.fail("length runs past the end of its container", off);
    return { tag, start: off, contentStart, end };
  }

  /** The single top-level element; trailing bytes are refused. */
  root(): DerElement {
    const el = this.at(0);
    if (el.end !== this.buf.length) this.fail("trailing bytes after the value", el.end);
    return el;
  }

  /** The children of a constructed element, in order. */
  children(el: DerElement): DerElement[] {
    if (!(el.tag & 0x20)) this.fail("expected a constructed value", el.start);
    const out: DerElement[] = [];
    for (let off = el.contentStart; off < el.end;) {
      const c = this.at(off, el.end);
      out.push(c);
      off = c.end;
    }
    return out;
  }

  /** Fails unless `el` has the given tag. */
  expect(el: DerElement | undefined, tag: number, what: string): DerElement {
    if (!el) this.fail(`missing ${what}`);
    if (el.tag !== tag)
      this.fail(`${what} has tag 0x${el.tag.toString(16)}, expected 0x${tag.toString(16)}`, el.start);
    return el;
  }

  /** The full TLV bytes of an element (a view, not a copy). */
  raw(el: DerElement): Uint8Array {
    return this.buf.subarray(el.start, el.end);
  }

  /** The content octets of an element (a view, not a copy). */
  content(el: DerElement): Uint8Array {
    return this.buf.subarray(el.contentStart, el.end);
  }

  /** Decodes an OBJECT IDENTIFIER element to dotted form. */
  oid(el: DerElement): string {
    this.expect(el, 0x06, "object identifier");
    const c = this.content(el);
    if (c.length === 0 || c.length > 64) this.fail("object identifier has a bad length", el.start);
    // Arcs in plain numbers while they stay exact (every OID in practice); BigInt past 2^46.
    const arcs: Array<number | bigint> = [];
    let v = 0;
    let big: bigint | undefined;
    for (let i = 0; i < c.length; i++) {
      const byte = c[i] as number;
      if (v === 0 && big === undefined && byte === 0x80)
        this.fail("object identifier arc is not minimal", el.start);
      if (big !== undefined) big = (big << 7n) | BigInt(byte & 0x7f);
      else if (v >= 2 ** 46) big = (BigInt(v) << 7n) | BigInt(byte & 0x7f);
      else v = v * 128 + (byte & 0x7f);
      if (!(byte & 0x80)) {
        arcs.push(big ?? v);
        v = 0;
        big = undefined;
      } else if (i === c.length - 1) this.fail("object identifier is truncated", el.start);
    }
    const first = arcs[0] as number | bigint;
    let head: string;
    if (typeof first === "number")
      head = first < 80 ? `${Math.floor(first / 40)}.${first % 40}` : `2.${first - 80}`;
    else head = `2.${first - 80n}`;
    let out = head;
    for (let i = 1; i < arcs.length; i++) out += "." + String(arcs[i]);
    return out;
  }

  /** Walks the whole tree under `el` and fails if it nests deeper than the limit. */
  checkDepth(el: DerElement, depth = 0): void {
    if (depth > this.limits.maxDepth)
      this.fail(`nesting deeper than ${this.limits.maxDepth} levels`, el.start);
    if (el.tag & 0x20) for (const c of this.children(el)) this.checkDepth(c, depth + 1);
  }
}
