import { readFileSync } from "node:fs";
import { userInfo } from "node:os";
import { resolve } from "node:path";
import { isScalar, parseAllDocuments, parseDocument, type YAMLError } from "yaml";
import type { z } from "zod";
import { FleetError } from "../errors/index.js";
import { configSchema, type Config } from "./schema.js";

/** FLEETROOT_* variables that belong to the CLI or the test harness, not to the server's configuration. */
const clientVariables = new Set([
  "FLEETROOT_ADDR",
  "FLEETROOT_TOKEN",
  "FLEETROOT_FORMAT",
  "FLEETROOT_CACERT",
  "FLEETROOT_CLIENT_CERT",
  "FLEETROOT_CLIENT_KEY",
  "FLEETROOT_CONFIG",
  "FLEETROOT_FROM_SOURCE",
  "FLEETROOT_PKCS11_MODULE",
  "FLEETROOT_DEV_ROOT_TOKEN",
]);

export interface LoadOptions {
  /** YAML file; when absent only defaults and the environment apply. */
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** Values applied under the file and the environment (dev mode's defaults). */
  defaults?: Record<string, unknown>;
}

/**
 * Loads the configuration: defaults, then the YAML file, then FLEETROOT_* overrides
 * (FLEETROOT_SEAL_TYPE sets seal.type, FLEETROOT_LIMITS_MAX_BODY_BYTES sets limits.max_body_bytes).
 * Any unknown or invalid key fails with one line naming the key and where it came from.
 */
export function loadConfig(opts: LoadOptions = {}): Readonly<Config> {
  const source = opts.file ? resolve(opts.file) : "defaults";
  const fromFile = opts.file ? readConfigFile(opts.file, source) : {};

  const merged = deepMerge(structuredClone(opts.defaults ?? {}), fromFile);
  const envSource = applyEnv(merged, opts.env ?? process.env);
  const result = configSchema.safeParse(merged);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const key = issuePath(issue);
    // A missing key is blamed on whatever set its siblings (FLEETROOT_TLS_CLIENT_CA_FILE without a cert).
    const missing = issue.code !== "unrecognized_keys" && valueAt(merged, key) === undefined;
    const origin = originOf(envSource, key, issue.code === "invalid_union" || missing) ?? source;
    const hint =
      missing || issue.code === "unrecognized_keys" ? sealTypeHint(key, merged, envSource, source) : "";
    throw new FleetError("FR_CONFIG_INVALID", `${origin}: ${describeIssue(issue, key)}${hint}`);
  }
  return deepFreeze(result.data);
}

/**
 * Reads and parses the YAML file into its top-level mapping. Every way it can fail (unreadable, not text,
 * not UTF-8, several documents, a syntax error, not a mapping, empty) is one line naming the file, the
 * line and column where known, and what to do.
 */
