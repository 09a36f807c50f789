/**
 * DDS Security governance documents (DDS Security 1.1 section 9.4.1.2) from options. With no options the
 * document is sros2's default governance: domain 0, authenticated participants only, join access control,
 * discovery and liveliness encrypted, RTPS signed, and one `*` topic rule with every protection on.
 */
import { fail } from "../errors/index.js";
import { type DomainSpec, domainsXml } from "./permissions.js";
import { xmlEscape } from "./xml.js";

export type ProtectionKind =
  "ENCRYPT_WITH_ORIGIN_AUTHENTICATION" | "SIGN_WITH_ORIGIN_AUTHENTICATION" | "ENCRYPT" | "SIGN" | "NONE";

export type BasicProtectionKind = "ENCRYPT" | "SIGN" | "NONE";

export const protectionKinds: readonly ProtectionKind[] = [
  "ENCRYPT_WITH_ORIGIN_AUTHENTICATION",
  "SIGN_WITH_ORIGIN_AUTHENTICATION",
  "ENCRYPT",
  "SIGN",
  "NONE",
];

export interface TopicRuleOptions {
  readonly topicExpression: string;
  readonly enableDiscoveryProtection?: boolean;
  readonly enableLivelinessProtection?: boolean;
  readonly enableReadAccessControl?: boolean;
  readonly enableWriteAccessControl?: boolean;
  readonly metadataProtectionKind?: ProtectionKind;
  readonly dataProtectionKind?: BasicProtectionKind;
}

export interface GovernanceOptions {
  readonly domains?: readonly DomainSpec[];
  readonly allowUnauthenticatedParticipants?: boolean;
  readonly enableJoinAccessControl?: boolean;
  readonly discoveryProtectionKind?: ProtectionKind;
  readonly livelinessProtectionKind?: ProtectionKind;
  readonly rtpsProtectionKind?: ProtectionKind;
  /** Topic rules, first match wins in the plugins; default one `*` rule with sros2's settings. */
  readonly topicRules?: readonly TopicRuleOptions[];
}

/** The governance XML for `opts` (sros2's default when empty). */
export function governanceXml(opts: GovernanceOptions = {}): string {
  const domains = opts.domains ?? [0];
  checkDomains(domains);
  const kind = (k: ProtectionKind | undefined, d: ProtectionKind, what: string): ProtectionKind => {
    const v = k ?? d;
    if (!protectionKinds.includes(v))
      fail("FR_VALIDATION", `${what} "${v}" must be one of ${protectionKinds.join(", ")}`);
    return v;
  };
  const rules = opts.topicRules ?? [{ topicExpression: "*" }];
  if (rules.length === 0) fail("FR_VALIDATION", "governance needs at least one topic rule");
  const b = (v: boolean | undefined, d: boolean) => String(v ?? d);
  const L: string[] = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<dds xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"',
    '    xsi:noNamespaceSchemaLocation="http://www.omg.org/spec/DDS-SECURITY/20170901/omg_shared_ca_governance.xsd">',
    "    <domain_access_rules>",
    "        <domain_rule>",
    ...domainsXml(domains, "            "),
    `            <allow_unauthenticated_participants>${b(opts.allowUnauthenticatedParticipants, false)}</allow_unauthenticated_participants>`,
    `            <enable_join_access_control>${b(opts.enableJoinAccessControl, true)}</enable_join_access_control>`,
    `            <discovery_protection_kind>${kind(opts.discoveryProtectionKind, "ENCRYPT", "discovery_protection_kind")}</discovery_protection_kind>`,
    `            <liveliness_protection_kind>${kind(opts.livelinessProtectionKind, "ENCRYPT", "liveliness_protection_kind")}</liveliness_protection_kind>`,
    `            <rtps_protection_kind>${kind(opts.rtpsProtectionKind, "SIGN", "rtps_protection_kind")}</rtps_protection_kind>`,
    "            <topic_access_rules>",
  ];
  for (const r of rules) {
    if (!r.topicExpression) fail("FR_VALIDATION", "a governance topic rule needs a topic expression");
    const data = r.dataProtectionKind ?? "ENCRYPT";
    if (!["ENCRYPT", "SIGN", "NONE"].includes(data)) {
      fail("FR_VALIDATION", `data_protection_kind "${data}" must be ENCRYPT, SIGN or NONE`);
    }
    L.push(
      "                <topic_rule>",
      `                    <topic_expression>${xmlEscape(r.topicExpression)}</topic_expression>`,
      `                    <enable_discovery_protection>${b(r.enableDiscoveryProtection, true)}</enable_discovery_protection>`,
      `                    <enable_liveliness_protection>${b(r.enableLivelinessProtection, true)}</enable_liveliness_protection>`,
      `                    <enable_read_access_control>${b(r.enableReadAccessControl, true)}</enable_read_access_control>`,
      `                    <enable_write_access_control>${b(r.enableWriteAccessControl, true)}</enable_write_access_control>`,
      `                    <metadata_protection_kind>${kind(r.metadataProtectionKind, "ENCRYPT", "metadata_protection_kind")}</metadata_protection_kind>`,
      `                    <data_protection_kind>${data}</data_protection_kind>`,
      "                </topic_rule>",
    );
  }
  L.push(
    "            </topic_access_rules>",
    "        </domain_rule>",
    "    </domain_access_rules>",
    "</dds>",
  );
  return L.join("\n") + "\n";
}

/** DDS domain ids are 0–232 (DDS-RTPS 2.3 9.6.1.1 port mapping). */
export function checkDomains(domains: readonly DomainSpec[]): void {
  if (domains.length === 0) fail("FR_VALIDATION", "at least one DDS domain id is required");
  const ok = (n: number) => Number.isInteger(n) && n >= 0 && n <= 232;
  for (const d of domains) {
    const bad =
      typeof d === "number" ? !ok(d) : !ok(d.min) || (d.max !== undefined && (!ok(d.max) || d.max < d.min));
    if (bad) {
      const shown = typeof d === "number" ? String(d) : `${d.min}-${d.max ?? ""}`;
      const why =
        typeof d !== "number" && d.max !== undefined && ok(d.min) && ok(d.max)
          ? "a range must go from the smaller id to the larger"
          : "ids are integers 0–232";
      fail("FR_VALIDATION", `DDS domain ${shown} is invalid; ${why}`);
    }
  }
}

/** Parses `0`, `0,1,5-9` into domain specs (CLI form). */
export function parseDomains(text: string): DomainSpec[] {
  const out: DomainSpec[] = [];
  for (const part of text
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) fail("FR_VALIDATION", `"${part}" is not a domain id or range (e.g. 0 or 5-9)`);
    out.push(m[2] === undefined ? Number(m[1]) : { min: Number(m[1]), max: Number(m[2]) });
  }
  checkDomains(out);
  return out;
}
