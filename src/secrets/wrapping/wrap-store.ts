import { createHash, randomBytes } from "node:crypto";
import type { Kysely } from "kysely";
import { fail } from "../../errors/index.js";
import type { KeyProtector } from "../../keys/types.js";
import type { Store } from "../../store/index.js";
import type { Clock } from "../../util/clock.js";
import type { SecretsTables } from "../migrations.js";

/** Wrapping tokens are not API tokens: a distinct prefix, so one can never be mistaken for the other. */
export const WRAP_TOKEN_PREFIX = "frw.";
const MAX_TOKEN_CHARS = 128;
/** Vault's system max TTL; a wrapping TTL above it is capped. */
export const MAX_WRAP_TTL = 768 * 3600;

/** What a wrapping token holds: the response it replaced, as Vault's cubbyhole "response" entry. */
export interface WrappedResponse {
  readonly data?: unknown;
  readonly auth?: unknown;
  readonly warnings?: string[];
  readonly leaseDuration?: number;
  readonly renewable?: boolean;
}

/** Vault's wrap_info. */
export interface WrapInfo {
  readonly token: string;
  readonly accessor: string;
  readonly ttl: number;
  readonly creation_time: string;
  readonly creation_path: string;
  readonly wrapped_accessor?: string;
}

export interface WrapLookup {
  readonly creation_path: string;
  readonly creation_time: string;
  readonly creation_ttl: number;
}

const hashOf = (token: string) => createHash("sha256").update(token, "utf8").digest("hex");
const aad = (hash: string) => `secrets/wrap/${hash}`;

/**
 * Single-use wrapping tokens. The row key is SHA-256(token); the wrapped response is sealed by the
 * barrier, bound to that key. Unwrapping deletes the row in the same statement that reads it, so two
 * concurrent unwraps cannot both succeed, on either dialect.
 */
export class WrapStore {
  private readonly db: Kysely<SecretsTables>;

  constructor(
    store: Store,
    private readonly barrier: KeyProtector,
    private readonly clock: Clock,
  ) {
    this.db = store.db.withTables<SecretsTables>();
  }

  async wrap(response: WrappedResponse, ttlSeconds: number, creationPath: string): Promise<WrapInfo> {
    const ttl = Math.min(ttlSeconds, MAX_WRAP_TTL);
    if (!Number.isInteger(ttl) || ttl <= 0)
      fail("FR_VALIDATION", "the wrapping TTL must be a positive duration such as 5m");
    const now = this.clock.now().getTime();
    await this.db.deleteFrom("secrets_wrap").where("expire_at", "<=", now).execute();
    const token = WRAP_TOKEN_PREFIX + randomBytes(32).toString("base64url");
    const hash = hashOf(token);
    const accessor = randomBytes(18).toString("base64url");
    const blob = Buffer.from(
      await this.barrier.encrypt(aad(hash), Buffer.from(JSON.stringify(response), "utf8")),
    );
    await this.db
      .insertInto("secrets_wrap")
      .values({
        hash,
        accessor,
        created_at: now,
        expire_at: now + ttl * 1000,
        ttl,
        creation_path: creationPath,
        blob,
      })
      .execute();
    const wrappedAccessor = (response.auth as { accessor?: unknown } | undefined)?.accessor;
    return {
      token,
      accessor,
      ttl,
      creation_time: new Date(now).toISOString(),
      creation_path: creationPath,
      ...(typeof wrappedAccessor === "string" ? { wrapped_accessor: wrappedAccessor } : {}),
    };
  }

  /** Describes a live wrapping token without using it. */
  async lookup(token: string): Promise<WrapLookup> {
    const hash = this.check(token);
    const row = await this.db
      .selectFrom("secrets_wrap")
      .select(["created_at", "expire_at", "ttl", "creation_path"])
      .where("hash", "=", hash)
      .executeTakeFirst();
    if (!row || Number(row.expire_at) <= this.clock.now().getTime()) fail("FR_WRAPPING_TOKEN_INVALID");
    return {
      creation_path: row.creation_path,
      creation_time: new Date(Number(row.created_at)).toISOString(),
      creation_ttl: Number(row.ttl),
    };
  }

  /** Takes the wrapped response out; the token is spent whatever happens next. */
  async unwrap(token: string): Promise<{ response: WrappedResponse; ttl: number; creationPath: string }> {
    const hash = this.check(token);
    const row = await this.db
      .deleteFrom("secrets_wrap")
      .where("hash", "=", hash)
      .returning(["blob", "expire_at", "ttl", "creation_path"])
      .executeTakeFirst();
    if (!row || Number(row.expire_at) <= this.clock.now().getTime()) fail("FR_WRAPPING_TOKEN_INVALID");
    const plain = await this.barrier.decrypt(aad(hash), new Uint8Array(row.blob));
    return {
      response: JSON.parse(Buffer.from(plain).toString("utf8")) as WrappedResponse,
      ttl: Number(row.ttl),
      creationPath: row.creation_path,
    };
  }

  /** Spends `token` and wraps the same response under a new one with the same TTL and path. */
  async rewrap(token: string): Promise<WrapInfo> {
    const { response, ttl, creationPath } = await this.unwrap(token);
    return this.wrap(response, ttl, creationPath);
  }

  private check(token: string): string {
    if (typeof token !== "string" || !token.startsWith(WRAP_TOKEN_PREFIX) || token.length > MAX_TOKEN_CHARS)
      fail("FR_WRAPPING_TOKEN_INVALID");
    return hashOf(token);
  }
}
