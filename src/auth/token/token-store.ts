import { hash, randomBytes } from "node:crypto";
import { type Kysely, sql } from "kysely";
import { fail } from "../../errors/index.js";
import type { KeyProtector } from "../../keys/types.js";
import type { RequestAuth } from "../../server/types.js";
import type { Store } from "../../store/index.js";
import type { Clock } from "../../util/index.js";
import type { AuthTables } from "../migrations.js";
import { DEFAULT_POLICY, ROOT_POLICY } from "../policy/builtin.js";
import { revokeSubtree } from "./revoke.js";
import { renewalTtl } from "./ttl.js";
import {
  type CreateTokenOptions,
  type CreatedToken,
  type Entry,
  type Row,
  type TokenInfo,
  sanitizePolicies,
} from "./types.js";

export type { CreateTokenOptions, CreatedToken, TokenInfo } from "./types.js";
export { sanitizePolicies } from "./types.js";

export const TOKEN_PREFIX = "frs.";
const MAX_TOKEN_CHARS = 256;
const MAX_TREE_DEPTH = 64;
/** uses_left of a token whose last use has been counted (0 means unlimited); revoked right after. */
const USED_UP = -1;
const MAX_CACHED_ENTRIES = 10_000;
/** How long another node's revocation may take to be seen here (see authCache). */
const AUTH_CACHE_MS = 1000;

export interface TokenStoreOptions {
  readonly store: Store;
  /** The barrier: encrypts each token entry with aad "auth/token/<hash>". */
  readonly protector: KeyProtector;
  readonly clock: Clock;
  /** TTL given to tokens created without one, seconds (Vault's default: 768h). */
  readonly defaultTtl?: number;
  /** System max TTL, seconds (Vault's default: 768h). */
  readonly maxTtl?: number;
}

export const sha256hex = (s: string): string => hash("sha256", s, "hex");

/**
 * Service tokens with Vault's semantics, stored hashed: the row key is SHA-256(token), the entry is
 * encrypted by the barrier with aad "auth/token/<hash>". Revocation takes whole subtrees in one
 * transaction; expired and used-up tokens are refused and removed when met.
 */
export class TokenStore {
  private readonly db: Kysely<AuthTables>;
  private readonly defaultTtl: number;
  private readonly maxTtl: number;
  /** Decrypted entries by hash; safe to cache because an entry never changes. */
  private readonly entries = new Map<string, Entry>();
  /** The token state seen when a request authenticated, so a token's last use can still look itself up. */
  private readonly snapshots = new WeakMap<RequestAuth, TokenInfo>();
  /**
   * Recently authenticated unlimited-use tokens by hash, so a busy client costs no query per request.
   * Cleared on every revocation or renewal here; another node sharing the database sees a revocation
   * within AUTH_CACHE_MS. Never holds a token past its own or an ancestor's expiry.
   */
  private readonly authCache = new Map<string, { auth: RequestAuth; until: number }>();
  /**
   * Hashes of tokens presented recently, so a cached token is found without hashing it again. Holds the
   * token text itself, as the request that carried it did; bounded, and dropped with authCache.
   */
  private readonly hashOf = new Map<string, string>();

  private readonly store: Store;
  private readonly protector: KeyProtector;
  private readonly clock: Clock;

  constructor(opts: TokenStoreOptions) {
    this.store = opts.store;
    this.protector = opts.protector;
    this.clock = opts.clock;
    this.db = opts.store.db.withTables<AuthTables>();
    this.defaultTtl = opts.defaultTtl ?? 768 * 3600;
    this.maxTtl = opts.maxTtl ?? 768 * 3600;
  }

  /** The initial root token (for sys/init): policy root, no TTL, not renewable, no parent. */
  async createRootToken(): Promise<CreatedToken> {
    return this.insert(
      undefined,
      {
        policies: [ROOT_POLICY],
        meta: null,
        displayName: "root",
        path: "auth/token/root",
        creationTtl: 0,
        explicitMaxTtl: 0,
        period: 0,
        renewable: false,
        numUses: 0,
      },
      [],
    );
  }

