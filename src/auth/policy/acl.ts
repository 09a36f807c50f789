import type { Capability } from "../../server/types.js";
import type { ParamValues, PathRule, Policy } from "./policy.js";

/** The permissions on one pattern after merging every policy of a token. */
interface Perms {
  caps: Set<Capability>;
  allowed?: Record<string, ParamValues>;
  denied?: Record<string, ParamValues>;
  required?: string[];
}

/** A non-exact pattern, pre-split for matching and ranked by Vault's priority keys. */
interface WildRule {
  readonly path: string;
  readonly perms: Perms;
  readonly isPrefix: boolean;
  /** Pattern without the trailing "*". */
  readonly stem: string;
  /** Set when the pattern has "+" segments. */
  readonly segments: readonly string[] | undefined;
  /** Index of the first "+" or "*": the first of Vault's priority keys. */
  readonly firstWildcard: number;
  readonly plusCount: number;
}

export type ParamInput = Readonly<Record<string, unknown>>;

/**
 * The merged ACL of a token's policies, evaluated with Vault's semantics:
 * - rules with the same pattern in several policies merge (union of capabilities; `deny` clears all);
 * - an exact pattern beats every glob; otherwise the highest-priority matching glob decides alone;
 * - nothing matching means deny.
 */
export class Acl {
  readonly root: boolean;
  private readonly exact = new Map<string, Perms>();
  private readonly wild: WildRule[] = [];

  constructor(policies: readonly Policy[]) {
    this.root = policies.some((p) => p.name === "root");
    const merged = new Map<string, Perms>();
    for (const p of policies) for (const r of p.rules) mergeRule(merged, r);
    for (const [path, perms] of merged) {
      const isPrefix = path.endsWith("*");
      const stem = isPrefix ? path.slice(0, -1) : path;
      const segs = stem.split("/");
      const hasPlus = segs.includes("+");
      if (!isPrefix && !hasPlus) {
        this.exact.set(path, perms);
        continue;
      }
      const plusAt = hasPlus
        ? segs.slice(0, segs.indexOf("+")).join("/").length + (segs.indexOf("+") > 0 ? 1 : 0)
        : -1;
      this.wild.push({
        path,
        perms,
        isPrefix,
        stem,
        segments: hasPlus ? segs : undefined,
        firstWildcard: plusAt >= 0 ? plusAt : stem.length,
        plusCount: segs.filter((s) => s === "+").length,
      });
    }
  }

  /** The capabilities a token has on a path (Vault's sys/capabilities answer). */
  capabilities(path: string): Capability[] | ["root"] {
    if (this.root) return ["root"];
    const perms = this.lookup(normalize(path), false);
    if (!perms || perms.caps.has("deny") || perms.caps.size === 0) return ["deny"];
    return [...perms.caps].sort();
  }

  /**
   * Whether `capability` is granted on `path`. `params` (the request body, or the query for reads) are
   * checked against allowed/denied/required_parameters for create/read/update/patch, as Vault does.
   */
  allows(path: string, capability: Capability, params: ParamInput = {}): boolean {
    if (this.root) return true;
    if (capability === "deny") return false;
    let p = normalize(path);
    // Vault runs LIST on the path with a trailing slash; "x/*" and exact "x" both grant it.
    if (capability === "list" && !p.endsWith("/")) p += "/";
    const perms = this.lookup(p, capability === "list");
    if (!perms || perms.caps.has("deny") || !perms.caps.has(capability)) return false;
    if (
      capability === "create" ||
      capability === "read" ||
      capability === "update" ||
      capability === "patch"
    ) {
      return paramsAllowed(perms, params);
    }
    return true;
  }

  private lookup(path: string, list: boolean): Perms | undefined {
    const exact =
      this.exact.get(path) ?? (list && path.endsWith("/") ? this.exact.get(path.slice(0, -1)) : undefined);
    if (exact) return exact;
    let best: WildRule | undefined;
    for (const w of this.wild) {
      if (matches(w, path) && (!best || higherPriority(w, best))) best = w;
    }
    return best?.perms;
  }
}

function normalize(path: string): string {
  return path.startsWith("/") ? path.slice(1) : path;
}

function matches(w: WildRule, path: string): boolean {
  if (!w.segments) return path.startsWith(w.stem);
  const parts = path.split("/");
  const n = w.segments.length;
  if (parts.length < n || (!w.isPrefix && parts.length !== n)) return false;
  for (let i = 0; i < n; i++) {
    const seg = w.segments[i]!;
    if (seg === "+") continue;
    const part = parts[i]!;
    const last = i === n - 1;
    if (last && w.isPrefix ? !part.startsWith(seg) : part !== seg) return false;
  }
  return true;
}

