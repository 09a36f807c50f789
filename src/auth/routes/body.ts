import { fail } from "../../errors/index.js";
import { parseDuration } from "../../util/index.js";

/** Field readers for Vault-style request bodies: lenient in form (as Vault is), strict in content. */
type Body = Readonly<Record<string, unknown>>;

const MAX_LIST = 64;
const MAX_STRING = 1024;

export function optString(b: Body, key: string, maxChars = MAX_STRING): string | undefined {
  const v = b[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") fail("FR_VALIDATION", `${key} must be a string`);
  if (v.length > maxChars) fail("FR_VALIDATION", `${key} is longer than ${maxChars} characters`);
  return v;
}

export function reqString(b: Body, key: string): string {
  const v = optString(b, key);
  if (!v) fail("FR_VALIDATION", `${key} is required`);
  return v;
}

export function optBool(b: Body, key: string): boolean | undefined {
  const v = b[key];
  if (v === undefined || v === null || v === "") return undefined;
  if (typeof v === "boolean") return v;
  if (v === "true" || v === 1 || v === "1") return true;
  if (v === "false" || v === 0 || v === "0") return false;
  fail("FR_VALIDATION", `${key} must be true or false`);
}

/** Seconds, from "1h30m", "90s" or a number of seconds. */
export function optDuration(b: Body, key: string): number | undefined {
  const v = b[key];
  if (v === undefined || v === null || v === "") return undefined;
  if (typeof v !== "string" && typeof v !== "number")
    fail("FR_VALIDATION", `${key} must be a duration like "1h"`);
  return parseDuration(v, key);
}

export function optInt(b: Body, key: string, max: number): number | undefined {
  const v = b[key];
  if (v === undefined || v === null || v === "") return undefined;
  const n = typeof v === "string" && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 0 || n > max) {
    fail("FR_VALIDATION", `${key} must be a whole number from 0 to ${max}`);
  }
  return n;
}

/** A list of strings, given as a JSON array or a comma-separated string (both accepted by Vault). */
export function optList(b: Body, key: string): string[] | undefined {
  const v = b[key];
  if (v === undefined || v === null) return undefined;
  const items = typeof v === "string" ? v.split(",") : v;
  if (!Array.isArray(items) || !items.every((i) => typeof i === "string" && i.length <= MAX_STRING)) {
    fail("FR_VALIDATION", `${key} must be a list of strings`);
  }
  if (items.length > MAX_LIST) fail("FR_VALIDATION", `${key} holds more than ${MAX_LIST} entries`);
  return items.map((i) => i.trim()).filter((i) => i.length > 0);
}

/** A flat map of string values (token metadata). */
export function optStringMap(b: Body, key: string): Record<string, string> | undefined {
  const v = b[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "object" || Array.isArray(v)) fail("FR_VALIDATION", `${key} must be an object of strings`);
  const entries = Object.entries(v as Record<string, unknown>);
  if (entries.length > MAX_LIST) fail("FR_VALIDATION", `${key} holds more than ${MAX_LIST} keys`);
  const out: Record<string, string> = {};
  for (const [k, val] of entries) {
    if (typeof val !== "string" || k.length > 128 || val.length > MAX_STRING) {
      fail("FR_VALIDATION", `${key}.${k.slice(0, 128)} must be a string of at most ${MAX_STRING} characters`);
    }
    out[k] = val;
  }
  return out;
}

/** Fields Vault accepts that Fleetroot does not implement: refused clearly rather than ignored. */
export function refuse(b: Body, keys: readonly string[]): void {
  for (const k of keys) {
    const v = b[k];
    if (v !== undefined && v !== null && v !== "" && v !== false)
      fail("FR_VALIDATION", `${k} is not supported by Fleetroot`);
  }
}
