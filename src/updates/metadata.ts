import { fail } from "../errors/index.js";
import { canonicalJson } from "./canonical-json.js";
import { verifyTufSignature, type TufKey, type TufSigner } from "./keys.js";

/** The TUF specification version Fleetroot writes. */
export const specVersion = "1.0.31";

export type TopRole = "root" | "targets" | "snapshot" | "timestamp";
export const topRoles: readonly TopRole[] = ["root", "targets", "snapshot", "timestamp"];

export interface Signature {
  keyid: string;
  sig: string;
}

export interface RoleKeys {
  keyids: string[];
  threshold: number;
}

export interface Common {
  spec_version: string;
  version: number;
  expires: string;
}

export interface RootSigned extends Common {
  _type: "root";
  consistent_snapshot: boolean;
  keys: Record<string, TufKey>;
  roles: Record<TopRole, RoleKeys>;
}

export interface TargetFileInfo {
  length: number;
  hashes: Record<string, string>;
  custom?: Record<string, unknown>;
}

export interface DelegatedRole extends RoleKeys {
  name: string;
  terminating: boolean;
  paths?: string[];
}

/** TAP 15: 2^bit_length bins named `<name_prefix>-<hex>`. */
export interface SuccinctRoles extends RoleKeys {
  bit_length: number;
  name_prefix: string;
}

export interface Delegations {
  keys: Record<string, TufKey>;
  roles?: DelegatedRole[];
  succinct_roles?: SuccinctRoles;
}

export interface TargetsSigned extends Common {
  _type: "targets";
  targets: Record<string, TargetFileInfo>;
  delegations?: Delegations;
}

export interface MetaFile {
  version: number;
  length?: number;
  hashes?: Record<string, string>;
}

export interface SnapshotSigned extends Common {
  _type: "snapshot";
  meta: Record<string, MetaFile>;
}

export interface TimestampSigned extends Common {
  _type: "timestamp";
  meta: Record<string, MetaFile>;
}

export type AnySigned = RootSigned | TargetsSigned | SnapshotSigned | TimestampSigned;

export interface Envelope<T extends AnySigned = AnySigned> {
  signatures: Signature[];
  signed: T;
}

/** TUF writes expiry as UTC to the second with a Z. */
export function isoSeconds(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(".000Z", "Z");
}

/** Adds signatures from each signer (replacing an older one by the same key) over the canonical `signed`. */
export async function addSignatures<T extends AnySigned>(
  env: Envelope<T>,
  signers: readonly TufSigner[],
): Promise<Envelope<T>> {
  const bytes = canonicalJson(env.signed);
  const sigs = new Map(env.signatures.map((s) => [s.keyid, s]));
  for (const s of signers) sigs.set(s.keyid, { keyid: s.keyid, sig: await s.sign(bytes) });
  return { signatures: [...sigs.values()], signed: env.signed };
}

/** The keyids among `role.keyids` that made a valid signature over `signed` (each counted once). */
export function validSigners(
  env: Envelope,
  keys: Readonly<Record<string, TufKey>>,
  role: RoleKeys,
): string[] {
  const bytes = canonicalJson(env.signed);
  const ok = new Set<string>();
  for (const s of env.signatures) {
    if (ok.has(s.keyid) || !role.keyids.includes(s.keyid)) continue;
    const key = keys[s.keyid];
    if (key && verifyTufSignature(key, bytes, s.sig)) ok.add(s.keyid);
  }
  return [...ok];
}

export function meetsThreshold(
  env: Envelope,
  keys: Readonly<Record<string, TufKey>>,
  role: RoleKeys,
): boolean {
  return validSigners(env, keys, role).length >= role.threshold;
}

export function serialize(env: Envelope): Buffer {
  return Buffer.from(JSON.stringify(env, null, 1) + "\n", "utf8");
}