  /**
   * Creates a token as `parent` (the caller). `sudo` says whether the caller holds sudo on the creation
   * path (or is root): Vault then lifts the policy-subset rule and allows orphan and periodic tokens.
   */
  async create(parent: RequestAuth, o: CreateTokenOptions, sudo: boolean): Promise<CreatedToken> {
    const privileged = sudo || parent.root;
    const warnings: string[] = [];
    const parentPolicies = parent.policies.filter((p) => p !== DEFAULT_POLICY);
    const requested = sanitizePolicies(
      o.policies && o.policies.length > 0 ? o.policies : parent.policies,
      false,
    );
    if (requested.includes(ROOT_POLICY) && !parent.root) {
      fail("FR_PERMISSION_DENIED", "root tokens can only be created by a root token");
    }
    if (!privileged && !parent.root) {
      const missing = requested.filter((p) => p !== DEFAULT_POLICY && !parentPolicies.includes(p));
      if (missing.length) {
        fail(
          "FR_VALIDATION",
          `child policies must be a subset of the parent's; not held: ${missing.join(", ")}`,
        );
      }
    }
    let policies = sanitizePolicies(requested, !o.noDefaultPolicy);
    if (o.noDefaultPolicy) policies = policies.filter((p) => p !== DEFAULT_POLICY);
    if (o.orphan && !privileged) fail("FR_TOKEN_PRIVILEGE", "creating an orphan token needs root or sudo");
    const period = o.period ?? 0;
    if (period > 0 && !privileged) fail("FR_TOKEN_PRIVILEGE", "creating a periodic token needs root or sudo");
    const explicitMaxTtl = o.explicitMaxTtl ?? 0;
    const isRoot = policies.includes(ROOT_POLICY);
    let ttl = period > 0 ? period : (o.ttl ?? 0);
    if (ttl === 0 && !isRoot) ttl = this.defaultTtl;
    if (explicitMaxTtl > 0 && (ttl === 0 || ttl > explicitMaxTtl)) {
      if (ttl !== 0) warnings.push(`ttl of ${ttl}s was capped by explicit_max_ttl to ${explicitMaxTtl}s`);
      ttl = explicitMaxTtl;
    }
    if (period === 0 && this.maxTtl > 0 && ttl > this.maxTtl) {
      warnings.push(`ttl of ${ttl}s was capped by the system max TTL to ${this.maxTtl}s`);
      ttl = this.maxTtl;
    }
    const numUses = o.numUses ?? 0;
    const entry: Entry = {
      policies,
      meta: o.meta && Object.keys(o.meta).length ? { ...o.meta } : null,
      displayName: o.displayName ? `token-${o.displayName.replace(/[^a-zA-Z0-9-]/g, "-")}` : "token",
      path: o.path ?? "auth/token/create",
      creationTtl: ttl,
      explicitMaxTtl,
      period,
      renewable: (o.renewable ?? true) && ttl > 0,
      numUses,
    };
    return this.insert(o.orphan ? undefined : parent.tokenHash, entry, warnings);
  }

  /**
   * The token's auth when this node checked it recently (see authCache), without waiting for anything;
   * undefined when authenticate() must look it up. Only tokens without a use limit are cached.
   */
  cachedAuth(token: string): RequestAuth | undefined {
    if (!plausible(token)) return undefined;
    let hash = this.hashOf.get(token);
    if (hash === undefined) {
      hash = sha256hex(token);
      if (this.hashOf.size >= MAX_CACHED_ENTRIES) this.hashOf.clear();
      this.hashOf.set(token, hash);
    }
    const cached = this.authCache.get(hash);
    return cached && this.clock.nowMs() < cached.until ? cached.auth : undefined;
  }

  /** Forgets every cached authentication (on revocation, renewal, or when the cache is full). */
  private forgetCached(): void {
    this.authCache.clear();
    this.hashOf.clear();
  }

