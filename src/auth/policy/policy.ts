import type { Capability } from "../../server/types.js";
import { parseDuration } from "../../util/index.js";
import { type Entry, type Node, type Pos, parseDocument, syntaxError } from "./hcl.js";

/** Parameter values a rule allows or denies; an empty list means "any value". */
export type ParamValues = readonly (string | number | boolean)[];

/** One `path "…" { … }` rule. */
export interface PathRule {
  /** The pattern as written (leading "/" removed), e.g. "secret/+/db*". */
  readonly path: string;
  readonly capabilities: ReadonlySet<Capability>;
  readonly allowedParameters?: Readonly<Record<string, ParamValues>>;
  readonly deniedParameters?: Readonly<Record<string, ParamValues>>;
  readonly requiredParameters?: readonly string[];
  readonly minWrappingTtl?: number;
  readonly maxWrappingTtl?: number;
}

export interface Policy {
  readonly name: string;
  readonly rules: readonly PathRule[];
}

export const CAPABILITIES: readonly Capability[] = [
  "create",
  "read",
  "update",
  "patch",
  "delete",
  "list",
  "sudo",
  "deny",
];
const MAX_RULES = 4096;
const MAX_PATH_CHARS = 1024;

/** Vault's pre-0.5 shorthand, still accepted: `policy = "write"`. */
const legacy: Record<string, readonly Capability[]> = {
  deny: ["deny"],
  read: ["read", "list"],
  write: ["create", "read", "update", "patch", "delete", "list"],
  sudo: ["create", "read", "update", "patch", "delete", "list", "sudo"],
};

/**
 * Parses a Vault ACL policy written in HCL or JSON. Errors are FR_POLICY_SYNTAX and name the line and
 * column (for both syntaxes, since both go through the same tokenizer).
 */
export function parsePolicy(name: string, text: string): Policy {
  const doc = parseDocument(text);
  if (doc.kind !== "object") syntaxError(doc.pos, "a policy is a set of path blocks");
  const rules: PathRule[] = [];
  for (const e of doc.entries) {
    if (e.key === "name") continue; // Vault tolerates a top-level name; the URL names the policy.
    if (e.key !== "path")
      syntaxError(e.pos, `unknown key ${JSON.stringify(e.key)}; a policy holds only path blocks`);
    const blocks = e.value.kind === "list" ? e.value.items : [e.value];
    for (const b of blocks) {
      if (b.kind !== "object")
        syntaxError(b.pos, 'a path block is written path "glob" { capabilities = [...] }');
      for (const pe of b.entries) {
        if (rules.length >= MAX_RULES) syntaxError(pe.pos, `a policy holds at most ${MAX_RULES} path blocks`);
        rules.push(parseRule(pe));
      }
    }
  }
  return { name, rules };
}

function parseRule(e: Entry): PathRule {
  const path = e.key.startsWith("/") ? e.key.slice(1) : e.key;
  if (path.length > MAX_PATH_CHARS)
    syntaxError(e.pos, `the path is longer than ${MAX_PATH_CHARS} characters`);
  const star = path.indexOf("*");
  if (star >= 0 && star !== path.length - 1) {
    syntaxError(e.pos, `path ${JSON.stringify(path)}: "*" is allowed only as the last character`);
  }
  if (e.value.kind !== "object") syntaxError(e.value.pos, `path ${JSON.stringify(path)} must be a block`);
  const caps = new Set<Capability>();
  let sawCaps = false;
  const rule: {
    -readonly [K in keyof PathRule]: PathRule[K];
  } = { path, capabilities: caps };
  for (const f of e.value.entries) {
    switch (f.key) {
      case "capabilities": {
        sawCaps = true;
        for (const s of stringList(f.value, "capabilities")) {
          if (!(CAPABILITIES as readonly string[]).includes(s.value)) {
            syntaxError(
              s.pos,
              `unknown capability ${JSON.stringify(s.value)}; use ${CAPABILITIES.join(", ")}`,
            );
          }
          caps.add(s.value as Capability);
        }
        break;
      }
      case "policy": {
        sawCaps = true;
        const v = f.value;
        if (v.kind !== "string" || !legacy[v.value])
          syntaxError(v.pos, 'policy must be "deny", "read", "write" or "sudo"');
        for (const c of legacy[v.value]!) caps.add(c);
        break;
      }
      case "allowed_parameters":
        rule.allowedParameters = paramMap(f.value, f.key);
        break;
      case "denied_parameters":
        rule.deniedParameters = paramMap(f.value, f.key);
        break;
      case "required_parameters":
        rule.requiredParameters = stringList(f.value, f.key).map((s) => s.value.toLowerCase());
        break;
      case "min_wrapping_ttl":
      case "max_wrapping_ttl": {
        const v = f.value;
        if (v.kind !== "string" && v.kind !== "number")
          syntaxError(v.pos, `${f.key} must be a duration like "5m"`);
        const secs = wrapDuration(v.value, f.key, v.pos);
        if (f.key === "min_wrapping_ttl") rule.minWrappingTtl = secs;
        else rule.maxWrappingTtl = secs;
        break;
      }
      case "control_group":
      case "mfa_methods":
      case "subscribe_event_types":
        syntaxError(f.pos, `${f.key} is not supported by Fleetroot; remove it from the policy`);
        break;
      default:
        syntaxError(f.pos, `unknown key ${JSON.stringify(f.key)} in path ${JSON.stringify(path)}`);
    }
  }
  if (!sawCaps) syntaxError(e.pos, `path ${JSON.stringify(path)} has no capabilities`);
  // Vault: deny on a path removes every other capability there.
  if (caps.has("deny")) {
    caps.clear();
    caps.add("deny");
  }
  const { minWrappingTtl: lo, maxWrappingTtl: hi } = rule;
  if (lo !== undefined && hi !== undefined && lo > hi) {
    syntaxError(e.pos, `path ${JSON.stringify(path)}: min_wrapping_ttl is greater than max_wrapping_ttl`);
  }
  return rule;
}

function wrapDuration(v: string | number, field: string, pos: Pos): number {
  try {
    return parseDuration(v, field);
  } catch {
    syntaxError(pos, `${field} must be a duration like "5m" or a number of seconds`);
  }
}

function stringList(n: Node, field: string): { value: string; pos: Pos }[] {
  if (n.kind !== "list") syntaxError(n.pos, `${field} must be a list of strings`);
  return n.items.map((i) => {
    if (i.kind !== "string") syntaxError(i.pos, `${field} must be a list of strings`);
    return { value: i.value, pos: i.pos };
  });
}

function paramMap(n: Node, field: string): Record<string, ParamValues> {
  // Both `allowed_parameters = { … }` and a list of such objects (HCL1's JSON form) are accepted.
  const objs = n.kind === "list" ? n.items : [n];
  const out: Record<string, ParamValues> = {};
  for (const o of objs) {
    if (o.kind !== "object") syntaxError(o.pos, `${field} maps parameter names to lists of values`);
    for (const e of o.entries) {
      const v = e.value;
      if (v.kind !== "list")
        syntaxError(v.pos, `${field}: the value of ${JSON.stringify(e.key)} must be a list`);
      const vals = v.items.map((i) => {
        if (i.kind !== "string" && i.kind !== "number" && i.kind !== "bool") {
          syntaxError(i.pos, `${field}: values must be strings, numbers or booleans`);
        }
        return i.value;
      });
      const key = e.key.toLowerCase();
      out[key] = [...(out[key] ?? []), ...vals];
    }
  }
  return out;
}
