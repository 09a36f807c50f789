/**
 * Bounded CBOR decoding for attestation evidence. The decoder (cborg, pure JavaScript) has no item
 * count or depth budget of its own, so a structural pass (RFC 8949 3) runs first and refuses: more than
 * `maxBytes`, nesting deeper than `maxDepth`, more than `maxItems` data items, indefinite lengths (COSE
 * needs deterministic input, RFC 9052 9), reserved additional-information values, tags other than the
 * allowed ones, truncation and trailing bytes. Only input that passes is decoded.
 */
import { decode, type TagDecoder } from "cborg";
import { fail } from "../errors/index.js";

export interface CborLimits {
  readonly maxBytes: number;
  readonly maxDepth: number;
  readonly maxItems: number;
  /** Tags accepted anywhere (e.g. 18 for COSE_Sign1); every other tag is refused. */
  readonly allowedTags: readonly number[];
  /** Names the input in error messages ("the attestation token"). */
  readonly what: string;
}

/** Checks well-formedness within limits, then decodes. Maps decode as Map, byte strings as Buffer, tags as {tag, value}. */
export function decodeCbor(input: Uint8Array, limits: CborLimits): unknown {
  scanCbor(input, limits);
  const tags: TagDecoder[] = [];
  for (const t of limits.allowedTags) tags[t] = (value: unknown) => ({ tag: t, value });
  try {
    return asBuffers(
      decode(input, { useMaps: true, tags, allowIndefinite: false, rejectDuplicateMapKeys: true }),
      0,
    );
  } catch (e) {
    return fail("FR_ENROLL_MALFORMED", `${limits.what} is not valid CBOR: ${(e as Error).message}`);
  }
}

export function scanCbor(buf: Uint8Array, limits: CborLimits): void {
  const bad = (why: string): never =>
    fail("FR_ENROLL_MALFORMED", `${limits.what} is not acceptable CBOR: ${why}`);
  if (buf.length === 0) bad("it is empty");
  if (buf.length > limits.maxBytes) bad(`it is larger than ${limits.maxBytes} bytes`);
  let pos = 0;
  let items = 0;

  const readArg = (ai: number): number => {
    if (ai < 24) return ai;
    const n = ai === 24 ? 1 : ai === 25 ? 2 : ai === 26 ? 4 : ai === 27 ? 8 : 0;
    if (n === 0)
      bad(ai === 31 ? "indefinite-length items are not accepted" : `reserved additional information ${ai}`);
    if (pos + n > buf.length) bad("it is truncated");
    let v = 0;
    for (let i = 0; i < n; i++) v = v * 256 + buf[pos + i]!;
    pos += n;
    return v; // beyond 2^53 loses precision, but such a length is rejected below anyway
  };

  // Iterative walk with an explicit stack: deep input cannot exhaust the JS stack.
  const stack: number[] = [1]; // items still to read at each open level
  while (stack.length) {
    if (stack[stack.length - 1] === 0) {
      stack.pop();
      continue;
    }
    stack[stack.length - 1]!--;
    if (++items > limits.maxItems) bad(`it holds more than ${limits.maxItems} items`);
    if (pos >= buf.length) bad("it is truncated");
    const ib = buf[pos++]!;
    const major = ib >> 5;
    const ai = ib & 0x1f;
    const arg = readArg(ai);
    switch (major) {
      case 0:
      case 1:
        break;
      case 2:
      case 3:
        if (arg > buf.length - pos) bad("a string runs past the end of the input");
        if (major === 3 && !isUtf8(buf.subarray(pos, pos + arg))) bad("a text string is not UTF-8");
        pos += arg;
        break;
      case 4:
      case 5: {
        const count = major === 5 ? arg * 2 : arg;
        if (count > buf.length - pos) bad("a container claims more items than the input holds");
        if (stack.length >= limits.maxDepth) bad(`it is nested deeper than ${limits.maxDepth} levels`);
        stack.push(count);
        break;
      }
      case 6:
        if (!limits.allowedTags.includes(arg)) bad(`tag ${arg} is not accepted here`);
        if (stack.length >= limits.maxDepth) bad(`it is nested deeper than ${limits.maxDepth} levels`);
        stack.push(1);
        break;
      case 7:
        // false, true, null, undefined and floats; other simple values are refused.
        if (ai < 20 || ai === 24) bad(`simple value ${arg} is not accepted`);
        break;
    }
  }
  if (pos !== buf.length) bad(`${buf.length - pos} bytes follow the data item`);
}

const utf8 = new TextDecoder("utf-8", { fatal: true });
function isUtf8(b: Uint8Array): boolean {
  try {
    utf8.decode(b);
    return true;
  } catch {
    return false;
  }
}

/** Byte strings as Buffers (what the COSE code checks for); the scan above already bounded the depth. */
function asBuffers(v: unknown, depth: number): unknown {
  if (depth > 256) return v;
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  if (Array.isArray(v)) return v.map((x) => asBuffers(x, depth + 1));
  if (v instanceof Map) {
    const m = new Map<unknown, unknown>();
    for (const [k, x] of v) m.set(asBuffers(k, depth + 1), asBuffers(x, depth + 1));
    return m;
  }
  if (v && typeof v === "object" && "tag" in v && "value" in v) {
    const t = v as { tag: number; value: unknown };
    return { tag: t.tag, value: asBuffers(t.value, depth + 1) };
  }
  return v;
}
