import { createHmac, type KeyObject } from "node:crypto";
import { fail } from "../errors/index.js";
import { flatString, isPlainJsonString, jsonString } from "./json.js";
import type { AuditEntry } from "./types.js";

/** Written instead of a sensitive string while no HMAC key is set (server sealed): never the clear text. */
export const SEALED_VALUE = "[sealed]";
/** Written instead of a subtree nested deeper than MAX_DEPTH, so a hostile body cannot exhaust the stack. */
export const TOO_DEEP_VALUE = "[too deep]";
const MAX_DEPTH = 64;

export type StringHasher = ((value: string) => string) & {
  /** Its results never need JSON escaping ("hmac-sha256:<hex>", "[sealed]"), so they are quoted as is. */
  readonly jsonSafe?: boolean;
};

/** Marks a hasher whose every result is JSON-safe (see StringHasher.jsonSafe). */
export function jsonSafe(h: (value: string) => string): StringHasher {
  return Object.assign(h, { jsonSafe: true });
}

/** JSON.stringify of a primitive scalar (its result for anything else is "null", as in an object). */
function jsonScalar(v: unknown): string {
  switch (typeof v) {
    case "string":
      return jsonString(v);
    case "number":
      return Number.isFinite(v) ? String(v) : "null";
    case "boolean":
      return v ? "true" : "false";
    default:
      return JSON.stringify(v) ?? "null";
  }
}

/** The JSON text of a hasher's result. */
function quoted(hash: StringHasher, value: string): string {
  const h = hash(value);
  return hash.jsonSafe ? '"' + h + '"' : jsonString(h);
}

/** Vault's audit hash form: "hmac-sha256:" + hex HMAC-SHA256 of the UTF-8 bytes. */
export function hmacSha256(key: KeyObject | Buffer, value: string): string {
  return "hmac-sha256:" + createHmac("sha256", key).update(value, "utf8").digest("hex");
}

export const sealedHasher: StringHasher = jsonSafe(() => SEALED_VALUE);

/**
 * Fields that stay readable, per section. Everything else in a section — client_token,
 * client_token_accessor, accessor, data, response.auth, and any field added later — has each string leaf
 * hashed: a new field is safe by default rather than leaked by default.
 */
const plainFields: Readonly<Record<string, ReadonlySet<string>>> = {
  request: new Set(["id", "operation", "path", "remote_address", "policy_path"]),
  auth: new Set(["policies", "display_name"]),
  response: new Set(["status"]),
  event: new Set(["name", "fields"]),
};

/** Keys hashed wherever they appear, even inside a plain field such as event.fields. */
const sensitiveKeys: ReadonlySet<string> = new Set(["client_token", "client_token_accessor", "accessor"]);

const entryTypes: ReadonlySet<string> = new Set(["request", "response", "event"]);

/** How the JSON writer treats a value: kept (sensitive keys inside it still hashed), hashed with the identity hasher, or hashed. */
const PLAIN = 0;
const IDENTITY = 1;
const HASHED = 2;
type FieldKind = typeof PLAIN | typeof IDENTITY | typeof HASHED;

/** A known key of a section: how its value is written, and the key's own JSON. */
interface SectionField {
  readonly kind: FieldKind;
  readonly key: KeyJson;
}

/**
 * plainFields and sensitiveKeys folded into one lookup per section for the JSON writer: a key's kind and
 * its JSON in one step. A key not in the map is hashed. IDENTITY applies to string values; any other
 * value is hashed.
 */
const sectionKinds: ReadonlyMap<string, ReadonlyMap<string, SectionField>> = new Map(
  Object.entries(plainFields).map(([section, plain]) => {
    const kinds = new Map<string, SectionField>();
    for (const k of plain) kinds.set(k, { kind: PLAIN, key: keyJsonOf(k) });
    for (const k of sensitiveKeys) kinds.set(k, { kind: IDENTITY, key: keyJsonOf(k) });
    return [section, kinds];
  }),
);

/**
 * A copy of `entry` with sensitive strings replaced by `hash(value)`; the input is not modified. The
 * audit log writes `redactToJson` (the same result as JSON text, in one pass, for speed); this object
 * form states the rules plainly and is the reference redact.test.ts holds the JSON writer to.
 */