/** Parses and shape-checks a metadata file; `expected` names the `_type` it must be. */
export function parseEnvelope<K extends AnySigned["_type"]>(
  bytes: Uint8Array | string,
  expected: K,
): Envelope<Extract<AnySigned, { _type: K }>> {
  let doc: unknown;
  try {
    doc = JSON.parse(typeof bytes === "string" ? bytes : Buffer.from(bytes).toString("utf8"));
  } catch {
    return fail("FR_UPDATES_METADATA", `the ${expected} metadata is not valid JSON`);
  }
  const env = doc as Partial<Envelope>;
  if (!env || typeof env !== "object" || !Array.isArray(env.signatures) || !isObject(env.signed)) {
    return fail("FR_UPDATES_METADATA", "metadata must be an object with `signed` and `signatures`");
  }
  for (const s of env.signatures) {
    if (!isObject(s) || typeof s.keyid !== "string" || typeof s.sig !== "string") {
      fail("FR_UPDATES_METADATA", "each signature needs string `keyid` and `sig`");
    }
  }
  const signed = env.signed as Partial<AnySigned>;
  if (signed._type !== expected) {
    return fail("FR_UPDATES_METADATA", `_type is ${JSON.stringify(signed._type)}, expected "${expected}"`);
  }
  if (!Number.isSafeInteger(signed.version) || (signed.version ?? 0) < 1) {
    return fail("FR_UPDATES_METADATA", "version must be a positive integer");
  }
  if (typeof signed.expires !== "string" || Number.isNaN(Date.parse(signed.expires))) {
    return fail("FR_UPDATES_METADATA", "expires must be an ISO 8601 time");
  }
  if (typeof signed.spec_version !== "string" || !signed.spec_version.startsWith("1.")) {
    return fail("FR_UPDATES_METADATA", "spec_version must be 1.x");
  }
  if (expected === "root") checkRoot(signed as RootSigned);
  const delegations = (signed as { delegations?: { keys?: unknown } }).delegations;
  if (expected === "targets" && delegations !== undefined) checkKeys(delegations.keys, "targets.delegations");
  return env as Envelope<Extract<AnySigned, { _type: K }>>;
}

/** Key types and schemes of the TUF specification that Fleetroot signs and verifies. */
const knownKeys: Readonly<Record<string, readonly string[]>> = {
  ed25519: ["ed25519"],
  ecdsa: ["ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384"],
  "ecdsa-sha2-nistp256": ["ecdsa-sha2-nistp256"],
  "ecdsa-sha2-nistp384": ["ecdsa-sha2-nistp384"],
  rsa: ["rsassa-pss-sha256"],
};

/** Every key in a keys map must be of a known type and scheme, with a public value. */
export function checkKeys(keys: unknown, where: string): void {
  if (!isObject(keys)) fail("FR_UPDATES_METADATA", `${where}.keys must be an object`);
  for (const [id, k] of Object.entries(keys)) {
    if (
      !isObject(k) ||
      typeof k.keytype !== "string" ||
      typeof k.scheme !== "string" ||
      !isObject(k.keyval)
    ) {
      fail("FR_UPDATES_METADATA", `${where}.keys.${id} needs keytype, scheme and keyval`);
    }
    const schemes = knownKeys[k.keytype];
    if (!schemes)
      fail("FR_UPDATES_METADATA", `${where}.keys.${id}: unknown key type ${JSON.stringify(k.keytype)}`);
    if (!schemes.includes(k.scheme)) {
      fail(
        "FR_UPDATES_METADATA",
        `${where}.keys.${id}: scheme ${JSON.stringify(k.scheme)} does not fit key type ${k.keytype}`,
      );
    }
    if (typeof k.keyval.public !== "string")
      fail("FR_UPDATES_METADATA", `${where}.keys.${id}: keyval.public must be a string`);
  }
}

function checkRoot(r: RootSigned): void {
  if (!isObject(r.keys) || !isObject(r.roles)) fail("FR_UPDATES_METADATA", "root needs `keys` and `roles`");
  checkKeys(r.keys, "root");
  for (const role of topRoles) {
    const def = r.roles[role];
    if (
      !isObject(def) ||
      !Array.isArray(def.keyids) ||
      !Number.isSafeInteger(def.threshold) ||
      def.threshold < 1
    ) {
      fail("FR_UPDATES_METADATA", `root.roles.${role} needs keyids and a threshold of at least 1`);
    }
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
