import type { Kysely } from "kysely";
import { bigintType, blobType, dialectOf, type MigrationSet } from "../store/index.js";

/**
 * Tokens are keyed by the SHA-256 of the token; the entry itself (policies, meta, …) is encrypted by the
 * barrier. Only what queries need is in the clear: accessor, parent, expiry, remaining uses, renewal time.
 */
export const authMigrations: MigrationSet = {
  "0200_auth_tokens": {
    async up(db: Kysely<unknown>): Promise<void> {
      const d = dialectOf(db);
      await db.schema
        .createTable("auth_token")
        .addColumn("hash", "text", (c) => c.primaryKey())
        .addColumn("accessor", "text", (c) => c.notNull().unique())
        .addColumn("parent_hash", "text")
        .addColumn("created_at", bigintType(d), (c) => c.notNull())
        // 0: never expires.
        .addColumn("expire_at", bigintType(d), (c) => c.notNull())
        .addColumn("last_renewal_at", bigintType(d))
        // 0: unlimited uses; otherwise the uses left.
        .addColumn("uses_left", bigintType(d), (c) => c.notNull())
        .addColumn("entry", blobType(d), (c) => c.notNull())
        .execute();
      await db.schema.createIndex("auth_token_parent").on("auth_token").column("parent_hash").execute();
      await db.schema.createIndex("auth_token_expire").on("auth_token").column("expire_at").execute();
    },
  },
  "0201_auth_policies": {
    async up(db: Kysely<unknown>): Promise<void> {
      const d = dialectOf(db);
      await db.schema
        .createTable("auth_policy")
        .addColumn("name", "text", (c) => c.primaryKey())
        .addColumn("text", "text", (c) => c.notNull())
        .addColumn("updated_at", bigintType(d), (c) => c.notNull())
        .execute();
    },
  },
};

export type AuthTables = {
  auth_token: {
    hash: string;
    accessor: string;
    parent_hash: string | null;
    created_at: number;
    expire_at: number;
    last_renewal_at: number | null;
    uses_left: number;
    entry: Uint8Array;
  };
  auth_policy: { name: string; text: string; updated_at: number };
};
