import { createHash, randomBytes } from "node:crypto";
import type { Kysely } from "kysely";
import { fail } from "../errors/index.js";
import type { Store } from "../store/index.js";
import type { Clock } from "../util/clock.js";
import type { EnrollTables } from "./migrations.js";

const PREFIX = "frj_";
const TOKEN_TEXT = /^frj_[A-Za-z0-9_-]{43}$/;

export interface JoinTokenRow {
  readonly accessor: string;
  readonly provisioner: string;
  readonly deviceId: string | null;
  readonly expiresAt: number;
}

/**
 * Join tokens: 256 random bits, shown once, stored as SHA-256. Redeeming is one conditional UPDATE
 * (unused, unexpired, this provisioner), so a token works exactly once even under concurrent use.
 */
export class JoinTokenStore {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  db(trx?: Kysely<object>): Kysely<EnrollTables> {
    return (trx ?? this.store.db).withTables<EnrollTables>();
  }

  async create(
    provisioner: string,
    deviceId: string | undefined,
    ttlSeconds: number,
    trx?: Kysely<object>,
  ): Promise<{ token: string; accessor: string; expiresAt: number }> {
    const now = this.clock.now().getTime();
    const token = PREFIX + randomBytes(32).toString("base64url");
    const accessor = randomBytes(12).toString("hex");
    const expiresAt = now + ttlSeconds * 1000;
    await this.db(trx)
      .insertInto("fleet_join_token")
      .values({
        hash: hashOf(token),
        accessor,
        provisioner,
        device_id: deviceId ?? null,
        expires_at: expiresAt,
        used_at: null,
        created_at: now,
      })
      .execute();
    return { token, accessor, expiresAt };
  }

  /** Marks the token used; refuses unknown, used, expired or other-provisioner tokens alike. */
  async redeem(token: string, provisioner: string): Promise<JoinTokenRow & { hash: string }> {
    const deny = (): never =>
      fail("FR_ENROLL_TOKEN", "create a new one with `fleetroot device token create`");
    if (!TOKEN_TEXT.test(token)) deny();
    const hash = hashOf(token);
    const now = this.clock.now().getTime();
    const r = await this.db()
      .updateTable("fleet_join_token")
      .set({ used_at: now })
      .where("hash", "=", hash)
      .where("provisioner", "=", provisioner)
      .where("used_at", "is", null)
      .where("expires_at", ">=", now)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) deny();
    const row = await this.db()
      .selectFrom("fleet_join_token")
      .selectAll()
      .where("hash", "=", hash)
      .executeTakeFirstOrThrow();
    return {
      hash,
      accessor: row.accessor,
      provisioner: row.provisioner,
      deviceId: row.device_id,
      expiresAt: Number(row.expires_at),
    };
  }

  /** Gives a redeemed token back when issuance failed after it was redeemed. */
  async release(hash: string): Promise<void> {
    await this.db().updateTable("fleet_join_token").set({ used_at: null }).where("hash", "=", hash).execute();
  }

  /** Spends every unused token bound to a device (decommissioning). */
  async spendForDevice(deviceId: string): Promise<void> {
    await this.db()
      .updateTable("fleet_join_token")
      .set({ used_at: this.clock.now().getTime() })
      .where("device_id", "=", deviceId)
      .where("used_at", "is", null)
      .execute();
  }
}

const hashOf = (t: string): string => createHash("sha256").update(t).digest("hex");