  /**
   * Checks a presented token and counts one use. Refuses (FR_MISSING_TOKEN / FR_TOKEN_INVALID, "permission
   * denied") tokens that are unknown, expired, used up or whose ancestor has expired; removes the dead ones.
   */
  async authenticate(token: string | undefined): Promise<RequestAuth> {
    if (!token) fail("FR_MISSING_TOKEN");
    const hit = this.cachedAuth(token);
    if (hit) return hit;
    const now = this.clock.now().getTime();
    const row = await this.liveRow(token);
    let usesLeft = Number(row.uses_left);
    if (usesLeft > 0) {
      // The last use leaves USED_UP, not 0 (which means "unlimited"): between this update and the
      // revocation below, a concurrent request reading the row must see a dead token, not an unlimited one.
      const r = await this.db
        .updateTable("auth_token")
        .set({
          uses_left: sql<number>`case when uses_left > 1 then uses_left - 1 else ${sql.lit(USED_UP)} end`,
        })
        .where("hash", "=", row.hash)
        .where("uses_left", ">", 0)
        .returning("uses_left")
        .executeTakeFirst();
      if (!r) fail("FR_TOKEN_INVALID");
      usesLeft = Math.max(0, Number(r.uses_left));
      // The last use: this request runs, the token is gone.
      if (Number(r.uses_left) === USED_UP) await this.revokeTree(row.hash);
    }
    const entry = await this.entry(row);
    const auth: RequestAuth = {
      tokenHash: row.hash,
      accessor: row.accessor,
      policies: entry.policies,
      displayName: entry.displayName,
      entityMeta: entry.meta ?? {},
      root: entry.policies.includes(ROOT_POLICY),
    };
    this.snapshots.set(auth, this.info({ ...row, uses_left: usesLeft }, entry));
    if (Number(row.uses_left) === 0) {
      const expiry = await this.chainExpiry(row);
      if (this.authCache.size >= MAX_CACHED_ENTRIES) this.forgetCached();
      this.authCache.set(row.hash, { auth, until: Math.min(now + AUTH_CACHE_MS, expiry) });
    }
    return auth;
  }

  /** The earliest expiry along the token's ancestry (Infinity when none expires). */
  private async chainExpiry(row: Row): Promise<number> {
    let min = Infinity;
    let cur: Pick<Row, "parent_hash" | "expire_at"> | undefined = row;
    for (let depth = 0; cur && depth <= MAX_TREE_DEPTH; depth++) {
      const exp = Number(cur.expire_at);
      if (exp > 0) min = Math.min(min, exp);
      if (!cur.parent_hash) break;
      cur = await this.db
        .selectFrom("auth_token")
        .select(["parent_hash", "expire_at"])
        .where("hash", "=", cur.parent_hash)
        .executeTakeFirst();
    }
    return min;
  }

  /** The calling token's state (lookup-self), also after its last use. */
  async lookupSelf(auth: RequestAuth): Promise<TokenInfo> {
    const row = await this.rowBy("hash", auth.tokenHash);
    if (row && this.alive(row)) return this.info(row, await this.entry(row));
    return this.snapshots.get(auth) ?? fail("FR_TOKEN_INVALID");
  }

  async lookup(token: string): Promise<TokenInfo> {
    const row = await this.liveRow(token);
    return this.info(row, await this.entry(row));
  }

  async lookupAccessor(accessor: string): Promise<TokenInfo> {
    const row = await this.accessorRow(accessor);
    return this.info(row, await this.entry(row));
  }

  /** The token hash for an accessor (FR_ACCESSOR_INVALID when unknown or dead). */
  async hashOfAccessor(accessor: string): Promise<string> {
    return (await this.accessorRow(accessor)).hash;
  }

  /** Renews by `increment` seconds (0: the creation TTL), with Vault's caps. */
  async renew(token: string, increment = 0): Promise<CreatedToken> {
    const row = await this.liveRow(token);
    return { token, ...(await this.renewRow(row, increment)) };
  }

  async renewByHash(hash: string, increment = 0): Promise<Omit<CreatedToken, "token">> {
    const row = await this.rowBy("hash", hash);
    if (!row || !this.alive(row)) fail("FR_TOKEN_INVALID");
    return this.renewRow(row, increment);
  }

  async renewAccessor(accessor: string, increment = 0): Promise<Omit<CreatedToken, "token">> {
    return this.renewRow(await this.accessorRow(accessor), increment);
  }

  /** Revokes a token and all its descendants, in one transaction. Unknown tokens are ignored (as Vault). */
  async revoke(token: string): Promise<void> {
    if (!plausible(token)) return;
    await this.revokeTree(sha256hex(token));
  }

  async revokeAccessor(accessor: string): Promise<void> {
    await this.revokeTree((await this.accessorRow(accessor)).hash);
  }

  /** Revokes a token and makes its children orphans. */
  async revokeOrphan(token: string): Promise<void> {
    if (!plausible(token)) return;
    await this.revokeOrphanHash(sha256hex(token));
  }

