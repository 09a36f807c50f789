/**
 * The fleet's ROS 2 settings as the operator writes them (`POST ros2/config`): where the CAs come from and
 * what governance and permissions say. Unknown fields are errors; every value is checked before anything
 * is created.
 */
import { fail } from "../../errors/index.js";
import { type KeyAlgorithm, type RequestKeyPolicy, keyAlgorithms, requestKeyUri } from "../../keys/index.js";
import { parseDuration } from "../../util/duration.js";
import {
  type BasicProtectionKind,
  type GovernanceOptions,
  type ProtectionKind,
  checkDomains,
  parseDomains,
  protectionKinds,
} from "../governance.js";
import type { DomainSpec } from "../permissions.js";

/** Fields that create the CAs: accepted only while none exist. */
const CA_FIELDS = [
  "ca_source",
  "issuer_ref",
  "identity_ca_key",
  "permissions_ca_key",
  "identity_ca_name",
  "permissions_ca_name",
  "key_type",
  "ca_ttl",
] as const;
/** Fields that may change at any time (governance is re-signed). */
const POLICY_FIELDS = [
  "enclave_ttl",
  "domains",
  "ros_discovery_info",
  "allow_unauthenticated",
  "join_access_control",
  "discovery_protection",
  "liveliness_protection",
  "rtps_protection",
  "metadata_protection",
  "data_protection",
  "read_access_control",
  "write_access_control",
] as const;

export interface CaRequest {
  /** local: self-signed CAs held by the server; pki: the same, each also cross-signed by a PKI issuer. */
  readonly source: "local" | "pki";
  readonly issuerRef: string;
  readonly identityKey: string | undefined;
  readonly permissionsKey: string | undefined;
  readonly identityName: string;
  readonly permissionsName: string;
  readonly algorithm: KeyAlgorithm;
  readonly ttlSeconds: number;
}

/** What governance and permissions are made from (stored; the wire names are snake_case). */
export interface FleetSettings {
  readonly enclaveTtlSeconds: number;
  readonly domains: readonly DomainSpec[];
  readonly rosDiscoveryInfo: boolean;
  readonly allowUnauthenticated: boolean;
  readonly joinAccessControl: boolean;
  readonly discoveryProtection: ProtectionKind;
  readonly livelinessProtection: ProtectionKind;
  readonly rtpsProtection: ProtectionKind;
  readonly metadataProtection: ProtectionKind;
  readonly dataProtection: BasicProtectionKind;
  /** enable_read/write_access_control of the `*` topic rule (off: topics are not checked against grants). */
  readonly readAccessControl: boolean;
  readonly writeAccessControl: boolean;
}

/** sros2's governance defaults; enclaves valid one year (renewal is another request). */
export const defaultSettings: FleetSettings = {
  enclaveTtlSeconds: 365 * 86_400,
  domains: [0],
  rosDiscoveryInfo: true,
  allowUnauthenticated: false,
  joinAccessControl: true,
  discoveryProtection: "ENCRYPT",
  livelinessProtection: "ENCRYPT",
  rtpsProtection: "SIGN",
  metadataProtection: "ENCRYPT",
  dataProtection: "ENCRYPT",
  readAccessControl: true,
  writeAccessControl: true,
};

export function checkFields(body: Record<string, unknown>, haveCas: boolean): void {
  for (const k of Object.keys(body)) {
    if ((CA_FIELDS as readonly string[]).includes(k)) {
      if (haveCas) {
        fail(
          "FR_CONFLICT",
          `the fleet's ROS 2 CAs exist already; "${k}" can only be given when they are created`,
        );
      }
    } else if (!(POLICY_FIELDS as readonly string[]).includes(k)) {
      fail(
        "FR_VALIDATION",
        `unknown field "${k}"; ros2/config takes ${[...CA_FIELDS, ...POLICY_FIELDS].join(", ")}`,
      );
    }
  }
}

const str = (b: Record<string, unknown>, k: string): string | undefined => {
  const v = b[k];
  if (v === undefined || v === null || v === "") return undefined;
  if (typeof v !== "string") fail("FR_VALIDATION", `${k} must be a string`);
  return v;
};

const bool = (b: Record<string, unknown>, k: string, d: boolean): boolean => {
  const v = b[k];
  if (v === undefined) return d;
  if (typeof v === "boolean") return v;
  if (v === "true" || v === "false") return v === "true";
  return fail("FR_VALIDATION", `${k} must be true or false`);
};

/** As the local keystore's validity flags: at most 36500 days. */
const MAX_TTL_SECONDS = 36_500 * 86_400;

/** A duration field ("8760h" or seconds) between `min` seconds and 36500 days; `d` when absent. */
function ttl(b: Record<string, unknown>, k: string, min: string, minSeconds: number, d: number): number {
  const v = b[k];
  if (v === undefined) return d;
  if (typeof v !== "string" && typeof v !== "number")
    fail("FR_VALIDATION", `${k} must be a duration such as 8760h or a number of seconds`);
  const s = parseDuration(v, k);
  if (s < minSeconds || s > MAX_TTL_SECONDS)
    fail("FR_VALIDATION", `${k} must be at least ${min} and at most 36500 days (876000h)`);
  return s;
}