export function redactEntry(
  entry: AuditEntry,
  hashValue: StringHasher,
  identityHash: StringHasher = hashValue,
): Record<string, unknown> {
  // A token or accessor often appears more than once in one entry: hash each distinct string once.
  const memo = new Map<string, string>();
  const hash: StringHasher = (v) => {
    let h = memo.get(v);
    if (h === undefined) {
      h = hashValue(v);
      memo.set(v, h);
    }
    return h;
  };
  if (!entryTypes.has(entry.type)) {
    fail(
      "FR_INTERNAL",
      `audit entry type must be request, response or event, not ${JSON.stringify(entry.type)}`,
    );
  }
  const out: Record<string, unknown> = { type: entry.type };
  for (const [key, value] of Object.entries(entry)) {
    if (key === "type" || value === undefined) continue;
    if (key === "error") out.error = typeof value === "string" ? value : hashAll(value, hash, 1);
    else if (Object.hasOwn(plainFields, key))
      out[key] = redactSection(plainFields[key]!, value, hash, identityHash);
    else out[key] = hashAll(value, hash, 1);
  }
  return out;
}

function redactSection(
  plain: ReadonlySet<string>,
  section: unknown,
  hash: StringHasher,
  identityHash: StringHasher,
): unknown {
  if (!isRecord(section)) return hashAll(section, hash, 1);
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(section)) {
    if (value === undefined) continue;
    if (sensitiveKeys.has(key) && typeof value === "string") out[key] = identityHash(value);
    else
      out[key] =
        plain.has(key) && !sensitiveKeys.has(key) ? keepPlain(value, hash, 2) : hashAll(value, hash, 2);
  }
  return out;
}

/** Copies a value, hashing only the strings found under a sensitive key. */
function keepPlain(value: unknown, hash: StringHasher, depth: number): unknown {
  if (depth > MAX_DEPTH) return TOO_DEEP_VALUE;
  if (Array.isArray(value)) return value.map((v) => keepPlain(v, hash, depth + 1));
  if (isRecord(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (v === undefined) continue;
      out[k] = sensitiveKeys.has(k) ? hashAll(v, hash, depth + 1) : keepPlain(v, hash, depth + 1);
    }
    return out;
  }
  return scalar(value, hash, false);
}