  async revokeOrphanHash(hash: string): Promise<void> {
    await this.store.transaction(async (trx) => {
      const t = trx.withTables<AuthTables>();
      await t.updateTable("auth_token").set({ parent_hash: null }).where("parent_hash", "=", hash).execute();
      await t.deleteFrom("auth_token").where("hash", "=", hash).execute();
    });
    this.entries.delete(hash);
    this.forgetCached();
  }

  /** Revokes the token with this hash and its whole subtree, in one transaction. */
  async revokeTree(hash: string): Promise<number> {
    this.forgetCached();
    const gone = await this.store.transaction((trx) => revokeSubtree(trx, [hash]));
    this.forgetCached();
    for (const h of gone) this.entries.delete(h);
    return gone.length;
  }

  async listAccessors(): Promise<string[]> {
    const rows = await this.db.selectFrom("auth_token").select("accessor").orderBy("accessor").execute();
    return rows.map((r) => r.accessor);
  }

  /**
   * Revokes every expired or used-up token with its subtree (TokenTidy runs it periodically); returns how
   * many tokens went. Each expired token's subtree goes in its own transaction, as a revocation by hand
   * does: on PostgreSQL one transaction locking several unrelated roots could wait on a concurrent
   * revocation that waits on it (a token under one root being the other's root), which a walk from a
   * single root never does.
   */
  async tidy(): Promise<number> {
    const now = this.clock.now().getTime();
    const expired = await this.db
      .selectFrom("auth_token")
      .select("hash")
      .where((eb) =>
        eb.or([
          eb.and([eb("expire_at", ">", 0), eb("expire_at", "<=", now)]),
          // Used up, its revocation interrupted (crash between the last use and the revoke).
          eb("uses_left", "=", USED_UP),
        ]),
      )
      .execute();
    if (expired.length === 0) return 0;
    const gone = new Set<string>();
    for (const { hash } of expired) {
      // Already gone with an expired ancestor taken earlier in this run.
      if (gone.has(hash)) continue;
      const removed = await this.store.transaction((trx) => revokeSubtree(trx, [hash]));
      for (const h of removed) {
        gone.add(h);
        this.entries.delete(h);
      }
      this.forgetCached();
    }
    return gone.size;
  }

  private async insert(
    parentHash: string | undefined,
    entry: Entry,
    warnings: string[],
  ): Promise<CreatedToken> {
    const token = TOKEN_PREFIX + randomBytes(32).toString("base64url");
    const hash = sha256hex(token);
    const accessor = randomBytes(18).toString("base64url");
    const now = this.clock.now().getTime();
    const sealed = await this.protector.encrypt(
      `auth/token/${hash}`,
      Buffer.from(JSON.stringify(entry), "utf8"),
    );
    const row: Row = {
      hash,
      accessor,
      parent_hash: parentHash ?? null,
      created_at: now,
      expire_at: entry.creationTtl > 0 ? now + entry.creationTtl * 1000 : 0,
      last_renewal_at: null,
      uses_left: entry.numUses,
      entry: Buffer.from(sealed),
    };
    await this.store.transaction(async (trx) => {
      const t = trx.withTables<AuthTables>();
      if (parentHash) {
        // The parent may have been revoked since it authenticated: a child must never outlive it. On
        // PostgreSQL the share lock orders this insert against a revocation's walk (see revokeSubtree).
        const q = t.selectFrom("auth_token").select("hash").where("hash", "=", parentHash);
        const p = await (this.store.dialect === "postgres" ? q.forShare() : q).executeTakeFirst();
        if (!p) fail("FR_TOKEN_INVALID");
      }
      await t.insertInto("auth_token").values(row).execute();
    });
    this.cacheEntry(hash, entry);
    return { token, info: this.info(row, entry, now), warnings };
  }

  private async renewRow(row: Row, increment: number): Promise<Omit<CreatedToken, "token">> {
    this.forgetCached();
    const entry = await this.entry(row);
    if (!entry.renewable)
      fail("FR_TOKEN_NOT_RENEWABLE", "this token was created not renewable or has no TTL");
    const now = this.clock.now().getTime();
    const { ttl, capped } = renewalTtl({
      period: entry.period,
      creationTtl: entry.creationTtl,
      explicitMaxTtl: entry.explicitMaxTtl,
      createdAtMs: Number(row.created_at),
      nowMs: now,
      increment,
      systemMaxTtl: this.maxTtl,
    });
    if (ttl <= 0) fail("FR_TOKEN_NOT_RENEWABLE", "the token has reached its maximum TTL");
    const expireAt = now + ttl * 1000;
    await this.db
      .updateTable("auth_token")
      .set({ expire_at: expireAt, last_renewal_at: now })
      .where("hash", "=", row.hash)
      .execute();
    const warnings = capped ? [`TTL of ${ttl}s is capped by the token's maximum TTL`] : [];
    return { info: this.info({ ...row, expire_at: expireAt, last_renewal_at: now }, entry, now), warnings };
  }

