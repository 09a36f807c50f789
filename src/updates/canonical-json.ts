import { fail, FleetError } from "../errors/index.js";

/**
 * OLPC canonical JSON exactly as securesystemslib's encode_canonical writes it (what TUF and in-toto sign):
 * no whitespace, integers only, object keys sorted by Unicode code point (Python's string order, which
 * differs from JavaScript's UTF-16 order above U+FFFF), and only `"` and `\` escaped — every other
 * character, control characters included, is written as itself in UTF-8.
 */
export function canonicalJson(value: unknown): Buffer {
  return Buffer.from(canonicalString(value), "utf8");
}

export function canonicalString(value: unknown): string {
  const out: string[] = [];
  encode(value, out, 0);
  return out.join("");
}

/**
 * Why canonical JSON cannot encode `value` (the error publishing would fail with), or undefined. Routes
 * check what they store with it, so a value that cannot be signed is refused when it is written.
 */
export function canonicalProblem(value: unknown): string | undefined {
  try {
    encode(value, [], 0);
    return undefined;
  } catch (e) {
    if (e instanceof FleetError) return e.detail ?? e.message;
    throw e;
  }
}

const maxDepth = 64;

function encode(value: unknown, out: string[], depth: number): void {
  if (depth > maxDepth) fail("FR_UPDATES_METADATA", `canonical JSON: nesting deeper than ${maxDepth}`);
  if (value === null) out.push("null");
  else if (value === true) out.push("true");
  else if (value === false) out.push("false");
  else if (typeof value === "string") out.push(encodeString(value));
  else if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) {
      fail("FR_UPDATES_METADATA", `canonical JSON allows only integers, not ${value}`);
    }
    out.push(String(value === 0 ? 0 : value));
  } else if (Array.isArray(value)) {
    out.push("[");
    value.forEach((v, i) => {
      if (i > 0) out.push(",");
      encode(v, out, depth + 1);
    });
    out.push("]");
  } else if (typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => compareCodePoints(a, b));
    out.push("{");
    entries.forEach(([k, v], i) => {
      if (i > 0) out.push(",");
      out.push(encodeString(k), ":");
      encode(v, out, depth + 1);
    });
    out.push("}");
  } else {
    fail("FR_UPDATES_METADATA", `canonical JSON cannot encode a value of type ${typeof value}`);
  }
}

const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function encodeString(s: string): string {
  if (loneSurrogate.test(s)) fail("FR_UPDATES_METADATA", "canonical JSON: a string holds a lone surrogate");
  return `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

/**
 * Orders strings by code point. UTF-16 order agrees except where a surrogate pair (U+10000 and above)
 * meets a unit in U+E000–U+FFFF: shifting surrogates above that block restores code-point order.
 */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return rank(x) - rank(y);
  }
  return a.length - b.length;
}

function rank(unit: number): number {
  if (unit >= 0xd800 && unit <= 0xdfff) return unit + 0x2000;
  if (unit >= 0xe000) return unit - 0x800;
  return unit;
}
