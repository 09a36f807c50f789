/**
 * Policy → DDS Security permissions (DDS Security 1.1 section 9.4.1.3), mapped the way sros2's
 * permissions template does it, so the same policy grants the same topics:
 * - one grant per `<profiles>` of an enclave, subject `CN=<enclave path>`, `<default>DENY</default>`;
 * - a deny_rule (when any rule says DENY) before the allow_rule, each holding one publish and one
 *   subscribe list;
 * - topics → `rt<fqn>`; services: request → publish `rq<fqn>Request` + subscribe `rr<fqn>Reply`, reply the
 *   other way round; actions: call/execute over the `/_action/` sub-topics;
 * - names: absolute (`/x`) as is, `~x` → `<ns>/<node>x`, relative `x` → `<ns>/x`;
 * - each list is the concatenation of its blocks ordered by their first topic (stable), duplicates removed;
 * - an extra allow_rule for `ros_discovery_info` (rmw_cyclonedds, rmw_fastrtps, rmw_connextdds), on unless
 *   `rosDiscoveryInfo: false`.
 */
import type { Policy, PolicyProfile, PolicyRuleSet, Qualifier, RuleAttribute } from "./policy.js";
import { xmlEscape } from "./xml.js";

/** A domain id or an inclusive range of them. */
export type DomainSpec = number | { readonly min: number; readonly max?: number };

export interface DdsCriteria {
  readonly topics: readonly string[];
  /** Partition expressions; absent = the default (empty) partition only. */
  readonly partitions?: readonly string[];
}

export interface DdsRule {
  readonly qualifier: Qualifier;
  readonly domains: readonly DomainSpec[];
  readonly publish: readonly DdsCriteria[];
  readonly subscribe: readonly DdsCriteria[];
}

export interface DdsGrant {
  readonly name: string;
  /** The subject DN string as the DDS plugins compare it with the identity certificate, e.g. `CN=/ns/node`. */
  readonly subjectName: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly rules: readonly DdsRule[];
  readonly defaultQualifier: Qualifier;
}

export interface GrantOptions {
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** Domain ids the rules apply to (default [0], as sros2). */
  readonly domains?: readonly DomainSpec[];
  /** Add the allow rule for `ros_discovery_info` (default true). */
  readonly rosDiscoveryInfo?: boolean;
  /** Subject name per enclave path (default `CN=<path>`). */
  readonly subjectName?: (enclavePath: string) => string;
}

interface Block {
  readonly publish?: string[];
  readonly subscribe?: string[];
}

const ACTION_SERVICES = ["cancel_goal", "get_result", "send_goal"] as const;
const ACTION_TOPICS = ["feedback", "status"] as const;

/** The grants for every enclave of the policy (or only `enclaves`, when given). */
export function grantsFromPolicy(
  policy: Policy,
  opts: GrantOptions,
  enclaves?: readonly string[],
): DdsGrant[] {
  const out: DdsGrant[] = [];
  for (const enc of policy.enclaves) {
    if (enclaves && !enclaves.includes(enc.path)) continue;
    for (const profiles of enc.profileGroups) out.push(grantFor(enc.path, profiles, opts));
  }
  return out;
}

function grantFor(enclavePath: string, profiles: readonly PolicyProfile[], opts: GrantOptions): DdsGrant {
  const domains = opts.domains ?? [0];
  const rules: DdsRule[] = [];
  for (const q of ["DENY", "ALLOW"] as const) {
    const blocks: Block[] = [];
    for (const p of profiles) {
      for (const r of p.rules) blocks.push(...blocksFor(p, r, q));
    }
    if (blocks.length === 0) continue;
    const publish = mergeBlocks(blocks.flatMap((b) => (b.publish ? [b.publish] : [])));
    const subscribe = mergeBlocks(blocks.flatMap((b) => (b.subscribe ? [b.subscribe] : [])));
    rules.push({
      qualifier: q,
      domains,
      publish: publish.length ? [{ topics: publish }] : [],
      subscribe: subscribe.length ? [{ topics: subscribe }] : [],
    });
  }
  if (opts.rosDiscoveryInfo ?? true) {
    rules.push({
      qualifier: "ALLOW",
      domains,
      publish: [{ topics: ["ros_discovery_info"] }],
      subscribe: [{ topics: ["ros_discovery_info"] }],
    });
  }
  return {
    name: enclavePath,
    subjectName: opts.subjectName ? opts.subjectName(enclavePath) : `CN=${enclavePath}`,
    notBefore: opts.notBefore,
    notAfter: opts.notAfter,
    rules,
    defaultQualifier: "DENY",
  };
}