  /** The row for a presented token if it and all its ancestors are alive; dead ones are revoked. */
  private async liveRow(token: string): Promise<Row> {
    if (!plausible(token)) fail("FR_TOKEN_INVALID");
    const row = await this.rowBy("hash", sha256hex(token));
    if (!row) fail("FR_TOKEN_INVALID");
    await this.checkAlive(row);
    return row;
  }

  private async accessorRow(accessor: string): Promise<Row> {
    if (typeof accessor !== "string" || accessor.length === 0 || accessor.length > 128)
      fail("FR_ACCESSOR_INVALID");
    const row = await this.rowBy("accessor", accessor);
    if (!row) fail("FR_ACCESSOR_INVALID");
    try {
      await this.checkAlive(row);
    } catch {
      fail("FR_ACCESSOR_INVALID");
    }
    return row;
  }

  private async checkAlive(row: Row): Promise<void> {
    let cur: Pick<Row, "hash" | "parent_hash" | "expire_at" | "uses_left"> | undefined = row;
    for (let depth = 0; cur; depth++) {
      if (depth > MAX_TREE_DEPTH) fail("FR_TOKEN_INVALID");
      if (!this.alive(cur)) {
        await this.revokeTree(cur.hash);
        fail("FR_TOKEN_INVALID");
      }
      if (!cur.parent_hash) return;
      cur = await this.db
        .selectFrom("auth_token")
        .select(["hash", "parent_hash", "expire_at", "uses_left"])
        .where("hash", "=", cur.parent_hash)
        .executeTakeFirst();
      // A missing parent means the tree is being revoked right now.
      if (!cur) {
        await this.revokeTree(row.hash);
        fail("FR_TOKEN_INVALID");
      }
    }
  }

  private alive(row: Pick<Row, "expire_at" | "uses_left">): boolean {
    if (Number(row.uses_left) === USED_UP) return false;
    const exp = Number(row.expire_at);
    return exp === 0 || exp > this.clock.now().getTime();
  }

  private async rowBy(col: "hash" | "accessor", value: string): Promise<Row | undefined> {
    return this.db.selectFrom("auth_token").selectAll().where(col, "=", value).executeTakeFirst();
  }

  private async entry(row: Row): Promise<Entry> {
    const hit = this.entries.get(row.hash);
    if (hit) return hit;
    const plain = await this.protector.decrypt(`auth/token/${row.hash}`, new Uint8Array(row.entry));
    const entry = JSON.parse(Buffer.from(plain).toString("utf8")) as Entry;
    this.cacheEntry(row.hash, entry);
    return entry;
  }

  private cacheEntry(hash: string, entry: Entry): void {
    if (this.entries.size >= MAX_CACHED_ENTRIES) this.entries.clear();
    this.entries.set(hash, entry);
  }

  /**
   * `now`: the instant the row was written, when it was just created or renewed, so the answer reports
   * the TTL granted (3600 for "1h") rather than what is left after the write took a few milliseconds.
   */
  private info(row: Row, e: Entry, now = this.clock.now().getTime()): TokenInfo {
    const expireAt = Number(row.expire_at);
    return {
      accessor: row.accessor,
      policies: e.policies,
      meta: e.meta,
      displayName: e.displayName,
      path: e.path,
      createdAt: Number(row.created_at),
      expireAt,
      lastRenewalAt: row.last_renewal_at === null ? undefined : Number(row.last_renewal_at),
      creationTtl: e.creationTtl,
      ttl: expireAt === 0 ? 0 : Math.max(0, Math.floor((expireAt - now) / 1000)),
      explicitMaxTtl: e.explicitMaxTtl,
      period: e.period,
      numUses: Number(row.uses_left),
      renewable: e.renewable,
      orphan: row.parent_hash === null,
    };
  }
}

function plausible(token: unknown): token is string {
  return typeof token === "string" && token.startsWith(TOKEN_PREFIX) && token.length <= MAX_TOKEN_CHARS;
}
