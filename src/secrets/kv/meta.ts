import { formatDuration } from "../../util/duration.js";

/** One version's state, as kept in a key's sealed metadata. Times in ms since the epoch; 0 = unset. */
export interface VersionMeta {
  created: number;
  deleted: number;
  destroyed: boolean;
}

/** A KV v2 key's metadata (sealed as one blob next to its versions). */
export interface KeyMeta {
  created: number;
  updated: number;
  current: number;
  /** 0 until max_versions has pruned something, as Vault reports it. */
  oldest: number;
  /** 0: the mount's setting. */
  maxVersions: number;
  casRequired: boolean;
  /** Seconds; 0: the mount's setting. */
  deleteVersionAfter: number;
  custom: Record<string, string> | null;
  versions: Record<string, VersionMeta>;
}

export const DEFAULT_MAX_VERSIONS = 10;

/** The metadata of a key about to get its first version (or its metadata) at `now`. */
export function newKeyMeta(now: number): KeyMeta {
  return {
    created: now,
    updated: now,
    current: 0,
    oldest: 0,
    maxVersions: 0,
    casRequired: false,
    deleteVersionAfter: 0,
    custom: null,
    versions: {},
  };
}

export const iso = (ms: number): string => (ms ? new Date(ms).toISOString() : "");

/** Whether a version is gone for readers: destroyed, or its deletion time has come. */
export function isGone(v: VersionMeta, now: number): boolean {
  return v.destroyed || (v.deleted > 0 && v.deleted <= now);
}

/** The `metadata` object of data reads and writes, field for field as Vault's. */
export function versionBody(meta: KeyMeta, n: number, v: VersionMeta): Record<string, unknown> {
  return {
    created_time: iso(v.created),
    custom_metadata: meta.custom,
    deletion_time: iso(v.deleted),
    destroyed: v.destroyed,
    version: n,
  };
}

/** The `data` of GET metadata/:path. */
export function metadataBody(meta: KeyMeta): Record<string, unknown> {
  const versions: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(meta.versions)) {
    versions[k] = { created_time: iso(v.created), deletion_time: iso(v.deleted), destroyed: v.destroyed };
  }
  return {
    cas_required: meta.casRequired,
    created_time: iso(meta.created),
    current_version: meta.current,
    custom_metadata: meta.custom,
    delete_version_after: goDuration(meta.deleteVersionAfter),
    max_versions: meta.maxVersions,
    oldest_version: meta.oldest,
    updated_time: iso(meta.updated),
    versions,
  };
}

/** Go's time.Duration text ("0s", "1h0m0s"), which Vault returns for delete_version_after. */
export function goDuration(seconds: number): string {
  return seconds === 0 ? "0s" : formatDuration(seconds);
}

/** The structure of a secret with every leaf replaced by null, down to `depth` levels (0: all). */
export function subkeys(value: Record<string, unknown>, depth: number, level = 1): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const nested = v !== null && typeof v === "object" && !Array.isArray(v);
    out[k] =
      nested && (depth === 0 || level < depth)
        ? subkeys(v as Record<string, unknown>, depth, level + 1)
        : null;
  }
  return out;
}

/** RFC 7396 JSON merge patch: null removes a key, objects merge, everything else replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== "object" || Array.isArray(patch)) return patch;
  const base: Record<string, unknown> =
    target !== null && typeof target === "object" && !Array.isArray(target)
      ? { ...(target as Record<string, unknown>) }
      : {};
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    if (v === null) delete base[k];
    // defineProperty: a "__proto__" key from JSON stays a plain key instead of changing the prototype.
    else
      Object.defineProperty(base, k, {
        value: mergePatch(base[k], v),
        enumerable: true,
        writable: true,
        configurable: true,
      });
  }
  return base;
}