/** Copies a value with every string leaf hashed (arrays and nested objects too; keys stay plain). */
function hashAll(value: unknown, hash: StringHasher, depth: number): unknown {
  if (depth > MAX_DEPTH) return TOO_DEEP_VALUE;
  if (Array.isArray(value)) return value.map((v) => hashAll(v, hash, depth + 1));
  if (value instanceof Uint8Array) return hash(Buffer.from(value).toString("base64"));
  if (isRecord(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = hashAll(v, hash, depth + 1);
    return out;
  }
  return scalar(value, hash, true);
}

function scalar(value: unknown, hash: StringHasher, sensitive: boolean): unknown {
  switch (typeof value) {
    case "string":
      return sensitive ? hash(value) : value;
    case "number":
    case "boolean":
      return value;
    case "bigint":
      return sensitive ? hash(value.toString()) : value.toString();
    case "object":
      if (value === null) return null;
      // Dates and other objects with toJSON: hash what JSON.stringify would have written.
      if (typeof (value as { toJSON?: unknown }).toJSON === "function") {
        const json: unknown = (value as { toJSON(): unknown }).toJSON();
        return typeof json === "string"
          ? sensitive
            ? hash(json)
            : json
          : sensitive
            ? hash(String(json))
            : json;
      }
      return sensitive ? hash(String(value)) : String(value);
    default:
      return null;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * The JSON text of `redactEntry(entry, …)`, written in one pass without building the redacted copy first
 * (the audit log's hot path). Byte-for-byte the same as JSON.stringify(redactEntry(entry, hashValue,
 * identityHash)); redact.test.ts holds the two together.
 */
export function redactToJson(
  entry: AuditEntry,
  hashValue: StringHasher,
  identityHash: StringHasher = hashValue,
): string {
  return "{" + redactToJsonFields(entry, hashValue, identityHash);
}

/**
 * redactToJson without its opening "{": the audit log puts its chain fields in front of these, and a
 * string built that way is never copied to drop a first character.
 */
export function redactToJsonFields(
  entry: AuditEntry,
  hashValue: StringHasher,
  identityHash: StringHasher = hashValue,
): string {
  if (!entryTypes.has(entry.type)) {
    fail(
      "FR_INTERNAL",
      `audit entry type must be request, response or event, not ${JSON.stringify(entry.type)}`,
    );
  }
  let out = `"type":${jsonString(entry.type)}`;
  for (const key in entry) {
    if (!Object.hasOwn(entry, key)) continue;
    const value = (entry as unknown as Record<string, unknown>)[key];
    if (key === "type" || value === undefined) continue;
    const kinds = sectionKinds.get(key);
    out +=
      "," +
      keyJson(key) +
      (key === "error"
        ? typeof value === "string"
          ? jsonString(value)
          : jsonAll(value, hashValue, 1)
        : kinds
          ? jsonSection(kinds, value, hashValue, identityHash)
          : jsonAll(value, hashValue, 1));
  }
  return out + "}";
}

/**
 * JSON of frozen sections, per identity hasher: a frozen object cannot change, and the pipeline hands the
 * same frozen auth section to every request of a token, so it is redacted once per HMAC key.
 */
const frozenJson = new WeakMap<object, { hasher: StringHasher; json: string }>();

function jsonSection(
  kinds: ReadonlyMap<string, SectionField>,
  section: unknown,
  hash: StringHasher,
  identityHash: StringHasher,
): string {
  if (!isRecord(section)) return jsonAll(section, hash, 1);
  if (Object.isFrozen(section)) {
    const hit = frozenJson.get(section);
    if (hit && hit.hasher === identityHash) return hit.json;
    const json = jsonRecord(section, kinds, hash, identityHash, 2);
    if (deeplyImmutable(section)) frozenJson.set(section, { hasher: identityHash, json: flatString(json) });
    return json;
  }
  return jsonRecord(section, kinds, hash, identityHash, 2);
}

/** Frozen, and every value a primitive or a frozen array of primitives: nothing in it can change. */
function deeplyImmutable(o: Record<string, unknown>): boolean {
  for (const k in o) {
    const v = o[k];
    if (v === null || typeof v !== "object") continue;
    if (!Array.isArray(v) || !Object.isFrozen(v)) return false;
    for (const x of v) if (x !== null && typeof x === "object") return false;
  }
  return true;
}

/**
 * `{…}` of an object's own keys in iteration order (as JSON.stringify), skipping undefined values; each
 * value is written at `depth` as its kind says. `kinds` is a section's table, or for a value inside a
 * section: "plain" (kept, but a sensitive key's value hashed) or "hashed" (every string leaf hashed).
 * One loop without a callback: this runs for every section of every audit entry.
 */
function jsonRecord(
  o: Record<string, unknown>,
  kinds: ReadonlyMap<string, SectionField> | "plain" | "hashed",
  hash: StringHasher,
  identityHash: StringHasher,
  depth: number,
): string {
  let out = "";
  for (const k in o) {
    if (!Object.hasOwn(o, k)) continue;
    const v = o[k];
    if (v === undefined) continue;
    let kind: FieldKind;
    let key: KeyJson;
    const known = typeof kinds === "string" ? undefined : kinds.get(k);
    if (known !== undefined) {
      kind = known.kind;
      key = known.key;
    } else {
      kind = kinds === "plain" && !sensitiveKeys.has(k) ? PLAIN : HASHED;
      key = keyOf(k);
    }
    // A string that goes in as it is, or a JSON-safe hash, follows its key's opening quote directly: the
    // fewer pieces a line is built from, the less there is to allocate and to join when it is written.
    if (typeof v === "string" && depth <= MAX_DEPTH) {
      let text: string | undefined;
      if (kind === PLAIN) {
        if (isPlainJsonString(v)) text = v;
      } else {
        const h = kind === IDENTITY ? identityHash : hash;
        if (h.jsonSafe) text = h(v);
      }
      if (text !== undefined) {
        out = out === "" ? key.openQuoted + text + '"' : out + key.nextQuoted + text + '"';
        continue;
      }
    }
    const value =
      kind === PLAIN
        ? jsonPlain(v, hash, depth)
        : kind === IDENTITY && typeof v === "string"
          ? quoted(identityHash, v)
          : jsonAll(v, hash, depth);
    out = out === "" ? key.open + value : out + key.next + value;
  }
  return out === "" ? "{}" : out + "}";
}

function jsonArray(a: readonly unknown[], item: (value: unknown) => string): string {
  let out = "[";
  for (let i = 0; i < a.length; i++) out += (i ? "," : "") + item(a[i]);
  return out + "]";
}

function jsonPlain(value: unknown, hash: StringHasher, depth: number): string {
  if (depth > MAX_DEPTH) return JSON.stringify(TOO_DEEP_VALUE);
  if (typeof value === "string") return jsonString(value);
  if (Array.isArray(value)) return jsonArray(value, (v) => jsonPlain(v, hash, depth + 1));
  if (isRecord(value)) return jsonRecord(value, "plain", hash, hash, depth + 1);
  return jsonScalar(scalar(value, hash, false));
}

function jsonAll(value: unknown, hash: StringHasher, depth: number): string {
  if (depth > MAX_DEPTH) return JSON.stringify(TOO_DEEP_VALUE);
  if (typeof value === "string") return quoted(hash, value);
  if (Array.isArray(value)) return jsonArray(value, (v) => jsonAll(v, hash, depth + 1));
  if (value instanceof Uint8Array) return quoted(hash, Buffer.from(value).toString("base64"));
  if (isRecord(value)) {
    if (Object.isFrozen(value)) return frozenAll(value, hash, depth);
    return jsonRecord(value, "hashed", hash, hash, depth + 1);
  }
  return jsonScalar(scalar(value, hash, true));
}

/**
 * jsonAll of frozen objects, per hasher and depth. A handler may answer many requests with the same
 * deeply frozen object (a KV read of an unchanged key), whose hashed JSON then is computed once per HMAC
 * key. `json` is undefined for an object that is frozen but holds something that could still change.
 */
const frozenAllJson = new WeakMap<object, { hash: StringHasher; depth: number; json: string | undefined }>();

function frozenAll(value: Record<string, unknown>, hash: StringHasher, depth: number): string {
  const hit = frozenAllJson.get(value);
  if (hit !== undefined && hit.hash === hash && hit.depth === depth && hit.json !== undefined)
    return hit.json;
  const json = jsonRecord(value, "hashed", hash, hash, depth + 1);
  if (hit === undefined || hit.hash !== hash || hit.depth !== depth) {
    frozenAllJson.set(value, {
      hash,
      depth,
      json: deeplyFrozen(value, depth) ? flatString(json) : undefined,
    });
  }
  return json;
}

/** Frozen plain objects and arrays all the way down, with only strings, numbers, booleans and null in them. */
function deeplyFrozen(value: unknown, depth: number): boolean {
  if (value === null) return true;
  switch (typeof value) {
    case "string":
    case "number":
    case "boolean":
      return true;
    case "object":
      if (depth > MAX_DEPTH || !Object.isFrozen(value)) return false;
      if (Array.isArray(value)) return value.every((v) => deeplyFrozen(v, depth + 1));
      if (!isRecord(value)) return false;
      for (const k in value) if (!deeplyFrozen(value[k], depth + 1)) return false;
      return true;
    default:
      return false;
  }
}

/** A key's JSON as the first member of an object (`{"key":`) or a later one (`,"key":`), bare or with the value's opening quote. */
interface KeyJson {
  readonly key: string;
  readonly open: string;
  readonly next: string;
  readonly openQuoted: string;
  readonly nextQuoted: string;
}

/** Keys seen before (bounded): most entries repeat the same few dozen keys. */
const keyCache = new Map<string, KeyJson>();
function keyOf(k: string): KeyJson {
  let j = keyCache.get(k);
  if (j === undefined) {
    j = keyJsonOf(k);
    if (keyCache.size < 4096) keyCache.set(k, j);
  }
  return j;
}

function keyJsonOf(k: string): KeyJson {
  const key = JSON.stringify(k) + ":";
  return {
    key: flatString(key),
    open: flatString("{" + key),
    next: flatString("," + key),
    openQuoted: flatString("{" + key + '"'),
    nextQuoted: flatString("," + key + '"'),
  };
}

function keyJson(k: string): string {
  return keyOf(k).key;
}
