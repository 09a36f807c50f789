import type { Kysely } from "kysely";
import { bigintType, blobType, dialectOf, type MigrationSet } from "../store/index.js";

/** Tables of the updates module (5000 range). JSON columns are text; times are ms since the epoch. */
export type UpdatesTables = {
  updates_repos: { name: string; settings: string; created_ms: number };
  /** Public keys by keyid; `uri` is set when this server holds the private key (file:, pkcs11:, tpm:). */
  updates_keys: { repo: string; keyid: string; key_json: string; uri: string | null };
  /**
   * Every role's definition. kind: "top" (root, targets, snapshot, timestamp), "delegated" (paths), "bin"
   * (a TAP 15 hash bin). `succinct` is set on a role that delegates to hash bins. `dirty` = changed since
   * its last published version.
   */
  updates_roles: {
    repo: string;
    name: string;
    kind: string;
    parent: string | null;
    keyids: string;
    threshold: number;
    paths: string | null;
    terminating: number;
    succinct: string | null;
    expires_s: number;
    ord: number;
    dirty: number;
  };
  updates_targets: {
    repo: string;
    path: string;
    role: string;
    length: number;
    sha256: string;
    custom: string | null;
  };
  updates_blobs: { repo: string; sha256: string; content: Buffer };
  /** Every version of every role's metadata; only state "published" is served. */
  updates_metadata: {
    repo: string;
    role: string;
    version: number;
    state: string;
    body: Buffer;
    expires_ms: number;
    created_ms: number;
  };
  /** Which node runs the refresh job: one row per job, taken by a conditional update. */
  updates_leases: { name: string; holder: string; expires_ms: number };
};

export const updatesMigrations: MigrationSet = {
  "5000_updates": {
    async up(db: Kysely<unknown>) {
      const d = dialectOf(db);
      await db.schema
        .createTable("updates_repos")
        .addColumn("name", "text", (c) => c.primaryKey())
        .addColumn("settings", "text", (c) => c.notNull())
        .addColumn("created_ms", bigintType(d), (c) => c.notNull())
        .execute();
      await db.schema
        .createTable("updates_keys")
        .addColumn("repo", "text", (c) => c.notNull())
        .addColumn("keyid", "text", (c) => c.notNull())
        .addColumn("key_json", "text", (c) => c.notNull())
        .addColumn("uri", "text")
        .addPrimaryKeyConstraint("updates_keys_pk", ["repo", "keyid"])
        .execute();
      await db.schema
        .createTable("updates_roles")
        .addColumn("repo", "text", (c) => c.notNull())
        .addColumn("name", "text", (c) => c.notNull())
        .addColumn("kind", "text", (c) => c.notNull())
        .addColumn("parent", "text")
        .addColumn("keyids", "text", (c) => c.notNull())
        .addColumn("threshold", "integer", (c) => c.notNull())
        .addColumn("paths", "text")
        .addColumn("terminating", "integer", (c) => c.notNull())
        .addColumn("succinct", "text")
        .addColumn("expires_s", bigintType(d), (c) => c.notNull())
        .addColumn("ord", "integer", (c) => c.notNull())
        .addColumn("dirty", "integer", (c) => c.notNull())
        .addPrimaryKeyConstraint("updates_roles_pk", ["repo", "name"])
        .execute();
      await db.schema
        .createTable("updates_targets")
        .addColumn("repo", "text", (c) => c.notNull())
        .addColumn("path", "text", (c) => c.notNull())
        .addColumn("role", "text", (c) => c.notNull())
        .addColumn("length", bigintType(d), (c) => c.notNull())
        .addColumn("sha256", "text", (c) => c.notNull())
        .addColumn("custom", "text")
        .addPrimaryKeyConstraint("updates_targets_pk", ["repo", "path"])
        .execute();
      await db.schema
        .createIndex("updates_targets_role")
        .on("updates_targets")
        .columns(["repo", "role"])
        .execute();
      await db.schema
        .createTable("updates_blobs")
        .addColumn("repo", "text", (c) => c.notNull())
        .addColumn("sha256", "text", (c) => c.notNull())
        .addColumn("content", blobType(d), (c) => c.notNull())
        .addPrimaryKeyConstraint("updates_blobs_pk", ["repo", "sha256"])
        .execute();
      await db.schema
        .createTable("updates_metadata")
        .addColumn("repo", "text", (c) => c.notNull())
        .addColumn("role", "text", (c) => c.notNull())
        .addColumn("version", "integer", (c) => c.notNull())
        .addColumn("state", "text", (c) => c.notNull())
        .addColumn("body", blobType(d), (c) => c.notNull())
        .addColumn("expires_ms", bigintType(d), (c) => c.notNull())
        .addColumn("created_ms", bigintType(d), (c) => c.notNull())
        .addPrimaryKeyConstraint("updates_metadata_pk", ["repo", "role", "version"])
        .execute();
      await db.schema
        .createTable("updates_leases")
        .addColumn("name", "text", (c) => c.primaryKey())
        .addColumn("holder", "text", (c) => c.notNull())
        .addColumn("expires_ms", bigintType(d), (c) => c.notNull())
        .execute();
    },
  },
};
