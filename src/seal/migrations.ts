import type { Kysely } from "kysely";
import { bigintType, blobType, dialectOf, type MigrationSet } from "../store/index.js";

/** Tables of the seal module (0100 range). */
export type SealTables = {
  /** One row, id "keyring": the barrier keyring encrypted under the root key. */
  barrier_keyring: { id: string; value: Buffer; updated_ms: number };
  /** barrier.view() entries: value is barrier ciphertext with aad = path. */
  barrier_entries: { path: string; value: Buffer };
  /** One row, id "seal": which seal guards the root key, its parameters, and its stored form of the key. */
  seal_config: {
    id: string;
    type: string;
    secret_shares: number;
    secret_threshold: number;
    /** pkcs11: the root key wrapped by the HSM key; dev: the root key itself; shamir: null. */
    stored_key: Buffer | null;
    created_ms: number;
  };
};

export const sealMigrations: MigrationSet = {
  "0100_barrier": {
    async up(db: Kysely<unknown>) {
      const d = dialectOf(db);
      await db.schema
        .createTable("barrier_keyring")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("value", blobType(d), (c) => c.notNull())
        .addColumn("updated_ms", bigintType(d), (c) => c.notNull())
        .execute();
      await db.schema
        .createTable("barrier_entries")
        .addColumn("path", "text", (c) => c.primaryKey())
        .addColumn("value", blobType(d), (c) => c.notNull())
        .execute();
    },
  },
  "0101_seal_config": {
    async up(db: Kysely<unknown>) {
      const d = dialectOf(db);
      await db.schema
        .createTable("seal_config")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("type", "text", (c) => c.notNull())
        .addColumn("secret_shares", "integer", (c) => c.notNull())
        .addColumn("secret_threshold", "integer", (c) => c.notNull())
        .addColumn("stored_key", blobType(d))
        .addColumn("created_ms", bigintType(d), (c) => c.notNull())
        .execute();
    },
  },
};
