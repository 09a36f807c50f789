import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parse as parseYaml, YAMLParseError } from "yaml";
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
  let fromFile: Record<string, unknown> = {};
  if (opts.file) {
    let text: string;
    try {
      text = readFileSync(opts.file, "utf8");
    } catch (e) {
      const why = (e as NodeJS.ErrnoException).code ?? "unreadable";
      throw new FleetError("FR_CONFIG_UNREADABLE", `${source}: ${why}`, { cause: e });
    }
    try {
      const parsed: unknown = parseYaml(text, { maxAliasCount: 100 });
      if (parsed !== null && parsed !== undefined) {
        if (typeof parsed !== "object" || Array.isArray(parsed)) {
          throw new FleetError("FR_CONFIG_INVALID", `${source}: the top level must be a mapping of keys`);
        }
        fromFile = parsed as Record<string, unknown>;
      }
    } catch (e) {
      if (e instanceof FleetError) throw e;
      const where = e instanceof YAMLParseError && e.linePos ? ` line ${e.linePos[0].line}` : "";
      const first = (e as Error).message.split("\n")[0];
      throw new FleetError("FR_CONFIG_INVALID", `${source}:${where} YAML syntax error: ${first}`, {
        cause: e,
      });
    }
  }

  const merged = deepMerge(structuredClone(opts.defaults ?? {}), fromFile);
  const envSource = applyEnv(merged, opts.env ?? process.env);
  const result = configSchema.safeParse(merged);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const key = issuePath(issue);
    const origin = originOf(envSource, key, issue.code === "invalid_union") ?? source;
    throw new FleetError("FR_CONFIG_INVALID", `${origin}: ${describeIssue(issue, key)}`);
  }
  return deepFreeze(result.data);
}

/**
 * The variable that set the failing key. A union (seal) fails on its discriminator, which the variable that
 * set one of its other fields may have left out, so there a variable under the same parent counts too.
 */
function originOf(origins: Map<string, string>, key: string, union: boolean): string | undefined {
  const exact = origins.get(key);
  if (exact || !union) return exact;
  const parent = key.includes(".") ? key.slice(0, key.lastIndexOf(".") + 1) : `${key}.`;
  for (const [k, v] of origins) if (k.startsWith(parent)) return v;
  return undefined;
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

/** How an environment value is read: only number and boolean keys convert, so "0755" stays a string path. */
type LeafKind = "number" | "boolean" | "string";

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
    const kind = def?.type === "number" || def?.type === "boolean" ? def.type : "string";
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
