import { fail } from "../../errors/index.js";
import { parseDuration } from "../../util/duration.js";

/** Request-body readers for the KV engines: Vault's field names, clear messages on wrong types. */
type Body = Readonly<Record<string, unknown>>;

/** Bound on one secret's JSON (the request body limit applies first; this bounds what a version holds). */
export const MAX_SECRET_BYTES = 512 * 1024;
/** Bound on nesting: JSON.parse takes any depth, but JSON.stringify and the merge recurse and would overflow. */
export const MAX_SECRET_DEPTH = 100;
const MAX_CUSTOM_KEYS = 64;
const MAX_CUSTOM_KEY_CHARS = 128;
const MAX_CUSTOM_VALUE_CHARS = 512;
const MAX_VERSIONS_PER_CALL = 1000;

export function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** The `data` object of a KV v2 write (required, an object, bounded). */
export function secretData(b: Body): Record<string, unknown> {
  const d = b.data;
  if (d === undefined || d === null)
    fail("FR_VALIDATION", 'no data provided: send {"data": {"key": "value"}}');
  if (!isObject(d)) fail("FR_VALIDATION", "data must be a JSON object of keys and values");
  checkSize(d);
  return d;
}

export function checkSize(d: Record<string, unknown>): void {
  checkDepth(d);
  const bytes = Buffer.byteLength(JSON.stringify(d), "utf8");
  if (bytes > MAX_SECRET_BYTES)
    fail(
      "FR_BODY_TOO_LARGE",
      `the secret is ${bytes} bytes; one secret may hold at most ${MAX_SECRET_BYTES}`,
    );
}

/** Refuses values nested deeper than MAX_SECRET_DEPTH (walked without recursion, so any depth is safe). */
export function checkDepth(root: object): void {
  const stack: [object, number][] = [[root, 1]];
  for (let top = stack.pop(); top; top = stack.pop()) {
    const [v, depth] = top;
    if (depth > MAX_SECRET_DEPTH)
      fail("FR_VALIDATION", `the secret is nested more than ${MAX_SECRET_DEPTH} levels deep`);
    for (const child of Object.values(v))
      if (child !== null && typeof child === "object") stack.push([child, depth + 1]);
  }
}

/** options.cas: a whole number ≥ 0, or undefined. */
export function casOption(b: Body): number | undefined {
  const o = b.options;
  if (o === undefined || o === null) return undefined;
  if (!isObject(o)) fail("FR_VALIDATION", "options must be a JSON object");
  return optInt(o.cas, "options.cas");
}

export function optInt(v: unknown, name: string): number | undefined {
  if (v === undefined || v === null || v === "") return undefined;
  const n = typeof v === "string" && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0)
    fail("FR_VALIDATION", `${name} must be a whole number ≥ 0`);
  return n;
}

export function optBool(v: unknown, name: string): boolean | undefined {
  if (v === undefined || v === null || v === "") return undefined;
  if (typeof v === "boolean") return v;
  if (v === "true") return true;
  if (v === "false") return false;
  fail("FR_VALIDATION", `${name} must be true or false`);
}

export function optDuration(v: unknown, name: string): number | undefined {
  if (v === undefined || v === null || v === "") return undefined;
  if (typeof v !== "string" && typeof v !== "number")
    fail("FR_VALIDATION", `${name} must be a duration like "1h"`);
  return parseDuration(v, name);
}

/** `versions`: a non-empty list of version numbers (array, or "1,2" as the vault CLI may send). */
export function versionList(b: Body): number[] {
  const v = b.versions;
  if (v === undefined || v === null || (Array.isArray(v) && v.length === 0) || v === "")
    fail("FR_VALIDATION", 'no version number provided: send {"versions": [1, 2]}');
  const items: unknown[] =
    typeof v === "string" ? v.split(",").map((s) => s.trim()) : Array.isArray(v) ? v : [v];
  if (items.length > MAX_VERSIONS_PER_CALL)
    fail("FR_VALIDATION", `at most ${MAX_VERSIONS_PER_CALL} versions per call`);
  return [
    ...new Set(items.map((i) => optInt(i, "versions") ?? fail("FR_VALIDATION", "versions must be numbers"))),
  ];
}

/** custom_metadata: string keys to string values, with Vault's limits. `allowNull` for merge patches. */
export function customMetadata(v: unknown, allowNull = false): Record<string, string | null> | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) fail("FR_VALIDATION", "custom_metadata must be an object of string values");
  const entries = Object.entries(v);
  if (entries.length > MAX_CUSTOM_KEYS)
    fail("FR_VALIDATION", `custom_metadata may hold at most ${MAX_CUSTOM_KEYS} keys`);
  const out: Record<string, string | null> = {};
  for (const [k, val] of entries) {
    if (k.length === 0 || k.length > MAX_CUSTOM_KEY_CHARS)
      fail("FR_VALIDATION", `custom_metadata keys must be 1 to ${MAX_CUSTOM_KEY_CHARS} characters`);
    if (val === null && allowNull) {
      out[k] = null;
      continue;
    }
    if (typeof val !== "string" || val.length > MAX_CUSTOM_VALUE_CHARS)
      fail(
        "FR_VALIDATION",
        `custom_metadata.${k.slice(0, 64)} must be a string of at most ${MAX_CUSTOM_VALUE_CHARS} characters`,
      );
    Object.defineProperty(out, k, { value: val, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** ?version= on reads: 0 (the current) when absent. */
export function versionQuery(q: Readonly<Record<string, string>>): number {
  return optInt(q.version, "version") ?? 0;
}
