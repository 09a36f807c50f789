import { fail } from "../../errors/index.js";
import type { ArtifactRule, Artifacts, Hashes } from "./types.js";

/** fnmatch as in-toto uses it: `*` also crosses `/`. */
export function fnmatch(pattern: string, path: string): boolean {
  let re = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === "*") re += ".*";
    else if (c === "?") re += ".";
    else if (c === "[" && pattern.indexOf("]", i + 2) > 0) {
      const end = pattern.indexOf("]", i + 2);
      const body = pattern.slice(i + 1, end).replace(/\\/g, "\\\\");
      re += `[${body.startsWith("!") ? "^" + body.slice(1) : body}]`;
      i = end;
    } else re += c.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`, "s").test(path);
}

const verbs = new Set(["MATCH", "ALLOW", "DISALLOW", "REQUIRE", "CREATE", "DELETE", "MODIFY"]);

/** Checks a rule's grammar; rule lists must end with DISALLOW * or tampering passes unseen. */
export function checkRules(rules: readonly ArtifactRule[], where: string): void {
  for (const r of rules) {
    const [verb, pattern] = r;
    if (!verb || !verbs.has(verb) || typeof pattern !== "string") {
      fail("FR_UPDATES_INTOTO", `${where}: rule ${JSON.stringify(r)} is not an in-toto artifact rule`);
    }
    if (verb === "MATCH") parseMatch(r, where);
    else if (r.length !== 2) fail("FR_UPDATES_INTOTO", `${where}: ${verb} takes one pattern`);
  }
  const last = rules[rules.length - 1];
  if (!last || last[0] !== "DISALLOW" || last[1] !== "*") {
    fail("FR_UPDATES_INTOTO", `${where}: the rule list must end with ["DISALLOW", "*"]`);
  }
}

interface MatchRule {
  pattern: string;
  srcPrefix: string;
  dstType: "materials" | "products";
  dstPrefix: string;
  step: string;
}

function parseMatch(r: ArtifactRule, where: string): MatchRule {
  // MATCH <pattern> [IN <prefix>] WITH (MATERIALS|PRODUCTS) [IN <prefix>] FROM <step>
  const t = [...r];
  const bad = () => fail("FR_UPDATES_INTOTO", `${where}: malformed MATCH rule ${JSON.stringify(r)}`);
  let i = 2;
  let srcPrefix = "";
  let dstPrefix = "";
  if (t[i] === "IN") {
    srcPrefix = t[i + 1] ?? bad();
    i += 2;
  }
  if (t[i] !== "WITH") return bad();
  const type = t[i + 1];
  if (type !== "MATERIALS" && type !== "PRODUCTS") return bad();
  i += 2;
  if (t[i] === "IN") {
    dstPrefix = t[i + 1] ?? bad();
    i += 2;
  }
  if (t[i] !== "FROM" || !t[i + 1] || t.length !== i + 2) return bad();
  return {
    pattern: t[1]!,
    srcPrefix,
    dstType: type === "MATERIALS" ? "materials" : "products",
    dstPrefix,
    step: t[i + 1]!,
  };
}

const join = (prefix: string, p: string) => (prefix ? `${prefix.replace(/\/+$/, "")}/${p}` : p);
const sameHashes = (a: Hashes | undefined, b: Hashes | undefined) =>
  !!a &&
  !!b &&
  Object.keys(a).length > 0 &&
  Object.entries(a).every(([alg, v]) => b[alg] === undefined || b[alg] === v) &&
  Object.keys(a).some((alg) => b[alg] !== undefined);

/**
 * Applies one rule list the way in-toto does: artifacts start in a queue, each rule consumes what it
 * accepts, DISALLOW fails on anything still queued that it matches.
 */
export function applyRules(
  rules: readonly ArtifactRule[],
  kind: "materials" | "products",
  own: { materials: Artifacts; products: Artifacts },
  others: ReadonlyMap<string, { materials: Artifacts; products: Artifacts }>,
  where: string,
): void {
  const artifacts = own[kind];
  const queue = new Set(Object.keys(artifacts));
  const take = (pred: (p: string) => boolean) => {
    for (const p of [...queue]) if (pred(p)) queue.delete(p);
  };
  for (const r of rules) {
    const verb = r[0]!;
    const pattern = r[1]!;
    switch (verb) {
      case "ALLOW":
        take((p) => fnmatch(pattern, p));
        break;
      case "DISALLOW": {
        const hit = [...queue].find((p) => fnmatch(pattern, p));
        if (hit)
          fail(
            "FR_UPDATES_INTOTO",
            `${where}: ${kind} ${JSON.stringify(hit)} is disallowed by ${JSON.stringify(r)}`,
          );
        break;
      }
      case "REQUIRE":
        if (!(pattern in artifacts))
          fail("FR_UPDATES_INTOTO", `${where}: required ${kind} ${JSON.stringify(pattern)} is missing`);
        break;
      case "CREATE":
        take((p) => fnmatch(pattern, p) && !(p in own.materials));
        break;
      case "DELETE":
        take((p) => fnmatch(pattern, p) && !(p in own.products));
        break;
      case "MODIFY":
        take(
          (p) =>
            fnmatch(pattern, p) &&
            p in own.materials &&
            p in own.products &&
            !sameHashes(own.materials[p], own.products[p]),
        );
        break;
      case "MATCH": {
        const m = parseMatch(r, where);
        const dst = others.get(m.step);
        if (!dst) break; // nothing to match against: the artifact stays queued
        take((p) => {
          const src = m.srcPrefix
            ? p.startsWith(join(m.srcPrefix, ""))
              ? p.slice(join(m.srcPrefix, "").length)
              : undefined
            : p;
          if (src === undefined || !fnmatch(m.pattern, src)) return false;
          return sameHashes(artifacts[p], dst[m.dstType][join(m.dstPrefix, src)]);
        });
        break;
      }
    }
  }
}
