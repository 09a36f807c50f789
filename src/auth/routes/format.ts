import type { CreatedToken, TokenInfo } from "../token/token-store.js";

const iso = (ms: number): string => new Date(ms).toISOString();

/** The `auth` block Vault returns from token create and renew. */
export function authBlock(t: Omit<CreatedToken, "token"> & { token?: string }): Record<string, unknown> {
  const i = t.info;
  return {
    client_token: t.token ?? "",
    accessor: i.accessor,
    policies: i.policies,
    token_policies: i.policies,
    identity_policies: null,
    metadata: i.meta,
    lease_duration: i.ttl,
    renewable: i.renewable,
    entity_id: "",
    token_type: "service",
    orphan: i.orphan,
    mfa_requirement: null,
    num_uses: i.numUses,
  };
}

/** The `data` of token lookups, field for field as Vault's. `id` is "" when looked up by accessor. */
export function lookupData(i: TokenInfo, id: string): Record<string, unknown> {
  const data: Record<string, unknown> = {
    accessor: i.accessor,
    creation_time: Math.floor(i.createdAt / 1000),
    creation_ttl: i.creationTtl,
    display_name: i.displayName,
    entity_id: "",
    expire_time: i.expireAt ? iso(i.expireAt) : null,
    explicit_max_ttl: i.explicitMaxTtl,
    id,
    issue_time: iso(i.createdAt),
    meta: i.meta,
    num_uses: i.numUses,
    orphan: i.orphan,
    path: i.path,
    policies: i.policies,
    renewable: i.renewable,
    ttl: i.ttl,
    type: "service",
  };
  if (i.period > 0) data.period = i.period;
  if (i.lastRenewalAt !== undefined) {
    data.last_renewal_time = Math.floor(i.lastRenewalAt / 1000);
    data.last_renewal = iso(i.lastRenewalAt);
  }
  return data;
}
