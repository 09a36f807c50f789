import type { AuthTables } from "../migrations.js";
import { DEFAULT_POLICY, ROOT_POLICY } from "../policy/builtin.js";

/** What is encrypted in a token's row; never changes after creation. */
export interface Entry {
  readonly policies: readonly string[];
  readonly meta: Readonly<Record<string, string>> | null;
  readonly displayName: string;
  readonly path: string;
  readonly creationTtl: number;
  readonly explicitMaxTtl: number;
  readonly period: number;
  readonly renewable: boolean;
  readonly numUses: number;
}

export type Row = AuthTables["auth_token"];

/** A token's state as lookups report it. Times in ms since the epoch; TTLs in seconds. */
export interface TokenInfo {
  readonly accessor: string;
  readonly policies: readonly string[];
  readonly meta: Readonly<Record<string, string>> | null;
  readonly displayName: string;
  readonly path: string;
  readonly createdAt: number;
  /** 0 when the token never expires. */
  readonly expireAt: number;
  readonly lastRenewalAt: number | undefined;
  readonly creationTtl: number;
  /** Seconds left; 0 for a token that never expires. */
  readonly ttl: number;
  readonly explicitMaxTtl: number;
  readonly period: number;
  /** Uses left; 0 means unlimited. */
  readonly numUses: number;
  readonly renewable: boolean;
  readonly orphan: boolean;
}

export interface CreateTokenOptions {
  /** Defaults to the parent's policies. */
  readonly policies?: readonly string[];
  /** Seconds. 0: the default TTL (or none, for a root-policy token). */
  readonly ttl?: number;
  readonly explicitMaxTtl?: number;
  readonly period?: number;
  readonly numUses?: number;
  readonly orphan?: boolean;
  readonly noDefaultPolicy?: boolean;
  /** Default true. */
  readonly renewable?: boolean;
  readonly meta?: Readonly<Record<string, string>>;
  readonly displayName?: string;
  /** The creation path recorded in the entry, e.g. "auth/token/create". */
  readonly path?: string;
}

export interface CreatedToken {
  /** The secret; shown once, never stored. */
  readonly token: string;
  readonly info: TokenInfo;
  readonly warnings: readonly string[];
}

/** Vault's sanitizing: trimmed, lowercase, unique, sorted; "root" stands alone; "default" added if asked. */
export function sanitizePolicies(input: readonly string[], addDefault: boolean): string[] {
  const set = new Set(input.map((p) => p.trim().toLowerCase()).filter((p) => p.length > 0));
  if (set.has(ROOT_POLICY)) return [ROOT_POLICY];
  if (addDefault) set.add(DEFAULT_POLICY);
  return [...set].sort();
}