function readConfigFile(file: string, source: string): Record<string, unknown> {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw new FleetError("FR_CONFIG_UNREADABLE", `${source}: ${readFailure(e as NodeJS.ErrnoException)}`, {
      cause: e,
    });
  }
  const invalid = (msg: string, cause?: unknown) =>
    new FleetError("FR_CONFIG_INVALID", `${source}: ${msg}`, cause === undefined ? {} : { cause });
  const text = decodeUtf8(bytes);
  if (typeof text !== "string") throw invalid(text.problem);
  // An empty file, like a file of comments only, is a deliberate "all defaults" (the environment may set the rest).
  if (text.trim() === "") return {};
  // parseAllDocuments, not parse: a second "---" document becomes an error with a line, not a silent merge.
  const docs = parseAllDocuments(text, { uniqueKeys: true, prettyErrors: true });
  const all = Array.isArray(docs) ? docs : [];
  for (const doc of all) {
    // A warning (an unknown !tag) is an error too: a configuration holds plain values only.
    const problem = doc.errors[0] ?? doc.warnings[0];
    if (problem) throw invalid(describeYamlError(problem, text), problem);
  }
  // An empty document (a "---" at the end of the file, say) holds nothing: only documents with content count.
  const filled = all.filter(
    (d) => d.contents !== null && !(isScalar(d.contents) && d.contents.value === null),
  );
  if (filled.length > 1) {
    const at = lineColumn(text, filled[1]!.range[0]);
    throw invalid(
      `line ${at.line}: a second YAML document starts here ("---"); a configuration file is one mapping, ` +
        'so remove the "---" separator and merge the two parts',
    );
  }
  let parsed: unknown;
  try {
    parsed = filled[0]?.toJS({ maxAliasCount: 100 });
  } catch (e) {
    throw invalid(`YAML error: ${firstLine(e)}`, e);
  }
  // A file of comments only is a deliberate "all defaults".
  if (parsed === undefined) return {};
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    const found = Array.isArray(parsed)
      ? "a list"
      : `a single value (${JSON.stringify(parsed)?.slice(0, 40) ?? String(parsed)})`;
    throw invalid(
      `the file holds ${found}, but a configuration is a mapping of keys, one per line, such as ` +
        '"listen: 127.0.0.1:8200" (docs/configuration.md)',
    );
  }
  return parsed as Record<string, unknown>;
}

/** Why a configuration file cannot be read, for the operator (not the bare errno). */
function readFailure(e: NodeJS.ErrnoException): string {
  switch (e.code) {
    case "ENOENT":
      return `no such file (ENOENT); check the path (relative paths start from ${process.cwd()})`;
    case "EISDIR":
      return "it is a directory, not a file (EISDIR); name the YAML file inside it (such as fleetroot.yaml)";
    case "EACCES":
    case "EPERM":
      return `permission denied (${e.code}) for user ${currentUser()}; make the file readable by the user the server runs as`;
    case "ENOTDIR":
      return "a part of the path is a file, not a directory (ENOTDIR); check the path";
    case "ELOOP":
      return "too many levels of symbolic links (ELOOP); check the links on the path";
    default:
      return `cannot read it (${e.code ?? "error"}: ${firstLine(e)})`;
  }
}

function currentUser(): string {
  try {
    return `${userInfo().username} (uid ${process.getuid?.() ?? "?"})`;
  } catch {
    return `uid ${process.getuid?.() ?? "?"}`;
  }
}

/** The text, or why these bytes are not a UTF-8 text file (a key, a certificate in DER, UTF-16, Latin-1). */
function decodeUtf8(bytes: Buffer): string | { problem: string } {
  if (
    bytes.length >= 2 &&
    ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff))
  ) {
    return { problem: "the file is UTF-16 text; save it as UTF-8" };
  }
  const nul = bytes.indexOf(0);
  if (nul >= 0) {
    return {
      problem: `the file is binary, not YAML text (a NUL byte at offset ${nul}); check that this is the configuration file`,
    };
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    const at = firstInvalidUtf8(bytes);
    const before = bytes.subarray(0, at);
    const line = before.filter((b) => b === 0x0a).length + 1;
    const column = at - (before.lastIndexOf(0x0a) + 1) + 1;
    const hex = bytes[at]?.toString(16).padStart(2, "0") ?? "??";
    return {
      problem: `line ${line}, column ${column}: byte 0x${hex} is not UTF-8 (Latin-1 or another encoding?); save the file as UTF-8`,
    };
  }
}

/** Offset of the first byte that does not start or continue a valid UTF-8 sequence. */
function firstInvalidUtf8(bytes: Buffer): number {
  const fatal = new TextDecoder("utf-8", { fatal: true });
  let lo = 0;
  let hi = bytes.length; // invariant: bytes[0, lo) decode; bytes[0, hi) do not
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    try {
      fatal.decode(bytes.subarray(0, mid));
      lo = mid;
    } catch {
      hi = mid;
    }
  }
  // bytes[0, hi) fails by its last byte or by a sequence the last byte cut short; step back to its lead byte.
  let at = hi - 1;
  while (at > lo - 3 && at > 0 && ((bytes[at] ?? 0) & 0xc0) === 0x80) at--;
  try {
    fatal.decode(bytes.subarray(0, at));
    return at;
  } catch {
    return hi - 1;
  }
}