/** The blocks one rule set contributes for qualifier `q`, in sros2's attribute order. */
function blocksFor(p: PolicyProfile, r: PolicyRuleSet, q: Qualifier): Block[] {
  const order: readonly RuleAttribute[] = ["publish", "subscribe", "request", "reply", "call", "execute"];
  const out: Block[] = [];
  const fqns = r.names.map((n) => fullyQualified(n, p.ns, p.node));
  for (const a of order) {
    if (r.qualifiers[a] !== q) continue;
    switch (a) {
      case "publish":
        out.push({ publish: fqns.map((f) => `rt${f}`) });
        break;
      case "subscribe":
        out.push({ subscribe: fqns.map((f) => `rt${f}`) });
        break;
      case "request":
        out.push({ publish: fqns.map((f) => `rq${f}Request`), subscribe: fqns.map((f) => `rr${f}Reply`) });
        break;
      case "reply":
        out.push({ publish: fqns.map((f) => `rr${f}Reply`), subscribe: fqns.map((f) => `rq${f}Request`) });
        break;
      case "call":
        out.push({ publish: fqns.flatMap(actionRequests), subscribe: fqns.flatMap(actionReplies) });
        break;
      case "execute":
        out.push({ publish: fqns.flatMap(actionReplies), subscribe: fqns.flatMap(actionRequests) });
        break;
    }
  }
  return out;
}

const actionRequests = (f: string): string[] => ACTION_SERVICES.map((s) => `rq${f}/_action/${s}Request`);
const actionReplies = (f: string): string[] => [
  ...ACTION_SERVICES.map((s) => `rr${f}/_action/${s}Reply`),
  ...ACTION_TOPICS.map((t) => `rt${f}/_action/${t}`),
];

/** A ROS name made fully qualified against the profile's namespace and node (sros2's rules). */
export function fullyQualified(name: string, ns: string, node: string): string {
  const delimited = ns.endsWith("/") ? ns : `${ns}/`;
  if (name.startsWith("/")) return name;
  if (name.startsWith("~")) return `${delimited}${node}${name.slice(1)}`;
  return `${delimited}${name}`;
}

/** Blocks ordered by their first topic (stable: ties keep document order), concatenated, deduplicated. */
function mergeBlocks(blocks: string[][]): string[] {
  const sorted = blocks
    .map((b, i) => ({ b, i }))
    .sort((x, y) => cmp(x.b[0] ?? "", y.b[0] ?? "") || x.i - y.i);
  const seen = new Set<string>();
  const out: string[] = [];
  for (const { b } of sorted) {
    for (const t of b) {
      if (seen.has(t)) continue;
      seen.add(t);
      out.push(t);
    }
  }
  return out;
}

/** Byte order, as libxslt compares sort keys without a language. */
function cmp(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/** `YYYY-MM-DDTHH:MM:SS` in UTC, the form sros2 writes (and the DDS plugins read as UTC). */
export function ddsDateTime(d: Date): string {
  return d.toISOString().slice(0, 19);
}

/** Serializes grants as a DDS permissions document (no XML declaration, two-space indent, as sros2). */
export function permissionsXml(grants: readonly DdsGrant[]): string {
  const L: string[] = [];
  L.push(
    '<dds xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:noNamespaceSchemaLocation="http://www.omg.org/spec/DDS-SECURITY/20170901/omg_shared_ca_permissions.xsd">',
  );
  L.push("  <permissions>");
  for (const g of grants) {
    L.push(`    <grant name="${xmlEscape(g.name)}">`);
    L.push(`      <subject_name>${xmlEscape(g.subjectName)}</subject_name>`);
    L.push("      <validity>");
    L.push(`        <not_before>${ddsDateTime(g.notBefore)}</not_before>`);
    L.push(`        <not_after>${ddsDateTime(g.notAfter)}</not_after>`);
    L.push("      </validity>");
    for (const r of g.rules) {
      const tag = r.qualifier === "ALLOW" ? "allow_rule" : "deny_rule";
      L.push(`      <${tag}>`);
      L.push(...domainsXml(r.domains, "        "));
      for (const [kind, list] of [
        ["publish", r.publish],
        ["subscribe", r.subscribe],
      ] as const) {
        for (const c of list) {
          L.push(`        <${kind}>`);
          L.push("          <topics>");
          for (const t of c.topics) L.push(`            <topic>${xmlEscape(t)}</topic>`);
          L.push("          </topics>");
          if (c.partitions?.length) {
            L.push("          <partitions>");
            for (const p of c.partitions) L.push(`            <partition>${xmlEscape(p)}</partition>`);
            L.push("          </partitions>");
          }
          L.push(`        </${kind}>`);
        }
      }
      L.push(`      </${tag}>`);
    }
    L.push(`      <default>${g.defaultQualifier}</default>`);
    L.push("    </grant>");
  }
  L.push("  </permissions>");
  L.push("</dds>");
  return L.join("\n") + "\n";
}

/** `<domains>` lines for a domain set. */
export function domainsXml(domains: readonly DomainSpec[], indent: string): string[] {
  const L = [`${indent}<domains>`];
  for (const d of domains) {
    if (typeof d === "number") L.push(`${indent}  <id>${d}</id>`);
    else {
      L.push(`${indent}  <id_range>`);
      L.push(`${indent}    <min>${d.min}</min>`);
      if (d.max !== undefined) L.push(`${indent}    <max>${d.max}</max>`);
      L.push(`${indent}  </id_range>`);
    }
  }
  L.push(`${indent}</domains>`);
  return L;
}