/**
 * Vault's documented priority between two matching glob patterns P1 and P2
 * (developer.hashicorp.com/vault/docs/concepts/policies, "Priority matching"):
 *   1. if the first wildcard ("+") or glob ("*") occurs earlier in P1, P1 is lower priority;
 *   2. if P1 ends in "*" and P2 doesn't, P1 is lower priority;
 *   3. if P1 has more "+" (wildcard) segments, P1 is lower priority;
 *   4. if P1 is shorter, it is lower priority;
 *   5. if P1 is smaller lexicographically, it is lower priority.
 * An exact (wildcard-free) pattern is matched before any of these are consulted.
 */
function higherPriority(a: WildRule, b: WildRule): boolean {
  if (a.firstWildcard !== b.firstWildcard) return a.firstWildcard > b.firstWildcard;
  if (a.isPrefix !== b.isPrefix) return !a.isPrefix;
  if (a.plusCount !== b.plusCount) return a.plusCount < b.plusCount;
  if (a.path.length !== b.path.length) return a.path.length > b.path.length;
  return a.path > b.path;
}

function mergeRule(merged: Map<string, Perms>, r: PathRule): void {
  const cur = merged.get(r.path);
  if (r.capabilities.has("deny") || cur?.caps.has("deny")) {
    merged.set(r.path, { caps: new Set(["deny"]) });
    return;
  }
  if (!cur) {
    merged.set(r.path, {
      caps: new Set(r.capabilities),
      ...(r.allowedParameters && { allowed: { ...r.allowedParameters } }),
      ...(r.deniedParameters && { denied: { ...r.deniedParameters } }),
      ...(r.requiredParameters && { required: [...r.requiredParameters] }),
    });
    return;
  }
  for (const c of r.capabilities) cur.caps.add(c);
  if (r.allowedParameters) cur.allowed = mergeParams(cur.allowed, r.allowedParameters);
  if (r.deniedParameters) cur.denied = mergeParams(cur.denied, r.deniedParameters);
  if (r.requiredParameters) cur.required = [...new Set([...(cur.required ?? []), ...r.requiredParameters])];
}

/** Vault's merge: values are appended, and an empty list (any value) on either side wins. */
function mergeParams(
  a: Record<string, ParamValues> | undefined,
  b: Readonly<Record<string, ParamValues>>,
): Record<string, ParamValues> {
  const out: Record<string, ParamValues> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const cur = out[k];
    out[k] = cur === undefined ? v : cur.length === 0 || v.length === 0 ? [] : [...cur, ...v];
  }
  return out;
}

/** Vault's parameter checks, in its order: required, then denied, then allowed. */
function paramsAllowed(perms: Perms, params: ParamInput): boolean {
  // Most rules constrain no parameter: nothing to look at (and nothing to allocate on every request).
  if (!perms.required && !perms.denied && !perms.allowed) return true;
  const keys = Object.keys(params);
  if (perms.required?.length) {
    const has = new Set(keys.map((k) => k.toLowerCase()));
    for (const r of perms.required) if (!has.has(r)) return false;
  }
  if (keys.length === 0) return true;
  const { denied, allowed } = perms;
  if (denied && Object.keys(denied).length > 0) {
    if (denied["*"] !== undefined) return false;
    for (const k of keys) {
      const vals = denied[k.toLowerCase()];
      if (vals !== undefined && valueInList(params[k], vals)) return false;
    }
  }
  if (!allowed || Object.keys(allowed).length === 0) return true;
  const allowAll = allowed["*"] !== undefined;
  for (const k of keys) {
    const vals = allowed[k.toLowerCase()];
    if (vals === undefined && !allowAll) return false;
    if (vals !== undefined && !valueInList(params[k], vals)) return false;
  }
  return true;
}

/** An empty list matches anything; a list value must have every element in the list. */
function valueInList(value: unknown, list: ParamValues): boolean {
  if (list.length === 0) return true;
  if (Array.isArray(value)) return value.every((v) => valueInList(v, list));
  const s = typeof value === "string" ? value : JSON.stringify(value);
  return list.some((pattern) => globMatch(String(pattern), s));
}

/** Value globs as Vault allows them: a "*" at the start and/or the end. */
function globMatch(pattern: string, s: string): boolean {
  if (pattern === "*") return true;
  const pre = pattern.startsWith("*");
  const suf = pattern.endsWith("*") && pattern.length > 1;
  const core = pattern.slice(pre ? 1 : 0, suf ? -1 : undefined);
  if (pre && suf) return s.includes(core);
  if (pre) return s.endsWith(core);
  if (suf) return s.startsWith(core);
  return s === pattern;
}
