import type { Kysely } from "kysely";
import { fail } from "../../errors/index.js";
import type { Store } from "../../store/index.js";
import type { Clock } from "../../util/index.js";
import type { AuthTables } from "../migrations.js";
import { Acl } from "./acl.js";
import { DEFAULT_POLICY, DEFAULT_POLICY_TEXT, ROOT_POLICY } from "./builtin.js";
import { type Policy, parsePolicy } from "./policy.js";

export interface PolicyStoreOptions {
  readonly store: Store;
  readonly clock: Clock;
  /**
   * How long a parsed policy may be served from memory before it is read again (ms, default 1000).
   * Writes through this instance invalidate at once; the bound only matters for writes made by other
   * Fleetroot nodes sharing the database.
   */
  readonly cacheMs?: number;
}

const NAME = /^[a-z0-9][a-z0-9_.@-]{0,127}$/;
const MAX_CACHED_ACLS = 1024;

/** Whether `raw` is a valid policy name once normalized (policyName would accept it). */
export function isPolicyName(raw: string): boolean {
  return NAME.test(raw.trim().toLowerCase());
}

/** Normalizes a policy name as Vault does (lowercase) and checks it. */
export function policyName(raw: string): string {
  const name = raw.trim().toLowerCase();
  if (!NAME.test(name)) {
    fail("FR_VALIDATION", "a policy name is 1-128 characters: letters, digits, '_', '.', '@' and '-'");
  }
  return name;
}

/** Cache key per policy-name array: a token's cached auth hands out the same array on every request. */
const aclKeys = new WeakMap<readonly string[], string>();

function aclKey(names: readonly string[]): string {
  let key = aclKeys.get(names);
  if (key === undefined) {
    key = [...names].sort().join("\n");
    aclKeys.set(names, key);
  }
  return key;
}

/** ACL policies by name, stored in the clear (they are not secret), parsed once and cached. */
export class PolicyStore {
  private readonly db: Kysely<AuthTables>;
  private readonly cacheMs: number;
  private readonly parsed = new Map<string, { policy: Policy | undefined; at: number }>();
  private readonly acls = new Map<string, { acl: Acl; at: number }>();

  private readonly clock: Clock;

  constructor(opts: PolicyStoreOptions) {
    this.clock = opts.clock;
    this.db = opts.store.db.withTables<AuthTables>();
    this.cacheMs = opts.cacheMs ?? 1000;
  }

  /** The policy's text; `root` has none and `default` falls back to the built-in text. */
  async read(raw: string): Promise<string | undefined> {
    const name = policyName(raw);
    if (name === ROOT_POLICY) return "";
    const row = await this.db
      .selectFrom("auth_policy")
      .select("text")
      .where("name", "=", name)
      .executeTakeFirst();
    return row?.text ?? (name === DEFAULT_POLICY ? DEFAULT_POLICY_TEXT : undefined);
  }

  /** Every policy name, including the built-ins, sorted. */
  async list(): Promise<string[]> {
    const rows = await this.db.selectFrom("auth_policy").select("name").execute();
    return [...new Set([DEFAULT_POLICY, ROOT_POLICY, ...rows.map((r) => r.name)])].sort();
  }

  /** Parses, then creates or replaces a policy. `root` cannot be written. */
  async write(raw: string, text: string): Promise<void> {
    const name = policyName(raw);
    if (name === ROOT_POLICY) fail("FR_POLICY_PROTECTED", 'the "root" policy cannot be changed');
    parsePolicy(name, text);
    const now = this.clock.now().getTime();
    await this.db
      .insertInto("auth_policy")
      .values({ name, text, updated_at: now })
      .onConflict((oc) => oc.column("name").doUpdateSet({ text, updated_at: now }))
      .execute();
    this.invalidate();
  }

  /** Deletes a policy (absent is fine, as in Vault). `root` and `default` cannot be deleted. */
  async delete(raw: string): Promise<void> {
    const name = policyName(raw);
    if (name === ROOT_POLICY || name === DEFAULT_POLICY) {
      fail("FR_POLICY_PROTECTED", `the "${name}" policy cannot be deleted`);
    }
    await this.db.deleteFrom("auth_policy").where("name", "=", name).execute();
    this.invalidate();
  }

  /** The merged ACL for these names if it was built recently, without waiting for anything. */
  cachedAcl(names: readonly string[]): Acl | undefined {
    const hit = this.acls.get(aclKey(names));
    return hit && this.clock.now().getTime() - hit.at < this.cacheMs ? hit.acl : undefined;
  }

  /** The merged ACL for a set of policy names; unknown names grant nothing (Vault ignores them). */
  async acl(names: readonly string[]): Promise<Acl> {
    const cached = this.cachedAcl(names);
    if (cached) return cached;
    const key = aclKey(names);
    const now = this.clock.now().getTime();
    const policies: Policy[] = [];
    for (const n of names) {
      const p = await this.policy(n, now);
      if (p) policies.push(p);
    }
    const acl = new Acl(policies);
    if (this.acls.size >= MAX_CACHED_ACLS) this.acls.clear();
    this.acls.set(key, { acl, at: now });
    return acl;
  }

  private async policy(name: string, now: number): Promise<Policy | undefined> {
    if (name === ROOT_POLICY) return { name, rules: [] };
    const hit = this.parsed.get(name);
    if (hit && now - hit.at < this.cacheMs) return hit.policy;
    const text = NAME.test(name) ? await this.read(name) : undefined;
    // A stored policy was validated when written; parse errors here mean it was edited outside Fleetroot.
    const policy = text === undefined ? undefined : parsePolicy(name, text);
    this.parsed.set(name, { policy, at: now });
    return policy;
  }

  private invalidate(): void {
    this.parsed.clear();
    this.acls.clear();
  }
}
