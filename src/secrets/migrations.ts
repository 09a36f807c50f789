import type { Kysely } from "kysely";
import { bigintType, blobType, dialectOf, type MigrationSet } from "../store/index.js";

/**
 * The mount table is plain (types and options are not secret); every stored secret, its metadata and
 * every wrapped response is barrier ciphertext whose associated data names mount, path and version.
 * Paths stay in the clear so LIST can answer from an index, as Vault's key listing does.
 */
export const secretsMigrations: MigrationSet = {
  "4000_secrets_mounts": {
    async up(db: Kysely<unknown>): Promise<void> {
      const d = dialectOf(db);
      await db.schema
        .createTable("secrets_mount")
        .addColumn("path", "text", (c) => c.primaryKey())
        .addColumn("uuid", "text", (c) => c.notNull().unique())
        .addColumn("accessor", "text", (c) => c.notNull())
        .addColumn("type", "text", (c) => c.notNull())
        .addColumn("version", "integer", (c) => c.notNull())
        .addColumn("description", "text", (c) => c.notNull())
        // JSON: lease TTLs and the KV engine configuration (max_versions, cas_required, …).
        .addColumn("config", "text", (c) => c.notNull())
        .addColumn("created_at", bigintType(d), (c) => c.notNull())
        .execute();
      // One row that says the default mounts were made, so a disabled secret/ does not come back.
      await db.schema
        .createTable("secrets_state")
        .addColumn("name", "text", (c) => c.primaryKey())
        .addColumn("value", "text", (c) => c.notNull())
        .execute();
    },
  },
  "4001_secrets_kv": {
    async up(db: Kysely<unknown>): Promise<void> {
      const d = dialectOf(db);
      // One row per key: KV v2 metadata (or the KV v1 value), sealed. `rev` guards concurrent writers.
      await db.schema
        .createTable("secrets_kv_key")
        .addColumn("mount", "text", (c) => c.notNull())
        .addColumn("path", "text", (c) => c.notNull())
        .addColumn("rev", bigintType(d), (c) => c.notNull())
        .addColumn("blob", blobType(d), (c) => c.notNull())
        .addPrimaryKeyConstraint("secrets_kv_key_pk", ["mount", "path"])
        .execute();
      await db.schema
        .createTable("secrets_kv_version")
        .addColumn("mount", "text", (c) => c.notNull())
        .addColumn("path", "text", (c) => c.notNull())
        .addColumn("version", bigintType(d), (c) => c.notNull())
        .addColumn("blob", blobType(d), (c) => c.notNull())
        .addPrimaryKeyConstraint("secrets_kv_version_pk", ["mount", "path", "version"])
        .execute();
    },
  },
  "4002_secrets_wrapping": {
    async up(db: Kysely<unknown>): Promise<void> {
      const d = dialectOf(db);
      await db.schema
        .createTable("secrets_wrap")
        .addColumn("hash", "text", (c) => c.primaryKey())
        .addColumn("accessor", "text", (c) => c.notNull().unique())
        .addColumn("created_at", bigintType(d), (c) => c.notNull())
        .addColumn("expire_at", bigintType(d), (c) => c.notNull())
        .addColumn("ttl", bigintType(d), (c) => c.notNull())
        .addColumn("creation_path", "text", (c) => c.notNull())
        .addColumn("blob", blobType(d), (c) => c.notNull())
        .execute();
      await db.schema.createIndex("secrets_wrap_expire").on("secrets_wrap").column("expire_at").execute();
    },
  },
  "4003_secrets_cert_auth": {
    async up(db: Kysely<unknown>): Promise<void> {
      const d = dialectOf(db);
      await db.schema
        .createTable("secrets_cert_role")
        .addColumn("name", "text", (c) => c.primaryKey())
        // JSON: CA certificates (public), allowed names, token policies and TTLs; nothing secret.
        .addColumn("config", "text", (c) => c.notNull())
        .addColumn("updated_at", bigintType(d), (c) => c.notNull())
        .execute();
      await db.schema
        .createTable("secrets_cert_crl")
        .addColumn("name", "text", (c) => c.primaryKey())
        .addColumn("der", blobType(d), (c) => c.notNull())
        .addColumn("updated_at", bigintType(d), (c) => c.notNull())
        .execute();
    },
  },
};

export type SecretsTables = {
  secrets_mount: {
    path: string;
    uuid: string;
    accessor: string;
    type: string;
    version: number;
    description: string;
    config: string;
    created_at: number;
  };
  secrets_state: { name: string; value: string };
  secrets_kv_key: { mount: string; path: string; rev: number; blob: Uint8Array };
  secrets_kv_version: { mount: string; path: string; version: number; blob: Uint8Array };
  secrets_wrap: {
    hash: string;
    accessor: string;
    created_at: number;
    expire_at: number;
    ttl: number;
    creation_path: string;
    blob: Uint8Array;
  };
  secrets_cert_role: { name: string; config: string; updated_at: number };
  secrets_cert_crl: { name: string; der: Uint8Array; updated_at: number };
};
