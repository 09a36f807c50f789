import { createHash, randomBytes } from "node:crypto";
import type { Kysely } from "kysely";
import { fail } from "../errors/index.js";
import type { Store } from "../store/index.js";
import type { Clock } from "../util/clock.js";
import type { EnrollTables } from "./migrations.js";

export const NONCE_BYTES = 32;
const NONCE_TEXT = /^[A-Za-z0-9_-]{43}$/;

/**
 * Single-use enrollment nonces: 32 random bytes (base64url), stored as their SHA-256 with an expiry.
 * Consuming is one conditional DELETE, so a nonce cannot be used twice even by concurrent requests.
 */
export class NonceStore {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    readonly ttlMs = 5 * 60_000,
  ) {}

  private get db(): Kysely<EnrollTables> {
    return this.store.db.withTables<EnrollTables>();
  }

  async issue(): Promise<{ nonce: string; expiresAt: number }> {
    const now = this.clock.now().getTime();
    const bytes = randomBytes(NONCE_BYTES);
    const expiresAt = now + this.ttlMs;
    // Expired nonces go as new ones come, so the table stays as small as the live set.
    await this.db.deleteFrom("fleet_nonce").where("expires_at", "<", now).execute();
    await this.db
      .insertInto("fleet_nonce")
      .values({ hash: hashOf(bytes), expires_at: expiresAt })
      .execute();
    return { nonce: bytes.toString("base64url"), expiresAt };
  }

  /** Decodes a nonce without consuming it; garbage is FR_ENROLL_NONCE. */
  static decode(text: unknown): Buffer {
    if (typeof text !== "string" || !NONCE_TEXT.test(text)) {
      fail(
        "FR_ENROLL_NONCE",
        "nonce must be the 43-character base64url value from POST /v1/fleet/enroll/nonce",
      );
    }
    return Buffer.from(text, "base64url");
  }

  /** Consumes a nonce: it must exist and be unexpired; afterwards it is gone. */
  async consume(bytes: Buffer): Promise<void> {
    const r = await this.db
      .deleteFrom("fleet_nonce")
      .where("hash", "=", hashOf(bytes))
      .where("expires_at", ">=", this.clock.now().getTime())
      .executeTakeFirst();
    if (Number(r.numDeletedRows) !== 1) {
      fail("FR_ENROLL_NONCE", "the nonce is unknown, expired or already used; request a new one");
    }
  }
}

const hashOf = (b: Buffer): string => createHash("sha256").update(b).digest("hex");