/**
 * Parses a YAML file other than the configuration (a definition the CLI sends, say) the same strict way: a
 * syntax error, a repeated key, a tab indent or an unknown tag throws an Error of one line that gives the
 * line and column; the caller puts the file's name in front.
 */
export function parseYamlDocument(text: string): unknown {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem) throw new Error(describeYamlError(problem, text));
  return doc.toJS();
}

function describeYamlError(e: YAMLError, text: string): string {
  const pos = e.linePos?.[0] ?? lineColumn(text, e.pos[0]);
  const where = `line ${pos.line}, column ${pos.col}`;
  switch (e.code) {
    case "DUPLICATE_KEY": {
      const key = /^\s*("[^"]*"|'[^']*'|[^:#]*?)\s*:/.exec(text.slice(e.pos[0]))?.[1] ?? "this key";
      return `${where}: key ${key.startsWith('"') ? key : JSON.stringify(key.replace(/^'|'$/g, ""))} appears twice in the same mapping; keep one of them`;
    }
    case "TAB_AS_INDENT":
      return `${where}: a tab is used for indentation; YAML indents with spaces only, so replace the tab with spaces`;
    case "TAG_RESOLVE_FAILED":
      return `${where}: ${stripPosition(e.message)}; a configuration holds plain values, so remove the tag`;
    default:
      return `${where}: YAML syntax error: ${stripPosition(e.message)}; check the indentation and quoting there`;
  }
}

/** The first line of a yaml message without its " at line L, column C:" (given separately). */
function stripPosition(message: string): string {
  return (message.split("\n")[0] ?? "").replace(/ at line \d+, column \d+:?$/, "");
}

function lineColumn(text: string, offset: number): { line: number; col: number } {
  const before = text.slice(0, offset);
  return { line: before.split("\n").length, col: offset - before.lastIndexOf("\n") };
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0] ?? "";
}

/**
 * The variable that set the failing key. A union (seal) fails on its discriminator, which the variable that
 * set one of its other fields may have left out, so there a variable under the same parent counts too.
 */
function originOf(origins: Map<string, string>, key: string, union: boolean): string | undefined {
  // An entry of a list (keys.file_dirs.1) was set with the whole list.
  const exact = origins.get(key) ?? origins.get(key.replace(/(\.\d+)+$/, ""));
  if (exact || !union) return exact;
  const parent = key.includes(".") ? key.slice(0, key.lastIndexOf(".") + 1) : `${key}.`;
  for (const [k, v] of origins) if (k.startsWith(parent)) return v;
  return undefined;
}

function valueAt(o: Record<string, unknown>, key: string): unknown {
  let v: unknown = o;
  for (const k of key.split("."))
    v = v && typeof v === "object" ? (v as Record<string, unknown>)[k] : undefined;
  return v;
}

/**
 * For a seal key that does not belong to the seal type in force: which type that is and where it was set,
 * since the type (from a variable, say) may come from elsewhere than the key it makes unknown.
 */
function sealTypeHint(
  key: string,
  merged: Record<string, unknown>,
  origins: Map<string, string>,
  source: string,
): string {
  if (!key.startsWith("seal.") || key === "seal.type") return "";
  const type = (merged.seal as { type?: unknown } | undefined)?.type;
  if (typeof type !== "string") return "";
  return ` (seal.type is ${JSON.stringify(type)}, set by ${origins.get("seal.type") ?? source})`;
}

