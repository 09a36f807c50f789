/**
 * Vault's lease arithmetic for tokens, in seconds. A periodic token renews to its period and escapes the
 * system max TTL; any other token renews by the increment (or its creation TTL) and never lives past
 * creation + min(explicit_max_ttl, system max TTL).
 */
export interface TtlInput {
  readonly period: number;
  readonly creationTtl: number;
  readonly explicitMaxTtl: number;
  readonly createdAtMs: number;
  readonly nowMs: number;
  readonly increment: number;
  readonly systemMaxTtl: number;
}

export interface TtlResult {
  readonly ttl: number;
  readonly capped: boolean;
}

export function renewalTtl(i: TtlInput): TtlResult {
  const wanted = i.period > 0 ? i.period : i.increment > 0 ? i.increment : i.creationTtl;
  let max = i.period > 0 ? 0 : i.systemMaxTtl;
  if (i.explicitMaxTtl > 0 && (max === 0 || i.explicitMaxTtl < max)) max = i.explicitMaxTtl;
  if (max === 0) return { ttl: wanted, capped: false };
  const left = Math.floor((i.createdAtMs + max * 1000 - i.nowMs) / 1000);
  return wanted > left ? { ttl: Math.max(0, left), capped: true } : { ttl: wanted, capped: false };
}