function kind<T extends string>(b: Record<string, unknown>, k: string, allowed: readonly T[], d: T): T {
  const v = str(b, k);
  if (v === undefined) return d;
  if (!(allowed as readonly string[]).includes(v))
    fail("FR_VALIDATION", `${k} must be one of ${allowed.join(", ")}`);
  return v as T;
}

/** The CA fields of the first `POST ros2/config`; `keyPolicy` says what the CA key URIs may name. */
export async function caRequest(b: Record<string, unknown>, keyPolicy: RequestKeyPolicy): Promise<CaRequest> {
  const source = kind(b, "ca_source", ["local", "pki"] as const, "local");
  const ttlSeconds = ttl(b, "ca_ttl", "24h", 86_400, 87_600 * 3600);
  return {
    source,
    issuerRef: str(b, "issuer_ref") ?? "default",
    identityKey: await requestKeyUri(str(b, "identity_ca_key"), "identity_ca_key", keyPolicy),
    permissionsKey: await requestKeyUri(str(b, "permissions_ca_key"), "permissions_ca_key", keyPolicy),
    identityName: str(b, "identity_ca_name") ?? "Fleetroot ROS 2 Identity CA",
    permissionsName: str(b, "permissions_ca_name") ?? "Fleetroot ROS 2 Permissions CA",
    algorithm: kind(b, "key_type", keyAlgorithms, "ecdsa-p256"),
    ttlSeconds,
  };
}

/** `prev` with the fields `b` gives. */
export function mergeSettings(prev: FleetSettings, b: Record<string, unknown>): FleetSettings {
  let domains = prev.domains;
  if (b.domains !== undefined) {
    domains = Array.isArray(b.domains)
      ? parseDomains(b.domains.map(String).join(","))
      : typeof b.domains === "string" || typeof b.domains === "number"
        ? parseDomains(String(b.domains))
        : fail("FR_VALIDATION", 'domains must be ids and ranges, e.g. "0,5-9" or [0, 5]');
    checkDomains(domains);
  }
  const enclaveTtlSeconds = ttl(b, "enclave_ttl", "60s", 60, prev.enclaveTtlSeconds);
  return {
    enclaveTtlSeconds,
    domains,
    rosDiscoveryInfo: bool(b, "ros_discovery_info", prev.rosDiscoveryInfo),
    allowUnauthenticated: bool(b, "allow_unauthenticated", prev.allowUnauthenticated),
    joinAccessControl: bool(b, "join_access_control", prev.joinAccessControl),
    discoveryProtection: kind(b, "discovery_protection", protectionKinds, prev.discoveryProtection),
    livelinessProtection: kind(b, "liveliness_protection", protectionKinds, prev.livelinessProtection),
    rtpsProtection: kind(b, "rtps_protection", protectionKinds, prev.rtpsProtection),
    metadataProtection: kind(b, "metadata_protection", protectionKinds, prev.metadataProtection),
    dataProtection: kind(b, "data_protection", ["ENCRYPT", "SIGN", "NONE"] as const, prev.dataProtection),
    readAccessControl: bool(b, "read_access_control", prev.readAccessControl ?? true),
    writeAccessControl: bool(b, "write_access_control", prev.writeAccessControl ?? true),
  };
}

export function governanceOptions(s: FleetSettings): GovernanceOptions {
  return {
    domains: s.domains,
    allowUnauthenticatedParticipants: s.allowUnauthenticated,
    enableJoinAccessControl: s.joinAccessControl,
    discoveryProtectionKind: s.discoveryProtection,
    livelinessProtectionKind: s.livelinessProtection,
    rtpsProtectionKind: s.rtpsProtection,
    topicRules: [
      {
        topicExpression: "*",
        metadataProtectionKind: s.metadataProtection,
        dataProtectionKind: s.dataProtection,
        enableReadAccessControl: s.readAccessControl,
        enableWriteAccessControl: s.writeAccessControl,
      },
    ],
  };
}

/** The settings as the API shows them. */
export function settingsJson(s: FleetSettings): Record<string, unknown> {
  return {
    enclave_ttl: s.enclaveTtlSeconds,
    domains: s.domains,
    ros_discovery_info: s.rosDiscoveryInfo,
    allow_unauthenticated: s.allowUnauthenticated,
    join_access_control: s.joinAccessControl,
    discovery_protection: s.discoveryProtection,
    liveliness_protection: s.livelinessProtection,
    rtps_protection: s.rtpsProtection,
    metadata_protection: s.metadataProtection,
    data_protection: s.dataProtection,
    read_access_control: s.readAccessControl,
    write_access_control: s.writeAccessControl,
  };
}