function issuePath(issue: z.core.$ZodIssue): string {
  const base = issue.path.map(String).join(".");
  if (issue.code === "unrecognized_keys") {
    const k = issue.keys[0] ?? "";
    return base ? `${base}.${k}` : k;
  }
  return base;
}

function describeIssue(issue: z.core.$ZodIssue, key: string): string {
  if (issue.code === "unrecognized_keys") return `unknown key "${key}"`;
  return `key "${key || "(top level)"}": ${issue.message}`;
}

/**
 * How an environment value is read: only number and boolean keys convert, so "0755" stays a string path; a
 * list key (keys.file_dirs) takes comma-separated entries, spaces around each trimmed, an empty value an empty list.
 */
type LeafKind = "number" | "boolean" | "string" | "list";

/** Every leaf path of the schema, as the env variable that sets it, with the kind of value it takes. */
function envNames(): Map<string, { path: string[]; kind: LeafKind }> {
  const names = new Map<string, { path: string[]; kind: LeafKind }>();
  const walk = (schema: unknown, path: string[]): void => {
    const inner = unwrap(schema);
    const def = (
      inner as { _zod?: { def?: { type?: string; shape?: Record<string, unknown>; options?: unknown[] } } }
    )._zod?.def;
    if (def?.type === "object" && def.shape) {
      for (const [k, v] of Object.entries(def.shape)) walk(v, [...path, k]);
      return;
    }
    if (def?.type === "union" && def.options) {
      for (const o of def.options) walk(o, path);
      return;
    }
    const kind =
      def?.type === "number" || def?.type === "boolean"
        ? def.type
        : def?.type === "array"
          ? "list"
          : "string";
    names.set(`FLEETROOT_${path.join("_").toUpperCase()}`, { path, kind });
  };
  walk(configSchema, []);
  return names;
}

function unwrap(schema: unknown): unknown {
  let s = schema as { _zod?: { def?: { type?: string; innerType?: unknown } } };
  while (s._zod?.def && ["optional", "default", "nullable", "prefault"].includes(s._zod.def.type ?? "")) {
    s = s._zod.def.innerType as typeof s;
  }
  return s;
}

/** Applies FLEETROOT_* overrides into `target`; returns which keys (dotted paths) came from which variable. */
function applyEnv(target: Record<string, unknown>, env: NodeJS.ProcessEnv): Map<string, string> {
  const names = envNames();
  const origins = new Map<string, string>();
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith("FLEETROOT_") || value === undefined || clientVariables.has(name)) continue;
    if (name.startsWith("FLEETROOT_TEST_")) continue;
    const leaf = names.get(name);
    if (!leaf) {
      throw new FleetError("FR_CONFIG_INVALID", `environment: unknown variable ${name}`);
    }
    const { path, kind } = leaf;
    let node = target;
    for (const k of path.slice(0, -1)) {
      if (typeof node[k] !== "object" || node[k] === null) node[k] = {};
      node = node[k] as Record<string, unknown>;
    }
    node[path[path.length - 1]!] = scalar(value, kind);
    origins.set(path.join("."), `environment ${name}`);
  }
  return origins;
}

function scalar(v: string, kind: LeafKind): unknown {
  if (kind === "list") {
    return v
      .split(",")
      .map((e) => e.trim())
      .filter((e) => e !== "");
  }
  if (kind === "number" && /^-?\d+$/.test(v)) return Number(v);
  if (kind === "boolean" && (v === "true" || v === "false")) return v === "true";
  return v;
}

function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  for (const [k, v] of Object.entries(b)) {
    const cur = a[k];
    if (
      v &&
      typeof v === "object" &&
      !Array.isArray(v) &&
      cur &&
      typeof cur === "object" &&
      !Array.isArray(cur)
    ) {
      a[k] = deepMerge(cur as Record<string, unknown>, v as Record<string, unknown>);
    } else {
      a[k] = v;
    }
  }
  return a;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === "object") {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
